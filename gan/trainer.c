/*
 * gan/trainer.c — the reference GAN and its training iteration.
 *
 * Weights are stored as PyTorch stores them (nn.Linear: W is out × in,
 * y = x·Wᵀ + b), so a checkpoint's tensors are the state_dict as-is. Each
 * network's parameters live in one flat buffer, gradients in another, Adam's
 * moments in two more: one Adam call per network per step.
 *
 * The D step runs D once over 2B rows, the real batch and G's output
 * together; G's forward output is used as D's input and nothing flows back
 * into G. The G step runs D forward and back-propagates to D's input only: no
 * D weight gradients are formed.
 *
 * Gradients are zero between steps: the optimiser op zeroes each gradient in
 * the pass that reads it (backend.h), a new trainer's buffers are allocated
 * zeroed, and the gradient-check hooks clear what they formed. So every
 * backward pass accumulates (sgemm beta = 1), which OpenBLAS runs up to twice
 * as fast as beta = 0 for the weight gradients of small batches, with no pass
 * of its own to clear them. Adding to zeros gives the bits of overwriting.
 *
 * Losses and D outputs go into a small accumulator buffer on the backend and
 * are read once per epoch (gan_trainer_finish_epoch): no host sync inside an
 * epoch on a GPU.
 *
 * Step counters and graphs. Everything an iteration issues that changes from
 * one iteration to the next — the Philox steps of the noise (D-step and
 * G-step numbers) and of the dropout masks (forward-pass number), Adam's t
 * and the decayed learning rate, the batch's place in the permutation, the
 * moving average's weight, the iteration tag of mark_nonfinite — is read by
 * the ops from a block of int64 counters in backend memory (`ctr`, CTR_*),
 * as a gk_step: a pointer to a counter plus an offset fixed for that point
 * of the iteration. The host keeps the authoritative counters (g_steps,
 * d_steps_done, ... : what checkpoints hold) and `ctr_base`, what the block
 * holds once the work issued so far has run; an op's offset is host value −
 * ctr_base, so it reads exactly the host's value. The iteration ends with one
 * counters_add of (host after − ctr_base), leaving block and host equal.
 * Whenever they differ at the start of an iteration (a new epoch, a loaded
 * checkpoint, a changed d_steps), sync_counters uploads the host's values.
 *
 * On a backend with graphs (CUDA), the second iteration is captured into a
 * graph and launched (the first runs eagerly, so cuBLAS and lazily loaded
 * kernels are initialised outside the capture); later iterations only launch
 * it again and add to the host counters what the captured iteration added
 * (`graph_delta`). The
 * captured launches bake in the batch size, buffers, learning rates, betas,
 * g_loss and d_steps, so the graph is dropped (and the next iteration after
 * the next captures anew) by gan_trainer_set_config, a buffer reallocation,
 * gan_trainer_load, and an epoch whose batch size differs from the one
 * captured. SGD's momentum ramp reads the epoch from the counters too, so a
 * new epoch keeps the graph. GAND_CUDA_GRAPHS=0 (read when the CUDA backend opens)
 * keeps every iteration eager, for comparisons.
 */
#include "gan/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gan/checkpoint.h"
#include "gan/layers.h"

enum {
    ACC_D_REAL,    /* sum of batch-mean BCE(D(x), 1) */
    ACC_D_X,       /* sum of batch-mean D(x) */
    ACC_D_FAKE,    /* sum of batch-mean BCE(D(G(z)), 0) */
    ACC_D_FAKEP,   /* sum of batch-mean D(G(z)) in D steps */
    ACC_G,         /* sum of batch-mean G-step BCE */
    ACC_G_P,       /* sum of batch-mean D(G(z')) in G steps */
    ACC_NONFINITE, /* first iteration (1-based) whose sums went non-finite, 0 if none */
    ACC_COUNT = 8
};

/*
 * Activations and gradients of one batch of B ≤ `capacity` rows. D sees 2B
 * rows in its step (the real batch, then G's output), so its buffers hold
 * 2·capacity rows: x's rows B..2B are where G writes its output, in both steps.
 * One buffer, d_pre, holds each maxout layer's input in turn, forward (x·Wᵀ
 * before the bias, which the fused op adds) and backward (its gradient): the
 * arg-max is all the backward pass needs of the forward values, and the two
 * uses never overlap; d_dm holds the gradient of each maxout's output in turn.
 * Input dropout writes into x's rows 0..B (in place in the D step, from G's
 * output in the G step); its mask buffer has 2·capacity rows, and G's output
 * gradient g_dout is its second half, which only the G step uses, and whose
 * D pass masks B rows.
 */
typedef struct batch_buffers {
    int capacity;
    float *z, *g_h1, *g_h2;        /* G forward (its output: x + B·784) */
    float *g_dout, *g_dh2, *g_dh1; /* G backward (g_dout: see above) */
    float *x;                      /* D's input: the real batch, then G's output */
    float *d_pre;                  /* a maxout layer's input, or its gradient */
    float *d_m1, *d_mask, *d_m2;   /* maxout 1 (dropped), its mask, maxout 2 */
    float *d_logit, *d_dlogit;     /* logits and their gradient */
    int32_t *d_arg1, *d_arg2;      /* maxout arg-max */
    float *d_dm;                   /* D backward */
    float *d_in_mask, *d_mask2;    /* input dropout's mask; dropout after maxout 2 */
} batch_buffers;

struct gan_trainer {
    gk_backend *be;
    gan_config cfg;
    int epoch_batch; /* batch size in force for the current epoch */

    /* data set, resident on the backend */
    int count;
    uint8_t *pixels;
    int32_t *perm; /* this epoch's permutation (backend memory) */
    int32_t *perm_host;

    size_t g_n, d_n;
    float *g_p, *g_g, *g_m, *g_v;
    float *d_p, *d_g, *d_m, *d_v;
    float *g_e; /* average of G's weights (cfg.g_ema > 0), else NULL */
    gan_tensor_info g_t[6], d_t[6];

