/*
 * api/internal.h — what the files of api/ share: the server's state, the
 * per-request closure, response helpers and the handlers the router calls.
 *
 * Every handler runs on one of libmicrohttpd's pool threads, which serves
 * many connections (server.c says why): it queues exactly one response
 * through api_send* / api_problem* and returns what that returned, and it
 * must not wait for anything that takes long — an event stream suspends its
 * connection instead (sse.c).
 */
#ifndef GAND_API_INTERNAL_H
#define GAND_API_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/problem_body.h"
#include "api/run_json.h"
#include "daemon/registry.h"
#include "gan/error.h"

enum { API_STATUS_MAX = 600 };

struct gand_api {
    struct MHD_Daemon *mhd;
    gand_registry *reg;
    char web_dir[4096];
    char javascript_dir[4096];
    time_t started;
    atomic_long max_body_bytes;
    atomic_int max_event_streams;
    atomic_int max_sample_n;
    atomic_int active_streams;
    atomic_bool stopping;
    atomic_bool worker_stalled;
    atomic_ulong requests_by_status[API_STATUS_MAX];
    /*
     * connections (server.c): each open one is an api_conn in `conns`, counted
     * in total and by client address; past max_connections or
     * max_connections_per_ip → 503. The sweeper thread closes those whose
     * headers or body are late. All under conns_lock.
     */
    atomic_int connections;
    int max_connections;
    int max_connections_per_ip;
    int header_timeout_s, body_timeout_s;
    int threads;
    pthread_mutex_t conns_lock;
    pthread_cond_t conns_cond; /* the sweeper: an earlier deadline, or stop */
    struct api_conn *conns;
    struct ip_count **ip_counts; /* a hash table of IP_BUCKETS chains */
    long long sweeper_wake_ms;   /* when the sweeper wakes next (monotonic), 0 = not planned */
    bool sweeper_stop, sweeper_started;
    pthread_t sweeper;
    /*
     * event streams (sse.c): every open stream, and the thread that resumes
     * the suspended ones; all under streams_lock (after the registry's lock
     * when both are held: the registry's event hook takes it).
     */
    pthread_mutex_t streams_lock;
    struct sse_stream *streams;
    int streams_epfd, streams_evfd; /* the waker's epoll set, and its wake-up eventfd */
    long long streams_wake_ms;      /* the waker's next timed wake-up, 0 = none planned */
    bool streams_stopping, streams_started;
    pthread_t streams_waker;
    /* authentication (auth.c): the token, zero-padded, under auth_lock (SIGHUP replaces it) */
    pthread_mutex_t auth_lock;
    unsigned char token[AUTH_TOKEN_MAX];
    size_t token_len;
    atomic_bool auth_on;
    atomic_bool public_reads;
    atomic_uint token_gen; /* changes whenever the token does (streams opened with another end) */
    /* origins (origin.c): host names a request's Host may carry besides IPs and localhost */
    char allowed_hosts[1024];
    /* TLS (server.c): the PEM texts MHD was started with, wiped and freed by api_stop */
    char *tls_cert;
    char *tls_key;
};

/* Per-request state, kept in MHD's con_cls and freed by the completion callback. */
typedef struct api_request {
    gand_api *api;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    char *body;
    size_t body_len, body_cap;
    bool body_too_large;
    bool responded;
    int status;
    /* how api_auth_check let it through: with the token of token_gen, or without one */
    bool by_token;
    unsigned token_gen;
} api_request;

/* ---- responses (respond.c) ---- */

/* Queue resp with status, count it for /metrics, destroy our reference. */
enum MHD_Result api_send(api_request *req, unsigned status, struct MHD_Response *resp);
/* A JSON body (takes ownership of json, malloc'd). */
enum MHD_Result api_send_json(api_request *req, unsigned status, char *json);
/*
 * A response of JSON text (takes ownership of json, malloc'd; NULL allowed)
 * ending with a newline, with Content-Type and Cache-Control set; NULL when
 * out of memory (json is freed).
 */
struct MHD_Response *api_json_response(char *json, const char *content_type,
                                       const char *cache_control);
