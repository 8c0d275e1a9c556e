/*
 * daemon/registry.c — the run registry (daemon/registry.h): the table of
 * runs, their files under the state directory, and the one worker thread
 * that owns the backend and trains the active run.
 *
 * Design choices a reader would otherwise wonder about:
 *
 *  - Locks. `reg->lock` protects the run table and every in-memory field of
 *    every run; it is held only for short bookkeeping, never while training,
 *    rendering or writing a checkpoint. Each run also has an `io` mutex that
 *    serialises the writers of its small files (run.json, events.jsonl). The
 *    order is always io, then lock: a change is made in memory under both,
 *    and the files are written with only io held, so events.jsonl lines are
 *    in the order of the in-memory sequence numbers. metrics.jsonl, samples
 *    and the checkpoint are written by the worker alone while it holds the
 *    run ("active"), and a run is never deleted while active.
 *
 *  - The mailbox is the run itself: a request changes `state` (pause, stop)
 *    or `cfg` (+ `cfg_dirty`) under the lock and returns at once; the worker
 *    reads both between iterations. So the answer to POST .../pause already
 *    says "paused" while the worker finishes its iteration and checkpoints.
 *
 *  - A paused run gives up the worker: it is checkpointed and its trainer
 *    freed, and the worker takes the next queued run. Resuming puts it back
 *    in the queue (at the end), or straight back to "running" when the worker
 *    had not yet let go of it. Resuming from the checkpoint is bit-identical.
 *
 *  - The backend is opened by the worker thread when registry_start runs it
 *    (a CUDA context belongs to the thread that made it), not by
 *    registry_open; registry_start waits for the outcome and reports it.
 *
 *  - Transitions (registry_control); anything else is REG_CONFLICT with
 *    "cannot <action> a run that is <state>":
 *      pause   queued | running → paused
 *      resume  paused → queued (→ running when the worker takes it), or
 *              straight to running when the worker still holds it;
 *              completed → queued once PATCH raised epochs above those done
 *      stop    queued | running | paused → stopped
 *    The worker moves queued → running → completed | failed (reason), and
 *    running → paused (reason) when it cannot write the run's files.
 *    PATCH is refused (409) for stopped and failed runs.
 *
 *  - Evaluations (registry.h) need the backend, so only the worker runs
 *    them: a request appends a queued evaluation to the run (under the
 *    lock) and wakes the worker; the worker takes the oldest queued one of
 *    any run (a global FIFO by queue_seq) between two training iterations or
 *    when idle, evaluates it with nothing locked, and records the result. An
 *    evaluation keeps the worker's heartbeat going (registry_heartbeat) for up
 *    to EVAL_GRACE_MS, so a long one on a CPU does not trip the watchdog while
 *    a hung one still does.
 *
 *  - Data sets: a run trains on the first train_images images of its data
 *    set's file (a view of the loaded file: the trainer copies what it is
 *    given); the held-out images are never trained on.
 *
 *  - Events are numbered from 1 per run. On start-up they are rebuilt from
 *    metrics.jsonl (the "epoch" events) and events.jsonl (the rest, each line
 *    carrying the number of completed epochs at the time), merged by epoch:
 *    this is the order in which they were first published, so numbers stay
 *    stable across restarts unless history past a checkpoint had to be cut.
 */
#include "daemon/registry_internal.h"

