/*
 * api/origin.c — what keeps a web page of another site from driving gand.
 *
 * A browser sends whatever a page asks to 127.0.0.1:8080, and through DNS
 * rebinding a page's own name can resolve to it. So every request's Host must
 * name this server: an IP address (a rebinding page's Host is its own name),
 * localhost, or a name listed in [server] allowed_hosts. And a write (any
 * method but GET and HEAD) is refused when the browser says it comes from
 * another origin: an Origin header that is not this Host, or Sec-Fetch-Site
 * other than same-origin or none. Clients that are not browsers (curl, tools)
 * send neither header and are not affected.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"

/* The host part of a Host value (no port, no brackets), into out; false when malformed. */
static bool host_name(const char *host, char *out, size_t len)
{
    const char *end;
    if (host[0] == '[') { /* [v6]:port */
        end = strchr(host, ']');
        if (!end || (end[1] && end[1] != ':'))
            return false;
        host++;
    } else {
        end = strchr(host, ':');
        if (!end)
            end = host + strlen(host);
    }
    size_t n = (size_t)(end - host);
    if (n == 0 || n >= len)
        return false;
    memcpy(out, host, n);
    out[n] = '\0';
    return true;
}

/* Whether name is one of the comma- or space-separated names of list (case-insensitive). */
static bool listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t k = strcspn(p, ", ");
        if (k == n && k > 0 && strncasecmp(p, name, n) == 0)
            return true;
        p += k;
    }
    return false;
}

bool api_host_allowed(const gand_api *api, const char *host)
{
    char name[256];
    if (!host_name(host, name, sizeof name))
        return false;
    unsigned char addr[16];
    if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1)
        return true;
    return strcasecmp(name, "localhost") == 0 || listed(api->allowed_hosts, name);
}

/* Origin "scheme://host[:port]" names the same host and port as the Host header. */
static bool same_origin(const char *origin, const char *host)
{
    const char *sep = strstr(origin, "://");
    if (!sep)
        return false;
    const char *o = sep + 3;
    return strcasecmp(o, host) == 0;
}

enum MHD_Result api_origin_check(api_request *req, bool *ok)
{
    *ok = false;
    struct MHD_Connection *c = req->conn;
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (host && !api_host_allowed(req->api, host))
        return api_problem(req, 403, "host-not-allowed", NULL,
                           "Host '%s' does not name this server: use its IP address or "
                           "localhost, or list the name in [server] allowed_hosts",
                           API_CLIP(host, 100));
    bool write = strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0;
    if (write) {
        const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
        if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
            return api_problem(req, 403, "cross-origin", NULL,
                               "a %s from another site (Sec-Fetch-Site: %s) is refused: "
                               "gand takes writes from its own pages and from non-browser "
                               "clients only",
                               req->method, API_CLIP(site, 40));
        const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
        if (origin && (!host || !same_origin(origin, host)))
            return api_problem(req, 403, "cross-origin", NULL,
                               "a %s from origin '%s' is refused: gand takes writes from "
                               "its own pages and from non-browser clients only",
                               req->method, API_CLIP(origin, 100));
    }
    *ok = true;
    return MHD_YES;
}
