/*
 * api/handlers_system.c — /healthz, /api/v1/datasets and /api/v1/openapi.json.
 *
 * /healthz answers 200 while the process serves; "status" is "ok", or
 * "stalled" when the worker's heartbeat has not advanced within the watchdog
 * interval (the main thread decides that, and stops pinging systemd). The
 * listener opens before the worker has opened its backend (a CUDA context
 * can take seconds): until then the answer is 503 with status "starting".
 */
#include <cjson/cJSON.h>
#include <string.h>
#include <time.h>

#include "api/internal.h"
#include "kernels/backend.h"

#ifndef GAND_VERSION
#define GAND_VERSION "0"
#endif

static const char *const no_params[] = {NULL};

enum MHD_Result h_healthz(api_request *req, const char *const *params)
{
    (void)params;
    bool ok;
    enum MHD_Result rc = api_check_query(req, no_params, &ok);
    if (!ok)
        return rc;
    char backend[64] = "", device[256] = "", why[512] = "";
    registry_backend_info(req->api->reg, backend, sizeof backend, device, sizeof device, why,
                          sizeof why);
    bool stalled = atomic_load(&req->api->worker_stalled), starting = backend[0] == '\0';
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", starting ? "starting" : stalled ? "stalled" : "ok");
    cJSON_AddStringToObject(o, "version", GAND_VERSION);
    cJSON_AddStringToObject(o, "backend", backend);
    cJSON_AddStringToObject(o, "device", device);
    cJSON_AddStringToObject(o, "why", why);
    cJSON_AddStringToObject(o, "backends_built", gk_backends_built());
    cJSON_AddNumberToObject(o, "uptime_s", (double)(time(NULL) - req->api->started));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return api_send_json(req, starting ? 503 : 200, text);
}

enum MHD_Result h_datasets(api_request *req, const char *const *params)
{
    (void)params;
    bool ok;
    enum MHD_Result rc = api_check_query(req, no_params, &ok);
    if (!ok)
        return rc;
    char *json = NULL;
    reg_status st = registry_datasets(req->api->reg, &json);
    if (st != REG_OK)
        return api_problem_reg(req, st, NULL, NULL);
    return api_send_json(req, 200, json);
}

enum MHD_Result h_openapi(api_request *req, const char *const *params)
{
    (void)params;
    bool ok;
    enum MHD_Result rc = api_check_query(req, no_params, &ok);
    if (!ok)
        return rc;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        gand_openapi_json_len, (void *)gand_openapi_json, MHD_RESPMEM_PERSISTENT);
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, "\"openapi-" GAND_VERSION "\"");
    }
    return api_send(req, 200, resp);
}
