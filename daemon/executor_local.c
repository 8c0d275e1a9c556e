/*
 * daemon/executor_local.c — the local executor: the worker thread that owns the backend and trains
 * the active run.
 */
#include "daemon/registry_internal.h"

/*
 * The backend a run trains and evaluates on (worker thread only): the
 * worker's own for device "auto" or when it is the named one; otherwise the
 * other backend, opened on first use and kept, since a CUDA context belongs
 * to the thread that made it and is slow to make.
 */
gk_backend *run_backend(gand_registry *reg, const gan_config *cfg, gan_error *err)
{
    const char *want = gan_device_name(cfg->device);
    /* with Slurm the device names the nodes' device: the daemon evaluates on its own */
    if (cfg->device == GAN_DEVICE_AUTO || strcmp(reg->be->ops->name, want) == 0 ||
        reg->exec == &gand_executor_slurm)
        return reg->be;
    if (reg->be_alt && strcmp(reg->be_alt->ops->name, want) == 0)
        return reg->be_alt;
    char why[512];
    gk_backend *be = gk_backend_open(want, why, sizeof why);
    if (!be) {
        gan_fail(err, "device", "device %s: %s", want, why);
        return NULL;
    }
    log_info("worker: %s (%s) for runs that name device %s", why, be->device, want);
    if (reg->be_alt)
        gk_backend_close(reg->be_alt);
    reg->be_alt = be;
    return be;
}

/* ---- the worker --------------------------------------------------------- */

typedef struct worker_run {
    gand_registry *reg;
    run *r;
    gan_trainer *t;
    int saved_epoch, saved_iteration; /* position of the last checkpoint written */
    bool eval_warned;                 /* said once that evaluate_every cannot be served */
    /*
     * metrics.jsonl lacks the last epoch: no checkpoint may go past it, or a
     * restart would find a hole in the history. It is written whole again
     * (worker_catch_up) before the next checkpoint.
     */
    bool history_behind;
} worker_run;

/*
 * Runs paused because their files could not be written (a full disk, say),
 * each with its trainer, so that nothing trained is thrown away: the worker
 * trains other runs meanwhile, tries to write these every IO_RETRY_MS, and a
 * Resume goes on from memory. Each holds a reference to its run. Only the
 * worker thread touches this.
 */
enum { HELD_MAX = 4, IO_RETRY_MS = 2000 };
typedef struct held_runs {
    worker_run w[HELD_MAX];
    int64_t next_try_ms[HELD_MAX];
    int n;
} held_runs;

static int worker_checkpoint(worker_run *w, gan_error *err)
{
    int e = gan_trainer_epoch(w->t), it = gan_trainer_iteration(w->t);
    if (e == w->saved_epoch && it == w->saved_iteration)
        return 0;
    char path[PATH_MAX];
    run_path(w->r, "checkpoint.safetensors", path, sizeof path);
    if (gan_trainer_save(w->t, path, err) != 0)
        return -1;
    w->saved_epoch = e;
    w->saved_iteration = it;
    reg_lock(w->reg);
    w->r->checkpoint_epoch = e;
    reg_unlock(w->reg);
    persist_run(w->reg, w->r);
    return 0;
}

/*
 * What the run's files lack, written: the history (when an append failed) and
 * then a checkpoint of where the trainer is. 0 when all is on disk.
 */
static int worker_catch_up(worker_run *w, gan_error *err)
{
    if (w->history_behind) {
        pthread_mutex_lock(&w->r->io);
        int rc = rewrite_history(w->reg, w->r, err);
        pthread_mutex_unlock(&w->r->io);
        if (rc != 0)
            return -1;
        w->history_behind = false;
    }
    return worker_checkpoint(w, err);
}

