/*
 * cmd/train_job.c — `gand train --job RUN_DIR`: one run of gand serve's
 * Slurm executor, trained inside a Slurm job on the directory the daemon made
 * for it (daemon/executor_slurm.c describes the files both sides write).
 *
 * The daemon's job/control.json says what to train (the config and the data
 * set's files) and what to do; the job reads it at start, on SIGUSR1 and
 * every CONTROL_POLL_S seconds, always at an iteration boundary, and applies
 * a new config version from the next iteration as the local worker does. It
 * reports in job/state.json, appends each epoch to job/epochs.jsonl and
 * checkpoints at the end of every epoch, publishing that checkpoint under
 * job/published/ for the daemon to take G from.
 *
 * Exit status: 0 when the run completed, or paused or stopped as asked;
 * 75 after SIGTERM (preemption, `scontrol requeue`, the --signal before the
 * time limit) with a checkpoint written, so that slurm.conf's RequeueExit=75
 * requeues it and the next job resumes from there bit for bit; 1 when
 * training failed (the reason is in state.json); 2 when the directory holds
 * no usable control.json.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cmd/commands.h"
#include "gan/config.h"
#include "gan/epoch.h"
#include "gan/fsutil.h"
#include "gan/trainer.h"
#include "kernels/backend.h"

enum {
    CONTROL_POLL_S = 2,
    REPORT_EVERY_MS = 1000,
    PUBLISHED_KEEP = 4, /* published checkpoints kept while the daemon has not taken them */
    EXIT_REQUEUE = 75,
};

static volatile sig_atomic_t term_requested, control_requested;

static void on_term(int sig)
{
    (void)sig;
    term_requested = 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    control_requested = 1;
}

typedef struct job {
    char dir[PATH_MAX / 2]; /* room for the names of its files under PATH_MAX */
    long job_id;
    int restarts;
    char node[256];
    char device[128];
    /* from control.json */
    char action[8];
    uint64_t version, applied;
    gan_config cfg;
    char data_path[PATH_MAX], test_path[PATH_MAX];
    long holdout;
    gan_trainer *t;
    int checkpoint_epoch;
} job;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void job_file(const job *j, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/job/%s", j->dir, name);
}

/* job/state.json: what the daemon reads. -1 when it cannot be written. */
static int report(const job *j, const char *state, const char *reason)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "job_id", (double)j->job_id);
    cJSON_AddNumberToObject(o, "restarts", j->restarts);
    cJSON_AddStringToObject(o, "node", j->node);
    cJSON_AddStringToObject(o, "device", j->device);
    cJSON_AddNumberToObject(o, "pid", (double)getpid());
    cJSON_AddStringToObject(o, "state", state);
    if (reason)
        cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddNumberToObject(o, "epoch", j->t ? gan_trainer_epoch(j->t) : 0);
    cJSON_AddNumberToObject(o, "iteration", j->t ? gan_trainer_iteration(j->t) : 0);
    cJSON_AddNumberToObject(o, "iterations_per_epoch",
                            j->t ? gan_trainer_iterations_per_epoch(j->t) : 0);
    cJSON_AddNumberToObject(o, "checkpoint_epoch", j->checkpoint_epoch);
    cJSON_AddNumberToObject(o, "config_version", (double)j->applied);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char path[PATH_MAX];
    job_file(j, "state.json", path, sizeof path);
    gan_error err;
    int rc = text ? gan_write_file_atomic(path, text, strlen(text), &err) : -1;
    if (rc != 0)
        fprintf(stderr, "gand train: cannot write %s: %s\n", path,
                text ? err.message : "out of memory");
    cJSON_free(text);
    return rc;
}

/* Read control.json: the action, and the config when its version is new. */
static int read_control(job *j, bool first, gan_error *err)
{
    char path[PATH_MAX];
    job_file(j, "control.json", path, sizeof path);
    uint8_t *text;
    size_t len;
    if (gan_read_file(path, &text, &len, 1 << 20, err) != 0)
        return -1;
    cJSON *o = cJSON_ParseWithLength((const char *)text, len);
    free(text);
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(o, "action");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(o, "config_version");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "config");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    int rc = -1;
    if (!cJSON_IsString(action) || !cJSON_IsNumber(version) || !cJSON_IsObject(cfg)) {
        gan_fail(err, "control", "%s lacks action, config_version or config", path);
        goto out;
    }
    uint64_t v = (uint64_t)version->valuedouble;
    if (first || v != j->version) {
        gan_config c;
        if (gan_config_from_cjson(&c, cfg, err) != 0)
            goto out;
        j->cfg = c;
        j->version = v;
    }
    if (first) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(data, "path");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(data, "test");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(data, "holdout");
        if (!cJSON_IsString(p)) {
            gan_fail(err, "control", "%s names no data set file (data.path)", path);
            goto out;
        }
        snprintf(j->data_path, sizeof j->data_path, "%s", p->valuestring);
        snprintf(j->test_path, sizeof j->test_path, "%s", cJSON_IsString(t) ? t->valuestring : "");
        j->holdout = cJSON_IsNumber(h) && h->valuedouble >= 0 ? (long)h->valuedouble : 0;
    }
    snprintf(j->action, sizeof j->action, "%s", action->valuestring);
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