gand_registry *registry_open(const registry_options *opt, gan_error *err)
{
    if (!opt || !opt->state_dir || !opt->state_dir[0]) {
        gan_fail(err, "state_dir", "no state directory given");
        return NULL;
    }
    gand_registry *reg = calloc(1, sizeof *reg);
    if (!reg) {
        gan_fail(err, "", "out of memory");
        return NULL;
    }
    pthread_mutex_init(&reg->lock, NULL);
    pthread_mutex_init(&reg->ids_io, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&reg->work_cond, &ca);
    pthread_cond_init(&reg->start_cond, &ca);
    pthread_condattr_destroy(&ca);
    reg->exec = opt->executor && strcmp(opt->executor, "slurm") == 0 ? &gand_executor_slurm
                                                                     : &gand_executor_local;
    if (opt->slurm)
        reg->slurm = *opt->slurm;
    atomic_init(&reg->heartbeat, 0);

    str_printf(reg->state_dir, sizeof reg->state_dir, "%s", opt->state_dir);
    str_printf(reg->runs_dir, sizeof reg->runs_dir, "%s/runs", opt->state_dir);
    str_printf(reg->device_req, sizeof reg->device_req, "%s", opt->device ? opt->device : "auto");
    reg->max_runs = opt->max_runs > 0 ? opt->max_runs : 0;
    reg->max_sample_n = opt->max_sample_n > 0 && opt->max_sample_n <= SAMPLE_N_LIMIT
                            ? opt->max_sample_n
                            : SAMPLE_N_LIMIT;
    if (make_dir(reg->state_dir, err) != 0 || make_dir(reg->runs_dir, err) != 0) {
        registry_close(reg);
        return NULL;
    }
    if (opt->dataset_count > 0) {
        reg->datasets = calloc((size_t)opt->dataset_count, sizeof *reg->datasets);
        if (!reg->datasets) {
            gan_fail(err, "", "out of memory");
            registry_close(reg);
            return NULL;
        }
        reg->ndatasets = opt->dataset_count;
        for (int i = 0; i < reg->ndatasets; i++) {
            dataset_info *d = &reg->datasets[i];
            d->entry = opt->datasets[i];
            dataset_probe(d);
            if (d->ok && d->eval_ok)
                log_info("data set %s: %d images in %s; trains on images 0..%d, chooses sigma "
                         "on %d..%d of %s and scores %d..%d of %s",
                         d->entry.name, d->images, d->entry.path, d->train_images - 1,
                         d->split.valid_begin, d->split.valid_end - 1, d->valid_name,
                         d->split.test_begin, d->split.test_end - 1, d->eval_name);
            else if (d->ok)
                log_info("data set %s: %d images in %s, %d to train on; no evaluation: %s",
                         d->entry.name, d->images, d->entry.path, d->train_images, d->eval_error);
            else
                log_err("data set %s: %s; runs cannot use it", d->entry.name, d->error);
            if (d->ok && d->eval_ok && d->has_classifier)
                log_info("data set %s: evaluations look through the digit classifier %s "
                         "(%.2f %% right on %s when it was made)",
                         d->entry.name, d->classifier_name, 100.0 * d->classifier.accuracy,
                         d->classifier.accuracy_on);
            else if (d->ok && d->eval_ok)
                log_notice("data set %s: %s, so its evaluations have no fid, precision, recall, "
                           "modes or kl, it has no watch evaluations, and the mode_collapse and "
                           "divergence rules and the best checkpoint of its runs cannot act",
                           d->entry.name, d->classifier_error);
        }
    }
    uint64_t t = (uint64_t)now_ms();
    reg->last_id_value = 0;
    load_runs(reg);
    events_reserve_ids(reg);
    if (reg->last_id_value < t - 1)
        reg->last_id_value = t - 1;
    log_info("registry: %d runs loaded from %s", reg->nruns, reg->runs_dir);
    return reg;
}

int registry_start(gand_registry *r, gan_error *err)
{
    return r->exec->start(r, err);
}

void registry_shutdown(gand_registry *r)
{
    if (!r)
        return;
    reg_lock(r);
    r->shutdown = true;
    r->exec->wake_locked(r);
    for (int i = 0; i < r->nruns; i++) /* every event stream ends */
        pthread_cond_broadcast(&r->runs[i]->events_cond);
    reg_unlock(r);
    r->exec->stop(r);
}

void registry_close(gand_registry *r)
{
    if (!r)
        return;
    registry_shutdown(r);
    for (int i = 0; i < r->nruns; i++)
        run_free(r->runs[i]);
    free(r->runs);
    for (int i = 0; i < r->ndatasets; i++) {
        if (r->datasets[i].is_loaded)
            gan_dataset_free(&r->datasets[i].loaded);
        if (r->datasets[i].test_is_loaded)
            gan_dataset_free(&r->datasets[i].test_loaded);
        gan_eval_classifier_release(&r->datasets[i].judge);
        if (r->datasets[i].has_classifier)
            gan_classifier_free(&r->datasets[i].classifier);
    }
    free(r->datasets);
    pthread_cond_destroy(&r->work_cond);
    pthread_cond_destroy(&r->start_cond);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->ids_io);
    free(r);
}

