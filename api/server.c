/*
 * api/server.c — the libmicrohttpd daemon: start, stop, the connections'
 * limits and deadlines, and the access handler that gathers a request body
 * and hands the request to the router.
 *
 * The connection model: MHD's epoll event loop on a pool of `http_threads`
 * threads (MHD_USE_EPOLL_INTERNAL_THREAD + MHD_OPTION_THREAD_POOL_SIZE; by
 * default one per CPU, at least 4 and at most 16), with an ITC so that
 * MHD_quiesce_daemon stops accepting while requests finish and a suspended
 * connection can be resumed from another thread. Why: with one thread per
 * connection (what gand did first) every idle or slow connection holds a
 * thread, and a few clients that send their headers a byte at a time hold all
 * of them; in an event loop an idle connection is a socket in an epoll set
 * and costs no thread, so capacity is max_connections, not a thread count.
 * The price is that a handler that takes long delays the other connections of
 * its pool thread, so nothing may wait inside one: an event stream suspends
 * its connection between events (MHD_suspend_connection; api/sse.c), and
 * what a handler does compute (a samples grid of at most max_sample_n
 * digits, a list of runs, a file) takes milliseconds. Several threads, so
 * that one such request does not hold up the rest; MHD's internal select()
 * or poll() would serve the same purpose but walks every descriptor on each
 * wake-up, while epoll wakes for the ready ones only.
 *
 * The request body is accumulated in the request's closure, capped at
 * max_body_bytes (a Content-Length over the cap is refused before the body is
 * read; a chunked body over it is read to its end without being kept, then
 * refused), and the closure is freed by the completion callback. MHD's
 * panics and its log lines go through our logger: a line that one client can
 * cause (it went away, it sent a malformed request) at debug, anything else
 * at warning, at most one of each kind per 10 s.
 *
 * Before anything else a request must pass, before its body is read: the
 * connection limits, the Host and Origin checks (origin.c; 403) and
 * authentication (auth.c; 401).
 *
 * Connection limits: MHD_OPTION_CONNECTION_LIMIT and
 * MHD_OPTION_PER_IP_CONNECTION_LIMIT alone make MHD close excess connections
 * without a word. So MHD's hard limits are ours plus some slack, the
 * notify-connection callback counts open connections (all, and by client
 * address), and a connection that opened beyond max_connections or
 * max_connections_per_ip is answered 503 with Retry-After and closed. Only
 * beyond the slack does MHD drop connections, without an answer.
 *
 * Deadlines: MHD's connection timeout (connection_timeout_s) resets with every
 * byte, so a client that sends a header byte every few seconds would hold its
 * connection forever. Each connection therefore carries a deadline: its
 * request's headers must have arrived header_timeout_s after it opened, or
 * after the previous response on it was sent (so an idle keep-alive
 * connection also goes then), and its body body_timeout_s after the headers.
 * The access handler and the completion callback move the deadline; a
 * sweeper thread, asleep until the earliest deadline, shuts a late
 * connection's socket down (shutdown(SHUT_RDWR): MHD then sees a closed peer
 * and closes it as usual) and logs it at info, at most one line per 10 s. A
 * request being answered has no deadline (an event stream lasts as long as it
 * likes; connection_timeout_s still closes one whose client stopped reading).
 *
 * TLS: with tls_cert and tls_key the daemon speaks only HTTPS (MHD_USE_TLS,
 * GnuTLS); a plain HTTP request on the port fails its TLS handshake.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/internal.h"
#include "daemon/log.h"

enum {
    IP_BUCKETS = 256,
    SWEEP_SLACK_MS = 200, /* the sweeper wakes this late, to close several laggards at once */
    MHD_LOG_KINDS = 64,   /* distinct MHD messages rate-limited separately */
};

long long api_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- libmicrohttpd's log and panics ---------------------------------------------------- */

/*
 * What MHD says about one client's doing — it went away, it sent a malformed
 * or oversized request, its TLS handshake failed — is no news to an operator
 * and anyone can cause it at will: debug. (Matched on MHD 0.9.75's texts.)
 */
static const char *const client_noise[] = {
    "disconnected when reading",
    "closed when reading request",
    "closed by remote side",
    "Failed to send",
    "Error processing request",
    "without `Host' header",
    "value of 'Content-Length'",
    "`Content-Length' header",
    "Not enough memory in pool",
    "error generating", /* an event stream whose client went away (sse.c) */
    "Failed to push the data",
    "handshake",
    "TLS",
    "Connection reset",
    "Broken pipe",
};

static pthread_mutex_t mhd_log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const char *fmt; /* MHD passes its format strings, constants: one kind each */
    gand_log_limit limit;
} mhd_log_kinds[MHD_LOG_KINDS];
static gand_log_limit mhd_log_other;

