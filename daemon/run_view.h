/*
 * daemon/run_view.h — what the registry hands out about runs and data sets:
 * plain data, copied out under its lock. api/run_json.c turns it into the
 * API's JSON; nothing here formats anything.
 */
#ifndef GAND_RUN_VIEW_H
#define GAND_RUN_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "gan/config.h"
#include "gan/trainer.h"
#include "gan/watch.h"

enum { GAND_NAME_MAX = 192, GAND_REASON_MAX = 512 };

/* A data set's split: the ranges runs train on and are evaluated on. */
typedef struct gand_split_view {
    bool ok;                        /* false: the data set cannot be read (the JSON says null) */
    bool eval_ok;                   /* validation and test both hold images */
    char train_data[GAND_NAME_MAX]; /* "NAME/BASENAME" of the training file */
    int train_images;
    char data[GAND_NAME_MAX];            /* the file the test range indexes */
    char validation_data[GAND_NAME_MAX]; /* … and the validation range's */
    int valid_begin, valid_end, test_begin, test_end;
} gand_split_view;

/* One configured data set (GET /api/v1/datasets). */
typedef struct gand_dataset_view {
    char name[64];
    bool ok;
    int images, rows, cols, train_images, holdout;
    bool has_test;
    int test_images;
    gand_split_view split;
    char classifier[GAND_NAME_MAX]; /* "" = none */
    char evaluation_error[400];     /* why it cannot be evaluated ("" = it can) */
} gand_dataset_view;

/* A run as the API shows it (registry.h documents the JSON). Owns its pointers. */
typedef struct gand_run_view {
    char id[64];
    const char *state;            /* "queued", "running", …: a static string */
    char reason[GAND_REASON_MAX]; /* "" = null */
    gan_config cfg;
    int epoch, iteration, iterations_per_epoch;
    bool has_metrics;
    gan_epoch_metrics last_metrics;
    int64_t created_at, started_at, updated_at, finished_at; /* ms since the epoch, 0 = null */
    int queue_position;                                      /* 0: not queued */
    char device[128];                                        /* "" = null */
    char executor[8];     /* "local" | "slurm"; "" = null (it never trained) */
    long slurm_job_id;    /* 0 = null */
    char slurm_state[24]; /* "" = null */
    char node[64];        /* "" = null */
    int *samples;         /* the epochs whose fixed-noise grid was saved */
    int nsamples;
    int checkpoint_epoch; /* -1: none */
    gand_split_view split;
    /* the latest finished evaluation, in the run store's own shape (evaluations.jsonl),
     * formatted by the registry after its lock; NULL = none */
    cJSON *last_evaluation;
    int best_epoch; /* -1: none */
    double best_fid;
    gan_alert *alerts; /* the newest GAND_RUN_VIEW_ALERTS, oldest first */
    int nalerts, alerts_total;
    /* files found damaged at start-up (an unreadable line), each kept aside as NAME.damaged */
    char damaged[4][24];
    int ndamaged;
} gand_run_view;

enum { GAND_RUN_VIEW_ALERTS = 10 }; /* alerts a run's JSON shows; events have them all */

/* What a PATCH did: the run after it, which fields changed, and when each applies. */
typedef struct gand_patch_view {
    gand_run_view run;
    unsigned changed;   /* GAN_F_* bits */
    bool fresh;         /* the run never started: every change applies now */
    uint64_t event_seq; /* of the "config" event (0 when nothing changed) */
} gand_patch_view;

void gand_run_view_free(gand_run_view *v);
void gand_run_views_free(gand_run_view *v, int n);

/* JSON helpers of whoever formats the views (and of the run store's own formats) */
void gand_json_string_or_null(cJSON *o, const char *name, const char *value); /* "" = null */
void gand_json_number_or_null(cJSON *o, const char *name, bool present, double value);
void gand_json_time(cJSON *o, const char *name, int64_t ms); /* RFC 3339 UTC; 0 = null */

#endif
