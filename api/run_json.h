/*
 * api/run_json.h — the API's JSON shapes of runs, patch answers and data sets
 * (run_json.c documents them), from the registry's views.
 */
#ifndef GAND_API_RUN_JSON_H
#define GAND_API_RUN_JSON_H

#include <cjson/cJSON.h>

#include "daemon/run_view.h"

cJSON *api_run_cjson(const gand_run_view *v);
/* Printed (malloc'd; NULL when out of memory). */
char *api_run_json(const gand_run_view *v);
char *api_runs_json(const gand_run_view *v, int n); /* {"runs":[...]} */
char *api_patch_json(const gand_patch_view *p);
char *api_datasets_json(const gand_dataset_view *sets, int n); /* {"datasets":[...]} */

#endif