/* ---- status ------------------------------------------------------------- */

void registry_backend_info(gand_registry *r, char *name, size_t nlen, char *device, size_t dlen,
                           char *why, size_t wlen)
{
    reg_lock(r);
    if (name && nlen)
        str_printf(name, nlen, "%s", r->be_name);
    if (device && dlen)
        str_printf(device, dlen, "%s", r->be_device);
    if (why && wlen)
        str_printf(why, wlen, "%s", r->be_why[0] ? r->be_why : "the worker has not started");
    reg_unlock(r);
}

uint64_t registry_heartbeat(gand_registry *r)
{
    /* a long evaluation is one call on the worker: it counts as progress for a while */
    int64_t since = atomic_load(&r->eval_started_ms);
    if (since > 0 && mono_ms() - since < EVAL_GRACE_MS)
        atomic_fetch_add(&r->heartbeat, 1);
    return (uint64_t)atomic_load(&r->heartbeat);
}

void registry_status_line(gand_registry *r, char *buf, size_t len)
{
    reg_lock(r);
    int queued = 0, in_slurm = 0;
    for (int i = 0; i < r->nruns; i++) {
        queued += r->runs[i]->state == RUN_QUEUED;
        in_slurm += r->runs[i]->active && r->exec == &gand_executor_slurm;
    }
    const run *c = r->current;
    if (r->exec == &gand_executor_slurm && !(r->worker_exited && !r->shutdown))
        str_printf(buf, len, "following %d Slurm jobs, %d runs, %d queued", in_slurm, r->nruns,
                   queued);
    else if (c)
        str_printf(buf, len, "training run %s epoch %d/%d (iteration %d/%d), %d queued", c->id,
                   run_epochs_locked(c), c->cfg.epochs, c->iteration, c->iterations_per_epoch,
                   queued);
    else if (r->worker_exited && !r->shutdown)
        str_printf(buf, len, "worker stopped: %s", r->be_why);
    else if (!r->worker_started)
        str_printf(buf, len, "not training (worker not started), %d runs, %d queued", r->nruns,
                   queued);
    else
        str_printf(buf, len, "idle, %d runs, %d queued", r->nruns, queued);
    reg_unlock(r);
}

/* ---- runs: create, read, change, delete -------------------------------- */

static int check_dataset_locked(const gand_registry *reg, const gan_config *cfg, gan_error *err)
{
    const dataset_info *d = dataset_find(reg, cfg->dataset);
    if (!d) {
        sb b = {0};
        for (int i = 0; i < reg->ndatasets; i++)
            sb_printf(&b, "%s%s", i ? ", " : "", reg->datasets[i].entry.name);
        char *names = sb_take(&b);
        gan_fail(err, "dataset", "unknown data set '%s'; this daemon has: %s", cfg->dataset,
                 names && names[0] ? names : "(none configured)");
        free(names);
        return -1;
    }
    if (!d->ok)
        return gan_fail(err, "dataset", "data set '%s' cannot be read: %s", cfg->dataset, d->error);
    if (cfg->batch_size > d->train_images)
        return gan_fail(err, "batch_size",
                        "batch_size must be at most the data set's %d training images (data set "
                        "'%s'), got %d",
                        d->train_images, cfg->dataset, cfg->batch_size);
    return 0;
}

static reg_status limit_error(const gand_registry *reg, gan_error *err)
{
    gan_fail(err, "",
             "this daemon keeps at most %d runs (max_runs); delete finished runs (stopped, "
             "completed or failed) to make room",
             reg->max_runs);
    return REG_LIMIT;
}

/*
 * A run's device and precision against what this daemon has: refused now
 * rather than failed later. Whether a CUDA device answers is known only when
 * the worker's own backend went looking for one (device_req auto or cuda).
 */
