/*
 * tests/unit/registry_json.h — the registry's answers as the JSON the API sends.
 *
 * The registry answers with views (daemon/run_view.h); these wrappers give the
 * JSON api/run_json.c makes of them, which is what test_registry looks at.
 * *json stays NULL when the call fails.
 */
#ifndef GAND_TEST_REGISTRY_JSON_H
#define GAND_TEST_REGISTRY_JSON_H

#include <stdlib.h>

#include "api/run_json.h"
#include "daemon/registry.h"

static reg_status json_create_run(gand_registry *r, const char *body, size_t len, char **json,
                                  char *id, size_t id_len, gan_error *err)
{
    gand_run_view v;
    reg_status st = registry_create_run(r, body, len, &v, id, id_len, err);
    *json = NULL;
    if (st == REG_OK) {
        *json = api_run_json(&v);
        gand_run_view_free(&v);
    }
    return st;
}

static reg_status json_get_run(gand_registry *r, const char *id, char **json)
{
    gand_run_view v;
    reg_status st = registry_get_run(r, id, &v);
    *json = NULL;
    if (st == REG_OK) {
        *json = api_run_json(&v);
        gand_run_view_free(&v);
    }
    return st;
}

static reg_status json_control(gand_registry *r, const char *id, const char *action, char **json,
                               gan_error *err)
{
    gand_run_view v;
    reg_status st = registry_control(r, id, action, &v, err);
    *json = NULL;
    if (st == REG_OK) {
        *json = api_run_json(&v);
        gand_run_view_free(&v);
    }
    return st;
}

static reg_status json_patch_run(gand_registry *r, const char *id, const char *body, size_t len,
                                 char **json, gan_error *err)
{
    gand_patch_view v;
    reg_status st = registry_patch_run(r, id, body, len, &v, err);
    *json = NULL;
    if (st == REG_OK) {
        *json = api_patch_json(&v);
        gand_run_view_free(&v.run);
    }
    return st;
}

static reg_status json_list_runs(gand_registry *r, char **json)
{
    gand_run_view *v;
    int n;
    reg_status st = registry_list_runs(r, &v, &n);
    *json = NULL;
    if (st == REG_OK) {
        *json = api_runs_json(v, n);
        gand_run_views_free(v, n);
    }
    return st;
}

static reg_status json_datasets(gand_registry *r, char **json)
{
    gand_dataset_view *v;
    int n;
    reg_status st = registry_datasets(r, &v, &n);
    *json = NULL;
    if (st == REG_OK) {
        *json = api_datasets_json(v, n);
        free(v);
    }
    return st;
}

#endif
