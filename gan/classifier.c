/*
 * gan/classifier.c — the digit classifier (gan/classifier.h): training,
 * the batched forward pass, accuracy, and its safetensors file.
 *
 * Training keeps everything on the backend that an epoch touches: the
 * images (bytes, uploaded once, or once per epoch when augmented), the
 * epoch's permutation, the labels in permutation order (so batch b's labels
 * are one contiguous slice and no gather op for integers is needed), the
 * flat parameters, gradients and Adam moments, and two loss accumulators
 * read once per epoch. The layers are gan/layers.h's, the ops the same the
 * GAN uses (sgemm, bias_relu, dropout, Adam) plus softmax_ce.
 *
 * Why augmentation: trained on mnist-10k's 8,000 digits the MLP alone gets
 * about 95 % of the 2,000 held out right, short of the 97 % asked of it.
 * Moving each digit by up to two pixels, turning it by up to 10° and scaling
 * it by up to 10 % each epoch (what a convolutional net would not need) lifts
 * it to about 97.8 % over 80 epochs (seeds 1-3: 97.85, 97.80, 97.65 %). The
 * images are transformed on the host, from Philox, because that is a few
 * multiply-adds per pixel, cheap next to an epoch's matrix products.
 *
 * The forward pass (evaluations: thousands of generated images on the
 * worker's backend) uploads the weights once per call and walks the images
 * in batches of GAN_CLASSIFIER_BATCH rows.
 */
#include "gan/classifier.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gan/layers.h"
#include "gan/safetensors.h"
#include "kernels/elementwise.h"

#define CLASSIFIER_FORMAT "gand-classifier-1"
#define CLASSIFIER_ARCHITECTURE                                                                    \
    "mlp 784-512-128-10, relu after both hidden layers; input pixel/255; features: the "           \
    "128-wide hidden layer after its relu"

enum { GAN_CLASSIFIER_BATCH = 1024 }; /* rows per forward batch */

static const char *const tensor_names[GAN_CLASSIFIER_TENSORS] = {
    "classifier.linear_1.weight", "classifier.linear_1.bias",   "classifier.linear_2.weight",
    "classifier.linear_2.bias",   "classifier.linear_3.weight", "classifier.linear_3.bias"};

gan_classifier_tensor gan_classifier_tensor_info(int i)
{
    static const int rows[3] = {GAN_CLASSIFIER_HIDDEN, GAN_CLASSIFIER_FEATURES,
                                GAN_CLASSIFIER_CLASSES};
    static const int cols[3] = {GAN_CLASSIFIER_INPUTS, GAN_CLASSIFIER_HIDDEN,
                                GAN_CLASSIFIER_FEATURES};
    gan_classifier_tensor t = {tensor_names[i], rows[i / 2], i % 2 ? 0 : cols[i / 2], 0};
    for (int j = 0; j < i; j++) {
        gan_classifier_tensor p = gan_classifier_tensor_info(j);
        t.offset += (size_t)p.rows * (size_t)(p.cols ? p.cols : 1);
    }
    return t;
}

size_t gan_classifier_param_count(void)
{
    gan_classifier_tensor last = gan_classifier_tensor_info(GAN_CLASSIFIER_TENSORS - 1);
    return last.offset + (size_t)last.rows;
}

void gan_classifier_options_default(gan_classifier_options *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 30;
    o->batch_size = 100;
    o->seed = 1;
    o->lr = 1e-3;
    o->lr_final = 1e-4;
    o->dropout = 0.2;
    o->shift = 2.0;
    o->rotate = 10.0;
    o->scale = 0.1;
}

