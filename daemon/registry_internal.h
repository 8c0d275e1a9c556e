/*
 * daemon/registry_internal.h — what the files of the run registry share: the
 * run table's types, the registry itself, and the functions one file of the
 * registry calls in another (daemon/README.md maps which file owns what).
 * Nothing outside daemon/ includes it.
 */
#ifndef GAND_DAEMON_REGISTRY_INTERNAL_H
#define GAND_DAEMON_REGISTRY_INTERNAL_H

#include "daemon/executor.h"
#include "daemon/registry.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "daemon/log.h"
#include "gan/config.h"
#include "gan/evaluate.h"
#include "gan/fsutil.h"
#include "gan/idx.h"
#include "gan/checkpoint.h"
#include "gan/epoch.h"
#include "gan/png_grid.h"
#include "gan/safetensors.h"
#include "gan/trainer.h"
#include "gan/watch.h"

enum {
    RUN_ID_MAX = 40,        /* longest id accepted from a request */
    IDLE_WAKE_MS = 1000,    /* an idle worker bumps the heartbeat this often */
    EVENTS_PER_CALL = 1000, /* most events one registry_events call returns */
    SAMPLE_N_LIMIT = 1024,  /* upper bound of max_sample_n */
    REASON_MAX = 512,
    EVAL_GRACE_MS = 600000, /* an evaluation keeps the heartbeat going this long */
    DATA_NAME_MAX = 192,    /* "NAME/BASENAME" of a data set file */
};

typedef enum run_state {
    RUN_QUEUED,
    RUN_RUNNING,
    RUN_PAUSED,
    RUN_STOPPED,
    RUN_COMPLETED,
    RUN_FAILED,
    RUN_STATE_COUNT
} run_state;

extern const char *const state_names[RUN_STATE_COUNT];

static inline bool state_is_final(run_state s)
{
    return s == RUN_STOPPED || s == RUN_COMPLETED || s == RUN_FAILED;
}

/* An immutable host copy of G's weights; request threads render from it. */
typedef struct g_snapshot {
    atomic_int refs;
    gan_config cfg;
    int epoch;
    float *params; /* gan_generator_param_count(&cfg) floats */
} g_snapshot;

typedef enum eval_state {
    EVAL_QUEUED,
    EVAL_RUNNING,
    EVAL_DONE,
    EVAL_FAILED,
    EVAL_STATE_COUNT
} eval_state;

extern const char *const eval_state_names[EVAL_STATE_COUNT];

/* One Parzen evaluation of a run (registry.h "evaluation"). */
/* Why an evaluation was made: a request, evaluate_every, or watch_every (no Parzen estimate). */
typedef enum eval_trigger { EVAL_REQUEST, EVAL_EVALUATE_EVERY, EVAL_WATCH } eval_trigger;
extern const char *const eval_trigger_names[3];

typedef struct evaluation {
    int id; /* 1, 2, ... within the run */
    eval_state state;
    char reason[REASON_MAX]; /* "" = null */
    eval_trigger trigger;
    int samples;
    uint64_t seed;
    int64_t created_at, started_at, finished_at; /* ms, 0 = null */
    int64_t queue_seq;                           /* FIFO order among queued evaluations */
    struct g_snapshot *pinned;                   /* G to evaluate (evaluate_every), else NULL */
    /* the result, when done */
    bool has_parzen;            /* every trigger but watch */
    bool has_metrics;           /* the data set has a classifier */
    gan_sample_metrics metrics; /* when has_metrics */
    double parzen_ll, stderr_ll, sigma, seconds;
    int epoch;
    int valid_begin, valid_end, test_begin, test_end;
    char data[DATA_NAME_MAX];       /* "NAME/BASENAME" of the file the test range indexes */
    char valid_data[DATA_NAME_MAX]; /* … and of the validation range's */
} evaluation;

typedef struct run_event {
    uint64_t id;      /* increasing, never handed out twice (events.c) */
    const char *kind; /* "epoch" | "state" | "config" | "evaluation" | "alert" (static strings) */
    char *data;       /* one-line JSON object */
    int epoch;        /* the run's epochs done when it was published (an epoch event's own) */
} run_event;

