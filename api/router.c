/*
 * api/router.c — the route table: method + path pattern → handler.
 *
 * A pattern is a list of path segments; "{x}" captures one non-empty segment,
 * "{x}.png" one that ends in ".png" (capturing what comes before), and "**"
 * the non-empty rest of the path. A path that matches a pattern under another
 * method gets 405 with Allow; one that matches no pattern gets 404. HEAD is
 * allowed wherever GET is (MHD leaves the body out). A write with a body that is
 * not sent as JSON is refused (415, api_write_body_ok) before any handler sees it.
 */
#include <stdio.h>
#include <string.h>

#include "api/internal.h"
#include "api/route_match.h"

typedef struct route {
    const char *method;
    const char *pattern;
    api_handler handler;
} route;

static const route routes[] = {
    {"GET", "/", h_static_index},
    {"GET", "/static/**", h_static_file},
    {"GET", "/javascript/**", h_javascript_file},
    {"GET", "/healthz", h_healthz},
    {"GET", "/metrics", h_metrics},
    {"GET", "/api/v1/openapi.json", h_openapi},
    {"GET", "/api/v1/datasets", h_datasets},
    {"GET", "/api/v1/presets", h_presets},
    {"GET", "/api/v1/presets/{name}", h_preset_get},
    {"GET", "/api/v1/runs", h_runs_list},
    {"POST", "/api/v1/runs", h_runs_create},
    {"GET", "/api/v1/runs/{id}", h_run_get},
    {"PATCH", "/api/v1/runs/{id}", h_run_patch},
    {"DELETE", "/api/v1/runs/{id}", h_run_delete},
    {"POST", "/api/v1/runs/{id}/pause", h_run_pause},
    {"POST", "/api/v1/runs/{id}/resume", h_run_resume},
    {"POST", "/api/v1/runs/{id}/stop", h_run_stop},
    {"GET", "/api/v1/runs/{id}/metrics", h_run_metrics},
    {"GET", "/api/v1/runs/{id}/events", h_run_events},
    {"GET", "/api/v1/runs/{id}/samples.png", h_run_samples},
    {"GET", "/api/v1/runs/{id}/samples/{epoch}.png", h_run_epoch_png},
    {"GET", "/api/v1/runs/{id}/checkpoint", h_run_checkpoint},
    {"POST", "/api/v1/runs/{id}/evaluations", h_run_evaluate},
    {"GET", "/api/v1/runs/{id}/evaluations", h_run_evaluations},
    {"GET", "/api/v1/runs/{id}/evaluations/{n}", h_run_evaluation},
    {"GET", "/api/v1/runs/{id}/samples", h_run_samples_export},
    {"POST", "/api/v1/runs/{id}/generate", h_run_generate},
    {"GET", "/api/v1/runs/{id}/interpolate", h_run_interpolate},
};
enum { N_ROUTES = sizeof routes / sizeof routes[0], MAX_PATH = 2048 };

static bool method_is(const char *method, const char *route_method)
{
    return strcmp(method, route_method) == 0 ||
           (strcmp(route_method, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

static void add_allow(char *allow, size_t len, const char *m)
{
    if (strstr(allow, m)) /* no method name contains another among ours */
        return;
    size_t used = strlen(allow);
    snprintf(allow + used, len - used, "%s%s", used ? ", " : "", m);
}

enum MHD_Result api_route(api_request *req)
{
    char buf[MAX_PATH];
    const char *params[API_ROUTE_MAX_PARAMS + 1] = {0};
    char allow[128] = "";
    if (strlen(req->url) >= MAX_PATH)
        return api_problem(req, 404, "not-found", NULL, "no such resource (the path is too long)");
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!api_path_match(routes[i].pattern, req->url, buf, sizeof buf, params))
            continue;
        if (method_is(req->method, routes[i].method)) {
            enum MHD_Result rc;
            if (!api_write_body_ok(req, strcmp(routes[i].method, "PATCH") == 0, &rc))
                return rc;
            return routes[i].handler(req, params);
        }
        add_allow(allow, sizeof allow, routes[i].method);
        if (strcmp(routes[i].method, "GET") == 0)
            add_allow(allow, sizeof allow, "HEAD");
    }
    if (allow[0]) {
        if (strcmp(req->method, "OPTIONS") == 0) {
            add_allow(allow, sizeof allow, "OPTIONS");
            struct MHD_Response *resp =
                MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
            if (resp)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
            return api_send(req, 204, resp);
        }
        add_allow(allow, sizeof allow, "OPTIONS");
        return api_problem_method(req, allow);
    }
    return api_problem(req, 404, "not-found", NULL,
                       "no such resource: %s (the API is under "
                       "/api/v1; see /api/v1/openapi.json)",
                       req->url);
}
