/*
 * daemon/executor_slurm.c — the Slurm executor: each queued run becomes a
 * Slurm job that runs `gand train --job RUN_DIR` on a node, and one thread of
 * the daemon follows every job through the run's directory (which every node
 * must see) and through Slurm's own tools. No scheduler, agent or protocol of
 * gand's own: sbatch submits, scontrol says how a job stands, scancel cancels
 * or signals it.
 *
 * The run directory is shared by the daemon and the job, each writing its own
 * files, every one replaced whole (write and rename) or only appended to:
 *
 *   job/control.json   daemon → job: the config, its version, and the action
 *                      ("run", "pause", "stop"); the job reads it at start, on
 *                      SIGUSR1 (scancel --signal=USR1 --batch) and every few
 *                      seconds, at an iteration boundary
 *   job/job.sh         the batch script: exec gand train --job RUN_DIR
 *   job/state.json     job → daemon: its job id, node, device, where training
 *                      stands, the config version applied, and at the end how
 *                      it ended (completed, paused, stopped, failed, or
 *                      "requeue": it checkpointed on SIGTERM)
 *   job/epochs.jsonl   job → daemon: one record per epoch, appended
 *   job/published/epoch-NNNNNN.safetensors
 *                      job → daemon: the checkpoint written at the end of each
 *                      epoch, kept under a second name until the daemon has
 *                      taken G from it (snapshots, grids, evaluations)
 *   checkpoint.safetensors  the job's: where a requeued or resumed job goes on
 *
 * The daemon turns what the job publishes into the run's own records exactly
 * as the worker does for a local run (epochs.c): metrics.jsonl, events, watch
 * rules, grids, evaluations (run here, on the daemon's backend, from the
 * published G). A job SIGTERMed by Slurm (preemption, `scontrol requeue`, the
 * --signal before its time limit) checkpoints and exits with status 75, which
 * slurm.conf's RequeueExit=75 turns into a requeue; it then resumes from its
 * checkpoint, bit for bit.
 */
#include "daemon/registry_internal.h"

#include "daemon/slurm_tools.h"

#include <fcntl.h>

enum {
    CONTROL_POLL_S = 2, /* the job also rereads control.json this often */
    PUBLISHED_KEEP = 4, /* published checkpoints a job keeps when the daemon falls behind */
    RETRY_MS = 10000,   /* Slurm did not answer: sbatch again after this */
    EXIT_REQUEUE = 75,  /* gand train --job checkpointed on SIGTERM (EX_TEMPFAIL) */
};

typedef enum job_action { ACTION_NONE = -1, ACTION_RUN, ACTION_PAUSE, ACTION_STOP } job_action;
static const char *const action_names[] = {"run", "pause", "stop"};

/* ---- the job's files ------------------------------------------------------ */

static void job_path(const run *r, const char *name, char *out, size_t len)
{
    str_printf(out, len, "%s/job/%s", r->dir, name);
}

/* What the job says in job/state.json (only when it is this job's). */
typedef struct job_report {
    bool present;
    char state[16]; /* running, completed, paused, stopped, failed, requeue */
    char reason[REASON_MAX];
    char node[64], device[128];
    int epoch, iteration, iterations_per_epoch, checkpoint_epoch;
    uint64_t config_version;
} job_report;

static void job_report_read(const run *r, long job_id, job_report *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->checkpoint_epoch = -1;
    char path[PATH_MAX];
    job_path(r, "state.json", path, sizeof path);
    char *text = read_text(path, 1 << 16, NULL);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(o, "job_id");
    if (!cJSON_IsNumber(jid) || (long)jid->valuedouble != job_id) {
        cJSON_Delete(o);
        return;
    }
    rep->present = true;
    const struct {
        const char *name;
        char *buf;
        size_t len;
    } strs[] = {{"state", rep->state, sizeof rep->state},
                {"reason", rep->reason, sizeof rep->reason},
                {"node", rep->node, sizeof rep->node},
                {"device", rep->device, sizeof rep->device}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, strs[i].name);
        str_printf(strs[i].buf, strs[i].len, "%s", cJSON_IsString(v) ? v->valuestring : "");
    }
    const struct {
        const char *name;
        int *v;
    } ints[] = {{"epoch", &rep->epoch},
                {"iteration", &rep->iteration},
                {"iterations_per_epoch", &rep->iterations_per_epoch},
                {"checkpoint_epoch", &rep->checkpoint_epoch}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, ints[i].name);
        if (cJSON_IsNumber(v))
            *ints[i].v = v->valueint;
    }
    const cJSON *cv = cJSON_GetObjectItemCaseSensitive(o, "config_version");
    rep->config_version = cJSON_IsNumber(cv) ? (uint64_t)cv->valuedouble : 0;
    cJSON_Delete(o);
}

