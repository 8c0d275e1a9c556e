/*
 * daemon/run_store.c — the run store: every file of a run's directory, written and read back at
 * start-up.
 */
#include "daemon/registry_internal.h"

#include "gan/json_text.h"

pending_files prepare_files_locked(gand_registry *reg, run *r, bool state_event)
{
    (void)reg;
    pending_files p;
    memset(&p, 0, sizeof p);
    r->updated_at = now_ms();
    run_record *rec = &p.record;
    str_printf(rec->id, sizeof rec->id, "%s", r->id);
    rec->state = r->state;
    str_printf(rec->reason, sizeof rec->reason, "%s", r->reason);
    rec->cfg = r->cfg;
    rec->created_at = r->created_at;
    rec->started_at = r->started_at;
    rec->updated_at = r->updated_at;
    rec->finished_at = r->finished_at;
    rec->queued_at = r->queued_at;
    rec->epoch = r->nmetrics;
    rec->checkpoint_epoch = r->checkpoint_epoch;
    str_printf(rec->device, sizeof rec->device, "%s", r->device);
    p.has_record = !r->persist_disabled;
    if (state_event) {
        /* added by store_files; until then an event stream of the run does not end */
        p.state_event = true;
        p.state_at = r->updated_at;
        r->events_pending++;
    }
    return p;
}

/*
 * Publish and write what prepare_files_locked copied (r->io held, reg->lock
 * not): the state event is formatted here and added under the lock, then
 * appended to events.jsonl; run.json is formatted and written atomically.
 */
int store_files(gand_registry *reg, run *r, pending_files *p)
{
    int rc = 0;
    char path[PATH_MAX];
    events_report_lost(reg);
    if (p->state_event) {
        char *data = state_event_data(&p->record, p->state_at);
        char *line = data ? event_line("state", p->record.epoch, data) : NULL;
        reg_lock(reg);
        r->events_pending--;
        event_add_locked(reg, r, "state", data);
        reg_unlock(reg);
        p->state_event = false;
        if (!line) {
            log_err("run %s: out of memory recording a state event", r->id);
            rc = -1;
        } else if (!r->removed) {
            run_path(r, "events.jsonl", path, sizeof path);
            if (gan_append_line(path, line) != 0) {
                log_err("run %s: cannot append to %s: %s", r->id, path, strerror(errno));
                rc = -1;
            }
        }
        free(line);
    }
    if (p->config_data && !r->removed) {
        char *line = event_line("config", p->config_epoch, p->config_data);
        run_path(r, "events.jsonl", path, sizeof path);
        if (!line || gan_append_line(path, line) != 0) {
            log_err("run %s: cannot append to %s: %s", r->id, path,
                    line ? strerror(errno) : "out of memory");
            rc = -1;
        }
        free(line);
    }
    free(p->config_data);
    p->config_data = NULL;
    if (r->removed) /* deleted meanwhile: its directory is gone */
        goto out;
    if (p->has_record) {
        gan_error err;
        char *json = run_file_json(&p->record);
        run_path(r, "run.json", path, sizeof path);
        if (!json) {
            log_err("run %s: out of memory formatting run.json", r->id);
            rc = -1;
        } else if (gan_write_file_atomic(path, json, strlen(json), &err) != 0) {
            log_err("run %s: cannot write run.json: %s", r->id, err.message);
            rc = -1;
        }
        free(json);
    }
out:
    p->has_record = false;
    return rc;
}

/* Write run.json (no event): after a checkpoint, at shutdown. */
void persist_run(gand_registry *reg, run *r)
{
    pthread_mutex_lock(&r->io);
    reg_lock(reg);
    pending_files p = prepare_files_locked(reg, r, false);
    reg_unlock(reg);
    store_files(reg, r, &p);
    pthread_mutex_unlock(&r->io);
}

/* ---- checkpoints and metrics files ------------------------------------ */

