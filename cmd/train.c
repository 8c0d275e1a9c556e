/*
 * cmd/train.c — `gand train`: one run in the foreground.
 *
 * Prints one JSON object per epoch on stdout, writes per-epoch fixed-noise
 * grids and a checkpoint into the output directory, and resumes from that
 * checkpoint when the directory already holds one. Ctrl-C (SIGINT) or
 * SIGTERM stops at the next iteration boundary after writing a checkpoint.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cmd/commands.h"
#include "gan/epoch.h"
#include "daemon/paths.h"
#include "gan/checkpoint.h"
#include "gan/config.h"
#include "gan/evaluate.h"
#include "gan/fsutil.h"
#include "gan/idx.h"
#include "gan/trainer.h"
#include "kernels/backend.h"
#include "kernels/cpu/blas_kernels.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: gand train [--config FILE] [--dataset NAME | --data IDX_PATH]\n"
               "                  [--test IDX_PATH] [--holdout N] [--out DIR] [--epochs N]\n"
               "                  [--device auto|cpu|cuda] [--classifier FILE]\n"
               "\n"
               "Trains one GAN in the foreground. FILE is a run config in JSON (fields as in\n"
               "POST /api/v1/runs; absent fields take preset 'seed'). NAME (default: the\n"
               "config's \"dataset\") is a bundled data set: mnist (MNIST's 60,000 training\n"
               "digits, the last 10,000 held out, its 10,000 test digits scored), mnist-60k\n"
               "(all 60,000 trained on) or mnist-10k. IDX_PATH is an IDX3 image file, plain or\n"
               "gzip, with --test a separate file of held-out images. The last N images\n"
               "(--holdout; the bundled set's, else 0) are never trained on. With a test file\n"
               "sigma is chosen on them and the test file is scored; without one, on their\n"
               "first half, and the rest is scored; with a test file and N = 0, on the test\n"
               "file's first half. With evaluate_every in the config, that Parzen estimate is\n"
               "added to those epochs' records. The digit classifier FILE (default: the\n"
               "bundled data set's) adds fid, precision, recall, modes, kl, mean_top_prob and\n"
               "histogram to them, and to the records of every watch_every epochs.\n"
               "The config's watch rules print an alert on stderr when they fire; a rule whose\n"
               "action is pause ends the run (checkpoint written) with exit status 3.\n"
               "DIR receives checkpoint.safetensors, metrics.jsonl and\n"
               "samples/epoch-NNNNNN.png (default ./gand-train); a DIR that holds a checkpoint\n"
               "resumes from it. SIGINT or SIGTERM checkpoints and exits with status 130.\n"
               "\n"
               "       gand train --job RUN_DIR\n"
               "\n"
               "Trains a run of gand serve's Slurm executor inside its Slurm job, on the\n"
               "directory the daemon made for it (README, On a cluster). SIGTERM checkpoints\n"
               "and exits with status 75, which slurm.conf's RequeueExit=75 requeues.\n");
}

/*
 * The watch rules on the newest epoch record: each alert on stderr. -1 when a
 * rule whose action is pause fired (the run ends, exit status 3).
 */
static int watch_epoch(const gan_watch *w, const gan_epoch_metrics *history, int n)
{
    gan_alert fired[GAN_WATCH_MAX];
    int k = gan_watch_after_epoch(w, history, n, fired, GAN_WATCH_MAX);
    int rc = 0;
    for (int i = 0; i < k; i++) {
        fprintf(stderr, "gand train: alert (watch rule %d, %s): %s\n", fired[i].rule,
                gan_watch_kind_name(fired[i].kind), fired[i].message);
        if (fired[i].action == GAN_WATCH_PAUSE)
            rc = -1;
    }
    return rc;
}

