/*
 * api/query.c — query parameters and request headers.
 *
 * Query parameters follow the rule for body fields: an unknown one is an
 * error (422 naming it), never silently ignored, so a typo such as ?sine=3
 * does not return everything.
 *
 * A write's body is JSON or nothing: any request but GET, HEAD and OPTIONS that
 * carries a body must say Content-Type: application/json (a PATCH may say
 * application/merge-patch+json), with no charset or charset=utf-8; else 415
 * naming what it said. A form or text/plain post, which a page of any site can
 * make a browser send without asking, never reaches a handler.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"
#include "api/parse_int.h"

typedef struct unknown_scan {
    const char *const *allowed;
    char name[64];
    bool found;
} unknown_scan;

static enum MHD_Result scan_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    (void)value;
    unknown_scan *s = cls;
    if (strcmp(key, "access_token") == 0) /* the bearer token, checked by api/auth.c */
        return MHD_YES;
    for (const char *const *a = s->allowed; *a; a++)
        if (strcmp(*a, key) == 0)
            return MHD_YES;
    api_clip(s->name, sizeof s->name, key, 60); /* UTF-8, cut on a character boundary */
    s->found = true;
    return MHD_NO;
}

enum MHD_Result api_check_query(api_request *req, const char *const *allowed, bool *ok)
{
    unknown_scan s = {.allowed = allowed};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, scan_arg, &s);
    if (!s.found) {
        *ok = true;
        return MHD_YES;
    }
    *ok = false;
    char known[256] = "";
    size_t used = 0;
    for (const char *const *a = allowed; *a && used < sizeof known; a++)
        used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", *a);
    return api_problem(
        req, 422, "invalid-field", s.name, "unknown query parameter '%s'; %s%s", s.name,
        used ? "this endpoint accepts: " : "this endpoint takes no parameters", known);
}

enum MHD_Result api_query_int(api_request *req, const char *name, int64_t min, int64_t max,
                              int64_t def, int64_t *value, bool *ok)
{
    const char *v = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!v) {
        *value = def;
        *ok = true;
        return MHD_YES;
    }
    int64_t n;
    if (!api_parse_int64(v, min, max, &n)) {
        *ok = false;
        return api_problem(req, 422, "invalid-field", name,
                           "%s must be an integer in %" PRId64 "..%" PRId64 ", got '%s'", name, min,
                           max, API_CLIP(v, 40));
    }
    *value = n;
    *ok = true;
    return MHD_YES;
}

/* s[0..n) without the spaces and tabs around it: *start, *len. */
static void trim(const char *s, size_t n, const char **start, size_t *len)
{
    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *start = s;
    *len = n;
}

/* Is ct's charset parameter, if it has one, utf-8? (RFC 8259: JSON is UTF-8.) */
static bool charset_ok(const char *ct, char *charset, size_t size)
{
    charset[0] = '\0';
    for (const char *p = strchr(ct, ';'); p; p = strchr(p + 1, ';')) {
        size_t n = strcspn(p + 1, ";");
        const char *eq = memchr(p + 1, '=', n);
        if (!eq)
            continue;
        const char *name, *value;
        size_t nlen, vlen;
        trim(p + 1, (size_t)(eq - (p + 1)), &name, &nlen);
        if (nlen != 7 || strncasecmp(name, "charset", 7) != 0)
            continue;
        trim(eq + 1, n - (size_t)(eq - (p + 1)) - 1, &value, &vlen);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"')
            value++, vlen -= 2;
        snprintf(charset, size, "%.*s", (int)vlen, value);
        if (vlen != 5 || strncasecmp(value, "utf-8", 5) != 0)
            return false;
    }
    return true;
}