/* An I/O failure: the run pauses with the reason (a user may free space and resume). */
static void worker_io_pause(worker_run *w, const char *what, const gan_error *err)
{
    char reason[REASON_MAX];
    str_printf(reason, sizeof reason, "%s: %s", what, err->message);
    if (set_state(w->reg, w->r, RUN_PAUSED, reason, true))
        log_err("run %s paused: %s", w->r->id, reason);
    else
        log_err("run %s: %s", w->r->id, reason);
}

static void worker_fail(worker_run *w, const char *what, const gan_error *err)
{
    char reason[REASON_MAX];
    str_printf(reason, sizeof reason, "%s%s%s", what ? what : "", what ? ": " : "", err->message);
    log_err("run %s failed: %s", w->r->id, reason);
    set_state(w->reg, w->r, RUN_FAILED, reason, false);
}

/* Epoch end: metrics line, epoch event, snapshot, grid, periodic checkpoint. 1 = device failure. */
static int worker_end_epoch(worker_run *w, const gan_epoch_metrics *m, gan_error *err)
{
    gand_registry *reg = w->reg;
    run *r = w->r;
    const gan_config *live = gan_trainer_config(w->t);
    if (epoch_record(reg, r, m, &w->history_behind, err) != 0)
        return -1;
    epoch_watch(reg, r, live);

    g_snapshot *s = snapshot_from_trainer(w->t, live, err);
    if (!s)
        return 1;
    const gan_epoch_plan plan = gan_epoch_plan_for(live, m->epoch);
    if (plan.grid && epoch_grid(reg, r, s, err) != 0) {
        snapshot_release(s);
        return -1;
    }
    if (plan.evaluate)
        epoch_queue_eval(reg, r, s, EVAL_EVALUATE_EVERY, &w->eval_warned);
    else if (plan.watch)
        epoch_queue_eval(reg, r, s, EVAL_WATCH, &w->eval_warned);
    snapshot_publish(reg, r, s);
    if (plan.checkpoint && worker_checkpoint(w, err) != 0)
        return -1;
    return 0;
}

/*
 * An evaluation of the epoch the trainer has just finished found the lowest
 * Fréchet distance yet: that state becomes checkpoint-best.safetensors.
 * Evaluations queued at an epoch's end run before the next iteration, so the
 * trainer is still where the evaluated G came from; if it has moved on (the
 * evaluation waited behind a pause), the chance is let go.
 */
static void worker_save_best(worker_run *w)
{
    run *r = w->r;
    reg_lock(w->reg);
    int epoch = r->best_pending_epoch;
    double fid = r->best_pending_fid;
    r->best_pending_epoch = -1;
    reg_unlock(w->reg);
    if (epoch < 0 || epoch != gan_trainer_epoch(w->t) || gan_trainer_iteration(w->t) != 0)
        return;
    char path[PATH_MAX];
    gan_error err;
    run_path(r, "checkpoint-best.safetensors", path, sizeof path);
    if (gan_trainer_save(w->t, path, &err) != 0) {
        log_warning("run %s: the best checkpoint (epoch %d) could not be written: %s", r->id, epoch,
                    err.message);
        return;
    }
    reg_lock(w->reg);
    r->best_epoch = epoch;
    r->best_fid = fid;
    reg_unlock(w->reg);
    log_info("run %s: epoch %d is the best yet (Fréchet distance %.2f); checkpoint-best written",
             r->id, epoch, fid);
}

/*
 * The worker lets go of its run. Returns false (and keeps it) when a resume
 * arrived while it was checkpointing for a pause.
 */
static bool worker_release(worker_run *w, const char *note)
{
    gand_registry *reg = w->reg;
    run *r = w->r;
    pthread_mutex_lock(&r->io);
    reg_lock(reg);
    if (r->state == RUN_RUNNING && !reg->shutdown) {
        reg_unlock(reg);
        pthread_mutex_unlock(&r->io);
        return false;
    }
    if (note && !r->reason[0])
        str_printf(r->reason, sizeof r->reason, "%s", note);
    r->active = false;
    r->iterations_per_epoch = 0;
    reg->current = NULL;
    event_wake_locked(reg, r); /* "ended" may now be true */
    pending_files p = prepare_files_locked(reg, r, false);
    reg_unlock(reg);
    store_files(reg, r, &p);
    pthread_mutex_unlock(&r->io);
    return true;
}

