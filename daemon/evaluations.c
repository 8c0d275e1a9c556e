/*
 * daemon/evaluations.c — the evaluation queue: queueing, running (worker only) and reporting Parzen
 * evaluations.
 */
#include "daemon/registry_internal.h"

/* Queue an evaluation (reg->lock held); NULL when out of memory. Takes over `pinned`. */
evaluation *eval_add_locked(gand_registry *reg, run *r, int samples, uint64_t seed,
                            eval_trigger trigger, g_snapshot *pinned)
{
    if (!grow((void **)&r->evals, &r->evals_cap, r->nevals + 1, sizeof(evaluation))) {
        snapshot_release(pinned);
        return NULL;
    }
    evaluation *e = &r->evals[r->nevals];
    memset(e, 0, sizeof *e);
    e->id = ++r->nevals;
    e->state = EVAL_QUEUED;
    e->samples = samples;
    e->seed = seed;
    e->trigger = trigger;
    e->pinned = pinned;
    e->created_at = now_ms();
    e->queue_seq = reg->next_eval_seq++;
    r->evals_pending++;
    reg->evals_queued++;
    reg->exec->wake_locked(reg);
    return e;
}

/*
 * Record an evaluation's state change (r->io and reg->lock held): a copy to
 * publish with eval_store once reg->lock is let go. persist: also a line of
 * evaluations.jsonl.
 */
eval_lines eval_record_locked(gand_registry *reg, run *r, const evaluation *e, bool persist)
{
    (void)reg;
    eval_lines l;
    memset(&l, 0, sizeof l);
    l.pending = true;
    l.persist = persist;
    l.copy = *e;
    l.copy.pinned = NULL;
    l.run_epoch = run_epochs_locked(r);
    return l;
}

/*
 * Publish what eval_record_locked copied (r->io held, reg->lock not): the
 * JSON is made with nothing locked, the lock is taken only to add the event
 * (and, for a finished evaluation, to stop counting it as pending in the same
 * step, so that a stream never ends before its last evaluation event).
 */
void eval_store(gand_registry *reg, run *r, eval_lines *l)
{
    if (!l->pending)
        return;
    l->pending = false;
    char *data = print_and_delete(eval_cjson(r, &l->copy));
    char *copy = data ? strdup(data) : NULL;
    reg_lock(reg);
    if (l->finished)
        r->evals_pending--;
    uint64_t id = event_add_locked(reg, r, "evaluation", copy);
    reg_unlock(reg);
    events_after_lock(reg);
    if (!data)
        log_err("run %s: out of memory recording evaluation %d", r->id, l->copy.id);
    char path[PATH_MAX];
    if (!r->removed && data && l->persist) {
        run_path(r, "evaluations.jsonl", path, sizeof path);
        if (gan_append_line(path, data) != 0)
            log_err("run %s: cannot append to %s: %s", r->id, path, strerror(errno));
    }
    event_append(r, id, "evaluation", l->run_epoch, data);
    free(data);
}

/*
 * Run the oldest queued evaluation of any run (worker thread only: it uses
 * the backend). Returns false when none is queued.
 */
