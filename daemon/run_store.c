/*
 * daemon/run_store.c — the run store: every file of a run's directory, written and read back at
 * start-up.
 */
#include "daemon/registry_internal.h"

#include "gan/json_text.h"

run_record run_record_locked(const run *r)
{
    run_record rec;
    memset(&rec, 0, sizeof rec);
    str_printf(rec.id, sizeof rec.id, "%s", r->id);
    rec.state = r->state;
    str_printf(rec.reason, sizeof rec.reason, "%s", r->reason);
    rec.cfg = r->cfg;
    rec.created_at = r->created_at;
    rec.started_at = r->started_at;
    rec.updated_at = r->updated_at;
    rec.finished_at = r->finished_at;
    rec.queued_at = r->queued_at;
    rec.epoch = run_epochs_locked(r);
    rec.checkpoint_epoch = r->checkpoint_epoch;
    str_printf(rec.device, sizeof rec.device, "%s", r->device);
    rec.executor = r->executor ? r->executor : "";
    rec.slurm_job_id = r->slurm_job_id;
    str_printf(rec.node, sizeof rec.node, "%s", r->node);
    return rec;
}

pending_files prepare_files_locked(gand_registry *reg, run *r, bool state_event)
{
    (void)reg;
    pending_files p;
    memset(&p, 0, sizeof p);
    r->updated_at = now_ms();
    p.record = run_record_locked(r);
    p.has_record = !r->persist_disabled;
    if (state_event) {
        /* added by store_files; until then an event stream of the run does not end */
        p.state_event = true;
        p.state_at = r->updated_at;
        r->events_pending++;
    }
    return p;
}

bool errno_is_full(int e)
{
    return e == ENOSPC || e == EDQUOT;
}

int write_run_record(const run *r, const run_record *rec, gan_error *err)
{
    char path[PATH_MAX];
    run_path(r, "run.json", path, sizeof path);
    char *json = run_file_json(rec);
    if (!json) {
        errno = ENOMEM;
        return gan_fail(err, "", "out of memory formatting run.json");
    }
    int rc = gan_write_file_atomic(path, json, strlen(json), err);
    int e = errno;
    free(json);
    errno = e;
    return rc;
}

/*
 * Publish and write what prepare_files_locked copied (r->io held, reg->lock
 * not): the state event is formatted here and added under the lock, then
 * appended to events.jsonl; run.json is formatted and written atomically.
 */
