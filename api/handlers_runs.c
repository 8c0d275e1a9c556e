/*
 * api/handlers_runs.c — /api/v1/runs: create, list, read, patch, control,
 * delete, and the per-epoch metrics.
 *
 * The registry validates configs and patches (every field, gan/config.c);
 * this file checks what is HTTP's business first — the media type, that the
 * body is JSON at all (400 with the byte offset) — so a syntax error is told
 * apart from a bad field (422) whatever words the registry uses.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/internal.h"
#include "daemon/log.h"

static const char *const no_params[] = {NULL};

/* 400 unless the body is one JSON object (internal.h). */
bool api_body_is_json_object(api_request *req, enum MHD_Result *rc)
{
    if (req->body_len == 0) {
        *rc = api_problem(req, 400, "invalid-json", NULL,
                          "the request body is empty; send a JSON object");
        return false;
    }
    if (memchr(req->body, '\0', req->body_len)) {
        *rc = api_problem(req, 400, "invalid-json", NULL,
                          "the request body contains a NUL byte; send a JSON object");
        return false;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, false);
    if (!root) {
        size_t at = end && end >= req->body ? (size_t)(end - req->body) : 0;
        *rc = api_problem(req, 400, "invalid-json", NULL,
                          "the request body is not valid JSON (parsing stopped at byte %zu of %zu)",
                          at, req->body_len);
        return false;
    }
    /* cJSON stops at the end of the first value; anything but white space after it is an error */
    size_t off = end ? (size_t)(end - req->body) : req->body_len;
    while (off < req->body_len && strchr(" \t\r\n", req->body[off]))
        off++;
    bool object = cJSON_IsObject(root);
    cJSON_Delete(root);
    if (off < req->body_len) {
        *rc = api_problem(req, 400, "invalid-json", NULL,
                          "the request body has data after its JSON value (at byte %zu of %zu)",
                          off, req->body_len);
        return false;
    }
    if (!object) {
        *rc = api_problem(req, 400, "invalid-json", NULL,
                          "the request body must be a JSON object, not another JSON value");
        return false;
    }
    return true;
}

static bool query_ok(api_request *req, const char *const *allowed, enum MHD_Result *rc)
{
    bool ok;
    *rc = api_check_query(req, allowed, &ok);
    return ok;
}

enum MHD_Result h_runs_list(api_request *req, const char *const *params)
{
    (void)params;
    enum MHD_Result rc;
    if (!query_ok(req, no_params, &rc))
        return rc;
    gand_run_view *runs = NULL;
    int n = 0;
    reg_status st = registry_list_runs(req->api->reg, &runs, &n);
    if (st != REG_OK)
        return api_problem_reg(req, st, NULL, NULL);
    char *json = api_runs_json(runs, n);
    gand_run_views_free(runs, n);
    return api_send_json(req, 200, json);
}

enum MHD_Result h_runs_create(api_request *req, const char *const *params)
{
    (void)params;
    static const char *const json_types[] = {"application/json", NULL};
    enum MHD_Result rc;
    if (!query_ok(req, no_params, &rc))
        return rc;
    const char *body = "{}"; /* every field is optional: no body is the preset "seed" */
    size_t len = 2;
    if (req->body_len > 0) {
        if (!api_content_type_is(req, json_types))
            return api_problem(req, 415, "unsupported-media-type", NULL,
                               "a run config must be sent as Content-Type: application/json");
        if (!api_body_is_json_object(req, &rc))
            return rc;
        body = req->body;
        len = req->body_len;
    }
    char id[128] = "";
    gand_run_view run;
    gan_error err = {{0}, {0}};
    reg_status st = registry_create_run(req->api->reg, body, len, &run, id, sizeof id, &err);
    if (st != REG_OK)
        return api_problem_reg(req, st, &err, NULL);
    char *json = api_run_json(&run);
    gand_run_view_free(&run);
    if (!json)
        return api_problem(req, 500, NULL, NULL, "out of memory building the response");
    char location[256];
    snprintf(location, sizeof location, "/api/v1/runs/%s", id);
    struct MHD_Response *resp = api_json_response(json, "application/json", "no-store");
    if (!resp)
        return api_send(req, 201, NULL);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    log_info("http: created run %s", id);
    return api_send(req, 201, resp);
}

enum MHD_Result h_run_get(api_request *req, const char *const *params)
{
    enum MHD_Result rc;
    if (!query_ok(req, no_params, &rc))
        return rc;
    gand_run_view run;
    reg_status st = registry_get_run(req->api->reg, params[0], &run);
    if (st != REG_OK)
        return api_problem_reg(req, st, NULL, params[0]);
    char *json = api_run_json(&run);
    gand_run_view_free(&run);
    return api_send_json(req, 200, json);
}