/* metrics.jsonl's text for the records in memory (under reg->lock). */
char *metrics_text_locked(const run *r)
{
    sb b = {0};
    char line[1024];
    sb_puts(&b, "");
    for (int i = 0; i < r->nmetrics; i++) {
        gan_epoch_metrics_json(&r->metrics[i], line, sizeof line);
        sb_puts(&b, line);
        sb_puts(&b, "\n");
    }
    return sb_take(&b);
}

/* Read metrics.jsonl; stops at the first line that is not the next epoch (a torn tail). */
static int load_metrics(run *r, bool *cut)
{
    char path[PATH_MAX];
    run_path(r, "metrics.jsonl", path, sizeof path);
    *cut = false;
    if (access(path, F_OK) != 0)
        return 0;
    gan_error err;
    char *text = read_text(path, (size_t)1 << 30, &err);
    if (!text) {
        log_warning("run %s: %s", r->id, err.message);
        *cut = true;
        return 0;
    }
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        gan_epoch_metrics m;
        bool ok = gan_epoch_metrics_from_cjson(o, &m) == 0 && m.epoch == r->nmetrics + 1;
        cJSON_Delete(o);
        if (!ok) {
            log_warning("run %s: metrics.jsonl line %d is not the record of epoch %d; "
                        "history is cut there",
                        r->id, r->nmetrics + 1, r->nmetrics + 1);
            *cut = true;
            break;
        }
        if (!grow((void **)&r->metrics, &r->metrics_cap, r->nmetrics + 1, sizeof m)) {
            free(text);
            return -1;
        }
        r->metrics[r->nmetrics++] = m;
    }
    free(text);
    return 0;
}

/* Rebuild the event list: events.jsonl merged with the epoch records by epoch. */
static void load_events(gand_registry *reg, run *r)
{
    char path[PATH_MAX];
    run_path(r, "events.jsonl", path, sizeof path);
    char *text = NULL;
    gan_error err;
    if (access(path, F_OK) == 0 && !(text = read_text(path, (size_t)1 << 28, &err)))
        log_warning("run %s: %s", r->id, err.message);
    int mi = 0;
    char line[1024];
    char *save = NULL;
    for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(l);
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "event");
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(o, "epoch");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
        const char *k = NULL;
        if (cJSON_IsString(kind) && strcmp(kind->valuestring, "state") == 0)
            k = "state";
        else if (cJSON_IsString(kind) && strcmp(kind->valuestring, "config") == 0)
            k = "config";
        else if (cJSON_IsString(kind) && strcmp(kind->valuestring, "evaluation") == 0)
            k = "evaluation";
        else if (cJSON_IsString(kind) && strcmp(kind->valuestring, "alert") == 0)
            k = "alert";
        if (!k || !cJSON_IsNumber(ep) || !cJSON_IsObject(data)) {
            log_warning("run %s: events.jsonl has an unreadable line; later events are dropped",
                        r->id);
            cJSON_Delete(o);
            break;
        }
        while (mi < r->nmetrics && r->metrics[mi].epoch <= ep->valueint) {
            gan_epoch_metrics_json(&r->metrics[mi++], line, sizeof line);
            event_add_locked(reg, r, "epoch", strdup(line));
        }
        gan_alert a;
        if (strcmp(k, "alert") == 0 && gan_alert_from_cjson(&a, data) == 0)
            alert_keep_locked(r, &a);
        event_add_locked(reg, r, k, cJSON_PrintUnformatted(data));
        cJSON_Delete(o);
    }
    while (mi < r->nmetrics) {
        gan_epoch_metrics_json(&r->metrics[mi++], line, sizeof line);
        event_add_locked(reg, r, "epoch", strdup(line));
    }
    free(text);
}

