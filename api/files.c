/*
 * api/files.c — a file on disk as a response, with HTTP validators.
 *
 * The file is opened once and handed to MHD as an fd (MHD sends it with
 * sendfile and closes it), so a checkpoint that is replaced meanwhile (the
 * registry renames a new one over it) is still sent whole: the old inode
 * lives until the fd is closed. ETag defaults to inode-size-mtime, which
 * changes with every such replacement.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/internal.h"

static void http_date(time_t t, char *buf, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Does an If-None-Match list ("*", or comma-separated, possibly weak, tags) match etag? */
static bool etag_matches(const char *header, const char *etag)
{
    const char *p = header;
    size_t elen = strlen(etag);
    const char *bare = etag[0] == 'W' && etag[1] == '/' ? etag + 2 : etag;
    size_t blen = strlen(bare);
    (void)elen;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        size_t n = strcspn(p, ",");
        size_t t = n;
        while (t > 0 && (p[t - 1] == ' ' || p[t - 1] == '\t'))
            t--;
        if (t == blen && strncmp(p, bare, t) == 0) /* weak comparison (RFC 9110 §13.1.2) */
            return true;
        p += n;
    }
    return false;
}

static enum MHD_Result not_modified(api_request *req, const char *etag, const char *last_mod,
                                    const char *const *extra)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return api_send(req, 304, NULL);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    if (last_mod)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, last_mod);
    for (const char *const *h = extra; h && h[0]; h += 2)
        if (strcasecmp(h[0], MHD_HTTP_HEADER_CACHE_CONTROL) == 0)
            MHD_add_response_header(resp, h[0], h[1]);
    return api_send(req, 304, resp);
}

bool api_if_none_match(api_request *req, const char *etag)
{
    const char *inm =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    return inm && etag_matches(inm, etag);
}

enum MHD_Result api_send_not_modified(api_request *req, const char *etag,
                                      const char *const *extra_headers)
{
    return not_modified(req, etag, NULL, extra_headers);
}

enum MHD_Result api_send_file(api_request *req, const char *path, const char *content_type,
                              const char *etag, const char *const *extra_headers)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); /* a FIFO must not block */
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return api_problem(req, 404, "not-found", NULL, "no such file: %s", req->url);
    }
    char tag[128], last_mod[64];
    if (!etag) {
        snprintf(tag, sizeof tag, "\"%llx-%llx-%llx\"", (unsigned long long)st.st_ino,
                 (unsigned long long)st.st_size,
                 (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
                     (unsigned long long)st.st_mtim.tv_nsec);
        etag = tag;
    }
    http_date(st.st_mtime, last_mod, sizeof last_mod);

    const char *inm =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool fresh = false;
    if (inm) {
        fresh = etag_matches(inm, etag);
    } else {
        const char *ims = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        if (ims && strptime(ims, "%a, %d %b %Y %H:%M:%S GMT", &tm))
            fresh = st.st_mtime <= timegm(&tm);
    }
    if (fresh) {
        close(fd);
        return not_modified(req, etag, last_mod, extra_headers);
    }

    struct MHD_Response *resp = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
    if (!resp) {
        close(fd);
        return api_send(req, 200, NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, last_mod);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    for (const char *const *h = extra_headers; h && h[0]; h += 2)
        MHD_add_response_header(resp, h[0], h[1]);
    return api_send(req, 200, resp);
}