void gan_classifier_free(gan_classifier *c)
{
    if (!c)
        return;
    free(c->params);
    c->params = NULL;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int backend_check(gk_backend *be, const char *what, gan_error *err)
{
    const char *e = gk_backend_error(be);
    if (!e)
        return 0;
    return gan_fail(err, "backend", "classifier %s failed on the %s backend: %s", what,
                    be->ops->name, e);
}

/* Frees the non-NULL backend buffers among ptrs[0..n). */
static void free_all(gk_backend *be, void **ptrs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ptrs[i])
            be->ops->free(be, ptrs[i]);
}

/* The layer activations of one batch of up to `cap` rows, on the backend. */
typedef struct activations {
    float *x, *h1, *h2, *logits;
} activations;

/*
 * Forward through the three layers for `rows` rows of a->x, with dropout
 * masks (training) or without (mask1 == NULL). W is the flat parameter buffer.
 */
static void forward(gk_backend *be, const float *W, activations *a, int rows, float *mask1,
                    float *mask2, float p, uint64_t seed, int64_t pass)
{
    gan_classifier_tensor t[GAN_CLASSIFIER_TENSORS];
    for (int i = 0; i < GAN_CLASSIFIER_TENSORS; i++)
        t[i] = gan_classifier_tensor_info(i);
    const int P = GAN_CLASSIFIER_INPUTS, H = GAN_CLASSIFIER_HIDDEN, F = GAN_CLASSIFIER_FEATURES,
              K = GAN_CLASSIFIER_CLASSES;
    gan_matmul_wt(be, a->h1, a->x, W + t[0].offset, rows, P, H);
    be->ops->bias_relu(be, a->h1, a->h1, W + t[1].offset, rows, H, 0.0f);
    if (mask1) {
        gk_rng r = {seed, GK_PURPOSE_DROPOUT, gk_step_value(pass)};
        be->ops->dropout_forward(be, a->h1, mask1, a->h1, (size_t)rows * H, p, r);
    }
    gan_matmul_wt(be, a->h2, a->h1, W + t[2].offset, rows, H, F);
    be->ops->bias_relu(be, a->h2, a->h2, W + t[3].offset, rows, F, 0.0f);
    if (mask2) {
        gk_rng r = {seed, GK_PURPOSE_DROPOUT_FINAL, gk_step_value(pass)};
        be->ops->dropout_forward(be, a->h2, mask2, a->h2, (size_t)rows * F, p, r);
    }
    gan_linear_forward(be, a->logits, a->h2, W + t[4].offset, W + t[5].offset, rows, F, K);
}

/* ---- training ------------------------------------------------------------- */

static int check_options(const gan_classifier_options *o, gan_error *err)
{
    if (o->epochs < 1 || o->epochs > 10000)
        return gan_fail(err, "epochs", "epochs must be an integer in 1..10000, got %d", o->epochs);
    if (o->batch_size < 1 || o->batch_size > 65536)
        return gan_fail(err, "batch_size", "batch_size must be an integer in 1..65536, got %d",
                        o->batch_size);
    if (!(o->lr > 0 && o->lr <= 1))
        return gan_fail(err, "lr", "lr must be a number in (0, 1], got %g", o->lr);
    if (!(o->lr_final > 0 && o->lr_final <= o->lr))
        return gan_fail(err, "lr_final", "lr_final must be a number in (0, lr = %g], got %g", o->lr,
                        o->lr_final);
    if (!(o->dropout >= 0 && o->dropout <= 0.95))
        return gan_fail(err, "dropout", "dropout must be a number in [0, 0.95], got %g",
                        o->dropout);
    if (!(o->shift >= 0 && o->shift <= 4) || !(o->rotate >= 0 && o->rotate <= 45) ||
        !(o->scale >= 0 && o->scale <= 0.5))
        return gan_fail(err, "augment",
                        "shift must be in [0, 4] pixels, rotate in [0, 45] degrees and scale in "
                        "[0, 0.5], got %g, %g and %g",
                        o->shift, o->rotate, o->scale);
    return 0;
}