static gand_log_limit *mhd_log_limit(const char *fmt)
{
    gand_log_limit *lim = &mhd_log_other; /* when the table is full */
    pthread_mutex_lock(&mhd_log_lock);
    for (int i = 0; i < MHD_LOG_KINDS; i++) {
        if (mhd_log_kinds[i].fmt == fmt || !mhd_log_kinds[i].fmt) {
            mhd_log_kinds[i].fmt = fmt;
            lim = &mhd_log_kinds[i].limit;
            break;
        }
    }
    pthread_mutex_unlock(&mhd_log_lock);
    return lim;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
        line[--n] = '\0';
    for (size_t i = 0; i < sizeof client_noise / sizeof client_noise[0]; i++)
        if (strstr(line, client_noise[i])) {
            log_debug("http: libmicrohttpd: %s", line);
            return;
        }
    gand_log_limited(mhd_log_limit(fmt), GAND_LOG_WARNING, "http: libmicrohttpd: %s", line);
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

/* ---- connections: counts, limits, deadlines --------------------------------------------- */

typedef struct ip_count {
    struct ip_count *next;
    unsigned char addr[16];
    size_t len;
    int n;
} ip_count;

enum conn_phase { CONN_HEADERS, CONN_BODY, CONN_ANSWERING };

/* An open connection: MHD's socket context for it, from its opening to its closing. */
typedef struct api_conn {
    struct api_conn *prev, *next;
    int fd;
    enum conn_phase phase;
    long long deadline_ms; /* monotonic; 0 = none */
    bool over_limit;       /* opened past max_connections */
    bool over_ip_limit;    /* opened past max_connections_per_ip */
    bool cut;              /* the sweeper shut it down */
    ip_count *ip;
    char addr[INET6_ADDRSTRLEN];
} api_conn;

/* The socket context of a connection we could not track (out of memory): it is answered 503. */
static char untracked_marker;

static size_t addr_key(const struct sockaddr *sa, unsigned char key[16], char *text, size_t tlen)
{
    snprintf(text, tlen, "?");
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        memcpy(key, &in->sin_addr, 4);
        inet_ntop(AF_INET, &in->sin_addr, text, (socklen_t)tlen);
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        memcpy(key, &in6->sin6_addr, 16);
        inet_ntop(AF_INET6, &in6->sin6_addr, text, (socklen_t)tlen);
        return 16;
    }
    return 0;
}

static unsigned addr_hash(const unsigned char *key, size_t len)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % IP_BUCKETS;
}

/* The count of this address, one more (conns_lock held); NULL when out of memory. */
static ip_count *ip_count_add(gand_api *api, const unsigned char *key, size_t len)
{
    if (!api->ip_counts || len == 0)
        return NULL;
    ip_count **head = &api->ip_counts[addr_hash(key, len)];
    for (ip_count *c = *head; c; c = c->next)
        if (c->len == len && memcmp(c->addr, key, len) == 0) {
            c->n++;
            return c;
        }
    ip_count *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    memcpy(c->addr, key, len);
    c->len = len;
    c->n = 1;
    c->next = *head;
    *head = c;
    return c;
}

static void ip_count_drop(gand_api *api, ip_count *ic)
{
    if (!ic || --ic->n > 0)
        return;
    for (ip_count **p = &api->ip_counts[addr_hash(ic->addr, ic->len)]; *p; p = &(*p)->next)
        if (*p == ic) {
            *p = ic->next;
            free(ic);
            return;
        }
}

/* Move a connection's deadline (conns_lock held); wake the sweeper when it must wake earlier. */
static void set_deadline(gand_api *api, api_conn *c, enum conn_phase phase, int timeout_s)
{
    c->phase = phase;
    c->deadline_ms = timeout_s > 0 ? api_now_ms() + timeout_s * 1000LL : 0;
    if (c->deadline_ms && (!api->sweeper_wake_ms || c->deadline_ms < api->sweeper_wake_ms))
        pthread_cond_signal(&api->conns_cond);
}