    batch_buffers b;
    float *acc; /* ACC_COUNT floats on the backend */

    int epoch, iteration;
    int64_t g_steps, d_steps_done, dropout_passes;
    int d_steps_in_epoch;
    double epoch_seconds;

    int64_t *ctr;         /* GK_COUNTERS step counters on the backend (CTR_*) */
    gk_counters ctr_base; /* what ctr holds once the work issued so far has run */

    gk_graph *graph;         /* one captured iteration, or NULL */
    bool graphs_off;         /* the backend has no graphs or declined (GAND_CUDA_GRAPHS=0) */
    bool graph_warm;         /* an eager iteration ran since the graph was last dropped */
    gk_counters graph_delta; /* what one iteration of `graph` adds to the counters */
    int graph_batch;         /* batch size the graph was captured with */
    int64_t graph_launches;  /* iterations run by launching a captured graph */
};

/* The step counters of the backend block (the rest of the GK_COUNTERS are unused). */
enum {
    CTR_D_STEP,    /* D steps done = d_steps_done */
    CTR_G_STEP,    /* G steps done = g_steps */
    CTR_PASS,      /* D forward passes done = dropout_passes */
    CTR_ITERATION, /* iterations done in the epoch = iteration */
    CTR_D_BATCH,   /* D batches drawn in the epoch = iteration · d_steps */
    CTR_EPOCH      /* completed epochs = epoch (SGD's momentum ramp) */
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int check(gan_trainer *t, gan_error *err)
{
    const char *e = gk_backend_error(t->be);
    if (e)
        return gan_fail(err, "device", "%s backend failed: %s", t->be->ops->name, e);
    return 0;
}

/* ---- buffers -------------------------------------------------------------- */

#define ALLOC_F(n) ((float *)be->ops->alloc(be, (size_t)(n) * sizeof(float)))
#define ALLOC_I(n) ((int32_t *)be->ops->alloc(be, (size_t)(n) * sizeof(int32_t)))

static void batch_free(gk_backend *be, batch_buffers *b)
{
    void *ptrs[] = {b->z,
                    b->g_h1,
                    b->g_h2,
                    b->g_dh2,
                    b->g_dh1,
                    b->x,
                    b->d_pre,
                    b->d_m1,
                    b->d_mask,
                    b->d_m2,
                    b->d_logit,
                    b->d_dlogit,
                    b->d_arg1,
                    b->d_arg2,
                    b->d_dm,
                    b->d_mask2,
                    b->d_in_mask ? (void *)b->d_in_mask : (void *)b->g_dout};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        if (ptrs[i])
            be->ops->free(be, ptrs[i]);
    memset(b, 0, sizeof *b);
}

static int batch_alloc(gk_backend *be, const gan_config *c, int B, batch_buffers *b)
{
    size_t L = (size_t)c->latent_dim, H = (size_t)c->g_hidden, P = GAN_IMAGE_PIXELS,
           U = (size_t)c->d_units, UK = (size_t)c->d_units * (size_t)c->d_pieces, n = (size_t)B,
           nd = 2 * n; /* D's rows: real and generated */
    batch_free(be, b);
    b->capacity = B;
    b->z = ALLOC_F(n * L);
    b->g_h1 = ALLOC_F(n * H);
    b->g_h2 = ALLOC_F(n * H);
    b->g_dh2 = ALLOC_F(n * H);
    b->g_dh1 = ALLOC_F(n * H);
    b->x = ALLOC_F(nd * P);
    b->d_pre = ALLOC_F(nd * UK);
    b->d_m1 = ALLOC_F(nd * U);
    b->d_mask = ALLOC_F(nd * U);
    b->d_m2 = ALLOC_F(nd * U);
    b->d_logit = ALLOC_F(nd);
    b->d_dlogit = ALLOC_F(nd);
    b->d_arg1 = ALLOC_I(nd * U);
    b->d_arg2 = ALLOC_I(nd * U);
    b->d_dm = ALLOC_F(nd * U);
    if (c->d_input_dropout > 0) {
        b->d_in_mask = ALLOC_F(nd * P);
        b->g_dout = b->d_in_mask ? b->d_in_mask + n * P : NULL;
    } else {
        b->g_dout = ALLOC_F(n * P);
    }
    if (c->d_final_dropout > 0)
        b->d_mask2 = ALLOC_F(nd * U);
    return gk_backend_error(be) ? -1 : 0;
}

/* ---- forward and backward passes ---------------------------------------- */

/*
 * G's three layers on z (n × L) into h1, h2 (n × H) and out (n × 784): bias
 * and activation fused into one op per layer except a sigmoid output.
 */
static void generator_layers(gk_backend *be, const gan_config *c, const float *W,
                             const gan_tensor_info ti[6], const float *z, float *h1, float *h2,
                             float *out, int n)
{
    const float slope = gan_config_g_slope(c);
    int L = c->latent_dim, H = c->g_hidden, P = GAN_IMAGE_PIXELS;
    gan_matmul_wt(be, h1, z, W + ti[0].offset, n, L, H);
    be->ops->bias_relu(be, h1, h1, W + ti[1].offset, n, H, slope);
    gan_matmul_wt(be, h2, h1, W + ti[2].offset, n, H, H);
    be->ops->bias_relu(be, h2, h2, W + ti[3].offset, n, H, slope);
    gan_matmul_wt(be, out, h2, W + ti[4].offset, n, H, P);
    if (c->g_output == GAN_G_OUTPUT_SIGMOID) {
        be->ops->bias_add(be, out, W + ti[5].offset, n, P);
        be->ops->sigmoid_forward(be, out, out, (size_t)n * P);
    } else {
        be->ops->bias_relu(be, out, out, W + ti[5].offset, n, P, 0.0f);
    }
}

/* A step the ops read from counter `which` of the backend block; `host` is its value now. */
static gk_step ctr_step(const gan_trainer *t, int which, int64_t host)
{
    gk_step s = {t->ctr + which, host - t->ctr_base.v[which]};
    return s;
}

#define GP(i) (t->g_p + t->g_t[i].offset)
#define GG(i) (t->g_g + t->g_t[i].offset)
#define DP(i) (t->d_p + t->d_t[i].offset)
#define DG(i) (t->d_g + t->d_t[i].offset)

/* Where G's output of a batch of B goes: D's rows B..2B. */
static float *g_out(const gan_trainer *t, int B)
{
    return t->b.x + (size_t)B * GAN_IMAGE_PIXELS;
}

static void generator_forward(gan_trainer *t, int B)
{
    batch_buffers *b = &t->b;
    generator_layers(t->be, &t->cfg, t->g_p, t->g_t, b->z, b->g_h1, b->g_h2, g_out(t, B), B);
}

/* G backward from b->g_dout (dLoss/dG(z)); adds G's gradients to g_g (zero: see the top). */
static void generator_backward(gan_trainer *t, int B)
{
    const float slope = gan_config_g_slope(&t->cfg);
    gk_backend *be = t->be;
    batch_buffers *b = &t->b;
    int L = t->cfg.latent_dim, H = t->cfg.g_hidden, P = GAN_IMAGE_PIXELS;
    const float *out = g_out(t, B);
    if (t->cfg.g_output == GAN_G_OUTPUT_SIGMOID)
        be->ops->sigmoid_backward(be, b->g_dout, b->g_dout, out, (size_t)B * P);
    else
        be->ops->relu_backward(be, b->g_dout, b->g_dout, out, (size_t)B * P, 0.0f);
    gan_linear_backward(be, b->g_dh2, GG(4), GG(5), b->g_dout, b->g_h2, GP(4), B, H, P, true);
    be->ops->relu_backward(be, b->g_dh2, b->g_dh2, b->g_h2, (size_t)B * H, slope);
    gan_linear_backward(be, b->g_dh1, GG(2), GG(3), b->g_dh2, b->g_h1, GP(2), B, H, H, true);
    be->ops->relu_backward(be, b->g_dh1, b->g_dh1, b->g_h1, (size_t)B * H, slope);
    gan_linear_backward(be, NULL, GG(0), GG(1), b->g_dh1, b->z, GP(0), B, L, H, true);
}

/*
 * D forward on x (B × 784: here B is the rows of this pass) to logits, with
 * fresh dropout masks (one Philox stream per dropout site, all stepped by the
 * same pass counter; a mask element is a function of its index in the pass).
 * Returns the input the first layer saw: x, or x after input dropout.
 */
static const float *discriminator_forward(gan_trainer *t, const float *x, int B)
{
    gk_backend *be = t->be;
    batch_buffers *b = &t->b;
    int U = t->cfg.d_units, K = t->cfg.d_pieces, UK = U * K, P = GAN_IMAGE_PIXELS;
    gk_step pass = ctr_step(t, CTR_PASS, t->dropout_passes++);
    const float *in = x;
    if (t->cfg.d_input_dropout > 0) {
        gk_rng r = {t->cfg.seed, GK_PURPOSE_DROPOUT_IN, pass};
        be->ops->dropout_forward(be, b->x, b->d_in_mask, x, (size_t)B * P,
                                 (float)t->cfg.d_input_dropout, r);
        in = b->x; /* in place in the D step; over the idle real rows in the G step */
    }
    /* d_pre keeps x·Wᵀ without the bias: the fused op adds it on the fly */
    gan_matmul_wt(be, b->d_pre, in, DP(0), B, P, UK);
    be->ops->bias_maxout(be, b->d_m1, b->d_arg1, b->d_pre, DP(1), B, U, K);
    gk_rng rng = {t->cfg.seed, GK_PURPOSE_DROPOUT, pass};
    be->ops->dropout_forward(be, b->d_m1, b->d_mask, b->d_m1, (size_t)B * U,
                             (float)t->cfg.d_dropout, rng);
    gan_matmul_wt(be, b->d_pre, b->d_m1, DP(2), B, U, UK);
    be->ops->bias_maxout(be, b->d_m2, b->d_arg2, b->d_pre, DP(3), B, U, K);
    if (t->cfg.d_final_dropout > 0) {
        gk_rng r = {t->cfg.seed, GK_PURPOSE_DROPOUT_FINAL, pass};
        be->ops->dropout_forward(be, b->d_m2, b->d_mask2, b->d_m2, (size_t)B * U,
                                 (float)t->cfg.d_final_dropout, r);
    }
    gan_linear_forward(be, b->d_logit, b->d_m2, DP(4), DP(5), B, U, 1);
    return in;
}

/*
 * D backward from b->d_dlogit; `in` is what discriminator_forward returned.
 * With weight gradients (D step) they go into d_g (accumulating when asked);
 * with dx (G step) only the gradient w.r.t. D's input x is formed.
 */
static void discriminator_backward(gan_trainer *t, const float *in, int B, bool weight_grads,
                                   bool accumulate, float *dx)
{
    gk_backend *be = t->be;
    batch_buffers *b = &t->b;
    int U = t->cfg.d_units, K = t->cfg.d_pieces, UK = U * K, P = GAN_IMAGE_PIXELS;
    be->ops->linear1_backward(be, b->d_dm, weight_grads ? DG(4) : NULL, weight_grads ? DG(5) : NULL,
                              b->d_dlogit, b->d_m2, DP(4), B, U, accumulate);
    /* each maxout's backward op also applies the dropout mask of its output and forms the
     * bias gradient of the layer below it, in its one pass over d_pre */
    be->ops->maxout_backward(be, b->d_pre, weight_grads ? DG(3) : NULL, b->d_dm,
                             t->cfg.d_final_dropout > 0 ? b->d_mask2 : NULL, b->d_arg2, B, U, K,
                             accumulate);
    gan_linear_backward(be, b->d_dm, weight_grads ? DG(2) : NULL, NULL, b->d_pre, b->d_m1, DP(2), B,
                        U, UK, accumulate);
    be->ops->maxout_backward(be, b->d_pre, weight_grads ? DG(1) : NULL, b->d_dm, b->d_mask,
                             b->d_arg1, B, U, K, accumulate);
    gan_linear_backward(be, dx, weight_grads ? DG(0) : NULL, NULL, b->d_pre, in, DP(0), B, P, UK,
                        accumulate);
    if (dx && t->cfg.d_input_dropout > 0)
        be->ops->dropout_backward(be, dx, dx, b->d_in_mask, (size_t)B * P);
}

/* z for a step: N(0,1), or uniform in ±√3 (unit variance, preset paper) */
static void fill_noise(gan_trainer *t, uint32_t purpose, gk_step step, int B)
{
    gk_rng r = {t->cfg.seed, purpose, step};
    size_t n = (size_t)B * (size_t)t->cfg.latent_dim;
    if (t->cfg.noise == GAN_NOISE_UNIFORM)
        t->be->ops->fill_uniform(t->be, t->b.z, n, r, -1.7320508f, 1.7320508f);
    else
        t->be->ops->fill_normal(t->be, t->b.z, n, r, 0.0f, 1.0f);
}

/*
 * The D loss BCE(D(x), 1 − smoothing) + BCE(D(G(z)), 0) and its gradient in
 * d_g; losses and mean D outputs go to the accumulators. G's output is a
 * constant here: nothing flows back into G. The real images are batch number
 * (batch mod batches) of the epoch's permutation.
 *
 * One pass of D over 2B rows, the B real images and then G's B: each half's
 * BCE keeps its own target and its own mean over B, so the loss and its
 * gradient are those of two passes of B rows, with half the calls and matrix
 * products twice as tall.
 */
static void discriminator_loss_grad(gan_trainer *t, int B, gk_step batch, int64_t batches)
{
    gk_backend *be = t->be;
    batch_buffers *b = &t->b;
    float real_target = 1.0f - (float)t->cfg.label_smoothing;
    be->ops->gather_rows_u8(be, b->x, t->pixels, t->perm, B, GAN_IMAGE_PIXELS, 1.0f / 255.0f, batch,
                            batches);
    fill_noise(t, GK_PURPOSE_NOISE_D, ctr_step(t, CTR_D_STEP, t->d_steps_done), B);
    generator_forward(t, B); /* into x's rows B..2B */
    const float *in = discriminator_forward(t, b->x, 2 * B);
    be->ops->sigmoid_bce(be, b->d_dlogit, t->acc + ACC_D_REAL, b->d_logit, B, real_target, 1.0f);
    be->ops->sigmoid_bce(be, b->d_dlogit + B, t->acc + ACC_D_FAKE, b->d_logit + B, B, 0.0f, 1.0f);
    discriminator_backward(t, in, 2 * B, true, true, NULL);
}

/*
 * The G loss on fresh z' and its gradient in g_g. D runs forward and back to
 * its input only: no D weight gradients are formed.
 */
static void generator_loss_grad(gan_trainer *t, int B)
{
    gk_backend *be = t->be;
    batch_buffers *b = &t->b;
    fill_noise(t, GK_PURPOSE_NOISE_G, ctr_step(t, CTR_G_STEP, t->g_steps), B);
    generator_forward(t, B);
    const float *in = discriminator_forward(t, g_out(t, B), B);
    if (t->cfg.g_loss == GAN_G_LOSS_NONSATURATING) /* minimise BCE(D(G(z)), 1) */
        be->ops->sigmoid_bce(be, b->d_dlogit, t->acc + ACC_G, b->d_logit, B, 1.0f, 1.0f);
    else /* minimise log(1 − D(G(z))) = −BCE(D(G(z)), 0) */
        be->ops->sigmoid_bce(be, b->d_dlogit, t->acc + ACC_G, b->d_logit, B, 0.0f, -1.0f);
    discriminator_backward(t, in, B, false, false, b->g_dout);
    generator_backward(t, B);
}

/*
 * One optimiser update of a network; step (from 1) is Adam's t and steps the
 * learning rate (gan_config_lr_at, evaluated by the op as gk_lr_at).
 */
static void optimizer_update(gan_trainer *t, float *p, float *g, float *m, float *v, size_t n,
                             double lr, gk_step step)
{
    gk_backend *be = t->be;
    gk_lr sched = {lr, t->cfg.lr_decay, t->cfg.lr_min};
    if (t->cfg.optimizer == GAN_OPT_SGD) {
        gk_momentum mom = {t->cfg.momentum, t->cfg.momentum_final, t->cfg.momentum_epochs};
        be->ops->sgd_momentum(be, p, g, m, n, sched, step, mom, ctr_step(t, CTR_EPOCH, t->epoch));
        return;
    }
    gk_adam hp = {sched, (float)t->cfg.beta1, (float)t->cfg.beta2, 1e-8f, 0.0f, step};
    be->ops->adam(be, p, g, m, v, n, hp);
}

static void discriminator_step(gan_trainer *t, int B, gk_step batch, int64_t batches)
{
    discriminator_loss_grad(t, B, batch, batches);
    t->d_steps_done++;
    optimizer_update(t, t->d_p, t->d_g, t->d_m, t->d_v, t->d_n, t->cfg.lr_d,
                     ctr_step(t, CTR_D_STEP, t->d_steps_done));
    if (t->cfg.d_max_norm > 0) /* pylearn2's max_col_norm on each of D's weight matrices */
        for (int i = 0; i < 6; i += 2)
            t->be->ops->clip_row_norms(t->be, DP(i), t->d_t[i].rows, t->d_t[i].cols,
                                       (float)t->cfg.d_max_norm);
}

static void generator_step(gan_trainer *t, int B)
{
    generator_loss_grad(t, B);
    t->g_steps++;
    gk_step step = ctr_step(t, CTR_G_STEP, t->g_steps);
    optimizer_update(t, t->g_p, t->g_g, t->g_m, t->g_v, t->g_n, t->cfg.lr_g, step);
    /* the decay ramps up as (1 + t)/(3 + t) (like TensorFlow's num_updates,
     * which uses 10): the average spans about the last half of the steps
     * until g_ema caps it, so it never drags the initial weights along */
    if (t->g_e)
        t->be->ops->ema_update(t->be, t->g_e, t->g_p, t->g_n, t->cfg.g_ema, step);
}

/* ---- step counters and the captured iteration ------------------------- */

static void drop_graph(gan_trainer *t)
{
    if (t->graph)
        t->be->ops->graph_free(t->be, t->graph);
    t->graph = NULL;
    t->graph_warm = false; /* warm up again before the next capture: shapes may be new */
}

/* The counters as the backend block holds them at an iteration boundary. */
static gk_counters host_counters(const gan_trainer *t)
{
    gk_counters h;
    memset(&h, 0, sizeof h);
    h.v[CTR_D_STEP] = t->d_steps_done;
    h.v[CTR_G_STEP] = t->g_steps;
    h.v[CTR_PASS] = t->dropout_passes;
    h.v[CTR_ITERATION] = t->iteration;
    h.v[CTR_D_BATCH] = (int64_t)t->iteration * t->cfg.d_steps;
    h.v[CTR_EPOCH] = t->epoch;
    return h;
}

/* Before an iteration: upload the host's counters when the block's differ. */
static void sync_counters(gan_trainer *t)
{
    gk_counters h = host_counters(t);
    if (memcmp(&h, &t->ctr_base, sizeof h) == 0)
        return;
    t->be->ops->upload(t->be, t->ctr, h.v, sizeof h.v);
    t->ctr_base = h;
}

/* After an iteration's ops: one counters_add takes the block to the host's values. */
static gk_counters advance_counters(gan_trainer *t)
{
    gk_counters h = host_counters(t), d;
    for (int i = 0; i < GK_COUNTERS; i++)
        d.v[i] = h.v[i] - t->ctr_base.v[i];
    t->be->ops->counters_add(t->be, t->ctr, d);
    t->ctr_base = h;
    return d;
}

/* ---- epochs ------------------------------------------------------------- */

static int start_epoch(gan_trainer *t)
{
    gk_backend *be = t->be;
    t->epoch_batch = t->cfg.batch_size;
    if (t->epoch_batch > t->b.capacity || t->epoch_batch < t->b.capacity / 2) {
        drop_graph(t); /* it points into the buffers about to go */
        if (batch_alloc(be, &t->cfg, t->epoch_batch, &t->b) != 0)
            return -1;
    }
    gan_permutation(t->perm_host, t->count, t->cfg.seed, t->epoch);
    be->ops->upload(be, t->perm, t->perm_host, (size_t)t->count * sizeof(int32_t));
    return gk_backend_error(be) ? -1 : 0;
}

gan_trainer *gan_trainer_new(gk_backend *be, const gan_config *cfg, const gan_dataset *ds,
                             gan_error *err)
{
    if (gan_config_validate(cfg, err) != 0)
        return NULL;
    if (ds->rows != GAN_IMAGE_ROWS || ds->cols != GAN_IMAGE_COLS) {
        gan_fail(err, "dataset", "images are %d×%d; the model needs 28×28", ds->rows, ds->cols);
        return NULL;
    }
    if (ds->count < cfg->batch_size) {
        gan_fail(err, "batch_size",
                 "batch_size %d is larger than the data set (%d images); the last partial "
                 "batch is dropped, so an epoch would be empty",
                 cfg->batch_size, ds->count);
        return NULL;
    }
    if (cfg->precision == GAN_PRECISION_TF32 && !be->ops->set_tf32) {
        gan_fail(err, "precision",
                 "precision tf32 needs a backend with tensor cores (cuda); this run's backend "
                 "is %s",
                 be->ops->name);
        return NULL;
    }
    if (be->ops->set_tf32)
        be->ops->set_tf32(be, cfg->precision == GAN_PRECISION_TF32);
    gan_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        gan_fail(err, "", "out of memory");
        return NULL;
    }
    t->be = be;
    t->cfg = *cfg;
    t->count = ds->count;
    gan_generator_tensors(cfg, t->g_t);
    gan_discriminator_tensors(cfg, t->d_t);
    t->g_n = gan_generator_param_count(cfg);
    t->d_n = gan_discriminator_param_count(cfg);