static void load_samples(run *r)
{
    char path[PATH_MAX];
    run_path(r, "samples", path, sizeof path);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        int epoch;
        char tail[8];
        if (sscanf(e->d_name, "epoch-%d.%7s", &epoch, tail) == 2 && strcmp(tail, "png") == 0 &&
            epoch > 0 && strlen(e->d_name) == strlen("epoch-000000.png") &&
            grow((void **)&r->samples, &r->samples_cap, r->nsamples + 1, sizeof(int)))
            r->samples[r->nsamples++] = epoch;
    }
    closedir(d);
    if (r->nsamples > 1) /* qsort's array must not be NULL, even for 0 elements */
        qsort(r->samples, (size_t)r->nsamples, sizeof(int), cmp_int);
}

static bool range_from_json(const cJSON *a, int *begin, int *end)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2)
        return false;
    const cJSON *b = cJSON_GetArrayItem(a, 0), *e = cJSON_GetArrayItem(a, 1);
    if (!cJSON_IsNumber(b) || !cJSON_IsNumber(e))
        return false;
    *begin = b->valueint;
    *end = e->valueint;
    return true;
}

/* One line of evaluations.jsonl (an evaluation object) into *e; false when it is not one. */
static bool eval_from_json(const cJSON *o, evaluation *e)
{
    memset(e, 0, sizeof *e);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "state");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(o, "reason");
    const cJSON *trigger = cJSON_GetObjectItemCaseSensitive(o, "trigger");
    const cJSON *samples = cJSON_GetObjectItemCaseSensitive(o, "samples");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(o, "seed");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(o, "result");
    if (!cJSON_IsNumber(id) || id->valueint < 1 || !cJSON_IsString(st) ||
        !cJSON_IsNumber(samples) || !cJSON_IsNumber(seed) || seed->valuedouble < 0)
        return false;
    int s = -1;
    for (int i = 0; i < EVAL_STATE_COUNT; i++)
        if (strcmp(st->valuestring, eval_state_names[i]) == 0)
            s = i;
    if (s < 0)
        return false;
    e->id = id->valueint;
    e->state = (eval_state)s;
    e->samples = samples->valueint;
    e->seed = (uint64_t)seed->valuedouble;
    e->trigger = EVAL_REQUEST;
    for (int i = 0; i < 3; i++)
        if (cJSON_IsString(trigger) && strcmp(trigger->valuestring, eval_trigger_names[i]) == 0)
            e->trigger = (eval_trigger)i;
    str_printf(e->reason, sizeof e->reason, "%s",
               cJSON_IsString(reason) ? reason->valuestring : "");
    static const char *const tnames[] = {"created_at", "started_at", "finished_at"};
    int64_t *tvals[] = {&e->created_at, &e->started_at, &e->finished_at};
    for (int i = 0; i < 3; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, tnames[i]);
        *tvals[i] = cJSON_IsString(t) ? parse_time(t->valuestring) : 0;
    }
    if (e->state != EVAL_DONE)
        return true;
    const cJSON *ll = cJSON_GetObjectItemCaseSensitive(res, "parzen_ll");
    const cJSON *se = cJSON_GetObjectItemCaseSensitive(res, "stderr");
    const cJSON *sigma = cJSON_GetObjectItemCaseSensitive(res, "sigma");
    const cJSON *epoch = cJSON_GetObjectItemCaseSensitive(res, "epoch");
    const cJSON *split = cJSON_GetObjectItemCaseSensitive(res, "split");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(res, "data");
    const cJSON *secs = cJSON_GetObjectItemCaseSensitive(res, "seconds");
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(res, "metrics");
    e->has_parzen = cJSON_IsNumber(ll);
    e->has_metrics = cJSON_IsObject(metrics);
    if (e->has_metrics && gan_sample_metrics_from_cjson(metrics, &e->metrics) != 0)
        return false;
    if (!e->has_parzen && !e->has_metrics)
        return false;
    if ((e->has_parzen && (!cJSON_IsNumber(se) || !cJSON_IsNumber(sigma))) ||
        !cJSON_IsNumber(epoch) || !cJSON_IsString(data) ||
        !range_from_json(cJSON_GetObjectItemCaseSensitive(split, "validation"), &e->valid_begin,
                         &e->valid_end) ||
        !range_from_json(cJSON_GetObjectItemCaseSensitive(split, "test"), &e->test_begin,
                         &e->test_end))
        return false;
    if (e->has_parzen) {
        e->parzen_ll = ll->valuedouble;
        e->stderr_ll = se->valuedouble;
        e->sigma = sigma->valuedouble;
    }
    e->epoch = epoch->valueint;
    e->seconds = cJSON_IsNumber(secs) ? secs->valuedouble : 0;
    str_printf(e->data, sizeof e->data, "%s", data->valuestring);
    const cJSON *vdata = cJSON_GetObjectItemCaseSensitive(res, "validation_data");
    str_printf(e->valid_data, sizeof e->valid_data, "%s",
               cJSON_IsString(vdata) ? vdata->valuestring : data->valuestring);
    return true;
}