/* job/control.json: the config (version `version`), the action and the data set's files. */
static int write_control(gand_registry *reg, run *r, const gan_config *cfg, uint64_t version,
                         job_action action, gan_error *err)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "run", r->id);
    cJSON_AddStringToObject(o, "action", action_names[action]);
    cJSON_AddNumberToObject(o, "config_version", (double)version);
    cJSON_AddItemToObject(o, "config", config_cjson(cfg));
    const dataset_info *d = dataset_find(reg, cfg->dataset); /* fixed after registry_open */
    if (d) {
        cJSON *data = cJSON_AddObjectToObject(o, "data");
        cJSON_AddStringToObject(data, "path", d->entry.path);
        if (d->entry.test_path[0])
            cJSON_AddStringToObject(data, "test", d->entry.test_path);
        cJSON_AddNumberToObject(data, "holdout", d->holdout);
    }
    char *text = print_and_delete(o);
    char path[PATH_MAX];
    job_path(r, "control.json", path, sizeof path);
    int rc = text ? gan_write_file_atomic(path, text, strlen(text), err)
                  : gan_fail(err, "", "out of memory");
    free(text);
    return rc;
}

/* A single-quoted shell word. */
static void sh_quote(sb *b, const char *s)
{
    sb_puts(b, "'");
    for (; *s; s++) {
        if (*s == '\'')
            sb_puts(b, "'\\''");
        else
            sb_printf(b, "%c", *s);
    }
    sb_puts(b, "'");
}

static int write_script(gand_registry *reg, run *r, gan_error *err)
{
    sb b = {0};
    sb_printf(&b, "#!/bin/sh\n# gand run %s: written by gand serve, submitted with sbatch\nexec ",
              r->id);
    sh_quote(&b, reg->slurm.gand_bin);
    sb_puts(&b, " train --job ");
    sh_quote(&b, r->dir);
    sb_puts(&b, "\n");
    char *text = sb_take(&b);
    char path[PATH_MAX];
    job_path(r, "job.sh", path, sizeof path);
    int rc = text ? gan_write_file_atomic(path, text, strlen(text), err)
                  : gan_fail(err, "", "out of memory");
    free(text);
    if (rc == 0 && chmod(path, 0755) != 0)
        rc = gan_fail(err, "", "cannot make %s executable: %s", path, strerror(errno));
    return rc;
}

/* The name of a run's jobs: gand-ID-XXXXXXXX, the last part from the state directory. */
static void job_name(const gand_registry *reg, const run *r, char *buf, size_t len)
{
    uLong h = crc32(0L, (const Bytef *)reg->state_dir, (uInt)strlen(reg->state_dir));
    str_printf(buf, len, "gand-%s-%08lx", r->id, (unsigned long)h);
}

/* ---- submitting ------------------------------------------------------------- */

static void release_locked(gand_registry *reg, run *r)
{
    r->active = false;
    r->iterations_per_epoch = 0;
    event_wake_locked(reg, r); /* "ended" may now be true */
}

/* The run failed: its reason recorded, the executor lets go. */
static void run_fail(gand_registry *reg, run *r, const char *reason)
{
    log_err("run %s failed: %s", r->id, reason);
    pthread_mutex_lock(&r->io);
    reg_lock(reg);
    r->state = RUN_FAILED;
    str_printf(r->reason, sizeof r->reason, "%s", reason);
    r->finished_at = now_ms();
    release_locked(reg, r);
    pending_files p = prepare_files_locked(reg, r, true);
    reg_unlock(reg);
    store_files(reg, r, &p);
    pthread_mutex_unlock(&r->io);
}

/* Split sbatch_args on spaces into argv[*n...]; at most max words. */
static void split_words(char *s, char **argv, int *n, int max)
{
    for (char *save = NULL, *w = strtok_r(s, " \t", &save); w && *n < max;
         w = strtok_r(NULL, " \t", &save))
        argv[(*n)++] = w;
}