/* What the Slurm executor keeps of a run it follows (executor_slurm.c; its thread only). */
typedef struct slurm_follow {
    long offset;              /* of job/epochs.jsonl read so far */
    uint64_t sent_version;    /* the config version control.json holds */
    int sent_action;          /* and its action (executor_slurm.c's job_action) */
    bool cancelled;           /* gand cancelled the job itself (a pause while it was pending) */
    bool look_up;             /* loaded at start-up: look for a job of its name before sbatch */
    bool eval_warned;         /* said once that evaluate_every cannot be served */
    int64_t next_submit_ms;   /* Slurm did not answer: not before this (monotonic) */
    int64_t last_progress_ms; /* when the job's state.json was last read */
    bool slurm_down_logged;   /* said that Slurm does not answer about this job */
} slurm_follow;

typedef struct run {
    int refs;     /* table + request threads + worker (under reg->lock) */
    bool removed; /* deleted: out of the table, freed at the last reference */
    pthread_mutex_t io;
    pthread_cond_t events_cond; /* this run's event waiters (with reg->lock): an event, let go */

    char id[RUN_ID_MAX + 1];
    char dir[PATH_MAX];
    gan_config cfg;
    run_state state;
    char reason[REASON_MAX];                                            /* "" = null */
    int64_t created_at, started_at, updated_at, finished_at, queued_at; /* ms, 0 = null */
    int64_t queue_seq;        /* FIFO order among queued runs */
    int iteration;            /* iterations done in the epoch in progress */
    int iterations_per_epoch; /* while active: the trainer's; else 0 = from the data set */
    int checkpoint_epoch;     /* -1: no checkpoint */
    char device[128];

    bool active;             /* the worker holds it */
    bool cfg_dirty;          /* mailbox: cfg changed since the worker read it */
    uint64_t cfg_version;    /* bumped by every change of cfg (PATCH checks it) */
    bool persist_disabled;   /* run.json was unreadable: never overwrite it */
    bool metrics_file_stale; /* metrics.jsonl lacks records memory has: rewrite it */

    gan_epoch_metrics *metrics; /* metrics[i].epoch == i + 1 */
    int nmetrics, metrics_cap;
    run_event *events; /* by id, ascending */
    int nevents, events_cap;
    uint64_t last_event_id; /* the id of the newest event (events.c) */
    /* files of the run found damaged at start-up, each kept aside as NAME.damaged */
    char damaged[4][24];
    int ndamaged;
    int *samples; /* epochs with a saved grid, ascending */
    int nsamples, samples_cap;
    g_snapshot *snap;
    evaluation *evals; /* by id: evals[i].id == i + 1 */
    int nevals, evals_cap;
    int evals_pending;  /* queued or running */
    int events_pending; /* state events copied out under the lock, not yet added (store_files) */
    /* the best checkpoint: of the automatic evaluation with the lowest Fréchet distance */
    int best_epoch; /* -1: none */
    double best_fid;
    int best_pending_epoch; /* an evaluation found a new best at this epoch: the worker saves it */
    double best_pending_fid;
    gan_alert *alerts; /* the watch rules that fired (alerts.c), oldest first */
    int nalerts, alerts_cap;

    /* where it trains: "local", "slurm", or "" before it first did */
    const char *executor;
    /* its Slurm job (executor_slurm.c): the one that runs it, or last ran it; 0 = none */
    long slurm_job_id;
    char slurm_state[24]; /* Slurm's word for that job when last asked ("" = not known) */
    char node[64];        /* the node the job runs on, or ran on ("" = not known) */
    slurm_follow follow;  /* the Slurm executor's own bookkeeping (its thread only) */
} run;

typedef struct dataset_info {
    gand_dataset_entry entry;
    bool ok;
    int images, rows, cols;
    char error[300];
    int holdout;      /* the last images of the training file, never trained on */
    int train_images; /* images − holdout: what runs train on */
    bool has_test;    /* the held-out images are a separate file */
    int test_images;  /* of that file (0 when it cannot be read) */
    bool eval_ok;     /* validation and test both hold images */
    gan_split split;  /* validation and test ranges, each of the training or the test file */
    char eval_error[400];
    /* "NAME/BASENAME" of the training file, the test file, and of the files that the
     * validation and the test range index */
    char train_name[DATA_NAME_MAX], test_name[DATA_NAME_MAX];
    char valid_name[DATA_NAME_MAX], eval_name[DATA_NAME_MAX];
    /* its digit classifier (loaded at start-up), "" / false when it has none */
    bool has_classifier;
    gan_classifier classifier;
    char classifier_name[DATA_NAME_MAX]; /* "NAME/BASENAME" */
    char classifier_error[600];          /* why there is none, for the start-up line */
    /* worker only: loaded on first use, kept */
    gan_dataset loaded, test_loaded;
    bool is_loaded, test_is_loaded;
    gan_eval_classifier judge; /* the classifier's reference of the test images */
    bool judge_ready;
} dataset_info;

