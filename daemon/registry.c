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

static const char *const state_names[RUN_STATE_COUNT] = {"queued",  "running",   "paused",
                                                         "stopped", "completed", "failed"};

static bool state_is_final(run_state s)
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

static const char *const eval_state_names[EVAL_STATE_COUNT] = {"queued", "running", "done",
                                                               "failed"};

/* One Parzen evaluation of a run (registry.h "evaluation"). */
typedef struct evaluation {
    int id; /* 1, 2, ... within the run */
    eval_state state;
    char reason[REASON_MAX]; /* "" = null */
    bool automatic;          /* trigger "evaluate_every" (else "request") */
    int samples;
    uint64_t seed;
    int64_t created_at, started_at, finished_at; /* ms, 0 = null */
    int64_t queue_seq;                           /* FIFO order among queued evaluations */
    struct g_snapshot *pinned;                   /* G to evaluate (evaluate_every), else NULL */
    /* the result, when done */
    double parzen_ll, stderr_ll, sigma, seconds;
    int epoch;
    int valid_begin, valid_end, test_begin, test_end;
    char data[DATA_NAME_MAX];       /* "NAME/BASENAME" of the file the test range indexes */
    char valid_data[DATA_NAME_MAX]; /* … and of the validation range's */
} evaluation;

typedef struct run_event {
    const char *kind; /* "epoch" | "state" | "config" | "evaluation" (static strings) */
    char *data;       /* one-line JSON object */
} run_event;          /* its sequence number is its index + 1 */

typedef struct run {
    int refs;     /* table + request threads + worker (under reg->lock) */
    bool removed; /* deleted: out of the table, freed at the last reference */
    pthread_mutex_t io;

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
    bool persist_disabled;   /* run.json was unreadable: never overwrite it */
    bool metrics_file_stale; /* metrics.jsonl lacks records memory has: rewrite it */

    gan_epoch_metrics *metrics; /* metrics[i].epoch == i + 1 */
    int nmetrics, metrics_cap;
    run_event *events;
    int nevents, events_cap;
    int *samples; /* epochs with a saved grid, ascending */
    int nsamples, samples_cap;
    g_snapshot *snap;
    evaluation *evals; /* by id: evals[i].id == i + 1 */
    int nevals, evals_cap;
    int evals_pending; /* queued or running */
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
    /* worker only: loaded on first use, kept */
    gan_dataset loaded, test_loaded;
    bool is_loaded, test_is_loaded;
} dataset_info;

struct gand_registry {
    pthread_mutex_t lock;
    pthread_cond_t work_cond;  /* the worker: new work, resume, shutdown */
    pthread_cond_t event_cond; /* event waiters: an event was published or a run let go */
    pthread_cond_t start_cond; /* registry_start: the worker opened its backend (or failed) */

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
    int64_t next_eval_seq;
    run *current;       /* the run the worker holds, or NULL */
    gk_backend *be;     /* the worker's, opened for `device_req` */
    gk_backend *be_alt; /* the other backend, opened for the first run that names it */
};

/* ---- small helpers ------------------------------------------------------ */

/*
 * snprintf that always truncates quietly: paths and messages here are
 * bounded by their buffers, and a cut message is better than none.
 */
__attribute__((format(printf, 3, 4))) static int str_printf(char *buf, size_t len, const char *fmt,
                                                            ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 UTC with milliseconds: 2024-05-01T12:00:00.123Z */
static void format_time(int64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    str_printf(buf, len, "%s.%03dZ", base, (int)(ms % 1000));
}

static int64_t parse_time(const char *s)
{
    struct tm tm;
    int ms = 0;
    memset(&tm, 0, sizeof tm);
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static struct timespec deadline_after_ms(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Run ids from requests: [a-z0-9-], starting with a letter or digit, 1..40 characters. */
static bool valid_run_id(const char *id)
{
    if (!id || !id[0] || strlen(id) > RUN_ID_MAX || id[0] == '-')
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return false;
    return true;
}

/* A growable string; on allocation failure it remembers and sb_take returns NULL. */
typedef struct sb {
    char *p;
    size_t len, cap;
    bool oom;
} sb;

static void sb_putn(sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sb *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sb_printf(sb *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        sb_putn(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_putn(b, big, (size_t)n);
    free(big);
}

static char *sb_take(sb *b)
{
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    if (!b->p)
        return strdup("");
    return b->p;
}

static bool grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return true;
    int c = *cap ? *cap * 2 : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int remove_tree(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void run_path(const run *r, const char *name, char *out, size_t len)
{
    str_printf(out, len, "%s/%s", r->dir, name);
}

static void sample_path(const run *r, int epoch, char *out, size_t len)
{
    str_printf(out, len, "%s/samples/epoch-%06d.png", r->dir, epoch);
}

/* ---- G snapshots ------------------------------------------------------- */

static g_snapshot *snapshot_new(const gan_config *cfg, int epoch)
{
    g_snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->params = malloc(gan_generator_param_count(cfg) * sizeof(float));
    if (!s->params) {
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->cfg = *cfg;
    s->epoch = epoch;
    return s;
}

static void snapshot_release(g_snapshot *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        free(s->params);
        free(s);
    }
}

/* Replace a run's snapshot (takes over the caller's reference). */
static void snapshot_publish(gand_registry *reg, run *r, g_snapshot *s)
{
    pthread_mutex_lock(&reg->lock);
    g_snapshot *old = r->snap;
    r->snap = s;
    pthread_mutex_unlock(&reg->lock);
    snapshot_release(old);
}

/* ---- runs and the table ------------------------------------------------ */

static run *run_new(gand_registry *reg, const char *id)
{
    run *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_mutex_init(&r->io, NULL);
    str_printf(r->id, sizeof r->id, "%s", id);
    str_printf(r->dir, sizeof r->dir, "%s/%s", reg->runs_dir, id);
    r->checkpoint_epoch = -1;
    r->refs = 1; /* the table's */
    return r;
}

static void run_free(run *r)
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
    snapshot_release(r->snap);
    pthread_mutex_destroy(&r->io);
    free(r);
}

static run *run_find_locked(gand_registry *reg, const char *id)
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

static bool run_insert_locked(gand_registry *reg, run *r)
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
static run *run_get(gand_registry *reg, const char *id)
{
    pthread_mutex_lock(&reg->lock);
    run *r = run_find_locked(reg, id);
    if (r)
        r->refs++;
    pthread_mutex_unlock(&reg->lock);
    return r;
}

static void run_put_locked(run *r)
{
    if (--r->refs == 0)
        run_free(r);
}

static void run_put(gand_registry *reg, run *r)
{
    pthread_mutex_lock(&reg->lock);
    run_put_locked(r);
    pthread_mutex_unlock(&reg->lock);
}

static const dataset_info *dataset_find(const gand_registry *reg, const char *name)
{
    for (int i = 0; i < reg->ndatasets; i++)
        if (strcmp(reg->datasets[i].entry.name, name) == 0)
            return &reg->datasets[i];
    return NULL;
}

static int run_iterations_per_epoch_locked(const gand_registry *reg, const run *r)
{
    if (r->active && r->iterations_per_epoch > 0)
        return r->iterations_per_epoch;
    const dataset_info *d = dataset_find(reg, r->cfg.dataset);
    return d && d->ok && r->cfg.batch_size > 0 ? d->train_images / r->cfg.batch_size : 0;
}

/* 1-based place among queued runs, 0 when not queued. */
static int queue_position_locked(const gand_registry *reg, const run *r)
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

/* ---- JSON -------------------------------------------------------------- */

/* name: the string, or null when it is empty */
static void add_string_or_null(cJSON *o, const char *name, const char *value)
{
    if (value[0])
        cJSON_AddStringToObject(o, name, value);
    else
        cJSON_AddNullToObject(o, name);
}

/* name: the number, or null when absent */
static void add_number_or_null(cJSON *o, const char *name, bool present, double value)
{
    if (present)
        cJSON_AddNumberToObject(o, name, value);
    else
        cJSON_AddNullToObject(o, name);
}

/* name: the item (taken), or null when there is none */
static void add_item_or_null(cJSON *o, const char *name, cJSON *item)
{
    if (item)
        cJSON_AddItemToObject(o, name, item);
    else
        cJSON_AddNullToObject(o, name);
}

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    if (ms > 0) {
        char t[40];
        format_time(ms, t, sizeof t);
        cJSON_AddStringToObject(o, name, t);
    } else {
        cJSON_AddNullToObject(o, name);
    }
}

static cJSON *config_cjson(const gan_config *cfg)
{
    char *s = gan_config_to_json(cfg);
    cJSON *o = s ? cJSON_Parse(s) : NULL;
    free(s);
    return o ? o : cJSON_CreateObject();
}

static cJSON *metrics_cjson(const gan_epoch_metrics *m)
{
    char line[1024];
    gan_epoch_metrics_json(m, line, sizeof line);
    cJSON *o = cJSON_Parse(line);
    return o ? o : cJSON_CreateNull();
}

static cJSON *range_cjson(int begin, int end)
{
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateNumber(begin));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(end));
    return a;
}

/* A data set's split (registry.h "split"), or null when it cannot be read. */
static cJSON *split_cjson(const dataset_info *d)
{
    if (!d || !d->ok)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "train_data", d->train_name);
    cJSON_AddItemToObject(o, "train", range_cjson(0, d->train_images));
    if (d->eval_ok) {
        cJSON_AddStringToObject(o, "data", d->eval_name);
        cJSON_AddStringToObject(o, "validation_data", d->valid_name);
        cJSON_AddItemToObject(o, "validation",
                              range_cjson(d->split.valid_begin, d->split.valid_end));
        cJSON_AddItemToObject(o, "test", range_cjson(d->split.test_begin, d->split.test_end));
    } else {
        cJSON_AddNullToObject(o, "data");
        cJSON_AddNullToObject(o, "validation_data");
        cJSON_AddNullToObject(o, "validation");
        cJSON_AddNullToObject(o, "test");
    }
    return o;
}

/* The API's evaluation object (registry.h). */
static cJSON *eval_cjson(const run *r, const evaluation *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", e->id);
    cJSON_AddStringToObject(o, "run", r->id);
    cJSON_AddStringToObject(o, "state", eval_state_names[e->state]);
    add_string_or_null(o, "reason", e->reason);
    cJSON_AddStringToObject(o, "trigger", e->automatic ? "evaluate_every" : "request");
    cJSON_AddNumberToObject(o, "samples", e->samples);
    cJSON_AddNumberToObject(o, "seed", (double)e->seed);
    if (e->state == EVAL_DONE) {
        cJSON *res = cJSON_AddObjectToObject(o, "result");
        cJSON_AddNumberToObject(res, "parzen_ll", e->parzen_ll);
        cJSON_AddNumberToObject(res, "stderr", e->stderr_ll);
        cJSON_AddNumberToObject(res, "sigma", e->sigma);
        cJSON_AddNumberToObject(res, "samples", e->samples);
        cJSON_AddNumberToObject(res, "epoch", e->epoch);
        cJSON *sp = cJSON_AddObjectToObject(res, "split");
        cJSON_AddItemToObject(sp, "validation", range_cjson(e->valid_begin, e->valid_end));
        cJSON_AddItemToObject(sp, "test", range_cjson(e->test_begin, e->test_end));
        cJSON_AddStringToObject(res, "data", e->data);
        cJSON_AddStringToObject(res, "validation_data", e->valid_data);
        cJSON_AddNumberToObject(res, "seconds", e->seconds);
    } else {
        cJSON_AddNullToObject(o, "result");
    }
    add_time(o, "created_at", e->created_at);
    add_time(o, "started_at", e->started_at);
    add_time(o, "finished_at", e->finished_at);
    return o;
}

/* The latest evaluation that is done (they finish in id order), or NULL. */
static const evaluation *last_done_locked(const run *r)
{
    for (int i = r->nevals - 1; i >= 0; i--)
        if (r->evals[i].state == EVAL_DONE)
            return &r->evals[i];
    return NULL;
}

/* The API's run object (registry.h). */
static cJSON *run_cjson_locked(const gand_registry *reg, const run *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "state", state_names[r->state]);
    add_string_or_null(o, "reason", r->reason);
    cJSON_AddItemToObject(o, "config", config_cjson(&r->cfg));
    cJSON_AddNumberToObject(o, "epoch", r->nmetrics);
    cJSON_AddNumberToObject(o, "iteration", r->iteration);
    cJSON_AddNumberToObject(o, "iterations_per_epoch", run_iterations_per_epoch_locked(reg, r));
    add_item_or_null(o, "last_metrics",
                     r->nmetrics > 0 ? metrics_cjson(&r->metrics[r->nmetrics - 1]) : NULL);
    add_time(o, "created_at", r->created_at);
    add_time(o, "started_at", r->started_at);
    add_time(o, "updated_at", r->updated_at);
    add_time(o, "finished_at", r->finished_at);
    int pos = queue_position_locked(reg, r);
    add_number_or_null(o, "queue_position", pos > 0, pos);
    add_string_or_null(o, "device", r->device);
    cJSON *se = cJSON_AddArrayToObject(o, "samples_epochs");
    for (int i = 0; i < r->nsamples; i++)
        cJSON_AddItemToArray(se, cJSON_CreateNumber(r->samples[i]));
    add_number_or_null(o, "checkpoint_epoch", r->checkpoint_epoch >= 0, r->checkpoint_epoch);
    cJSON_AddItemToObject(o, "split", split_cjson(dataset_find(reg, r->cfg.dataset)));
    const evaluation *e = last_done_locked(r);
    add_item_or_null(o, "last_evaluation", e ? eval_cjson(r, e) : NULL);
    return o;
}