/*
 * Each image moved, turned and scaled at random about its centre: shift
 * (dx, dy) uniform in ±shift pixels, angle uniform in ±rotate degrees, scale
 * uniform in 1 ± scale, all four from one Philox block (seed,
 * GK_PURPOSE_AUGMENT, epoch, image). Each output pixel samples the input
 * bilinearly at the inverse-mapped point (0 outside), rounded to a byte.
 */
static void augment_images(uint8_t *out, const uint8_t *in, int n, const gan_classifier_options *o,
                           int epoch)
{
    const int R = GAN_IMAGE_ROWS, C = GAN_IMAGE_COLS;
    const double cy = (R - 1) / 2.0, cx = (C - 1) / 2.0, pi = 3.14159265358979323846;
    for (int i = 0; i < n; i++) {
        gk_philox4 r = gk_philox_block(o->seed, GK_PURPOSE_AUGMENT, (uint32_t)epoch, (uint64_t)i);
        double u[4];
        for (int k = 0; k < 4; k++) /* in [−1, 1) */
            u[k] = 2.0 * ((double)r.v[k] * (1.0 / 4294967296.0)) - 1.0;
        const double dx = o->shift * u[0], dy = o->shift * u[1];
        const double angle = o->rotate * u[2] * pi / 180.0, zoom = 1.0 + o->scale * u[3];
        /* output (x, y) reads input centre + R(−angle)·((x, y) − centre − shift) / zoom */
        const double ca = cos(angle) / zoom, sa = sin(angle) / zoom;
        const uint8_t *src = in + (size_t)i * GAN_IMAGE_PIXELS;
        uint8_t *dst = out + (size_t)i * GAN_IMAGE_PIXELS;
        for (int y = 0; y < R; y++)
            for (int x = 0; x < C; x++) {
                const double px = x - cx - dx, py = y - cy - dy;
                const double sx = cx + ca * px + sa * py, sy = cy - sa * px + ca * py;
                const int x0 = (int)floor(sx), y0 = (int)floor(sy);
                const double fx = sx - x0, fy = sy - y0;
                double v = 0.0;
                for (int k = 0; k < 4; k++) {
                    const int xx = x0 + (k & 1), yy = y0 + (k >> 1);
                    if (xx < 0 || xx >= C || yy < 0 || yy >= R)
                        continue;
                    const double w = ((k & 1) ? fx : 1.0 - fx) * ((k >> 1) ? fy : 1.0 - fy);
                    v += w * src[yy * C + xx];
                }
                dst[y * C + x] = (uint8_t)(v + 0.5 < 255.0 ? v + 0.5 : 255.0);
            }
    }
}

/* Everything a training run holds on the backend. */
typedef struct trainer {
    gk_backend *be;
    size_t np;
    float *p, *g, *m, *v;   /* parameters, gradients, Adam's moments */
    uint8_t *pixels;        /* n × 784 bytes: the images (as this epoch moved them) */
    int32_t *perm, *labels; /* the epoch's order, and the labels in that order */
    float *mask1, *mask2;   /* dropout masks */
    float *dlogits, *dh2, *dh1;
    float *acc; /* loss and accuracy sums of the epoch's batches */
    gk_lr lr;   /* the schedule: lr at step 1, lr_final at the last */
    activations a;
} trainer;

static void trainer_free(trainer *t)
{
    void *ptrs[] = {t->p,      t->g,     t->m,     t->v,       t->pixels,  t->perm,
                    t->labels, t->mask1, t->mask2, t->dlogits, t->dh2,     t->dh1,
                    t->acc,    t->a.x,   t->a.h1,  t->a.h2,    t->a.logits};
    free_all(t->be, ptrs, sizeof ptrs / sizeof ptrs[0]);
}