/* Submit a queued run's job; false when it was not (the run failed, or it waits to try again). */
static bool submit(gand_registry *reg, run *r)
{
    gan_error err = {{0}, {0}};
    char reason[REASON_MAX], name[96];
    job_name(reg, r, name, sizeof name);
    reg_lock(reg);
    gan_config cfg = r->cfg;
    uint64_t version = r->cfg_version;
    bool look_up = r->follow.look_up;
    r->cfg_dirty = false;
    reg_unlock(reg);

    long found = look_up ? job_by_name(reg->slurm.command_timeout_s, name) : 0;
    if (found < 0) {
        reg_lock(reg);
        r->follow.next_submit_ms = mono_ms() + RETRY_MS;
        reg_unlock(reg);
        log_warning("run %s: squeue does not answer; gand looks for its job again in %d s", r->id,
                    RETRY_MS / 1000);
        return false;
    }
    long id = found;
    if (!found) {
        char dir[PATH_MAX], pub[PATH_MAX];
        run_path(r, "job", dir, sizeof dir);
        job_path(r, "published", pub, sizeof pub);
        if (make_dir(dir, &err) != 0 || make_dir(pub, &err) != 0 ||
            write_control(reg, r, &cfg, version, ACTION_RUN, &err) != 0 ||
            write_script(reg, r, &err) != 0) {
            str_printf(reason, sizeof reason, "cannot write the job's files: %s", err.message);
            run_fail(reg, r, reason);
            return false;
        }
        char script[PATH_MAX], output[PATH_MAX + 16], sig[40], jn[120];
        job_path(r, "job.sh", script, sizeof script);
        job_path(r, "slurm-%j.out", output, sizeof output);
        str_printf(sig, sizeof sig, "--signal=B:TERM@%d", reg->slurm.signal_s);
        str_printf(jn, sizeof jn, "--job-name=%s", name);
        char out_arg[PATH_MAX + 32], part[160], gres[160], tl[48], acct[160];
        str_printf(out_arg, sizeof out_arg, "--output=%s", output);
        char *argv[80];
        int n = 0;
        argv[n++] = "sbatch";
        argv[n++] = "--parsable";
        argv[n++] = jn;
        argv[n++] = out_arg;
        argv[n++] = "--open-mode=append";
        argv[n++] = "--requeue";
        argv[n++] = sig;
        if (reg->slurm.partition[0]) {
            str_printf(part, sizeof part, "--partition=%s", reg->slurm.partition);
            argv[n++] = part;
        }
        if (reg->slurm.gres[0]) {
            str_printf(gres, sizeof gres, "--gres=%s", reg->slurm.gres);
            argv[n++] = gres;
        }
        if (reg->slurm.time_limit[0]) {
            str_printf(tl, sizeof tl, "--time=%s", reg->slurm.time_limit);
            argv[n++] = tl;
        }
        if (reg->slurm.account[0]) {
            str_printf(acct, sizeof acct, "--account=%s", reg->slurm.account);
            argv[n++] = acct;
        }
        char extra[sizeof reg->slurm.sbatch_args];
        str_printf(extra, sizeof extra, "%s", reg->slurm.sbatch_args);
        split_words(extra, argv, &n, 76);
        argv[n++] = script;
        argv[n] = NULL;
        cmd_result *res = malloc(sizeof *res);
        if (!res)
            return false;
        int rc = run_cmd(reg->slurm.command_timeout_s, argv, res);
        id = rc == 0 ? atol(res->out) : 0;
        if (rc != 0 || id <= 0) {
            if (res->timed_out || res->status < 0) {
                cmd_failure(reg->slurm.command_timeout_s, "sbatch", res, reason, sizeof reason);
                free(res);
                reg_lock(reg);
                r->follow.next_submit_ms = mono_ms() + RETRY_MS;
                reg_unlock(reg);
                log_warning("run %s: %s; it stays queued and gand submits it again in %d s", r->id,
                            reason, RETRY_MS / 1000);
                return false;
            }
            str_printf(reason, sizeof reason, "sbatch refused the job: %s",
                       res->out[0] ? res->out : "no output");
            free(res);
            run_fail(reg, r, reason);
            return false;
        }
        free(res);
    }
    pthread_mutex_lock(&r->io);
    reg_lock(reg);
    r->slurm_job_id = id;
    r->executor = "slurm";
    str_printf(r->slurm_state, sizeof r->slurm_state, "PENDING");
    r->node[0] = '\0';
    r->follow.offset = 0;
    r->follow.sent_version = version;
    r->follow.sent_action = ACTION_RUN;
    r->follow.cancelled = false;
    r->follow.look_up = false;
    r->reason[0] = '\0';
    pending_files p = prepare_files_locked(reg, r, false);
    reg_unlock(reg);
    store_files(reg, r, &p);
    pthread_mutex_unlock(&r->io);
    if (found)
        log_notice("run %s: found its Slurm job %ld (%s) again; it is not submitted twice", r->id,
                   id, name);
    else
        log_info("run %s: submitted to Slurm as job %ld (%s)", r->id, id, name);
    return true;
}

/* ---- following ---------------------------------------------------------------- */

static void published_path(const run *r, int epoch, char *out, size_t len)
{
    char name[64];
    str_printf(name, sizeof name, "published/epoch-%06d.safetensors", epoch);
    job_path(r, name, out, len);
}

