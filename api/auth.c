/*
 * api/auth.c — bearer-token authentication (api/auth.h): reading the token
 * file, the constant-time comparison, and the check the server runs on
 * every request before it reads the body or routes it.
 *
 * Who needs the token (when one is configured):
 *   - always public: GET/HEAD /healthz (liveness probes), the dashboard's
 *     files (/, /static/..., /javascript/...) so that a browser can load the
 *     page that asks for the token, and /api/v1/openapi.json (a description
 *     of the API, also installed in share/gand);
 *   - reads (GET, HEAD, OPTIONS) of everything else: the token, unless
 *     [server] public_reads = true;
 *   - writes (POST, PATCH, DELETE, anything else): always the token, and only
 *     in the Authorization header — ?access_token= is accepted for reads only,
 *     so a token that leaks through a URL (a log, the browser history) still
 *     cannot be replayed by a cross-site form.
 *
 * Answers (RFC 6750 §3): no token → 401 with `WWW-Authenticate: Bearer
 * realm="gand"`; a wrong or malformed one → 401 with error="invalid_token" (or
 * "invalid_request"). A wrong token is 401, not 403: the client must
 * authenticate again, and the dashboard asks for the token on 401.
 *
 * A new token (SIGHUP) applies to every request from then on, and to the
 * event streams already open: one whose request would now be refused (opened
 * with the old token, or without one when reads are no longer public) ends
 * (api/sse.c).
 */
#include "api/auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/internal.h"
#include "daemon/log.h"

/* ---- the token file ---------------------------------------------------------------------- */

int auth_read_token_file(const char *path, char *token, size_t token_cap, size_t *len, char *warn,
                         size_t warn_len, char *err, size_t err_len)
{
    warn[0] = '\0';
    if (token_cap <= AUTH_TOKEN_MAX) {
        snprintf(err, err_len, "token_file %s: internal error (buffer too small)", path);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); /* a FIFO must not block */
    if (fd < 0) {
        snprintf(err, err_len, "token_file %s: cannot open it: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "token_file %s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH))
        snprintf(warn, warn_len,
                 "token_file %s can be %s by its group or by others (mode %04o): anyone who "
                 "reads it controls the API; chmod 600 it",
                 path, st.st_mode & (S_IWGRP | S_IWOTH) ? "written" : "read",
                 (unsigned)(st.st_mode & 07777));
    char buf[AUTH_TOKEN_MAX + 64];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, err_len, "token_file %s: cannot read it: %s", path, strerror(errno));
            close(fd);
            explicit_bzero(buf, sizeof buf);
            return -1;
        }
        if (n == 0 || (got += (size_t)n) == sizeof buf - 1)
            break;
    }
    close(fd);
    buf[got] = '\0';
    size_t n = strcspn(buf, "\r\n"); /* the first line */
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    int rc = 0;
    if (n < AUTH_TOKEN_MIN || n > AUTH_TOKEN_MAX) {
        snprintf(err, err_len,
                 "token_file %s: the token (its first line) must be %d..%d characters, got %zu%s",
                 path, AUTH_TOKEN_MIN, AUTH_TOKEN_MAX, n,
                 n < AUTH_TOKEN_MIN ? " (make one with: head -c 32 /dev/urandom | base64)" : "");
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (buf[i] <= 0x20 || buf[i] >= 0x7f) {
            snprintf(err, err_len,
                     "token_file %s: the token must be visible ASCII characters (no spaces), "
                     "character %zu is not",
                     path, i + 1);
            rc = -1;
        }
    if (rc == 0) {
        memcpy(token, buf, n);
        token[n] = '\0';
        *len = n;
    }
    explicit_bzero(buf, sizeof buf);
    return rc;
}

bool auth_token_equal(const unsigned char *expected, size_t elen, const char *given, size_t glen)
{
    unsigned char padded[AUTH_TOKEN_MAX];
    memset(padded, 0, sizeof padded);
    size_t copy = glen <= AUTH_TOKEN_MAX ? glen : 0;
    memcpy(padded, given, copy);
    /* every byte, no early exit; volatile keeps the compiler from making one */
    volatile unsigned char diff = 0;
    for (size_t i = 0; i < AUTH_TOKEN_MAX; i++)
        diff |= (unsigned char)(padded[i] ^ expected[i]);
    explicit_bzero(padded, sizeof padded);
    return diff == 0 && elen == glen && elen > 0;
}