    size_t npix = (size_t)ds->count * GAN_IMAGE_PIXELS;
    t->pixels = be->ops->alloc(be, npix);
    t->perm = ALLOC_I(ds->count);
    t->perm_host = malloc((size_t)ds->count * sizeof(int32_t));
    t->g_p = ALLOC_F(t->g_n);
    t->g_g = ALLOC_F(t->g_n);
    t->g_m = ALLOC_F(t->g_n);
    t->g_v = ALLOC_F(t->g_n);
    t->d_p = ALLOC_F(t->d_n);
    t->d_g = ALLOC_F(t->d_n);
    t->d_m = ALLOC_F(t->d_n);
    t->d_v = ALLOC_F(t->d_n);
    t->acc = ALLOC_F(ACC_COUNT);
    t->ctr = (int64_t *)be->ops->alloc(be, GK_COUNTERS * sizeof(int64_t)); /* zeros = ctr_base */
    t->graphs_off = be->ops->graph_begin == NULL;
    if (cfg->g_ema > 0)
        t->g_e = ALLOC_F(t->g_n);
    if (check(t, err) != 0 || !t->perm_host) {
        if (!err || !err->message[0])
            gan_fail(err, "", "out of memory");
        gan_trainer_free(t);
        return NULL;
    }
    be->ops->upload(be, t->pixels, ds->pixels, npix);