static char *print_and_delete(cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* run.json: what a restart needs, in the API's words where they overlap. */
static char *run_file_json_locked(const run *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "state", state_names[r->state]);
    add_string_or_null(o, "reason", r->reason);
    cJSON_AddItemToObject(o, "config", config_cjson(&r->cfg));
    add_time(o, "created_at", r->created_at);
    add_time(o, "started_at", r->started_at);
    add_time(o, "updated_at", r->updated_at);
    add_time(o, "finished_at", r->finished_at);
    add_time(o, "queued_at", r->queued_at);
    cJSON_AddNumberToObject(o, "epoch", r->nmetrics);
    add_number_or_null(o, "checkpoint_epoch", r->checkpoint_epoch >= 0, r->checkpoint_epoch);
    add_string_or_null(o, "device", r->device);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

/* ---- events ------------------------------------------------------------ */

/* Append an event in memory (takes data) and wake waiters; returns its sequence number. */
static uint64_t event_add_locked(gand_registry *reg, run *r, const char *kind, char *data)
{
    if (!data || !grow((void **)&r->events, &r->events_cap, r->nevents + 1, sizeof(run_event))) {
        log_err("run %s: out of memory recording a %s event", r->id, kind);
        free(data);
        return (uint64_t)r->nevents;
    }
    r->events[r->nevents].kind = kind;
    r->events[r->nevents].data = data;
    r->nevents++;
    pthread_cond_broadcast(&reg->event_cond);
    return (uint64_t)r->nevents;
}

/* The events.jsonl line of an event: kind, completed epochs, data. */
static char *event_line(const char *kind, int epoch, const char *data)
{
    sb b = {0};
    sb_printf(&b, "{\"event\":\"%s\",\"epoch\":%d,\"data\":%s}", kind, epoch, data);
    return sb_take(&b);
}

static char *state_event_data_locked(const run *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", state_names[r->state]);
    add_string_or_null(o, "reason", r->reason);
    cJSON_AddNumberToObject(o, "epoch", r->nmetrics);
    add_time(o, "at", now_ms());
    return print_and_delete(o);
}

/*
 * A change that goes to disk: the caller holds r->io and reg->lock and has
 * changed the run in memory. Records a "state" event when `state_event`,
 * and returns what to write (with only r->io held) via store_files.
 */
typedef struct pending_files {
    char *run_json;
    char *event_line;
} pending_files;

static pending_files prepare_files_locked(gand_registry *reg, run *r, bool state_event)
{
    pending_files p = {NULL, NULL};
    r->updated_at = now_ms();
    if (state_event) {
        char *data = state_event_data_locked(r);
        if (data)
            p.event_line = event_line("state", r->nmetrics, data);
        event_add_locked(reg, r, "state", data);
    }
    if (!r->persist_disabled)
        p.run_json = run_file_json_locked(r);
    return p;
}

/* Write what prepare_files_locked produced; r->io held, reg->lock not. */
static int store_files(run *r, pending_files *p)
{
    int rc = 0;
    if (r->removed) /* deleted meanwhile: its directory is gone */
        goto out;
    char path[PATH_MAX];
    if (p->event_line) {
        run_path(r, "events.jsonl", path, sizeof path);
        if (gan_append_line(path, p->event_line) != 0) {
            log_err("run %s: cannot append to %s: %s", r->id, path, strerror(errno));
            rc = -1;
        }
    }
    if (p->run_json) {
        gan_error err;
        run_path(r, "run.json", path, sizeof path);
        if (gan_write_file_atomic(path, p->run_json, strlen(p->run_json), &err) != 0) {
            log_err("run %s: cannot write run.json: %s", r->id, err.message);
            rc = -1;
        }
    }
out:
    free(p->run_json);
    free(p->event_line);
    p->run_json = p->event_line = NULL;
    return rc;
}

/*
 * Change a run's state and record it (takes both locks itself). With
 * only_if_running, a run that a request has meanwhile paused or stopped
 * keeps that state (returns false).
 */
static bool set_state(gand_registry *reg, run *r, run_state s, const char *reason,
                      bool only_if_running)
{
    pthread_mutex_lock(&r->io);
    pthread_mutex_lock(&reg->lock);
    if (only_if_running && r->state != RUN_RUNNING) {
        pthread_mutex_unlock(&reg->lock);
        pthread_mutex_unlock(&r->io);
        return false;
    }
    r->state = s;
    str_printf(r->reason, sizeof r->reason, "%s", reason ? reason : "");
    if (state_is_final(s))
        r->finished_at = now_ms();
    pending_files p = prepare_files_locked(reg, r, true);
    pthread_mutex_unlock(&reg->lock);
    store_files(r, &p);
    pthread_mutex_unlock(&r->io);
    return true;
}

/* Write run.json (no event): after a checkpoint, at shutdown. */
static void persist_run(gand_registry *reg, run *r)
{
    pthread_mutex_lock(&r->io);
    pthread_mutex_lock(&reg->lock);
    pending_files p = prepare_files_locked(reg, r, false);
    pthread_mutex_unlock(&reg->lock);
    store_files(r, &p);
    pthread_mutex_unlock(&r->io);
}

/* ---- checkpoints and metrics files ------------------------------------ */

static bool metrics_from_json(const cJSON *o, gan_epoch_metrics *m)
{
    static const char *const names[] = {"epoch",           "d_real", "d_fake", "d_loss",
                                        "g_loss",          "d_x",    "d_g_z",  "seconds",
                                        "samples_per_sec", "lr_d",   "lr_g",   "batch_size"};
    double v[12];
    if (!cJSON_IsObject(o))
        return false;
    for (int i = 0; i < 12; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, names[i]);
        if (!cJSON_IsNumber(it))
            return false;
        v[i] = it->valuedouble;
    }
    memset(m, 0, sizeof *m);
    m->epoch = (int)v[0];
    m->d_real = v[1];
    m->d_fake = v[2];
    m->d_loss = v[3];
    m->g_loss = v[4];
    m->d_x = v[5];
    m->d_g_z = v[6];
    m->seconds = v[7];
    m->samples_per_sec = v[8];
    m->lr_d = v[9];
    m->lr_g = v[10];
    m->batch_size = (int)v[11];
    return true;
}

/* metrics.jsonl's text for the records in memory (under reg->lock). */
static char *metrics_text_locked(const run *r)
{
    sb b = {0};
    char line[1024];
    sb_puts(&b, "");
    for (int i = 0; i < r->nmetrics; i++) {
        gan_epoch_metrics_json(&r->metrics[i], line, sizeof line);
        sb_puts(&b, line);
        sb_puts(&b, "\n");
    }
    return sb_take(&b);
}

/* ---- loading a run at start-up ---------------------------------------- */

static char *read_text(const char *path, size_t max, gan_error *err)
{
    uint8_t *data;
    size_t len;
    if (gan_read_file(path, &data, &len, max, err) != 0)
        return NULL;
    return (char *)data;
}

/* Read metrics.jsonl; stops at the first line that is not the next epoch (a torn tail). */
static int load_metrics(run *r, bool *cut)
{
    char path[PATH_MAX];
    run_path(r, "metrics.jsonl", path, sizeof path);
    *cut = false;
    if (access(path, F_OK) != 0)
        return 0;
    gan_error err;
    char *text = read_text(path, (size_t)1 << 30, &err);
    if (!text) {
        log_warning("run %s: %s", r->id, err.message);
        *cut = true;
        return 0;
    }
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        gan_epoch_metrics m;
        bool ok = metrics_from_json(o, &m) && m.epoch == r->nmetrics + 1;
        cJSON_Delete(o);
        if (!ok) {
            log_warning("run %s: metrics.jsonl line %d is not the record of epoch %d; "
                        "history is cut there",
                        r->id, r->nmetrics + 1, r->nmetrics + 1);
            *cut = true;
            break;
        }
        if (!grow((void **)&r->metrics, &r->metrics_cap, r->nmetrics + 1, sizeof m)) {
            free(text);
            return -1;
        }
        r->metrics[r->nmetrics++] = m;
    }
    free(text);
    return 0;
}

/* Rebuild the event list: events.jsonl merged with the epoch records by epoch. */
static void load_events(gand_registry *reg, run *r)
{
    char path[PATH_MAX];
    run_path(r, "events.jsonl", path, sizeof path);
    char *text = NULL;
    gan_error err;
    if (access(path, F_OK) == 0 && !(text = read_text(path, (size_t)1 << 28, &err)))
        log_warning("run %s: %s", r->id, err.message);
    int mi = 0;
    char line[1024];
    char *save = NULL;
    for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(l);
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "event");
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(o, "epoch");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
        const char *k = NULL;
        if (cJSON_IsString(kind) && strcmp(kind->valuestring, "state") == 0)
            k = "state";
        else if (cJSON_IsString(kind) && strcmp(kind->valuestring, "config") == 0)
            k = "config";
        else if (cJSON_IsString(kind) && strcmp(kind->valuestring, "evaluation") == 0)
            k = "evaluation";
        if (!k || !cJSON_IsNumber(ep) || !cJSON_IsObject(data)) {
            log_warning("run %s: events.jsonl has an unreadable line; later events are dropped",
                        r->id);
            cJSON_Delete(o);
            break;
        }
        while (mi < r->nmetrics && r->metrics[mi].epoch <= ep->valueint) {
            gan_epoch_metrics_json(&r->metrics[mi++], line, sizeof line);
            event_add_locked(reg, r, "epoch", strdup(line));
        }
        event_add_locked(reg, r, k, cJSON_PrintUnformatted(data));
        cJSON_Delete(o);
    }
    while (mi < r->nmetrics) {
        gan_epoch_metrics_json(&r->metrics[mi++], line, sizeof line);
        event_add_locked(reg, r, "epoch", strdup(line));
    }
    free(text);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void load_samples(run *r)
{
    char path[PATH_MAX];
    run_path(r, "samples", path, sizeof path);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        int epoch;
        char tail[8];
        if (sscanf(e->d_name, "epoch-%d.%7s", &epoch, tail) == 2 && strcmp(tail, "png") == 0 &&
            epoch > 0 && strlen(e->d_name) == strlen("epoch-000000.png") &&
            grow((void **)&r->samples, &r->samples_cap, r->nsamples + 1, sizeof(int)))
            r->samples[r->nsamples++] = epoch;
    }
    closedir(d);
    if (r->nsamples > 1) /* qsort's array must not be NULL, even for 0 elements */
        qsort(r->samples, (size_t)r->nsamples, sizeof(int), cmp_int);
}

static bool range_from_json(const cJSON *a, int *begin, int *end)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2)
        return false;
    const cJSON *b = cJSON_GetArrayItem(a, 0), *e = cJSON_GetArrayItem(a, 1);
    if (!cJSON_IsNumber(b) || !cJSON_IsNumber(e))
        return false;
    *begin = b->valueint;
    *end = e->valueint;
    return true;
}