static int trainer_alloc(trainer *t, int n, int B)
{
    gk_backend *be = t->be;
    const size_t b = (size_t)B, P = GAN_CLASSIFIER_INPUTS, H = GAN_CLASSIFIER_HIDDEN,
                 F = GAN_CLASSIFIER_FEATURES, K = GAN_CLASSIFIER_CLASSES;
    t->np = gan_classifier_param_count();
#define ALLOC(ptr, count) (ptr) = be->ops->alloc(be, (size_t)(count) * sizeof *(ptr))
    ALLOC(t->p, t->np);
    ALLOC(t->g, t->np);
    ALLOC(t->m, t->np);
    ALLOC(t->v, t->np);
    ALLOC(t->pixels, (size_t)n * P);
    ALLOC(t->perm, n);
    ALLOC(t->labels, n);
    ALLOC(t->mask1, b * H);
    ALLOC(t->mask2, b * F);
    ALLOC(t->dlogits, b * K);
    ALLOC(t->dh2, b * F);
    ALLOC(t->dh1, b * H);
    ALLOC(t->acc, 2);
    ALLOC(t->a.x, b * P);
    ALLOC(t->a.h1, b * H);
    ALLOC(t->a.h2, b * F);
    ALLOC(t->a.logits, b * K);
#undef ALLOC
    return gk_backend_error(be) ? -1 : 0;
}

/* One batch: forward with dropout, softmax_ce, backward, one Adam step (t from 1). */
static void train_batch(trainer *t, const gan_classifier_options *o, int64_t batch_no, int first,
                        int rows)
{
    gk_backend *be = t->be;
    gan_classifier_tensor ti[GAN_CLASSIFIER_TENSORS];
    for (int i = 0; i < GAN_CLASSIFIER_TENSORS; i++)
        ti[i] = gan_classifier_tensor_info(i);
    const int P = GAN_CLASSIFIER_INPUTS, H = GAN_CLASSIFIER_HIDDEN, F = GAN_CLASSIFIER_FEATURES,
              K = GAN_CLASSIFIER_CLASSES;
    const float p = (float)o->dropout;
#define WP(i) (t->p + ti[i].offset)
#define WG(i) (t->g + ti[i].offset)
    be->ops->gather_rows_u8(be, t->a.x, t->pixels, t->perm + first, rows, P, 1.0f / 255.0f,
                            gk_step_value(0), 1);
    forward(be, t->p, &t->a, rows, t->mask1, t->mask2, p, o->seed, batch_no);
    be->ops->softmax_ce(be, t->dlogits, t->acc, t->a.logits, t->labels + first, rows, K, 1.0f);
    gan_linear_backward(be, t->dh2, WG(4), WG(5), t->dlogits, t->a.h2, WP(4), rows, F, K, false);
    be->ops->dropout_backward(be, t->dh2, t->dh2, t->mask2, (size_t)rows * F);
    be->ops->relu_backward(be, t->dh2, t->dh2, t->a.h2, (size_t)rows * F, 0.0f);
    gan_linear_backward(be, t->dh1, WG(2), WG(3), t->dh2, t->a.h1, WP(2), rows, H, F, false);
    be->ops->dropout_backward(be, t->dh1, t->dh1, t->mask1, (size_t)rows * H);
    be->ops->relu_backward(be, t->dh1, t->dh1, t->a.h1, (size_t)rows * H, 0.0f);
    gan_linear_backward(be, NULL, WG(0), WG(1), t->dh1, t->a.x, WP(0), rows, P, H, false);
    gk_adam hp = {t->lr, 0.9f, 0.999f, 1e-8f, 0.0f, gk_step_value(batch_no + 1)};
    be->ops->adam(be, t->p, t->g, t->m, t->v, t->np, hp);
#undef WP
#undef WG
}