/* Build the trainer for a run, resuming from its checkpoint when there is one. */
static int worker_build(worker_run *w, gan_error *err)
{
    gand_registry *reg = w->reg;
    run *r = w->r;
    gan_config cfg;
    reg_lock(reg);
    cfg = r->cfg;
    r->cfg_dirty = false;
    reg_unlock(reg);
    const dataset_info *d = worker_dataset(reg, cfg.dataset, err);
    if (!d)
        return -1;
    gan_dataset train = d->loaded; /* a view of the images to train on: the trainer copies them */
    train.count = d->train_images;
    if (cfg.batch_size > train.count) {
        gan_fail(err, "batch_size",
                 "batch_size %d is more than the %d training images of data set '%s'",
                 cfg.batch_size, train.count, cfg.dataset);
        return -1;
    }
    gk_backend *be = run_backend(reg, &cfg, err);
    if (!be)
        return -1;
    reg_lock(reg);
    str_printf(r->device, sizeof r->device, "%s", be->device);
    reg_unlock(reg);
    w->t = gan_trainer_new(be, &cfg, &train, err);
    if (!w->t)
        return -1;
    w->saved_epoch = w->saved_iteration = -1;
    char ckpt[PATH_MAX];
    run_path(r, "checkpoint.safetensors", ckpt, sizeof ckpt);
    if (access(ckpt, F_OK) == 0) {
        if (gan_trainer_load(w->t, ckpt, err) != 0) {
            char m[sizeof err->message];
            str_printf(m, sizeof m, "cannot resume from the checkpoint: %s", err->message);
            str_printf(err->message, sizeof err->message, "%s", m);
            return -1;
        }
        gan_trainer_set_config(w->t, &cfg); /* patches made since the checkpoint win */
        w->saved_epoch = gan_trainer_epoch(w->t);
        w->saved_iteration = gan_trainer_iteration(w->t);
    }
    int epoch = gan_trainer_epoch(w->t);
    reg_lock(reg);
    r->iteration = gan_trainer_iteration(w->t);
    r->iterations_per_epoch = gan_trainer_iterations_per_epoch(w->t);
    int had = run_epochs_locked(r);
    bool cut = metrics_cut_locked(r, epoch); /* history past the checkpoint is trained again */
    if (cut)
        r->metrics_file_stale = true;
    bool stale = r->metrics_file_stale;
    reg_unlock(reg);
    if (cut)
        log_notice("run %s: resuming from the checkpoint of epoch %d; the records of epochs "
                   "%d..%d are dropped and those epochs are trained again",
                   r->id, epoch, epoch + 1, had);
    if (stale) {
        pthread_mutex_lock(&r->io);
        int rc = rewrite_history(reg, r, err);
        pthread_mutex_unlock(&r->io);
        if (rc != 0)
            return -2;
    }
    g_snapshot *s = snapshot_from_trainer(w->t, gan_trainer_config(w->t), err);
    if (!s)
        return -1;
    snapshot_publish(reg, r, s);
    return 0;
}

/* Remove held run i, freeing its trainer unless it was taken (w->t set to NULL). */
static void held_remove(held_runs *h, int i)
{
    worker_run *w = &h->w[i];
    gan_trainer_free(w->t);
    reg_lock(w->reg);
    run_put_locked(w->r);
    reg_unlock(w->reg);
    h->w[i] = h->w[h->n - 1];
    h->next_try_ms[i] = h->next_try_ms[h->n - 1];
    h->n--;
}