static int check_device_locked(gand_registry *reg, const gan_config *cfg, gan_error *err)
{
    bool cuda_built = strstr(gk_backends_built(), "cuda") != NULL;
    if (cfg->device == GAN_DEVICE_CUDA && !cuda_built)
        return gan_fail(err, "device",
                        "device cuda: this gand was built without CUDA (backends built: %s)",
                        gk_backends_built());
    if (!reg->worker_ready)
        return 0;
    bool looked = strcmp(reg->device_req, "cpu") != 0;
    if (cfg->device == GAN_DEVICE_CUDA && looked && strcmp(reg->be_name, "cpu") == 0)
        return gan_fail(err, "device", "device cuda: no CUDA device is available (%s)",
                        reg->be_why);
    bool on_cpu = cfg->device == GAN_DEVICE_CPU ||
                  (cfg->device == GAN_DEVICE_AUTO && strcmp(reg->be_name, "cpu") == 0);
    if (cfg->precision == GAN_PRECISION_TF32 && on_cpu)
        return gan_fail(err, "precision",
                        "precision tf32 needs the cuda backend; this run would train on the cpu");
    return 0;
}

reg_status registry_create_run(gand_registry *reg, const char *body, size_t len, gand_run_view *out,
                               char *id_out, size_t id_len, gan_error *err)
{
    gan_config cfg;
    if (!body || (len == 0 && !body[0]))
        body = "{}", len = 2;
    if (gan_config_from_json(&cfg, body, len, err) != 0)
        return REG_INVALID;

    reg_lock(reg);
    if (check_dataset_locked(reg, &cfg, err) != 0 || check_device_locked(reg, &cfg, err) != 0) {
        reg_unlock(reg);
        return REG_INVALID;
    }
    if (reg->max_runs > 0 && reg->nruns >= reg->max_runs) {
        reg_unlock(reg);
        return limit_error(reg, err);
    }
    uint64_t v = (uint64_t)now_ms();
    if (v <= reg->last_id_value)
        v = reg->last_id_value + 1;
    reg->last_id_value = v;
    reg_unlock(reg);

    /* the directory is made before the run is visible; nobody else can know its id yet */
    char id[RUN_ID_MAX + 1];
    run *r = NULL;
    for (int tries = 0;; tries++, v++) {
        str_printf(id, sizeof id, "r%012" PRIx64, (uint64_t)(v & 0xFFFFFFFFFFFFull));
        r = run_new(reg, id);
        if (!r)
            return gan_fail(err, "", "out of memory"), REG_INTERNAL;
        if (mkdir(r->dir, 0755) == 0)
            break;
        int e = errno;
        run_free(r);
        if (e != EEXIST || tries > 100)
            return gan_fail(err, "", "cannot create the run directory under %s: %s", reg->runs_dir,
                            strerror(e)),
                   REG_INTERNAL;
    }
    char path[PATH_MAX];
    run_path(r, "samples", path, sizeof path);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        gan_fail(err, "", "cannot create %s: %s", path, strerror(errno));
        remove_tree(r->dir);
        run_free(r);
        return REG_INTERNAL;
    }
    r->cfg = cfg;
    r->state = RUN_QUEUED;
    r->created_at = r->queued_at = now_ms();

    reg_lock(reg);
    pending_files p = prepare_files_locked(reg, r, true);
    reg_unlock(reg);
    gan_error werr;
    if (write_run_record(r, &p.record, &werr) != 0) {
        reg_status full = errno_is_full(errno) ? REG_STORAGE : REG_INTERNAL;
        gan_fail(err, "", "the run was not created: %s", werr.message);
        reg_lock(reg);
        r->events_pending--;
        reg_unlock(reg);
        remove_tree(r->dir);
        run_free(r);
        return full;
    }
    p.has_record = false;
    store_files(reg, r, &p); /* its first state event */

    reg_lock(reg);
    if (reg->max_runs > 0 && reg->nruns >= reg->max_runs) { /* lost a race for the last place */
        reg_unlock(reg);
        remove_tree(r->dir);
        run_free(r);
        return limit_error(reg, err);
    }
    if (reg->last_id_value < v)
        reg->last_id_value = v;
    r->queue_seq = reg->next_queue_seq++;
    if (!run_insert_locked(reg, r)) {
        reg_unlock(reg);
        remove_tree(r->dir);
        run_free(r);
        return gan_fail(err, "", "out of memory"), REG_INTERNAL;
    }
    run_view view;
    if (out)
        run_view_take_locked(reg, r, queue_position_locked(reg, r), &view);
    reg->exec->wake_locked(reg);
    reg_unlock(reg);
    if (out)
        run_view_publish(&view, out);
    if (id_out && id_len)
        str_printf(id_out, id_len, "%s", id);
    log_info("run %s created (data set %s, %d epochs)", id, cfg.dataset, cfg.epochs);
    return REG_OK;
}