int gan_classifier_train(gk_backend *be, const uint8_t *pixels, const uint8_t *labels, int n,
                         const gan_classifier_options *o, gan_classifier *out, gan_error *err)
{
    if (!be)
        return gan_fail(err, "backend", "no backend to train the classifier on");
    if (!out || !o)
        return gan_fail(err, "options", "no options or no output (NULL)");
    memset(out, 0, sizeof *out);
    out->accuracy = -1;
    if (n < 1 || !pixels || !labels)
        return gan_fail(err, "images", "the classifier needs at least one image with its label");
    for (int i = 0; i < n; i++)
        if (labels[i] >= GAN_CLASSIFIER_CLASSES)
            return gan_fail(err, "labels", "label %d of image %d is out of range: labels are 0..%d",
                            labels[i], i, GAN_CLASSIFIER_CLASSES - 1);
    if (check_options(o, err) != 0)
        return -1;
    if (backend_check(be, "training", err) != 0)
        return -1;

    const int B = o->batch_size < n ? o->batch_size : n;
    const size_t bytes = (size_t)n * GAN_IMAGE_PIXELS;
    trainer t;
    memset(&t, 0, sizeof t);
    t.be = be;
    int32_t *perm = malloc((size_t)n * sizeof(int32_t));
    int32_t *ordered = malloc((size_t)n * sizeof(int32_t));
    const bool augment = o->shift > 0 || o->rotate > 0 || o->scale > 0;
    uint8_t *augmented = augment ? malloc(bytes) : NULL;
    float *params = malloc(gan_classifier_param_count() * sizeof(float));
    int rc = -1;
    if (!perm || !ordered || !params || (augment && !augmented)) {
        gan_fail(err, "images", "out of memory training the classifier on %d images", n);
        goto out;
    }
    if (trainer_alloc(&t, n, B) != 0) {
        backend_check(be, "allocation", err);
        goto out;
    }
    if (!augmented)
        be->ops->upload(be, t.pixels, pixels, bytes);

    /* nn.Linear's default: W and b uniform in ±1/sqrt(fan_in), one Philox stream each */
    for (int i = 0; i < GAN_CLASSIFIER_TENSORS; i++) {
        gan_classifier_tensor ti = gan_classifier_tensor_info(i);
        const int fan_in = gan_classifier_tensor_info(i - i % 2).cols;
        const float bound = 1.0f / sqrtf((float)fan_in);
        gk_rng r = {o->seed, GK_PURPOSE_INIT, gk_step_value(i)};
        be->ops->fill_uniform(be, t.p + ti.offset,
                              (size_t)ti.rows * (size_t)(ti.cols ? ti.cols : 1), r, -bound, bound);
    }

    /* lr_t = lr / decay^t reaches lr_final at the last step t = steps (the op's step
     * counts from 1, so step 1 runs at lr / decay; close enough to lr) */
    const int64_t steps = (int64_t)o->epochs * ((n + B - 1) / B);
    t.lr = (gk_lr){o->lr, pow(o->lr / o->lr_final, 1.0 / (double)steps), o->lr_final};
    int64_t batch_no = 0;
    for (int epoch = 0; epoch < o->epochs; epoch++) {
        const double t0 = now_seconds();
        gan_permutation(perm, n, o->seed, epoch);
        for (int i = 0; i < n; i++)
            ordered[i] = labels[perm[i]];
        if (augmented) {
            augment_images(augmented, pixels, n, o, epoch);
            be->ops->upload(be, t.pixels, augmented, bytes);
        }
        be->ops->upload(be, t.perm, perm, (size_t)n * sizeof(int32_t));
        be->ops->upload(be, t.labels, ordered, (size_t)n * sizeof(int32_t));
        be->ops->fill(be, t.acc, 2, 0.0f);
        int batches = 0;
        for (int first = 0; first < n; first += B, batches++, batch_no++)
            train_batch(&t, o, batch_no, first, n - first < B ? n - first : B);
        float acc[2];
        be->ops->download(be, acc, t.acc, sizeof acc);
        if (backend_check(be, "training", err) != 0)
            goto out;
        gan_classifier_epoch e = {epoch + 1, acc[0] / batches, acc[1] / batches,
                                  now_seconds() - t0};
        if (!isfinite(e.loss)) {
            gan_fail(err, "loss", "the classifier's loss went non-finite in epoch %d", epoch + 1);
            goto out;
        }
        if (o->on_epoch)
            o->on_epoch(&e, o->user);
    }
    be->ops->download(be, params, t.p, gan_classifier_param_count() * sizeof(float));
    if (backend_check(be, "training", err) != 0)
        goto out;
    out->params = params;
    params = NULL;
    out->train_count = n;
    out->epochs = o->epochs;
    out->seed = o->seed;
    snprintf(out->training, sizeof out->training,
             "{\"optimizer\":\"adam\",\"lr\":%.9g,\"lr_final\":%.9g,"
             "\"batch_size\":%d,\"dropout\":%.9g,\"shift\":%.9g,\"rotate\":%.9g,"
             "\"scale\":%.9g}",
             o->lr, o->lr_final, o->batch_size, o->dropout, o->shift, o->rotate, o->scale);
    rc = 0;
out:
    trainer_free(&t);
    free(perm);
    free(ordered);
    free(augmented);
    free(params);
    return rc;
}