/*
 * Try to write what the held runs lack: those due (all when `all`), and every
 * one when `final` (shutdown, or a backend about to close), after which they
 * are let go whatever happened, saying what is lost.
 */
static void held_retry(held_runs *h, bool all, bool final)
{
    int64_t now = mono_ms();
    for (int i = 0; i < h->n;) {
        worker_run *w = &h->w[i];
        if (!all && !final && now < h->next_try_ms[i]) {
            i++;
            continue;
        }
        reg_lock(w->reg);
        bool removed = w->r->removed, stopped = w->r->state == RUN_STOPPED;
        reg_unlock(w->reg);
        gan_error err = {{0}, {0}};
        if (removed) {
            held_remove(h, i);
        } else if (worker_catch_up(w, &err) == 0) {
            log_notice("run %s: its files can be written again: history and checkpoint of epoch "
                       "%d, iteration %d written%s",
                       w->r->id, gan_trainer_epoch(w->t), gan_trainer_iteration(w->t),
                       stopped ? "" : "; Resume goes on from there");
            held_remove(h, i);
        } else if (final) {
            log_err("run %s: %s; what was trained past epoch %d is lost", w->r->id, err.message,
                    w->saved_epoch < 0 ? 0 : w->saved_epoch);
            held_remove(h, i);
        } else {
            h->next_try_ms[i] = now + IO_RETRY_MS;
            i++;
        }
    }
}

static bool held_due(const held_runs *h)
{
    int64_t now = mono_ms();
    for (int i = 0; i < h->n; i++)
        if (now >= h->next_try_ms[i])
            return true;
    return false;
}

/* A held run that was resumed: the worker goes on with its trainer (true), or builds one. */
static bool held_take(held_runs *h, run *r, worker_run *w)
{
    for (int i = 0; i < h->n; i++) {
        if (h->w[i].r != r)
            continue;
        *w = h->w[i];
        h->w[i].t = NULL;
        held_remove(h, i); /* the worker's own reference (worker_pick) keeps the run */
        reg_lock(w->reg);
        r->iteration = gan_trainer_iteration(w->t);
        r->iterations_per_epoch = gan_trainer_iterations_per_epoch(w->t);
        reg_unlock(w->reg);
        return true;
    }
    return false;
}

