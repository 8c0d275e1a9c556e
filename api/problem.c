/*
 * api/problem.c — errors as RFC 9457 problem details (application/problem+json).
 *
 * The status scheme (README "Errors"): 400 the request cannot be read (not
 * JSON, not an object, a bad header); 422 it can, but a named field or query
 * parameter is unknown, of the wrong type or out of range (`field` names it);
 * 404 unknown route, run or epoch; 405 wrong method (Allow lists the right
 * ones); 401 a bearer token is needed and is missing or wrong (api/auth.c);
 * 409 the run's state does not allow it; 413 body over max_body_bytes;
 * 415 body not JSON; 429 a configured limit was reached; 500 an internal failure;
 * 503 (with Retry-After) a moment's wait, e.g. deleting a run still writing its checkpoint.
 *
 * A problem body is always valid UTF-8 JSON: what it quotes from the request (the
 * path, which MHD has percent-decoded, so %FF is the byte 0xFF; a body's keys and
 * strings; a header) may be any bytes, so detail, field and instance are copied with
 * every byte that does not begin a valid UTF-8 sequence replaced by U+FFFD, and
 * quotations are cut on character boundaries (api_clip, gan_utf8_trim).
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "daemon/log.h"
#include "gan/json_text.h"

const char *api_clip(char *buf, size_t size, const char *s, size_t max)
{
    gan_utf8_clip(buf, size, s, max);
    return buf;
}

const char *api_status_title(unsigned status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

static enum MHD_Result send_problem(api_request *req, unsigned status, const char *type_slug,
                                    const char *field, const char *detail, const char *allow,
                                    const char *retry_after, const char *const *headers)
{
    char type[96];
    if (type_slug)
        snprintf(type, sizeof type, "urn:gand:problem:%s", type_slug);
    else
        snprintf(type, sizeof type, "about:blank");
    char *json = api_problem_body(status, api_status_title(status), type, field, detail, req->url);
    struct MHD_Response *resp = api_json_response(json, "application/problem+json", "no-store");
    if (!resp)
        return api_send(req, status, NULL);
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (retry_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    if (status >= 500) { /* clients can cause some (503 busy): one line per 10 s per status */
        static gand_log_limit limits[API_STATUS_MAX - 500];
        gand_log_limited(&limits[status < API_STATUS_MAX ? status - 500 : 0], GAND_LOG_WARNING,
                         "http: %s %s -> %u: %s", req->method, req->url, status, detail);
    }
    return api_send(req, status, resp);
}

enum MHD_Result api_problem(api_request *req, unsigned status, const char *type_slug,
                            const char *field, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    gan_utf8_trim(detail); /* a detail too long was cut: on a character boundary */
    return send_problem(req, status, type_slug, field, detail, NULL, NULL, NULL);
}

enum MHD_Result api_problem_with_headers(api_request *req, unsigned status, const char *type_slug,
                                         const char *const *headers, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    gan_utf8_trim(detail);
    return send_problem(req, status, type_slug, NULL, detail, NULL, NULL, headers);
}

enum MHD_Result api_problem_retry(api_request *req, const char *detail)
{
    return send_problem(req, 503, "busy", NULL, detail, NULL, "2", NULL);
}

enum MHD_Result api_problem_method(api_request *req, const char *allow)
{
    char detail[256];
    snprintf(detail, sizeof detail, "%s is not allowed on %s; allowed: %s", req->method,
             API_CLIP(req->url, 120), allow);
    return send_problem(req, 405, "method-not-allowed", NULL, detail, allow, NULL, NULL);
}

enum MHD_Result api_problem_reg(api_request *req, reg_status st, const gan_error *err,
                                const char *run_id)
{
    const char *msg = err && err->message[0] ? err->message : NULL;
    const char *field = err ? err->field : NULL;
    switch (st) {
    case REG_OK:
        break;
    case REG_INVALID:
        return api_problem(req, 422, "invalid-field", field, "%s",
                           msg ? msg : "the request is not valid");
    case REG_NOT_FOUND:
        if (msg)
            return api_problem(req, 404, "not-found", NULL, "%s", msg);
        return api_problem(req, 404, "not-found", NULL, "no run with id '%s'",
                           run_id ? run_id : "");
    case REG_CONFLICT:
        return api_problem(req, 409, "state-conflict", NULL, "%s",
                           msg ? msg : "the run's state does not allow this");
    case REG_LIMIT:
        return api_problem(req, 429, "limit-reached", field, "%s",
                           msg ? msg : "a configured limit was reached");
    case REG_INTERNAL:
        return api_problem(req, 500, "internal", NULL, "%s",
                           msg ? msg : "internal error (see the daemon's log)");
    case REG_STORAGE:
        return api_problem(req, 507, "insufficient-storage", NULL, "%s",
                           msg ? msg : "the state directory is full");
    }
    return api_problem(req, 500, "internal", NULL, "unexpected registry status %d", (int)st);
}