/* job/epochs.jsonl cut to the records of epochs ≤ keep (a resumed job trains the rest again). */
static void cut_epochs(const job *j, int keep)
{
    char path[PATH_MAX];
    job_file(j, "epochs.jsonl", path, sizeof path);
    uint8_t *data;
    size_t len;
    if (gan_read_file(path, &data, &len, (size_t)1 << 30, NULL) != 0)
        return;
    size_t cut = 0;
    for (size_t i = 0, start = 0; i < len; i++) {
        if (data[i] != '\n')
            continue;
        data[i] = '\0';
        cJSON *o = cJSON_Parse((const char *)data + start);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "epoch");
        bool keep_line = cJSON_IsNumber(e) && e->valueint <= keep;
        cJSON_Delete(o);
        data[i] = '\n';
        if (!keep_line)
            break;
        cut = i + 1;
        start = i + 1;
    }
    if (cut < len)
        gan_write_file_atomic(path, data, cut, NULL);
    free(data);
}

/* Checkpoint where training stands; at an epoch's end also publish it for the daemon. */
static int checkpoint(job *j, bool publish, gan_error *err)
{
    char ckpt[PATH_MAX];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", j->dir);
    if (gan_trainer_save(j->t, ckpt, err) != 0)
        return -1;
    int e = gan_trainer_epoch(j->t);
    j->checkpoint_epoch = e;
    if (!publish)
        return 0;
    char name[64], path[PATH_MAX];
    snprintf(name, sizeof name, "published/epoch-%06d.safetensors", e);
    job_file(j, name, path, sizeof path);
    unlink(path);
    if (link(ckpt, path) != 0) /* the same file under a second name: no copy */
        fprintf(stderr, "gand train: cannot publish %s: %s\n", path, strerror(errno));
    snprintf(name, sizeof name, "published/epoch-%06d.safetensors", e - PUBLISHED_KEEP);
    job_file(j, name, path, sizeof path);
    unlink(path);
    return 0;
}

/* What ends the job: checkpoint (unless failed), say so, and give the exit status. */
static int finish(job *j, const char *state, const char *reason, int status)
{
    gan_error err = {{0}, {0}};
    if (j->t && strcmp(state, "failed") != 0 && checkpoint(j, false, &err) != 0) {
        char why[700];
        snprintf(why, sizeof why, "the checkpoint could not be written: %s", err.message);
        report(j, "failed", why);
        fprintf(stderr, "gand train: %s\n", why);
        return 1;
    }
    if (report(j, state, reason) != 0 && status == 0)
        status = 1;
    fprintf(stderr, "gand train: job %ld: %s%s%s at epoch %d, iteration %d\n", j->job_id, state,
            reason ? ": " : "", reason ? reason : "", j->t ? gan_trainer_epoch(j->t) : 0,
            j->t ? gan_trainer_iteration(j->t) : 0);
    return status;
}

static int fail(job *j, const char *what, const gan_error *err)
{
    char why[700];
    snprintf(why, sizeof why, "%s%s%s", what, what[0] ? ": " : "", err->message);
    return finish(j, "failed", why, 1);
}