/* Train the run the worker holds until it completes, fails, pauses, stops or shutdown. */
static void worker_train(gand_registry *reg, run *r, held_runs *held)
{
    worker_run w = {reg, r, NULL, -1, -1, false, false};
    gan_error err = {{0}, {0}};
    int rc = 0;
    if (held_take(held, r, &w))
        log_info("run %s: resumed from memory, where it was held since its files could not be "
                 "written",
                 r->id);
    else
        rc = worker_build(&w, &err);
    if (rc == -2) {
        worker_io_pause(&w, "cannot rewrite metrics.jsonl", &err);
        worker_release(&w, NULL);
        gan_trainer_free(w.t);
        return;
    }
    if (rc != 0) {
        worker_fail(&w, NULL, &err);
        worker_release(&w, NULL);
        gan_trainer_free(w.t);
        return;
    }
    log_info("run %s: training from epoch %d, iteration %d on %s", r->id, gan_trainer_epoch(w.t),
             gan_trainer_iteration(w.t), r->device);

    for (;;) {
        bool leave, shutdown, apply = false, evaluate;
        gan_config next;
        if (held->n > 0 && held_due(held)) /* between two iterations, as evaluations */
            held_retry(held, false, false);
        reg_lock(reg);
        atomic_fetch_add(&reg->heartbeat, 1);
        r->iteration = gan_trainer_iteration(w.t);
        shutdown = reg->shutdown;
        leave = shutdown || r->state != RUN_RUNNING;
        evaluate = !shutdown && reg->evals_queued > 0;
        if (r->cfg_dirty) {
            next = r->cfg;
            r->cfg_dirty = false;
            apply = true;
        }
        reg_unlock(reg);
        if (apply)
            gan_trainer_set_config(w.t, &next);
        if (evaluate) { /* between two iterations: evaluations of any run go first */
            worker_evaluate_next(reg);
            continue;
        }
        worker_save_best(&w);

        if (leave) {
            const char *note = NULL;
            char buf[REASON_MAX];
            reg_lock(reg);
            bool paused = !shutdown && !r->removed && r->state == RUN_PAUSED;
            reg_unlock(reg);
            if (worker_catch_up(&w, &err) != 0) {
                if (paused && held->n < HELD_MAX) {
                    /*
                     * The disk is full (say): the trainer is held aside, the
                     * worker trains other runs and tries again, and a Resume
                     * goes on from memory. Nothing that was trained is lost.
                     */
                    log_warning("run %s: paused with its model kept in memory, since its files "
                                "cannot be written (%s); they are written as soon as they can "
                                "be, and Resume goes on from epoch %d, iteration %d",
                                r->id, err.message, gan_trainer_epoch(w.t),
                                gan_trainer_iteration(w.t));
                    reg_lock(reg);
                    r->refs++;
                    reg_unlock(reg);
                    held->next_try_ms[held->n] = mono_ms() + IO_RETRY_MS;
                    held->w[held->n++] = w;
                    if (worker_release(&w, NULL)) {
                        w.t = NULL; /* the held copy owns it now */
                        break;
                    }
                    held->w[held->n - 1].t = NULL; /* resumed meanwhile: train on */
                    held_remove(held, held->n - 1);
                    continue;
                }
                log_err("run %s: %s; what was trained past epoch %d is lost", r->id, err.message,
                        w.saved_epoch < 0 ? 0 : w.saved_epoch);
                str_printf(buf, sizeof buf, "the checkpoint could not be written: %s", err.message);
                note = buf;
            } else {
                log_info("run %s: %s at epoch %d, iteration %d; checkpoint written", r->id,
                         shutdown ? "interrupted by shutdown" : "left the worker",
                         gan_trainer_epoch(w.t), gan_trainer_iteration(w.t));
            }
            if (worker_release(&w, shutdown ? NULL : note))
                break;
            continue; /* resumed while checkpointing: the trainer goes on from where it is */
        }

        const gan_config *live = gan_trainer_config(w.t);
        if (gan_trainer_epoch(w.t) >= live->epochs) {
            if (worker_checkpoint(&w, &err) != 0) {
                worker_io_pause(&w, "the final checkpoint could not be written", &err);
                continue; /* the pause path releases the run */
            }
            pthread_mutex_lock(&r->io);
            reg_lock(reg);
            r->state = RUN_COMPLETED;
            r->reason[0] = '\0';
            r->finished_at = now_ms();
            pending_files p = prepare_files_locked(reg, r, true);
            r->active = false;
            r->iterations_per_epoch = 0;
            reg->current = NULL;
            reg_unlock(reg);
            store_files(reg, r, &p);
            pthread_mutex_unlock(&r->io);
            log_info("run %s completed %d epochs", r->id, gan_trainer_epoch(w.t));
            break;
        }
        if (!gan_trainer_epoch_complete(w.t)) {
            if (gan_trainer_step(w.t, &err) != 0) {
                worker_fail(&w, NULL, &err);
                worker_release(&w, NULL);
                break;
            }
            continue;
        }
        gan_epoch_metrics m;
        if (gan_trainer_finish_epoch(w.t, &m, &err) != 0) {
            worker_fail(&w, NULL, &err);
            worker_release(&w, NULL);
            break;
        }
        rc = worker_end_epoch(&w, &m, &err);
        if (rc > 0) {
            worker_fail(&w, NULL, &err);
            worker_release(&w, NULL);
            break;
        }
        if (rc < 0)
            worker_io_pause(&w, "cannot write the run's files", &err);
    }
    gan_trainer_free(w.t);
}

