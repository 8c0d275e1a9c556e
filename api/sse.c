/*
 * api/sse.c — GET /api/v1/runs/{id}/events: Server-Sent Events.
 *
 * The stream is an MHD content-reader callback on the connection's own
 * thread (the journal-gatewayd pattern). When it has nothing to send it
 * blocks in registry_events, which waits on the registry's condition
 * variable, in slices of a second: between slices it notices a client that
 * went away (a zero-byte peek on the socket) and a daemon that is stopping,
 * and every 15 s without an event it sends a ": keep-alive" comment so
 * proxies keep the connection open. Nothing polls faster than that.
 *
 * Replay: `Last-Event-ID` (what EventSource sends when it reconnects) or
 * ?last_event_id=N; events with a larger sequence number are sent first. The
 * stream ends after the run reaches a final state and its last event is sent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api/internal.h"
#include "daemon/log.h"

enum { KEEPALIVE_MS = 15000, SLICE_MS = 1000, RETRY_MS = 3000 };

typedef struct sse_stream {
    gand_api *api;
    struct MHD_Connection *conn;
    char id[128];
    uint64_t after;
    char *pending;
    size_t pending_len, pending_off;
    bool ended;
    struct timespec last_write;
} sse_stream;

static long ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static bool peer_closed(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return false;
    char c;
    ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
        return true;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

static void set_pending(sse_stream *s, char *text)
{
    free(s->pending);
    s->pending = text;
    s->pending_len = text ? strlen(text) : 0;
    s->pending_off = 0;
}

static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    sse_stream *s = cls;
    for (;;) {
        if (s->pending_off < s->pending_len) {
            size_t n = s->pending_len - s->pending_off;
            if (n > max)
                n = max;
            memcpy(buf, s->pending + s->pending_off, n);
            s->pending_off += n;
            clock_gettime(CLOCK_MONOTONIC, &s->last_write);
            return (ssize_t)n;
        }
        set_pending(s, NULL);
        if (s->ended || atomic_load(&s->api->stopping))
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (peer_closed(s->conn))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        long quiet = ms_since(&s->last_write);
        if (quiet >= KEEPALIVE_MS) {
            set_pending(s, strdup(": keep-alive\n\n"));
            if (!s->pending)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        long wait = KEEPALIVE_MS - quiet;
        if (wait > SLICE_MS)
            wait = SLICE_MS;
        char *text = NULL;
        uint64_t last = s->after;
        bool ended = false;
        reg_status st =
            registry_events(s->api->reg, s->id, s->after, (int)wait, &text, &last, &ended);
        if (st != REG_OK) { /* the run was deleted meanwhile */
            free(text);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        s->ended = ended;
        if (text) {
            s->after = last;
            set_pending(s, text);
        }
    }
}

static void free_stream(void *cls)
{
    sse_stream *s = cls;
    atomic_fetch_sub(&s->api->active_streams, 1);
    log_debug("http: event stream of run %s closed after event %llu", s->id,
              (unsigned long long)s->after);
    free(s->pending);
    free(s);
}

static bool parse_u64(const char *v, uint64_t *out)
{
    if (!v || !v[0] || v[0] == '-' || v[0] == '+' || v[0] == ' ')
        return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end)
        return false;
    *out = n;
    return true;
}

enum MHD_Result h_run_events(api_request *req, const char *const *params)
{
    static const char *const allowed[] = {"last_event_id", NULL};
    bool ok;
    enum MHD_Result rc = api_check_query(req, allowed, &ok);
    if (!ok)
        return rc;
    const char *id = params[0];
    uint64_t after = 0;
    /* the header wins: EventSource sends it on reconnect to the URL it first opened */
    const char *hdr = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Last-Event-ID");
    const char *q = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "last_event_id");
    if (hdr) {
        if (!parse_u64(hdr, &after))
            return api_problem(req, 400, "invalid-header", NULL,
                               "the Last-Event-ID header must be an event sequence number (an "
                               "integer ≥ 0), got '%.40s'",
                               hdr);
    } else if (q && !parse_u64(q, &after)) {
        return api_problem(req, 422, "invalid-field", "last_event_id",
                           "last_event_id must be an integer ≥ 0 (an event sequence number), "
                           "got '%.40s'",
                           q);
    }
    if (strlen(id) >= sizeof(((sse_stream *)0)->id))
        return api_problem_reg(req, REG_NOT_FOUND, NULL, id);

    /* what is there already (and whether the run exists) */
    char *text = NULL;
    uint64_t last = after;
    bool ended = false;
    reg_status st = registry_events(req->api->reg, id, after, 0, &text, &last, &ended);
    if (st != REG_OK)
        return api_problem_reg(req, st, NULL, id);

    int max = atomic_load(&req->api->max_event_streams);
    if (atomic_fetch_add(&req->api->active_streams, 1) >= max) {
        atomic_fetch_sub(&req->api->active_streams, 1);
        free(text);
        return api_problem(req, 429, "limit-reached", NULL,
                           "%d event streams are open, the daemon's max_event_streams; close "
                           "one or poll /api/v1/runs/%s/metrics?since=N instead",
                           max, id);
    }
    sse_stream *s = calloc(1, sizeof *s);
    char head[64];
    snprintf(head, sizeof head, "retry: %d\n\n", RETRY_MS);
    size_t tlen = text ? strlen(text) : 0;
    char *first = malloc(strlen(head) + tlen + 1);
    if (!s || !first) {
        atomic_fetch_sub(&req->api->active_streams, 1);
        free(s);
        free(first);
        free(text);
        return api_problem(req, 500, "internal", NULL, "out of memory opening an event stream");
    }
    strcpy(first, head);
    if (text)
        memcpy(first + strlen(head), text, tlen + 1);
    free(text);
    s->api = req->api;
    s->conn = req->conn;
    snprintf(s->id, sizeof s->id, "%s", id);
    s->after = last;
    s->ended = ended;
    set_pending(s, first);
    clock_gettime(CLOCK_MONOTONIC, &s->last_write);

    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_events, s, free_stream);
    if (!resp) {
        free_stream(s);
        return api_send(req, 200, NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    /* a stream is quiet for up to KEEPALIVE_MS at a time: the idle timeout must not cut it */
    MHD_set_connection_option(req->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    log_debug("http: event stream of run %s opened after event %llu", id,
              (unsigned long long)after);
    return api_send(req, 200, resp);
}
