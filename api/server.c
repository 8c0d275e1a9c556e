/*
 * api/server.c — the libmicrohttpd daemon: start, stop, and the access
 * handler that gathers a request body and hands the request to the router.
 *
 * Thread per connection with MHD's internal polling thread and an ITC, so
 * MHD_quiesce_daemon can stop accepting while requests finish (the pattern of
 * systemd's journal-gatewayd). The request body is accumulated in the
 * connection's closure, capped at max_body_bytes (a Content-Length over the
 * cap is refused before the body is read; a chunked body over it is read to
 * its end without being kept, then refused), and the closure is freed by the
 * completion callback. MHD's panics are logged instead of aborting the process.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "daemon/log.h"

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
        line[--n] = '\0';
    log_warning("http: libmicrohttpd: %s", line);
}

static void mhd_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
    (void)cls;
    /*
     * MHD's default prints to stderr and abort()s, losing the active run's
     * last iterations. Like Janus, log at err and let MHD try to continue: the
     * failures it reports this way (a close() that failed, a broken lock) are
     * mostly about one connection, and training keeps its own state.
     */
    log_err("http: libmicrohttpd internal error at %s:%u: %s", file ? file : "?", line,
            reason ? reason : "(no reason given)");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    api_request *req = *con_cls;
    if (!req)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && toe != MHD_REQUEST_TERMINATED_CLIENT_ABORT)
        log_debug("http: %s %s ended early (code %d)", req->method, req->url, (int)toe);
    free(req->body);
    free(req);
    *con_cls = NULL;
}

/* Keep the body, up to cap; past it, remember that it was too large and keep nothing. */
static void append_body(api_request *req, const char *data, size_t len, long cap)
{
    if (req->body_too_large)
        return;
    if (req->body_len + len > (size_t)cap) {
        req->body_too_large = true;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t ncap = req->body_cap ? req->body_cap : 1024;
        while (ncap < req->body_len + len + 1)
            ncap *= 2;
        char *nb = realloc(req->body, ncap);
        if (!nb) {
            req->body_too_large = true;
            return;
        }
        req->body = nb;
        req->body_cap = ncap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
}

static enum MHD_Result too_large(api_request *req, long cap)
{
    return api_problem(req, 413, "body-too-large", NULL,
                       "the request body is larger than the daemon's max_body_bytes (%ld bytes)",
                       cap);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    gand_api *api = cls;
    api_request *req = *con_cls;
    long cap = atomic_load(&api->max_body_bytes);
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        req->api = api;
        req->conn = conn;
        req->method = method;
        req->url = url;
        *con_cls = req;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno == ERANGE || (end != cl && n > (unsigned long long)cap))
                return too_large(req, cap); /* before reading it: MHD closes afterwards */
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (req->responded) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        /*
         * Past the cap the rest is read and dropped: MHD 0.9.x accepts a response
         * only before the body (the Content-Length check above) or after all of it.
         */
        append_body(req, upload_data, *upload_data_size, cap);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->responded)
        return MHD_YES;
    if (req->body_too_large)
        return too_large(req, cap);
    return api_route(req);
}

gand_api *api_start(const api_options *opt, char *err, size_t err_len)
{
    gand_api *api = calloc(1, sizeof *api);
    if (!api) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    api->reg = opt->registry;
    snprintf(api->web_dir, sizeof api->web_dir, "%s", opt->web_dir ? opt->web_dir : "");
    snprintf(api->javascript_dir, sizeof api->javascript_dir, "%s",
             opt->javascript_dir ? opt->javascript_dir : "");
    api->started = time(NULL);
    api_set_live_limits(api, opt->limits);

    MHD_set_panic_func(mhd_panic, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    /* the logger first, so that MHD's complaints about the other options reach it */
    api->mhd =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, api, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                         NULL, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)opt->listen_fd,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)opt->limits->max_connections,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opt->limits->connection_timeout_s,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!api->mhd) {
        snprintf(err, err_len,
                 "libmicrohttpd could not start on the listening socket (see the "
                 "log lines above)");
        free(api);
        return NULL;
    }
    return api;
}

void api_set_live_limits(gand_api *api, const gand_limits *l)
{
    atomic_store(&api->max_body_bytes, l->max_body_bytes);
    atomic_store(&api->max_event_streams, l->max_event_streams);
    atomic_store(&api->max_sample_n, l->max_sample_n);
}

void api_set_worker_stalled(gand_api *api, bool stalled)
{
    atomic_store(&api->worker_stalled, stalled);
}

void api_quiesce(gand_api *api)
{
    if (api && api->mhd)
        MHD_quiesce_daemon(api->mhd); /* the listening fd stays the caller's */
}

void api_stop(gand_api *api)
{
    if (!api)
        return;
    atomic_store(&api->stopping, true); /* event streams end at their next wake-up */
    if (api->mhd)
        MHD_stop_daemon(api->mhd);
    free(api);
}