/* Room for one more element of *p (n in use, *cap allocated, elem bytes each); false on OOM. */
static bool room_for_one(void **p, int n, int *cap, size_t elem)
{
    if (n < *cap)
        return true;
    int c = *cap ? 2 * *cap : 64;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

/* The same for an evaluation's classifier metrics, kept in *pts for the rules after it. */
static int watch_point(const gan_watch *w, gan_watch_point **pts, int *n, int *cap,
                       gan_watch_point pt)
{
    if (!room_for_one((void **)pts, *n, cap, sizeof **pts))
        return 0; /* the rules miss one point; the run goes on */
    (*pts)[(*n)++] = pt;
    gan_alert fired[GAN_WATCH_MAX];
    int k = gan_watch_after_evaluation(w, *pts, *n, fired, GAN_WATCH_MAX);
    int rc = 0;
    for (int i = 0; i < k; i++) {
        fprintf(stderr, "gand train: alert (watch rule %d, %s): %s\n", fired[i].rule,
                gan_watch_kind_name(fired[i].kind), fired[i].message);
        if (fired[i].action == GAN_WATCH_PAUSE)
            rc = -1;
    }
    return rc;
}

/* The epoch's fixed-noise grid, samples/epoch-NNNNNN.png. */
static int render_grid(gan_trainer *t, const char *dir, int epoch, gan_error *err)
{
    const gan_config *cfg = gan_trainer_config(t);
    float *g = malloc(gan_generator_param_count(cfg) * sizeof(float));
    if (!g)
        return gan_fail(err, "", "out of memory rendering samples");
    int rc = gan_trainer_download_sampler(t, g, err);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/samples/epoch-%06d.png", dir, epoch);
    if (rc == 0)
        rc = gan_epoch_grid_write(cfg, g, path, err);
    free(g);
    return rc;
}

/*
 * Evaluate G now on the held-out split (the Parzen estimate when `parzen`,
 * the classifier's metrics when there is a classifier), as JSON members for
 * the epoch record; the classifier's point for the watch rules into *pt.
 */
static int evaluate(gan_trainer *t, gk_backend *be, const gand_cli_data *data, bool parzen,
                    int samples, char *buf, size_t len, gan_watch_point *pt, bool *has_pt,
                    gan_error *err)
{
    const gan_config *cfg = gan_trainer_config(t);
    float *g = malloc(gan_generator_param_count(cfg) * sizeof(float));
    if (!g)
        return gan_fail(err, "", "out of memory");
    gan_evaluation r;
    int rc = gan_trainer_download_sampler(t, g, err);
    if (rc == 0)
        rc = gan_evaluate_generator(be, cfg, g, samples, GAN_EVAL_AUTO_SEED, &data->train,
                                    data->has_test ? &data->test : NULL, &data->split, parzen,
                                    data->has_classifier ? &data->judge : NULL, &r, err);
    free(g);
    if (rc != 0)
        return rc;
    size_t at = 0;
    buf[0] = '\0';
    if (r.has_parzen)
        at = (size_t)snprintf(buf, len,
                              "\"parzen_ll\":%.3f,\"parzen_stderr\":%.3f,"
                              "\"parzen_sigma\":%.4f",
                              r.parzen.mean_ll, r.parzen.stderr_ll, r.parzen.sigma);
    *has_pt = r.has_metrics;
    if (r.has_metrics && at < len) {
        *pt = (gan_watch_point){gan_trainer_epoch(t), r.metrics.modes, r.metrics.fid};
        cJSON *o = cJSON_CreateObject();
        char *text = o && gan_sample_metrics_add_cjson(&r.metrics, o) == 0
                         ? cJSON_PrintUnformatted(o)
                         : NULL;
        cJSON_Delete(o);
        if (!text)
            return gan_fail(err, "", "out of memory");
        size_t n = strlen(text); /* {"fid":…}: its members without the braces */
        snprintf(buf + at, len - at, "%s%.*s", at ? "," : "", (int)(n - 2), text + 1);
        cJSON_free(text);
    }
    return 0;
}

/* Cut metrics.jsonl to the lines of epochs ≤ keep (after a resume). */
/* The records of metrics.jsonl (after truncate_metrics): the history the watch rules see. */
static int read_history(const char *path, gan_epoch_metrics **out, int *n, int *cap,
                        gan_watch_point **pts, int *npts, int *pts_cap)
{
    uint8_t *data;
    size_t len;
    if (gan_read_file(path, &data, &len, (size_t)1 << 30, NULL) != 0)
        return 0; /* no history: the rules start afresh */
    char *text = realloc(data, len + 1);
    if (!text) {
        free(data);
        return -1;
    }
    text[len] = '\0';
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(l);
        gan_epoch_metrics m;
        int ok = gan_epoch_metrics_from_cjson(o, &m);
        const cJSON *fid = cJSON_GetObjectItemCaseSensitive(o, "fid");
        const cJSON *modes = cJSON_GetObjectItemCaseSensitive(o, "modes");
        gan_watch_point pt = {m.epoch, cJSON_IsNumber(modes) ? modes->valueint : 0,
                              cJSON_IsNumber(fid) ? fid->valuedouble : 0};
        bool judged = cJSON_IsNumber(fid) && cJSON_IsNumber(modes);
        cJSON_Delete(o);
        if (ok != 0)
            continue;
        if ((judged && !room_for_one((void **)pts, *npts, pts_cap, sizeof **pts)) ||
            !room_for_one((void **)out, *n, cap, sizeof **out)) {
            free(text);
            return -1;
        }
        if (judged)
            (*pts)[(*npts)++] = pt;
        (*out)[(*n)++] = m;
    }
    free(text);
    return 0;
}