struct gand_registry;
static inline void reg_lock(struct gand_registry *reg);
static inline void reg_unlock(struct gand_registry *reg);

struct gand_registry {
    pthread_mutex_t lock;
    const gand_executor_ops *exec; /* what trains the runs (executor.h) */
    pthread_cond_t work_cond;      /* the local worker: new work, resume, shutdown */
    pthread_cond_t start_cond;     /* registry_start: the worker opened its backend (or failed) */

    char state_dir[PATH_MAX];
    char runs_dir[PATH_MAX];
    char device_req[32];
    int max_runs, max_sample_n;
    dataset_info *datasets;
    int ndatasets;

    run **runs; /* sorted by id (= by creation) */
    int nruns, runs_cap;
    uint64_t last_id_value;
    int64_t next_queue_seq;

    pthread_t worker;
    bool worker_started, worker_ready, worker_failed, worker_exited;
    bool shutdown;
    char be_name[16], be_device[128], be_why[512];
    atomic_uint_least64_t heartbeat;
    atomic_int_least64_t eval_started_ms; /* monotonic start of the running evaluation, 0 = none */
    int evals_queued;                     /* queued evaluations, all runs */
    /* events that could not be recorded (out of memory): counted under the lock,
     * logged after it by events_after_lock */
    atomic_uint_least64_t events_lost, events_lost_logged;
    /* event ids (events.c): the highest reserved in STATE_DIR/event-ids (under the lock), and
     * whether to raise that after the lock (read there without it) */
    uint64_t event_ids_reserved;
    atomic_bool event_ids_low;
    pthread_mutex_t ids_io; /* writes of event-ids (events_after_lock) */
    bool event_ids_warned;  /* under ids_io */
    int64_t next_eval_seq;
    gand_slurm_options slurm;       /* the Slurm executor's settings */
    run *current;                   /* the run the worker holds, or NULL */
    gk_backend *be;                 /* the worker's, opened for `device_req` */
    gk_backend *be_alt;             /* the other backend, opened for the first run that names it */
    registry_event_hook event_hook; /* registry_set_event_hook (under lock) */
    void *event_hook_ctx;
};

/* A growable string; on allocation failure it remembers and sb_take returns NULL. */
typedef struct sb {
    char *p;
    size_t len, cap;
    bool oom;
} sb;

/* What run.json holds, copied out under the lock and formatted after (run_json.c). */
typedef struct run_record {
    char id[RUN_ID_MAX + 1];
    run_state state;
    char reason[REASON_MAX];
    gan_config cfg;
    int64_t created_at, started_at, updated_at, finished_at, queued_at;
    int epoch, checkpoint_epoch;
    char device[128];
    const char *executor; /* "local" | "slurm" | "" */
    long slurm_job_id;
    char node[64];
} run_record;

/*
 * A change that goes to disk: the caller holds r->io and reg->lock and has
 * changed the run in memory. Records a "state" event when `state_event`,
 * and returns what to write (with only r->io held) via store_files, which
 * also formats run.json from the record.
 */
typedef struct pending_files {
    bool has_record; /* run.json is to be written */
    run_record record;
    bool state_event; /* a "state" event of the record's state, reason and epoch */
    int64_t state_at;
    char *config_data; /* a "config" event already published: its data, for events.jsonl */
    uint64_t config_id;
    int config_epoch;
} pending_files;

/* What an evaluation's state change writes: its evaluations.jsonl and events.jsonl lines. */
/*
 * An evaluation's state change, copied out under the lock (eval_record_locked)
 * and published by eval_store with only r->io held: formatted, added to the
 * run's events, appended to evaluations.jsonl and events.jsonl.
 */
typedef struct eval_lines {
    bool pending;  /* there is a change to publish */
    bool persist;  /* also a line of evaluations.jsonl */
    bool finished; /* it was running and is done or failed: it stops counting as pending */
    int run_epoch; /* the run's completed epochs then (events.jsonl orders by them) */
    evaluation copy;
} eval_lines;

/*
 * A run as the API shows it (run_view.h), copied out under the lock
 * (run_json.c), with the evaluation that run_view_publish formats after it.
 */
typedef struct run_view {
    gand_run_view pub;
    bool has_eval;
    evaluation last_eval;
} run_view;

/* What a request asks of a run (POST /api/v1/runs/{id}/pause, resume, stop). */
typedef enum run_action { RUN_ACTION_PAUSE, RUN_ACTION_RESUME, RUN_ACTION_STOP } run_action;

