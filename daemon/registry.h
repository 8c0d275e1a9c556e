/*
 * daemon/registry.h — the run registry: every run the daemon knows, its
 * persistence under the state directory, and the one worker thread that owns
 * the backend and trains the active run.
 *
 * Threads: every function here may be called from any request thread; they
 * take the registry lock briefly and never wait on training (the worker
 * checks its mailbox between iterations and publishes host copies of what
 * requests read). Request threads never touch the backend.
 *
 * Returned strings and buffers are malloc'd and owned by the caller. Runs,
 * patch answers and data sets come back as views (run_view.h) that api/run_json.c
 * turns into the API's JSON (it documents those shapes). The JSON shapes below
 * are the run store's own (metrics.jsonl, evaluations.jsonl, events.jsonl), and
 * the HTTP API returns them as they are:
 *
 *   epoch  {"epoch","d_real","d_fake","d_loss","g_loss","d_x","d_g_z",
 *           "seconds","samples_per_sec","lr_d","lr_g","batch_size"}
 *   metrics {"run":id,"since":N,"epochs":[epoch...]}
 *   evaluation {"id" (1, 2, ... per run),"run","state":"queued"|"running"|"done"|"failed",
 *           "reason"(string|null),"trigger":"request"|"evaluate_every"|"watch_every",
 *           "samples","seed","result":{"parzen_ll","stderr","sigma" (null for a watch
 *           evaluation),"metrics" ({"fid","precision","recall","modes","kl",
 *           "mean_top_prob","histogram"}|null),"samples","epoch","split":{"validation":
 *           [a,b],"test":[c,d]},"data":"NAME/FILE","validation_data":"NAME/FILE",
 *           "seconds"}|null,
 *           "created_at","started_at","finished_at"}
 *   evaluations {"run":id,"evaluations":[evaluation...]} (oldest first)
 *
 * Events (SSE): each run has a sequence of events numbered from 1, kept in
 * memory for the process's life and rebuilt on start-up from metrics.jsonl
 * and events.jsonl: "epoch" (data = epoch record), "state" (data =
 * {"state","reason","epoch","at"}), "config" (data = {"changed":{...},
 * "applies":{...},"at"}), "evaluation" (data = evaluation, at each of its
 * state changes: queued, running, done | failed).
 *
 * Evaluations (the paper's Parzen-window estimate) use the backend, so they
 * run on the worker thread: a request queues one and returns; the worker
 * serves the queue between two training iterations, or when idle, with the
 * run's latest published G (loaded from its checkpoint when the run is not
 * in memory). runs/<id>/evaluations.jsonl keeps every evaluation (one line
 * per state change, appended and fsynced; the last line of an id wins); one
 * that was queued or running when the daemon stopped is queued again.
 */
#ifndef GAND_DAEMON_REGISTRY_H
#define GAND_DAEMON_REGISTRY_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/run_view.h"
#include "gan/error.h"
#include "gan/sample_metrics.h"
#include "gan/trainer.h"
#include "kernels/backend.h"

typedef struct gand_registry gand_registry;

typedef enum reg_status {
    REG_OK = 0,
    REG_INVALID,   /* bad input: 400/422 (err says which field) */
    REG_NOT_FOUND, /* unknown run or epoch: 404 */
    REG_CONFLICT,  /* transition not allowed in this state: 409 */
    REG_LIMIT,     /* a configured limit was hit: 429/507 (err says which) */
    REG_INTERNAL,  /* I/O or device failure: 500 (err says what) */
    REG_STORAGE,   /* a change could not be written for want of space: 507 (err says what) */
} reg_status;

typedef struct gand_dataset_entry {
    char name[64];
    char path[1024]; /* IDX3 training images */
    /*
     * The last `holdout` images of path are never trained on (≤ 0: none).
     * With a test file they choose σ and the whole test file is scored; without
     * one, their first half (rounded down) chooses σ and the rest is scored.
     */
    int holdout;
    /*
     * A separate file of held-out images ("" = none), e.g. MNIST's t10k file.
     * With holdout 0 its first half (rounded down) chooses σ and the rest is
     * scored (gan_split_make).
     */
    char test_path[1024];
    char classifier_path[1024]; /* the digit classifier of its evaluations ("" = none) */
    /* labels (IDX1) of the training file and of the test file ("" = none): with them
     * the classifier's accuracy on the scored images is measured and reported */
    char labels_path[1024], test_labels_path[1024];
} gand_dataset_entry;