/* One line of evaluations.jsonl (an evaluation object) into *e; false when it is not one. */
static bool eval_from_json(const cJSON *o, evaluation *e)
{
    memset(e, 0, sizeof *e);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "state");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(o, "reason");
    const cJSON *trigger = cJSON_GetObjectItemCaseSensitive(o, "trigger");
    const cJSON *samples = cJSON_GetObjectItemCaseSensitive(o, "samples");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(o, "seed");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(o, "result");
    if (!cJSON_IsNumber(id) || id->valueint < 1 || !cJSON_IsString(st) ||
        !cJSON_IsNumber(samples) || !cJSON_IsNumber(seed) || seed->valuedouble < 0)
        return false;
    int s = -1;
    for (int i = 0; i < EVAL_STATE_COUNT; i++)
        if (strcmp(st->valuestring, eval_state_names[i]) == 0)
            s = i;
    if (s < 0)
        return false;
    e->id = id->valueint;
    e->state = (eval_state)s;
    e->samples = samples->valueint;
    e->seed = (uint64_t)seed->valuedouble;
    e->automatic = cJSON_IsString(trigger) && strcmp(trigger->valuestring, "evaluate_every") == 0;
    str_printf(e->reason, sizeof e->reason, "%s",
               cJSON_IsString(reason) ? reason->valuestring : "");
    static const char *const tnames[] = {"created_at", "started_at", "finished_at"};
    int64_t *tvals[] = {&e->created_at, &e->started_at, &e->finished_at};
    for (int i = 0; i < 3; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, tnames[i]);
        *tvals[i] = cJSON_IsString(t) ? parse_time(t->valuestring) : 0;
    }
    if (e->state != EVAL_DONE)
        return true;
    const cJSON *ll = cJSON_GetObjectItemCaseSensitive(res, "parzen_ll");
    const cJSON *se = cJSON_GetObjectItemCaseSensitive(res, "stderr");
    const cJSON *sigma = cJSON_GetObjectItemCaseSensitive(res, "sigma");
    const cJSON *epoch = cJSON_GetObjectItemCaseSensitive(res, "epoch");
    const cJSON *split = cJSON_GetObjectItemCaseSensitive(res, "split");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(res, "data");
    const cJSON *secs = cJSON_GetObjectItemCaseSensitive(res, "seconds");
    if (!cJSON_IsNumber(ll) || !cJSON_IsNumber(se) || !cJSON_IsNumber(sigma) ||
        !cJSON_IsNumber(epoch) || !cJSON_IsString(data) ||
        !range_from_json(cJSON_GetObjectItemCaseSensitive(split, "validation"), &e->valid_begin,
                         &e->valid_end) ||
        !range_from_json(cJSON_GetObjectItemCaseSensitive(split, "test"), &e->test_begin,
                         &e->test_end))
        return false;
    e->parzen_ll = ll->valuedouble;
    e->stderr_ll = se->valuedouble;
    e->sigma = sigma->valuedouble;
    e->epoch = epoch->valueint;
    e->seconds = cJSON_IsNumber(secs) ? secs->valuedouble : 0;
    str_printf(e->data, sizeof e->data, "%s", data->valuestring);
    const cJSON *vdata = cJSON_GetObjectItemCaseSensitive(res, "validation_data");
    str_printf(e->valid_data, sizeof e->valid_data, "%s",
               cJSON_IsString(vdata) ? vdata->valuestring : data->valuestring);
    return true;
}

/*
 * Read evaluations.jsonl: the last line of each id wins (one is appended at
 * each state change). One that was queued or running is queued again.
 */
static void load_evaluations(gand_registry *reg, run *r)
{
    char path[PATH_MAX];
    run_path(r, "evaluations.jsonl", path, sizeof path);
    if (access(path, F_OK) != 0)
        return;
    gan_error err;
    char *text = read_text(path, (size_t)1 << 28, &err);
    if (!text) {
        log_warning("run %s: %s", r->id, err.message);
        return;
    }
    int lineno = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        lineno++;
        cJSON *o = cJSON_Parse(l);
        evaluation e;
        bool ok = eval_from_json(o, &e);
        cJSON_Delete(o);
        if (!ok || e.id > r->nevals + 1) {
            log_warning("run %s: evaluations.jsonl line %d is not an evaluation in order; it "
                        "is skipped",
                        r->id, lineno);
            continue;
        }
        if (e.id == r->nevals + 1) {
            if (!grow((void **)&r->evals, &r->evals_cap, r->nevals + 1, sizeof e))
                break;
            r->nevals++;
        }
        r->evals[e.id - 1] = e;
    }
    free(text);
    for (int i = 0; i < r->nevals; i++) {
        evaluation *e = &r->evals[i];
        if (e->state == EVAL_QUEUED || e->state == EVAL_RUNNING) {
            e->state = EVAL_QUEUED;
            e->started_at = 0;
            e->queue_seq = reg->next_eval_seq++;
            r->evals_pending++;
            reg->evals_queued++;
            log_info("run %s: evaluation %d was not finished when gand stopped; it is queued "
                     "again",
                     r->id, e->id);
        }
    }
}

static int parse_run_file(run *r, const char *text, gan_error *err)
{
    cJSON *o = cJSON_Parse(text);
    int rc = -1;
    if (!cJSON_IsObject(o)) {
        gan_fail(err, "run.json", "run.json is not a JSON object");
        goto out;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "state");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "config");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(o, "reason");
    const cJSON *device = cJSON_GetObjectItemCaseSensitive(o, "device");
    if (!cJSON_IsString(id) || strcmp(id->valuestring, r->id) != 0) {
        gan_fail(err, "run.json", "run.json names another run id");
        goto out;
    }
    int s = -1;
    for (int i = 0; cJSON_IsString(st) && i < RUN_STATE_COUNT; i++)
        if (strcmp(st->valuestring, state_names[i]) == 0)
            s = i;
    if (s < 0) {
        gan_fail(err, "run.json", "run.json has no valid state");
        goto out;
    }
    char *cfg_text = cJSON_IsObject(cfg) ? cJSON_PrintUnformatted(cfg) : NULL;
    gan_error cerr = {{0}, {0}};
    if (!cfg_text || gan_config_from_json(&r->cfg, cfg_text, 0, &cerr) != 0) {
        gan_fail(err, "run.json", "run.json has no valid config%s%s", cfg_text ? ": " : "",
                 cfg_text ? cerr.message : "");
        free(cfg_text);
        goto out;
    }
    free(cfg_text);
    r->state = (run_state)s;
    str_printf(r->reason, sizeof r->reason, "%s",
               cJSON_IsString(reason) ? reason->valuestring : "");
    str_printf(r->device, sizeof r->device, "%s",
               cJSON_IsString(device) ? device->valuestring : "");
    static const char *const tnames[] = {"created_at", "started_at", "updated_at", "finished_at",
                                         "queued_at"};
    int64_t *tvals[] = {&r->created_at, &r->started_at, &r->updated_at, &r->finished_at,
                        &r->queued_at};
    for (int i = 0; i < 5; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, tnames[i]);
        *tvals[i] = cJSON_IsString(t) ? parse_time(t->valuestring) : 0;
    }
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

/* Load one run directory; never fails as a whole (a broken run becomes "failed"). */
static run *load_run(gand_registry *reg, const char *id)
{
    run *r = run_new(reg, id);
    if (!r)
        return NULL;
    char path[PATH_MAX];
    gan_error err = {{0}, {0}};
    run_path(r, "run.json", path, sizeof path);
    char *text = read_text(path, (size_t)1 << 24, &err);
    bool broken = !text || parse_run_file(r, text, &err) != 0;
    free(text);
    char ckpt[PATH_MAX];
    run_path(r, "checkpoint.safetensors", ckpt, sizeof ckpt);
    if (broken) {
        log_err("run %s: %s; the run is marked failed", id, err.message);
        char reason[REASON_MAX];
        str_printf(reason, sizeof reason, "run.json is unreadable: %s", err.message);
        if (gan_checkpoint_read_config(ckpt, &r->cfg, NULL) != 0)
            gan_config_preset(&r->cfg, "seed", NULL);
        r->state = RUN_FAILED;
        str_printf(r->reason, sizeof r->reason, "%s", reason);
        r->persist_disabled = true; /* keep the evidence */
    }

    bool cut;
    if (load_metrics(r, &cut) != 0) {
        run_free(r);
        return NULL;
    }
    r->metrics_file_stale = cut;
    load_samples(r);

    bool ckpt_failed = false;
    if (!broken && access(ckpt, F_OK) == 0) {
        gan_checkpoint_position pos;
        if (gan_checkpoint_inspect(ckpt, &r->cfg, &pos, NULL, &err) != 0) {
            log_err("run %s: %s; the run is marked failed", id, err.message);
            ckpt_failed = true;
        } else {
            r->checkpoint_epoch = pos.epoch;
            r->iteration = pos.iteration;
        }
    }
    /* a run that may train again continues from its checkpoint: history past it is cut */
    if (!broken && !ckpt_failed && r->state != RUN_STOPPED && r->state != RUN_FAILED) {
        int keep = r->checkpoint_epoch < 0 ? 0 : r->checkpoint_epoch;
        if (r->nmetrics > keep) {
            log_notice("run %s: resuming from the checkpoint of epoch %d; metrics of epochs "
                       "%d..%d are dropped and will be trained again",
                       id, keep, keep + 1, r->nmetrics);
            r->nmetrics = keep;
            r->metrics_file_stale = true;
        }
        if (r->checkpoint_epoch < 0)
            r->iteration = 0;
    }
    if (r->metrics_file_stale) {
        char *mt = metrics_text_locked(r);
        run_path(r, "metrics.jsonl", path, sizeof path);
        if (mt && gan_write_file_atomic(path, mt, strlen(mt), &err) == 0)
            r->metrics_file_stale = false;
        else
            log_err("run %s: cannot rewrite metrics.jsonl: %s", id, mt ? err.message : "no memory");
        free(mt);
    }
    load_events(reg, r);
    load_evaluations(reg, r);

    if (ckpt_failed) {
        char reason[REASON_MAX];
        str_printf(reason, sizeof reason, "checkpoint is unreadable: %s", err.message);
        set_state(reg, r, RUN_FAILED, reason, false);
    }
    if (r->state == RUN_RUNNING) { /* interrupted: resumes first */
        log_info("run %s was running when gand stopped; it resumes from %s", id,
                 r->checkpoint_epoch >= 0 ? "its last checkpoint" : "the start");
        r->state = RUN_QUEUED;
        r->queued_at = 1; /* ahead of every queued run */
    }
    if (r->created_at == 0)
        r->created_at = now_ms();
    return r;
}

static int cmp_queue(const void *a, const void *b)
{
    const run *x = *(run *const *)a, *y = *(run *const *)b;
    if (x->queued_at != y->queued_at)
        return x->queued_at < y->queued_at ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void load_runs(gand_registry *reg)
{
    DIR *d = opendir(reg->runs_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') {
            if (strncmp(e->d_name, ".deleted-", 9) == 0) { /* a delete that was interrupted */
                char p[PATH_MAX];
                str_printf(p, sizeof p, "%s/%s", reg->runs_dir, e->d_name);
                remove_tree(p);
            }
            continue;
        }
        if (!valid_run_id(e->d_name)) {
            log_warning("state directory: ignoring %s/%s (not a run id)", reg->runs_dir, e->d_name);
            continue;
        }
        char p[PATH_MAX];
        struct stat st;
        str_printf(p, sizeof p, "%s/%s", reg->runs_dir, e->d_name);
        if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        run *r = load_run(reg, e->d_name);
        if (!r || !run_insert_locked(reg, r)) {
            log_err("run %s: out of memory loading it", e->d_name);
            run_free(r);
            continue;
        }
        unsigned long long v;
        if (sscanf(r->id, "r%12llx", &v) == 1 && strlen(r->id) == 13 && v > reg->last_id_value)
            reg->last_id_value = v;
    }
    closedir(d);
    /* queue order: interrupted runs first, then by the time they were queued */
    run **q = reg->nruns ? malloc((size_t)reg->nruns * sizeof *q) : NULL;
    if (q) {
        memcpy(q, reg->runs, (size_t)reg->nruns * sizeof *q);
        qsort(q, (size_t)reg->nruns, sizeof *q, cmp_queue);
        for (int i = 0; i < reg->nruns; i++)
            q[i]->queue_seq = reg->next_queue_seq++;
        free(q);
    }
}

