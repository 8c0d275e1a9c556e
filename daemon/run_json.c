/*
 * daemon/run_json.c — the run store's JSON: run.json, the evaluation object (a line of
 * evaluations.jsonl, also what the API shows), state events; and the views of runs
 * and splits (run_view.h) that api/run_json.c formats.
 *
 * Numbers that are read back (run.json, evaluations.jsonl) or that a client may
 * hold as data (a seed, a distance) are printed exactly (gan/json_text.h): cJSON
 * would print 2^53 as 9.00719925474099e+15 and drop the 16th and 17th digits
 * of a double whenever the 15 it prints are near enough.
 */
#include "daemon/registry_internal.h"

#include "gan/json_text.h"

const char *const eval_state_names[EVAL_STATE_COUNT] = {"queued", "running", "done", "failed"};
const char *const eval_trigger_names[3] = {"request", "evaluate_every", "watch_every"};

/* ---- JSON -------------------------------------------------------------- */

/* name: the string, or null when it is empty */
void gand_json_string_or_null(cJSON *o, const char *name, const char *value)
{
    if (value[0])
        cJSON_AddStringToObject(o, name, value);
    else
        cJSON_AddNullToObject(o, name);
}

/* name: the number (exactly), or null when absent */
void gand_json_number_or_null(cJSON *o, const char *name, bool present, double value)
{
    if (present)
        gan_json_add_double(o, name, value);
    else
        cJSON_AddNullToObject(o, name);
}

/* name: the time in RFC 3339 (UTC, milliseconds), or null when it is 0 */
void gand_json_time(cJSON *o, const char *name, int64_t ms)
{
    if (ms > 0) {
        char t[40];
        format_time(ms, t, sizeof t);
        cJSON_AddStringToObject(o, name, t);
    } else {
        cJSON_AddNullToObject(o, name);
    }
}

cJSON *config_cjson(const gan_config *cfg)
{
    cJSON *o = gan_config_to_cjson(cfg);
    return o ? o : cJSON_CreateObject();
}

static cJSON *range_cjson(int begin, int end)
{
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateNumber(begin));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(end));
    return a;
}

/* A data set's split, as plain data (api/run_json.c formats it). */
void split_view(const dataset_info *d, gand_split_view *out)
{
    memset(out, 0, sizeof *out);
    if (!d || !d->ok)
        return;
    out->ok = true;
    str_printf(out->train_data, sizeof out->train_data, "%s", d->train_name);
    out->train_images = d->train_images;
    out->eval_ok = d->eval_ok;
    if (d->eval_ok) {
        str_printf(out->data, sizeof out->data, "%s", d->eval_name);
        str_printf(out->validation_data, sizeof out->validation_data, "%s", d->valid_name);
        out->valid_begin = d->split.valid_begin;
        out->valid_end = d->split.valid_end;
        out->test_begin = d->split.test_begin;
        out->test_end = d->split.test_end;
    }
}

/* The API's evaluation object (registry.h) of run `run_id`. */
static cJSON *eval_json(const char *run_id, const evaluation *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", e->id);
    cJSON_AddStringToObject(o, "run", run_id);
    cJSON_AddStringToObject(o, "state", eval_state_names[e->state]);
    gand_json_string_or_null(o, "reason", e->reason);
    cJSON_AddStringToObject(o, "trigger", eval_trigger_names[e->trigger]);
    cJSON_AddNumberToObject(o, "samples", e->samples);
    gan_json_add_u64(o, "seed", e->seed); /* 0..2^53: every digit */
    if (e->state == EVAL_DONE) {
        cJSON *res = cJSON_AddObjectToObject(o, "result");
        gand_json_number_or_null(res, "parzen_ll", e->has_parzen, e->parzen_ll);
        gand_json_number_or_null(res, "stderr", e->has_parzen, e->stderr_ll);
        gand_json_number_or_null(res, "sigma", e->has_parzen, e->sigma);
        if (e->has_metrics) {
            cJSON *m = cJSON_AddObjectToObject(res, "metrics");
            gan_sample_metrics_add_cjson(&e->metrics, m);
        } else {
            cJSON_AddNullToObject(res, "metrics");
        }
        cJSON_AddNumberToObject(res, "samples", e->samples);
        cJSON_AddNumberToObject(res, "epoch", e->epoch);
        cJSON *sp = cJSON_AddObjectToObject(res, "split");
        cJSON_AddItemToObject(sp, "validation", range_cjson(e->valid_begin, e->valid_end));
        cJSON_AddItemToObject(sp, "test", range_cjson(e->test_begin, e->test_end));
        cJSON_AddStringToObject(res, "data", e->data);
        cJSON_AddStringToObject(res, "validation_data", e->valid_data);
        gan_json_add_double(res, "seconds", e->seconds);
    } else {
        cJSON_AddNullToObject(o, "result");
    }
    gand_json_time(o, "created_at", e->created_at);
    gand_json_time(o, "started_at", e->started_at);
    gand_json_time(o, "finished_at", e->finished_at);
    return o;
}

cJSON *eval_cjson(const run *r, const evaluation *e)
{
    return eval_json(r->id, e);
}