/* ---- inference ------------------------------------------------------------ */

/*
 * Run the classifier over n images in batches, each batch's input given by
 * `stage` as rows × 784 host floats (src's own memory, or scratch filled).
 * Outputs are optional: probs (n × 10), features (n × 128), logits (n × 10).
 */
typedef const float *(*stage_fn)(const void *src, int first, int rows, float *scratch);

static const float *stage_floats(const void *src, int first, int rows, float *scratch)
{
    (void)rows;
    (void)scratch;
    return (const float *)src + (size_t)first * GAN_IMAGE_PIXELS;
}

static const float *stage_bytes(const void *src, int first, int rows, float *scratch)
{
    const uint8_t *in = (const uint8_t *)src + (size_t)first * GAN_IMAGE_PIXELS;
    for (size_t i = 0; i < (size_t)rows * GAN_IMAGE_PIXELS; i++)
        scratch[i] = (float)in[i] * (1.0f / 255.0f); /* gather_rows_u8's scaling */
    return scratch;
}

static int run(gk_backend *be, const gan_classifier *c, const void *src, stage_fn stage, int n,
               float *probs, float *features, float *logits, gan_error *err)
{
    if (!be)
        return gan_fail(err, "backend", "no backend to run the classifier on");
    if (!c || !c->params)
        return gan_fail(err, "classifier", "no classifier (NULL or not loaded)");
    if (n < 0 || (n > 0 && !src))
        return gan_fail(err, "images", "no images (NULL) or a negative count %d", n);
    if (backend_check(be, "forward pass", err) != 0)
        return -1;
    if (n == 0)
        return 0;
    const int cap = n < GAN_CLASSIFIER_BATCH ? n : GAN_CLASSIFIER_BATCH;
    const size_t P = GAN_CLASSIFIER_INPUTS, F = GAN_CLASSIFIER_FEATURES, K = GAN_CLASSIFIER_CLASSES,
                 np = gan_classifier_param_count();
    float *host = stage == stage_floats ? NULL : malloc((size_t)cap * P * sizeof(float));
    if (stage != stage_floats && !host)
        return gan_fail(err, "images", "out of memory for the classifier's batches");
    activations a;
    float *W = be->ops->alloc(be, np * sizeof(float));
    a.x = be->ops->alloc(be, (size_t)cap * P * sizeof(float));
    a.h1 = be->ops->alloc(be, (size_t)cap * GAN_CLASSIFIER_HIDDEN * sizeof(float));
    a.h2 = be->ops->alloc(be, (size_t)cap * F * sizeof(float));
    a.logits = be->ops->alloc(be, (size_t)cap * K * sizeof(float));
    float *p = probs ? be->ops->alloc(be, (size_t)cap * K * sizeof(float)) : NULL;
    if (W)
        be->ops->upload(be, W, c->params, np * sizeof(float));
    for (int first = 0; first < n && !gk_backend_error(be); first += cap) {
        const int rows = n - first < cap ? n - first : cap;
        be->ops->upload(be, a.x, stage(src, first, rows, host), (size_t)rows * P * sizeof(float));
        forward(be, W, &a, rows, NULL, NULL, 0.0f, 0, 0);
        if (probs) {
            be->ops->softmax_forward(be, p, a.logits, rows, (int)K);
            be->ops->download(be, probs + (size_t)first * K, p, (size_t)rows * K * sizeof(float));
        }
        if (features)
            be->ops->download(be, features + (size_t)first * F, a.h2,
                              (size_t)rows * F * sizeof(float));
        if (logits)
            be->ops->download(be, logits + (size_t)first * K, a.logits,
                              (size_t)rows * K * sizeof(float));
    }
    int rc = backend_check(be, "forward pass", err);
    void *ptrs[] = {W, a.x, a.h1, a.h2, a.logits, p};
    free_all(be, ptrs, sizeof ptrs / sizeof ptrs[0]);
    free(host);
    return rc;
}