    /* nn.Linear's default init, W and b uniform in ±1/sqrt(fan_in); or, with
     * g_init_range / d_init_range (pylearn2's irange), W uniform in ±range and b = 0. */
    for (int i = 0; i < 12; i++) {
        const gan_tensor_info *ti = i < 6 ? &t->g_t[i] : &t->d_t[i - 6];
        float *base = i < 6 ? t->g_p : t->d_p;
        double range = i < 6 ? cfg->g_init_range : cfg->d_init_range;
        int fan_in = ti->cols ? ti->cols : (i < 6 ? t->g_t[i - 1].cols : t->d_t[i - 7].cols);
        float bound = range > 0 ? (ti->cols ? (float)range : 0.0f) : 1.0f / sqrtf((float)fan_in);
        size_t n = (size_t)ti->rows * (size_t)(ti->cols ? ti->cols : 1);
        gk_rng rng = {cfg->seed, GK_PURPOSE_INIT, gk_step_value(i)};
        if (bound > 0)
            be->ops->fill_uniform(be, base + ti->offset, n, rng, -bound, bound);
    }
    if (t->g_e)
        be->ops->copy(be, t->g_e, t->g_p, t->g_n * sizeof(float));
    if (start_epoch(t) != 0 || check(t, err) != 0) {
        gan_trainer_free(t);
        return NULL;
    }
    return t;
}

