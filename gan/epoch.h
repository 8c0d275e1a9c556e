/*
 * gan/epoch.h — what happens when an epoch ends, the same for every way of
 * running a GAN (`gand train` and the daemon's worker): the epoch record, and
 * on which epochs the fixed-noise grid is drawn, G is evaluated (with which
 * noise) and a checkpoint is written. The callers only carry the plan out.
 */
#ifndef GAND_GAN_EPOCH_H
#define GAND_GAN_EPOCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gan/config.h"
#include "gan/error.h"
#include "gan/trainer.h"

enum {
    GAN_GRID_SAMPLES = 100,       /* digits in the per-epoch grid (10 × 10) */
    GAN_GRID_SCALE = 2,           /* its upscale factor */
    GAN_EVAL_AUTO_SAMPLES = 10000 /* samples of the evaluate_every evaluations (the paper's) */
};
/* Samples of a watch evaluation: as many as the test images, at most GAN_EVAL_AUTO_SAMPLES. */
int gan_watch_samples(int test_images);
/* Noise seed of the evaluate_every evaluations (a request names its own). */
#define GAN_EVAL_AUTO_SEED UINT64_C(0)

typedef struct gan_epoch_plan {
    bool last;       /* the run's last epoch */
    bool grid;       /* draw the fixed-noise grid: every sample_every epochs and the last */
    bool evaluate;   /* Parzen evaluation: every evaluate_every epochs (not also the last) */
    bool watch;      /* watch evaluation (classifier metrics only): every watch_every epochs,
                        unless the evaluation above measures them already */
    bool checkpoint; /* every checkpoint_every epochs and the last */
} gan_epoch_plan;

/* The plan for the end of epoch `epoch` (1-based) under cfg. */
gan_epoch_plan gan_epoch_plan_for(const gan_config *cfg, int epoch);

/* One epoch record as a JSON object on one line (the metrics.jsonl format). */
void gan_epoch_metrics_json(const gan_epoch_metrics *m, char *buf, size_t len);
/* The same record as a cJSON object whose numbers print exactly as in that line. */
struct cJSON;
struct cJSON *gan_epoch_metrics_cjson(const gan_epoch_metrics *m);
/* Read a record back from such an object: -1 unless every field is a number. */
int gan_epoch_metrics_from_cjson(const struct cJSON *o, gan_epoch_metrics *m);

/*
 * The epoch's grid: GAN_GRID_SAMPLES digits from G (host weights) for the
 * run's fixed noise (cfg->seed, GK_PURPOSE_FIXED), written as a PNG to path.
 */
int gan_epoch_grid_write(const gan_config *cfg, const float *g_params, const char *path,
                         gan_error *err);

#endif
