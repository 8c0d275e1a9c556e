/*
 * gan/config.h — a run's configuration: presets, JSON in and out, validation,
 * and merge patches of the fields that may change while a run lives.
 *
 * JSON is parsed with cJSON. Every field is checked for its type and range;
 * an error names the field and the allowed range ("lr_d must be a number in
 * (0, 10], got -1"). Unknown fields are an error, never ignored. Fields
 * absent from a request take the preset's value (preset "seed" unless the
 * request names another), so `{}` is the reference run: a PyTorch re-implementation
 * of Goodfellow et al. 2014 on MNIST.
 */
#ifndef GAND_GAN_CONFIG_H
#define GAND_GAN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gan/error.h"
#include "gan/watch.h"

typedef enum gan_g_output { GAN_G_OUTPUT_RELU, GAN_G_OUTPUT_SIGMOID } gan_g_output;
typedef enum gan_g_loss { GAN_G_LOSS_NONSATURATING, GAN_G_LOSS_MINIMAX } gan_g_loss;
typedef enum gan_g_activation { GAN_G_ACT_RELU, GAN_G_ACT_LEAKY_RELU } gan_g_activation;
typedef enum gan_precision { GAN_PRECISION_FP32, GAN_PRECISION_TF32 } gan_precision;
typedef enum gan_device { GAN_DEVICE_AUTO, GAN_DEVICE_CPU, GAN_DEVICE_CUDA } gan_device;
typedef enum gan_noise { GAN_NOISE_NORMAL, GAN_NOISE_UNIFORM } gan_noise;
typedef enum gan_optimizer { GAN_OPT_ADAM, GAN_OPT_SGD } gan_optimizer;

enum { GAN_NAME_MAX = 64 };

typedef struct gan_config {
    char preset[GAN_NAME_MAX];  /* "seed" (default) */
    char dataset[GAN_NAME_MAX]; /* data set name known to the daemon, default "mnist" */
    int batch_size;             /* 1..65536, default 1024 */
    int epochs;                 /* 1..1000000, default 500 */
    int latent_dim;             /* 1..4096, default 100 */
    int g_hidden;               /* 1..16384, default 1200 */
    gan_g_output g_output;      /* "relu" | "sigmoid", default relu */
    int d_units;                /* 1..16384, default 240 */
    int d_pieces;               /* 1..64, default 5 */
    double d_dropout;           /* [0, 1), default 0.8 (probability of dropping) */
    double lr_d, lr_g;          /* (0, 10], default 1e-3 */
    double beta1, beta2;        /* [0, 1), default 0.9 / 0.999 */
    gan_g_loss g_loss;          /* "nonsaturating" | "minimax", default nonsaturating */
    int d_steps;                /* 1..100, default 1 */
    uint64_t seed;              /* 0..2^53, default 1 */
    int sample_every;           /* 0..1000000 epochs (0 = never), default 1 */
    int checkpoint_every;       /* 1..1000000 epochs, default 5 */
    int evaluate_every;         /* 0..1000000 epochs (0 = never), default 0 */
    int watch_every;            /* 0..1000000 epochs between watch evaluations (0 = never), 1 */
    gan_watch watch;            /* the watch rules (gan/watch.h), default one of each kind */
    gan_precision precision;    /* "fp32" | "tf32" (CUDA tensor cores for sgemm), default fp32 */
    gan_device device;          /* "auto" (the daemon's backend) | "cpu" | "cuda", default auto */

    /* The rest exists for preset "paper" (pylearn2's mnist.yaml) and the search
     * for preset "stable"; the seed defaults leave each one inactive. */
    gan_noise noise;               /* "normal" N(0,1) | "uniform" in ±√3 (unit variance) */
    double d_input_dropout;        /* [0, 1): drop probability of D's input pixels, default 0 */
    double d_final_dropout;        /* [0, 1): drop probability after maxout 2, default 0 */
    gan_g_activation g_activation; /* G's hidden units: "relu" | "leaky_relu" (slope 0.2) */
    double label_smoothing;        /* [0, 0.5): real target 1 − s in the D step, default 0 */
    double g_init_range;           /* [0, 10]: G weights uniform ±range; 0 = PyTorch default */
    double d_init_range;           /* [0, 10]: D weights uniform ±range; 0 = PyTorch default */
    double d_max_norm;             /* [0, 100]: D's weight rows clipped to this norm, 0 = none */
    gan_optimizer optimizer;       /* "adam" | "sgd" (with momentum), default adam */
    double momentum;               /* [0, 1): SGD momentum at the start, default 0.5 */
    double momentum_final;         /* [0, 1): reached linearly after momentum_epochs, default 0.7 */
    int momentum_epochs;           /* 0..1000000 (0: momentum stays), default 250 */
    double lr_decay;               /* [1, 2]: lr_t = max(lr / lr_decay^t, lr_min), default 1 */
    double lr_min;                 /* [0, 10], default 0 */
    double g_ema;                  /* [0, 1): decay of an average of G's weights, 0 = none */
} gan_config;