void gan_trainer_free(gan_trainer *t)
{
    if (!t)
        return;
    gk_backend *be = t->be;
    drop_graph(t);
    batch_free(be, &t->b);
    void *ptrs[] = {t->pixels, t->perm, t->g_p, t->g_g, t->g_m, t->g_v, t->d_p,
                    t->d_g,    t->d_m,  t->d_v, t->acc, t->g_e, t->ctr};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        if (ptrs[i])
            be->ops->free(be, ptrs[i]);
    free(t->perm_host);
    free(t);
}

const gan_config *gan_trainer_config(const gan_trainer *t)
{
    return &t->cfg;
}

int gan_trainer_epoch(const gan_trainer *t)
{
    return t->epoch;
}

int gan_trainer_iteration(const gan_trainer *t)
{
    return t->iteration;
}

int gan_trainer_iterations_per_epoch(const gan_trainer *t)
{
    return t->count / t->epoch_batch;
}

int64_t gan_trainer_g_steps(const gan_trainer *t)
{
    return t->g_steps;
}

int64_t gan_trainer_graph_launches(const gan_trainer *t)
{
    return t->graph_launches;
}

void gan_trainer_set_config(gan_trainer *t, const gan_config *c)
{
    drop_graph(t); /* lr, betas, g_loss and d_steps are baked into the captured launches */
    t->cfg.batch_size = c->batch_size; /* takes effect in start_epoch */
    t->cfg.epochs = c->epochs;
    t->cfg.lr_d = c->lr_d;
    t->cfg.lr_g = c->lr_g;
    t->cfg.beta1 = c->beta1;
    t->cfg.beta2 = c->beta2;
    t->cfg.g_loss = c->g_loss;
    t->cfg.d_steps = c->d_steps;
    t->cfg.sample_every = c->sample_every;
    t->cfg.checkpoint_every = c->checkpoint_every;
    t->cfg.evaluate_every = c->evaluate_every;
    t->cfg.watch_every = c->watch_every;
    t->cfg.watch = c->watch;
}

