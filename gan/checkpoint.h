/*
 * gan/checkpoint.h — the one owner of gand's checkpoint format.
 *
 * A checkpoint is a safetensors file (gan/safetensors.h) whose metadata holds
 * "format" = "gand-checkpoint-1", the run's config as JSON and the training
 * position, and whose tensors carry PyTorch state_dict names: G's and D's
 * weights ("generator.*", "discriminator.*"), the average of G's weights when
 * the run keeps one ("generator_ema.*"), the optimiser's buffers and the
 * epoch's loss accumulators. The trainer moves its state between the backend
 * and a gan_checkpoint_state; this module moves that state between host
 * memory and the file, and is the only code that knows the file's layout or
 * decides whether a checkpoint fits a run.
 */
#ifndef GAND_GAN_CHECKPOINT_H
#define GAND_GAN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "gan/config.h"
#include "gan/error.h"
#include "gan/safetensors.h"

/* Where training stood when the checkpoint was written. */
typedef struct gan_checkpoint_position {
    int epoch;            /* completed epochs */
    int iteration;        /* iterations done in the epoch in progress */
    int epoch_batch_size; /* batch size the epoch in progress started with */
    int64_t g_steps, d_steps, dropout_passes, d_steps_in_epoch;
    double epoch_seconds; /* training time of the epoch in progress so far */
} gan_checkpoint_position;

/*
 * Everything a trainer restores, in host memory: flat buffers laid out as
 * gan_generator_tensors / gan_discriminator_tensors say. g_v and d_v are
 * NULL under SGD (one momentum buffer per network), g_ema NULL when the run
 * keeps no average of G's weights.
 */
typedef struct gan_checkpoint_state {
    gan_config cfg;
    gan_checkpoint_position pos;
    size_t g_n, d_n, acc_n;
    float *g, *g_m, *g_v, *d, *d_m, *d_v, *g_ema, *acc;
} gan_checkpoint_state;

/* Write s to path atomically (PATH.tmp + rename). */
int gan_checkpoint_write(const char *path, const gan_checkpoint_state *s, gan_error *err);

/*
 * Read a checkpoint for a run whose config is `run` into *s: the buffers are
 * malloc'd (gan_checkpoint_state_free) and s->cfg is the saved config. Fails
 * (err names "checkpoint") when it is not a gand checkpoint, does not fit the
 * run's model (gan_checkpoint_fits), or any tensor or position is missing or
 * out of range; acc_n must be the trainer's count of accumulators.
 */
int gan_checkpoint_read(const char *path, const gan_config *run, size_t acc_n,
                        gan_checkpoint_state *s, gan_error *err);
void gan_checkpoint_state_free(gan_checkpoint_state *s);

/*
 * Whether a checkpoint saved with config `saved` holds the model of a run with
 * config `run`: the same network sizes, output, optimiser and whether G's
 * weights are averaged. 0, or -1 with err saying what differs.
 */
int gan_checkpoint_fits(const gan_config *saved, const gan_config *run, const char *path,
                        gan_error *err);

/* Just the config stored in a checkpoint. */
int gan_checkpoint_read_config(const char *path, gan_config *cfg, gan_error *err);

/*
 * Check that a checkpoint is whole and fits the run's model; read its
 * position, and the G to sample from into *g (malloc'd) when g is non-NULL.
 */
int gan_checkpoint_inspect(const char *path, const gan_config *run, gan_checkpoint_position *pos,
                           float **g, gan_error *err);

/*
 * G's weights to sample from (the average when the run keeps one and the file
 * has it; a plain state_dict from elsewhere has generator.* only) into out
 * (gan_generator_param_count floats; NULL only checks), from an open file.
 */
int gan_generator_from_file(const gan_st_file *f, const char *path, const gan_config *cfg,
                            float *out, gan_error *err);

/* The same from a file: *g malloc'd, *epoch the checkpoint's completed epochs. */
int gan_checkpoint_read_generator(const char *path, const gan_config *cfg, float **g, int *epoch,
                                  gan_error *err);

#endif