/* The latest evaluation that is done (they finish in id order), or NULL. */
const evaluation *last_done_locked(const run *r)
{
    for (int i = r->nevals - 1; i >= 0; i--)
        if (r->evals[i].state == EVAL_DONE)
            return &r->evals[i];
    return NULL;
}

/*
 * A run as the API shows it, copied out under the lock; run_view_publish
 * finishes it with nothing locked. The view owns `samples` and `alerts`.
 */
void run_view_take_locked(const gand_registry *reg, const run *r, int queue_position, run_view *v)
{
    memset(v, 0, sizeof *v);
    gand_run_view *p = &v->pub;
    str_printf(p->id, sizeof p->id, "%s", r->id);
    p->state = state_names[r->state];
    str_printf(p->reason, sizeof p->reason, "%s", r->reason);
    p->cfg = r->cfg;
    p->epoch = run_epochs_locked(r);
    p->iteration = r->iteration;
    p->iterations_per_epoch = run_iterations_per_epoch_locked(reg, r);
    p->has_metrics = r->nmetrics > 0;
    if (p->has_metrics)
        p->last_metrics = r->metrics[r->nmetrics - 1];
    p->created_at = r->created_at;
    p->started_at = r->started_at;
    p->updated_at = r->updated_at;
    p->finished_at = r->finished_at;
    p->queue_position = queue_position;
    str_printf(p->device, sizeof p->device, "%s", r->device);
    str_printf(p->executor, sizeof p->executor, "%s", r->executor ? r->executor : "");
    p->slurm_job_id = r->slurm_job_id;
    str_printf(p->slurm_state, sizeof p->slurm_state, "%s", r->slurm_state);
    str_printf(p->node, sizeof p->node, "%s", r->node);
    if (r->nsamples > 0 && (p->samples = malloc((size_t)r->nsamples * sizeof(int)))) {
        memcpy(p->samples, r->samples, (size_t)r->nsamples * sizeof(int));
        p->nsamples = r->nsamples;
    }
    p->checkpoint_epoch = r->checkpoint_epoch;
    for (int i = 0; i < r->ndamaged; i++)
        str_printf(p->damaged[i], sizeof p->damaged[i], "%s", r->damaged[i]);
    p->ndamaged = r->ndamaged;
    split_view(dataset_find(reg, r->cfg.dataset), &p->split); /* fixed after registry_open */
    const evaluation *e = last_done_locked(r);
    v->has_eval = e != NULL;
    if (e) {
        v->last_eval = *e;
        v->last_eval.pinned = NULL;
    }
    p->best_epoch = r->best_epoch;
    p->best_fid = r->best_fid;
    p->alerts_total = r->nalerts;
    int na = r->nalerts < GAND_RUN_VIEW_ALERTS ? r->nalerts : GAND_RUN_VIEW_ALERTS;
    if (na > 0 && (p->alerts = malloc((size_t)na * sizeof *p->alerts))) {
        memcpy(p->alerts, r->alerts + (r->nalerts - na), (size_t)na * sizeof *p->alerts);
        p->nalerts = na;
    }
}

void run_view_publish(run_view *v, gand_run_view *out)
{
    *out = v->pub;
    out->last_evaluation = v->has_eval ? eval_json(out->id, &v->last_eval) : NULL;
    memset(&v->pub, 0, sizeof v->pub);
}

void gand_run_view_free(gand_run_view *v)
{
    free(v->samples);
    free(v->alerts);
    cJSON_Delete(v->last_evaluation);
    v->samples = NULL;
    v->alerts = NULL;
    v->last_evaluation = NULL;
}

void gand_run_views_free(gand_run_view *v, int n)
{
    for (int i = 0; i < n; i++)
        gand_run_view_free(&v[i]);
    free(v);
}

/* run.json: what a restart needs, in the API's words where they overlap (nothing locked). */
char *run_file_json(const run_record *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "state", state_names[r->state]);
    gand_json_string_or_null(o, "reason", r->reason);
    cJSON_AddItemToObject(o, "config", config_cjson(&r->cfg));
    gand_json_time(o, "created_at", r->created_at);
    gand_json_time(o, "started_at", r->started_at);
    gand_json_time(o, "updated_at", r->updated_at);
    gand_json_time(o, "finished_at", r->finished_at);
    gand_json_time(o, "queued_at", r->queued_at);
    cJSON_AddNumberToObject(o, "epoch", r->epoch);
    gand_json_number_or_null(o, "checkpoint_epoch", r->checkpoint_epoch >= 0, r->checkpoint_epoch);
    gand_json_string_or_null(o, "device", r->device);
    gand_json_string_or_null(o, "executor", r->executor);
    if (r->slurm_job_id > 0)
        cJSON_AddNumberToObject(o, "slurm_job_id", (double)r->slurm_job_id);
    else
        cJSON_AddNullToObject(o, "slurm_job_id");
    gand_json_string_or_null(o, "node", r->node);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

/* A "state" event's data, from the record copied with it (nothing locked). */
char *state_event_data(const run_record *r, int64_t at)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", state_names[r->state]);
    gand_json_string_or_null(o, "reason", r->reason);
    cJSON_AddNumberToObject(o, "epoch", r->epoch);
    gand_json_time(o, "at", at);
    return print_and_delete(o);
}
