/*
 * daemon/runs.c — the run table: creating, finding and releasing runs, and their state transitions.
 */
#include "daemon/registry_internal.h"

const char *const state_names[RUN_STATE_COUNT] = {"queued",  "running",   "paused",
                                                  "stopped", "completed", "failed"};

void run_path(const run *r, const char *name, char *out, size_t len)
{
    str_printf(out, len, "%s/%s", r->dir, name);
}

void sample_path(const run *r, int epoch, char *out, size_t len)
{
    str_printf(out, len, "%s/samples/epoch-%06d.png", r->dir, epoch);
}

/* ---- runs and the table ------------------------------------------------ */

run *run_new(gand_registry *reg, const char *id)
{
    run *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_mutex_init(&r->io, NULL);
    pthread_condattr_t ca; /* deadlines are CLOCK_MONOTONIC (deadline_after_ms) */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->events_cond, &ca);
    pthread_condattr_destroy(&ca);
    str_printf(r->id, sizeof r->id, "%s", id);
    str_printf(r->dir, sizeof r->dir, "%s/%s", reg->runs_dir, id);
    r->checkpoint_epoch = -1;
    r->best_epoch = r->best_pending_epoch = -1;
    r->refs = 1; /* the table's */
    return r;
}

void run_free(run *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->nevents; i++)
        free(r->events[i].data);
    free(r->events);
    for (int i = 0; i < r->nevals; i++)
        snapshot_release(r->evals[i].pinned);
    free(r->evals);
    free(r->metrics);
    free(r->samples);
    free(r->alerts);
    snapshot_release(r->snap);
    pthread_mutex_destroy(&r->io);
    pthread_cond_destroy(&r->events_cond);
    free(r);
}

run *run_find_locked(gand_registry *reg, const char *id)
{
    if (!valid_run_id(id))
        return NULL;
    int lo = 0, hi = reg->nruns - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(reg->runs[mid]->id, id);
        if (c == 0)
            return reg->runs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

bool run_insert_locked(gand_registry *reg, run *r)
{
    if (!grow((void **)&reg->runs, &reg->runs_cap, reg->nruns + 1, sizeof(run *)))
        return false;
    int i = reg->nruns;
    while (i > 0 && strcmp(reg->runs[i - 1]->id, r->id) > 0) {
        reg->runs[i] = reg->runs[i - 1];
        i--;
    }
    reg->runs[i] = r;
    reg->nruns++;
    return true;
}

/* Look a run up and take a reference (NULL: unknown). */
run *run_get(gand_registry *reg, const char *id)
{
    reg_lock(reg);
    run *r = run_find_locked(reg, id);
    if (r)
        r->refs++;
    reg_unlock(reg);
    return r;
}

void run_put_locked(run *r)
{
    if (--r->refs == 0)
        run_free(r);
}

void run_put(gand_registry *reg, run *r)
{
    reg_lock(reg);
    run_put_locked(r);
    reg_unlock(reg);
}

int run_iterations_per_epoch_locked(const gand_registry *reg, const run *r)
{
    if (r->active && r->iterations_per_epoch > 0)
        return r->iterations_per_epoch;
    const dataset_info *d = dataset_find(reg, r->cfg.dataset);
    return d && d->ok && r->cfg.batch_size > 0 ? d->train_images / r->cfg.batch_size : 0;
}

/* 1-based place among queued runs, 0 when not queued. */
int queue_position_locked(const gand_registry *reg, const run *r)
{
    if (r->state != RUN_QUEUED)
        return 0;
    int pos = 1;
    for (int i = 0; i < reg->nruns; i++) {
        const run *o = reg->runs[i];
        if (o != r && o->state == RUN_QUEUED && o->queue_seq < r->queue_seq)
            pos++;
    }
    return pos;
}

/*
 * Change a run's state and record it (takes both locks itself). With
 * only_if_running, a run that a request has meanwhile paused or stopped
 * keeps that state (returns false).
 */
bool set_state(gand_registry *reg, run *r, run_state s, const char *reason, bool only_if_running)
{
    pthread_mutex_lock(&r->io);
    reg_lock(reg);
    if (only_if_running && r->state != RUN_RUNNING) {
        reg_unlock(reg);
        pthread_mutex_unlock(&r->io);
        return false;
    }
    r->state = s;
    str_printf(r->reason, sizeof r->reason, "%s", reason ? reason : "");
    if (state_is_final(s))
        r->finished_at = now_ms();
    pending_files p = prepare_files_locked(reg, r, true);
    reg_unlock(reg);
    store_files(reg, r, &p);
    pthread_mutex_unlock(&r->io);
    return true;
}

run_state run_transition(run_state from, run_action action, bool active, bool epochs_left)
{
    switch (action) {
    case RUN_ACTION_PAUSE:
        return from == RUN_RUNNING || from == RUN_QUEUED ? RUN_PAUSED : from;
    case RUN_ACTION_RESUME:
        if (from == RUN_PAUSED)
            return active ? RUN_RUNNING : RUN_QUEUED;
        if (from == RUN_COMPLETED && !active && epochs_left)
            return RUN_QUEUED;
        return from;
    case RUN_ACTION_STOP:
        return from == RUN_QUEUED || from == RUN_RUNNING || from == RUN_PAUSED ? RUN_STOPPED : from;
    }
    return from;
}