enum MHD_Result h_run_patch(api_request *req, const char *const *params)
{
    static const char *const patch_types[] = {"application/merge-patch+json", "application/json",
                                              NULL};
    enum MHD_Result rc;
    if (!query_ok(req, no_params, &rc))
        return rc;
    if (!api_content_type_is(req, patch_types))
        return api_problem(req, 415, "unsupported-media-type", NULL,
                           "a patch must be sent as Content-Type: application/merge-patch+json "
                           "(RFC 7396) or application/json");
    if (!api_body_is_json_object(req, &rc))
        return rc;
    gand_patch_view answer;
    gan_error err = {{0}, {0}};
    reg_status st =
        registry_patch_run(req->api->reg, params[0], req->body, req->body_len, &answer, &err);
    if (st != REG_OK)
        return api_problem_reg(req, st, &err, params[0]);
    char *json = api_patch_json(&answer);
    gand_run_view_free(&answer.run);
    return api_send_json(req, 200, json);
}

static enum MHD_Result control(api_request *req, const char *id, const char *action)
{
    enum MHD_Result rc;
    if (!query_ok(req, no_params, &rc))
        return rc;
    gand_run_view run;
    gan_error err = {{0}, {0}};
    reg_status st = registry_control(req->api->reg, id, action, &run, &err);
    if (st != REG_OK)
        return api_problem_reg(req, st, &err, id);
    char *json = api_run_json(&run);
    gand_run_view_free(&run);
    log_info("http: %s run %s", action, id);
    return api_send_json(req, 200, json);
}

enum MHD_Result h_run_pause(api_request *req, const char *const *params)
{
    return control(req, params[0], "pause");
}

enum MHD_Result h_run_resume(api_request *req, const char *const *params)
{
    return control(req, params[0], "resume");
}

enum MHD_Result h_run_stop(api_request *req, const char *const *params)
{
    return control(req, params[0], "stop");
}

enum { DELETE_RETRY_MS = 100, DELETE_WAIT_MS = 5000 };

/* Is the run in a final state (stopped, completed, failed)? */
static bool run_is_final(gand_registry *reg, const char *id)
{
    gand_run_view run;
    if (registry_get_run(reg, id, &run) != REG_OK)
        return false;
    bool final = strcmp(run.state, "stopped") == 0 || strcmp(run.state, "completed") == 0 ||
                 strcmp(run.state, "failed") == 0;
    gand_run_view_free(&run);
    return final;
}

enum MHD_Result h_run_delete(api_request *req, const char *const *params)
{
    enum MHD_Result rc;
    if (!query_ok(req, no_params, &rc))
        return rc;
    gan_error err = {{0}, {0}};
    reg_status st = registry_delete_run(req->api->reg, params[0], &err);
    /*
     * A run that has just been stopped is final but may still be writing its
     * checkpoint, and the registry refuses until it is done. That is not a state
     * the client must change (409) but a moment to wait: wait here a little, then
     * say 503 with Retry-After (which `curl --retry` honours).
     */
    for (int waited_ms = 0; st == REG_CONFLICT && run_is_final(req->api->reg, params[0]);
         waited_ms += DELETE_RETRY_MS) {
        if (waited_ms >= DELETE_WAIT_MS) {
            return api_problem_retry(req, err.message[0] ? err.message : "the run is busy");
        }
        struct timespec ts = {0, DELETE_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL);
        memset(&err, 0, sizeof err);
        st = registry_delete_run(req->api->reg, params[0], &err);
    }
    if (st != REG_OK)
        return api_problem_reg(req, st, &err, params[0]);
    log_info("http: deleted run %s", params[0]);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    return api_send(req, 204, resp);
}

enum MHD_Result h_run_metrics(api_request *req, const char *const *params)
{
    static const char *const allowed[] = {"since", NULL};
    enum MHD_Result rc;
    if (!query_ok(req, allowed, &rc))
        return rc;
    int64_t since;
    bool ok;
    rc = api_query_int(req, "since", 0, 1000000000, 0, &since, &ok);
    if (!ok)
        return rc;
    char *json = NULL;
    reg_status st = registry_metrics(req->api->reg, params[0], (int)since, &json);
    if (st != REG_OK)
        return api_problem_reg(req, st, NULL, params[0]);
    return api_send_json(req, 200, json);
}