/*
 * Read evaluations.jsonl: the last line of each id wins (one is appended at
 * each state change). One that was queued or running is queued again.
 */
static void load_evaluations(gand_registry *reg, run *r)
{
    char path[PATH_MAX];
    run_path(r, "evaluations.jsonl", path, sizeof path);
    if (access(path, F_OK) != 0)
        return;
    gan_error err;
    char *text = read_text(path, (size_t)1 << 28, &err);
    if (!text) {
        log_warning("run %s: %s", r->id, err.message);
        return;
    }
    int lineno = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        lineno++;
        cJSON *o = cJSON_Parse(l);
        evaluation e;
        bool ok = eval_from_json(o, &e);
        cJSON_Delete(o);
        if (!ok || e.id > r->nevals + 1) {
            log_warning("run %s: evaluations.jsonl line %d is not an evaluation in order; it "
                        "is skipped",
                        r->id, lineno);
            continue;
        }
        if (e.id == r->nevals + 1) {
            if (!grow((void **)&r->evals, &r->evals_cap, r->nevals + 1, sizeof e))
                break;
            r->nevals++;
        }
        r->evals[e.id - 1] = e;
    }
    free(text);
    for (int i = 0; i < r->nevals; i++) {
        evaluation *e = &r->evals[i];
        if (e->state == EVAL_QUEUED || e->state == EVAL_RUNNING) {
            e->state = EVAL_QUEUED;
            e->started_at = 0;
            e->queue_seq = reg->next_eval_seq++;
            r->evals_pending++;
            reg->evals_queued++;
            log_info("run %s: evaluation %d was not finished when gand stopped; it is queued "
                     "again",
                     r->id, e->id);
        }
    }
}

/* checkpoint-best.safetensors: its epoch, and the Fréchet distance measured there. */
static void load_best(run *r)
{
    char path[PATH_MAX];
    run_path(r, "checkpoint-best.safetensors", path, sizeof path);
    if (access(path, F_OK) != 0)
        return;
    gan_checkpoint_position pos;
    gan_error err;
    if (gan_checkpoint_inspect(path, &r->cfg, &pos, NULL, &err) != 0) {
        log_warning("run %s: its best checkpoint is not used: %s", r->id, err.message);
        return;
    }
    for (int i = 0; i < r->nevals; i++) {
        const evaluation *e = &r->evals[i];
        if (e->state == EVAL_DONE && e->trigger != EVAL_REQUEST && e->has_metrics &&
            e->epoch == pos.epoch && (r->best_epoch < 0 || e->metrics.fid < r->best_fid)) {
            r->best_epoch = pos.epoch;
            r->best_fid = e->metrics.fid;
        }
    }
    if (r->best_epoch < 0)
        log_warning("run %s: no evaluation of epoch %d, the epoch of its best checkpoint, is "
                    "recorded; the next better one replaces it",
                    r->id, pos.epoch);
}