/* [executor] kind = slurm: how runs are submitted to Slurm (README "On a cluster"). */
typedef struct gand_slurm_options {
    char partition[128];     /* sbatch --partition ("" = the cluster's default) */
    char gres[128];          /* --gres ("gpu:1" by default; "" = none, for CPU nodes) */
    char time_limit[32];     /* --time ("" = the partition's default) */
    char account[128];       /* --account ("" = the user's default) */
    char sbatch_args[1024];  /* more sbatch arguments, separated by spaces */
    char gand_bin[PATH_MAX]; /* the gand a job runs ("" = the daemon's own executable) */
    int poll_ms;             /* how often a job's files and Slurm are looked at */
    int signal_s;            /* --signal=B:TERM@signal_s: time to checkpoint before the limit */
    int command_timeout_s;   /* an sbatch, scontrol or scancel that takes longer has failed */
} gand_slurm_options;

typedef struct registry_options {
    const char *state_dir; /* runs/ lives under it; created if missing */
    const char *device;    /* "auto" | "cpu" | "cuda": opened by the worker */
    const gand_dataset_entry *datasets;
    int dataset_count;
    int max_runs;                    /* runs kept (0 = unlimited) */
    int max_sample_n;                /* largest n of samples.png (≤ 1024) */
    const char *executor;            /* "local" (NULL too) or "slurm" */
    const gand_slurm_options *slurm; /* with "slurm" */
} registry_options;

/* Load every run under state_dir/runs; open the backend. Does not start training. */
gand_registry *registry_open(const registry_options *opt, gan_error *err);
/* Start the worker thread (queued and interrupted runs start training). */
int registry_start(gand_registry *r, gan_error *err);
/*
 * Stop: the active run checkpoints at its next iteration boundary and stays
 * "running" on disk, so the next start resumes it; then the worker exits.
 */
void registry_shutdown(gand_registry *r);
void registry_close(gand_registry *r);

/* Backend in use: name ("cpu"/"cuda"), device description, and why it was picked. */
void registry_backend_info(gand_registry *r, char *name, size_t nlen, char *device, size_t dlen,
                           char *why, size_t wlen);
/*
 * Worker heartbeat: increases while the worker is alive and not stuck (for the
 * watchdog). An evaluation is one long call on the worker; while one runs, each
 * call of this function advances the heartbeat itself, for up to 10 minutes.
 */
uint64_t registry_heartbeat(gand_registry *r);
/* One-line status for systemd STATUS= ("training run X epoch 3/500", "idle, 2 runs"). */
void registry_status_line(gand_registry *r, char *buf, size_t len);

/*
 * The functions that answer with runs fill views (run_view.h) copied out under
 * the lock; api/run_json.c formats them. Each view is freed by the caller.
 */
reg_status registry_create_run(gand_registry *r, const char *body, size_t len, gand_run_view *run,
                               char *id_out, size_t id_len, gan_error *err);
/* Every run, oldest first: *runs (n of them) to free with gand_run_views_free. */
reg_status registry_list_runs(gand_registry *r, gand_run_view **runs, int *n);
reg_status registry_get_run(gand_registry *r, const char *id, gand_run_view *run);
reg_status registry_patch_run(gand_registry *r, const char *id, const char *body, size_t len,
                              gand_patch_view *answer, gan_error *err);
/* action: "pause" | "resume" | "stop"; answer = the run after it */
reg_status registry_control(gand_registry *r, const char *id, const char *action,
                            gand_run_view *run, gan_error *err);
/* Only a run that is not queued, running or paused may be deleted. */
reg_status registry_delete_run(gand_registry *r, const char *id, gan_error *err);
reg_status registry_metrics(gand_registry *r, const char *id, int since, char **json);

/*
 * Events with sequence number > after, formatted as SSE text ("id: N\nevent:
 * K\ndata: {...}\n\n" each). Waits up to timeout_ms for at least one when
 * there is none (condition variable, no polling). *text = NULL when none
 * arrived; *last = the highest sequence included; *ended = the run reached a
 * final state and every event has been delivered.
 */
reg_status registry_events(gand_registry *r, const char *id, uint64_t after, int timeout_ms,
                           char **text, uint64_t *last, bool *ended);

/*
 * A function the registry calls whenever a run's event stream may have news:
 * an event was added, or the stream may have ended (the run let go of the
 * worker, or was deleted). Streams that do not block in registry_events (the
 * API suspends them) learn of it this way. It is called from any thread with
 * the registry's lock held, which is where the news is made (in many places):
 * so it must only note run_id and return — never call the registry, block, or
 * take a lock that is held anywhere while the registry is called. fn NULL:
 * none (the default).
 */
typedef void (*registry_event_hook)(void *ctx, const char *run_id);
void registry_set_event_hook(gand_registry *r, registry_event_hook fn, void *ctx);