bool gan_trainer_epoch_complete(const gan_trainer *t)
{
    return t->iteration >= gan_trainer_iterations_per_epoch(t);
}

/* The ops of one iteration, counted on the host as they are issued. */
static void iteration_ops(gan_trainer *t)
{
    int B = t->epoch_batch;
    /* with k D steps per iteration each takes its own batch, as in the paper's
     * Algorithm 1; the epoch still ends after count / B iterations' worth of
     * G steps, wrapping around the permutation for the extra D batches */
    for (int k = 0; k < t->cfg.d_steps; k++) {
        int64_t batch_no = (int64_t)t->iteration * t->cfg.d_steps + k;
        discriminator_step(t, B, ctr_step(t, CTR_D_BATCH, batch_no),
                           gan_trainer_iterations_per_epoch(t));
        t->d_steps_in_epoch++;
    }
    generator_step(t, B);
    t->iteration++;
    t->be->ops->mark_nonfinite(t->be, t->acc, ACC_G_P + 1, ACC_NONFINITE,
                               ctr_step(t, CTR_ITERATION, t->iteration));
}

int gan_trainer_step(gan_trainer *t, gan_error *err)
{
    if (gan_trainer_epoch_complete(t))
        return gan_fail(err, "", "epoch %d is complete; finish it before stepping", t->epoch + 1);
    double t0 = now_seconds();
    gk_backend *be = t->be;
    /* the run's precision, again at every step: an evaluation between two steps on the
     * same backend sets its own (gan/parzen.c) */
    if (be->ops->set_tf32)
        be->ops->set_tf32(be, t->cfg.precision == GAN_PRECISION_TF32);
    if (t->graph && t->graph_batch != t->epoch_batch)
        drop_graph(t);
    sync_counters(t);
    if (t->graph) {
        be->ops->graph_launch(be, t->graph);
        t->graph_launches++;
        /* count on the host what the graph's ops count on the backend */
        const gk_counters *d = &t->graph_delta;
        t->d_steps_done += d->v[CTR_D_STEP];
        t->d_steps_in_epoch += (int)d->v[CTR_D_STEP];
        t->g_steps += d->v[CTR_G_STEP];
        t->dropout_passes += d->v[CTR_PASS];
        t->iteration += (int)d->v[CTR_ITERATION];
        for (int i = 0; i < GK_COUNTERS; i++)
            t->ctr_base.v[i] += d->v[i];
    } else {
        bool capture = false;
        if (!t->graphs_off && t->graph_warm) {
            capture = be->ops->graph_begin(be);
            t->graphs_off = !capture; /* switched off, or failed (then check() reports it) */
        }
        iteration_ops(t);
        gk_counters delta = advance_counters(t);
        t->graph_warm = true;
        if (capture) {
            t->graph = be->ops->graph_end(be);
            if (t->graph) {
                t->graph_delta = delta;
                t->graph_batch = t->epoch_batch;
                be->ops->graph_launch(be, t->graph); /* captured ops have not run yet */
                t->graph_launches++;
            }
        }
    }
    t->epoch_seconds += now_seconds() - t0;
    return check(t, err);
}