int gan_classifier_forward(gk_backend *be, const gan_classifier *c, const float *images, int n,
                           float *probs, float *features, gan_error *err)
{
    return run(be, c, images, stage_floats, n, probs, features, NULL, err);
}

int gan_classifier_accuracy(gk_backend *be, const gan_classifier *c, const uint8_t *pixels,
                            const uint8_t *labels, int n, double *accuracy, gan_error *err)
{
    if (n < 1 || !labels || !accuracy)
        return gan_fail(err, "images", "accuracy needs at least one labelled image, got %d", n);
    for (int i = 0; i < n; i++)
        if (labels[i] >= GAN_CLASSIFIER_CLASSES)
            return gan_fail(err, "labels", "label %d of image %d is out of range: labels are 0..%d",
                            labels[i], i, GAN_CLASSIFIER_CLASSES - 1);
    float *logits = malloc((size_t)n * GAN_CLASSIFIER_CLASSES * sizeof(float));
    if (!logits)
        return gan_fail(err, "images", "out of memory for %d images' logits", n);
    int rc = run(be, c, pixels, stage_bytes, n, NULL, NULL, logits, err);
    if (rc == 0) {
        /* the arg-max logit, ties to the lowest class: softmax_ce's notion of right */
        long right = 0;
        for (int i = 0; i < n; i++) {
            const float *l = logits + (size_t)i * GAN_CLASSIFIER_CLASSES;
            int arg = 0;
            for (int k = 1; k < GAN_CLASSIFIER_CLASSES; k++)
                if (l[k] > l[arg])
                    arg = k;
            right += arg == labels[i];
        }
        *accuracy = (double)right / n;
    }
    free(logits);
    return rc;
}

/* ---- files ---------------------------------------------------------------- */

int gan_classifier_save(const gan_classifier *c, const char *path, gan_error *err)
{
    if (!c || !c->params)
        return gan_fail(err, "classifier", "no classifier to save (NULL or not trained)");
    gan_st_tensor ts[GAN_CLASSIFIER_TENSORS];
    memset(ts, 0, sizeof ts);
    for (int i = 0; i < GAN_CLASSIFIER_TENSORS; i++) {
        gan_classifier_tensor ti = gan_classifier_tensor_info(i);
        snprintf(ts[i].name, sizeof ts[i].name, "%s", ti.name);
        ts[i].dtype = GAN_F32;
        ts[i].ndim = ti.cols ? 2 : 1;
        ts[i].shape[0] = ti.rows;
        ts[i].shape[1] = ti.cols;
        ts[i].data = c->params + ti.offset;
        ts[i].nbytes = (size_t)ti.rows * (size_t)(ti.cols ? ti.cols : 1) * sizeof(float);
    }
    char count[24], epochs[24], seed[24], accuracy[40];
    snprintf(count, sizeof count, "%d", c->train_count);
    snprintf(epochs, sizeof epochs, "%d", c->epochs);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    snprintf(accuracy, sizeof accuracy, "%.17g", c->accuracy);
    gan_st_metadata meta[] = {
        {"format", CLASSIFIER_FORMAT},
        {"architecture", CLASSIFIER_ARCHITECTURE},
        {"dataset", c->dataset},
        {"train_count", count},
        {"epochs", epochs},
        {"seed", seed},
        {"training", c->training},
        {"accuracy", accuracy},
        {"accuracy_on", c->accuracy_on},
    };
    return gan_st_write(path, ts, GAN_CLASSIFIER_TENSORS, meta, (int)(sizeof meta / sizeof meta[0]),
                        err);
}

