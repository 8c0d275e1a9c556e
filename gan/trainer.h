/*
 * gan/trainer.h — the reference GAN on a backend: parameters, one training
 * iteration, epochs, checkpoints, and sampling from a generator snapshot.
 *
 * A trainer owns its backend buffers and nothing else: no threads, no files
 * except the checkpoint path it is given, no global state. One thread at a
 * time may call it (the daemon's worker). The functions that take a config
 * and host weights (gan_generate, gan_fill_noise) are pure and may be called
 * from any thread.
 *
 * Progress is (epoch, iteration): `epoch` counts completed epochs, and
 * `iteration` counts iterations done in the current one. A checkpoint may be
 * taken between any two iterations and resumes bit-identically, because all
 * randomness is Philox keyed by (seed, purpose, step counter) and the epoch's
 * permutation is a function of (seed, epoch).
 */
#ifndef GAND_GAN_TRAINER_H
#define GAND_GAN_TRAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gan/config.h"
#include "gan/error.h"
#include "gan/idx.h"
#include "kernels/backend.h"

typedef struct gan_trainer gan_trainer;

/* One epoch's record: what a run reports per epoch. */
typedef struct gan_epoch_metrics {
    int epoch; /* 1-based number of the epoch just completed */
    int iterations;
    double d_real;  /* mean BCE(D(x), 1) over the epoch's D steps */
    double d_fake;  /* mean BCE(D(G(z)), 0) over the epoch's D steps */
    double d_loss;  /* d_real + d_fake */
    double g_loss;  /* mean G loss of the G steps (minimax: mean log(1 − D(G(z)))) */
    double d_x;     /* mean D(x) */
    double d_g_z;   /* mean D(G(z')) in the G steps */
    double seconds; /* training time of the epoch (pauses excluded) */
    double samples_per_sec;
    double lr_d, lr_g;
    int batch_size;
} gan_epoch_metrics;

/* Sizes of the flat parameter buffers for a config. */
size_t gan_generator_param_count(const gan_config *cfg);
size_t gan_discriminator_param_count(const gan_config *cfg);

/* Number of multiply-adds one training sample costs (about 17.8 M at the seed sizes). */
typedef struct gan_flops {
    double d_step, g_step, total; /* multiply-adds per sample */
} gan_flops;
gan_flops gan_flops_per_sample(const gan_config *cfg);

/*
 * Build a trainer: allocates on `be`, uploads the data set once, and
 * initialises the weights from cfg->seed (PyTorch's nn.Linear default).
 * The data set must hold at least one batch. `be` and `ds` are borrowed and
 * must outlive the trainer; ds may be freed after this returns (it is copied).
 */
gan_trainer *gan_trainer_new(gk_backend *be, const gan_config *cfg, const gan_dataset *ds,
                             gan_error *err);
void gan_trainer_free(gan_trainer *t);

const gan_config *gan_trainer_config(const gan_trainer *t);
int gan_trainer_epoch(const gan_trainer *t);     /* completed epochs */
int gan_trainer_iteration(const gan_trainer *t); /* iterations done in the current epoch */
int gan_trainer_iterations_per_epoch(const gan_trainer *t);
int64_t gan_trainer_g_steps(const gan_trainer *t); /* total G steps (= iterations) so far */
/* Iterations run by replaying a captured graph (0 on a backend without graphs): for tests. */
int64_t gan_trainer_graph_launches(const gan_trainer *t);

/*
 * Change the mutable fields (GAN_F_MUTABLE). Learning rates, betas, g_loss
 * and d_steps apply from the next iteration; batch_size from the next epoch
 * (the current epoch keeps its batch). Other fields of cfg are ignored.
 */
void gan_trainer_set_config(gan_trainer *t, const gan_config *cfg);

/*
 * One iteration: d_steps D steps then one G step on fresh noise. Must not be
 * called when the epoch is complete (call gan_trainer_finish_epoch).
 * Returns -1 with err on a backend failure.
 */
int gan_trainer_step(gan_trainer *t, gan_error *err);
bool gan_trainer_epoch_complete(const gan_trainer *t);

/*
 * Close the epoch: read the accumulated losses (the one host sync of an
 * epoch), fill *m, start the next epoch. Returns -1 with err when a loss is
 * not finite ("non-finite loss at epoch N") or the backend failed.
 */
int gan_trainer_finish_epoch(gan_trainer *t, gan_epoch_metrics *m, gan_error *err);

/* Copy G's flat parameters to host memory (gan_generator_param_count floats). */
int gan_trainer_download_generator(gan_trainer *t, float *host, gan_error *err);
/*
 * Copy the G to sample from to host memory: the average of G's weights when
 * the run keeps one (g_ema > 0), else G's weights themselves.
 */
int gan_trainer_download_sampler(gan_trainer *t, float *host, gan_error *err);
/* Copy D's flat parameters to host memory (for tests and tools). */
int gan_trainer_download_discriminator(gan_trainer *t, float *host, gan_error *err);

/*
 * Save a checkpoint (gan/checkpoint.h: safetensors, atomically). Legal between
 * any two iterations.
 */
int gan_trainer_save(gan_trainer *t, const char *path, gan_error *err);
/*
 * Load a checkpoint into a trainer built with the same immutable config.
 * Mutable fields stored in the checkpoint replace the trainer's.
 */
int gan_trainer_load(gan_trainer *t, const char *path, gan_error *err);

/* Fill z (n × latent_dim) with standard normals from (seed, purpose, 0). Pure. */
void gan_fill_noise(const gan_config *cfg, uint64_t seed, uint32_t purpose, int n, float *z);

/*
 * Run G on the host over host weights (gan/generate.c): z is n × latent_dim,
 * images n × 784 in [0,1] (clamped for display). Image i depends on z_i and
 * the weights only: the same bits whatever n, the thread count or the CPU.
 * Pure and thread-safe: request threads use it.
 */
int gan_generate(const gan_config *cfg, const float *g_params, const float *z, int n, float *images,
                 gan_error *err);

/* The PyTorch state_dict name, shape and offset of each tensor in the flat buffers. */
typedef struct gan_tensor_info {
    const char *name;
    int rows, cols; /* cols == 0 for a bias vector */
    size_t offset;  /* in floats, within the network's flat buffer */
} gan_tensor_info;
int gan_generator_tensors(const gan_config *cfg, gan_tensor_info out[6]);
int gan_discriminator_tensors(const gan_config *cfg, gan_tensor_info out[6]);

/* ---- for gradient checks in tests ---------------------------------------
 * Evaluate one network's loss on the current epoch's first batch (real
 * images from the permutation, noise from the current step counters) and its
 * gradient, without updating anything or advancing any counter, so repeated
 * calls see the same batch, noise and dropout mask. D: BCE(D(x),1) +
 * BCE(D(G(z)),0), gradient w.r.t. D's flat parameters. G: the configured G
 * loss, gradient w.r.t. G's flat parameters. grad_host may be NULL.
 */
int gan_trainer_eval_d_loss(gan_trainer *t, double *loss, float *grad_host, gan_error *err);
int gan_trainer_eval_g_loss(gan_trainer *t, double *loss, float *grad_host, gan_error *err);
/* Replace the parameters (host arrays of the param_count sizes; NULL keeps one). */
int gan_trainer_set_params(gan_trainer *t, const float *g_host, const float *d_host,
                           gan_error *err);

#endif