static bool published(const run *r, int epoch)
{
    char path[PATH_MAX];
    published_path(r, epoch, path, sizeof path);
    return access(path, F_OK) == 0;
}

/* G of epoch `epoch`, from the checkpoint the job published then (NULL when there is none). */
static g_snapshot *published_generator(run *r, const gan_config *cfg, int epoch)
{
    char path[PATH_MAX];
    published_path(r, epoch, path, sizeof path);
    if (access(path, F_OK) != 0)
        return NULL;
    gan_checkpoint_position pos;
    float *g = NULL;
    gan_error err;
    if (gan_checkpoint_inspect(path, cfg, &pos, &g, &err) != 0) {
        log_warning("run %s: the checkpoint the job published at epoch %d is unreadable: %s", r->id,
                    epoch, err.message);
        return NULL;
    }
    g_snapshot *s = calloc(1, sizeof *s);
    if (!s) {
        free(g);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->cfg = *cfg;
    s->epoch = pos.epoch;
    s->params = g;
    return s;
}

/* The epoch of the newest checkpoint the job has published (-1: none). */
static int newest_published(const run *r)
{
    char dir[PATH_MAX];
    job_path(r, "published", dir, sizeof dir);
    DIR *d = opendir(dir);
    int newest = -1, ep;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (sscanf(e->d_name, "epoch-%d.safetensors", &ep) == 1 && ep > newest)
            newest = ep;
    if (d)
        closedir(d);
    return newest;
}

/* Published checkpoints of epochs ≤ upto are no longer needed. */
static void prune_published(run *r, int upto)
{
    char dir[PATH_MAX];
    job_path(r, "published", dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        int ep;
        if (sscanf(e->d_name, "epoch-%d.safetensors", &ep) == 1 && ep <= upto) {
            char p[PATH_MAX];
            str_printf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
}

/* One epoch the job published: recorded as the worker records its own (epochs.c). */
static void take_epoch(gand_registry *reg, run *r, const gan_epoch_metrics *m)
{
    gan_error err = {{0}, {0}};
    bool behind;
    if (epoch_record(reg, r, m, &behind, &err) != 0)
        log_err("run %s: epoch %d: %s", r->id, m->epoch, err.message);
    reg_lock(reg);
    gan_config live = r->cfg;
    reg_unlock(reg);
    epoch_watch(reg, r, &live);
    g_snapshot *s = published_generator(r, &live, m->epoch);
    if (!s) {
        /* gand fell more than PUBLISHED_KEEP epochs behind the job: no grid or evaluation
         * of this epoch, but samples.png and generate show the newest G there is */
        int newest = newest_published(r);
        g_snapshot *latest = newest > m->epoch ? published_generator(r, &live, newest) : NULL;
        if (latest)
            snapshot_publish(reg, r, latest);
        log_debug("run %s: epoch %d's checkpoint is no longer published: no grid or "
                  "evaluation of it",
                  r->id, m->epoch);
        return;
    }
    const gan_epoch_plan plan = gan_epoch_plan_for(&live, m->epoch);
    if (plan.grid && epoch_grid(reg, r, s, &err) != 0)
        log_warning("run %s: sample grid of epoch %d: %s", r->id, m->epoch, err.message);
    if (plan.evaluate)
        epoch_queue_eval(reg, r, s, EVAL_EVALUATE_EVERY, &r->follow.eval_warned);
    else if (plan.watch)
        epoch_queue_eval(reg, r, s, EVAL_WATCH, &r->follow.eval_warned);
    snapshot_publish(reg, r, s);
    prune_published(r, m->epoch);
}

/*
 * The new complete lines of job/epochs.jsonl, each epoch past those recorded
 * taken. The job appends an epoch's record before it checkpoints (so that no
 * checkpoint is ever ahead of the records); while it runs, a record is taken
 * once that epoch's checkpoint is published, so that G is there too, or once
 * the job has checkpointed past it (`job_checkpoint`, from its state.json):
 * a daemon more than PUBLISHED_KEEP epochs behind finds that epoch's G gone,
 * and takes the record without it.
 */
static void take_epochs(gand_registry *reg, run *r, bool job_over, int job_checkpoint)
{
    char path[PATH_MAX];
    job_path(r, "epochs.jsonl", path, sizeof path);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return;
    }
    if (st.st_size < r->follow.offset) /* cut by a resumed job to its checkpoint */
        r->follow.offset = 0;
    size_t len = (size_t)(st.st_size - r->follow.offset);
    char *buf = len ? malloc(len + 1) : NULL;
    ssize_t got = buf ? pread(fd, buf, len, r->follow.offset) : 0;
    close(fd);
    if (got <= 0) {
        free(buf);
        return;
    }
    buf[got] = '\0';
    char *line = buf, *nl;
    while ((nl = strchr(line, '\n'))) {
        *nl = '\0';
        cJSON *o = cJSON_Parse(line);
        gan_epoch_metrics m;
        int ok = gan_epoch_metrics_from_cjson(o, &m);
        cJSON_Delete(o);
        reg_lock(reg);
        int have = run_epochs_locked(r);
        reg_unlock(reg);
        if (ok == 0 && m.epoch > have && !job_over && job_checkpoint < m.epoch &&
            !published(r, m.epoch)) {
            *nl = '\n';
            break; /* its checkpoint is being written: next time */
        }
        if (ok == 0 && m.epoch > have)
            take_epoch(reg, r, &m);
        line = nl + 1;
    }
    r->follow.offset += line - buf;
    free(buf);
}

/* How Slurm ended a job, in words for the run's reason. */
static void slurm_reason(const run *r, const slurm_job *j, const job_report *rep, char *buf,
                         size_t len)
{
    if (!j->known) {
        str_printf(buf, len,
                   "Slurm job %ld ended and is no longer known to Slurm, and it left no word "
                   "in %s/job/state.json: if it never started, the run directory may not be "
                   "on storage the node sees",
                   r->slurm_job_id, r->dir);
        return;
    }
    char extra[REASON_MAX] = "";
    if (rep->present && strcmp(rep->state, "requeue") == 0)
        str_printf(extra, sizeof extra,
                   "; it had checkpointed on SIGTERM at epoch %d, iteration %d, to be requeued "
                   "(exit status %d: slurm.conf's RequeueExit=%d requeues it)",
                   rep->epoch, rep->iteration, EXIT_REQUEUE, EXIT_REQUEUE);
    else if (!rep->present)
        str_printf(extra, sizeof extra,
                   "; gand train never reported from it (see %s/job/slurm-%ld.out)", r->dir,
                   r->slurm_job_id);
    str_printf(buf, len, "Slurm job %ld ended %s (reason %s, exit code %s) on %s%s",
               r->slurm_job_id, j->state, j->reason[0] ? j->reason : "none",
               j->exit_code[0] ? j->exit_code : "?", j->node[0] ? j->node : "no node", extra);
}

/* The job is over: the run takes the state it ended in, and the executor lets go. */
static void job_ended(gand_registry *reg, run *r, const slurm_job *j, const job_report *rep)
{
    reg_lock(reg);
    run_state now = r->state;
    bool cancelled = r->follow.cancelled;
    str_printf(r->slurm_state, sizeof r->slurm_state, "%s", j->known ? j->state : "ENDED");
    reg_unlock(reg);
    const char *said = rep->present ? rep->state : "";
    run_state to;
    char reason[REASON_MAX] = "";
    if (strcmp(said, "completed") == 0) {
        to = RUN_COMPLETED;
    } else if (strcmp(said, "failed") == 0) {
        to = RUN_FAILED;
        str_printf(reason, sizeof reason, "%s (Slurm job %ld on %s)",
                   rep->reason[0] ? rep->reason : "gand train failed", r->slurm_job_id,
                   rep->node[0] ? rep->node : j->node);
    } else if (strcmp(said, "stopped") == 0) {
        to = RUN_STOPPED;
    } else if (strcmp(said, "paused") == 0 || cancelled) {
        /* ended as asked; a run resumed meanwhile is submitted again */
        to = now == RUN_RUNNING || now == RUN_QUEUED ? RUN_QUEUED : now;
    } else {
        to = RUN_FAILED;
        slurm_reason(r, j, rep, reason, sizeof reason);
    }
    if (to == RUN_FAILED)
        log_err("run %s failed: %s", r->id, reason);
    else
        log_info("run %s: Slurm job %ld ended (%s); the run is %s", r->id, r->slurm_job_id,
                 said[0] ? said : j->state, state_names[to]);
    pthread_mutex_lock(&r->io);
    reg_lock(reg);
    bool event = r->state != to;
    if (rep->present && rep->checkpoint_epoch >= 0)
        r->checkpoint_epoch = rep->checkpoint_epoch;
    if (event) {
        r->state = to;
        str_printf(r->reason, sizeof r->reason, "%s", reason);
        if (state_is_final(to))
            r->finished_at = now_ms();
        if (to == RUN_QUEUED) {
            r->queued_at = now_ms();
            r->queue_seq = reg->next_queue_seq++;
        }
    }
    if (to == RUN_QUEUED)
        r->follow.look_up = false;
    release_locked(reg, r);
    pending_files p = prepare_files_locked(reg, r, event);
    reg_unlock(reg);
    store_files(reg, r, &p);
    pthread_mutex_unlock(&r->io);
}

static void follow(gand_registry *reg, run *r)
{
    reg_lock(reg);
    long id = r->slurm_job_id;
    run_state state = r->state;
    job_action want = state == RUN_PAUSED    ? ACTION_PAUSE
                      : state == RUN_STOPPED ? ACTION_STOP
                                             : ACTION_RUN;
    bool dirty = r->cfg_dirty || r->cfg_version != r->follow.sent_version;
    gan_config cfg = r->cfg;
    uint64_t version = r->cfg_version;
    r->cfg_dirty = false;
    bool was_running = strcmp(r->slurm_state, "RUNNING") == 0;
    reg_unlock(reg);

    /* what the user asked since the last look goes to the job first */
    if (dirty || want != r->follow.sent_action) {
        gan_error err = {{0}, {0}};
        if (write_control(reg, r, &cfg, version, want, &err) != 0) {
            log_err("run %s: cannot tell its Slurm job %ld: %s", r->id, id, err.message);
        } else {
            r->follow.sent_version = version;
            r->follow.sent_action = want;
            if (was_running)
                nudge(reg->slurm.command_timeout_s, id);
        }
    }

    slurm_job j;
    job_query(reg->slurm.command_timeout_s, id, &j);
    if (!j.answered) {
        if (!r->follow.slurm_down_logged)
            log_warning("run %s: %s; gand keeps following its job %ld", r->id, j.error, id);
        r->follow.slurm_down_logged = true;
        reg_lock(reg);
        str_printf(r->slurm_state, sizeof r->slurm_state, "UNKNOWN");
        reg_unlock(reg);
        job_report rep;
        job_report_read(r, id, &rep);
        take_epochs(reg, r, false, rep.present ? rep.checkpoint_epoch : -1);
        return;
    }
    if (r->follow.slurm_down_logged)
        log_notice("run %s: Slurm answers again about job %ld", r->id, id);
    r->follow.slurm_down_logged = false;

    /* a pause or stop of a job still waiting for resources: it is cancelled */
    if (j.known && want != ACTION_RUN && !r->follow.cancelled && strcmp(j.state, "PENDING") == 0) {
        char why[600];
        if (cancel_job(reg->slurm.command_timeout_s, id, why, sizeof why) == 0)
            r->follow.cancelled = true;
        else
            log_warning("run %s: %s", r->id, why);
    }

    job_report rep;
    job_report_read(r, id, &rep); /* after asking Slurm: a job that has ended has said all */
    bool over = !j.known || slurm_state_final(j.state);
    take_epochs(reg, r, over, rep.present ? rep.checkpoint_epoch : -1);

    if (over) {
        job_ended(reg, r, &j, &rep);
        return;
    }
    bool running = strcmp(j.state, "RUNNING") == 0;
    pthread_mutex_lock(&r->io);
    reg_lock(reg);
    bool changed = strcmp(r->slurm_state, j.state) != 0 || strcmp(r->node, j.node) != 0;
    str_printf(r->slurm_state, sizeof r->slurm_state, "%s", j.state);
    if (j.node[0])
        str_printf(r->node, sizeof r->node, "%s", j.node);
    bool event = false;
    if (running && r->state == RUN_QUEUED) {
        r->state = RUN_RUNNING;
        r->reason[0] = '\0';
        if (!r->started_at)
            r->started_at = now_ms();
        event = changed = true;
    }
    if (rep.present) {
        if (rep.device[0])
            str_printf(r->device, sizeof r->device, "%s on %s", rep.device, rep.node);
        if (rep.epoch == run_epochs_locked(r))
            r->iteration = rep.iteration;
        r->iterations_per_epoch = rep.iterations_per_epoch;
        if (rep.checkpoint_epoch > r->checkpoint_epoch)
            r->checkpoint_epoch = rep.checkpoint_epoch;
    }
    pending_files p = {0};
    if (changed)
        p = prepare_files_locked(reg, r, event);
    reg_unlock(reg);
    if (changed)
        store_files(reg, r, &p);
    pthread_mutex_unlock(&r->io);
    if (changed)
        log_info("run %s: Slurm job %ld is %s%s%s", r->id, id, j.state, j.node[0] ? " on " : "",
                 j.node);
    /* a job that has just started may have missed the nudge: control.json is reread anyway */
    if (running && !was_running && r->follow.sent_action != ACTION_RUN)
        nudge(reg->slurm.command_timeout_s, id);
}

/* ---- the shared-storage check ------------------------------------------------ */

/*
 * A small job that writes a file into the state directory from a node: until
 * it has, nobody knows whether the nodes see the daemon's state directory.
 */
typedef struct probe {
    long job_id; /* 0: none (not submitted or done) */
    char token[40];
    char path[PATH_MAX];
} probe;

static void probe_submit(gand_registry *reg, probe *p)
{
    str_printf(p->token, sizeof p->token, "%lld-%d", (long long)now_ms(), (int)getpid());
    char dir[PATH_MAX];
    str_printf(dir, sizeof dir, "%s/slurm-probe", reg->state_dir);
    gan_error err;
    if (make_dir(dir, &err) != 0) {
        log_err("slurm: %s", err.message);
        return;
    }
    str_printf(p->path, sizeof p->path, "%s/%s", dir, p->token);
    sb b = {0};
    sb_puts(&b, "#!/bin/sh\n# gand: can a node write the state directory?\nhostname > ");
    sh_quote(&b, p->path);
    sb_puts(&b, "\n");
    char *text = sb_take(&b);
    char script[PATH_MAX + 8];
    str_printf(script, sizeof script, "%s/probe.sh", dir);
    if (!text || gan_write_file_atomic(script, text, strlen(text), &err) != 0) {
        free(text);
        log_err("slurm: cannot write %s", script);
        return;
    }
    free(text);
    char *argv[40];
    int n = 0;
    char part[160], acct[160];
    argv[n++] = "sbatch";
    argv[n++] = "--parsable";
    argv[n++] = "--job-name=gand-probe";
    argv[n++] = "--output=/dev/null";
    argv[n++] = "--time=5";
    if (reg->slurm.partition[0]) {
        str_printf(part, sizeof part, "--partition=%s", reg->slurm.partition);
        argv[n++] = part;
    }
    if (reg->slurm.account[0]) {
        str_printf(acct, sizeof acct, "--account=%s", reg->slurm.account);
        argv[n++] = acct;
    }
    argv[n++] = script;
    argv[n] = NULL;
    cmd_result *res = malloc(sizeof *res);
    if (!res)
        return;
    if (run_cmd(reg->slurm.command_timeout_s, argv, res) == 0 && atol(res->out) > 0) {
        p->job_id = atol(res->out);
        log_info("slurm: job %ld checks that the nodes can write %s", p->job_id, reg->state_dir);
    } else {
        char why[700];
        cmd_failure(reg->slurm.command_timeout_s, "sbatch", res, why, sizeof why);
        log_err("slurm: cannot submit the job that checks the state directory: %s", why);
    }
    free(res);
}

static void probe_check(gand_registry *reg, probe *p)
{
    if (!p->job_id)
        return;
    slurm_job j;
    job_query(reg->slurm.command_timeout_s, p->job_id, &j);
    if (!j.answered || (j.known && !slurm_state_final(j.state)))
        return;
    char *who = read_text(p->path, 4096, NULL);
    if (who) {
        who[strcspn(who, "\n")] = '\0';
        log_info("slurm: job %ld on %s wrote the state directory %s: the nodes share it", p->job_id,
                 who, reg->state_dir);
        unlink(p->path);
    } else {
        log_err("slurm: job %ld (%s%s) could not write %s: the state directory must be on "
                "storage that every node sees at the same path, or the runs' jobs fail",
                p->job_id, j.known ? j.state : "ended", j.known ? "" : ", no longer known",
                reg->state_dir);
    }
    free(who);
    p->job_id = 0;
}

/* ---- the executor's thread ------------------------------------------------- */

static void *slurm_main(void *arg)
{
    gand_registry *reg = arg;
    char why[512];
    /* evaluations and renders of the jobs' generators run here, on the daemon's device */
    gk_backend *be = executor_backend_open(reg, why, sizeof why);
    if (!be)
        return NULL;
    reg_lock(reg);
    /* runs whose job may still be in Slurm are followed again; none is submitted twice */
    int adopted = 0;
    for (int i = 0; i < reg->nruns; i++) {
        run *r = reg->runs[i];
        if (r->slurm_job_id > 0 && r->executor && strcmp(r->executor, "slurm") == 0 &&
            (r->state == RUN_RUNNING || r->state == RUN_PAUSED)) {
            r->active = true;
            r->follow.sent_version = r->cfg_version;
            r->follow.sent_action = ACTION_NONE; /* control.json is written again */
            adopted++;
        } else if (r->state == RUN_QUEUED) {
            /* its job may be waiting in Slurm, or a submission was cut short */
            r->follow.look_up = true;
        }
    }
    reg->worker_ready = true;
    pthread_cond_broadcast(&reg->start_cond);
    reg_unlock(reg);
    log_info("slurm: runs are submitted with sbatch%s%s%s%s; evaluations use %s (%s)",
             reg->slurm.partition[0] ? " to partition " : "", reg->slurm.partition,
             reg->slurm.gres[0] ? ", --gres=" : ", no gres", reg->slurm.gres, why, be->device);
    if (adopted)
        log_info("slurm: following %d runs whose jobs were submitted before gand restarted",
                 adopted);
    probe pr = {0};
    probe_submit(reg, &pr);

    reg_lock(reg);
    while (!reg->shutdown) {
        atomic_fetch_add(&reg->heartbeat, 1);
        /* the runs to look at, each with a reference */
        int n = 0;
        run **due = reg->nruns ? malloc((size_t)reg->nruns * sizeof *due) : NULL;
        int64_t now = mono_ms();
        for (int i = 0; due && i < reg->nruns; i++) {
            run *r = reg->runs[i];
            if (r->active || (r->state == RUN_QUEUED && now >= r->follow.next_submit_ms)) {
                r->refs++;
                due[n++] = r;
            }
        }
        reg_unlock(reg);
        for (int i = 0; i < n; i++) {
            run *r = due[i];
            atomic_fetch_add(&reg->heartbeat, 1); /* each Slurm command is bounded */
            reg_lock(reg);
            bool active = r->active, queued = r->state == RUN_QUEUED && !r->removed,
                 stop = reg->shutdown;
            if (queued && !active)
                r->active = true; /* held while sbatch runs: a Pause now cancels the job */
            reg_unlock(reg);
            if (!stop && active)
                follow(reg, r);
            else if (!stop && queued && !submit(reg, r)) {
                reg_lock(reg);
                r->active = false;
                reg_unlock(reg);
            }
            run_put(reg, r);
        }
        free(due);
        probe_check(reg, &pr);
        reg_lock(reg);
        bool evaluate = reg->evals_queued > 0 && !reg->shutdown;
        reg_unlock(reg);
        if (evaluate)
            worker_evaluate_next(reg); /* one per round: the jobs are followed in between */
        reg_lock(reg);
        if (reg->shutdown || reg->evals_queued > 0)
            continue;
        struct timespec dl = deadline_after_ms(reg->slurm.poll_ms);
        pthread_cond_timedwait(&reg->work_cond, &reg->lock, &dl);
    }
    reg->worker_exited = true;
    reg_unlock(reg);
    executor_backend_close(reg);
    return NULL;
}

/* ---- the executor interface (executor.h) -------------------------------------- */

static int slurm_start(gand_registry *reg, gan_error *err)
{
    if (!reg->slurm.gand_bin[0]) {
        ssize_t n = readlink("/proc/self/exe", reg->slurm.gand_bin, sizeof reg->slurm.gand_bin - 1);
        if (n <= 0)
            return gan_fail(err, "executor", "cannot find the gand executable for the jobs: %s",
                            strerror(errno));
        reg->slurm.gand_bin[n] = '\0';
    }
    if (reg->slurm.poll_ms <= 0)
        reg->slurm.poll_ms = 1000;
    if (reg->slurm.command_timeout_s <= 0)
        reg->slurm.command_timeout_s = 30;
    if (reg->slurm.signal_s <= 0)
        reg->slurm.signal_s = 120;
    cmd_result *res = malloc(sizeof *res);
    if (!res)
        return gan_fail(err, "", "out of memory");
    char *version[] = {"sbatch", "--version", NULL};
    if (run_cmd(reg->slurm.command_timeout_s, version, res) != 0) {
        char why[700];
        cmd_failure(reg->slurm.command_timeout_s, "sbatch --version", res, why, sizeof why);
        free(res);
        return gan_fail(err, "executor",
                        "[executor] kind = slurm needs Slurm's client tools (Debian's "
                        "slurm-client): %s",
                        why);
    }
    log_info("slurm: %s; jobs run %s", res->out, reg->slurm.gand_bin);
    char *ping[] = {"scontrol", "ping", NULL};
    if (run_cmd(reg->slurm.command_timeout_s, ping, res) != 0 || !strstr(res->out, "UP")) {
        char why[700];
        cmd_failure(reg->slurm.command_timeout_s, "scontrol ping", res, why, sizeof why);
        log_err("slurm: the controller does not answer (%s); queued runs wait and are "
                "submitted once it does",
                why);
    }
    free(res);
    return executor_thread_start(reg, slurm_main, err);
}

static void slurm_wake_locked(gand_registry *reg)
{
    pthread_cond_broadcast(&reg->work_cond);
}

/* Shutdown: the jobs go on in Slurm; a restarted daemon follows them again. */
static void slurm_stop(gand_registry *reg)
{
    if (executor_thread_join(reg))
        log_info(
            "slurm: stopped following; the jobs go on in Slurm and gand follows them again when "
            "it starts");
}

const gand_executor_ops gand_executor_slurm = {
    .name = "slurm",
    .start = slurm_start,
    .wake_locked = slurm_wake_locked,
    .stop = slurm_stop,
};
