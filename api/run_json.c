/*
 * api/run_json.c — the API's JSON shapes of runs, patch answers and data sets,
 * built from the views the registry copied out under its lock (run_view.h), with
 * nothing locked. The shapes (the OpenAPI description has the details):
 *
 *   run    {"id","state","reason"(string|null),"config"{...gan_config...},
 *           "epoch" (completed), "iteration", "iterations_per_epoch",
 *           "last_metrics" (epoch record|null), "created_at","started_at",
 *           "updated_at","finished_at" (RFC 3339 UTC strings|null),
 *           "queue_position" (int|null), "device" (string|null),
 *           "executor" ("local"|"slurm"|null), "slurm_job_id" (int|null),
 *           "slurm_state" (Slurm's word for the job|null), "node" (string|null),
 *           "samples_epochs" [epochs with a saved grid], "checkpoint_epoch" (int|null),
 *           "split" (split|null: the run's data set is not configured),
 *           "last_evaluation" (the latest evaluation that is done|null),
 *           "best" ({"epoch","fid"}|null), "alerts_total", "alerts" [the newest 10]}
 *   split  {"train_data": "NAME/FILE", "train":[0,N], "validation_data": "NAME/FILE"|null,
 *           "validation":[a,b]|null, "data": "NAME/FILE"|null, "test":[c,d]|null}:
 *           image ranges [begin, end) of the data set's files (their base names,
 *           never a server path); validation_data is the file the validation range
 *           indexes (σ is chosen on it) and data the one the test range indexes (it
 *           is scored): the training file or the data set's separate test file;
 *           null when nothing is held out
 *   list   {"runs":[run...]}
 *   patch answer {"event_seq":N|null,"run":run,"changed":[names],
 *           "applies":{"name":"next_iteration"|"next_epoch"|"now"}}
 *   datasets {"datasets":[{"name","images","rows","cols","train_images","holdout",
 *           "test_images" (int|null),"split","classifier" ("NAME/FILE"|null),
 *           "error"? (the file cannot be read),"evaluation"? (why it cannot be evaluated)}]}
 *
 * The epoch record, the evaluation and the events are the run store's own
 * formats (daemon/registry.h), shown as they are.
 */
#include "api/run_json.h"

#include <stdlib.h>

#include "gan/epoch.h"
#include "gan/json_text.h"

static char *print_and_delete(cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

static cJSON *range_cjson(int begin, int end)
{
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateNumber(begin));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(end));
    return a;
}

static cJSON *split_cjson(const gand_split_view *s)
{
    if (!s->ok)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "train_data", s->train_data);
    cJSON_AddItemToObject(o, "train", range_cjson(0, s->train_images));
    if (s->eval_ok) {
        cJSON_AddStringToObject(o, "data", s->data);
        cJSON_AddStringToObject(o, "validation_data", s->validation_data);
        cJSON_AddItemToObject(o, "validation", range_cjson(s->valid_begin, s->valid_end));
        cJSON_AddItemToObject(o, "test", range_cjson(s->test_begin, s->test_end));
    } else {
        cJSON_AddNullToObject(o, "data");
        cJSON_AddNullToObject(o, "validation_data");
        cJSON_AddNullToObject(o, "validation");
        cJSON_AddNullToObject(o, "test");
    }
    return o;
}

static cJSON *or_null(cJSON *item)
{
    return item ? item : cJSON_CreateNull();
}

