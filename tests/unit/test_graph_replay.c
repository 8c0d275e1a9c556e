/*
 * tests/unit/test_graph_replay.c — graph replay on a CPU backend that records
 * and replays ops like a CUDA graph: a replayed iteration gives the same bits
 * as eager ones, across presets, patches and a resume, and SGD's momentum
 * follows the epoch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gan/checkpoint.h"
#include "gan/config.h"
#include "gan/idx.h"
#include "gan/safetensors.h"
#include "gan/trainer.h"
#include "trainer_fixture.h"
#include "kernels/backend.h"
#include "kernels/elementwise.h"

/* ---- graph replay, emulated on the CPU ----------------------------------
 * A backend that wraps the CPU's ops and whose graph_* behave as CUDA's stream
 * capture does: between graph_begin and graph_end the ops are recorded,
 * not run, and graph_launch runs the recording again with the arguments the
 * ops were issued with. Anything per-iteration that the trainer baked into
 * an op's arguments instead of reading it through a gk_step, a counter the
 * host forgets to advance on a replay, or a graph kept after a change that
 * should drop it, makes such a run differ from the plain CPU run; they must
 * agree bit for bit. Ops that may not be issued during a capture count as
 * misuse.
 */

enum fop {
    F_SGEMM,
    F_BIAS_ADD,
    F_BIAS_RELU,
    F_BIAS_GRAD,
    F_RELU_BWD,
    F_SIGMOID_FWD,
    F_SIGMOID_BWD,
    F_BIAS_MAXOUT,
    F_MAXOUT_BWD,
    F_LINEAR1_BWD,
    F_DROPOUT_FWD,
    F_DROPOUT_BWD,
    F_SIGMOID_BCE,
    F_ADAM,
    F_SGD,
    F_FILL_NORMAL,
    F_FILL_UNIFORM,
    F_GATHER,
    F_EMA,
    F_CLIP,
    F_MARK,
    F_COUNTERS_ADD
};

typedef struct fcall {
    enum fop op;
    bool b0, b1;
    int i[6];
    size_t n;
    float f[3];
    double d;
    const void *p[6];
    gk_rng rng;
    gk_adam adam;
    gk_lr lr;
    gk_momentum mom;
    gk_step st, st2;
    int64_t blocks;
    gk_counters ctr;
} fcall;

struct gk_graph {
    fcall *calls;
    int n;
};

static struct {
    const gk_backend_ops *cpu;
    gk_backend_ops ops;
    gk_backend be;
    bool recording;
    fcall *rec;
    int nrec, cap;
    int captures, launches, misuse;
} fake;

static fcall *fake_push(enum fop op)
{
    if (fake.nrec == fake.cap) {
        fake.cap = fake.cap ? 2 * fake.cap : 256;
        fake.rec = realloc(fake.rec, (size_t)fake.cap * sizeof *fake.rec);
        assert_non_null(fake.rec);
    }
    fcall *c = &fake.rec[fake.nrec++];
    memset(c, 0, sizeof *c);
    c->op = op;
    return c;
}