/* A queued run's place in the queue: its FIFO number and its index in the table. */
typedef struct queued_at {
    int64_t seq;
    int index;
} queued_at;

static int cmp_queued(const void *a, const void *b)
{
    const queued_at *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Every run, copied out under the lock in one pass (queue positions from one
 * sort of the queued runs, not a scan per run); the JSON is built and printed
 * with nothing locked.
 */
reg_status registry_list_runs(gand_registry *reg, gand_run_view **runs, int *count)
{
    *runs = NULL;
    *count = 0;
    /* the memory first, with nothing locked (page faults included); more runs may have
     * been created meanwhile: then again, with room for them */
    reg_lock(reg);
    int cap = reg->nruns + 16, n, nq = 0;
    reg_unlock(reg);
    run_view *views;
    queued_at *queued;
    int *pos;
    for (;;) {
        views = malloc((size_t)cap * sizeof *views);
        queued = malloc((size_t)cap * sizeof *queued);
        pos = malloc((size_t)cap * sizeof *pos);
        if (!views || !queued || !pos) {
            free(views);
            free(queued);
            free(pos);
            return REG_INTERNAL;
        }
        memset(views, 0, (size_t)cap * sizeof *views);
        memset(pos, 0, (size_t)cap * sizeof *pos);
        reg_lock(reg);
        n = reg->nruns;
        if (n <= cap)
            break;
        reg_unlock(reg);
        free(views);
        free(queued);
        free(pos);
        cap = n + 16;
    }
    for (int i = 0; i < n; i++)
        if (reg->runs[i]->state == RUN_QUEUED)
            queued[nq++] = (queued_at){reg->runs[i]->queue_seq, i};
    qsort(queued, (size_t)nq, sizeof *queued, cmp_queued);
    for (int q = 0; q < nq; q++)
        pos[queued[q].index] = q + 1;
    for (int i = 0; i < n; i++)
        run_view_take_locked(reg, reg->runs[i], pos[i], &views[i]);
    reg_unlock(reg);

    /* the views, published over the copies (a gand_run_view is the first member) */
    gand_run_view *out = malloc((size_t)(n > 0 ? n : 1) * sizeof *out);
    for (int i = 0; i < n; i++) {
        if (out)
            run_view_publish(&views[i], &out[i]);
        else
            gand_run_view_free(&views[i].pub);
    }
    free(views);
    free(queued);
    free(pos);
    if (!out)
        return REG_INTERNAL;
    *runs = out;
    *count = n;
    return REG_OK;
}

reg_status registry_get_run(gand_registry *reg, const char *id, gand_run_view *out)
{
    memset(out, 0, sizeof *out);
    run_view view;
    reg_lock(reg);
    run *r = run_find_locked(reg, id);
    if (r)
        run_view_take_locked(reg, r, queue_position_locked(reg, r), &view);
    reg_unlock(reg);
    if (!r)
        return REG_NOT_FOUND;
    run_view_publish(&view, out);
    return REG_OK;
}

reg_status not_found(const char *id, gan_error *err)
{
    if (valid_run_id(id))
        gan_fail(err, "id", "no run with id '%s'", id);
    else
        gan_fail(err, "id", "'%s' is not a run id (1 to %d characters of a-z, 0-9 and '-')",
                 id ? id : "", RUN_ID_MAX);
    return REG_NOT_FOUND;
}

/* What the "config" event says about the fields a patch changed: when each applies, and the values.
 */
static void patch_report(const gan_config *next, unsigned changed, bool fresh, cJSON **applies,
                         cJSON **values)
{
    *applies = cJSON_CreateObject();
    *values = cJSON_CreateObject();
    cJSON *all = config_cjson(next);
    for (unsigned bit = 1; bit & GAN_F_MUTABLE; bit <<= 1) {
        if (!(changed & bit))
            continue;
        const char *name = gan_field_name(bit);
        cJSON_AddStringToObject(*applies, name, gan_field_applies(bit, fresh));
        cJSON *v = cJSON_GetObjectItemCaseSensitive(all, name);
        cJSON_AddItemToObject(*values, name, v ? cJSON_Duplicate(v, true) : cJSON_CreateNull());
    }
    cJSON_Delete(all);
}

/*
 * PATCH: the body (up to max_body_bytes) is parsed and applied to a copy of
 * the config with nothing locked; the lock is then held only to check that
 * nothing changed meanwhile (else the patch is applied again to the new
 * config) and to commit. The answer is built with nothing locked.
 */
reg_status registry_patch_run(gand_registry *reg, const char *id, const char *body, size_t len,
                              gand_patch_view *answer, gan_error *err)
{
    memset(answer, 0, sizeof *answer);
    run *r = run_get(reg, id);
    if (!r)
        return not_found(id, err);
    if (!body || (len == 0 && !body[0]))
        body = "{}", len = 2;
    reg_status st = REG_OK;
    for (;;) {
        reg_lock(reg);
        const gan_config base = r->cfg;
        const uint64_t version = r->cfg_version;
        /* a run that never started uses the new values throughout; else from the next step or epoch
         */
        const bool fresh =
            r->state == RUN_QUEUED && !r->active && r->checkpoint_epoch < 0 && r->nmetrics == 0;
        const bool gone = r->removed, closed = r->state == RUN_STOPPED || r->state == RUN_FAILED;
        const run_state state = r->state;
        reg_unlock(reg);
        if (gone) {
            st = not_found(id, err);
            break;
        }
        if (closed) {
            gan_fail(err, "", "cannot change the config of a run that is %s", state_names[state]);
            st = REG_CONFLICT;
            break;
        }
        gan_config next = base;
        unsigned changed = 0;
        if (gan_config_patch(&next, body, len, &changed, err) != 0) {
            st = REG_INVALID;
            break;
        }
        char *data = NULL;
        if (changed) {
            cJSON *applies, *values;
            patch_report(&next, changed, fresh, &applies, &values);
            cJSON *d = cJSON_CreateObject();
            cJSON_AddItemToObject(d, "changed", values);
            cJSON_AddItemToObject(d, "applies", applies);
            gand_json_time(d, "at", now_ms());
            data = print_and_delete(d);
        }

        /*
         * With r->io held nothing else changes the run's config or state: run.json
         * is written with the new config first, and only then is the change made
         * in memory, so that what is answered is on disk, and what cannot be
         * written is not made.
         */
        pthread_mutex_lock(&r->io);
        reg_lock(reg);
        bool raced = r->cfg_version != version || r->removed || r->state != state ||
                     fresh != (r->state == RUN_QUEUED && !r->active && r->checkpoint_epoch < 0 &&
                               r->nmetrics == 0);
        int batch_bad =
            !raced && (changed & GAN_F_BATCH_SIZE) && check_dataset_locked(reg, &next, err) != 0;
        const int64_t at = now_ms();
        run_record rec;
        bool persist = !raced && !batch_bad && changed && !r->persist_disabled;
        if (persist) {
            rec = run_record_locked(r);
            rec.cfg = next;
            rec.updated_at = at;
        }
        reg_unlock(reg);
        gan_error werr;
        if (persist && write_run_record(r, &rec, &werr) != 0) {
            st = errno_is_full(errno) ? REG_STORAGE : REG_INTERNAL;
            pthread_mutex_unlock(&r->io);
            free(data);
            gan_fail(err, "", "the config was not changed: %s", werr.message);
            break;
        }
        uint64_t seq = 0;
        int epoch = 0;
        run_view view;
        reg_lock(reg);
        if (!raced && !batch_bad) {
            if (changed) {
                r->cfg = next;
                r->cfg_version++;
                r->cfg_dirty = true;
                r->updated_at = at;
                reg->exec->wake_locked(reg);
                epoch = run_epochs_locked(r); /* its line carries the epoch count at the time */
                seq = event_add_locked(reg, r, "config", data ? strdup(data) : NULL);
            }
            run_view_take_locked(reg, r, queue_position_locked(reg, r), &view);
        }
        reg_unlock(reg);
        if (seq)
            event_append(r, seq, "config", epoch, data);
        pthread_mutex_unlock(&r->io);
        events_after_lock(reg);
        free(data);
        if (raced || batch_bad) {
            if (batch_bad) {
                st = REG_INVALID;
                break;
            }
            continue; /* another change came first: patch the new config */
        }
        run_view_publish(&view, &answer->run);
        answer->changed = changed;
        answer->fresh = fresh;
        answer->event_seq = seq;
        if (changed)
            log_info("run %s: config patched", id);
        break;
    }
    run_put(reg, r);
    return st;
}

reg_status registry_control(gand_registry *reg, const char *id, const char *action,
                            gand_run_view *out, gan_error *err)
{
    memset(out, 0, sizeof *out);
    run_action act;
    if (action && strcmp(action, "pause") == 0)
        act = RUN_ACTION_PAUSE;
    else if (action && strcmp(action, "resume") == 0)
        act = RUN_ACTION_RESUME;
    else if (action && strcmp(action, "stop") == 0)
        act = RUN_ACTION_STOP;
    else
        return gan_fail(err, "action", "action must be pause, resume or stop, got '%s'",
                        action ? action : ""),
               REG_INVALID;
    run *r = run_get(reg, id);
    if (!r)
        return not_found(id, err);
    reg_status st = REG_OK;
    pending_files p = {0};
    run_view view;
    bool changed = false;
    run_state from = RUN_QUEUED, to_state = RUN_QUEUED;
    pthread_mutex_lock(&r->io);
    reg_lock(reg);
    run_state s = r->state, to = s;
    if (r->removed) {
        st = not_found(id, err);
        goto out;
    }
    to = run_transition(s, act, r->active, r->cfg.epochs > run_epochs_locked(r));
    if (to == s && act == RUN_ACTION_RESUME && s == RUN_COMPLETED) {
        gan_fail(err, "",
                 "cannot resume a run that is completed: it has done all %d of its epochs; "
                 "raise epochs with PATCH first",
                 run_epochs_locked(r));
        st = REG_CONFLICT;
        goto out;
    }
    if (to == s) {
        gan_fail(err, "", "cannot %s a run that is %s", action, state_names[s]);
        st = REG_CONFLICT;
        goto out;
    }
    /* run.json first, as for a PATCH: a change that cannot be written is not made */
    const int64_t at = now_ms();
    run_record rec = run_record_locked(r);
    rec.state = to;
    rec.reason[0] = '\0';
    rec.updated_at = at;
    if (to == RUN_QUEUED) {
        rec.queued_at = at;
        rec.finished_at = 0;
    }
    if (state_is_final(to))
        rec.finished_at = at;
    bool persist = !r->persist_disabled;
    reg_unlock(reg);
    gan_error werr;
    if (persist && write_run_record(r, &rec, &werr) != 0) {
        st = errno_is_full(errno) ? REG_STORAGE : REG_INTERNAL;
        gan_fail(err, "", "the run was not %s: %s",
                 act == RUN_ACTION_PAUSE    ? "paused"
                 : act == RUN_ACTION_RESUME ? "resumed"
                                            : "stopped",
                 werr.message);
        reg_lock(reg);
        goto out;
    }
    reg_lock(reg);
    r->state = to;
    r->reason[0] = '\0';
    r->queued_at = rec.queued_at;
    r->finished_at = rec.finished_at;
    if (to == RUN_QUEUED)
        r->queue_seq = reg->next_queue_seq++;
    reg->exec->wake_locked(reg); /* a Slurm job is told at once; the worker looks each iteration */
    p = prepare_files_locked(reg, r, true);
    p.has_record = false; /* written above */
    run_view_take_locked(reg, r, queue_position_locked(reg, r), &view);
    changed = true;
    from = s;
    to_state = to;
out:
    reg_unlock(reg);
    store_files(reg, r, &p);
    pthread_mutex_unlock(&r->io);
    if (changed) { /* the answer and the log line, with nothing locked */
        run_view_publish(&view, out);
        log_info("run %s: %s → %s (%s requested)", id, state_names[from], state_names[to_state],
                 action);
    }
    run_put(reg, r);
    return st;
}

reg_status registry_delete_run(gand_registry *reg, const char *id, gan_error *err)
{
    run *r = run_get(reg, id);
    if (!r)
        return not_found(id, err);
    reg_status st = REG_OK;
    char trash[PATH_MAX] = "";
    pthread_mutex_lock(&r->io);
    reg_lock(reg);
    if (r->removed) {
        st = not_found(id, err);
    } else if (!state_is_final(r->state)) {
        gan_fail(err, "", "cannot delete a run that is %s; stop it first", state_names[r->state]);
        st = REG_CONFLICT;
    } else if (r->active) {
        gan_fail(err, "", "run %s is still writing its checkpoint; try again in a moment", r->id);
        st = REG_CONFLICT;
    } else {
        str_printf(trash, sizeof trash, "%s/.deleted-%s", reg->runs_dir, r->id);
        if (rename(r->dir, trash) != 0 && errno != ENOENT) {
            gan_fail(err, "", "cannot remove %s: %s", r->dir, strerror(errno));
            st = REG_INTERNAL;
        } else {
            int i = 0;
            while (reg->runs[i] != r)
                i++;
            memmove(&reg->runs[i], &reg->runs[i + 1], (size_t)(reg->nruns - i - 1) * sizeof(run *));
            reg->nruns--;
            for (int j = 0; j < r->nevals; j++)
                if (r->evals[j].state == EVAL_QUEUED) /* dropped with the run */
                    reg->evals_queued--;
            r->removed = true;
            r->refs--; /* the table's reference */
            event_wake_locked(reg, r);
        }
    }
    reg_unlock(reg);
    pthread_mutex_unlock(&r->io);
    run_put(reg, r);
    if (st == REG_OK) {
        if (remove_tree(trash) != 0)
            log_warning("run %s: cannot remove %s completely: %s", id, trash, strerror(errno));
        log_info("run %s deleted", id);
    }
    return st;
}

reg_status registry_metrics(gand_registry *reg, const char *id, int since, char **json)
{
    *json = NULL;
    if (since < 0)
        since = 0;
    run *r = run_get(reg, id);
    if (!r)
        return REG_NOT_FOUND;
    /* the records are copied under the lock and formatted after */
    reg_lock(reg);
    int from = 0; /* the first record past epoch `since` */
    while (from < r->nmetrics && r->metrics[from].epoch <= since)
        from++;
    int n = r->nmetrics - from;
    gan_epoch_metrics *copy = malloc(((size_t)n + 1) * sizeof *copy);
    if (copy && n > 0)
        memcpy(copy, r->metrics + from, (size_t)n * sizeof *copy);
    reg_unlock(reg);
    if (!copy) {
        run_put(reg, r);
        return REG_INTERNAL;
    }
    sb b = {0};
    char line[1024];
    sb_printf(&b, "{\"run\":\"%s\",\"since\":%d,\"epochs\":[", id, since);
    for (int i = 0; i < n; i++) {
        gan_epoch_metrics_json(&copy[i], line, sizeof line);
        sb_puts(&b, i ? "," : "");
        sb_puts(&b, line);
    }
    sb_puts(&b, "]}");
    free(copy);
    run_put(reg, r);
    *json = sb_take(&b);
    return *json ? REG_OK : REG_INTERNAL;
}