int store_files(gand_registry *reg, run *r, pending_files *p)
{
    int rc = 0;
    if (p->state_event) {
        char *data = state_event_data(&p->record, p->state_at);
        char *copy = data ? strdup(data) : NULL;
        reg_lock(reg);
        r->events_pending--;
        uint64_t id = event_add_locked(reg, r, "state", copy);
        reg_unlock(reg);
        p->state_event = false;
        if (!data) {
            log_err("run %s: out of memory recording a state event", r->id);
            rc = -1;
        } else if (event_append(r, id, "state", p->record.epoch, data) != 0) {
            rc = -1;
        }
        free(data);
    }
    if (p->config_data &&
        event_append(r, p->config_id, "config", p->config_epoch, p->config_data) != 0)
        rc = -1;
    free(p->config_data);
    p->config_data = NULL;
    events_after_lock(reg);
    if (p->has_record && !r->removed) { /* else deleted meanwhile: its directory is gone */
        gan_error err;
        if (write_run_record(r, &p->record, &err) != 0) {
            log_err("run %s: cannot write run.json: %s", r->id, err.message);
            rc = -1;
        }
    }
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

int run_epochs_locked(const run *r)
{
    return r->nmetrics > 0 ? r->metrics[r->nmetrics - 1].epoch : 0;
}

bool metrics_cut_locked(run *r, int keep)
{
    int n = r->nmetrics;
    while (n > 0 && r->metrics[n - 1].epoch > keep)
        n--;
    bool cut = n < r->nmetrics;
    r->nmetrics = n;
    return cut;
}

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

/* ---- reading a run's files back ------------------------------------------ */

/* The largest of a run's files that start-up reads back. */
#define METRICS_MAX ((size_t)1 << 30)
#define EVENTS_MAX ((size_t)1 << 28)
#define EVALUATIONS_MAX ((size_t)1 << 28)

/* The lines of a file read whole: each one NUL-terminated in place. */
typedef struct line_iter {
    char *p, *end;
    int lineno;
} line_iter;

/* The next line; *whole is false when it holds a NUL byte (it cannot be a record). */
static char *next_line(line_iter *it, bool *whole)
{
    if (it->p >= it->end)
        return NULL;
    char *line = it->p, *nl = memchr(line, '\n', (size_t)(it->end - line));
    if (!nl)
        nl = it->end; /* cut off at load when torn; the last line of a whole file */
    *nl = '\0';
    it->p = nl + 1;
    it->lineno++;
    *whole = strlen(line) == (size_t)(nl - line);
    return line;
}

static bool damaged_listed(const run *r, const char *name)
{
    for (int i = 0; i < r->ndamaged; i++)
        if (strcmp(r->damaged[i], name) == 0)
            return true;
    return false;
}

static void list_damaged(run *r, const char *name)
{
    if (!damaged_listed(r, name) && r->ndamaged < (int)(sizeof r->damaged / sizeof r->damaged[0]))
        str_printf(r->damaged[r->ndamaged++], sizeof r->damaged[0], "%s", name);
}

/*
 * A file of the run with lines that cannot be read: a copy of it as it is on
 * disk (loading does not change it) goes to NAME.damaged, unless one is there
 * already from an earlier start, and the run lists it. Every line that can be
 * read is still used.
 */
static void keep_damaged(run *r, const char *name, size_t max, int bad, int first_bad)
{
    char path[PATH_MAX], aside[PATH_MAX];
    run_path(r, name, path, sizeof path);
    str_printf(aside, sizeof aside, "%s.damaged", path);
    gan_error err = {{0}, {0}};
    bool kept = access(aside, F_OK) == 0;
    uint8_t *text = NULL;
    size_t len = 0;
    if (!kept && gan_read_file(path, &text, &len, max, &err) == 0 &&
        gan_write_file_atomic(aside, text, len, &err) == 0)
        kept = true;
    free(text);
    list_damaged(r, name);
    if (kept)
        log_warning("run %s: %d line(s) of %s cannot be read (the first is line %d); they are "
                    "skipped and every other line is used; the file as it was is kept in %s",
                    r->id, bad, name, first_bad, aside);
    else
        log_err("run %s: %d line(s) of %s cannot be read (the first is line %d); they are "
                "skipped; a copy of the file cannot be kept: %s",
                r->id, bad, name, first_bad, err.message);
}

/*
 * Read one of a run's .jsonl files to load it: NULL when it is absent or
 * cannot be read (logged). A torn last line (a crash or a full disk while it
 * was appended) is cut off the file first; something other than a regular
 * file in its place (a FIFO would block) is moved aside as NAME.damaged.
 */
static char *load_jsonl(run *r, const char *name, size_t max, size_t *len)
{
    char path[PATH_MAX], aside[PATH_MAX];
    run_path(r, name, path, sizeof path);
    str_printf(aside, sizeof aside, "%s.damaged", path);
    if (access(aside, F_OK) == 0 && !damaged_listed(r, name)) {
        list_damaged(r, name);
        log_notice("run %s: %s was found damaged before; its copy as it was is %s", r->id, name,
                   aside);
    }
    struct stat st;
    if (lstat(path, &st) != 0)
        return NULL;
    if (!S_ISREG(st.st_mode)) {
        list_damaged(r, name);
        if (rename(path, aside) == 0)
            log_err("run %s: %s is not a regular file; it is moved aside to %s and the run goes on "
                    "without it",
                    r->id, name, aside);
        else
            log_err("run %s: %s is not a regular file, and cannot be moved aside: %s", r->id, name,
                    strerror(errno));
        return NULL;
    }
    long long dropped = 0;
    if (gan_torn_tail(path, &dropped) != 0)
        log_err("run %s: cannot cut the torn last line of %s: %s", r->id, name, strerror(errno));
    else if (dropped > 0)
        log_notice("run %s: the last line of %s was torn (%lld bytes without a line end, from an "
                   "append that did not finish); it is cut off",
                   r->id, name, dropped);
    uint8_t *data = NULL;
    gan_error err;
    if (gan_read_file(path, &data, len, max, &err) != 0) {
        log_err("run %s: %s", r->id, err.message);
        return NULL;
    }
    return (char *)data;
}

/* Read metrics.jsonl: every record in epoch order; other lines are skipped and kept aside. */
static int load_metrics(run *r)
{
    size_t len;
    char *text = load_jsonl(r, "metrics.jsonl", METRICS_MAX, &len);
    if (!text)
        return 0;
    line_iter it = {text, text + len, 0};
    int bad = 0, first_bad = 0, rc = 0;
    bool whole;
    for (char *line; (line = next_line(&it, &whole));) {
        gan_epoch_metrics m;
        cJSON *o = whole ? cJSON_Parse(line) : NULL;
        bool ok = gan_epoch_metrics_from_cjson(o, &m) == 0 && m.epoch > run_epochs_locked(r);
        cJSON_Delete(o);
        if (!ok) {
            if (!bad++)
                first_bad = it.lineno;
            continue;
        }
        if (!grow((void **)&r->metrics, &r->metrics_cap, r->nmetrics + 1, sizeof m)) {
            rc = -1;
            break;
        }
        r->metrics[r->nmetrics++] = m;
    }
    free(text);
    if (bad)
        keep_damaged(r, "metrics.jsonl", METRICS_MAX, bad, first_bad);
    return rc;
}

/* An event read back, in a run that is not shared yet: it keeps the id it was given. */
static void event_load(run *r, uint64_t id, const char *kind, int epoch, char *data)
{
    if (!data || !grow((void **)&r->events, &r->events_cap, r->nevents + 1, sizeof(run_event))) {
        free(data);
        return;
    }
    r->events[r->nevents++] = (run_event){id, kind, data, epoch};
    if (id > r->last_event_id)
        r->last_event_id = id;
}

static int cmp_event_id(const void *a, const void *b)
{
    uint64_t x = ((const run_event *)a)->id, y = ((const run_event *)b)->id;
    return (x > y) - (x < y);
}

static const char *event_kind(const cJSON *kind)
{
    static const char *const kinds[] = {"state", "config", "evaluation", "alert", "epoch"};
    for (size_t i = 0; cJSON_IsString(kind) && i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kind->valuestring, kinds[i]) == 0)
            return kinds[i];
    return NULL;
}

