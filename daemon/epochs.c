/*
 * daemon/epochs.c — what follows an epoch, whoever trained it: the record in
 * metrics.jsonl and memory with its event, the watch rules, the fixed-noise
 * grid and the automatic evaluations. The local worker calls these with its
 * trainer's results; the Slurm executor with what a job published.
 */
#include "daemon/registry_internal.h"

int rewrite_history(gand_registry *reg, run *r, gan_error *err)
{
    reg_lock(reg);
    char *all = metrics_text_locked(r);
    reg_unlock(reg);
    char path[PATH_MAX];
    run_path(r, "metrics.jsonl", path, sizeof path);
    int rc = all ? gan_write_file_atomic(path, all, strlen(all), err)
                 : gan_fail(err, "", "out of memory formatting metrics.jsonl");
    free(all);
    if (rc == 0) {
        reg_lock(reg);
        r->metrics_file_stale = false;
        reg_unlock(reg);
    }
    return rc;
}

int epoch_record(gand_registry *reg, run *r, const gan_epoch_metrics *m, bool *file_behind,
                 gan_error *err)
{
    char line[1024], path[PATH_MAX];
    gan_epoch_metrics_json(m, line, sizeof line);
    run_path(r, "metrics.jsonl", path, sizeof path);

    pthread_mutex_lock(&r->io); /* every append to the run's files holds it */
    reg_lock(reg);
    bool stale = r->metrics_file_stale;
    reg_unlock(reg);
    int wrote;
    if (stale) /* an earlier append failed: rewrite the whole history, then this line */
        wrote = rewrite_history(reg, r, err) == 0 && gan_append_line(path, line) == 0 ? 0 : -1;
    else
        wrote = gan_append_line(path, line);
    int io_errno = errno;

    reg_lock(reg);
    bool stored = grow((void **)&r->metrics, &r->metrics_cap, r->nmetrics + 1, sizeof *m);
    uint64_t id = 0;
    if (stored) {
        r->metrics[r->nmetrics++] = *m;
        r->iteration = 0;
        r->updated_at = now_ms();
        id = event_add_locked(reg, r, "epoch", strdup(line));
    }
    r->metrics_file_stale = wrote != 0;
    reg_unlock(reg);
    event_append(r, id, "epoch", m->epoch, line); /* its id, for streams after a restart */
    pthread_mutex_unlock(&r->io);
    events_after_lock(reg);
    *file_behind = wrote != 0;
    if (!stored)
        return gan_fail(err, "", "out of memory recording epoch %d", m->epoch);
    if (wrote != 0)
        return gan_fail(err, "metrics", "cannot append to %s: %s", path, strerror(io_errno));
    return 0;
}

void epoch_watch(gand_registry *reg, run *r, const gan_config *live)
{
    /* the rules look back at most as far as the longest d_wins streak */
    int look = 0;
    for (int i = 0; i < live->watch.n; i++)
        if (live->watch.rules[i].kind == GAN_WATCH_D_WINS && live->watch.rules[i].epochs > look)
            look = live->watch.rules[i].epochs;
    if (look == 0)
        return;
    look++; /* and the epoch before the streak */
    gan_epoch_metrics *tail = malloc((size_t)look * sizeof *tail);
    if (!tail)
        return;
    reg_lock(reg);
    int n = r->nmetrics < look ? r->nmetrics : look;
    memcpy(tail, r->metrics + (r->nmetrics - n), (size_t)n * sizeof *tail);
    reg_unlock(reg);
    gan_alert fired[GAN_WATCH_MAX];
    int k = gan_watch_after_epoch(&live->watch, tail, n, fired, GAN_WATCH_MAX);
    free(tail);
    alerts_raise(reg, r, fired, k);
}

int epoch_grid(gand_registry *reg, run *r, const g_snapshot *s, gan_error *err)
{
    char path[PATH_MAX];
    run_path(r, "samples", path, sizeof path);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return gan_fail(err, "samples", "cannot create %s: %s", path, strerror(errno));
    sample_path(r, s->epoch, path, sizeof path);
    if (gan_epoch_grid_write(&s->cfg, s->params, path, err) != 0)
        return -1;
    reg_lock(reg);
    if ((r->nsamples == 0 || r->samples[r->nsamples - 1] < s->epoch) &&
        grow((void **)&r->samples, &r->samples_cap, r->nsamples + 1, sizeof(int)))
        r->samples[r->nsamples++] = s->epoch;
    reg_unlock(reg);
    return 0;
}

void epoch_queue_eval(gand_registry *reg, run *r, g_snapshot *s, eval_trigger trigger, bool *warned)
{
    eval_lines l = {0};
    char warning[640] = "";
    pthread_mutex_lock(&r->io);
    reg_lock(reg);
    const dataset_info *d = dataset_find(reg, r->cfg.dataset);
    if (trigger == EVAL_WATCH && (!d || !d->eval_ok || !d->has_classifier)) {
        /* said once at start-up: the data set has no classifier (or no held-out images) */
    } else if (!d || !d->eval_ok) {
        if (!*warned)
            str_printf(warning, sizeof warning,
                       "run %s: evaluate_every is %d, but data set '%s' cannot be evaluated on: %s",
                       r->id, r->cfg.evaluate_every, r->cfg.dataset,
                       d ? (d->ok ? d->eval_error : d->error) : "it is not configured");
        *warned = true;
    } else {
        atomic_fetch_add(&s->refs, 1);
        int n = trigger == EVAL_WATCH ? gan_watch_samples(d->split.test_end - d->split.test_begin)
                                      : GAN_EVAL_AUTO_SAMPLES;
        evaluation *e = eval_add_locked(reg, r, n, GAN_EVAL_AUTO_SEED, trigger, s);
        if (e)
            l = eval_record_locked(reg, r, e, true);
        else
            str_printf(warning, sizeof warning, "run %s: out of memory queueing an evaluation",
                       r->id);
    }
    reg_unlock(reg);
    eval_store(reg, r, &l);
    pthread_mutex_unlock(&r->io);
    if (warning[0])
        log_warning("%s", warning);
}