/*
 * The registry lock: held briefly, and never while parsing, formatting or
 * logging (log.c checks the last under GAND_CHECK_LOCKS=1). Condition waits
 * on it keep the count: the thread logs nothing while it waits.
 */
static inline void reg_lock(struct gand_registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    log_hold_begin();
}

static inline void reg_unlock(struct gand_registry *reg)
{
    log_hold_end();
    pthread_mutex_unlock(&reg->lock);
}

/* ---- small helpers (util.c) ---- */

__attribute__((format(printf, 3, 4))) int str_printf(char *buf, size_t len, const char *fmt, ...);
int64_t now_ms(void);
void format_time(int64_t ms, char *buf, size_t len);
int64_t parse_time(const char *s);
struct timespec deadline_after_ms(int ms);
bool valid_run_id(const char *id);
void sb_puts(sb *b, const char *s);
__attribute__((format(printf, 2, 3))) void sb_printf(sb *b, const char *fmt, ...);
char *sb_take(sb *b);
bool grow(void **p, int *cap, int need, size_t elem);
int remove_tree(const char *path);
char *print_and_delete(cJSON *o);
char *read_text(const char *path, size_t max, gan_error *err);
int cmp_int(const void *a, const void *b);
int64_t mono_ms(void);
int make_dir(const char *path, gan_error *err);

/* ---- the run table and its state (runs.c) ---- */

void run_path(const run *r, const char *name, char *out, size_t len);
void sample_path(const run *r, int epoch, char *out, size_t len);
run *run_new(gand_registry *reg, const char *id);
void run_free(run *r);
run *run_find_locked(gand_registry *reg, const char *id);
bool run_insert_locked(gand_registry *reg, run *r);
run *run_get(gand_registry *reg, const char *id);
void run_put_locked(run *r);
void run_put(gand_registry *reg, run *r);
int run_iterations_per_epoch_locked(const gand_registry *reg, const run *r);
int queue_position_locked(const gand_registry *reg, const run *r);
bool set_state(gand_registry *reg, run *r, run_state s, const char *reason, bool only_if_running);
/*
 * The state machine of requests, as a pure table (runs.c): the state an action
 * takes a run in state `from` to, given whether the worker holds it (`active`)
 * and whether it has epochs left to train; `from` itself when it is refused.
 *   pause   queued | running → paused
 *   resume  paused → running (still held by the worker) or queued; completed →
 *           queued when PATCH raised epochs above those done and the worker let go
 *   stop    queued | running | paused → stopped
 */
run_state run_transition(run_state from, run_action action, bool active, bool epochs_left);

/* ---- G snapshots (snapshots.c) ---- */

void snapshot_release(g_snapshot *s);
void snapshot_publish(gand_registry *reg, run *r, g_snapshot *s);
reg_status run_generator(gand_registry *reg, run *r, g_snapshot **out, gan_error *err);
g_snapshot *snapshot_from_trainer(gan_trainer *t, const gan_config *cfg, gan_error *err);
reg_status generator_acquire(gand_registry *reg, const char *id, run **r, g_snapshot **s,
                             gan_error *err);
void generator_release(gand_registry *reg, run *r, g_snapshot *s);

/* ---- JSON shapes (run_json.c) ---- */

cJSON *config_cjson(const gan_config *cfg);
void split_view(const dataset_info *d, gand_split_view *out);
cJSON *eval_cjson(const run *r, const evaluation *e);
const evaluation *last_done_locked(const run *r);
void run_view_take_locked(const gand_registry *reg, const run *r, int queue_position, run_view *v);
/* The view, with its evaluation formatted (nothing locked); *out owns what v owned. */
void run_view_publish(run_view *v, gand_run_view *out);
char *run_file_json(const run_record *r);
char *state_event_data(const run_record *r, int64_t at);

/* ---- events (events.c) ---- */

/*
 * With nothing locked, after adding events: log the events lost since the
 * last report (if any), and raise the reserved event ids when they run low.
 */
void events_after_lock(gand_registry *reg);
/* At start-up, after the runs are loaded and before the registry is shared. */
void events_reserve_ids(gand_registry *reg);
uint64_t event_add_locked(gand_registry *reg, run *r, const char *kind, char *data);
/* A run's stream may have news (an event, its end): wake its waiters and call the hook. */
void event_wake_locked(gand_registry *reg, run *r);
char *event_line(uint64_t id, const char *kind, int epoch, const char *data);
int event_append(run *r, uint64_t id, const char *kind, int epoch, const char *data);