/* Bits naming fields, for patches: which changed, and the mutable set. */
enum gan_field_bit {
    GAN_F_BATCH_SIZE = 1u << 0,
    GAN_F_EPOCHS = 1u << 1,
    GAN_F_LR_D = 1u << 2,
    GAN_F_LR_G = 1u << 3,
    GAN_F_BETA1 = 1u << 4,
    GAN_F_BETA2 = 1u << 5,
    GAN_F_G_LOSS = 1u << 6,
    GAN_F_D_STEPS = 1u << 7,
    GAN_F_SAMPLE_EVERY = 1u << 8,
    GAN_F_CHECKPOINT_EVERY = 1u << 9,
    GAN_F_EVALUATE_EVERY = 1u << 10,
    GAN_F_WATCH_EVERY = 1u << 11,
    GAN_F_WATCH = 1u << 12,
};
/* Fields a patch may change; the rest are fixed when a run is created. */
#define GAN_F_MUTABLE 0x1FFFu
/* Of the mutable fields, those that apply at the next epoch (the rest: next iteration). */
#define GAN_F_AT_EPOCH (GAN_F_BATCH_SIZE)

/* Fill c with a preset's values. Returns -1 (err names "preset") for an unknown name. */
int gan_config_preset(gan_config *c, const char *preset, gan_error *err);

/* Names of the known presets, NULL-terminated. */
extern const char *const gan_config_presets[];

struct cJSON;

/*
 * Parse a run config: apply the preset it names ("preset" field, default
 * "seed"), then every other field. len may be 0 for a NUL-terminated string.
 */
int gan_config_from_json(gan_config *out, const char *json, size_t len, gan_error *err);
/*
 * The same from a parsed JSON object (a config inside another document, e.g.
 * run.json). Integer fields are judged on their digits when the tree was
 * parsed by gan_json_parse (gan/json_text.h), else on cJSON's doubles.
 */
int gan_config_from_cjson(gan_config *out, const struct cJSON *root, gan_error *err);

/* Range checks of every field (and of their combination, e.g. nothing). */
int gan_config_validate(const gan_config *c, gan_error *err);

/* The config as a JSON object string (malloc'd, caller frees). All fields, incl. preset. */
char *gan_config_to_json(const gan_config *c);
/* The same as a cJSON object (numbers as raw text, printed exactly as above); NULL on OOM. */
struct cJSON *gan_config_to_cjson(const gan_config *c);

/*
 * Apply a JSON merge patch (RFC 7396 object) of mutable fields to c. On any
 * error c is unchanged. *changed receives the GAN_F_* bits whose values
 * actually changed. A field that cannot change after creation is an error
 * naming it ("latent_dim cannot be changed after a run is created"); null
 * values are an error (fields cannot be removed).
 */
int gan_config_patch(gan_config *c, const char *json, size_t len, unsigned *changed,
                     gan_error *err);

/* The JSON name of a GAN_F_* bit. */
const char *gan_field_name(unsigned bit);
/*
 * When a patched field takes effect: "now" in a run that never started (fresh),
 * else "next_epoch" (GAN_F_AT_EPOCH) or "next_iteration".
 */
const char *gan_field_applies(unsigned bit, bool fresh);

const char *gan_g_output_name(gan_g_output o);
const char *gan_g_loss_name(gan_g_loss l);
/* "auto", "cpu" or "cuda": the backend name gk_backend_open takes. */
const char *gan_device_name(gan_device d);

/* Negative slope of G's hidden activation: 0 for relu, 0.2 for leaky_relu. */
float gan_config_g_slope(const gan_config *c);

/* The learning rate in force at a step (counting from 1) under lr_decay / lr_min. */
double gan_config_lr_at(const gan_config *c, double lr, int64_t step);
/* SGD momentum in force during an epoch (0-based), ramped per momentum_epochs. */
double gan_config_momentum_at(const gan_config *c, int epoch);

#endif
