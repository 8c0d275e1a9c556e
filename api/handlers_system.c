/*
 * api/handlers_system.c — /healthz, /api/v1/datasets, /api/v1/presets and
 * /api/v1/openapi.json.
 *
 * /healthz answers 200 while the process serves; "status" is "ok", or
 * "stalled" when the worker's heartbeat has not advanced within the watchdog
 * interval (the main thread decides that, and stops pinging systemd). The
 * listener opens before the worker has opened its backend (a CUDA context
 * can take seconds): until then the answer is 503 with status "starting".
 *
 * /api/v1/presets serves each preset's full config as gan/config.c makes it
 * (the dashboard fills its form from it, so there is no second copy of the
 * values), in the order of gan_config_presets.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/internal.h"
#include "gan/config.h"
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
    gand_dataset_view *sets = NULL;
    int n = 0;
    reg_status st = registry_datasets(req->api->reg, &sets, &n);
    if (st != REG_OK)
        return api_problem_reg(req, st, NULL, NULL);
    char *json = api_datasets_json(sets, n);
    free(sets);
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

/* ---- presets ------------------------------------------------------------------------------ */

/* One line on each preset; the values themselves come from gan/config.c. */
static const struct {
    const char *name, *description;
} preset_descriptions[] = {
    {"seed",
     "the PyTorch reference run of Goodfellow et al. 2014 (Adam 1e-3, batch 1024, 500 epochs)"},
    {"paper",
     "Goodfellow et al.'s pylearn2 configuration (SGD with momentum, dropout, sigmoid output)"},
    {"stable", "digits of all ten classes in a short CPU run (docs/stable-preset.md)"},
};

static const char *preset_description(const char *name)
{
    for (size_t i = 0; i < sizeof preset_descriptions / sizeof preset_descriptions[0]; i++)
        if (strcmp(preset_descriptions[i].name, name) == 0)
            return preset_descriptions[i].description;
    return "";
}

/* {"name", "description", "config": every field as a run's config shows it}, or NULL. */
static cJSON *preset_cjson(const char *name)
{
    gan_config c;
    if (gan_config_preset(&c, name, NULL) < 0)
        return NULL;
    cJSON *config = gan_config_to_cjson(&c); /* its numbers print exactly, as a run's do */
    cJSON *o = config ? cJSON_CreateObject() : NULL;
    if (!o) {
        cJSON_Delete(config);
        return NULL;
    }
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "description", preset_description(name));
    cJSON_AddItemToObject(o, "config", config);
    return o;
}

/*
 * A preset answer: the same for the life of the binary, so it carries an ETag
 * (FNV-1a of the body) and Cache-Control: no-cache, and answers 304 to it.
 */
static enum MHD_Result send_preset_json(api_request *req, cJSON *o)
{
    char *json = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!json)
        return api_problem(req, 500, "internal", NULL, "out of memory building the presets");
    size_t len = strlen(json);
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)json[i]) * 1099511628211ull;
    char etag[40];
    snprintf(etag, sizeof etag, "\"presets-%016" PRIx64 "\"", h);
    const char *const cache[] = {MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache", NULL};
    if (api_if_none_match(req, etag)) {
        cJSON_free(json);
        return api_send_not_modified(req, etag, cache);
    }
    struct MHD_Response *resp = api_json_response(json, "application/json", "no-cache");
    if (resp)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    return api_send(req, 200, resp);
}

enum MHD_Result h_presets(api_request *req, const char *const *params)
{
    (void)params;
    bool ok;
    enum MHD_Result rc = api_check_query(req, no_params, &ok);
    if (!ok)
        return rc;
    cJSON *o = cJSON_CreateObject();
    cJSON *list = o ? cJSON_AddArrayToObject(o, "presets") : NULL;
    for (size_t i = 0; list && gan_config_presets[i]; i++) {
        cJSON *p = preset_cjson(gan_config_presets[i]);
        if (!p) {
            cJSON_Delete(o);
            return api_problem(req, 500, "internal", NULL, "cannot build preset '%s'",
                               gan_config_presets[i]);
        }
        cJSON_AddItemToArray(list, p);
    }
    if (!list) {
        cJSON_Delete(o);
        o = NULL;
    }
    return send_preset_json(req, o);
}

enum MHD_Result h_preset_get(api_request *req, const char *const *params)
{
    bool ok;
    enum MHD_Result rc = api_check_query(req, no_params, &ok);
    if (!ok)
        return rc;
    const char *name = params[0];
    for (size_t i = 0; gan_config_presets[i]; i++)
        if (strcmp(gan_config_presets[i], name) == 0)
            return send_preset_json(req, preset_cjson(name));
    char known[256] = "";
    size_t used = 0;
    for (size_t i = 0; gan_config_presets[i] && used < sizeof known; i++)
        used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                                 gan_config_presets[i]);
    return api_problem(req, 404, "not-found", NULL,
                       "no preset named '%s'; the known presets are: %s (GET /api/v1/presets)",
                       API_CLIP(name, 60), known);
}