/* ---- the API's side ------------------------------------------------------------------------ */

void api_set_auth(gand_api *api, const char *token, size_t len, bool public_reads)
{
    if (!token || len > AUTH_TOKEN_MAX)
        len = 0;
    pthread_mutex_lock(&api->auth_lock);
    bool same = len == api->token_len && (len == 0 || memcmp(api->token, token, len) == 0);
    bool changed = !same || public_reads != atomic_load(&api->public_reads);
    if (!same) {
        explicit_bzero(api->token, sizeof api->token);
        memcpy(api->token, token ? token : "", len);
        api->token_len = len;
        atomic_fetch_add(&api->token_gen, 1); /* streams opened with the old token end */
    }
    atomic_store(&api->public_reads, public_reads);
    atomic_store(&api->auth_on, api->token_len > 0);
    pthread_mutex_unlock(&api->auth_lock);
    if (changed)
        api_streams_auth_changed(api);
}

static bool is_read(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
           strcmp(method, "OPTIONS") == 0;
}

static bool always_public(const char *method, const char *url)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return false;
    return strcmp(url, "/healthz") == 0 || strcmp(url, "/") == 0 ||
           strncmp(url, "/static/", 8) == 0 || strncmp(url, "/javascript/", 12) == 0 ||
           strcmp(url, "/api/v1/openapi.json") == 0;
}

static bool token_matches(gand_api *api, const char *given, size_t glen, unsigned *gen)
{
    pthread_mutex_lock(&api->auth_lock);
    bool ok = auth_token_equal(api->token, api->token_len, given, glen);
    *gen = atomic_load(&api->token_gen);
    pthread_mutex_unlock(&api->auth_lock);
    return ok;
}

static void peer(api_request *req, char *buf, size_t len)
{
    snprintf(buf, len, "?");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
                  (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                  (socklen_t)len);
}

static enum MHD_Result unauthorized(api_request *req, const char *error, const char *detail)
{
    char challenge[128];
    if (error)
        snprintf(challenge, sizeof challenge, "Bearer realm=\"gand\", error=\"%s\"", error);
    else
        snprintf(challenge, sizeof challenge, "Bearer realm=\"gand\"");
    if (error) { /* anyone can send bad tokens: at most one line per 10 s */
        static gand_log_limit refused;
        char from[64];
        peer(req, from, sizeof from);
        gand_log_limited(&refused, GAND_LOG_NOTICE, "http: %s %s from %s refused: %s", req->method,
                         req->url, from, error);
    }
    const char *const headers[] = {MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge, NULL};
    return api_problem_with_headers(req, 401, "unauthorized", headers, "%s", detail);
}

enum MHD_Result api_auth_check(api_request *req, bool *ok)
{
    gand_api *api = req->api;
    *ok = true;
    if (!atomic_load(&api->auth_on) || always_public(req->method, req->url))
        return MHD_YES;
    bool read = is_read(req->method);
    if (read && atomic_load(&api->public_reads))
        return MHD_YES;
    *ok = false;
    const char *hdr =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *given = NULL;
    size_t glen = 0;
    if (hdr) {
        if (strncasecmp(hdr, "Bearer", 6) != 0 || (hdr[6] != ' ' && hdr[6] != '\t'))
            return unauthorized(req, "invalid_request",
                                "the Authorization header must be 'Bearer <token>'");
        given = hdr + 6;
        while (*given == ' ' || *given == '\t')
            given++;
        glen = strlen(given);
        while (glen > 0 && (given[glen - 1] == ' ' || given[glen - 1] == '\t'))
            glen--;
    } else {
        const char *q =
            MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "access_token");
        if (q && !read)
            return unauthorized(req, "invalid_request",
                                "?access_token= is accepted for reads (GET) only; send "
                                "'Authorization: Bearer <token>' with this request");
        if (q) {
            given = q;
            glen = strlen(q);
        }
    }
    if (!given)
        return unauthorized(req, NULL,
                            "this daemon needs a bearer token: send 'Authorization: Bearer "
                            "<token>' (the token is in the file its token_file names)");
    unsigned gen;
    if (!token_matches(api, given, glen, &gen))
        return unauthorized(req, "invalid_token", "the bearer token is not valid");
    req->by_token = true;
    req->token_gen = gen;
    *ok = true;
    return MHD_YES;
}
