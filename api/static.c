/*
 * api/static.c — the dashboard's files: GET / (index.html) and /static/<path>
 * from web_dir, and /javascript/<path> from javascript_dir (the system's
 * packaged libraries, e.g. Debian's /usr/share/javascript/chart.js/).
 *
 * Files come from those directories only. A path is refused (404) when any segment is
 * empty, ".", "..", starts with a dot or holds a backslash, and again when
 * its real path (symbolic links resolved) is not inside web_dir's real path.
 * Responses carry ETag and Last-Modified and are revalidated (no-cache).
 * Query strings are ignored here, so ?v=<hash> cache busting works.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/internal.h"

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"webmanifest", "application/manifest+json"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"ico", "image/vnd.microsoft.icon"},
    {"jpg", "image/jpeg"},
    {"webp", "image/webp"},
    {"woff2", "font/woff2"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
};

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

static bool safe_relative(const char *rel)
{
    if (!rel[0] || strchr(rel, '\\'))
        return false;
    const char *p = rel;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 0 || p[0] == '.') /* empty, ".", "..", and hidden files */
            return false;
        p += n;
        if (*p == '/')
            p++;
        else
            break;
    }
    return rel[strlen(rel) - 1] != '/';
}

/* rel under root, if it is a regular file really inside root. */
static enum MHD_Result serve_from(api_request *req, const char *root, const char *rel)
{
    if (!safe_relative(rel))
        return api_problem(req, 404, "not-found", NULL, "no such file: %s", req->url);
    char joined[PATH_MAX], real[PATH_MAX], real_root[PATH_MAX];
    if ((size_t)snprintf(joined, sizeof joined, "%s/%s", root, rel) >= sizeof joined ||
        !realpath(root, real_root) || !realpath(joined, real))
        return api_problem(req, 404, "not-found", NULL, "no such file: %s", req->url);
    size_t rl = strlen(real_root);
    if (strncmp(real, real_root, rl) != 0 || real[rl] != '/')
        return api_problem(req, 404, "not-found", NULL, "no such file: %s", req->url);
    static const char *const headers[] = {MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache", NULL};
    return api_send_file(req, real, content_type(real), NULL, headers);
}

static enum MHD_Result serve(api_request *req, const char *rel)
{
    if (!req->api->web_dir[0])
        return api_problem(req, 404, "not-found", NULL,
                           "no dashboard files are installed (web_dir is not set and none was "
                           "found)");
    return serve_from(req, req->api->web_dir, rel);
}

enum MHD_Result h_static_index(api_request *req, const char *const *params)
{
    (void)params;
    const char *web = req->api->web_dir;
    char path[PATH_MAX];
    if (web[0] && (size_t)snprintf(path, sizeof path, "%s/index.html", web) < sizeof path &&
        access(path, R_OK) != 0)
        return api_problem(req, 404, "not-found", NULL,
                           "the dashboard is not installed (%s has no index.html); the API is "
                           "under /api/v1, described by /api/v1/openapi.json",
                           web);
    return serve(req, "index.html");
}

enum MHD_Result h_static_file(api_request *req, const char *const *params)
{
    return serve(req, params[0]);
}

enum MHD_Result h_javascript_file(api_request *req, const char *const *params)
{
    if (!req->api->javascript_dir[0])
        return api_problem(req, 404, "not-found", NULL,
                           "no javascript_dir is set (Debian: /usr/share/javascript, from the "
                           "libjs-* packages)");
    return serve_from(req, req->api->javascript_dir, params[0]);
}