int gan_trainer_finish_epoch(gan_trainer *t, gan_epoch_metrics *m, gan_error *err)
{
    double t0 = now_seconds();
    float acc[ACC_COUNT];
    gk_counters dev;
    t->be->ops->download(t->be, acc, t->acc, sizeof acc);
    t->be->ops->download(t->be, dev.v, t->ctr, sizeof dev.v);
    if (check(t, err) != 0)
        return -1;
    if (memcmp(&dev, &t->ctr_base, sizeof dev) != 0) /* a bug, never a user's error */
        return gan_fail(err, "device",
                        "step counters on the %s backend (D %lld, G %lld, pass %lld) disagree "
                        "with the host's (D %lld, G %lld, pass %lld)",
                        t->be->ops->name, (long long)dev.v[CTR_D_STEP],
                        (long long)dev.v[CTR_G_STEP], (long long)dev.v[CTR_PASS],
                        (long long)t->ctr_base.v[CTR_D_STEP], (long long)t->ctr_base.v[CTR_G_STEP],
                        (long long)t->ctr_base.v[CTR_PASS]);
    int iters = t->iteration;
    double nd = t->d_steps_in_epoch > 0 ? t->d_steps_in_epoch : 1;
    double ng = iters > 0 ? iters : 1;
    memset(m, 0, sizeof *m);
    m->epoch = t->epoch + 1;
    m->iterations = iters;
    m->d_real = acc[ACC_D_REAL] / nd;
    m->d_x = acc[ACC_D_X] / nd;
    m->d_fake = acc[ACC_D_FAKE] / nd;
    m->d_loss = m->d_real + m->d_fake;
    m->g_loss = acc[ACC_G] / ng;
    if (t->cfg.g_loss == GAN_G_LOSS_MINIMAX)
        m->g_loss = -m->g_loss;
    m->d_g_z = acc[ACC_G_P] / ng;
    m->batch_size = t->epoch_batch;
    m->lr_d = t->cfg.lr_d;
    m->lr_g = t->cfg.lr_g;
    m->seconds = t->epoch_seconds + (now_seconds() - t0);
    m->samples_per_sec = m->seconds > 0 ? (double)iters * t->epoch_batch / m->seconds : 0.0;
    if (!isfinite(m->d_real) || !isfinite(m->d_fake) || !isfinite(m->g_loss))
        return gan_fail(err, "loss", "non-finite loss at epoch %d, iteration %d", m->epoch,
                        acc[ACC_NONFINITE] > 0 ? (int)acc[ACC_NONFINITE] : iters);

    t->epoch++;
    t->iteration = 0;
    t->d_steps_in_epoch = 0;
    t->epoch_seconds = 0.0;
    t->be->ops->fill(t->be, t->acc, ACC_COUNT, 0.0f);
    if (start_epoch(t) != 0)
        return check(t, err);
    return check(t, err);
}

int gan_trainer_download_generator(gan_trainer *t, float *host, gan_error *err)
{
    t->be->ops->download(t->be, host, t->g_p, t->g_n * sizeof(float));
    return check(t, err);
}

int gan_trainer_download_sampler(gan_trainer *t, float *host, gan_error *err)
{
    t->be->ops->download(t->be, host, t->g_e ? t->g_e : t->g_p, t->g_n * sizeof(float));
    return check(t, err);
}

int gan_trainer_download_discriminator(gan_trainer *t, float *host, gan_error *err)
{
    t->be->ops->download(t->be, host, t->d_p, t->d_n * sizeof(float));
    return check(t, err);
}

/* ---- checkpoints (the format: gan/checkpoint.c) --------------------------- */

int gan_trainer_save(gan_trainer *t, const char *path, gan_error *err)
{
    gk_backend *be = t->be;
    size_t total = 3 * (t->g_n + t->d_n) + ACC_COUNT + (t->g_e ? t->g_n : 0);
    float *host = malloc(total * sizeof(float));
    if (!host)
        return gan_fail(err, "checkpoint", "out of memory saving a checkpoint");
    gan_checkpoint_state s;
    memset(&s, 0, sizeof s);
    s.cfg = t->cfg;
    s.g_n = t->g_n;
    s.d_n = t->d_n;
    s.acc_n = ACC_COUNT;
    s.g = host;
    s.g_m = s.g + t->g_n;
    s.g_v = s.g_m + t->g_n;
    s.d = s.g_v + t->g_n;
    s.d_m = s.d + t->d_n;
    s.d_v = s.d_m + t->d_n;
    s.acc = s.d_v + t->d_n;
    s.g_ema = t->g_e ? s.acc + ACC_COUNT : NULL;
    be->ops->download(be, s.g, t->g_p, t->g_n * sizeof(float));
    be->ops->download(be, s.g_m, t->g_m, t->g_n * sizeof(float));
    be->ops->download(be, s.g_v, t->g_v, t->g_n * sizeof(float));
    be->ops->download(be, s.d, t->d_p, t->d_n * sizeof(float));
    be->ops->download(be, s.d_m, t->d_m, t->d_n * sizeof(float));
    be->ops->download(be, s.d_v, t->d_v, t->d_n * sizeof(float));
    be->ops->download(be, s.acc, t->acc, ACC_COUNT * sizeof(float));
    if (t->g_e)
        be->ops->download(be, s.g_ema, t->g_e, t->g_n * sizeof(float));
    s.pos = (gan_checkpoint_position){
        t->epoch,        t->iteration,      t->epoch_batch,      t->g_steps,
        t->d_steps_done, t->dropout_passes, t->d_steps_in_epoch, t->epoch_seconds};
    int rc = check(t, err) == 0 ? gan_checkpoint_write(path, &s, err) : -1;
    free(host);
    return rc;
}