/* Metadata key into a fixed buffer ("" when absent). */
static void meta_string(const gan_st_file *f, const char *key, char *out, size_t len)
{
    const char *v = gan_st_meta(f, key);
    snprintf(out, len, "%s", v ? v : "");
}

int gan_classifier_load(const char *path, gan_classifier *out, gan_error *err)
{
    if (!out)
        return gan_fail(err, "classifier", "no classifier to load into (NULL)");
    memset(out, 0, sizeof *out);
    out->accuracy = -1;
    gan_st_file f;
    if (gan_st_read(path, &f, err) != 0)
        return -1;
    int rc = -1;
    const char *fmt = gan_st_meta(&f, "format");
    if (!fmt || strcmp(fmt, CLASSIFIER_FORMAT) != 0) {
        gan_fail(err, "classifier", "%s is not a gand classifier (format '%s', expected '%s')",
                 path, fmt ? fmt : "(none)", CLASSIFIER_FORMAT);
        goto out;
    }
    float *params = malloc(gan_classifier_param_count() * sizeof(float));
    if (!params) {
        gan_fail(err, "classifier", "out of memory loading %s", path);
        goto out;
    }
    for (int i = 0; i < GAN_CLASSIFIER_TENSORS; i++) {
        gan_classifier_tensor ti = gan_classifier_tensor_info(i);
        const gan_st_tensor *t = gan_st_find(&f, ti.name);
        const int ndim = ti.cols ? 2 : 1;
        if (!t || t->dtype != GAN_F32 || t->ndim != ndim || t->shape[0] != ti.rows ||
            (ndim == 2 && t->shape[1] != ti.cols)) {
            char shape[32];
            if (ndim == 2)
                snprintf(shape, sizeof shape, "[%d, %d]", ti.rows, ti.cols);
            else
                snprintf(shape, sizeof shape, "[%d]", ti.rows);
            gan_fail(err, "classifier",
                     "%s: tensor '%s' is %s; expected float32 of shape %s (architecture "
                     "784-512-128-10)",
                     path, ti.name, t ? "of another type or shape" : "missing", shape);
            free(params);
            goto out;
        }
        memcpy(params + ti.offset, t->data, t->nbytes);
    }
    out->params = params;
    meta_string(&f, "dataset", out->dataset, sizeof out->dataset);
    meta_string(&f, "training", out->training, sizeof out->training);
    meta_string(&f, "accuracy_on", out->accuracy_on, sizeof out->accuracy_on);
    const char *v;
    if ((v = gan_st_meta(&f, "train_count")))
        out->train_count = atoi(v);
    if ((v = gan_st_meta(&f, "epochs")))
        out->epochs = atoi(v);
    if ((v = gan_st_meta(&f, "seed")))
        out->seed = strtoull(v, NULL, 10);
    if ((v = gan_st_meta(&f, "accuracy")))
        out->accuracy = strtod(v, NULL);
    rc = 0;
out:
    gan_st_free(&f);
    return rc;
}
