/*
 * api/sse.c — GET /api/v1/runs/{id}/events: Server-Sent Events.
 *
 * The stream is an MHD content-reader callback. It never waits on its pool
 * thread (server.c serves many connections on each): when it has nothing to
 * send it suspends its connection (MHD_suspend_connection, then returns 0,
 * which MHD 0.9.75 would otherwise call again at once) and one thread, the
 * waker, resumes it when
 *   - its run has news: the registry's event hook (registry_set_event_hook)
 *     marks the run's streams, an event was added or the run's stream may
 *     have ended;
 *   - a keep-alive is due: 15 s without a write, then a ": keep-alive"
 *     comment so that proxies keep the connection open;
 *   - the client hung up: while suspended, MHD does not watch the socket, so
 *     the waker does (EPOLLRDHUP in its own epoll set) and the stream ends;
 *   - the token changed (SIGHUP) so that the stream's request would now be
 *     refused: it sends the comment ": the bearer token changed" and ends;
 *   - the daemon stops: every stream ends (api_stop resumes them all before
 *     MHD_stop_daemon, which must not find a suspended connection).
 * Nothing polls: the waker sleeps in epoll_wait until the next keep-alive.
 *
 * Only the waker resumes a connection, and only the content reader suspends
 * one, both under streams_lock, with the flags that say why (news, peer_gone,
 * revoked) set under the same lock: a reader clears `news` before it looks
 * at the run, and suspends only when nothing was marked meanwhile, so no
 * wake-up is lost.
 *
 * Replay: `Last-Event-ID` (what EventSource sends when it reconnects) or
 * ?last_event_id=N; events with a larger sequence number are sent first. The
 * stream ends after the run reaches a final state and its last event is sent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/internal.h"
#include "daemon/log.h"

enum { KEEPALIVE_MS = 15000, RETRY_MS = 3000 };

typedef struct sse_stream {
    gand_api *api;
    struct MHD_Connection *conn;
    int fd;
    char id[128];
    uint64_t after;
    char *pending;
    size_t pending_len, pending_off;
    bool ended;   /* the run's last event is in pending: end after it */
    bool closing; /* the token changed: end after pending */
    long long last_write_ms;
    bool by_token; /* opened with the token of token_gen (else without one) */
    unsigned token_gen;
    /* under api->streams_lock */
    struct sse_stream *prev, *next;
    bool suspended; /* MHD_suspend_connection called, MHD_resume_connection not yet */
    bool watched;   /* fd is in the waker's epoll set */
    bool news;      /* the run published something since the reader last looked */
    bool peer_gone; /* the client hung up while suspended */
    bool revoked;   /* the token changed: the stream's request would now be refused */
} sse_stream;

static void wake_waker(gand_api *api)
{
    uint64_t one = 1;
    ssize_t w = write(api->streams_evfd, &one, sizeof one); /* EAGAIN: already pending */
    (void)w;
}