/* ---- data sets ---------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read only an IDX3 header (gzip or plain): the image count of 28×28 images; -1 with why. */
static int idx3_probe(const char *path, char *why, size_t len)
{
    gzFile f = gzopen(path, "rb");
    uint8_t h[16];
    if (!f) {
        str_printf(why, len, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    int got = gzread(f, h, sizeof h);
    gzclose(f);
    if (got != (int)sizeof h || be32(h) != 0x00000803u) {
        str_printf(why, len, "%s is not an IDX3 image file", path);
        return -1;
    }
    uint32_t n = be32(h + 4), rows = be32(h + 8), cols = be32(h + 12);
    if (n == 0 || n > INT_MAX || rows != GAN_IMAGE_ROWS || cols != GAN_IMAGE_COLS) {
        str_printf(why, len, "%s holds %u images of %u×%u; gand needs 28×28", path, n, rows, cols);
        return -1;
    }
    return (int)n;
}

/* "NAME/BASENAME": how a data set's file is named to clients (never the server path). */
static void data_name(const char *name, const char *path, char *out, size_t len)
{
    const char *base = strrchr(path, '/');
    str_printf(out, len, "%s/%s", name, base ? base + 1 : path);
}

/* The image count, and which images are trained on and which are held out. */
static void dataset_probe(dataset_info *d)
{
    int n = idx3_probe(d->entry.path, d->error, sizeof d->error);
    if (n < 0)
        return;
    d->images = n;
    d->rows = GAN_IMAGE_ROWS;
    d->cols = GAN_IMAGE_COLS;
    d->holdout = d->entry.holdout > 0 ? d->entry.holdout : 0;
    if (d->holdout >= n) {
        str_printf(d->error, sizeof d->error,
                   "holdout %d is not less than the %d images of %s: nothing is left to train on",
                   d->holdout, n, d->entry.path);
        return;
    }
    d->train_images = n - d->holdout;
    d->ok = true;
    data_name(d->entry.name, d->entry.path, d->train_name, sizeof d->train_name);
    d->has_test = d->entry.test_path[0] != '\0';
    int t = 0;
    if (d->has_test) {
        data_name(d->entry.name, d->entry.test_path, d->test_name, sizeof d->test_name);
        char why[sizeof d->eval_error];
        t = idx3_probe(d->entry.test_path, why, sizeof why);
        d->test_images = t > 0 ? t : 0;
        if (t < (d->holdout > 0 ? 1 : 2)) {
            str_printf(d->eval_error, sizeof d->eval_error, "its test file cannot be used: %s",
                       t < 0 ? why : "it holds too few images");
            return;
        }
    }
    gan_split_make(n, d->holdout, t, &d->split, NULL);
    if (!gan_split_evaluable(&d->split)) {
        str_printf(d->eval_error, sizeof d->eval_error,
                   "it holds out %s (set [datasets] %s.holdout = N, N ≥ 2, or %s.test = PATH "
                   "in gand.conf)",
                   d->holdout ? "only one image" : "no images", d->entry.name, d->entry.name);
        return;
    }
    str_printf(d->valid_name, sizeof d->valid_name, "%s",
               d->split.valid_in_test ? d->test_name : d->train_name);
    str_printf(d->eval_name, sizeof d->eval_name, "%s",
               d->split.test_in_test ? d->test_name : d->train_name);
    d->eval_ok = true;
}

static dataset_info *dataset_find_mut(gand_registry *reg, const char *name)
{
    for (int i = 0; i < reg->ndatasets; i++)
        if (strcmp(reg->datasets[i].entry.name, name) == 0)
            return &reg->datasets[i];
    return NULL;
}

/* Load a file once; it must still hold the images its header said at start-up. */
static int load_checked(const char *path, int expect, gan_dataset *out, bool *loaded,
                        gan_error *err)
{
    if (*loaded)
        return 0;
    if (gan_idx_load_images(path, out, err) != 0)
        return -1;
    if (out->count != expect) {
        gan_fail(err, "dataset",
                 "%s now holds %d images, not the %d it held when gand started; "
                 "restart gand after changing a data set's file",
                 path, out->count, expect);
        gan_dataset_free(out);
        return -1;
    }
    *loaded = true;
    return 0;
}

/* The worker's copy of a data set's training file, loaded on first use (worker thread only). */
static dataset_info *worker_dataset(gand_registry *reg, const char *name, gan_error *err)
{
    dataset_info *d = dataset_find_mut(reg, name);
    if (!d) {
        gan_fail(err, "dataset", "data set '%s' is not configured in this daemon", name);
        return NULL;
    }
    if (!d->ok) {
        gan_fail(err, "dataset", "data set '%s' cannot be used: %s", name, d->error);
        return NULL;
    }
    if (!d->is_loaded) {
        if (load_checked(d->entry.path, d->images, &d->loaded, &d->is_loaded, err) != 0)
            return NULL;
        log_info("data set %s: %d images loaded from %s (%d to train on)", name, d->loaded.count,
                 d->entry.path, d->train_images);
    }
    return d;
}

/* A data set ready to evaluate on: its training file, and its test file when it has one. */
static dataset_info *worker_eval_dataset(gand_registry *reg, const char *name, gan_error *err)
{
    dataset_info *d = worker_dataset(reg, name, err);
    if (!d)
        return NULL;
    if (!d->eval_ok) {
        gan_fail(err, "dataset", "data set '%s' cannot be evaluated on: %s", name, d->eval_error);
        return NULL;
    }
    if (d->has_test && !d->test_is_loaded) {
        if (load_checked(d->entry.test_path, d->test_images, &d->test_loaded, &d->test_is_loaded,
                         err) != 0)
            return NULL;
        log_info("data set %s: %d test images loaded from %s", name, d->test_loaded.count,
                 d->entry.test_path);
    }
    return d;
}

/* ---- generators and evaluations ------------------------------------------ */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The run's current G with a reference taken (release it): the published
 * snapshot, else — after a restart — G from the run's checkpoint, which
 * then becomes the snapshot. REG_CONFLICT when the run has neither yet.
 */
static reg_status run_generator(gand_registry *reg, run *r, g_snapshot **out, gan_error *err)
{
    *out = NULL;
    pthread_mutex_lock(&reg->lock);
    g_snapshot *s = r->snap;
    if (s)
        atomic_fetch_add(&s->refs, 1);
    bool from_checkpoint = !s && r->checkpoint_epoch >= 0;
    gan_config cfg = r->cfg;
    run_state state = r->state;
    pthread_mutex_unlock(&reg->lock);
    if (from_checkpoint) {
        char path[PATH_MAX];
        gan_checkpoint_position pos;
        float *g = NULL;
        run_path(r, "checkpoint.safetensors", path, sizeof path);
        if (gan_checkpoint_inspect(path, &cfg, &pos, &g, err) != 0)
            return REG_INTERNAL;
        s = snapshot_new(&cfg, pos.epoch);
        if (!s) {
            free(g);
            gan_fail(err, "", "out of memory");
            return REG_INTERNAL;
        }
        free(s->params);
        s->params = g;
        atomic_fetch_add(&s->refs, 1); /* one for the run, one for the caller */
        pthread_mutex_lock(&reg->lock);
        g_snapshot *old = NULL;
        if (!r->snap)
            r->snap = s;
        else
            old = s; /* someone published meanwhile: use ours once, keep theirs */
        pthread_mutex_unlock(&reg->lock);
        snapshot_release(old);
    }
    if (!s) {
        gan_fail(err, "",
                 "run %s has no generator yet (state %s): it is made when the run starts "
                 "training",
                 r->id, state_names[state]);
        return REG_CONFLICT;
    }
    *out = s;
    return REG_OK;
}

/* Queue an evaluation (reg->lock held); NULL when out of memory. Takes over `pinned`. */
static evaluation *eval_add_locked(gand_registry *reg, run *r, int samples, uint64_t seed,
                                   bool automatic, g_snapshot *pinned)
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
    e->automatic = automatic;
    e->pinned = pinned;
    e->created_at = now_ms();
    e->queue_seq = reg->next_eval_seq++;
    r->evals_pending++;
    reg->evals_queued++;
    pthread_cond_broadcast(&reg->work_cond);
    return e;
}

/* What an evaluation's state change writes: its evaluations.jsonl and events.jsonl lines. */
typedef struct eval_lines {
    char *eval_line;
    char *event_line;
} eval_lines;

/*
 * Record an evaluation's state change (r->io and reg->lock held): the
 * "evaluation" event in memory; the lines to append (with only r->io held)
 * come back for eval_store. persist: also a line of evaluations.jsonl.
 */
static eval_lines eval_record_locked(gand_registry *reg, run *r, const evaluation *e, bool persist)
{
    eval_lines l = {NULL, NULL};
    char *data = print_and_delete(eval_cjson(r, e));
    if (data) {
        if (persist)
            l.eval_line = strdup(data);
        l.event_line = event_line("evaluation", r->nmetrics, data);
    }
    event_add_locked(reg, r, "evaluation", data);
    return l;
}

/* Append what eval_record_locked produced (r->io held, reg->lock not). */
static void eval_store(run *r, eval_lines *l)
{
    char path[PATH_MAX];
    if (!r->removed && l->eval_line) {
        run_path(r, "evaluations.jsonl", path, sizeof path);
        if (gan_append_line(path, l->eval_line) != 0)
            log_err("run %s: cannot append to %s: %s", r->id, path, strerror(errno));
    }
    if (!r->removed && l->event_line) {
        run_path(r, "events.jsonl", path, sizeof path);
        if (gan_append_line(path, l->event_line) != 0)
            log_err("run %s: cannot append to %s: %s", r->id, path, strerror(errno));
    }
    free(l->eval_line);
    free(l->event_line);
    l->eval_line = l->event_line = NULL;
}

/*
 * The backend a run trains and evaluates on (worker thread only): the
 * worker's own for device "auto" or when it is the named one; otherwise the
 * other backend, opened on first use and kept, since a CUDA context belongs
 * to the thread that made it and is slow to make.
 */
static gk_backend *run_backend(gand_registry *reg, const gan_config *cfg, gan_error *err)
{
    const char *want = gan_device_name(cfg->device);
    if (cfg->device == GAN_DEVICE_AUTO || strcmp(reg->be->ops->name, want) == 0)
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

/*
 * Run the oldest queued evaluation of any run (worker thread only: it uses
 * the backend). Returns false when none is queued.
 */
static bool worker_evaluate_next(gand_registry *reg)
{
    pthread_mutex_lock(&reg->lock);
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
        pthread_mutex_unlock(&reg->lock);
        return false;
    }
    r->refs++;
    pthread_mutex_unlock(&reg->lock);

    pthread_mutex_lock(&r->io);
    pthread_mutex_lock(&reg->lock);
    evaluation *e = &r->evals[idx];
    if (r->removed || e->state != EVAL_QUEUED) {
        pthread_mutex_unlock(&reg->lock);
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
    char dataset[GAN_NAME_MAX];
    str_printf(dataset, sizeof dataset, "%s", r->cfg.dataset);
    eval_lines l = eval_record_locked(reg, r, e, false);
    pthread_mutex_unlock(&reg->lock);
    eval_store(r, &l);
    pthread_mutex_unlock(&r->io);

    atomic_store(&reg->eval_started_ms, mono_ms());
    gan_error err = {{0}, {0}};
    gan_parzen_result res;
    memset(&res, 0, sizeof res);
    dataset_info *d = NULL;
    int rc = -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (s || run_generator(reg, r, &s, &err) == REG_OK) {
        d = worker_eval_dataset(reg, dataset, &err);
        gk_backend *be = d ? run_backend(reg, &s->cfg, &err) : NULL;
        if (be)
            rc = gan_evaluate_parzen(be, &s->cfg, s->params, &d->loaded,
                                     d->has_test ? &d->test_loaded : NULL, &d->split, samples, seed,
                                     &res, &err);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    atomic_store(&reg->eval_started_ms, 0);

    pthread_mutex_lock(&r->io);
    pthread_mutex_lock(&reg->lock);
    e = &r->evals[idx];
    e->finished_at = now_ms();
    if (rc == 0) {
        e->state = EVAL_DONE;
        e->reason[0] = '\0';
        e->parzen_ll = res.mean_ll;
        e->stderr_ll = res.stderr_ll;
        e->sigma = res.sigma;
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
    r->evals_pending--;
    l = eval_record_locked(reg, r, e, true);
    pthread_mutex_unlock(&reg->lock);
    eval_store(r, &l);
    pthread_mutex_unlock(&r->io);
    if (rc == 0)
        log_info("run %s: evaluation %d (epoch %d, %d samples): Parzen log-likelihood %.2f ± %.2f "
                 "nats, sigma %.4f, %.1f s",
                 r->id, eid, s->epoch, samples, res.mean_ll, res.stderr_ll, res.sigma,
                 (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    else
        log_warning("run %s: evaluation %d failed: %s", r->id, eid, err.message);
    snapshot_release(s);
    run_put(reg, r);
    return true;
}

/* ---- the worker --------------------------------------------------------- */

/* The epoch's fixed-noise grid, samples/epoch-NNNNNN.png of the run. */
static int render_grid(const run *r, const g_snapshot *s, gan_error *err)
{
    char path[PATH_MAX];
    run_path(r, "samples", path, sizeof path);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return gan_fail(err, "samples", "cannot create %s: %s", path, strerror(errno));
    sample_path(r, s->epoch, path, sizeof path);
    return gan_epoch_grid_write(&s->cfg, s->params, path, err);
}

static g_snapshot *snapshot_from_trainer(gan_trainer *t, const gan_config *cfg, gan_error *err)
{
    g_snapshot *s = snapshot_new(cfg, gan_trainer_epoch(t));
    if (!s) {
        gan_fail(err, "", "out of memory copying the generator");
        return NULL;
    }
    if (gan_trainer_download_sampler(t, s->params, err) != 0) {
        snapshot_release(s);
        return NULL;
    }
    return s;
}

typedef struct worker_run {
    gand_registry *reg;
    run *r;
    gan_trainer *t;
    int saved_epoch, saved_iteration; /* position of the last checkpoint written */
    bool eval_warned;                 /* said once that evaluate_every cannot be served */
    /*
     * metrics.jsonl lacks the last epoch: no checkpoint may go past it, or a
     * restart would find a hole in the history. The run resumes from the
     * checkpoint before and trains those epochs again.
     */
    bool history_behind;
} worker_run;

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
    pthread_mutex_lock(&w->reg->lock);
    w->r->checkpoint_epoch = e;
    pthread_mutex_unlock(&w->reg->lock);
    persist_run(w->reg, w->r);
    return 0;
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

/* evaluate_every: queue an evaluation of the G just published (s, a reference is taken). */
static void worker_queue_auto_eval(worker_run *w, g_snapshot *s)
{
    gand_registry *reg = w->reg;
    run *r = w->r;
    eval_lines l = {NULL, NULL};
    pthread_mutex_lock(&r->io);
    pthread_mutex_lock(&reg->lock);
    const dataset_info *d = dataset_find(reg, r->cfg.dataset);
    if (!d || !d->eval_ok) {
        if (!w->eval_warned)
            log_warning("run %s: evaluate_every is %d, but data set '%s' cannot be evaluated "
                        "on: %s",
                        r->id, r->cfg.evaluate_every, r->cfg.dataset,
                        d ? (d->ok ? d->eval_error : d->error) : "it is not configured");
        w->eval_warned = true;
    } else {
        atomic_fetch_add(&s->refs, 1);
        evaluation *e = eval_add_locked(reg, r, GAN_EVAL_AUTO_SAMPLES, GAN_EVAL_AUTO_SEED, true, s);
        if (e)
            l = eval_record_locked(reg, r, e, true);
        else
            log_err("run %s: out of memory queueing an evaluation", r->id);
    }
    pthread_mutex_unlock(&reg->lock);
    eval_store(r, &l);
    pthread_mutex_unlock(&r->io);
}

/* Epoch end: metrics line, epoch event, snapshot, grid, periodic checkpoint. 1 = device failure. */
static int worker_end_epoch(worker_run *w, const gan_epoch_metrics *m, gan_error *err)
{
    gand_registry *reg = w->reg;
    run *r = w->r;
    const gan_config *live = gan_trainer_config(w->t);
    char line[1024], path[PATH_MAX];
    gan_epoch_metrics_json(m, line, sizeof line);
    run_path(r, "metrics.jsonl", path, sizeof path);

    pthread_mutex_lock(&reg->lock);
    bool stale = r->metrics_file_stale;
    pthread_mutex_unlock(&reg->lock);
    int wrote;
    if (stale) { /* an earlier append failed: rewrite the whole history, then this line */
        pthread_mutex_lock(&reg->lock);
        char *all = metrics_text_locked(r);
        pthread_mutex_unlock(&reg->lock);
        wrote = all && gan_write_file_atomic(path, all, strlen(all), err) == 0 &&
                        gan_append_line(path, line) == 0
                    ? 0
                    : -1;
        free(all);
    } else {
        wrote = gan_append_line(path, line);
    }
    int io_errno = errno;

    pthread_mutex_lock(&reg->lock);
    bool stored = grow((void **)&r->metrics, &r->metrics_cap, r->nmetrics + 1, sizeof *m);
    if (stored) {
        r->metrics[r->nmetrics++] = *m;
        r->iteration = 0;
        r->updated_at = now_ms();
        event_add_locked(reg, r, "epoch", strdup(line));
    }
    r->metrics_file_stale = wrote != 0;
    pthread_mutex_unlock(&reg->lock);
    if (!stored)
        return gan_fail(err, "", "out of memory recording epoch %d", m->epoch);
    if (wrote != 0) {
        w->history_behind = true;
        return gan_fail(err, "metrics", "cannot append to %s: %s", path, strerror(io_errno));
    }
    w->history_behind = false;

    g_snapshot *s = snapshot_from_trainer(w->t, live, err);
    if (!s)
        return 1;
    const gan_epoch_plan plan = gan_epoch_plan_for(live, m->epoch);
    if (plan.grid) {
        if (render_grid(r, s, err) != 0) {
            snapshot_release(s);
            return -1;
        }
        pthread_mutex_lock(&reg->lock);
        if ((r->nsamples == 0 || r->samples[r->nsamples - 1] < m->epoch) &&
            grow((void **)&r->samples, &r->samples_cap, r->nsamples + 1, sizeof(int)))
            r->samples[r->nsamples++] = m->epoch;
        pthread_mutex_unlock(&reg->lock);
    }
    if (plan.evaluate)
        worker_queue_auto_eval(w, s);
    snapshot_publish(reg, r, s);
    if (plan.checkpoint && worker_checkpoint(w, err) != 0)
        return -1;
    return 0;
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
    pthread_mutex_lock(&reg->lock);
    if (r->state == RUN_RUNNING && !reg->shutdown) {
        pthread_mutex_unlock(&reg->lock);
        pthread_mutex_unlock(&r->io);
        return false;
    }
    if (note && !r->reason[0])
        str_printf(r->reason, sizeof r->reason, "%s", note);
    r->active = false;
    r->iterations_per_epoch = 0;
    reg->current = NULL;
    pthread_cond_broadcast(&reg->event_cond); /* "ended" may now be true */
    pending_files p = prepare_files_locked(reg, r, false);
    pthread_mutex_unlock(&reg->lock);
    store_files(r, &p);
    pthread_mutex_unlock(&r->io);
    return true;
}

/* Build the trainer for a run, resuming from its checkpoint when there is one. */
static int worker_build(worker_run *w, gan_error *err)
{
    gand_registry *reg = w->reg;
    run *r = w->r;
    gan_config cfg;
    pthread_mutex_lock(&reg->lock);
    cfg = r->cfg;
    r->cfg_dirty = false;
    pthread_mutex_unlock(&reg->lock);
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
    pthread_mutex_lock(&reg->lock);
    str_printf(r->device, sizeof r->device, "%s", be->device);
    pthread_mutex_unlock(&reg->lock);
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
    char *rewrite = NULL;
    pthread_mutex_lock(&reg->lock);
    r->iteration = gan_trainer_iteration(w->t);
    r->iterations_per_epoch = gan_trainer_iterations_per_epoch(w->t);
    if (r->nmetrics > epoch) { /* history past the checkpoint is trained again */
        r->nmetrics = epoch;
        r->metrics_file_stale = true;
    }
    if (r->metrics_file_stale)
        rewrite = metrics_text_locked(r);
    pthread_mutex_unlock(&reg->lock);
    if (rewrite) {
        char path[PATH_MAX];
        run_path(r, "metrics.jsonl", path, sizeof path);
        int rc = gan_write_file_atomic(path, rewrite, strlen(rewrite), err);
        free(rewrite);
        if (rc != 0)
            return -2;
        pthread_mutex_lock(&reg->lock);
        r->metrics_file_stale = false;
        pthread_mutex_unlock(&reg->lock);
    }
    g_snapshot *s = snapshot_from_trainer(w->t, gan_trainer_config(w->t), err);
    if (!s)
        return -1;
    snapshot_publish(reg, r, s);
    return 0;
}

/* Train the run the worker holds until it completes, fails, pauses, stops or shutdown. */
static void worker_train(gand_registry *reg, run *r)
{
    worker_run w = {reg, r, NULL, -1, -1, false, false};
    gan_error err = {{0}, {0}};
    int rc = worker_build(&w, &err);
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
        pthread_mutex_lock(&reg->lock);
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
        pthread_mutex_unlock(&reg->lock);
        if (apply)
            gan_trainer_set_config(w.t, &next);
        if (evaluate) { /* between two iterations: evaluations of any run go first */
            worker_evaluate_next(reg);
            continue;
        }

        if (leave) {
            const char *note = NULL;
            char buf[REASON_MAX];
            if (w.history_behind) {
                log_warning("run %s: no checkpoint past the metrics that could not be written; "
                            "it resumes from its last checkpoint (epoch %d)",
                            r->id, w.saved_epoch);
            } else if (worker_checkpoint(&w, &err) != 0) {
                log_err("run %s: checkpoint failed: %s", r->id, err.message);
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
            pthread_mutex_lock(&reg->lock);
            r->state = RUN_COMPLETED;
            r->reason[0] = '\0';
            r->finished_at = now_ms();
            pending_files p = prepare_files_locked(reg, r, true);
            r->active = false;
            r->iterations_per_epoch = 0;
            reg->current = NULL;
            pthread_mutex_unlock(&reg->lock);
            store_files(r, &p);
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
        pthread_mutex_unlock(&reg->lock);
        pthread_mutex_lock(&best->io);
        pthread_mutex_lock(&reg->lock);
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
        best->cfg_dirty = false;
        if (!best->started_at)
            best->started_at = now_ms();
        reg->current = best;
        pending_files p = prepare_files_locked(reg, best, true);
        pthread_mutex_unlock(&reg->lock);
        store_files(best, &p);
        pthread_mutex_unlock(&best->io);
        pthread_mutex_lock(&reg->lock);
        return best;
    }
}

static void *worker_main(void *arg)
{
    gand_registry *reg = arg;
    char why[512];
    gk_backend *be = gk_backend_open(reg->device_req, why, sizeof why);
    pthread_mutex_lock(&reg->lock);
    str_printf(reg->be_why, sizeof reg->be_why, "%s", why);
    if (!be) {
        reg->worker_failed = true;
        pthread_cond_broadcast(&reg->start_cond);
        pthread_mutex_unlock(&reg->lock);
        return NULL;
    }
    reg->be = be;
    str_printf(reg->be_name, sizeof reg->be_name, "%s", be->ops->name);
    str_printf(reg->be_device, sizeof reg->be_device, "%s", be->device);
    reg->worker_ready = true;
    pthread_cond_broadcast(&reg->start_cond);
    log_info("worker: %s (%s)", why, be->device);

    while (!reg->shutdown) {
        atomic_fetch_add(&reg->heartbeat, 1);
        if (reg->evals_queued > 0) {
            pthread_mutex_unlock(&reg->lock);
            worker_evaluate_next(reg);
            pthread_mutex_lock(&reg->lock);
            continue;
        }
        run *r = worker_pick(reg);
        if (!r) {
            if (reg->shutdown)
                break;
            struct timespec dl = deadline_after_ms(IDLE_WAKE_MS);
            pthread_cond_timedwait(&reg->work_cond, &reg->lock, &dl);
            continue;
        }
        pthread_mutex_unlock(&reg->lock);
        worker_train(reg, r);
        pthread_mutex_lock(&reg->lock);
        run_put_locked(r);
        if (reg->be_alt && gk_backend_error(reg->be_alt)) {
            /* reopened when a run next names it */
            log_warning("worker: closing the %s backend after: %s", reg->be_alt->ops->name,
                        gk_backend_error(reg->be_alt));
            gk_backend_close(reg->be_alt);
            reg->be_alt = NULL;
        }
        if (gk_backend_error(reg->be)) {
            /* a failed device context is not trusted for the next run */
            pthread_mutex_unlock(&reg->lock);
            log_warning("worker: reopening the backend after: %s", gk_backend_error(reg->be));
            gk_backend_close(reg->be);
            gk_backend *nb = gk_backend_open(reg->device_req, why, sizeof why);
            pthread_mutex_lock(&reg->lock);
            reg->be = nb;
            if (!nb) {
                /* no heartbeat from here on: the watchdog restarts the daemon */
                log_err("worker: the backend cannot be reopened (%s); training stops", why);
                str_printf(reg->be_why, sizeof reg->be_why, "backend lost: %s", why);
                break;
            }
        }
    }
    reg->worker_exited = true;
    pthread_mutex_unlock(&reg->lock);
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
    return NULL;
}

/* ---- life cycle --------------------------------------------------------- */

static int make_dir(const char *path, gan_error *err)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return gan_fail(err, "state_dir", "cannot create %s: %s", path, strerror(errno));
    return 0;
}

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
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&reg->work_cond, &ca);
    pthread_cond_init(&reg->event_cond, &ca);
    pthread_cond_init(&reg->start_cond, &ca);
    pthread_condattr_destroy(&ca);
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
        }
    }
    uint64_t t = (uint64_t)now_ms();
    reg->last_id_value = 0;
    load_runs(reg);
    if (reg->last_id_value < t - 1)
        reg->last_id_value = t - 1;
    log_info("registry: %d runs loaded from %s", reg->nruns, reg->runs_dir);
    return reg;
}

int registry_start(gand_registry *r, gan_error *err)
{
    pthread_mutex_lock(&r->lock);
    if (r->worker_started) {
        pthread_mutex_unlock(&r->lock);
        return 0;
    }
    r->shutdown = false;
    r->worker_ready = r->worker_failed = r->worker_exited = false;
    if (pthread_create(&r->worker, NULL, worker_main, r) != 0) {
        pthread_mutex_unlock(&r->lock);
        return gan_fail(err, "", "cannot start the worker thread");
    }
    r->worker_started = true;
    while (!r->worker_ready && !r->worker_failed)
        pthread_cond_wait(&r->start_cond, &r->lock);
    bool failed = r->worker_failed;
    char why[sizeof r->be_why];
    str_printf(why, sizeof why, "%s", r->be_why);
    pthread_mutex_unlock(&r->lock);
    if (failed) {
        pthread_join(r->worker, NULL);
        pthread_mutex_lock(&r->lock);
        r->worker_started = false;
        pthread_mutex_unlock(&r->lock);
        return gan_fail(err, "device", "%s", why);
    }
    return 0;
}

void registry_shutdown(gand_registry *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    bool started = r->worker_started;
    r->shutdown = true;
    pthread_cond_broadcast(&r->work_cond);
    pthread_cond_broadcast(&r->event_cond);
    pthread_mutex_unlock(&r->lock);
    if (started) {
        pthread_join(r->worker, NULL);
        pthread_mutex_lock(&r->lock);
        r->worker_started = false;
        pthread_mutex_unlock(&r->lock);
        log_info("registry: worker stopped");
    }
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
    }
    free(r->datasets);
    pthread_cond_destroy(&r->work_cond);
    pthread_cond_destroy(&r->event_cond);
    pthread_cond_destroy(&r->start_cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ---- status ------------------------------------------------------------- */

void registry_backend_info(gand_registry *r, char *name, size_t nlen, char *device, size_t dlen,
                           char *why, size_t wlen)
{
    pthread_mutex_lock(&r->lock);
    if (name && nlen)
        str_printf(name, nlen, "%s", r->be_name);
    if (device && dlen)
        str_printf(device, dlen, "%s", r->be_device);
    if (why && wlen)
        str_printf(why, wlen, "%s", r->be_why[0] ? r->be_why : "the worker has not started");
    pthread_mutex_unlock(&r->lock);
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
    pthread_mutex_lock(&r->lock);
    int queued = 0;
    for (int i = 0; i < r->nruns; i++)
        queued += r->runs[i]->state == RUN_QUEUED;
    const run *c = r->current;
    if (c)
        str_printf(buf, len, "training run %s epoch %d/%d (iteration %d/%d), %d queued", c->id,
                   c->nmetrics, c->cfg.epochs, c->iteration, c->iterations_per_epoch, queued);
    else if (r->worker_exited && !r->shutdown)
        str_printf(buf, len, "worker stopped: %s", r->be_why);
    else if (!r->worker_started)
        str_printf(buf, len, "not training (worker not started), %d runs, %d queued", r->nruns,
                   queued);
    else
        str_printf(buf, len, "idle, %d runs, %d queued", r->nruns, queued);
    pthread_mutex_unlock(&r->lock);
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

reg_status registry_create_run(gand_registry *reg, const char *body, size_t len, char **run_json,
                               char *id_out, size_t id_len, gan_error *err)
{
    gan_config cfg;
    if (!body || (len == 0 && !body[0]))
        body = "{}", len = 2;
    if (gan_config_from_json(&cfg, body, len, err) != 0)
        return REG_INVALID;

    pthread_mutex_lock(&reg->lock);
    if (check_dataset_locked(reg, &cfg, err) != 0 || check_device_locked(reg, &cfg, err) != 0) {
        pthread_mutex_unlock(&reg->lock);
        return REG_INVALID;
    }
    if (reg->max_runs > 0 && reg->nruns >= reg->max_runs) {
        pthread_mutex_unlock(&reg->lock);
        return limit_error(reg, err);
    }
    uint64_t v = (uint64_t)now_ms();
    if (v <= reg->last_id_value)
        v = reg->last_id_value + 1;
    reg->last_id_value = v;
    pthread_mutex_unlock(&reg->lock);

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

    pthread_mutex_lock(&reg->lock);
    pending_files p = prepare_files_locked(reg, r, true);
    pthread_mutex_unlock(&reg->lock);
    bool ok = p.run_json && p.event_line;
    if (!ok || store_files(r, &p) != 0) {
        free(p.run_json);
        free(p.event_line);
        gan_fail(err, "", "cannot write the files of a new run under %s (see the log)",
                 reg->runs_dir);
        remove_tree(r->dir);
        run_free(r);
        return REG_INTERNAL;
    }

    pthread_mutex_lock(&reg->lock);
    if (reg->max_runs > 0 && reg->nruns >= reg->max_runs) { /* lost a race for the last place */
        pthread_mutex_unlock(&reg->lock);
        remove_tree(r->dir);
        run_free(r);
        return limit_error(reg, err);
    }
    if (reg->last_id_value < v)
        reg->last_id_value = v;
    r->queue_seq = reg->next_queue_seq++;
    if (!run_insert_locked(reg, r)) {
        pthread_mutex_unlock(&reg->lock);
        remove_tree(r->dir);
        run_free(r);
        return gan_fail(err, "", "out of memory"), REG_INTERNAL;
    }
    if (run_json)
        *run_json = print_and_delete(run_cjson_locked(reg, r));
    pthread_cond_broadcast(&reg->work_cond);
    pthread_mutex_unlock(&reg->lock);
    if (id_out && id_len)
        str_printf(id_out, id_len, "%s", id);
    log_info("run %s created (data set %s, %d epochs)", id, cfg.dataset, cfg.epochs);
    return REG_OK;
}

reg_status registry_list_runs(gand_registry *reg, char **json)
{
    pthread_mutex_lock(&reg->lock);
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "runs");
    for (int i = 0; i < reg->nruns; i++)
        cJSON_AddItemToArray(a, run_cjson_locked(reg, reg->runs[i]));
    pthread_mutex_unlock(&reg->lock);
    *json = print_and_delete(o);
    return *json ? REG_OK : REG_INTERNAL;
}

reg_status registry_get_run(gand_registry *reg, const char *id, char **json)
{
    *json = NULL;
    pthread_mutex_lock(&reg->lock);
    run *r = run_find_locked(reg, id);
    cJSON *o = r ? run_cjson_locked(reg, r) : NULL;
    pthread_mutex_unlock(&reg->lock);
    if (!r)
        return REG_NOT_FOUND;
    *json = print_and_delete(o);
    return *json ? REG_OK : REG_INTERNAL;
}

static reg_status not_found(const char *id, gan_error *err)
{
    if (valid_run_id(id))
        gan_fail(err, "id", "no run with id '%s'", id);
    else
        gan_fail(err, "id", "'%s' is not a run id (1 to %d characters of a-z, 0-9 and '-')",
                 id ? id : "", RUN_ID_MAX);
    return REG_NOT_FOUND;
}

reg_status registry_patch_run(gand_registry *reg, const char *id, const char *body, size_t len,
                              char **answer_json, gan_error *err)
{
    *answer_json = NULL;
    run *r = run_get(reg, id);
    if (!r)
        return not_found(id, err);
    if (!body || (len == 0 && !body[0]))
        body = "{}", len = 2;
    reg_status st = REG_OK;
    pthread_mutex_lock(&r->io);
    pthread_mutex_lock(&reg->lock);
    gan_config next = r->cfg;
    unsigned changed = 0;
    pending_files p = {NULL, NULL};
    if (r->removed) {
        st = not_found(id, err);
        goto out;
    }
    if (r->state == RUN_STOPPED || r->state == RUN_FAILED) {
        gan_fail(err, "", "cannot change the config of a run that is %s", state_names[r->state]);
        st = REG_CONFLICT;
        goto out;
    }
    if (gan_config_patch(&next, body, len, &changed, err) != 0) {
        st = REG_INVALID;
        goto out;
    }
    if ((changed & GAN_F_BATCH_SIZE) && check_dataset_locked(reg, &next, err) != 0) {
        st = REG_INVALID;
        goto out;
    }
    /* not yet started: the whole run uses the new values; else from the next step or epoch */
    bool fresh =
        r->state == RUN_QUEUED && !r->active && r->checkpoint_epoch < 0 && r->nmetrics == 0;
    cJSON *answer = cJSON_CreateObject();
    cJSON *names = cJSON_CreateArray();
    cJSON *applies = cJSON_CreateObject();
    cJSON *values = cJSON_CreateObject();
    cJSON *all = config_cjson(&next);
    for (unsigned bit = 1; bit & GAN_F_MUTABLE; bit <<= 1) {
        if (!(changed & bit))
            continue;
        const char *name = gan_field_name(bit);
        cJSON_AddItemToArray(names, cJSON_CreateString(name));
        cJSON_AddStringToObject(applies, name,
                                fresh                    ? "now"
                                : (bit & GAN_F_AT_EPOCH) ? "next_epoch"
                                                         : "next_iteration");
        cJSON *v = cJSON_GetObjectItemCaseSensitive(all, name);
        cJSON_AddItemToObject(values, name, v ? cJSON_Duplicate(v, true) : cJSON_CreateNull());
    }
    cJSON_Delete(all);
    if (changed) {
        r->cfg = next;
        r->cfg_dirty = true;
        cJSON *data = cJSON_CreateObject();
        cJSON_AddItemToObject(data, "changed", values);
        cJSON_AddItemToObject(data, "applies", cJSON_Duplicate(applies, true));
        add_time(data, "at", now_ms());
        char *d = print_and_delete(data);
        p = prepare_files_locked(reg, r, false);
        if (d)
            p.event_line = event_line("config", r->nmetrics, d);
        uint64_t seq = event_add_locked(reg, r, "config", d);
        cJSON_AddNumberToObject(answer, "event_seq", (double)seq);
    } else {
        cJSON_Delete(values);
        cJSON_AddNullToObject(answer, "event_seq");
    }
    cJSON_AddItemToObject(answer, "run", run_cjson_locked(reg, r));
    cJSON_AddItemToObject(answer, "changed", names);
    cJSON_AddItemToObject(answer, "applies", applies);
    *answer_json = print_and_delete(answer);
    if (changed)
        log_info("run %s: config patched", r->id);
out:
    pthread_mutex_unlock(&reg->lock);
    store_files(r, &p);
    pthread_mutex_unlock(&r->io);
    run_put(reg, r);
    if (st == REG_OK && !*answer_json)
        st = REG_INTERNAL;
    return st;
}

reg_status registry_control(gand_registry *reg, const char *id, const char *action, char **run_json,
                            gan_error *err)
{
    *run_json = NULL;
    enum { PAUSE, RESUME, STOP } act;
    if (action && strcmp(action, "pause") == 0)
        act = PAUSE;
    else if (action && strcmp(action, "resume") == 0)
        act = RESUME;
    else if (action && strcmp(action, "stop") == 0)
        act = STOP;
    else
        return gan_fail(err, "action", "action must be pause, resume or stop, got '%s'",
                        action ? action : ""),
               REG_INVALID;
    run *r = run_get(reg, id);
    if (!r)
        return not_found(id, err);
    reg_status st = REG_OK;
    pending_files p = {NULL, NULL};
    pthread_mutex_lock(&r->io);
    pthread_mutex_lock(&reg->lock);
    run_state s = r->state, to = s;
    if (r->removed) {
        st = not_found(id, err);
        goto out;
    }
    switch (act) {
    case PAUSE:
        if (s == RUN_RUNNING || s == RUN_QUEUED)
            to = RUN_PAUSED;
        break;
    case RESUME:
        if (s == RUN_PAUSED)
            to = r->active ? RUN_RUNNING : RUN_QUEUED;
        else if (s == RUN_COMPLETED && !r->active && r->cfg.epochs > r->nmetrics)
            to = RUN_QUEUED;
        else if (s == RUN_COMPLETED) {
            gan_fail(err, "",
                     "cannot resume a run that is completed: it has done all %d of its epochs; "
                     "raise epochs with PATCH first",
                     r->nmetrics);
            st = REG_CONFLICT;
            goto out;
        }
        break;
    case STOP:
        if (s == RUN_QUEUED || s == RUN_RUNNING || s == RUN_PAUSED)
            to = RUN_STOPPED;
        break;
    }
    if (to == s) {
        gan_fail(err, "", "cannot %s a run that is %s", action, state_names[s]);
        st = REG_CONFLICT;
        goto out;
    }
    r->state = to;
    r->reason[0] = '\0';
    if (to == RUN_QUEUED) {
        r->queue_seq = reg->next_queue_seq++;
        r->queued_at = now_ms();
        r->finished_at = 0;
        pthread_cond_broadcast(&reg->work_cond);
    }
    if (state_is_final(to))
        r->finished_at = now_ms();
    p = prepare_files_locked(reg, r, true);
    *run_json = print_and_delete(run_cjson_locked(reg, r));
    log_info("run %s: %s → %s (%s requested)", r->id, state_names[s], state_names[to], action);
out:
    pthread_mutex_unlock(&reg->lock);
    store_files(r, &p);
    pthread_mutex_unlock(&r->io);
    run_put(reg, r);
    if (st == REG_OK && !*run_json)
        st = REG_INTERNAL;
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
    pthread_mutex_lock(&reg->lock);
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
            pthread_cond_broadcast(&reg->event_cond);
        }
    }
    pthread_mutex_unlock(&reg->lock);
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
    sb b = {0};
    char line[1024];
    pthread_mutex_lock(&reg->lock);
    run *r = run_find_locked(reg, id);
    if (!r) {
        pthread_mutex_unlock(&reg->lock);
        return REG_NOT_FOUND;
    }
    sb_printf(&b, "{\"run\":\"%s\",\"since\":%d,\"epochs\":[", r->id, since);
    bool first = true;
    for (int i = since < r->nmetrics ? since : r->nmetrics; i < r->nmetrics; i++) {
        gan_epoch_metrics_json(&r->metrics[i], line, sizeof line);
        sb_puts(&b, first ? "" : ",");
        sb_puts(&b, line);
        first = false;
    }
    pthread_mutex_unlock(&reg->lock);
    sb_puts(&b, "]}");
    *json = sb_take(&b);
    return *json ? REG_OK : REG_INTERNAL;
}

reg_status registry_events(gand_registry *reg, const char *id, uint64_t after, int timeout_ms,
                           char **text, uint64_t *last, bool *ended)
{
    *text = NULL;
    *last = after;
    *ended = false;
    run *r = run_get(reg, id);
    if (!r)
        return REG_NOT_FOUND;
    struct timespec dl = deadline_after_ms(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&reg->lock);
    for (;;) {
        bool have = (uint64_t)r->nevents > after;
        bool done = state_is_final(r->state) && !r->active && r->evals_pending == 0;
        if (have || done || r->removed || reg->shutdown || timeout_ms <= 0)
            break;
        if (pthread_cond_timedwait(&reg->event_cond, &reg->lock, &dl) == ETIMEDOUT)
            break;
    }
    reg_status st = REG_OK;
    if (r->removed) {
        st = REG_NOT_FOUND;
    } else {
        sb b = {0};
        uint64_t n = (uint64_t)r->nevents;
        uint64_t i = after;
        for (; i < n && i < after + EVENTS_PER_CALL; i++)
            sb_printf(&b, "id: %" PRIu64 "\nevent: %s\ndata: %s\n\n", i + 1, r->events[i].kind,
                      r->events[i].data);
        if (i > after) {
            *text = sb_take(&b);
            if (!*text)
                st = REG_INTERNAL;
            else
                *last = i;
        } else {
            free(b.p);
        }
        *ended = st == REG_OK && state_is_final(r->state) && !r->active && r->evals_pending == 0 &&
                 *last >= n;
    }
    run_put_locked(r);
    pthread_mutex_unlock(&reg->lock);
    return st;
}

/* A request's image scale out of 1..GAN_PNG_MAX_SCALE: true, with err set. */
static bool bad_scale(int scale, gan_error *err)
{
    if (scale >= 1 && scale <= GAN_PNG_MAX_SCALE)
        return false;
    gan_fail(err, "scale", "scale must be an integer in 1..%d, got %d", GAN_PNG_MAX_SCALE, scale);
    return true;
}

/*
 * The start of every request that draws images from a run: the run held and
 * its generator's snapshot. On REG_OK give both back with generator_release.
 */
static reg_status generator_acquire(gand_registry *reg, const char *id, run **r, g_snapshot **s,
                                    gan_error *err)
{
    *s = NULL;
    *r = run_get(reg, id);
    if (!*r)
        return not_found(id, err);
    reg_status st = run_generator(reg, *r, s, err);
    if (st != REG_OK)
        run_put(reg, *r);
    return st;
}

static void generator_release(gand_registry *reg, run *r, g_snapshot *s)
{
    snapshot_release(s);
    run_put(reg, r);
}

reg_status registry_sample_png(gand_registry *reg, const char *id, int n, uint64_t seed, int scale,
                               uint8_t **png, size_t *len, gan_error *err)
{
    *png = NULL;
    *len = 0;
    if (n < 1 || n > reg->max_sample_n)
        return gan_fail(err, "n", "n must be an integer in 1..%d, got %d", reg->max_sample_n, n),
               REG_INVALID;
    if (bad_scale(scale, err))
        return REG_INVALID;
    run *r;
    g_snapshot *s;
    reg_status st = generator_acquire(reg, id, &r, &s, err);
    if (st != REG_OK)
        return st;
    float *z = malloc((size_t)n * (size_t)s->cfg.latent_dim * sizeof(float));
    float *img = malloc((size_t)n * GAN_IMAGE_PIXELS * sizeof(float));
    if (!z || !img) {
        gan_fail(err, "n", "out of memory rendering %d samples", n);
        st = REG_INTERNAL;
    } else {
        gan_fill_noise(&s->cfg, seed, GK_PURPOSE_REQUEST, n, z);
        if (gan_generate(&s->cfg, s->params, z, n, img, err) != 0 ||
            gan_png_grid_encode(img, n, GAN_IMAGE_ROWS, GAN_IMAGE_COLS, scale, png, len, err) != 0)
            st = REG_INTERNAL;
    }
    free(z);
    free(img);
    generator_release(reg, r, s);
    return st;
}

reg_status registry_epoch_png_path(gand_registry *reg, const char *id, int epoch, char *path,
                                   size_t len)
{
    pthread_mutex_lock(&reg->lock);
    run *r = run_find_locked(reg, id);
    bool found = false;
    for (int i = 0; r && i < r->nsamples && !found; i++)
        found = r->samples[i] == epoch;
    char p[PATH_MAX];
    if (found)
        sample_path(r, epoch, p, sizeof p);
    pthread_mutex_unlock(&reg->lock);
    if (!found || access(p, R_OK) != 0)
        return REG_NOT_FOUND;
    if ((size_t)str_printf(path, len, "%s", p) >= len)
        return REG_INTERNAL;
    return REG_OK;
}

reg_status registry_checkpoint_path(gand_registry *reg, const char *id, char *path, size_t len)
{
    pthread_mutex_lock(&reg->lock);
    run *r = run_find_locked(reg, id);
    char p[PATH_MAX];
    bool have = r && r->checkpoint_epoch >= 0;
    if (have)
        run_path(r, "checkpoint.safetensors", p, sizeof p);
    pthread_mutex_unlock(&reg->lock);
    if (!have || access(p, R_OK) != 0)
        return REG_NOT_FOUND;
    if ((size_t)str_printf(path, len, "%s", p) >= len)
        return REG_INTERNAL;
    return REG_OK;
}

reg_status registry_datasets(gand_registry *reg, char **json)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "datasets");
    for (int i = 0; i < reg->ndatasets; i++) { /* fixed after open: no lock needed */
        const dataset_info *d = &reg->datasets[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", d->entry.name);
        cJSON_AddNumberToObject(e, "images", d->ok ? d->images : 0);
        cJSON_AddNumberToObject(e, "rows", GAN_IMAGE_ROWS);
        cJSON_AddNumberToObject(e, "cols", GAN_IMAGE_COLS);
        cJSON_AddNumberToObject(e, "train_images", d->ok ? d->train_images : 0);
        cJSON_AddNumberToObject(e, "holdout", d->ok ? d->holdout : 0);
        if (d->has_test)
            cJSON_AddNumberToObject(e, "test_images", d->test_images);
        else
            cJSON_AddNullToObject(e, "test_images");
        cJSON_AddItemToObject(e, "split", split_cjson(d));
        if (!d->ok)
            cJSON_AddStringToObject(e, "error", "the data set's file cannot be read (see the log)");
        else if (!d->eval_ok)
            cJSON_AddStringToObject(e, "evaluation", d->eval_error);
        cJSON_AddItemToArray(a, e);
    }
    *json = print_and_delete(o);
    return *json ? REG_OK : REG_INTERNAL;
}

