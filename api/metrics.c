/*
 * api/metrics.c — GET /metrics: Prometheus text exposition (format 0.0.4).
 *
 * The registry writes the runs' series; this file adds the HTTP server's own:
 * requests answered by status code, event streams open, build info.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "kernels/backend.h"

#ifndef GAND_VERSION
#define GAND_VERSION "0"
#endif

typedef struct text_buf {
    char *data;
    size_t len, cap;
    bool failed;
} text_buf;

static void put(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(text_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char *nd = realloc(b->data, ncap);
        if (!nd) {
            b->failed = true;
            return;
        }
        b->data = nd;
        b->cap = ncap;
    }
}

enum MHD_Result h_metrics(api_request *req, const char *const *params)
{
    (void)params;
    static const char *const no_params[] = {NULL};
    bool ok;
    enum MHD_Result rc = api_check_query(req, no_params, &ok);
    if (!ok)
        return rc;
    char *runs = NULL;
    reg_status st = registry_prometheus(req->api->reg, &runs);
    if (st != REG_OK)
        return api_problem_reg(req, st, NULL, NULL);

    text_buf b = {.cap = 4096};
    b.data = malloc(b.cap);
    if (!b.data) {
        free(runs);
        return api_problem(req, 500, "internal", NULL, "out of memory");
    }
    b.data[0] = '\0';
    put(&b, "%s", runs ? runs : "");
    free(runs);
    if (b.len > 0 && b.data[b.len - 1] != '\n')
        put(&b, "\n");

    put(&b, "# HELP gand_http_requests_total HTTP requests answered, by status code.\n"
            "# TYPE gand_http_requests_total counter\n");
    /* this response is counted once it is queued; count it here already so it appears */
    for (unsigned code = 100; code < API_STATUS_MAX; code++) {
        unsigned long n = atomic_load(&req->api->requests_by_status[code]) + (code == 200);
        if (n)
            put(&b, "gand_http_requests_total{code=\"%u\"} %lu\n", code, n);
    }
    put(&b,
        "# HELP gand_http_event_streams Server-Sent Event streams open now.\n"
        "# TYPE gand_http_event_streams gauge\n"
        "gand_http_event_streams %d\n",
        atomic_load(&req->api->active_streams));
    put(&b,
        "# HELP gand_build_info The gand build: version and backends compiled in.\n"
        "# TYPE gand_build_info gauge\n"
        "gand_build_info{version=\"%s\",backends=\"%s\"} 1\n",
        GAND_VERSION, gk_backends_built());
    if (b.failed) {
        free(b.data);
        return api_problem(req, 500, "internal", NULL, "out of memory");
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(b.data);
        return api_send(req, 200, NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return api_send(req, 200, resp);
}