/* The oldest queued run, made running and held by the worker (NULL when none). */
static run *worker_pick(gand_registry *reg)
{
    for (;;) {
        run *best = NULL;
        for (int i = 0; i < reg->nruns; i++) {
            run *r = reg->runs[i];
            if (r->state == RUN_QUEUED && !r->active && (!best || r->queue_seq < best->queue_seq))
                best = r;
        }
        if (!best)
            return NULL;
        best->refs++;
        reg_unlock(reg);
        pthread_mutex_lock(&best->io);
        reg_lock(reg);
        if (best->removed || best->state != RUN_QUEUED || reg->shutdown) {
            pthread_mutex_unlock(&best->io);
            run_put_locked(best);
            if (reg->shutdown)
                return NULL;
            continue;
        }
        best->state = RUN_RUNNING;
        best->reason[0] = '\0';
        best->active = true;
        best->executor = "local";
        best->cfg_dirty = false;
        if (!best->started_at)
            best->started_at = now_ms();
        reg->current = best;
        pending_files p = prepare_files_locked(reg, best, true);
        reg_unlock(reg);
        store_files(reg, best, &p);
        pthread_mutex_unlock(&best->io);
        reg_lock(reg);
        return best;
    }
}

static void *worker_main(void *arg)
{
    gand_registry *reg = arg;
    char why[512];
    bool lost = false;
    gk_backend *be = executor_backend_open(reg, why, sizeof why);
    if (!be)
        return NULL;
    reg_lock(reg);
    reg->worker_ready = true;
    pthread_cond_broadcast(&reg->start_cond);
    reg_unlock(reg);
    log_info("worker: %s (%s)", why, be->device);
    held_runs held = {0};
    reg_lock(reg);

    while (!reg->shutdown) {
        atomic_fetch_add(&reg->heartbeat, 1);
        if (held.n > 0 && held_due(&held)) {
            reg_unlock(reg);
            held_retry(&held, false, false);
            reg_lock(reg);
            continue;
        }
        if (reg->evals_queued > 0) {
            reg_unlock(reg);
            worker_evaluate_next(reg);
            reg_lock(reg);
            continue;
        }
        run *r = worker_pick(reg);
        if (!r) {
            if (reg->shutdown)
                break;
            struct timespec dl = deadline_after_ms(held.n > 0 ? IO_RETRY_MS / 4 : IDLE_WAKE_MS);
            pthread_cond_timedwait(&reg->work_cond, &reg->lock, &dl);
            continue;
        }
        reg_unlock(reg);
        worker_train(reg, r, &held);
        reg_lock(reg);
        run_put_locked(r);
        bool closing = (reg->be_alt && gk_backend_error(reg->be_alt)) || gk_backend_error(reg->be);
        if (closing && held.n > 0) { /* held trainers live on the backends: written or lost now */
            reg_unlock(reg);
            held_retry(&held, true, true);
            reg_lock(reg);
        }
        if (reg->be_alt && gk_backend_error(reg->be_alt)) {
            /* reopened when a run next names it; closed and logged with the lock let go */
            gk_backend *alt = reg->be_alt;
            const char *alt_error = gk_backend_error(alt); /* sticky: set, as tested above */
            reg->be_alt = NULL;
            reg_unlock(reg);
            log_warning("worker: closing the %s backend after: %s", alt->ops->name,
                        alt_error ? alt_error : "an error");
            gk_backend_close(alt);
            reg_lock(reg);
        }
        if (gk_backend_error(reg->be)) {
            /* a failed device context is not trusted for the next run */
            reg_unlock(reg);
            log_warning("worker: reopening the backend after: %s", gk_backend_error(reg->be));
            gk_backend_close(reg->be);
            gk_backend *nb = gk_backend_open(reg->device_req, why, sizeof why);
            reg_lock(reg);
            reg->be = nb;
            if (!nb) {
                /* no heartbeat from here on: the watchdog restarts the daemon */
                str_printf(reg->be_why, sizeof reg->be_why, "backend lost: %s", why);
                lost = true;
                break;
            }
        }
    }
    reg_unlock(reg);
    held_retry(&held, true, true); /* shutdown: a last try, then what is lost is said */
    reg_lock(reg);
    reg->worker_exited = true;
    reg_unlock(reg);
    if (lost)
        log_err("worker: the backend cannot be reopened (%s); training stops", why);
    executor_backend_close(reg);
    return NULL;
}