reg_status registry_prometheus(gand_registry *reg, char **text)
{
    sb b = {0};
    pthread_mutex_lock(&reg->lock);
    int counts[RUN_STATE_COUNT] = {0};
    for (int i = 0; i < reg->nruns; i++)
        counts[reg->runs[i]->state]++;
    sb_puts(&b, "# HELP gand_runs Runs known to the daemon, by state.\n"
                "# TYPE gand_runs gauge\n");
    for (int s = 0; s < RUN_STATE_COUNT; s++)
        sb_printf(&b, "gand_runs{state=\"%s\"} %d\n", state_names[s], counts[s]);
    sb_puts(&b, "# HELP gand_run_epochs_total Epochs a run has completed.\n"
                "# TYPE gand_run_epochs_total counter\n");
    for (int i = 0; i < reg->nruns; i++)
        sb_printf(&b, "gand_run_epochs_total{run=\"%s\"} %d\n", reg->runs[i]->id,
                  reg->runs[i]->nmetrics);
    sb_puts(&b, "# HELP gand_run_state The state a run is in (1 for its state).\n"
                "# TYPE gand_run_state gauge\n");
    for (int i = 0; i < reg->nruns; i++)
        sb_printf(&b, "gand_run_state{run=\"%s\",state=\"%s\"} 1\n", reg->runs[i]->id,
                  state_names[reg->runs[i]->state]);
    /* The last epoch's record (the d_* and g_* fields of /api/v1/runs/{id}/metrics), with
     * names spelled out: promtool reads a "_d_" as days. */
    static const struct {
        const char *name, *help;
        size_t offset;
    } gauges[] = {
        {"gand_run_discriminator_loss",
         "Discriminator loss of the last epoch: real plus fake loss (d_loss).",
         offsetof(gan_epoch_metrics, d_loss)},
        {"gand_run_discriminator_real_loss",
         "Mean binary cross-entropy of the discriminator on real images in the last epoch "
         "(d_real).",
         offsetof(gan_epoch_metrics, d_real)},
        {"gand_run_discriminator_fake_loss",
         "Mean binary cross-entropy of the discriminator on generated images in the last "
         "epoch (d_fake).",
         offsetof(gan_epoch_metrics, d_fake)},
        {"gand_run_generator_loss", "Generator loss of the last epoch (g_loss).",
         offsetof(gan_epoch_metrics, g_loss)},
        {"gand_run_discriminator_real_output",
         "Mean discriminator output D(x) on real images in the last epoch (d_x).",
         offsetof(gan_epoch_metrics, d_x)},
        {"gand_run_discriminator_fake_output",
         "Mean discriminator output D(G(z)) on generated images in the generator steps of "
         "the last epoch (d_g_z).",
         offsetof(gan_epoch_metrics, d_g_z)},
        {"gand_run_samples_per_second",
         "Training images per second in the last epoch (samples_per_sec).",
         offsetof(gan_epoch_metrics, samples_per_sec)},
    };
    for (size_t g = 0; g < sizeof gauges / sizeof gauges[0]; g++) {
        sb_printf(&b, "# HELP %s %s\n# TYPE %s gauge\n", gauges[g].name, gauges[g].help,
                  gauges[g].name);
        for (int i = 0; i < reg->nruns; i++) {
            const run *r = reg->runs[i];
            if (r->nmetrics == 0)
                continue;
            double v;
            memcpy(&v, (const char *)&r->metrics[r->nmetrics - 1] + gauges[g].offset, sizeof v);
            sb_printf(&b, "%s{run=\"%s\"} %.9g\n", gauges[g].name, r->id, v);
        }
    }
    sb_puts(&b, "# HELP gand_run_parzen_log_likelihood Mean Parzen-window log-likelihood of the "
                "held-out test images in the run's latest evaluation, nats.\n"
                "# TYPE gand_run_parzen_log_likelihood gauge\n");
    for (int i = 0; i < reg->nruns; i++) {
        const evaluation *e = last_done_locked(reg->runs[i]);
        if (e)
            sb_printf(&b, "gand_run_parzen_log_likelihood{run=\"%s\"} %.9g\n", reg->runs[i]->id,
                      e->parzen_ll);
    }
    sb_puts(&b, "# HELP gand_run_parzen_log_likelihood_stderr Standard error of "
                "gand_run_parzen_log_likelihood, nats.\n"
                "# TYPE gand_run_parzen_log_likelihood_stderr gauge\n");
    for (int i = 0; i < reg->nruns; i++) {
        const evaluation *e = last_done_locked(reg->runs[i]);
        if (e)
            sb_printf(&b, "gand_run_parzen_log_likelihood_stderr{run=\"%s\"} %.9g\n",
                      reg->runs[i]->id, e->stderr_ll);
    }
    sb_printf(&b,
              "# HELP gand_evaluations_queued Evaluations waiting for the worker.\n"
              "# TYPE gand_evaluations_queued gauge\n"
              "gand_evaluations_queued %d\n",
              reg->evals_queued);
    pthread_mutex_unlock(&reg->lock);
    *text = sb_take(&b);
    return *text ? REG_OK : REG_INTERNAL;
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
    eval_lines l = {NULL, NULL};
    pthread_mutex_lock(&r->io);
    pthread_mutex_lock(&reg->lock);
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
        evaluation *e = eval_add_locked(reg, r, samples, seed, false, NULL);
        if (!e) {
            gan_fail(err, "", "out of memory");
            st = REG_INTERNAL;
        } else {
            l = eval_record_locked(reg, r, e, true);
            *eval_json = print_and_delete(eval_cjson(r, e));
            if (eval_id)
                *eval_id = e->id;
            log_info("run %s: evaluation %d queued (%d samples, seed %" PRIu64 ")", r->id, e->id,
                     samples, seed);
        }
    }
    pthread_mutex_unlock(&reg->lock);
    eval_store(r, &l);
    pthread_mutex_unlock(&r->io);
    run_put(reg, r);
    if (st == REG_OK && !*eval_json)
        st = REG_INTERNAL;
    return st;
}

