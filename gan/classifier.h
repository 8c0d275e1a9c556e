/*
 * gan/classifier.h — a digit classifier: what evaluations of generated
 * digits look through (class probabilities; features for Fréchet distance
 * and precision/recall).
 *
 * The network is a fixed MLP, 784 → 512 → 128 → 10, ReLU after both hidden
 * layers, weights as PyTorch's nn.Linear stores them (W out × in). The
 * second hidden layer's ReLU output (GAN_CLASSIFIER_FEATURES = 128 wide) is
 * the feature space: small, so that statistics of 10,000 samples stay cheap.
 * Input pixels are scaled to [0, 1] (byte / 255), as gan/trainer.c feeds D
 * and G produces, so generated images go in as they are.
 *
 * Training is Adam on the softmax cross-entropy (softmax_ce), the learning
 * rate decaying geometrically per step, with dropout after each hidden layer
 * and each training image moved, turned and scaled a little at random every
 * epoch. All randomness is Philox keyed by the options' seed: weights
 * (GK_PURPOSE_INIT, step = tensor number, nn.Linear's default bounds), the
 * shuffle (gan_permutation: GK_PURPOSE_SHUFFLE, step = epoch), the dropout
 * masks (GK_PURPOSE_DROPOUT and GK_PURPOSE_DROPOUT_FINAL, step = batch
 * number) and the image transforms (GK_PURPOSE_AUGMENT, step = epoch). So a
 * rerun on the CPU gives the same bits (with the same BLAS thread count:
 * OpenBLAS's sums depend on it).
 *
 * A gan_classifier is host memory; every function that computes takes the
 * backend to compute on, borrows it for the call only, and leaves nothing on
 * it. One thread at a time per backend, as for every backend.
 */
#ifndef GAND_GAN_CLASSIFIER_H
#define GAND_GAN_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "gan/error.h"
#include "gan/idx.h"
#include "kernels/backend.h"

enum {
    GAN_CLASSIFIER_INPUTS = GAN_IMAGE_PIXELS,
    GAN_CLASSIFIER_HIDDEN = 512,   /* first hidden layer */
    GAN_CLASSIFIER_FEATURES = 128, /* second hidden layer: the features */
    GAN_CLASSIFIER_CLASSES = 10,
    GAN_CLASSIFIER_TENSORS = 6 /* W1 b1 W2 b2 W3 b3 */
};

/* A trained classifier and where it came from (all saved with it). */
typedef struct gan_classifier {
    float *params; /* gan_classifier_param_count() floats, tensors in gan_classifier_tensor order */
    /* what it was trained on, e.g. "mnist-train-images-idx3-ubyte.gz images 0..49999" */
    char dataset[256];
    int train_count; /* images trained on */
    int epochs;
    uint64_t seed;
    char training[512]; /* the other options, as JSON (gan_classifier_options) */
    double accuracy;    /* fraction of `accuracy_on` classified right; −1: not measured */
    char accuracy_on[256];
} gan_classifier;

/* Name, shape and offset (in floats) of tensor i < GAN_CLASSIFIER_TENSORS; cols 0: a bias. */
typedef struct gan_classifier_tensor {
    const char *name; /* "classifier.linear_1.weight", ... */
    int rows, cols;
    size_t offset;
} gan_classifier_tensor;
gan_classifier_tensor gan_classifier_tensor_info(int i);
size_t gan_classifier_param_count(void);

/* One epoch of training, as reported to on_epoch. */
typedef struct gan_classifier_epoch {
    int epoch;       /* 1-based */
    double loss;     /* mean cross-entropy over the epoch's batches (dropout on) */
    double accuracy; /* mean fraction right over the epoch's batches (dropout on) */
    double seconds;
} gan_classifier_epoch;

typedef struct gan_classifier_options {
    int epochs;      /* 1..10000 */
    int batch_size;  /* 1..65536; the last batch of an epoch may be smaller */
    uint64_t seed;   /* keys every random number */
    double lr;       /* Adam's learning rate at the first step (β 0.9, 0.999, ε 1e-8) */
    double lr_final; /* at the last step, decayed geometrically per step (gk_lr); 0 < it ≤ lr */
    double dropout;  /* p of dropping, after each hidden layer; 0..0.95 */
    /* each epoch each image is moved by up to ± shift pixels (0..4), turned by up to
     * ± rotate degrees (0..45) and scaled by 1 ± scale (0..0.5); all 0: as it is */
    double shift, rotate, scale;
    /* called after every epoch when non-NULL (on the caller's thread) */
    void (*on_epoch)(const gan_classifier_epoch *e, void *user);
    void *user;
} gan_classifier_options;

/* The options the committed classifiers were trained with (data/README.md; the
 * mnist-10k one with 80 epochs instead of 30). */
void gan_classifier_options_default(gan_classifier_options *o);

/*
 * Train a classifier from the options on n images (pixels: n × 784 bytes,
 * row-major) with labels 0..9, on `be`. out receives the weights and the
 * provenance fields it can know (train_count, epochs, seed, training;
 * dataset "" and accuracy −1 for the caller to fill). Fails, naming the field,
 * on a label out of range ("labels"), no images ("images"), an option out of
 * range (its name; "augment" for shift, rotate and scale), a loss gone
 * non-finite ("loss") or a backend failure ("backend").
 */
int gan_classifier_train(gk_backend *be, const uint8_t *pixels, const uint8_t *labels, int n,
                         const gan_classifier_options *opt, gan_classifier *out, gan_error *err);

/*
 * The classifier on n images (n × 784 floats in [0, 1], host memory), in
 * batches on `be`: probs (n × 10, rows summing to 1) and features (n × 128,
 * the second hidden layer after its ReLU), each optional (NULL). Dropout is
 * off. Meant for thousands of images at a time (an evaluation's samples).
 */
int gan_classifier_forward(gk_backend *be, const gan_classifier *c, const float *images, int n,
                           float *probs, float *features, gan_error *err);

/*
 * Fraction of n images (bytes, as in a gan_dataset) whose most probable class
 * (ties to the lowest) is their label; labels 0..9.
 */
int gan_classifier_accuracy(gk_backend *be, const gan_classifier *c, const uint8_t *pixels,
                            const uint8_t *labels, int n, double *accuracy, gan_error *err);

/*
 * safetensors (gan/safetensors.h), written atomically: the six float32
 * tensors and metadata format "gand-classifier-1", architecture, dataset,
 * train_count, epochs, seed, training, accuracy, accuracy_on.
 */
int gan_classifier_save(const gan_classifier *c, const char *path, gan_error *err);
/* Read a file gan_classifier_save wrote; checks format, names and shapes. */
int gan_classifier_load(const char *path, gan_classifier *out, gan_error *err);
void gan_classifier_free(gan_classifier *c);

#endif