/* ---- what every executor's thread does ------------------------------------ */

gk_backend *executor_backend_open(gand_registry *reg, char *why, size_t len)
{
    gk_backend *be = gk_backend_open(reg->device_req, why, len);
    reg_lock(reg);
    str_printf(reg->be_why, sizeof reg->be_why, "%s", why);
    if (!be) {
        reg->worker_failed = true; /* registry_start says why */
        pthread_cond_broadcast(&reg->start_cond);
    } else {
        reg->be = be;
        str_printf(reg->be_name, sizeof reg->be_name, "%s", be->ops->name);
        str_printf(reg->be_device, sizeof reg->be_device, "%s", be->device);
    }
    reg_unlock(reg);
    return be;
}

void executor_backend_close(gand_registry *reg)
{
    for (int i = 0; i < reg->ndatasets; i++) {
        if (reg->datasets[i].is_loaded) {
            gan_dataset_free(&reg->datasets[i].loaded);
            reg->datasets[i].is_loaded = false;
        }
        if (reg->datasets[i].test_is_loaded) {
            gan_dataset_free(&reg->datasets[i].test_loaded);
            reg->datasets[i].test_is_loaded = false;
        }
    }
    if (reg->be)
        gk_backend_close(reg->be);
    if (reg->be_alt)
        gk_backend_close(reg->be_alt);
    reg->be = reg->be_alt = NULL;
}

/* ---- the executor interface (executor.h) ---------------------------------- */

int executor_thread_start(gand_registry *r, void *(*main_fn)(void *), gan_error *err)
{
    reg_lock(r);
    if (r->worker_started) {
        reg_unlock(r);
        return 0;
    }
    r->shutdown = false;
    r->worker_ready = r->worker_failed = r->worker_exited = false;
    if (pthread_create(&r->worker, NULL, main_fn, r) != 0) {
        reg_unlock(r);
        return gan_fail(err, "", "cannot start the worker thread");
    }
    r->worker_started = true;
    while (!r->worker_ready && !r->worker_failed)
        pthread_cond_wait(&r->start_cond, &r->lock);
    bool failed = r->worker_failed;
    char why[sizeof r->be_why];
    str_printf(why, sizeof why, "%s", r->be_why);
    reg_unlock(r);
    if (failed) {
        pthread_join(r->worker, NULL);
        reg_lock(r);
        r->worker_started = false;
        reg_unlock(r);
        return gan_fail(err, "device", "%s", why);
    }
    return 0;
}

static int local_start(gand_registry *r, gan_error *err)
{
    return executor_thread_start(r, worker_main, err);
}

static void local_wake_locked(gand_registry *r)
{
    pthread_cond_broadcast(&r->work_cond);
}

/* reg->shutdown is set: the worker checkpoints its run and exits. */
bool executor_thread_join(gand_registry *r)
{
    reg_lock(r);
    bool started = r->worker_started;
    reg_unlock(r);
    if (!started)
        return false;
    pthread_join(r->worker, NULL);
    reg_lock(r);
    r->worker_started = false;
    reg_unlock(r);
    return true;
}

static void local_stop(gand_registry *r)
{
    if (executor_thread_join(r))
        log_info("registry: worker stopped");
}

const gand_executor_ops gand_executor_local = {
    .name = "local",
    .start = local_start,
    .wake_locked = local_wake_locked,
    .stop = local_stop,
};
