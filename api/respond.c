/*
 * api/respond.c — queueing responses, and counting them by status for /metrics.
 *
 * Every response of the API goes through api_send, so the per-status counters
 * (gand_http_requests_total{code}) and the debug access log see all of them.
 */
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "daemon/log.h"

enum MHD_Result api_send(api_request *req, unsigned status, struct MHD_Response *resp)
{
    if (!resp) {
        log_err("http: cannot create a response for %s %s", req->method, req->url);
        return MHD_NO; /* MHD closes the connection */
    }
    enum MHD_Result rc = MHD_queue_response(req->conn, status, resp);
    MHD_destroy_response(resp);
    if (rc == MHD_YES) {
        req->responded = true;
        req->status = (int)status;
        if (status < API_STATUS_MAX)
            atomic_fetch_add(&req->api->requests_by_status[status], 1);
        log_debug("http: %s %s -> %u", req->method, req->url, status);
    }
    return rc;
}

struct MHD_Response *api_json_response(char *json, const char *content_type,
                                       const char *cache_control)
{
    if (!json)
        return NULL;
    /* end with a newline, so that `curl URL` leaves the shell prompt on a line of its own */
    size_t len = strlen(json);
    char *text = realloc(json, len + 2);
    if (!text) {
        free(json);
        return NULL;
    }
    text[len] = '\n';
    text[len + 1] = '\0';
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len + 1, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache_control);
    return resp;
}

enum MHD_Result api_send_json(api_request *req, unsigned status, char *json)
{
    if (!json)
        return api_problem(req, 500, NULL, NULL, "out of memory building the response");
    return api_send(req, status, api_json_response(json, "application/json", "no-store"));
}

enum MHD_Result api_send_bytes(api_request *req, unsigned status, const char *content_type,
                               const void *data, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (resp && content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return api_send(req, status, resp);
}