/* ---- alerts: watch rules that fired (alerts.c) ---- */

/* Publish n alerts of run r (nothing locked); pauses it when one says so. Returns true then. */
bool alerts_raise(gand_registry *reg, run *r, const gan_alert *a, int n);
/* Remember an alert read back from events.jsonl (reg->lock held or not yet shared). */
void alert_keep_locked(run *r, const gan_alert *a);

/* ---- the run store: a run's files (run_store.c) ---- */

pending_files prepare_files_locked(gand_registry *reg, run *r, bool state_event);
/* What run.json holds now (under reg->lock); updated_at is the caller's. */
run_record run_record_locked(const run *r);
/* Write run.json from rec (r->io held, reg->lock not); -1 with err (and errno) on failure. */
int write_run_record(const run *r, const run_record *rec, gan_error *err);
/* Whether an errno of a failed write means the disk (or quota) is full: 507 rather than 500. */
bool errno_is_full(int e);
int store_files(gand_registry *reg, run *r, pending_files *p);
void persist_run(gand_registry *reg, run *r);
char *metrics_text_locked(const run *r);
/* Epochs the run has done: the epoch of its last record (records may skip a damaged one). */
int run_epochs_locked(const run *r);
/* Forget the records past epoch `keep` (history that will be trained again). */
bool metrics_cut_locked(run *r, int keep);
void load_runs(gand_registry *reg);

/* ---- data sets (datasets.c) ---- */

const dataset_info *dataset_find(const gand_registry *reg, const char *name);
void dataset_probe(dataset_info *d);
dataset_info *worker_dataset(gand_registry *reg, const char *name, gan_error *err);
dataset_info *worker_eval_dataset(gand_registry *reg, const char *name, gan_error *err);
const gan_eval_classifier *worker_judge(gand_registry *reg, dataset_info *d, gk_backend *be,
                                        gan_error *err);

/* ---- the evaluation queue (evaluations.c) ---- */

evaluation *eval_add_locked(gand_registry *reg, run *r, int samples, uint64_t seed,
                            eval_trigger trigger, g_snapshot *pinned);
eval_lines eval_record_locked(gand_registry *reg, run *r, const evaluation *e, bool persist);
void eval_store(gand_registry *reg, run *r, eval_lines *l);
bool worker_evaluate_next(gand_registry *reg);

/* ---- what follows an epoch, whoever trained it (epochs.c) ---- */

/* metrics.jsonl written whole from the records in memory (r->io held); clears the stale mark. */
int rewrite_history(gand_registry *reg, run *r, gan_error *err);
/*
 * A finished epoch recorded: its line in metrics.jsonl (the whole file first
 * when an earlier append failed), the record in memory and its "epoch" event.
 * -1 with err when it is not all on disk (*file_behind says whether the file
 * lacks it) or out of memory.
 */
int epoch_record(gand_registry *reg, run *r, const gan_epoch_metrics *m, bool *file_behind,
                 gan_error *err);
/* The watch rules on the epoch just recorded (alerts_raise acts on what fires). */
void epoch_watch(gand_registry *reg, run *r, const gan_config *live);
/* The fixed-noise grid of snapshot s, samples/epoch-NNNNNN.png, added to the run's samples. */
int epoch_grid(gand_registry *reg, run *r, const g_snapshot *s, gan_error *err);
/* evaluate_every or watch_every: an evaluation of s queued (a reference is taken). */
void epoch_queue_eval(gand_registry *reg, run *r, g_snapshot *s, eval_trigger trigger,
                      bool *warned);

/* ---- the local executor: the worker thread (executor_local.c) ---- */

gk_backend *run_backend(gand_registry *reg, const gan_config *cfg, gan_error *err);
/*
 * Start an executor's thread (main_fn) and wait until it has opened its
 * backend (reg->worker_ready) or failed to (reg->worker_failed, be_why says why).
 */
int executor_thread_start(gand_registry *reg, void *(*main_fn)(void *), gan_error *err);
/* Wait for the executor's thread to end (reg->shutdown set); false when none was started. */
bool executor_thread_join(gand_registry *reg);
/* An executor thread's backend for device_req, in reg->be (NULL: failed, and start is told). */
gk_backend *executor_backend_open(gand_registry *reg, char *why, size_t len);
/* At its thread's end: the data sets it loaded freed, its backends closed. */
void executor_backend_close(gand_registry *reg);

/* ---- the façade (registry.c) ---- */

reg_status not_found(const char *id, gan_error *err);

#endif
