/*
 * daemon/run_json.c — the JSON shapes of runs, evaluations and data-set splits (registry.h).
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
static void add_string_or_null(cJSON *o, const char *name, const char *value)
{
    if (value[0])
        cJSON_AddStringToObject(o, name, value);
    else
        cJSON_AddNullToObject(o, name);
}

/* name: the number (exactly), or null when absent */
static void add_number_or_null(cJSON *o, const char *name, bool present, double value)
{
    if (present)
        gan_json_add_double(o, name, value);
    else
        cJSON_AddNullToObject(o, name);
}

/* name: the item (taken), or null when there is none */
static void add_item_or_null(cJSON *o, const char *name, cJSON *item)
{
    if (item)
        cJSON_AddItemToObject(o, name, item);
    else
        cJSON_AddNullToObject(o, name);
}

void add_time(cJSON *o, const char *name, int64_t ms)
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

static cJSON *metrics_cjson(const gan_epoch_metrics *m)
{
    cJSON *o = gan_epoch_metrics_cjson(m);
    return o ? o : cJSON_CreateNull();
}

static cJSON *range_cjson(int begin, int end)
{
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateNumber(begin));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(end));
    return a;
}

/* A data set's split (registry.h "split"), or null when it cannot be read. */
cJSON *split_cjson(const dataset_info *d)
{
    if (!d || !d->ok)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "train_data", d->train_name);
    cJSON_AddItemToObject(o, "train", range_cjson(0, d->train_images));
    if (d->eval_ok) {
        cJSON_AddStringToObject(o, "data", d->eval_name);
        cJSON_AddStringToObject(o, "validation_data", d->valid_name);
        cJSON_AddItemToObject(o, "validation",
                              range_cjson(d->split.valid_begin, d->split.valid_end));
        cJSON_AddItemToObject(o, "test", range_cjson(d->split.test_begin, d->split.test_end));
    } else {
        cJSON_AddNullToObject(o, "data");
        cJSON_AddNullToObject(o, "validation_data");
        cJSON_AddNullToObject(o, "validation");
        cJSON_AddNullToObject(o, "test");
    }
    return o;
}

