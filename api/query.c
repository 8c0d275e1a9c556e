/*
 * api/query.c — query parameters and request headers.
 *
 * Query parameters follow the rule for body fields: an unknown one is an
 * error (422 naming it), never silently ignored, so a typo such as ?sine=3
 * does not return everything.
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
    snprintf(s->name, sizeof s->name, "%.60s", key);
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
                           "%s must be an integer in %" PRId64 "..%" PRId64 ", got '%.40s'", name,
                           min, max, v);
    }
    *value = n;
    *ok = true;
    return MHD_YES;
}

bool api_content_type_is(api_request *req, const char *const *types)
{
    const char *ct =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; \t");
    for (const char *const *t = types; *t; t++)
        if (strlen(*t) == n && strncasecmp(ct, *t, n) == 0)
            return true;
    return false;
}