static int parse_run_file(run *r, const char *text, gan_error *err)
{
    cJSON *o =
        gan_json_parse(text, strlen(text), NULL, false); /* integers judged on their digits */
    int rc = -1;
    if (!cJSON_IsObject(o)) {
        gan_fail(err, "run.json", "run.json is not a JSON object");
        goto out;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "state");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "config");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(o, "reason");
    const cJSON *device = cJSON_GetObjectItemCaseSensitive(o, "device");
    if (!cJSON_IsString(id) || strcmp(id->valuestring, r->id) != 0) {
        gan_fail(err, "run.json", "run.json names another run id");
        goto out;
    }
    int s = -1;
    for (int i = 0; cJSON_IsString(st) && i < RUN_STATE_COUNT; i++)
        if (strcmp(st->valuestring, state_names[i]) == 0)
            s = i;
    if (s < 0) {
        gan_fail(err, "run.json", "run.json has no valid state");
        goto out;
    }
    /* from the parsed tree: printing it again with cJSON would round 2^53 and 17-digit doubles */
    gan_error cerr = {{0}, {0}};
    if (!cJSON_IsObject(cfg) || gan_config_from_cjson(&r->cfg, cfg, &cerr) != 0) {
        gan_fail(err, "run.json", "run.json has no valid config%s%s",
                 cJSON_IsObject(cfg) ? ": " : "", cJSON_IsObject(cfg) ? cerr.message : "");
        goto out;
    }
    r->state = (run_state)s;
    str_printf(r->reason, sizeof r->reason, "%s",
               cJSON_IsString(reason) ? reason->valuestring : "");
    str_printf(r->device, sizeof r->device, "%s",
               cJSON_IsString(device) ? device->valuestring : "");
    static const char *const tnames[] = {"created_at", "started_at", "updated_at", "finished_at",
                                         "queued_at"};
    int64_t *tvals[] = {&r->created_at, &r->started_at, &r->updated_at, &r->finished_at,
                        &r->queued_at};
    for (int i = 0; i < 5; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, tnames[i]);
        *tvals[i] = cJSON_IsString(t) ? parse_time(t->valuestring) : 0;
    }
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