bool api_write_body_ok(api_request *req, bool merge_patch, enum MHD_Result *rc)
{
    static const char *const json[] = {"application/json", NULL};
    static const char *const patch[] = {"application/json", "application/merge-patch+json", NULL};
    bool write = strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0 &&
                 strcmp(req->method, "OPTIONS") != 0;
    if (!write || req->body_len == 0)
        return true;
    const char *ct =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *want = merge_patch ? "Content-Type: application/merge-patch+json (RFC 7396) or "
                                     "application/json"
                                   : "Content-Type: application/json";
    char charset[48];
    if (!ct) {
        *rc = api_problem(req, 415, "unsupported-media-type", NULL,
                          "a %s with a body must say what it is: send it as %s (the request has "
                          "no Content-Type)",
                          req->method, want);
        return false;
    }
    if (!api_content_type_is(req, merge_patch ? patch : json)) {
        const char *type;
        size_t n;
        trim(ct, strcspn(ct, ";"), &type, &n);
        char got[64];
        snprintf(got, sizeof got, "%.*s", (int)(n < 60 ? n : 60), type);
        *rc = api_problem(req, 415, "unsupported-media-type", NULL,
                          "a %s body must be sent as %s, got Content-Type '%s'", req->method, want,
                          API_CLIP(got, 60));
        return false;
    }
    if (!charset_ok(ct, charset, sizeof charset)) {
        *rc = api_problem(req, 415, "unsupported-media-type", NULL,
                          "JSON is UTF-8 (RFC 8259): charset '%s' is not accepted; send no charset "
                          "or charset=utf-8",
                          API_CLIP(charset, 40));
        return false;
    }
    return true;
}

/* RFC 9110 tchar: what a header name is made of. */
static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

typedef struct framing_scan {
    char bad_name[48]; /* the first header name that is not a token */
    int content_length, transfer_encoding, host;
    const char *te;
} framing_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    framing_scan *s = cls;
    bool token = key[0] != '\0';
    for (const char *p = key; *p && token; p++)
        token = is_tchar((unsigned char)*p);
    if (!token && !s->bad_name[0]) {
        /* show it with its white space visible: "Content-Length " */
        char shown[48];
        api_clip(shown, sizeof shown, key, 40);
        snprintf(s->bad_name, sizeof s->bad_name, "%s", shown[0] ? shown : "(empty)");
    }
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        s->content_length++;
    if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        s->transfer_encoding++;
        s->te = value;
    }
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
        s->host++;
    return MHD_YES;
}

enum MHD_Result api_framing_check(api_request *req, const char *version, bool *ok)
{
    static const char *const close_headers[] = {MHD_HTTP_HEADER_CONNECTION, "close", NULL};
    framing_scan s = {{0}, 0, 0, 0, NULL};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, scan_header, &s);
    *ok = false;
    if (s.bad_name[0])
        return api_problem_with_headers(
            req, 400, "invalid-header", close_headers,
            "the header name '%s' is not a token (RFC 9110): no white space before the colon, "
            "no control or separator characters",
            s.bad_name);
    if (s.content_length > 1)
        return api_problem_with_headers(req, 400, "invalid-header", close_headers,
                                        "Content-Length appears %d times; send it once",
                                        s.content_length);
    if (s.transfer_encoding > 0 && s.content_length > 0)
        return api_problem_with_headers(
            req, 400, "invalid-header", close_headers,
            "Content-Length and Transfer-Encoding together are refused (RFC 9112 6.3): send one");
    if (s.transfer_encoding > 0) {
        const char *te;
        size_t n;
        trim(s.te, strlen(s.te), &te, &n);
        if (s.transfer_encoding > 1 || n != 7 || strncasecmp(te, "chunked", 7) != 0)
            return api_problem_with_headers(
                req, 501, "invalid-header", close_headers,
                "the only transfer coding gand reads is chunked; got Transfer-Encoding '%s'%s",
                API_CLIP(s.te, 40), s.transfer_encoding > 1 ? " and another" : "");
    }
    bool http11 = version && strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
    if (s.host > 1 || (http11 && s.host == 0))
        return api_problem_with_headers(req, 400, "invalid-header", close_headers,
                                        "an HTTP/1.1 request needs exactly one Host header, got %d",
                                        s.host);
    *ok = true;
    return MHD_YES;
}

bool api_content_type_is(api_request *req, const char *const *types)
{
    const char *ct =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct)
        return false;
    size_t n;
    trim(ct, strcspn(ct, ";"), &ct, &n);
    for (const char *const *t = types; *t; t++)
        if (strlen(*t) == n && strncasecmp(ct, *t, n) == 0)
            return true;
    return false;
}
