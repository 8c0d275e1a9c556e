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
 *
 * Before anything else a request must pass two checks, both made before its
 * body is read: the connection limit and authentication (api/auth.c; 401).
 *
 * Connection limit: MHD_OPTION_CONNECTION_LIMIT alone makes MHD close excess
 * connections without a word. So MHD's hard limit is max_connections plus
 * some slack, the notify-connection callback counts open connections, and a
 * connection that opened beyond max_connections is answered 503 with
 * Retry-After and closed. Only beyond the slack does MHD drop connections.
 *
 * TLS: with tls_cert and tls_key the daemon speaks only HTTPS (MHD_USE_TLS,
 * GnuTLS); a plain HTTP request on the port fails its TLS handshake.
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

/* A connection that opened past max_connections carries this as its socket context. */
static char over_limit_marker;

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)conn;
    gand_api *api = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        int n = atomic_fetch_add(&api->connections, 1) + 1;
        *socket_context = n > api->max_connections ? &over_limit_marker : NULL;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        atomic_fetch_sub(&api->connections, 1);
    }
}

static bool over_limit(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci && ci->socket_context == &over_limit_marker;
}

static enum MHD_Result too_many_connections(api_request *req)
{
    static const char *const headers[] = {MHD_HTTP_HEADER_RETRY_AFTER, "1",
                                          MHD_HTTP_HEADER_CONNECTION, "close", NULL};
    return api_problem_with_headers(
        req, 503, "busy", headers,
        "%d connections are open, the daemon's max_connections; try again in a moment (an event "
        "stream holds its connection: close the ones you do not need)",
        req->api->max_connections);
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
        if (over_limit(conn))
            return too_many_connections(req);
        bool ok;
        enum MHD_Result rc = api_framing_check(req, version, &ok);
        if (!ok)
            return rc; /* before the body: MHD closes, so no byte of it is read as a request */
        rc = api_origin_check(req, &ok);
        if (!ok)
            return rc; /* before the body, as for auth */
        rc = api_auth_check(req, &ok);
        if (!ok)
            return rc; /* before the body: MHD does not read it, and closes afterwards */
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

bool api_tls_supported(void)
{
    return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}

static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void api_free(gand_api *api)
{
    free_secret(api->tls_cert);
    free_secret(api->tls_key);
    explicit_bzero(api->token, sizeof api->token);
    pthread_mutex_destroy(&api->auth_lock);
    free(api);
}

/*
 * Each connection's memory pool: the request line, the headers and one record per
 * query parameter (about 60 bytes each) must fit, or MHD answers 414/431 in HTML or,
 * when the records run out, closes without a word. 128 KiB (MHD's default is 32)
 * lets about 1,900 short parameters be answered (by the 422 that names the first
 * unknown one); the pages are only touched as far as a request uses them.
 */
enum { CONNECTION_MEMORY = 128 * 1024 };

/* MHD's hard connection limit: ours plus room to answer the excess with 503. */
static unsigned hard_connection_limit(int max)
{
    int slack = max / 4 > 16 ? max / 4 : 16;
    return (unsigned)(max + slack);
}

gand_api *api_start(const api_options *opt, char *err, size_t err_len)
{
    gand_api *api = calloc(1, sizeof *api);
    if (!api) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&api->auth_lock, NULL);
    api->max_connections = opt->limits->max_connections;
    api_set_auth(api, opt->token, opt->token_len, opt->public_reads);
    snprintf(api->allowed_hosts, sizeof api->allowed_hosts, "%s",
             opt->allowed_hosts ? opt->allowed_hosts : "");
    bool tls = opt->tls_cert_pem && opt->tls_key_pem;
    if (tls) {
        if (!api_tls_supported()) {
            snprintf(err, err_len, "this libmicrohttpd was built without TLS support");
            api_free(api);
            return NULL;
        }
        api->tls_cert = strdup(opt->tls_cert_pem);
        api->tls_key = strdup(opt->tls_key_pem);
        if (!api->tls_cert || !api->tls_key) {
            snprintf(err, err_len, "out of memory");
            api_free(api);
            return NULL;
        }
    }
    api->reg = opt->registry;
    snprintf(api->web_dir, sizeof api->web_dir, "%s", opt->web_dir ? opt->web_dir : "");
    snprintf(api->javascript_dir, sizeof api->javascript_dir, "%s",
             opt->javascript_dir ? opt->javascript_dir : "");
    api->started = time(NULL);
    api_set_live_limits(api, opt->limits);

    MHD_set_panic_func(mhd_panic, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0);
    /* poll(), not select(): connection threads must work past FD_SETSIZE descriptors */
    if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
        flags |= MHD_USE_POLL;
    /* MHD keeps pointers to the PEM texts: they live in api until api_stop */
    struct MHD_OptionItem tls_options[] = {
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, api->tls_key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, api->tls_cert},
        {MHD_OPTION_END, 0, NULL},
    };
    /* the logger first, so that MHD's complaints about the other options reach it */
    api->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, api, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)opt->listen_fd, MHD_OPTION_CONNECTION_LIMIT,
        hard_connection_limit(opt->limits->max_connections), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)opt->limits->connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, api, MHD_OPTION_ARRAY, tls_options,
        MHD_OPTION_END);
    if (!api->mhd) {
        snprintf(err, err_len,
                 "libmicrohttpd could not start on the listening socket%s (see the "
                 "log lines above)",
                 tls ? " with TLS: is tls_key the private key of tls_cert, both in PEM" : "");
        api_free(api);
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
    api_free(api);
}