cJSON *api_run_cjson(const gand_run_view *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", v->id);
    cJSON_AddStringToObject(o, "state", v->state);
    gand_json_string_or_null(o, "reason", v->reason);
    cJSON *cfg = gan_config_to_cjson(&v->cfg);
    cJSON_AddItemToObject(o, "config", cfg ? cfg : cJSON_CreateObject());
    cJSON_AddNumberToObject(o, "epoch", v->epoch);
    cJSON_AddNumberToObject(o, "iteration", v->iteration);
    cJSON_AddNumberToObject(o, "iterations_per_epoch", v->iterations_per_epoch);
    cJSON_AddItemToObject(
        o, "last_metrics",
        or_null(v->has_metrics ? gan_epoch_metrics_cjson(&v->last_metrics) : NULL));
    gand_json_time(o, "created_at", v->created_at);
    gand_json_time(o, "started_at", v->started_at);
    gand_json_time(o, "updated_at", v->updated_at);
    gand_json_time(o, "finished_at", v->finished_at);
    gand_json_number_or_null(o, "queue_position", v->queue_position > 0, v->queue_position);
    gand_json_string_or_null(o, "device", v->device);
    gand_json_string_or_null(o, "executor", v->executor);
    if (v->slurm_job_id > 0)
        cJSON_AddNumberToObject(o, "slurm_job_id", (double)v->slurm_job_id);
    else
        cJSON_AddNullToObject(o, "slurm_job_id");
    gand_json_string_or_null(o, "slurm_state", v->slurm_state);
    gand_json_string_or_null(o, "node", v->node);
    cJSON *se = cJSON_AddArrayToObject(o, "samples_epochs");
    for (int i = 0; i < v->nsamples; i++)
        cJSON_AddItemToArray(se, cJSON_CreateNumber(v->samples[i]));
    gand_json_number_or_null(o, "checkpoint_epoch", v->checkpoint_epoch >= 0, v->checkpoint_epoch);
    cJSON_AddItemToObject(o, "split", split_cjson(&v->split));
    cJSON_AddItemToObject(
        o, "last_evaluation",
        or_null(v->last_evaluation ? cJSON_Duplicate(v->last_evaluation, true) : NULL));
    if (v->best_epoch >= 0) {
        cJSON *b = cJSON_AddObjectToObject(o, "best");
        cJSON_AddNumberToObject(b, "epoch", v->best_epoch);
        gan_json_add_double(b, "fid", v->best_fid);
    } else {
        cJSON_AddNullToObject(o, "best");
    }
    cJSON *dm = cJSON_AddArrayToObject(o, "damaged");
    for (int i = 0; i < v->ndamaged; i++)
        cJSON_AddItemToArray(dm, cJSON_CreateString(v->damaged[i]));
    cJSON_AddNumberToObject(o, "alerts_total", v->alerts_total);
    cJSON *al = cJSON_AddArrayToObject(o, "alerts");
    for (int i = 0; i < v->nalerts; i++)
        cJSON_AddItemToArray(al, gan_alert_to_cjson(&v->alerts[i]));
    return o;
}

char *api_run_json(const gand_run_view *v)
{
    return print_and_delete(api_run_cjson(v));
}

char *api_runs_json(const gand_run_view *v, int n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "runs");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, api_run_cjson(&v[i]));
    return print_and_delete(o);
}

char *api_patch_json(const gand_patch_view *p)
{
    cJSON *o = cJSON_CreateObject();
    if (p->changed)
        cJSON_AddNumberToObject(o, "event_seq", (double)p->event_seq);
    else
        cJSON_AddNullToObject(o, "event_seq");
    cJSON_AddItemToObject(o, "run", api_run_cjson(&p->run));
    cJSON *names = cJSON_AddArrayToObject(o, "changed");
    cJSON *applies = cJSON_AddObjectToObject(o, "applies");
    for (unsigned bit = 1; bit & GAN_F_MUTABLE; bit <<= 1) {
        if (!(p->changed & bit))
            continue;
        const char *name = gan_field_name(bit);
        cJSON_AddItemToArray(names, cJSON_CreateString(name));
        cJSON_AddStringToObject(applies, name, gan_field_applies(bit, p->fresh));
    }
    return print_and_delete(o);
}

char *api_datasets_json(const gand_dataset_view *sets, int n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "datasets");
    for (int i = 0; i < n; i++) {
        const gand_dataset_view *d = &sets[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", d->name);
        cJSON_AddNumberToObject(e, "images", d->images);
        cJSON_AddNumberToObject(e, "rows", d->rows);
        cJSON_AddNumberToObject(e, "cols", d->cols);
        cJSON_AddNumberToObject(e, "train_images", d->train_images);
        cJSON_AddNumberToObject(e, "holdout", d->holdout);
        gand_json_number_or_null(e, "test_images", d->has_test, d->test_images);
        cJSON_AddItemToObject(e, "split", split_cjson(&d->split));
        gand_json_string_or_null(e, "classifier", d->classifier);
        if (!d->ok)
            cJSON_AddStringToObject(e, "error", "the data set's file cannot be read (see the log)");
        else if (d->evaluation_error[0])
            cJSON_AddStringToObject(e, "evaluation", d->evaluation_error);
        cJSON_AddItemToArray(a, e);
    }
    return print_and_delete(o);
}