/* Run now unless recording. */
#define EAGER(call)                                                                                \
    do {                                                                                           \
        if (!fake.recording) {                                                                     \
            fake.cpu->call;                                                                        \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static void f_sgemm(gk_backend *b, bool ta, bool tb, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *bm, int ldb, float beta, float *c,
                    int ldc)
{
    EAGER(sgemm(b, ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc));
    fcall *r = fake_push(F_SGEMM);
    r->b0 = ta, r->b1 = tb, r->f[0] = alpha, r->f[1] = beta;
    r->i[0] = m, r->i[1] = n, r->i[2] = k, r->i[3] = lda, r->i[4] = ldb, r->i[5] = ldc;
    r->p[0] = a, r->p[1] = bm, r->p[2] = c;
}

static void f_bias_add(gk_backend *b, float *y, const float *bias, int rows, int cols)
{
    EAGER(bias_add(b, y, bias, rows, cols));
    fcall *r = fake_push(F_BIAS_ADD);
    r->p[0] = y, r->p[1] = bias, r->i[0] = rows, r->i[1] = cols;
}

static void f_bias_relu(gk_backend *b, float *y, const float *x, const float *bias, int rows,
                        int cols, float slope)
{
    EAGER(bias_relu(b, y, x, bias, rows, cols, slope));
    fcall *r = fake_push(F_BIAS_RELU);
    r->p[0] = y, r->p[1] = x, r->p[2] = bias, r->i[0] = rows, r->i[1] = cols, r->f[0] = slope;
}

static void f_bias_grad(gk_backend *b, float *db, const float *dy, int rows, int cols, bool acc)
{
    EAGER(bias_grad(b, db, dy, rows, cols, acc));
    fcall *r = fake_push(F_BIAS_GRAD);
    r->p[0] = db, r->p[1] = dy, r->i[0] = rows, r->i[1] = cols, r->b0 = acc;
}

static void f_relu_bwd(gk_backend *b, float *dx, const float *dy, const float *y, size_t n,
                       float slope)
{
    EAGER(relu_backward(b, dx, dy, y, n, slope));
    fcall *r = fake_push(F_RELU_BWD);
    r->p[0] = dx, r->p[1] = dy, r->p[2] = y, r->n = n, r->f[0] = slope;
}

static void f_sigmoid_fwd(gk_backend *b, float *y, const float *x, size_t n)
{
    EAGER(sigmoid_forward(b, y, x, n));
    fcall *r = fake_push(F_SIGMOID_FWD);
    r->p[0] = y, r->p[1] = x, r->n = n;
}

static void f_sigmoid_bwd(gk_backend *b, float *dx, const float *dy, const float *y, size_t n)
{
    EAGER(sigmoid_backward(b, dx, dy, y, n));
    fcall *r = fake_push(F_SIGMOID_BWD);
    r->p[0] = dx, r->p[1] = dy, r->p[2] = y, r->n = n;
}

static void f_bias_maxout(gk_backend *b, float *y, int32_t *arg, const float *x, const float *bias,
                          int rows, int units, int pieces)
{
    EAGER(bias_maxout(b, y, arg, x, bias, rows, units, pieces));
    fcall *r = fake_push(F_BIAS_MAXOUT);
    r->p[0] = y, r->p[1] = arg, r->p[2] = x, r->p[3] = bias;
    r->i[0] = rows, r->i[1] = units, r->i[2] = pieces;
}

static void f_maxout_bwd(gk_backend *b, float *dx, float *db, const float *dy, const float *mask,
                         const int32_t *arg, int rows, int units, int pieces, bool acc)
{
    EAGER(maxout_backward(b, dx, db, dy, mask, arg, rows, units, pieces, acc));
    fcall *r = fake_push(F_MAXOUT_BWD);
    r->p[0] = dx, r->p[1] = db, r->p[2] = dy, r->p[3] = mask, r->p[4] = arg;
    r->i[0] = rows, r->i[1] = units, r->i[2] = pieces, r->b0 = acc;
}

static void f_linear1_bwd(gk_backend *b, float *dx, float *dw, float *db, const float *dy,
                          const float *x, const float *w, int rows, int cols, bool acc)
{
    EAGER(linear1_backward(b, dx, dw, db, dy, x, w, rows, cols, acc));
    fcall *r = fake_push(F_LINEAR1_BWD);
    r->p[0] = dx, r->p[1] = dw, r->p[2] = db, r->p[3] = dy, r->p[4] = x, r->p[5] = w;
    r->i[0] = rows, r->i[1] = cols, r->b0 = acc;
}

static void f_dropout_fwd(gk_backend *b, float *y, float *mask, const float *x, size_t n, float p,
                          gk_rng rng)
{
    EAGER(dropout_forward(b, y, mask, x, n, p, rng));
    fcall *r = fake_push(F_DROPOUT_FWD);
    r->p[0] = y, r->p[1] = mask, r->p[2] = x, r->n = n, r->f[0] = p, r->rng = rng;
}

static void f_dropout_bwd(gk_backend *b, float *dx, const float *dy, const float *mask, size_t n)
{
    EAGER(dropout_backward(b, dx, dy, mask, n));
    fcall *r = fake_push(F_DROPOUT_BWD);
    r->p[0] = dx, r->p[1] = dy, r->p[2] = mask, r->n = n;
}

static void f_sigmoid_bce(gk_backend *b, float *dlogit, float *acc, const float *logit, int n,
                          float target, float scale)
{
    EAGER(sigmoid_bce(b, dlogit, acc, logit, n, target, scale));
    fcall *r = fake_push(F_SIGMOID_BCE);
    r->p[0] = dlogit, r->p[1] = acc, r->p[2] = logit, r->i[0] = n, r->f[0] = target,
    r->f[1] = scale;
}

static void f_adam(gk_backend *b, float *p, float *g, float *m, float *v, size_t n, gk_adam hp)
{
    EAGER(adam(b, p, g, m, v, n, hp));
    fcall *r = fake_push(F_ADAM);
    r->p[0] = p, r->p[1] = g, r->p[2] = m, r->p[3] = v, r->n = n, r->adam = hp;
}

static void f_sgd(gk_backend *b, float *p, float *g, float *vel, size_t n, gk_lr lr, gk_step step,
                  gk_momentum mom, gk_step epoch)
{
    EAGER(sgd_momentum(b, p, g, vel, n, lr, step, mom, epoch));
    fcall *r = fake_push(F_SGD);
    r->p[0] = p, r->p[1] = g, r->p[2] = vel, r->n = n, r->lr = lr, r->st = step, r->mom = mom,
    r->st2 = epoch;
}

static void f_fill_normal(gk_backend *b, float *x, size_t n, gk_rng rng, float mean, float std)
{
    EAGER(fill_normal(b, x, n, rng, mean, std));
    fcall *r = fake_push(F_FILL_NORMAL);
    r->p[0] = x, r->n = n, r->rng = rng, r->f[0] = mean, r->f[1] = std;
}

static void f_fill_uniform(gk_backend *b, float *x, size_t n, gk_rng rng, float lo, float hi)
{
    EAGER(fill_uniform(b, x, n, rng, lo, hi));
    fcall *r = fake_push(F_FILL_UNIFORM);
    r->p[0] = x, r->n = n, r->rng = rng, r->f[0] = lo, r->f[1] = hi;
}

static void f_gather(gk_backend *b, float *dst, const uint8_t *src, const int32_t *index, int rows,
                     int cols, float scale, gk_step block, int64_t blocks)
{
    EAGER(gather_rows_u8(b, dst, src, index, rows, cols, scale, block, blocks));
    fcall *r = fake_push(F_GATHER);
    r->p[0] = dst, r->p[1] = src, r->p[2] = index, r->i[0] = rows, r->i[1] = cols;
    r->f[0] = scale, r->st = block, r->blocks = blocks;
}

static void f_ema(gk_backend *b, float *y, const float *x, size_t n, double decay, gk_step step)
{
    EAGER(ema_update(b, y, x, n, decay, step));
    fcall *r = fake_push(F_EMA);
    r->p[0] = y, r->p[1] = x, r->n = n, r->d = decay, r->st = step;
}

static void f_clip(gk_backend *b, float *W, int rows, int cols, float max_norm)
{
    EAGER(clip_row_norms(b, W, rows, cols, max_norm));
    fcall *r = fake_push(F_CLIP);
    r->p[0] = W, r->i[0] = rows, r->i[1] = cols, r->f[0] = max_norm;
}

static void f_mark(gk_backend *b, float *acc, int n, int slot, gk_step tag)
{
    EAGER(mark_nonfinite(b, acc, n, slot, tag));
    fcall *r = fake_push(F_MARK);
    r->p[0] = acc, r->i[0] = n, r->i[1] = slot, r->st = tag;
}

static void f_counters_add(gk_backend *b, int64_t *c, gk_counters delta)
{
    EAGER(counters_add(b, c, delta));
    fcall *r = fake_push(F_COUNTERS_ADD);
    r->p[0] = c, r->ctr = delta;
}

#define MUT(p) ((void *)(uintptr_t)(p))

static void fake_run(gk_backend *b, const fcall *c)
{
    const gk_backend_ops *o = fake.cpu;
    switch (c->op) {
    case F_SGEMM:
        o->sgemm(b, c->b0, c->b1, c->i[0], c->i[1], c->i[2], c->f[0], c->p[0], c->i[3], c->p[1],
                 c->i[4], c->f[1], MUT(c->p[2]), c->i[5]);
        break;
    case F_BIAS_ADD:
        o->bias_add(b, MUT(c->p[0]), c->p[1], c->i[0], c->i[1]);
        break;
    case F_BIAS_RELU:
        o->bias_relu(b, MUT(c->p[0]), c->p[1], c->p[2], c->i[0], c->i[1], c->f[0]);
        break;
    case F_BIAS_GRAD:
        o->bias_grad(b, MUT(c->p[0]), c->p[1], c->i[0], c->i[1], c->b0);
        break;
    case F_RELU_BWD:
        o->relu_backward(b, MUT(c->p[0]), c->p[1], c->p[2], c->n, c->f[0]);
        break;
    case F_SIGMOID_FWD:
        o->sigmoid_forward(b, MUT(c->p[0]), c->p[1], c->n);
        break;
    case F_SIGMOID_BWD:
        o->sigmoid_backward(b, MUT(c->p[0]), c->p[1], c->p[2], c->n);
        break;
    case F_BIAS_MAXOUT:
        o->bias_maxout(b, MUT(c->p[0]), MUT(c->p[1]), c->p[2], c->p[3], c->i[0], c->i[1], c->i[2]);
        break;
    case F_MAXOUT_BWD:
        o->maxout_backward(b, MUT(c->p[0]), MUT(c->p[1]), c->p[2], c->p[3], c->p[4], c->i[0],
                           c->i[1], c->i[2], c->b0);
        break;
    case F_LINEAR1_BWD:
        o->linear1_backward(b, MUT(c->p[0]), MUT(c->p[1]), MUT(c->p[2]), c->p[3], c->p[4], c->p[5],
                            c->i[0], c->i[1], c->b0);
        break;
    case F_DROPOUT_FWD:
        o->dropout_forward(b, MUT(c->p[0]), MUT(c->p[1]), c->p[2], c->n, c->f[0], c->rng);
        break;
    case F_DROPOUT_BWD:
        o->dropout_backward(b, MUT(c->p[0]), c->p[1], c->p[2], c->n);
        break;
    case F_SIGMOID_BCE:
        o->sigmoid_bce(b, MUT(c->p[0]), MUT(c->p[1]), c->p[2], c->i[0], c->f[0], c->f[1]);
        break;
    case F_ADAM:
        o->adam(b, MUT(c->p[0]), MUT(c->p[1]), MUT(c->p[2]), MUT(c->p[3]), c->n, c->adam);
        break;
    case F_SGD:
        o->sgd_momentum(b, MUT(c->p[0]), MUT(c->p[1]), MUT(c->p[2]), c->n, c->lr, c->st, c->mom,
                        c->st2);
        break;
    case F_FILL_NORMAL:
        o->fill_normal(b, MUT(c->p[0]), c->n, c->rng, c->f[0], c->f[1]);
        break;
    case F_FILL_UNIFORM:
        o->fill_uniform(b, MUT(c->p[0]), c->n, c->rng, c->f[0], c->f[1]);
        break;
    case F_GATHER:
        o->gather_rows_u8(b, MUT(c->p[0]), c->p[1], c->p[2], c->i[0], c->i[1], c->f[0], c->st,
                          c->blocks);
        break;
    case F_EMA:
        o->ema_update(b, MUT(c->p[0]), c->p[1], c->n, c->d, c->st);
        break;
    case F_CLIP:
        o->clip_row_norms(b, MUT(c->p[0]), c->i[0], c->i[1], c->f[0]);
        break;
    case F_MARK:
        o->mark_nonfinite(b, MUT(c->p[0]), c->i[0], c->i[1], c->st);
        break;
    case F_COUNTERS_ADD:
        o->counters_add(b, MUT(c->p[0]), c->ctr);
        break;
    }
}

static bool f_graph_begin(gk_backend *b)
{
    (void)b;
    if (fake.recording) {
        fake.misuse++;
        return false;
    }
    fake.recording = true;
    fake.nrec = 0;
    return true;
}

static gk_graph *f_graph_end(gk_backend *b)
{
    (void)b;
    if (!fake.recording)
        fake.misuse++;
    fake.recording = false;
    gk_graph *g = malloc(sizeof *g);
    assert_non_null(g);
    g->n = fake.nrec;
    g->calls = malloc((size_t)(g->n ? g->n : 1) * sizeof *g->calls);
    assert_non_null(g->calls);
    memcpy(g->calls, fake.rec, (size_t)g->n * sizeof *g->calls);
    fake.captures++;
    return g;
}

static void f_graph_launch(gk_backend *b, gk_graph *g)
{
    if (fake.recording)
        fake.misuse++;
    for (int i = 0; i < g->n; i++)
        fake_run(b, &g->calls[i]);
    fake.launches++;
}

static void f_graph_free(gk_backend *b, gk_graph *g)
{
    (void)b;
    if (!g)
        return;
    free(g->calls);
    free(g);
}

/* Ops that may not be issued during a capture (they would run at once, or sync). */
#define GUARD(call)                                                                                \
    do {                                                                                           \
        if (fake.recording)                                                                        \
            fake.misuse++;                                                                         \
        return fake.cpu->call;                                                                     \
    } while (0)
static void *f_alloc(gk_backend *b, size_t n)
{
    GUARD(alloc(b, n));
}
static void f_free(gk_backend *b, void *p)
{
    GUARD(free(b, p));
}
static void f_upload(gk_backend *b, void *d, const void *s, size_t n)
{
    GUARD(upload(b, d, s, n));
}
static void f_download(gk_backend *b, void *d, const void *s, size_t n)
{
    GUARD(download(b, d, s, n));
}
static void f_copy(gk_backend *b, void *d, const void *s, size_t n)
{
    GUARD(copy(b, d, s, n));
}
static void f_sync(gk_backend *b)
{
    GUARD(synchronize(b));
}
static void f_relu_fwd(gk_backend *b, float *y, const float *x, size_t n, float s)
{
    GUARD(relu_forward(b, y, x, n, s));
}
static void f_maxout_fwd(gk_backend *b, float *y, int32_t *a, const float *x, int r, int u, int p)
{
    GUARD(maxout_forward(b, y, a, x, r, u, p));
}
static void f_sum(gk_backend *b, float *acc, const float *x, size_t n)
{
    GUARD(sum(b, acc, x, n));
}
static void f_fill(gk_backend *b, float *x, size_t n, float v)
{
    GUARD(fill(b, x, n, v));
}
static void f_axpy(gk_backend *b, float *y, const float *x, size_t n, float a)
{
    GUARD(axpy(b, y, x, n, a));
}

static gk_backend *fake_graph_backend(void)
{
    fake.cpu = be->ops;
    gk_backend_ops o = {
        .name = "cpu-graphs",
        .alloc = f_alloc,
        .free = f_free,
        .upload = f_upload,
        .download = f_download,
        .copy = f_copy,
        .synchronize = f_sync,
        .sgemm = f_sgemm,
        .bias_add = f_bias_add,
        .bias_relu = f_bias_relu,
        .bias_grad = f_bias_grad,
        .relu_forward = f_relu_fwd,
        .relu_backward = f_relu_bwd,
        .sigmoid_forward = f_sigmoid_fwd,
        .sigmoid_backward = f_sigmoid_bwd,
        .maxout_forward = f_maxout_fwd,
        .bias_maxout = f_bias_maxout,
        .maxout_backward = f_maxout_bwd,
        .linear1_backward = f_linear1_bwd,
        .dropout_forward = f_dropout_fwd,
        .dropout_backward = f_dropout_bwd,
        .sigmoid_bce = f_sigmoid_bce,
        .adam = f_adam,
        .sgd_momentum = f_sgd,
        .fill_normal = f_fill_normal,
        .fill_uniform = f_fill_uniform,
        .gather_rows_u8 = f_gather,
        .sum = f_sum,
        .fill = f_fill,
        .axpy = f_axpy,
        .ema_update = f_ema,
        .clip_row_norms = f_clip,
        .mark_nonfinite = f_mark,
        .counters_add = f_counters_add,
        .set_tf32 = NULL,
        .graph_begin = f_graph_begin,
        .graph_end = f_graph_end,
        .graph_launch = f_graph_launch,
        .graph_free = f_graph_free,
    };
    fake.ops = o;
    memset(&fake.be, 0, sizeof fake.be);
    fake.be.ops = &fake.ops;
    snprintf(fake.be.device, sizeof fake.be.device, "CPU with emulated graphs");
    fake.recording = false;
    fake.captures = fake.launches = fake.misuse = 0;
    return &fake.be;
}

/* Everything a run leaves behind that must agree. */
typedef struct run_result {
    float *g, *d, *sampler;
    double metrics[8][5];
    int epochs;
} run_result;

static void result_free(run_result *r)
{
    free(r->g);
    free(r->d);
    free(r->sampler);
}

/*
 * Train `epochs` epochs on backend b. At (patch_epoch, patch_iteration) apply
 * *patch (set_config); at (ckpt_epoch, ckpt_iteration) evaluate the D loss
 * (which must change nothing), save a checkpoint and continue in a new
 * trainer loaded from it. -1 turns either off.
 */
static run_result train_run(gk_backend *b, gan_config c, gan_dataset ds, int epochs,
                            const gan_config *patch, int patch_epoch, int patch_iteration,
                            int ckpt_epoch, int ckpt_iteration)
{
    gan_error err;
    run_result r;
    memset(&r, 0, sizeof r);
    r.epochs = epochs;
    size_t gn = gan_generator_param_count(&c), dn = gan_discriminator_param_count(&c);
    r.g = malloc(gn * 4);
    r.d = malloc(dn * 4);
    r.sampler = malloc(gn * 4);
    gan_trainer *t = gan_trainer_new(b, &c, &ds, &err);
    assert_non_null(t);
    bool patched = false, resumed = false;
    while (gan_trainer_epoch(t) < epochs) {
        int e = gan_trainer_epoch(t), it = gan_trainer_iteration(t);
        if (patch && !patched && e == patch_epoch && it == patch_iteration) {
            gan_trainer_set_config(t, patch);
            patched = true;
        }
        if (!resumed && e == ckpt_epoch && it == ckpt_iteration) {
            resumed = true;
            double loss;
            assert_int_equal(gan_trainer_eval_d_loss(t, &loss, NULL, &err), 0);
            char path[CKPT_PATH_MAX];
            temp_checkpoint_path(path);
            assert_int_equal(gan_trainer_save(t, path, &err), 0);
            gan_trainer_free(t);
            t = gan_trainer_new(b, &c, &ds, &err);
            assert_non_null(t);
            assert_int_equal(gan_trainer_load(t, path, &err), 0);
            unlink(path);
        }
        if (gan_trainer_epoch_complete(t)) {
            gan_epoch_metrics m;
            if (gan_trainer_finish_epoch(t, &m, &err) != 0) {
                print_error("%s: %s\n", b->ops->name, err.message);
                fail();
            }
            double *row = r.metrics[m.epoch - 1];
            row[0] = m.d_real, row[1] = m.d_fake, row[2] = m.g_loss, row[3] = m.d_x,
            row[4] = m.d_g_z;
        } else {
            assert_int_equal(gan_trainer_step(t, &err), 0);
        }
    }
    assert_int_equal(gan_trainer_download_generator(t, r.g, &err), 0);
    assert_int_equal(gan_trainer_download_discriminator(t, r.d, &err), 0);
    assert_int_equal(gan_trainer_download_sampler(t, r.sampler, &err), 0);
    gan_trainer_free(t);
    return r;
}

/* The emulated-graph run equals the plain CPU run bit for bit; returns the captures made. */
static int graphs_match_plain(gan_config c, int count, int epochs, const gan_config *patch,
                              int patch_epoch, int patch_iteration, int ckpt_epoch,
                              int ckpt_iteration)
{
    gan_dataset ds = prefix(count);
    run_result plain = train_run(be, c, ds, epochs, patch, patch_epoch, patch_iteration, ckpt_epoch,
                                 ckpt_iteration);
    gk_backend *g = fake_graph_backend();
    run_result graph = train_run(g, c, ds, epochs, patch, patch_epoch, patch_iteration, ckpt_epoch,
                                 ckpt_iteration);
    assert_int_equal(fake.misuse, 0);
    assert_null(gk_backend_error(g));
    size_t gn = gan_generator_param_count(&c), dn = gan_discriminator_param_count(&c);
    assert_memory_equal(plain.metrics, graph.metrics, sizeof plain.metrics);
    assert_memory_equal(plain.g, graph.g, gn * 4);
    assert_memory_equal(plain.d, graph.d, dn * 4);
    assert_memory_equal(plain.sampler, graph.sampler, gn * 4);
    result_free(&plain);
    result_free(&graph);
    free(fake.rec);
    fake.rec = NULL;
    fake.nrec = fake.cap = 0;
    return fake.captures;
}

/* Adam, two D steps an iteration (the D batches wrap the permutation), a G average. */
static void test_graph_replay_seed(void **state)
{
    (void)state;
    gan_config c = tiny_config();
    c.batch_size = 16;
    c.d_steps = 2;
    c.g_ema = 0.9;
    c.g_output = GAN_G_OUTPUT_SIGMOID;
    c.g_activation = GAN_G_ACT_LEAKY_RELU;
    /* 6 iterations an epoch: one capture (in the second iteration, after an eager
     * warm-up) serves all 3 epochs; every later iteration is one launch */
    assert_int_equal(graphs_match_plain(c, 100, 3, NULL, -1, -1, -1, -1), 1);
    assert_int_equal(fake.launches, 17);
}

/*
 * The momentum SGD uses in each epoch, as the op reads it from the epoch
 * counter: a wrapper of the CPU backend records it at every call.
 */
static float seen_momentum[8];
static int seen_calls[8];
static const gk_backend_ops *cpu_ops;

static void spy_sgd(gk_backend *b, float *p, float *g, float *vel, size_t n, gk_lr lr, gk_step step,
                    gk_momentum mom, gk_step epoch)
{
    int64_t e = (epoch.at ? *epoch.at : 0) + epoch.offset;
    if (e >= 0 && e < 8) {
        seen_momentum[e] = gk_momentum_at(mom.start, mom.final, mom.epochs, e);
        seen_calls[e]++;
    }
    cpu_ops->sgd_momentum(b, p, g, vel, n, lr, step, mom, epoch);
}

static void test_momentum_follows_the_epoch(void **state)
{
    (void)state;
    static gk_backend_ops ops;
    cpu_ops = be->ops;
    ops = *be->ops;
    ops.sgd_momentum = spy_sgd;
    gk_backend spy = *be;
    spy.ops = &ops;
    gan_config c;
    gan_config_preset(&c, "paper", NULL);
    c.latent_dim = 8;
    c.g_hidden = 16;
    c.d_units = 8;
    c.d_pieces = 3;
    c.batch_size = 20;
    c.momentum_epochs = 2;
    gan_dataset ds = prefix(100); /* 5 iterations: 10 SGD calls an epoch */
    gan_error err;
    gan_trainer *t = gan_trainer_new(&spy, &c, &ds, &err);
    assert_non_null(t);
    memset(seen_calls, 0, sizeof seen_calls);
    run_until(t, 4, 0);
    for (int e = 0; e < 4; e++) {
        assert_int_equal(seen_calls[e], 10);
        assert_true(seen_momentum[e] == (float)gan_config_momentum_at(&c, e));
    }
    assert_true(seen_momentum[1] == 0.6f && seen_momentum[3] == 0.7f);
    gan_trainer_free(t);
}

/* SGD with a decaying lr and per-epoch momentum, three dropouts, max-norm, uniform noise */
static void test_graph_replay_paper(void **state)
{
    (void)state;
    gan_config c;
    gan_config_preset(&c, "paper", NULL);
    c.latent_dim = 8;
    c.g_hidden = 16;
    c.d_units = 8;
    c.d_pieces = 3;
    c.batch_size = 20;
    c.momentum_epochs = 2; /* momentum 0.5, 0.6, then 0.7 for good */
    /* the momentum is read from the epoch counter: one capture serves all four epochs */
    assert_int_equal(graphs_match_plain(c, 100, 4, NULL, -1, -1, -1, -1), 1);
}

/*
 * A config patch in the middle of an epoch (lr, betas, g_loss and d_steps at
 * the next iteration, batch size at the next epoch) and a checkpoint resume
 * in the middle of another: each drops the graph, and the run still equals
 * the plain one.
 */
static void test_graph_replay_patch_and_resume(void **state)
{
    (void)state;
    gan_config c = tiny_config();
    c.batch_size = 16;
    gan_config p = c;
    p.lr_d = c.lr_d * 0.5;
    p.lr_g = c.lr_g * 2;
    p.beta1 = 0.7;
    p.g_loss = GAN_G_LOSS_MINIMAX;
    p.d_steps = 2;
    p.batch_size = 40; /* buffers reallocated at the next epoch */
    /* captures: epoch 0; after the patch (1, 2); epoch 2 (new batch); after the resume (3, 1) */
    assert_int_equal(graphs_match_plain(c, 120, 5, &p, 1, 2, 3, 1), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_replay_seed),
        cmocka_unit_test(test_graph_replay_paper),
        cmocka_unit_test(test_momentum_follows_the_epoch),
        cmocka_unit_test(test_graph_replay_patch_and_resume),
    };
    return cmocka_run_group_tests_name("graph_replay", tests, load_digits, free_digits);
}