static bool peer_closed(int fd)
{
    if (fd < 0)
        return false;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
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

/* Would the stream's request be let through now (api/auth.c's rules for a read)? */
static bool still_allowed(gand_api *api, const sse_stream *s)
{
    if (!atomic_load(&api->auth_on) || atomic_load(&api->public_reads))
        return true;
    return s->by_token && s->token_gen == atomic_load(&api->token_gen);
}

/* streams_lock held; only the waker calls it */
static void resume_locked(gand_api *api, sse_stream *s)
{
    if (s->watched) {
        epoll_ctl(api->streams_epfd, EPOLL_CTL_DEL, s->fd, NULL);
        s->watched = false;
    }
    s->suspended = false;
    MHD_resume_connection(s->conn);
}

static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    sse_stream *s = cls;
    gand_api *api = s->api;
    for (;;) {
        if (s->pending_off < s->pending_len) {
            size_t n = s->pending_len - s->pending_off;
            if (n > max)
                n = max;
            memcpy(buf, s->pending + s->pending_off, n);
            s->pending_off += n;
            s->last_write_ms = api_now_ms();
            return (ssize_t)n;
        }
        set_pending(s, NULL);
        if (s->ended || s->closing)
            return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&api->streams_lock);
        bool stopping = api->streams_stopping, gone = s->peer_gone, revoked = s->revoked;
        s->news = false; /* what is marked from now on is looked at next time */
        pthread_mutex_unlock(&api->streams_lock);
        if (stopping)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (gone || peer_closed(s->fd))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (revoked) {
            log_info("http: event stream of run %s ended: the bearer token changed", s->id);
            set_pending(s, strdup(": the bearer token changed: this stream ends; open it again "
                                  "with the new token\n\n"));
            if (!s->pending)
                return MHD_CONTENT_READER_END_OF_STREAM;
            s->closing = true;
            continue;
        }
        if (api_now_ms() - s->last_write_ms >= KEEPALIVE_MS) {
            set_pending(s, strdup(": keep-alive\n\n"));
            if (!s->pending)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        char *text = NULL;
        uint64_t last = s->after;
        bool ended = false;
        reg_status st = registry_events(api->reg, s->id, s->after, 0, &text, &last, &ended);
        if (st != REG_OK) { /* the run was deleted meanwhile */
            free(text);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        s->ended = ended;
        if (text) {
            s->after = last;
            set_pending(s, text);
            continue;
        }
        if (ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        /* nothing to send: suspend, unless something was marked since we looked */
        pthread_mutex_lock(&api->streams_lock);
        if (s->news || s->peer_gone || s->revoked || api->streams_stopping) {
            pthread_mutex_unlock(&api->streams_lock);
            continue;
        }
        struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = s};
        s->watched = s->fd >= 0 && epoll_ctl(api->streams_epfd, EPOLL_CTL_ADD, s->fd, &ev) == 0;
        MHD_suspend_connection(s->conn);
        s->suspended = true;
        long long due = s->last_write_ms + KEEPALIVE_MS;
        bool earlier = !api->streams_wake_ms || due < api->streams_wake_ms;
        pthread_mutex_unlock(&api->streams_lock);
        if (earlier)
            wake_waker(api);
        return 0;
    }
}

static void *waker_main(void *arg)
{
    gand_api *api = arg;
    struct epoll_event evs[64];
    for (;;) {
        pthread_mutex_lock(&api->streams_lock);
        bool stopping = api->streams_stopping;
        long long now = api_now_ms(), next = 0;
        for (sse_stream *s = api->streams; s; s = s->next) {
            if (!s->suspended)
                continue;
            long long due = s->last_write_ms + KEEPALIVE_MS;
            if (stopping || s->news || s->peer_gone || s->revoked || due <= now)
                resume_locked(api, s);
            else if (!next || due < next)
                next = due;
        }
        api->streams_wake_ms = next;
        pthread_mutex_unlock(&api->streams_lock);
        if (stopping)
            return NULL; /* nothing suspends any more */
        int timeout = -1;
        if (next) {
            long long ms = next - api_now_ms();
            timeout = ms < 0 ? 0 : ms > 60000 ? 60000 : (int)ms;
        }
        int n = epoll_wait(api->streams_epfd, evs, (int)(sizeof evs / sizeof evs[0]), timeout);
        for (int i = 0; i < n; i++) {
            if (!evs[i].data.ptr) {
                uint64_t v;
                ssize_t r = read(api->streams_evfd, &v, sizeof v);
                (void)r;
                continue;
            }
            /* a watched stream stays suspended, and so allocated, until this thread resumes it */
            sse_stream *s = evs[i].data.ptr;
            pthread_mutex_lock(&api->streams_lock);
            s->peer_gone = true;
            pthread_mutex_unlock(&api->streams_lock);
        }
    }
}

/* The registry's event hook: called with the registry's lock held; it only marks. */
static void on_run_event(void *ctx, const char *run_id)
{
    gand_api *api = ctx;
    bool wake = false;
    pthread_mutex_lock(&api->streams_lock);
    for (sse_stream *s = api->streams; s; s = s->next)
        if (strcmp(s->id, run_id) == 0) {
            s->news = true;
            wake |= s->suspended;
        }
    pthread_mutex_unlock(&api->streams_lock);
    if (wake)
        wake_waker(api);
}

void api_streams_auth_changed(gand_api *api)
{
    if (!api->streams_started)
        return;
    bool wake = false;
    pthread_mutex_lock(&api->streams_lock);
    for (sse_stream *s = api->streams; s; s = s->next)
        if (!s->revoked && !still_allowed(api, s)) {
            s->revoked = true;
            wake |= s->suspended;
        }
    pthread_mutex_unlock(&api->streams_lock);
    if (wake)
        wake_waker(api);
}

int api_streams_start(gand_api *api, char *err, size_t err_len)
{
    pthread_mutex_init(&api->streams_lock, NULL);
    api->streams_epfd = epoll_create1(EPOLL_CLOEXEC);
    api->streams_evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (api->streams_epfd < 0 || api->streams_evfd < 0 ||
        epoll_ctl(api->streams_epfd, EPOLL_CTL_ADD, api->streams_evfd, &ev) != 0 ||
        pthread_create(&api->streams_waker, NULL, waker_main, api) != 0) {
        snprintf(err, err_len, "cannot set up event streams: %s", strerror(errno));
        api_streams_free(api);
        return -1;
    }
    api->streams_started = true;
    registry_set_event_hook(api->reg, on_run_event, api);
    return 0;
}

void api_streams_stop(gand_api *api)
{
    if (!api->streams_started)
        return;
    registry_set_event_hook(api->reg, NULL, NULL);
    pthread_mutex_lock(&api->streams_lock);
    api->streams_stopping = true;
    pthread_mutex_unlock(&api->streams_lock);
    wake_waker(api);
    pthread_join(api->streams_waker, NULL); /* it resumed every suspended stream */
    api->streams_started = false;
}

void api_streams_free(gand_api *api)
{
    if (api->streams_epfd >= 0)
        close(api->streams_epfd);
    if (api->streams_evfd >= 0)
        close(api->streams_evfd);
    api->streams_epfd = api->streams_evfd = -1;
    pthread_mutex_destroy(&api->streams_lock);
}

static void free_stream(void *cls)
{
    sse_stream *s = cls;
    gand_api *api = s->api;
    pthread_mutex_lock(&api->streams_lock);
    if (s->watched) /* not while suspended (MHD frees a response only after resuming), but: */
        epoll_ctl(api->streams_epfd, EPOLL_CTL_DEL, s->fd, NULL);
    if (s->prev)
        s->prev->next = s->next;
    else
        api->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&api->streams_lock);
    atomic_fetch_sub(&api->active_streams, 1);
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
    gand_api *api = req->api;
    s->api = api;
    s->conn = req->conn;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    s->fd = ci ? ci->connect_fd : -1;
    snprintf(s->id, sizeof s->id, "%s", id);
    s->after = last;
    s->ended = ended;
    s->by_token = req->by_token;
    s->token_gen = req->token_gen;
    set_pending(s, first);
    s->last_write_ms = api_now_ms();
    pthread_mutex_lock(&api->streams_lock);
    s->next = api->streams;
    if (api->streams)
        api->streams->prev = s;
    api->streams = s;
    /* a token that changed between api_auth_check and here */
    s->revoked = !still_allowed(api, s);
    pthread_mutex_unlock(&api->streams_lock);

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