int gan_trainer_load(gan_trainer *t, const char *path, gan_error *err)
{
    gan_checkpoint_state s;
    if (gan_checkpoint_read(path, &t->cfg, ACC_COUNT, &s, err) != 0)
        return -1;
    int rc = -1;
    const gan_checkpoint_position *p = &s.pos;
    if (p->epoch_batch_size > t->count || p->iteration > t->count / p->epoch_batch_size) {
        gan_fail(err, "checkpoint",
                 "checkpoint position (batch %d, iteration %d) does not fit this data set of %d "
                 "images",
                 p->epoch_batch_size, p->iteration, t->count);
        goto out;
    }
    gk_backend *be = t->be;
    be->ops->upload(be, t->g_p, s.g, t->g_n * sizeof(float));
    be->ops->upload(be, t->d_p, s.d, t->d_n * sizeof(float));
    if (t->g_e)
        be->ops->upload(be, t->g_e, s.g_ema, t->g_n * sizeof(float));
    be->ops->upload(be, t->g_m, s.g_m, t->g_n * sizeof(float));
    be->ops->upload(be, t->d_m, s.d_m, t->d_n * sizeof(float));
    be->ops->upload(be, t->acc, s.acc, ACC_COUNT * sizeof(float));
    if (s.g_v)
        be->ops->upload(be, t->g_v, s.g_v, t->g_n * sizeof(float));
    if (s.d_v)
        be->ops->upload(be, t->d_v, s.d_v, t->d_n * sizeof(float));
    t->epoch_seconds = p->epoch_seconds;
    drop_graph(t); /* the next step uploads the loaded counters and captures anew */
    gan_trainer_set_config(t, &s.cfg);
    t->epoch = p->epoch;
    t->g_steps = p->g_steps;
    t->d_steps_done = p->d_steps;
    t->dropout_passes = p->dropout_passes;
    t->d_steps_in_epoch = (int)p->d_steps_in_epoch;
    /* rebuild the epoch in progress with the batch size it started with */
    int wanted = t->cfg.batch_size;
    t->cfg.batch_size = p->epoch_batch_size;
    if (start_epoch(t) != 0) {
        check(t, err);
        goto out;
    }
    t->cfg.batch_size = wanted;
    t->iteration = p->iteration;
    rc = check(t, err);
out:
    gan_checkpoint_state_free(&s);
    return rc;
}

/* ---- gradient-check hooks ----------------------------------------------- */

typedef struct counters {
    int64_t g_steps, d_steps_done, dropout_passes;
    float acc[ACC_COUNT];
} counters;

static void counters_save(gan_trainer *t, counters *c)
{
    c->g_steps = t->g_steps;
    c->d_steps_done = t->d_steps_done;
    c->dropout_passes = t->dropout_passes;
    t->be->ops->download(t->be, c->acc, t->acc, sizeof c->acc);
    t->be->ops->fill(t->be, t->acc, ACC_COUNT, 0.0f);
}

static void counters_restore(gan_trainer *t, const counters *c, float *acc_now)
{
    t->be->ops->download(t->be, acc_now, t->acc, ACC_COUNT * sizeof(float));
    t->be->ops->upload(t->be, t->acc, c->acc, sizeof c->acc);
    t->g_steps = c->g_steps;
    t->d_steps_done = c->d_steps_done;
    t->dropout_passes = c->dropout_passes;
}

int gan_trainer_eval_d_loss(gan_trainer *t, double *loss, float *grad_host, gan_error *err)
{
    counters c;
    float acc[ACC_COUNT];
    counters_save(t, &c);
    discriminator_loss_grad(t, t->epoch_batch, gk_step_value(0), 1); /* the first batch */
    counters_restore(t, &c, acc);
    *loss = (double)acc[ACC_D_REAL] + (double)acc[ACC_D_FAKE];
    if (grad_host)
        t->be->ops->download(t->be, grad_host, t->d_g, t->d_n * sizeof(float));
    t->be->ops->fill(t->be, t->d_g, t->d_n, 0.0f); /* the next backward pass adds to it */
    return check(t, err);
}

int gan_trainer_eval_g_loss(gan_trainer *t, double *loss, float *grad_host, gan_error *err)
{
    counters c;
    float acc[ACC_COUNT];
    counters_save(t, &c);
    generator_loss_grad(t, t->epoch_batch);
    counters_restore(t, &c, acc);
    *loss = t->cfg.g_loss == GAN_G_LOSS_NONSATURATING ? (double)acc[ACC_G] : -(double)acc[ACC_G];
    if (grad_host)
        t->be->ops->download(t->be, grad_host, t->g_g, t->g_n * sizeof(float));
    t->be->ops->fill(t->be, t->g_g, t->g_n, 0.0f); /* the next backward pass adds to it */
    return check(t, err);
}

int gan_trainer_set_params(gan_trainer *t, const float *g_host, const float *d_host, gan_error *err)
{
    if (g_host)
        t->be->ops->upload(t->be, t->g_p, g_host, t->g_n * sizeof(float));
    if (d_host)
        t->be->ops->upload(t->be, t->d_p, d_host, t->d_n * sizeof(float));
    return check(t, err);
}