static void truncate_metrics(const char *path, int keep)
{
    uint8_t *data;
    size_t len;
    if (gan_read_file(path, &data, &len, (size_t)1 << 30, NULL) != 0)
        return;
    size_t cut = 0;
    int lines = 0;
    for (size_t i = 0; i < len && lines < keep; i++)
        if (data[i] == '\n') {
            lines++;
            cut = i + 1;
        }
    if (cut < len)
        gan_write_file_atomic(path, data, cut, NULL);
    free(data);
}

int gand_cmd_train(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"data", required_argument, NULL, 'd'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"epochs", required_argument, NULL, 'e'},
                                         {"device", required_argument, NULL, 'D'},
                                         {"holdout", required_argument, NULL, 'H'},
                                         {"dataset", required_argument, NULL, 'n'},
                                         {"test", required_argument, NULL, 't'},
                                         {"classifier", required_argument, NULL, 'C'},
                                         {"job", required_argument, NULL, 'J'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL, *data_path = NULL, *out_dir = "gand-train", *device = NULL;
    const char *dataset = NULL, *test_path = NULL, *classifier_path = NULL, *job_dir = NULL;
    int given = 0;
    long epochs = -1, holdout = -1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:d:o:e:D:h", opts, NULL)) != -1) {
        given += c != 'J';
        switch (c) {
        case 'J':
            job_dir = optarg;
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            data_path = optarg;
            break;
        case 'n':
            dataset = optarg;
            break;
        case 't':
            test_path = optarg;
            break;
        case 'C':
            classifier_path = optarg;
            break;
        case 'o':
            out_dir = optarg;
            break;
        case 'e':
            if (!gand_option_long("train", "--epochs", optarg, 1, 1000000, &epochs))
                return 2;
            break;
        case 'D':
            device = optarg;
            break;
        case 'H':
            if (!gand_option_long("train", "--holdout", optarg, 0, 100000000, &holdout))
                return 2;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "gand train: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (job_dir && given) {
        fprintf(stderr, "gand train: --job takes everything from the run directory's "
                        "job/control.json; give it alone\n");
        return 2;
    }
    if (job_dir)
        return gand_train_job(job_dir);

    gan_error err = {{0}, {0}};
    gan_config cfg;
    if (config_path) {
        uint8_t *json;
        size_t len;
        if (gan_read_file(config_path, &json, &len, 1 << 20, &err) != 0) {
            fprintf(stderr, "gand train: %s\n", err.message);
            return 2;
        }
        int rc = gan_config_from_json(&cfg, (const char *)json, len, &err);
        free(json);
        if (rc != 0) {
            fprintf(stderr, "gand train: %s: %s%s%s\n", config_path, err.field[0] ? err.field : "",
                    err.field[0] ? ": " : "", err.message);
            return 2;
        }
    } else {
        gan_config_preset(&cfg, "seed", NULL);
    }
    if (epochs > 0)
        cfg.epochs = (int)epochs;

    gand_cli_data data;
    if (dataset && !data_path)
        snprintf(cfg.dataset, sizeof cfg.dataset, "%s", dataset);
    /* --dataset, else --data, else the config's data set; both flags: cli_data says so */
    if (gand_cli_data_load("train",
                           dataset     ? dataset
                           : data_path ? NULL
                                       : cfg.dataset,
                           data_path, test_path, holdout, &data) != 0)
        return 2;
    gan_dataset train_ds = data.train;
    train_ds.count = data.split.train_count;
    char described[3 * PATH_MAX];
    gand_cli_data_describe(&data, described, sizeof described);
    fprintf(stderr, "gand train: %s\n", described);

    char path[PATH_MAX];
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gand train: cannot create %s: %s\n", out_dir, strerror(errno));
        gand_cli_data_free(&data);
        return 1;
    }
    snprintf(path, sizeof path, "%s/samples", out_dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gand train: cannot create %s: %s\n", path, strerror(errno));
        gand_cli_data_free(&data);
        return 1;
    }
    char ckpt[PATH_MAX], metrics[PATH_MAX];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out_dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out_dir);

    char why[512];
    if (!device) /* --device wins over the config's device */
        device = gan_device_name(cfg.device);
    gk_backend *be = gk_backend_open(device, why, sizeof why);
    if (!be) {
        fprintf(stderr, "gand train: %s\n", why);
        gand_cli_data_free(&data);
        return 2;
    }
    fprintf(stderr, "gand train: %s (%s)\n", why, be->device);
    const char *blas = gk_blas_fit_kernels(); /* what main's call did */
    if (blas[0])
        fprintf(stderr, "gand train: %s\n", blas);
    if (gand_cli_data_judge("train", &data,
                            dataset     ? dataset
                            : data_path ? NULL
                                        : cfg.dataset,
                            data_path, classifier_path, be) != 0) {
        gand_cli_data_free(&data);
        gk_backend_close(be);
        return 2;
    }
    if (data.has_classifier)
        fprintf(stderr, "gand train: evaluations look through the digit classifier %s\n",
                data.classifier_path);
    else if (cfg.watch_every > 0 && gan_split_evaluable(&data.split))
        fprintf(stderr,
                "gand train: no digit classifier (--classifier FILE): no watch evaluations, "
                "and no fid, precision, recall, modes or kl\n");

    bool resuming = access(ckpt, F_OK) == 0;
    if (resuming) {
        /* the checkpoint's model wins; --epochs and the config's mutable fields still apply */
        gan_config saved;
        if (gan_checkpoint_read_config(ckpt, &saved, &err) != 0) {
            fprintf(stderr, "gand train: cannot resume from %s: %s\n", ckpt, err.message);
            gand_cli_data_free(&data);
            gk_backend_close(be);
            return 1;
        }
        if (config_path)
            fprintf(stderr,
                    "gand train: resuming: the checkpoint's config is used, %s is "
                    "ignored (except that --epochs still applies)\n",
                    config_path);
        cfg = saved;
        if (epochs > 0)
            cfg.epochs = (int)epochs;
    }

    gan_trainer *t = gan_trainer_new(be, &cfg, &train_ds, &err);
    if (!t) {
        gand_cli_data_free(&data);
        fprintf(stderr, "gand train: %s\n", err.message);
        gk_backend_close(be);
        return 2;
    }
    if (resuming) {
        int want_epochs = cfg.epochs;
        if (gan_trainer_load(t, ckpt, &err) != 0) {
            fprintf(stderr, "gand train: cannot resume from %s: %s\n", ckpt, err.message);
            gan_trainer_free(t);
            gand_cli_data_free(&data);
            gk_backend_close(be);
            return 1;
        }
        gan_config now = *gan_trainer_config(t);
        now.epochs = want_epochs;
        gan_trainer_set_config(t, &now);
        truncate_metrics(metrics, gan_trainer_epoch(t));
        fprintf(stderr, "gand train: resumed from %s at epoch %d, iteration %d\n", ckpt,
                gan_trainer_epoch(t), gan_trainer_iteration(t));
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int status = 0;
    const gan_config *live = gan_trainer_config(t);
    gan_epoch_metrics *history = NULL; /* the run's epoch records, for the watch rules */
    int nhistory = 0, history_cap = 0;
    gan_watch_point *points = NULL; /* and its evaluations' classifier metrics */
    int npoints = 0, points_cap = 0;
    if (resuming && read_history(metrics, &history, &nhistory, &history_cap, &points, &npoints,
                                 &points_cap) != 0) {
        fprintf(stderr, "gand train: out of memory reading %s\n", metrics);
        status = 1;
    }
    while (status == 0 && gan_trainer_epoch(t) < live->epochs) {
        if (stop_requested) {
            fprintf(stderr, "gand train: stopping at epoch %d, iteration %d\n",
                    gan_trainer_epoch(t), gan_trainer_iteration(t));
            status = 130;
            break;
        }
        if (!gan_trainer_epoch_complete(t)) {
            if (gan_trainer_step(t, &err) != 0) {
                fprintf(stderr, "gand train: %s\n", err.message);
                status = 1;
                break;
            }
            continue;
        }
        gan_epoch_metrics m;
        if (gan_trainer_finish_epoch(t, &m, &err) != 0) {
            fprintf(stderr, "gand train: run failed: %s\n", err.message);
            status = 1;
            break;
        }
        char line[1400];
        gan_epoch_metrics_json(&m, line, sizeof line);
        const gan_epoch_plan plan = gan_epoch_plan_for(live, m.epoch);
        bool judged = false;
        gan_watch_point pt;
        bool watch_now = plan.watch && data.has_classifier;
        if (plan.evaluate || watch_now) {
            char ev[1024];
            int n = plan.evaluate ? GAN_EVAL_AUTO_SAMPLES
                                  : gan_watch_samples(data.split.test_end - data.split.test_begin);
            if (evaluate(t, be, &data, plan.evaluate, n, ev, sizeof ev, &pt, &judged, &err) == 0) {
                size_t len = strlen(line);
                snprintf(line + len - 1, sizeof line - len + 1, ",%s}", ev);
            } else {
                fprintf(stderr, "gand train: evaluation: %s\n", err.message);
            }
        }
        puts(line);
        fflush(stdout);
        if (gan_append_line(metrics, line) != 0)
            fprintf(stderr, "gand train: cannot append to %s: %s\n", metrics, strerror(errno));
        if (plan.grid && render_grid(t, out_dir, m.epoch, &err) != 0)
            fprintf(stderr, "gand train: sample grid: %s\n", err.message);
        if (plan.checkpoint && gan_trainer_save(t, ckpt, &err) != 0) {
            fprintf(stderr, "gand train: checkpoint: %s\n", err.message);
            status = 1;
            break;
        }
        if (!room_for_one((void **)&history, nhistory, &history_cap, sizeof *history)) {
            fprintf(stderr, "gand train: out of memory keeping the epoch records\n");
            status = 1;
            break;
        }
        history[nhistory++] = m;
        int paused = watch_epoch(&live->watch, history, nhistory);
        if (judged && watch_point(&live->watch, &points, &npoints, &points_cap, pt) != 0)
            paused = -1;
        if (paused != 0) {
            status = 3;
            break;
        }
    }
    free(history);
    free(points);
    if (status != 1 && gan_trainer_save(t, ckpt, &err) != 0) {
        fprintf(stderr, "gand train: checkpoint: %s\n", err.message);
        status = 1;
    } else if (status == 130 || status == 3) {
        fprintf(stderr, "gand train: checkpoint written to %s; run the same command to resume\n",
                ckpt);
    }
    gan_trainer_free(t);
    gand_cli_data_free(&data);
    gk_backend_close(be);
    return status;
}