/* The API's evaluation object (registry.h) of run `run_id`. */
static cJSON *eval_json(const char *run_id, const evaluation *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", e->id);
    cJSON_AddStringToObject(o, "run", run_id);
    cJSON_AddStringToObject(o, "state", eval_state_names[e->state]);
    add_string_or_null(o, "reason", e->reason);
    cJSON_AddStringToObject(o, "trigger", eval_trigger_names[e->trigger]);
    cJSON_AddNumberToObject(o, "samples", e->samples);
    gan_json_add_u64(o, "seed", e->seed); /* 0..2^53: every digit */
    if (e->state == EVAL_DONE) {
        cJSON *res = cJSON_AddObjectToObject(o, "result");
        add_number_or_null(res, "parzen_ll", e->has_parzen, e->parzen_ll);
        add_number_or_null(res, "stderr", e->has_parzen, e->stderr_ll);
        add_number_or_null(res, "sigma", e->has_parzen, e->sigma);
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
    add_time(o, "created_at", e->created_at);
    add_time(o, "started_at", e->started_at);
    add_time(o, "finished_at", e->finished_at);
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
 * A run as the API shows it, copied out under the lock (run_view_take_locked)
 * so that the JSON is built with nothing locked. Owns `samples`.
 */
void run_view_take_locked(const gand_registry *reg, const run *r, int queue_position, run_view *v)
{
    memset(v, 0, sizeof *v);
    str_printf(v->id, sizeof v->id, "%s", r->id);
    v->state = r->state;
    str_printf(v->reason, sizeof v->reason, "%s", r->reason);
    v->cfg = r->cfg;
    v->epoch = r->nmetrics;
    v->iteration = r->iteration;
    v->iterations_per_epoch = run_iterations_per_epoch_locked(reg, r);
    v->has_metrics = r->nmetrics > 0;
    if (v->has_metrics)
        v->last_metrics = r->metrics[r->nmetrics - 1];
    v->created_at = r->created_at;
    v->started_at = r->started_at;
    v->updated_at = r->updated_at;
    v->finished_at = r->finished_at;
    v->queue_position = queue_position;
    str_printf(v->device, sizeof v->device, "%s", r->device);
    if (r->nsamples > 0 && (v->samples = malloc((size_t)r->nsamples * sizeof(int)))) {
        memcpy(v->samples, r->samples, (size_t)r->nsamples * sizeof(int));
        v->nsamples = r->nsamples;
    }
    v->checkpoint_epoch = r->checkpoint_epoch;
    v->dataset = dataset_find(reg, r->cfg.dataset); /* fixed after registry_open */
    const evaluation *e = last_done_locked(r);
    v->has_eval = e != NULL;
    if (e) {
        v->last_eval = *e;
        v->last_eval.pinned = NULL;
    }
    v->best_epoch = r->best_epoch;
    v->best_fid = r->best_fid;
    v->alerts_total = r->nalerts;
    int na = r->nalerts < RUN_VIEW_ALERTS ? r->nalerts : RUN_VIEW_ALERTS;
    if (na > 0 && (v->alerts = malloc((size_t)na * sizeof *v->alerts))) {
        memcpy(v->alerts, r->alerts + (r->nalerts - na), (size_t)na * sizeof *v->alerts);
        v->nalerts = na;
    }
}

void run_view_free(run_view *v)
{
    free(v->samples);
    free(v->alerts);
    v->samples = NULL;
    v->alerts = NULL;
}

/* The API's run object (registry.h), from a view: called with nothing locked. */
cJSON *run_view_cjson(const run_view *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", v->id);
    cJSON_AddStringToObject(o, "state", state_names[v->state]);
    add_string_or_null(o, "reason", v->reason);
    cJSON_AddItemToObject(o, "config", config_cjson(&v->cfg));
    cJSON_AddNumberToObject(o, "epoch", v->epoch);
    cJSON_AddNumberToObject(o, "iteration", v->iteration);
    cJSON_AddNumberToObject(o, "iterations_per_epoch", v->iterations_per_epoch);
    add_item_or_null(o, "last_metrics", v->has_metrics ? metrics_cjson(&v->last_metrics) : NULL);
    add_time(o, "created_at", v->created_at);
    add_time(o, "started_at", v->started_at);
    add_time(o, "updated_at", v->updated_at);
    add_time(o, "finished_at", v->finished_at);
    add_number_or_null(o, "queue_position", v->queue_position > 0, v->queue_position);
    add_string_or_null(o, "device", v->device);
    cJSON *se = cJSON_AddArrayToObject(o, "samples_epochs");
    for (int i = 0; i < v->nsamples; i++)
        cJSON_AddItemToArray(se, cJSON_CreateNumber(v->samples[i]));
    add_number_or_null(o, "checkpoint_epoch", v->checkpoint_epoch >= 0, v->checkpoint_epoch);
    cJSON_AddItemToObject(o, "split", split_cjson(v->dataset));
    add_item_or_null(o, "last_evaluation", v->has_eval ? eval_json(v->id, &v->last_eval) : NULL);
    if (v->best_epoch >= 0) {
        cJSON *b = cJSON_AddObjectToObject(o, "best");
        cJSON_AddNumberToObject(b, "epoch", v->best_epoch);
        gan_json_add_double(b, "fid", v->best_fid);
    } else {
        cJSON_AddNullToObject(o, "best");
    }
    cJSON_AddNumberToObject(o, "alerts_total", v->alerts_total);
    cJSON *al = cJSON_AddArrayToObject(o, "alerts");
    for (int i = 0; i < v->nalerts; i++)
        cJSON_AddItemToArray(al, gan_alert_to_cjson(&v->alerts[i]));
    return o;
}

/* The same for one run, under the lock (its queue position costs one pass over the table). */
cJSON *run_cjson_locked(const gand_registry *reg, const run *r)
{
    run_view v;
    run_view_take_locked(reg, r, queue_position_locked(reg, r), &v);
    cJSON *o = run_view_cjson(&v);
    run_view_free(&v);
    return o;
}

/* run.json: what a restart needs, in the API's words where they overlap (nothing locked). */
char *run_file_json(const run_record *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "state", state_names[r->state]);
    add_string_or_null(o, "reason", r->reason);
    cJSON_AddItemToObject(o, "config", config_cjson(&r->cfg));
    add_time(o, "created_at", r->created_at);
    add_time(o, "started_at", r->started_at);
    add_time(o, "updated_at", r->updated_at);
    add_time(o, "finished_at", r->finished_at);
    add_time(o, "queued_at", r->queued_at);
    cJSON_AddNumberToObject(o, "epoch", r->epoch);
    add_number_or_null(o, "checkpoint_epoch", r->checkpoint_epoch >= 0, r->checkpoint_epoch);
    add_string_or_null(o, "device", r->device);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

/* A "state" event's data, from the record copied with it (nothing locked). */
char *state_event_data(const run_record *r, int64_t at)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", state_names[r->state]);
    add_string_or_null(o, "reason", r->reason);
    cJSON_AddNumberToObject(o, "epoch", r->epoch);
    add_time(o, "at", at);
    return print_and_delete(o);
}