/*
 * Rebuild the event list from events.jsonl, each event with its id. Files
 * from before ids were written have no "id" and no epoch events: those get
 * ids 1, 2, ... in order, with the epoch records of metrics.jsonl merged in
 * by epoch, as they were numbered then.
 */
static void load_events(run *r)
{
    size_t len;
    char *text = load_jsonl(r, "events.jsonl", EVENTS_MAX, &len);
    line_iter it = {text, text ? text + len : NULL, 0};
    int mi = 0, bad = 0, first_bad = 0;
    bool legacy = true; /* no line with an id yet */
    uint64_t pos = 0;
    char line[1024];
    bool whole;
    for (char *l; text && (l = next_line(&it, &whole));) {
        cJSON *o = whole ? gan_json_parse(l, strlen(l), NULL, false) : NULL;
        const char *k = event_kind(cJSON_GetObjectItemCaseSensitive(o, "event"));
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(o, "epoch");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
        const cJSON *idj = cJSON_GetObjectItemCaseSensitive(o, "id");
        int64_t id = 0;
        bool has_id = idj != NULL;
        bool ok = k && cJSON_IsNumber(ep) && cJSON_IsObject(data) &&
                  (!has_id || gan_json_integer(idj, 1, (int64_t)1 << 53, &id)) &&
                  (has_id || legacy) && (has_id || strcmp(k, "epoch") != 0);
        if (!ok) {
            if (!bad++)
                first_bad = it.lineno;
            cJSON_Delete(o);
            continue;
        }
        if (legacy) { /* the epoch records up to this line's epoch come before it */
            while (mi < r->nmetrics && r->metrics[mi].epoch <= ep->valueint) {
                gan_epoch_metrics_json(&r->metrics[mi++], line, sizeof line);
                event_load(r, ++pos, "epoch", r->metrics[mi - 1].epoch, strdup(line));
            }
            legacy = !has_id;
        }
        gan_alert a;
        if (strcmp(k, "alert") == 0 && gan_alert_from_cjson(&a, data) == 0)
            alert_keep_locked(r, &a);
        event_load(r, has_id ? (uint64_t)id : ++pos, k, ep->valueint, cJSON_PrintUnformatted(data));
        cJSON_Delete(o);
    }
    while (legacy && mi < r->nmetrics) {
        gan_epoch_metrics_json(&r->metrics[mi++], line, sizeof line);
        event_load(r, ++pos, "epoch", r->metrics[mi - 1].epoch, strdup(line));
    }
    free(text);
    if (bad)
        keep_damaged(r, "events.jsonl", EVENTS_MAX, bad, first_bad);
    /* appends of two threads may land in either order; one id once */
    if (r->nevents > 1)
        qsort(r->events, (size_t)r->nevents, sizeof *r->events, cmp_event_id);
    /*
     * An epoch's event stays only while its record does: epochs past the
     * history (cut to the checkpoint above) are trained again, and an epoch
     * trained again after a crash supersedes its earlier event. So a replay
     * shows each epoch once, in order.
     */
    int floor = run_epochs_locked(r) + 1; /* the lowest epoch of the epoch events kept after i */
    for (int i = r->nevents - 1; i >= 0; i--) {
        run_event *e = &r->events[i];
        if (strcmp(e->kind, "epoch") != 0)
            continue;
        if (e->epoch >= floor) { /* a twice-written line too: its twin, after it, is kept */
            free(e->data);
            e->data = NULL;
        } else {
            floor = e->epoch;
        }
    }
    int n = 0;
    for (int i = 0; i < r->nevents; i++) {
        if (!r->events[i].data || (n > 0 && r->events[i].id == r->events[n - 1].id)) {
            free(r->events[i].data);
            continue;
        }
        r->events[n++] = r->events[i];
    }
    r->nevents = n;
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
    size_t len;
    char *text = load_jsonl(r, "evaluations.jsonl", EVALUATIONS_MAX, &len);
    if (!text)
        return;
    line_iter it = {text, text + len, 0};
    int bad = 0, first_bad = 0;
    bool whole;
    for (char *l; (l = next_line(&it, &whole));) {
        cJSON *o = whole ? cJSON_Parse(l) : NULL;
        evaluation e;
        bool ok = eval_from_json(o, &e) && e.id <= 1000000;
        cJSON_Delete(o);
        if (!ok) {
            if (!bad++)
                first_bad = it.lineno;
            continue;
        }
        if (e.id > r->nevals) {
            if (!grow((void **)&r->evals, &r->evals_cap, e.id, sizeof e))
                break;
            /* numbers whose every line was damaged: failed, saying so */
            for (int i = r->nevals; i < e.id - 1; i++) {
                evaluation *g = &r->evals[i];
                memset(g, 0, sizeof *g);
                g->id = i + 1;
                g->state = EVAL_FAILED;
                str_printf(g->reason, sizeof g->reason,
                           "its record in evaluations.jsonl cannot be read");
            }
            r->nevals = e.id;
        }
        r->evals[e.id - 1] = e;
    }
    free(text);
    if (bad)
        keep_damaged(r, "evaluations.jsonl", EVALUATIONS_MAX, bad, first_bad);
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
    const cJSON *executor = cJSON_GetObjectItemCaseSensitive(o, "executor");
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(o, "slurm_job_id");
    const cJSON *node = cJSON_GetObjectItemCaseSensitive(o, "node");
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
    r->executor = !cJSON_IsString(executor)                     ? NULL
                  : strcmp(executor->valuestring, "slurm") == 0 ? "slurm"
                  : strcmp(executor->valuestring, "local") == 0 ? "local"
                                                                : NULL;
    r->slurm_job_id = cJSON_IsNumber(job) && job->valuedouble >= 1 && job->valuedouble < 1e15
                          ? (long)job->valuedouble
                          : 0;
    str_printf(r->node, sizeof r->node, "%s", cJSON_IsString(node) ? node->valuestring : "");
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

    if (load_metrics(r) != 0) {
        run_free(r);
        return NULL;
    }
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
    /*
     * The files are never cut here. A finished run keeps all its history,
     * with or without a checkpoint. A run that will train again shows what it
     * resumes from: records past its checkpoint (a crash between the two
     * writes) are trained again, and the worker drops them from the file
     * when it resumes (worker_build).
     */
    if (r->checkpoint_epoch < 0)
        r->iteration = 0;
    bool resumes = r->state == RUN_QUEUED || r->state == RUN_PAUSED || r->state == RUN_RUNNING;
    /* a Slurm job may still be training it: the executor follows the job's own files */
    bool in_slurm = !broken && resumes && r->slurm_job_id > 0 && r->executor &&
                    strcmp(r->executor, "slurm") == 0;
    if (in_slurm)
        resumes = false;
    int had = run_epochs_locked(r);
    if (!broken && !ckpt_failed && resumes &&
        metrics_cut_locked(r, r->checkpoint_epoch < 0 ? 0 : r->checkpoint_epoch)) {
        r->metrics_file_stale = true; /* rewritten from memory when it resumes */
        log_notice("run %s: epochs %d to %d of metrics.jsonl are past its checkpoint; they are "
                   "trained again when it resumes",
                   id, run_epochs_locked(r) + 1, had);
    }
    load_events(r);
    load_evaluations(reg, r);
    load_best(r);

    if (ckpt_failed) {
        char reason[REASON_MAX];
        str_printf(reason, sizeof reason, "checkpoint is unreadable: %s", err.message);
        set_state(reg, r, RUN_FAILED, reason, false);
    }
    if (r->state == RUN_RUNNING && !in_slurm) { /* interrupted: resumes first */
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