/* A body copied from a buffer. */
enum MHD_Result api_send_bytes(api_request *req, unsigned status, const char *content_type,
                               const void *data, size_t len);

/* ---- problems (problem.c): RFC 9457 application/problem+json ---- */

/*
 * type_slug becomes the type URI "urn:gand:problem:<slug>" (NULL: "about:blank").
 * field may be NULL or "". detail is printf-formatted.
 */
enum MHD_Result api_problem(api_request *req, unsigned status, const char *type_slug,
                            const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A registry answer other than REG_OK, with its error (may be NULL). */
enum MHD_Result api_problem_reg(api_request *req, reg_status st, const gan_error *err,
                                const char *run_id);
/* A problem with extra response headers (headers: NULL-terminated name, value pairs). */
enum MHD_Result api_problem_with_headers(api_request *req, unsigned status, const char *type_slug,
                                         const char *const *headers, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/*
 * s as valid UTF-8 of at most max bytes, cut on a character boundary (ending
 * "..." when cut), in buf (size > max); returns buf. API_CLIP(s, 40) gives it
 * a buffer of its own that lives to the end of the enclosing block: for a
 * request's text quoted in a problem's detail.
 */
const char *api_clip(char *buf, size_t size, const char *s, size_t max);
#define API_CLIP(s, max) api_clip((char[(max) + 1]){0}, (max) + 1, (s), (max))
/* 503 with Retry-After: try again in a moment. */
enum MHD_Result api_problem_retry(api_request *req, const char *detail);
/* 405 with the Allow header. */
enum MHD_Result api_problem_method(api_request *req, const char *allow);
const char *api_status_title(unsigned status);

/* ---- request helpers (query.c) ---- */

/* Names of the query parameters an endpoint accepts (NULL-terminated); 422 for any other. */
enum MHD_Result api_check_query(api_request *req, const char *const *allowed, bool *ok);
/*
 * An integer query parameter: *value = def when absent; 422 naming the
 * parameter and the range when it is not an integer in min..max.
 */
enum MHD_Result api_query_int(api_request *req, const char *name, int64_t min, int64_t max,
                              int64_t def, int64_t *value, bool *ok);
/* Content-Type's media type (before ';', lowercase compare) is one of types (NULL-terminated). */
bool api_content_type_is(api_request *req, const char *const *types);
/*
 * A write (not GET, HEAD, OPTIONS) with a body must be JSON: application/json
 * (or, merge_patch, application/merge-patch+json), with no charset or utf-8.
 * Else a 415 naming the type received has been queued, *rc holds its result,
 * and this returns false. A request without a body passes whatever it says.
 */
bool api_write_body_ok(api_request *req, bool merge_patch, enum MHD_Result *rc);
/*
 * The body is one JSON object (handlers_runs.c): else a 400 saying why (empty,
 * a NUL byte, not JSON with the byte offset, trailing data, another value)
 * has been queued, *rc holds its result, and this returns false.
 */
bool api_body_is_json_object(api_request *req, enum MHD_Result *rc);

/*
 * How the request is framed (query.c), checked before anything else: refuse
 * (400, or 501 for a transfer coding other than chunked; *ok false) what a
 * proxy in front could read as another request than libmicrohttpd does — a
 * header name with white space or other bytes that are not a token (as in
 * "Content-Length : 34"), Content-Length twice, Content-Length with
 * Transfer-Encoding — and an HTTP/1.1 request without exactly one Host.
 */
enum MHD_Result api_framing_check(api_request *req, const char *version, bool *ok);

/* ---- authentication (auth.c) ---- */

/*
 * Does the request carry what it needs (api/auth.c says who needs what)?
 * *ok = true: go on. *ok = false: a 401 problem has been queued; return rc.
 */
enum MHD_Result api_auth_check(api_request *req, bool *ok);

/* A monotonic clock in milliseconds (server.c). */
long long api_now_ms(void);

/* ---- event streams (sse.c) ---- */

/* Start the thread that wakes suspended streams, and the registry's hook to it. */
int api_streams_start(gand_api *api, char *err, size_t err_len);
/* End every stream: resume the suspended ones (before MHD_stop_daemon) and stop the thread. */
void api_streams_stop(gand_api *api);
/* After MHD_stop_daemon: release what api_streams_start made. */
void api_streams_free(gand_api *api);
/* The token or public_reads changed: streams that would now be refused end. */
void api_streams_auth_changed(gand_api *api);

/* ---- origins (origin.c) ---- */

/* Whether a Host header value names this server (an IP, localhost, or allowed_hosts). */
bool api_host_allowed(const gand_api *api, const char *host);
/*
 * Refuse (403 problem, *ok false) a Host that does not name this server, and a
 * write that a browser says comes from another origin; else *ok true.
 */
enum MHD_Result api_origin_check(api_request *req, bool *ok);

/* ---- the handlers (router.c dispatches to them) ---- */

typedef enum MHD_Result (*api_handler)(api_request *req, const char *const *params);

enum MHD_Result api_route(api_request *req);

enum MHD_Result h_healthz(api_request *req, const char *const *params);
enum MHD_Result h_metrics(api_request *req, const char *const *params);
enum MHD_Result h_openapi(api_request *req, const char *const *params);
enum MHD_Result h_datasets(api_request *req, const char *const *params);
enum MHD_Result h_presets(api_request *req, const char *const *params);
enum MHD_Result h_preset_get(api_request *req, const char *const *params);
enum MHD_Result h_runs_list(api_request *req, const char *const *params);
enum MHD_Result h_runs_create(api_request *req, const char *const *params);
enum MHD_Result h_run_get(api_request *req, const char *const *params);
enum MHD_Result h_run_patch(api_request *req, const char *const *params);
enum MHD_Result h_run_delete(api_request *req, const char *const *params);
enum MHD_Result h_run_pause(api_request *req, const char *const *params);
enum MHD_Result h_run_resume(api_request *req, const char *const *params);
enum MHD_Result h_run_stop(api_request *req, const char *const *params);
enum MHD_Result h_run_metrics(api_request *req, const char *const *params);
enum MHD_Result h_run_events(api_request *req, const char *const *params);
enum MHD_Result h_run_samples(api_request *req, const char *const *params);
enum MHD_Result h_run_epoch_png(api_request *req, const char *const *params);
enum MHD_Result h_run_checkpoint(api_request *req, const char *const *params);
enum MHD_Result h_run_evaluate(api_request *req, const char *const *params);
enum MHD_Result h_run_evaluations(api_request *req, const char *const *params);
enum MHD_Result h_run_evaluation(api_request *req, const char *const *params);
enum MHD_Result h_run_samples_export(api_request *req, const char *const *params);
enum MHD_Result h_run_generate(api_request *req, const char *const *params);
enum MHD_Result h_run_interpolate(api_request *req, const char *const *params);
enum MHD_Result h_static_index(api_request *req, const char *const *params);
enum MHD_Result h_static_file(api_request *req, const char *const *params);
enum MHD_Result h_javascript_file(api_request *req, const char *const *params);

/* ---- files (files.c): a regular file as the response, with validators ---- */

/*
 * Serve path with content_type. etag (quoted) may be NULL: then one is made
 * from the file's inode, size and mtime. Adds Last-Modified; answers 304 to a
 * matching If-None-Match (or If-Modified-Since when there is no If-None-Match).
 * extra_headers: NULL-terminated name, value pairs. 404 when the file is missing.
 */
enum MHD_Result api_send_file(api_request *req, const char *path, const char *content_type,
                              const char *etag, const char *const *extra_headers);

/* Does the request's If-None-Match match etag (weak comparison)? */
bool api_if_none_match(api_request *req, const char *etag);
/* 304 with the ETag and the Cache-Control among extra_headers. */
enum MHD_Result api_send_not_modified(api_request *req, const char *etag,
                                      const char *const *extra_headers);

/* The embedded api/openapi.json (generated at build time). */
extern const char gand_openapi_json[];
extern const size_t gand_openapi_json_len;

#endif