reg_status registry_evaluations(gand_registry *reg, const char *id, char **json)
{
    *json = NULL;
    pthread_mutex_lock(&reg->lock);
    run *r = run_find_locked(reg, id);
    cJSON *o = NULL;
    if (r) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "run", r->id);
        cJSON *a = cJSON_AddArrayToObject(o, "evaluations");
        for (int i = 0; i < r->nevals; i++)
            cJSON_AddItemToArray(a, eval_cjson(r, &r->evals[i]));
    }
    pthread_mutex_unlock(&reg->lock);
    if (!r)
        return REG_NOT_FOUND;
    *json = print_and_delete(o);
    return *json ? REG_OK : REG_INTERNAL;
}

reg_status registry_evaluation(gand_registry *reg, const char *id, int n, char **json,
                               gan_error *err)
{
    *json = NULL;
    pthread_mutex_lock(&reg->lock);
    run *r = run_find_locked(reg, id);
    cJSON *o = r && n >= 1 && n <= r->nevals ? eval_cjson(r, &r->evals[n - 1]) : NULL;
    int count = r ? r->nevals : 0;
    pthread_mutex_unlock(&reg->lock);
    if (!r)
        return not_found(id, err);
    if (!o)
        return gan_fail(err, "", "run %s has no evaluation %d (it has %d)", id, n, count),
               REG_NOT_FOUND;
    *json = print_and_delete(o);
    return *json ? REG_OK : REG_INTERNAL;
}