/* Load one run directory; never fails as a whole (a broken run becomes "failed"). */
static run *load_run(gand_registry *reg, const char *id)
{
    run *r = run_new(reg, id);
    if (!r)
        return NULL;
    char path[PATH_MAX];
    gan_error err = {{0}, {0}};
    run_path(r, "run.json", path, sizeof path);
    char *text = read_text(path, (size_t)1 << 24, &err);
    bool broken = !text || parse_run_file(r, text, &err) != 0;
    free(text);
    char ckpt[PATH_MAX];
    run_path(r, "checkpoint.safetensors", ckpt, sizeof ckpt);
    if (broken) {
        log_err("run %s: %s; the run is marked failed", id, err.message);
        char reason[REASON_MAX];
        str_printf(reason, sizeof reason, "run.json is unreadable: %s", err.message);
        if (gan_checkpoint_read_config(ckpt, &r->cfg, NULL) != 0)
            gan_config_preset(&r->cfg, "seed", NULL);
        r->state = RUN_FAILED;
        str_printf(r->reason, sizeof r->reason, "%s", reason);
        r->persist_disabled = true; /* keep the evidence */
    }

    bool cut;
    if (load_metrics(r, &cut) != 0) {
        run_free(r);
        return NULL;
    }
    r->metrics_file_stale = cut;
    load_samples(r);

    bool ckpt_failed = false;
    if (!broken && access(ckpt, F_OK) == 0) {
        gan_checkpoint_position pos;
        if (gan_checkpoint_inspect(ckpt, &r->cfg, &pos, NULL, &err) != 0) {
            log_err("run %s: %s; the run is marked failed", id, err.message);
            ckpt_failed = true;
        } else {
            r->checkpoint_epoch = pos.epoch;
            r->iteration = pos.iteration;
        }
    }
    /* a run that may train again continues from its checkpoint: history past it is cut */
    if (!broken && !ckpt_failed && r->state != RUN_STOPPED && r->state != RUN_FAILED) {
        int keep = r->checkpoint_epoch < 0 ? 0 : r->checkpoint_epoch;
        if (r->nmetrics > keep) {
            log_notice("run %s: resuming from the checkpoint of epoch %d; metrics of epochs "
                       "%d..%d are dropped and will be trained again",
                       id, keep, keep + 1, r->nmetrics);
            r->nmetrics = keep;
            r->metrics_file_stale = true;
        }
        if (r->checkpoint_epoch < 0)
            r->iteration = 0;
    }
    if (r->metrics_file_stale) {
        char *mt = metrics_text_locked(r);
        run_path(r, "metrics.jsonl", path, sizeof path);
        if (mt && gan_write_file_atomic(path, mt, strlen(mt), &err) == 0)
            r->metrics_file_stale = false;
        else
            log_err("run %s: cannot rewrite metrics.jsonl: %s", id, mt ? err.message : "no memory");
        free(mt);
    }
    load_events(reg, r);
    load_evaluations(reg, r);
    load_best(r);

    if (ckpt_failed) {
        char reason[REASON_MAX];
        str_printf(reason, sizeof reason, "checkpoint is unreadable: %s", err.message);
        set_state(reg, r, RUN_FAILED, reason, false);
    }
    if (r->state == RUN_RUNNING) { /* interrupted: resumes first */
        log_info("run %s was running when gand stopped; it resumes from %s", id,
                 r->checkpoint_epoch >= 0 ? "its last checkpoint" : "the start");
        r->state = RUN_QUEUED;
        r->queued_at = 1; /* ahead of every queued run */
    }
    if (r->created_at == 0)
        r->created_at = now_ms();
    return r;
}

static int cmp_queue(const void *a, const void *b)
{
    const run *x = *(run *const *)a, *y = *(run *const *)b;
    if (x->queued_at != y->queued_at)
        return x->queued_at < y->queued_at ? -1 : 1;
    return strcmp(x->id, y->id);
}

void load_runs(gand_registry *reg)
{
    DIR *d = opendir(reg->runs_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') {
            if (strncmp(e->d_name, ".deleted-", 9) == 0) { /* a delete that was interrupted */
                char p[PATH_MAX];
                str_printf(p, sizeof p, "%s/%s", reg->runs_dir, e->d_name);
                remove_tree(p);
            }
            continue;
        }
        if (!valid_run_id(e->d_name)) {
            log_warning("state directory: ignoring %s/%s (not a run id)", reg->runs_dir, e->d_name);
            continue;
        }
        char p[PATH_MAX];
        struct stat st;
        str_printf(p, sizeof p, "%s/%s", reg->runs_dir, e->d_name);
        if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        run *r = load_run(reg, e->d_name);
        if (!r || !run_insert_locked(reg, r)) {
            log_err("run %s: out of memory loading it", e->d_name);
            run_free(r);
            continue;
        }
        unsigned long long v;
        if (sscanf(r->id, "r%12llx", &v) == 1 && strlen(r->id) == 13 && v > reg->last_id_value)
            reg->last_id_value = v;
    }
    closedir(d);
    /* queue order: interrupted runs first, then by the time they were queued */
    run **q = reg->nruns ? malloc((size_t)reg->nruns * sizeof *q) : NULL;
    if (q) {
        memcpy(q, reg->runs, (size_t)reg->nruns * sizeof *q);
        qsort(q, (size_t)reg->nruns, sizeof *q, cmp_queue);
        for (int i = 0; i < reg->nruns; i++)
            q[i]->queue_seq = reg->next_queue_seq++;
        free(q);
    }
}