static api_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (!ci || !ci->socket_context || ci->socket_context == &untracked_marker)
        return NULL;
    return ci->socket_context;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    gand_api *api = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        int n = atomic_fetch_add(&api->connections, 1) + 1;
        api_conn *c = calloc(1, sizeof *c);
        if (!c) {
            *socket_context = &untracked_marker;
            return;
        }
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ca =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        unsigned char key[16];
        size_t klen = addr_key(ca ? ca->client_addr : NULL, key, c->addr, sizeof c->addr);
        c->fd = fd ? fd->connect_fd : -1;
        c->over_limit = n > api->max_connections;
        pthread_mutex_lock(&api->conns_lock);
        c->ip = ip_count_add(api, key, klen);
        c->over_ip_limit =
            api->max_connections_per_ip > 0 && c->ip && c->ip->n > api->max_connections_per_ip;
        c->next = api->conns;
        if (api->conns)
            api->conns->prev = c;
        api->conns = c;
        set_deadline(api, c, CONN_HEADERS, api->header_timeout_s);
        pthread_mutex_unlock(&api->conns_lock);
        *socket_context = c;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        atomic_fetch_sub(&api->connections, 1);
        api_conn *c = *socket_context;
        *socket_context = NULL;
        if (!c || (void *)c == &untracked_marker)
            return;
        /* MHD closes the socket after this returns: the sweeper no longer sees it */
        pthread_mutex_lock(&api->conns_lock);
        if (c->prev)
            c->prev->next = c->next;
        else
            api->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        ip_count_drop(api, c->ip);
        pthread_mutex_unlock(&api->conns_lock);
        free(c);
    }
}