int gand_train_job(const char *dir)
{
    /* signals first: the daemon may send SIGUSR1 as soon as the job runs */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);

    static job j; /* zeroed */
    if (strlen(dir) >= sizeof j.dir) {
        fprintf(stderr, "gand train: the run directory's path is longer than %zu bytes\n",
                sizeof j.dir - 1);
        return 2;
    }
    snprintf(j.dir, sizeof j.dir, "%s", dir);
    const char *id = getenv("SLURM_JOB_ID"), *rc = getenv("SLURM_RESTART_COUNT");
    const char *node = getenv("SLURMD_NODENAME");
    j.job_id = id ? atol(id) : 0;
    j.restarts = rc ? atoi(rc) : 0;
    if (node)
        snprintf(j.node, sizeof j.node, "%s", node);
    else if (gethostname(j.node, sizeof j.node) != 0)
        snprintf(j.node, sizeof j.node, "unknown");
    j.checkpoint_epoch = -1;
    fprintf(stderr, "gand train: job %ld (restart %d) on %s for %s\n", j.job_id, j.restarts, j.node,
            dir);

    gan_error err = {{0}, {0}};
    if (read_control(&j, true, &err) != 0) {
        fprintf(stderr, "gand train: %s\n", err.message);
        report(&j, "failed", err.message);
        return 2;
    }
    if (strcmp(j.action, "run") != 0) /* paused or stopped before it started */
        return finish(&j, strcmp(j.action, "stop") == 0 ? "stopped" : "paused", NULL, 0);
    if (report(&j, "running", NULL) != 0)
        return 1; /* the daemon sees a job that left no word: storage the node cannot write */

    gand_cli_data data;
    if (gand_cli_data_load("train", NULL, j.data_path, j.test_path[0] ? j.test_path : NULL,
                           j.holdout, &data) != 0) {
        gan_fail(&err, "data", "cannot load the data set file %s (see the job's output)",
                 j.data_path);
        return fail(&j, "", &err);
    }
    gan_dataset train = data.train;
    train.count = data.split.train_count;

    char why[512];
    gk_backend *be = gk_backend_open(gan_device_name(j.cfg.device), why, sizeof why);
    if (!be) {
        gand_cli_data_free(&data);
        gan_fail(&err, "device", "%s", why);
        return fail(&j, "", &err);
    }
    snprintf(j.device, sizeof j.device, "%s", be->device);
    fprintf(stderr, "gand train: %s (%s)\n", why, be->device);

    int status;
    j.t = gan_trainer_new(be, &j.cfg, &train, &err);
    if (!j.t) {
        status = fail(&j, "", &err);
        goto out;
    }
    char ckpt[PATH_MAX];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", j.dir);
    if (access(ckpt, F_OK) == 0) {
        if (gan_trainer_load(j.t, ckpt, &err) != 0) {
            status = fail(&j, "cannot resume from the checkpoint", &err);
            goto out;
        }
        gan_trainer_set_config(j.t, &j.cfg); /* patches made since the checkpoint win */
        j.checkpoint_epoch = gan_trainer_epoch(j.t);
        fprintf(stderr, "gand train: resumed from %s at epoch %d, iteration %d\n", ckpt,
                gan_trainer_epoch(j.t), gan_trainer_iteration(j.t));
    }
    cut_epochs(&j, gan_trainer_epoch(j.t));
    j.applied = j.version;
    report(&j, "running", NULL);

    char epochs_path[PATH_MAX];
    job_file(&j, "epochs.jsonl", epochs_path, sizeof epochs_path);
    int64_t next_control = mono_ms() + CONTROL_POLL_S * 1000;
    int64_t next_report = mono_ms() + REPORT_EVERY_MS;
    for (;;) {
        if (term_requested) {
            status =
                finish(&j, "requeue", "SIGTERM: checkpointed for Slurm to requeue", EXIT_REQUEUE);
            goto out;
        }
        int64_t now = mono_ms();
        if (control_requested || now >= next_control) {
            control_requested = 0;
            next_control = now + CONTROL_POLL_S * 1000;
            if (read_control(&j, false, &err) != 0) {
                fprintf(stderr, "gand train: %s (the last control stays)\n", err.message);
            } else if (j.version != j.applied) {
                gan_trainer_set_config(j.t, &j.cfg);
                j.applied = j.version;
                fprintf(stderr,
                        "gand train: config version %llu applied at epoch %d, "
                        "iteration %d\n",
                        (unsigned long long)j.applied, gan_trainer_epoch(j.t),
                        gan_trainer_iteration(j.t));
                report(&j, "running", NULL);
            }
            if (strcmp(j.action, "pause") == 0 || strcmp(j.action, "stop") == 0) {
                status = finish(&j, strcmp(j.action, "stop") == 0 ? "stopped" : "paused", NULL, 0);
                goto out;
            }
        }
        if (now >= next_report) {
            next_report = now + REPORT_EVERY_MS;
            report(&j, "running", NULL);
        }
        const gan_config *live = gan_trainer_config(j.t);
        if (gan_trainer_epoch(j.t) >= live->epochs) {
            status = finish(&j, "completed", NULL, 0);
            goto out;
        }
        if (!gan_trainer_epoch_complete(j.t)) {
            if (gan_trainer_step(j.t, &err) != 0) {
                status = fail(&j, "", &err);
                goto out;
            }
            continue;
        }
        gan_epoch_metrics m;
        if (gan_trainer_finish_epoch(j.t, &m, &err) != 0) {
            status = fail(&j, "", &err);
            goto out;
        }
        char line[1024];
        gan_epoch_metrics_json(&m, line, sizeof line);
        if (gan_append_line(epochs_path, line) != 0) {
            gan_fail(&err, "", "cannot append to %s: %s", epochs_path, strerror(errno));
            status = fail(&j, "", &err);
            goto out;
        }
        if (checkpoint(&j, true, &err) != 0) {
            status = fail(&j, "checkpoint", &err);
            goto out;
        }
        report(&j, "running", NULL);
    }
out:
    gan_trainer_free(j.t);
    j.t = NULL;
    gand_cli_data_free(&data);
    gk_backend_close(be);
    return status;
}