static uint8_t pixel_u8(float v)
{
    if (!(v > 0.0f)) /* also NaN */
        return 0;
    if (v >= 1.0f)
        return 255;
    return (uint8_t)(v * 255.0f + 0.5f);
}

reg_status registry_export_samples(gand_registry *reg, const char *id, int n, uint64_t seed,
                                   uint8_t **gz, size_t *len, gan_error *err)
{
    *gz = NULL;
    *len = 0;
    if (n < 1 || n > REG_EVAL_SAMPLES_MAX)
        return gan_fail(err, "n", "n must be an integer in 1..%d, got %d", REG_EVAL_SAMPLES_MAX, n),
               REG_INVALID;
    run *r;
    g_snapshot *s;
    reg_status st = generator_acquire(reg, id, &r, &s, err);
    if (st != REG_OK)
        return st;
    float *img = NULL;
    uint8_t *px = NULL;
    img = malloc((size_t)n * GAN_IMAGE_PIXELS * sizeof(float));
    px = malloc((size_t)n * GAN_IMAGE_PIXELS);
    if (!img || !px) {
        gan_fail(err, "n", "out of memory generating %d images", n);
        st = REG_INTERNAL;
        goto out;
    }
    /* the evaluation's noise: these are the images an evaluation with this seed scores */
    if (gan_generate_many(&s->cfg, s->params, n, seed, GK_PURPOSE_EVAL, img, err) != 0) {
        st = REG_INTERNAL;
        goto out;
    }
    for (size_t i = 0; i < (size_t)n * GAN_IMAGE_PIXELS; i++)
        px[i] = pixel_u8(img[i]);
    if (gan_idx_encode_images_gz(px, n, GAN_IMAGE_ROWS, GAN_IMAGE_COLS, gz, len, err) != 0)
        st = REG_INTERNAL;
out:
    free(img);
    free(px);
    generator_release(reg, r, s);
    return st;
}