bool worker_evaluate_next(gand_registry *reg)
{
    reg_lock(reg);
    run *r = NULL;
    int idx = -1;
    for (int i = 0; i < reg->nruns; i++)
        for (int j = 0; j < reg->runs[i]->nevals; j++) {
            const evaluation *e = &reg->runs[i]->evals[j];
            if (e->state == EVAL_QUEUED && (!r || e->queue_seq < r->evals[idx].queue_seq)) {
                r = reg->runs[i];
                idx = j;
            }
        }
    if (!r) {
        reg->evals_queued = 0; /* nothing is queued, whatever the count said */
        reg_unlock(reg);
        return false;
    }
    r->refs++;
    reg_unlock(reg);

    pthread_mutex_lock(&r->io);
    reg_lock(reg);
    evaluation *e = &r->evals[idx];
    if (r->removed || e->state != EVAL_QUEUED) {
        reg_unlock(reg);
        pthread_mutex_unlock(&r->io);
        run_put(reg, r);
        return true;
    }
    e->state = EVAL_RUNNING;
    e->started_at = now_ms();
    reg->evals_queued--;
    g_snapshot *s = e->pinned;
    e->pinned = NULL;
    const int samples = e->samples, eid = e->id;
    const uint64_t seed = e->seed;
    const eval_trigger trigger = e->trigger;
    char dataset[GAN_NAME_MAX];
    str_printf(dataset, sizeof dataset, "%s", r->cfg.dataset);
    eval_lines l = eval_record_locked(reg, r, e, false);
    reg_unlock(reg);
    eval_store(reg, r, &l);
    pthread_mutex_unlock(&r->io);

    atomic_store(&reg->eval_started_ms, mono_ms());
    gan_error err = {{0}, {0}};
    gan_evaluation res;
    memset(&res, 0, sizeof res);
    const gan_parzen_result *pz = &res.parzen;
    dataset_info *d = NULL;
    int rc = -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (s || run_generator(reg, r, &s, &err) == REG_OK) {
        d = worker_eval_dataset(reg, dataset, &err);
        gk_backend *be = d ? run_backend(reg, &s->cfg, &err) : NULL;
        const gan_eval_classifier *judge = be ? worker_judge(reg, d, be, &err) : NULL;
        if (be && (judge || !d->has_classifier)) {
            if (trigger == EVAL_WATCH && !judge)
                gan_fail(&err, "classifier", "data set '%s' has no digit classifier", dataset);
            else
                rc = gan_evaluate_generator(be, &s->cfg, s->params, samples, seed, &d->loaded,
                                            d->has_test ? &d->test_loaded : NULL, &d->split,
                                            trigger != EVAL_WATCH, judge, &res, &err);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    atomic_store(&reg->eval_started_ms, 0);

    pthread_mutex_lock(&r->io);
    reg_lock(reg);
    e = &r->evals[idx];
    e->finished_at = now_ms();
    if (rc == 0) {
        e->state = EVAL_DONE;
        e->reason[0] = '\0';
        e->has_parzen = res.has_parzen;
        e->parzen_ll = pz->mean_ll;
        e->stderr_ll = pz->stderr_ll;
        e->sigma = pz->sigma;
        e->has_metrics = res.has_metrics;
        e->metrics = res.metrics;
        e->epoch = s->epoch;
        e->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
        e->valid_begin = d->split.valid_begin;
        e->valid_end = d->split.valid_end;
        e->test_begin = d->split.test_begin;
        e->test_end = d->split.test_end;
        str_printf(e->data, sizeof e->data, "%s", d->eval_name);
        str_printf(e->valid_data, sizeof e->valid_data, "%s", d->valid_name);
    } else {
        e->state = EVAL_FAILED;
        str_printf(e->reason, sizeof e->reason, "%s",
                   err.message[0] ? err.message : "the evaluation failed");
    }
    l = eval_record_locked(reg, r, e, true);
    l.finished = true; /* evals_pending drops when its event is out (eval_store) */
    /* the watch rules and the best checkpoint read the automatic evaluations' metrics */
    gan_watch_point *pts = NULL;
    int npts = 0;
    gan_watch rules = r->cfg.watch;
    bool watched = rc == 0 && trigger != EVAL_REQUEST && res.has_metrics;
    if (watched && (pts = malloc((size_t)r->nevals * sizeof *pts))) {
        for (int i = 0; i < r->nevals; i++) {
            const evaluation *x = &r->evals[i];
            if (x->state == EVAL_DONE && x->trigger != EVAL_REQUEST && x->has_metrics)
                pts[npts++] = (gan_watch_point){x->epoch, x->metrics.modes, x->metrics.fid};
        }
        if (npts > 0 && (r->best_epoch < 0 || res.metrics.fid < r->best_fid) &&
            pts[npts - 1].epoch == s->epoch) {
            r->best_pending_epoch = s->epoch; /* the worker saves it (executor_local.c) */
            r->best_pending_fid = res.metrics.fid;
        }
    }
    reg_unlock(reg);
    eval_store(reg, r, &l);
    pthread_mutex_unlock(&r->io);
    const double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    if (rc == 0 && res.has_parzen)
        log_info("run %s: evaluation %d (epoch %d, %d samples): Parzen log-likelihood %.2f ± %.2f "
                 "nats, sigma %.4f, %.1f s",
                 r->id, eid, s->epoch, samples, pz->mean_ll, pz->stderr_ll, pz->sigma, secs);
    if (rc == 0 && res.has_metrics)
        log_info("run %s: evaluation %d (epoch %d, %d samples): Fréchet distance %.2f, precision "
                 "%.3f, recall %.3f, %d modes, KL %.3f, %.1f s",
                 r->id, eid, s->epoch, samples, res.metrics.fid, res.metrics.precision,
                 res.metrics.recall, res.metrics.modes, res.metrics.kl, secs);
    if (rc != 0)
        log_warning("run %s: evaluation %d failed: %s", r->id, eid, err.message);
    if (npts > 0) {
        gan_alert fired[GAN_WATCH_MAX];
        int k = gan_watch_after_evaluation(&rules, pts, npts, fired, GAN_WATCH_MAX);
        alerts_raise(reg, r, fired, k);
    }
    free(pts);
    snapshot_release(s);
    run_put(reg, r);
    return true;
}

/* ---- what a run learned: evaluations, samples, latent space ------------- */

reg_status registry_evaluate(gand_registry *reg, const char *id, int samples, uint64_t seed,
                             char **eval_json, int *eval_id, gan_error *err)
{
    *eval_json = NULL;
    if (samples < 1 || samples > REG_EVAL_SAMPLES_MAX)
        return gan_fail(err, "samples", "samples must be an integer in 1..%d, got %d",
                        REG_EVAL_SAMPLES_MAX, samples),
               REG_INVALID;
    if (seed > ((uint64_t)1 << 53))
        return gan_fail(err, "seed", "seed must be an integer in 0..9007199254740992"), REG_INVALID;
    run *r = run_get(reg, id);
    if (!r)
        return not_found(id, err);
    reg_status st = REG_OK;
    eval_lines l = {0};
    evaluation queued = {0};
    pthread_mutex_lock(&r->io);
    reg_lock(reg);
    const dataset_info *d = dataset_find(reg, r->cfg.dataset);
    if (r->removed) {
        st = not_found(id, err);
    } else if (!d || !d->ok) {
        gan_fail(err, "", "run %s cannot be evaluated: its data set '%s' %s", r->id, r->cfg.dataset,
                 d ? "cannot be read" : "is not configured in this daemon");
        st = REG_CONFLICT;
    } else if (!d->eval_ok) {
        gan_fail(err, "", "run %s cannot be evaluated: data set '%s' has no held-out images: %s",
                 r->id, d->entry.name, d->eval_error);
        st = REG_CONFLICT;
    } else if (!r->snap && r->checkpoint_epoch < 0 && !r->active) {
        gan_fail(err, "",
                 "run %s has no generator yet (state %s): it is made when the run starts "
                 "training",
                 r->id, state_names[r->state]);
        st = REG_CONFLICT;
    } else if (reg->evals_queued >= REG_EVAL_QUEUE_MAX) {
        gan_fail(err, "",
                 "%d evaluations are already waiting for the worker (the most gand queues); "
                 "try again when some are done",
                 reg->evals_queued);
        st = REG_LIMIT;
    } else {
        evaluation *e = eval_add_locked(reg, r, samples, seed, EVAL_REQUEST, NULL);
        if (!e) {
            gan_fail(err, "", "out of memory");
            st = REG_INTERNAL;
        } else {
            l = eval_record_locked(reg, r, e, true);
            queued = *e;
            queued.pinned = NULL;
            if (eval_id)
                *eval_id = e->id;
        }
    }
    reg_unlock(reg);
    eval_store(reg, r, &l);
    pthread_mutex_unlock(&r->io);
    if (queued.id > 0) { /* the answer and the log line, with nothing locked */
        *eval_json = print_and_delete(eval_cjson(r, &queued));
        log_info("run %s: evaluation %d queued (%d samples, seed %" PRIu64 ")", id, queued.id,
                 samples, seed);
    }
    run_put(reg, r);
    if (st == REG_OK && !*eval_json)
        st = REG_INTERNAL;
    return st;
}

/* The run's evaluations, copied out under the lock (pinned snapshots dropped from the copy). */
static evaluation *evals_copy_locked(const run *r, int from, int n)
{
    evaluation *c = malloc((size_t)(n > 0 ? n : 1) * sizeof *c);
    if (c && n > 0)
        memcpy(c, r->evals + from, (size_t)n * sizeof *c);
    for (int i = 0; c && i < n; i++)
        c[i].pinned = NULL;
    return c;
}

reg_status registry_evaluations(gand_registry *reg, const char *id, char **json)
{
    *json = NULL;
    run *r = run_get(reg, id);
    if (!r)
        return REG_NOT_FOUND;
    reg_lock(reg);
    int n = r->nevals;
    evaluation *c = evals_copy_locked(r, 0, n);
    reg_unlock(reg);
    cJSON *o = c ? cJSON_CreateObject() : NULL; /* formatted with nothing locked */
    if (o) {
        cJSON_AddStringToObject(o, "run", r->id);
        cJSON *a = cJSON_AddArrayToObject(o, "evaluations");
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(a, eval_cjson(r, &c[i]));
    }
    free(c);
    run_put(reg, r);
    *json = print_and_delete(o);
    return *json ? REG_OK : REG_INTERNAL;
}

reg_status registry_evaluation(gand_registry *reg, const char *id, int n, char **json,
                               gan_error *err)
{
    *json = NULL;
    run *r = run_get(reg, id);
    if (!r)
        return not_found(id, err);
    reg_lock(reg);
    int count = r->nevals;
    evaluation *c = n >= 1 && n <= count ? evals_copy_locked(r, n - 1, 1) : NULL;
    reg_unlock(reg);
    reg_status st = REG_OK;
    if (n < 1 || n > count) {
        gan_fail(err, "", "run %s has no evaluation %d (it has %d)", id, n, count);
        st = REG_NOT_FOUND;
    } else if (!c || !(*json = print_and_delete(eval_cjson(r, c))))
        st = REG_INTERNAL;
    free(c);
    run_put(reg, r);
    return st;
}