/* Close the connections past their deadline; sleep until the next one. */
static void *sweeper_main(void *arg)
{
    static gand_log_limit late_headers, late_body;
    gand_api *api = arg;
    pthread_mutex_lock(&api->conns_lock);
    while (!api->sweeper_stop) {
        long long now = api_now_ms(), next = 0;
        for (api_conn *c = api->conns; c; c = c->next) {
            if (!c->deadline_ms || c->cut)
                continue;
            if (c->deadline_ms > now) {
                if (!next || c->deadline_ms < next)
                    next = c->deadline_ms;
                continue;
            }
            c->cut = true;
            /* logged before the close, so that the line is there when the client sees it */
            if (c->phase == CONN_HEADERS)
                gand_log_limited(&late_headers, GAND_LOG_INFO,
                                 "http: closed a connection from %s: no complete request headers "
                                 "within header_timeout_s (%d s)",
                                 c->addr, api->header_timeout_s);
            else
                gand_log_limited(&late_body, GAND_LOG_INFO,
                                 "http: closed a connection from %s: its request body did not "
                                 "arrive within body_timeout_s (%d s)",
                                 c->addr, api->body_timeout_s);
            if (c->fd >= 0)
                shutdown(c->fd, SHUT_RDWR);
        }
        api->sweeper_wake_ms = next ? next + SWEEP_SLACK_MS : 0;
        if (!next) {
            pthread_cond_wait(&api->conns_cond, &api->conns_lock);
        } else {
            long long at = api->sweeper_wake_ms;
            struct timespec ts = {(time_t)(at / 1000), (long)(at % 1000) * 1000000L};
            pthread_cond_timedwait(&api->conns_cond, &api->conns_lock, &ts);
        }
    }
    pthread_mutex_unlock(&api->conns_lock);
    return NULL;
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

static enum MHD_Result too_many_from_address(api_request *req, const api_conn *c)
{
    static const char *const headers[] = {MHD_HTTP_HEADER_RETRY_AFTER, "1",
                                          MHD_HTTP_HEADER_CONNECTION, "close", NULL};
    return api_problem_with_headers(
        req, 503, "busy", headers,
        "%d connections from your address (%s) are open, the daemon's max_connections_per_ip; "
        "close some (or reuse them: HTTP keep-alive) and try again",
        req->api->max_connections_per_ip, c->addr);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    gand_api *api = cls;
    api_conn *c = conn_of(conn);
    if (c) { /* the next request's headers are due header_timeout_s from now */
        pthread_mutex_lock(&api->conns_lock);
        set_deadline(api, c, CONN_HEADERS, api->header_timeout_s);
        pthread_mutex_unlock(&api->conns_lock);
    }
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
        /* the headers are in: the body is due body_timeout_s from now */
        api_conn *c = conn_of(conn);
        if (c) {
            pthread_mutex_lock(&api->conns_lock);
            set_deadline(api, c, CONN_BODY, api->body_timeout_s);
            pthread_mutex_unlock(&api->conns_lock);
        }
        if (!c || c->over_limit)
            return too_many_connections(req);
        if (c->over_ip_limit)
            return too_many_from_address(req, c);
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
    api_conn *c = conn_of(conn); /* all of it is in: no deadline while it is answered */
    if (c) {
        pthread_mutex_lock(&api->conns_lock);
        set_deadline(api, c, CONN_ANSWERING, 0);
        pthread_mutex_unlock(&api->conns_lock);
    }
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
    if (api->ip_counts) {
        for (int i = 0; i < IP_BUCKETS; i++)
            while (api->ip_counts[i]) {
                ip_count *c = api->ip_counts[i];
                api->ip_counts[i] = c->next;
                free(c);
            }
        free(api->ip_counts);
    }
    pthread_cond_destroy(&api->conns_cond);
    pthread_mutex_destroy(&api->conns_lock);
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

/* MHD's hard limits: ours plus room to answer the excess with 503. */
static unsigned hard_connection_limit(int max)
{
    int slack = max / 4 > 16 ? max / 4 : 16;
    return (unsigned)(max + slack);
}

static unsigned hard_per_ip_limit(int max)
{
    if (max <= 0)
        return 0; /* no cap */
    int slack = max / 4 > 4 ? max / 4 : 4;
    return (unsigned)(max + slack);
}

/* http_threads, or one per CPU, at least 4 (a slow request holds only its own) and at most 16 */
static int pool_size(int configured)
{
    if (configured > 0)
        return configured;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 4 ? 4 : n > 16 ? 16 : (int)n;
}

static void stop_sweeper(gand_api *api)
{
    if (!api->sweeper_started)
        return;
    pthread_mutex_lock(&api->conns_lock);
    api->sweeper_stop = true;
    pthread_cond_signal(&api->conns_cond);
    pthread_mutex_unlock(&api->conns_lock);
    pthread_join(api->sweeper, NULL);
    api->sweeper_started = false;
}

gand_api *api_start(const api_options *opt, char *err, size_t err_len)
{
    gand_api *api = calloc(1, sizeof *api);
    if (!api) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&api->auth_lock, NULL);
    pthread_mutex_init(&api->conns_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&api->conns_cond, &ca);
    pthread_condattr_destroy(&ca);
    api->streams_epfd = api->streams_evfd = -1;
    api->max_connections = opt->limits->max_connections;
    api->max_connections_per_ip = opt->limits->max_connections_per_ip;
    api->header_timeout_s = opt->limits->header_timeout_s;
    api->body_timeout_s = opt->limits->body_timeout_s;
    api->threads = pool_size(opt->http_threads);
    api->ip_counts = calloc(IP_BUCKETS, sizeof *api->ip_counts);
    if (!api->ip_counts) {
        snprintf(err, err_len, "out of memory");
        api_free(api);
        return NULL;
    }
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
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) != MHD_YES) {
        snprintf(err, err_len, "this libmicrohttpd was built without epoll support");
        api_free(api);
        return NULL;
    }
    api->reg = opt->registry;
    snprintf(api->web_dir, sizeof api->web_dir, "%s", opt->web_dir ? opt->web_dir : "");
    snprintf(api->javascript_dir, sizeof api->javascript_dir, "%s",
             opt->javascript_dir ? opt->javascript_dir : "");
    api->started = time(NULL);
    api_set_live_limits(api, opt->limits);
    if (pthread_create(&api->sweeper, NULL, sweeper_main, api) != 0) {
        snprintf(err, err_len, "cannot start the connection sweeper thread");
        api_free(api);
        return NULL;
    }
    api->sweeper_started = true;
    if (api_streams_start(api, err, err_len) != 0) {
        stop_sweeper(api);
        api_free(api);
        return NULL;
    }

    MHD_set_panic_func(mhd_panic, NULL);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0);
    /* MHD keeps pointers to the PEM texts: they live in api until api_stop */
    struct MHD_OptionItem tls_options[] = {
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, api->tls_key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, api->tls_cert},
        {MHD_OPTION_END, 0, NULL},
    };
    /* the logger first, so that MHD's complaints about the other options reach it */
    api->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, api, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)opt->listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)api->threads, MHD_OPTION_CONNECTION_LIMIT,
        hard_connection_limit(opt->limits->max_connections), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        hard_per_ip_limit(opt->limits->max_connections_per_ip), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)opt->limits->connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY, MHD_OPTION_NOTIFY_COMPLETED, on_completed, api,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, api, MHD_OPTION_ARRAY, tls_options,
        MHD_OPTION_END);
    if (!api->mhd) {
        snprintf(err, err_len,
                 "libmicrohttpd could not start on the listening socket%s (see the "
                 "log lines above)",
                 tls ? " with TLS: is tls_key the private key of tls_cert, both in PEM" : "");
        api_streams_stop(api);
        api_streams_free(api);
        stop_sweeper(api);
        api_free(api);
        return NULL;
    }
    log_info("http: %d threads (libmicrohttpd's epoll loop), max_connections %d, "
             "max_connections_per_ip %d, header_timeout_s %d, body_timeout_s %d",
             api->threads, api->max_connections, api->max_connections_per_ip, api->header_timeout_s,
             api->body_timeout_s);
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
    atomic_store(&api->stopping, true);
    /* MHD must not be stopped with suspended connections: the streams are resumed and end */
    api_streams_stop(api);
    if (api->mhd)
        MHD_stop_daemon(api->mhd);
    api_streams_free(api);
    stop_sweeper(api);
    api_free(api);
}