/* samples.png from the latest published G snapshot, rendered on the CPU. */
reg_status registry_sample_png(gand_registry *r, const char *id, int n, uint64_t seed, int scale,
                               uint8_t **png, size_t *len, gan_error *err);
/* Path of the fixed-noise grid saved at an epoch (404 when none was saved). */
reg_status registry_epoch_png_path(gand_registry *r, const char *id, int epoch, char *path,
                                   size_t len);
/* Path of the run's latest checkpoint, or with best its best (404 before there is one). */
reg_status registry_checkpoint_path(gand_registry *r, const char *id, bool best, char *path,
                                    size_t len);

/* The configured data sets (*sets, n of them, to free()); never a server path. */
reg_status registry_datasets(gand_registry *r, gand_dataset_view **sets, int *n);

/* ---- what a run learned ----------------------------------------------------- */

enum {
    REG_EVAL_SAMPLES_MAX = 100000, /* samples of one evaluation, and of one export */
    REG_EVAL_QUEUE_MAX = 100,      /* evaluations waiting, all runs together */
    REG_GENERATE_MAX = 1024,       /* latent vectors of one generate request */
    REG_INTERPOLATE_MAX = 64,      /* steps of one interpolation */
};

/*
 * Queue a Parzen evaluation of the run's current G (samples 1..100000,
 * noise seed): answer = the evaluation (state "queued"), *eval_id its id.
 * REG_CONFLICT when the run has no G yet or its data set holds out no
 * images; REG_LIMIT when REG_EVAL_QUEUE_MAX are already waiting.
 */
reg_status registry_evaluate(gand_registry *r, const char *id, int samples, uint64_t seed,
                             char **eval_json, int *eval_id, gan_error *err);
reg_status registry_evaluations(gand_registry *r, const char *id, char **json);
/* One evaluation; REG_NOT_FOUND (err says which) for an unknown run or number. */
reg_status registry_evaluation(gand_registry *r, const char *id, int n, char **json,
                               gan_error *err);

/*
 * n images (1..100000) from the run's current G as gzip IDX3 (u8, pixel =
 * round(255·x)), on the CPU. The noise is the evaluation's (seed,
 * GK_PURPOSE_EVAL): the same images an evaluation with this seed and
 * samples = n scores, when G has not changed in between.
 */
reg_status registry_export_samples(gand_registry *r, const char *id, int n, uint64_t seed,
                                   uint8_t **gz, size_t *len, gan_error *err);

/* The run's latent_dim (to check latent vectors before registry_generate). */
reg_status registry_latent_dim(gand_registry *r, const char *id, int *dim);

/*
 * G applied to n latent vectors z (n × dim floats, dim = the run's
 * latent_dim; 1 ≤ n ≤ REG_GENERATE_MAX) on the CPU: a PNG grid at scale, or
 * with as_json the text {"epoch":E,"images":[[784 numbers in [0,1]],...]}.
 * REG_CONFLICT when the run has no G yet.
 */
reg_status registry_generate(gand_registry *r, const char *id, const float *z, int n, int dim,
                             int scale, bool as_json, uint8_t **out, size_t *len, gan_error *err);

/*
 * A one-row PNG strip of `steps` images (2..REG_INTERPOLATE_MAX): G applied
 * to (1 − t)·z_from + t·z_to, t = i / (steps − 1), where z_s is the first
 * vector gan_fill_noise makes from seed s with GK_PURPOSE_REQUEST (the first
 * digit of samples.png?seed=s).
 */
reg_status registry_interpolate(gand_registry *r, const char *id, uint64_t from, uint64_t to,
                                int steps, int scale, uint8_t **png, size_t *len, gan_error *err);

/*
 * What /metrics reports about the runs, copied out under the lock (api/metrics.c
 * formats it): per run its state, epochs, the last epoch's record and the latest
 * evaluation that is done; runs per state; evaluations waiting.
 */
typedef struct gand_run_stats {
    char id[48];
    const char *state; /* a static name */
    int epochs;
    bool has_metrics, has_evaluation;
    gan_epoch_metrics last;          /* when has_metrics */
    double parzen_ll, parzen_stderr; /* when has_evaluation: the latest Parzen estimate */
    bool has_sample_metrics;
    gan_sample_metrics sample_metrics; /* when has_sample_metrics: the latest classifier metrics */
    int alerts[GAN_WATCH_KINDS];       /* watch rules that fired, by kind */
} gand_run_stats;

typedef struct gand_registry_stats {
    int nstates;
    const char *state_names[8];
    int runs_by_state[8];
    gand_run_stats *runs; /* sorted by id */
    int nruns;
    int evaluations_queued;
} gand_registry_stats;

reg_status registry_stats(gand_registry *r, gand_registry_stats *out);
void registry_stats_free(gand_registry_stats *s);

#endif
