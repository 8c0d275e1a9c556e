/*
 * api/route_match.c — matching a request path against a route pattern. Pure
 * (no libmicrohttpd), so the fuzz target tests/fuzz/fuzz_route.c runs it alone.
 */
#include "api/route_match.h"

#include <string.h>

/*
 * Match path against pattern; captured parameters are copied into buf (NUL-
 * separated) and pointed to by params. Returns false on no match.
 */
bool api_path_match(const char *pattern, const char *path, char *buf, size_t buf_len,
                    const char **params)
{
    int np = 0;
    size_t used = 0;
    const char *p = pattern, *u = path;
    if (*p != '/' || *u != '/')
        return false;
    p++;
    u++;
    for (;;) {
        size_t plen = strcspn(p, "/"), ulen = strcspn(u, "/");
        if (plen == 2 && strncmp(p, "**", 2) == 0) {
            size_t rest = strlen(u);
            if (rest == 0 || used + rest + 1 > buf_len || np == API_ROUTE_MAX_PARAMS)
                return false;
            memcpy(buf + used, u, rest + 1);
            params[np++] = buf + used;
            return true;
        }
        if (plen > 1 && p[0] == '{') {
            const char *close = memchr(p, '}', plen);
            size_t suffix = close ? plen - (size_t)(close + 1 - p) : 0;
            if (!close || ulen <= suffix || strncmp(u + ulen - suffix, close + 1, suffix) != 0)
                return false;
            size_t cap = ulen - suffix;
            if (used + cap + 1 > buf_len || np == API_ROUTE_MAX_PARAMS)
                return false;
            memcpy(buf + used, u, cap);
            buf[used + cap] = '\0';
            params[np++] = buf + used;
            used += cap + 1;
        } else if (plen != ulen || strncmp(p, u, plen) != 0) {
            return false;
        }
        p += plen;
        u += ulen;
        if (*p == '\0' || *u == '\0')
            return *p == '\0' && *u == '\0';
        p++; /* both at '/' */
        u++;
    }
}