reg_status registry_latent_dim(gand_registry *reg, const char *id, int *dim)
{
    pthread_mutex_lock(&reg->lock);
    run *r = run_find_locked(reg, id);
    if (r)
        *dim = r->cfg.latent_dim;
    pthread_mutex_unlock(&reg->lock);
    return r ? REG_OK : REG_NOT_FOUND;
}

/* images (n × 784) as {"epoch":E,"images":[[...],...]}, pixels in [0, 1]. */
static char *images_json(const float *img, int n, int epoch)
{
    sb b = {0};
    sb_printf(&b, "{\"epoch\":%d,\"images\":[", epoch);
    for (int k = 0; k < n; k++) {
        sb_puts(&b, k ? ",[" : "[");
        const float *p = img + (size_t)k * GAN_IMAGE_PIXELS;
        for (int i = 0; i < GAN_IMAGE_PIXELS; i++) {
            float v = p[i] > 0.0f ? (p[i] < 1.0f ? p[i] : 1.0f) : 0.0f; /* NaN → 0 */
            if (v == 0.0f || v == 1.0f)
                sb_puts(&b, v == 0.0f ? (i ? ",0" : "0") : (i ? ",1" : "1"));
            else
                sb_printf(&b, i ? ",%.5g" : "%.5g", (double)v);
        }
        sb_puts(&b, "]");
    }
    sb_puts(&b, "]}");
    return sb_take(&b);
}

reg_status registry_generate(gand_registry *reg, const char *id, const float *z, int n, int dim,
                             int scale, bool as_json, uint8_t **out, size_t *len, gan_error *err)
{
    *out = NULL;
    *len = 0;
    if (n < 1 || n > REG_GENERATE_MAX)
        return gan_fail(err, "z", "z must hold 1..%d latent vectors, got %d", REG_GENERATE_MAX, n),
               REG_INVALID;
    if (bad_scale(scale, err))
        return REG_INVALID;
    run *r;
    g_snapshot *s;
    reg_status st = generator_acquire(reg, id, &r, &s, err);
    if (st != REG_OK)
        return st;
    float *img = NULL;
    if (dim != s->cfg.latent_dim) {
        gan_fail(err, "z", "each latent vector must have %d numbers (the run's latent_dim), got %d",
                 s->cfg.latent_dim, dim);
        st = REG_INVALID;
        goto out;
    }
    img = malloc((size_t)n * GAN_IMAGE_PIXELS * sizeof(float));
    if (!img) {
        gan_fail(err, "z", "out of memory generating %d images", n);
        st = REG_INTERNAL;
        goto out;
    }
    if (gan_generate(&s->cfg, s->params, z, n, img, err) != 0) {
        st = REG_INTERNAL;
        goto out;
    }
    if (as_json) {
        char *text = images_json(img, n, s->epoch);
        if (!text) {
            gan_fail(err, "", "out of memory");
            st = REG_INTERNAL;
            goto out;
        }
        *out = (uint8_t *)text;
        *len = strlen(text);
    } else if (gan_png_grid_encode(img, n, GAN_IMAGE_ROWS, GAN_IMAGE_COLS, scale, out, len, err) !=
               0) {
        st = REG_INTERNAL;
    }
out:
    free(img);
    generator_release(reg, r, s);
    return st;
}

reg_status registry_interpolate(gand_registry *reg, const char *id, uint64_t from, uint64_t to,
                                int steps, int scale, uint8_t **png, size_t *len, gan_error *err)
{
    *png = NULL;
    *len = 0;
    if (steps < 2 || steps > REG_INTERPOLATE_MAX)
        return gan_fail(err, "steps", "steps must be an integer in 2..%d, got %d",
                        REG_INTERPOLATE_MAX, steps),
               REG_INVALID;
    if (bad_scale(scale, err))
        return REG_INVALID;
    run *r;
    g_snapshot *s;
    reg_status st = generator_acquire(reg, id, &r, &s, err);
    if (st != REG_OK)
        return st;
    float *ends = NULL, *z = NULL, *img = NULL;
    size_t L = (size_t)s->cfg.latent_dim;
    ends = malloc(2 * L * sizeof(float));
    z = malloc((size_t)steps * L * sizeof(float));
    img = malloc((size_t)steps * GAN_IMAGE_PIXELS * sizeof(float));
    if (!ends || !z || !img) {
        gan_fail(err, "steps", "out of memory");
        st = REG_INTERNAL;
        goto out;
    }
    gan_fill_noise(&s->cfg, from, GK_PURPOSE_REQUEST, 1, ends);
    gan_fill_noise(&s->cfg, to, GK_PURPOSE_REQUEST, 1, ends + L);
    for (int i = 0; i < steps; i++) {
        double t = (double)i / (double)(steps - 1);
        for (size_t j = 0; j < L; j++)
            z[(size_t)i * L + j] = (float)((1.0 - t) * ends[j] + t * ends[L + j]);
    }
    if (gan_generate(&s->cfg, s->params, z, steps, img, err) != 0 ||
        gan_png_grid_encode_cols(img, steps, GAN_IMAGE_ROWS, GAN_IMAGE_COLS, steps, scale, png, len,
                                 err) != 0)
        st = REG_INTERNAL;
out:
    free(ends);
    free(z);
    free(img);
    generator_release(reg, r, s);
    return st;
}
