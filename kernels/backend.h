/*
 * kernels/backend.h — the numeric backend interface.
 *
 * A backend is a table of function pointers plus an opaque context (the ggml
 * pattern). Every op exists on every backend with the same name and meaning;
 * tests/unit/test_ops.c holds each backend to a float64 reference.
 *
 * Design choices a reader would otherwise wonder about:
 *  - Buffers are plain `float *` / `int32_t *` that point into the backend's
 *    memory (host memory on the CPU, device memory on CUDA). Only alloc/free/
 *    upload/download may cross between host and backend memory.
 *  - Ops return nothing. A backend keeps a sticky error (the first failure,
 *    with file and line); callers check `gk_backend_error()` at points where
 *    they can turn it into a failed run. Nothing in here exits the process.
 *  - Matrices are row-major. sgemm computes C = alpha·op(A)·op(B) + beta·C
 *    with op(X) = X or Xᵀ, exactly like cblas_sgemm(CblasRowMajor, ...).
 *  - Random numbers are Philox-4x32-10 (see elementwise.h) keyed by the run seed;
 *    the counter is (purpose, step, element index), so every backend draws the
 *    same numbers whatever its launch shape.
 *  - Values that change every training iteration (a Philox step, Adam's t,
 *    the decayed learning rate, the batch's place in the permutation, the
 *    tag of mark_nonfinite) are passed as a gk_step: a pointer into a block
 *    of int64 counters in backend memory plus a fixed offset, read when the
 *    op runs, not when it is issued. The iteration advances the block with
 *    counters_add. So one recorded iteration (a CUDA graph, see graph_begin)
 *    replays with the right values: its launches never hold the step itself.
 *
 * Thread safety: a backend is used by one thread at a time, and its sticky
 * error (gk_backend_fail) belongs to that thread. gand gives each backend to
 * its worker thread; request threads render on the host (gan_generate),
 * never through a backend.
 *
 * Empty shapes: every op given a count of 0, or 0 rows or columns (sgemm: m,
 * n or k of 0), returns without touching memory or failing, on every
 * backend, except the sums, which add the sum of nothing: bias_grad (and
 * the db of maxout_backward, the dw and db of linear1_backward) sets it to 0
 * (unless accumulating) and sum adds 0. The losses, which add means,
 * add nothing over nothing: sigmoid_bce with n = 0 and softmax_ce with 0 rows
 * or 0 columns leave acc as it was (and check no labels).
 */
#ifndef GAND_KERNELS_BACKEND_H
#define GAND_KERNELS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a Philox draw is for: part of the counter, so streams never overlap. */
enum gk_purpose {
    GK_PURPOSE_INIT = 1,          /* weight initialisation; step = tensor number */
    GK_PURPOSE_NOISE_D = 2,       /* z for the D step; step = D-step number */
    GK_PURPOSE_NOISE_G = 3,       /* z' for the G step; step = G-step number */
    GK_PURPOSE_DROPOUT = 4,       /* dropout mask (classifier: hidden 1); step = forward pass */
    GK_PURPOSE_SHUFFLE = 5,       /* epoch permutation; step = epoch */
    GK_PURPOSE_FIXED = 6,         /* fixed sample noise; step = 0 */
    GK_PURPOSE_REQUEST = 7,       /* noise for an on-request sample grid */
    GK_PURPOSE_DROPOUT_IN = 8,    /* input dropout (preset paper) */
    GK_PURPOSE_DROPOUT_FINAL = 9, /* after the second maxout (paper), the classifier's hidden 2 */
    GK_PURPOSE_EVAL = 10,         /* noise of the samples an evaluation scores */
    GK_PURPOSE_AUGMENT = 11       /* the classifier's image shifts; step = epoch */
};

/*
 * An integer an op reads when it runs: *at + offset when `at` is non-NULL
 * (at points into backend memory, e.g. a gk_counters block), else offset.
 */
typedef struct gk_step {
    const int64_t *at;
    int64_t offset;
} gk_step;

/* A step known when the op is issued. */
static inline gk_step gk_step_value(int64_t v)
{
    gk_step s;
    s.at = NULL;
    s.offset = v;
    return s;
}

/* A block of GK_COUNTERS step counters (in backend memory), or increments of one. */
enum { GK_COUNTERS = 8 };
typedef struct gk_counters {
    int64_t v[GK_COUNTERS];
} gk_counters;

/* Key of one stream of random numbers: seed, purpose and step (its low 32 bits). */
typedef struct gk_rng {
    uint64_t seed;
    uint32_t purpose;
    gk_step step;
} gk_rng;

typedef struct gk_backend gk_backend;

/*
 * A learning rate decayed per step, as gan_config_lr_at computes it:
 * lr_t = max(lr / decay^t, min) in double, rounded to float; decay 1 keeps lr.
 */
typedef struct gk_lr {
    double lr, decay, min;
} gk_lr;

/*
 * SGD momentum ramped per epoch, as gan_config_momentum_at computes it:
 * linear from start to final over `epochs` epochs, then final; epochs 0 keeps
 * start. In double, rounded to float.
 */
typedef struct gk_momentum {
    double start, final;
    int64_t epochs;
} gk_momentum;

/* Adam hyper-parameters for one update; t counts from 1 and also steps the lr. */
typedef struct gk_adam {
    gk_lr lr;
    float beta1, beta2, eps, weight_decay;
    gk_step t;
} gk_adam;

/* A graph of recorded ops (graph_begin); opaque, owned by whoever ended the capture. */
typedef struct gk_graph gk_graph;

/*
 * The table of ops. Shapes are given as rows × cols of row-major matrices;
 * `n` is an element count. "acc" outputs are accumulated (+=), everything
 * else is overwritten. None may be NULL unless marked optional.
 */
typedef struct gk_backend_ops {
    const char *name; /* "cpu", "cuda" */

    void *(*alloc)(gk_backend *be, size_t bytes); /* zero-filled; NULL + error on failure */
    void (*free)(gk_backend *be, void *p);
    void (*upload)(gk_backend *be, void *dst, const void *host_src, size_t bytes);
    void (*download)(gk_backend *be, void *host_dst, const void *src, size_t bytes);
    void (*copy)(gk_backend *be, void *dst, const void *src, size_t bytes);
    void (*synchronize)(gk_backend *be);

    void (*sgemm)(gk_backend *be, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                  const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

    /* y[r][c] += bias[c] */
    void (*bias_add)(gk_backend *be, float *y, const float *bias, int rows, int cols);
    /*
     * Fused bias + (leaky) ReLU: v = x[r][c] + bias[c], y[r][c] = v > 0 ? v :
     * slope·v. Bit for bit bias_add then relu_forward; y == x allowed.
     */
    void (*bias_relu)(gk_backend *be, float *y, const float *x, const float *bias, int rows,
                      int cols, float slope);
    /* db[c] (+)= sum_r dy[r][c]; accumulate selects += over = */
    void (*bias_grad)(gk_backend *be, float *db, const float *dy, int rows, int cols,
                      bool accumulate);
    /*
     * The backward pass of a linear layer with one output (D's last), in one
     * pass over x and dx: dy holds one gradient per row, x is rows × cols, w
     * the cols weights, and
     *   dw[c] (+)= Σ_r dy[r]·x[r][c],  db[0] (+)= Σ_r dy[r]  (bias_grad's sum)
     * when dw and db are non-NULL (both or neither; accumulate selects +=),
     *   dx[r][c] = dy[r]·w[c]  when dx is non-NULL (dx must not overlap x).
     * As sgemm calls these have k or m = 1, which OpenBLAS 0.3.21 runs slowly
     * (the outer product dx of 2048 × 240 at 1 GFLOP/s). With 0 rows the sums
     * are of nothing (dw, db = 0 unless accumulating); with 0 cols db is still
     * Σ dy.
     */
    void (*linear1_backward)(gk_backend *be, float *dx, float *dw, float *db, const float *dy,
                             const float *x, const float *w, int rows, int cols, bool accumulate);

    /* y = x > 0 ? x : slope·x (slope 0: ReLU, else leaky ReLU); in place allowed */
    void (*relu_forward)(gk_backend *be, float *y, const float *x, size_t n, float slope);
    /* dx = y > 0 ? dy : slope·dy (y is the output; y > 0 ⟺ x > 0); in place on dy allowed */
    void (*relu_backward)(gk_backend *be, float *dx, const float *dy, const float *y, size_t n,
                          float slope);
    /* y = sigmoid(x); in place allowed */
    void (*sigmoid_forward)(gk_backend *be, float *y, const float *x, size_t n);
    /* dx = dy · y · (1 − y) */
    void (*sigmoid_backward)(gk_backend *be, float *dx, const float *dy, const float *y, size_t n);

    /*
     * Maxout over consecutive pieces: x is rows × (units·pieces), y is
     * rows × units, y[r][j] = max_p x[r][j·pieces + p], ties to the lowest p.
     * argmax[r][j] = the winning p.
     */
    void (*maxout_forward)(gk_backend *be, float *y, int32_t *argmax, const float *x, int rows,
                           int units, int pieces);
    /*
     * Fused bias + maxout: with v_p = x[r][j·pieces + p] + bias[j·pieces + p],
     * y[r][j] = max_p v_p and argmax[r][j] = the winning p (ties to the lowest).
     * Bit for bit bias_add then maxout_forward, except that x is left as it was.
     */
    void (*bias_maxout)(gk_backend *be, float *y, int32_t *argmax, const float *x,
                        const float *bias, int rows, int units, int pieces);
    /*
     * Maxout backward, fused with the dropout mask before it and the bias
     * gradient after it: with g = dy[r][j]·mask[r][j] (dropout_backward's
     * product; mask optional, NULL: g = dy[r][j]),
     *   dx[r][j·pieces + p] = p == argmax[r][j] ? g : 0   (dx fully written)
     * and when db is non-NULL, db (+)= the column sums of dx, bit for bit
     * bias_grad(db, dx, rows, units·pieces, accumulate): so one pass over dx
     * replaces dropout_backward, maxout_backward and bias_grad. With 0 rows
     * it sets db = 0 unless accumulating, as bias_grad does.
     */
    void (*maxout_backward)(gk_backend *be, float *dx, float *db, const float *dy,
                            const float *mask, const int32_t *argmax, int rows, int units,
                            int pieces, bool accumulate);

    /*
     * Dropout, PyTorch semantics: p = probability of dropping. mask[i] =
     * 1/(1−p) where u_i ≥ p (kept), else 0, with u_i = philox uniform (rng, i);
     * y = x · mask. In place allowed. p = 0 gives mask = 1.
     */
    void (*dropout_forward)(gk_backend *be, float *y, float *mask, const float *x, size_t n,
                            float p, gk_rng rng);
    /* dx = dy · mask; in place allowed */
    void (*dropout_backward)(gk_backend *be, float *dx, const float *dy, const float *mask,
                             size_t n);

    /*
     * Fused sigmoid + BCE against a constant target y over n logits:
     *   prob = sigmoid(logit)
     *   loss = mean_i −(y·max(log prob, −100) + (1−y)·max(log(1−prob), −100))
     *   dlogit_i = grad_scale · (prob−y)/max(prob(1−prob), 1e-12) · prob(1−prob) / n
     * (PyTorch's BCELoss after nn.Sigmoid, clamps and all). acc[0] += loss,
     * acc[1] += mean prob. dlogit may be NULL (forward only).
     */
    void (*sigmoid_bce)(gk_backend *be, float *dlogit, float *acc, const float *logit, int n,
                        float target, float grad_scale);

    /*
     * Row-wise softmax, max-subtracted: with m_r = max_c x[r][c],
     *   y[r][c] = exp(x[r][c] − m_r) / Σ_c' exp(x[r][c'] − m_r)
     * (exp and the sum in double, rounded once to float, so the backends'
     * results differ only where the order of the sum shows). In place allowed.
     */
    void (*softmax_forward)(gk_backend *be, float *y, const float *x, int rows, int cols);
    /*
     * Fused softmax + cross-entropy over rows × cols logits against integer
     * labels (backend memory, one per row, each in 0..cols−1). With p the
     * softmax of each row (softmax_forward's formula) and l_r = labels[r]:
     *   loss = mean_r −log(max(p[r][l_r], FLT_MIN)), computed as
     *          mean_r −max(x[r][l_r] − m_r − log Σ_c exp(x[r][c] − m_r), log FLT_MIN)
     *   dlogit[r][c] = grad_scale · (p[r][c] − [c == l_r]) / rows
     * which is PyTorch's CrossEntropyLoss (mean reduction) on the logits and
     * its gradient, except that a row's loss is capped at −log FLT_MIN ≈ 87.3
     * (PyTorch's is not); the gradient is that of the uncapped loss. acc[0] +=
     * loss, acc[1] += the fraction of rows whose arg-max logit (ties to the
     * lowest index) is the label. dlogit may be NULL (forward only).
     * A label outside 0..cols−1 is the backend's sticky error: the CPU fails
     * before writing anything; CUDA, which learns of it only in the kernel,
     * computes the other rows (that row: dlogit 0, nothing added to acc) and
     * records the lowest such row, which becomes the sticky error at the next
     * call that waits for the device (upload, download, synchronize).
     */
    void (*softmax_ce)(gk_backend *be, float *dlogit, float *acc, const float *logit,
                       const int32_t *labels, int rows, int cols, float grad_scale);

    /*
     * p −= lr_t/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps), torch.optim.Adam,
     * with t = hp.t's value and lr_t = hp.lr at step t; then grad = 0.
     *
     * Both optimisers zero the gradient in the same pass that reads it, so the
     * next backward pass accumulates into it (sgemm beta = 1, bias_grad and
     * maxout_backward accumulating) with no pass of its own to clear it: at
     * small batches OpenBLAS's weight-gradient products (k = the batch) ran at
     * half the speed with beta = 0 than with beta = 1 (bench_train).
     */
    void (*adam)(gk_backend *be, float *param, float *grad, float *m, float *v, size_t n,
                 gk_adam hp);
    /*
     * SGD with momentum, pylearn2 style: vel = mom_e·vel − lr_t·g; p += vel
     * (lr_t: lr at `step`; mom_e: the momentum of the 0-based `epoch`); then
     * grad = 0, as adam
     */
    void (*sgd_momentum)(gk_backend *be, float *param, float *grad, float *vel, size_t n, gk_lr lr,
                         gk_step step, gk_momentum momentum, gk_step epoch);

    /* x[i] = mean + std · N(0,1) from philox(rng, i) (Box–Muller) */
    void (*fill_normal)(gk_backend *be, float *x, size_t n, gk_rng rng, float mean, float std);
    /* x[i] = lo + (hi − lo) · U[0,1) from philox(rng, i) */
    void (*fill_uniform)(gk_backend *be, float *x, size_t n, gk_rng rng, float lo, float hi);

    /*
     * dst[r][:] = src[index[b·rows + r]][:] for r < rows, b = block's value mod
     * blocks (blocks ≥ 1); src rows are uint8 pixels scaled by `scale`
     */
    void (*gather_rows_u8)(gk_backend *be, float *dst, const uint8_t *src, const int32_t *index,
                           int rows, int cols, float scale, gk_step block, int64_t blocks);
    /* acc[0] += sum x[i] (deterministic: fixed chunking, independent of thread count) */
    void (*sum)(gk_backend *be, float *acc, const float *x, size_t n);
    /* x[i] = value */
    void (*fill)(gk_backend *be, float *x, size_t n, float value);
    /* y[i] = a·x[i] + y[i] */
    void (*axpy)(gk_backend *be, float *y, const float *x, size_t n, float a);
    /*
     * One step of an exponential moving average of x: y[i] += w·(x[i] − y[i]),
     * with a weight ramped by step s (TensorFlow's
     * ExponentialMovingAverage(num_updates) ramps with 10 where this has 3):
     * w = (float)(1 − min(decay, (1 + s)/(3 + s))), in double
     */
    void (*ema_update)(gk_backend *be, float *y, const float *x, size_t n, double decay,
                       gk_step step);

    /*
     * Max-norm constraint (pylearn2's max_col_norm, on PyTorch's row-major
     * weights): each row r of W (rows × cols) with norm n_r is scaled by
     * min(n_r, max_norm) / (1e-7 + n_r).
     */
    void (*clip_row_norms)(gk_backend *be, float *W, int rows, int cols, float max_norm);

    /*
     * acc[slot] = (float)tag if acc[slot] == 0 and any of acc[0..n) is not
     * finite: marks the first iteration whose losses went non-finite without a
     * host sync (the epoch's single read-back finds it).
     */
    void (*mark_nonfinite)(gk_backend *be, float *acc, int n, int slot, gk_step tag);

    /* c[i] += delta.v[i] for i < GK_COUNTERS: advances a counter block in backend memory */
    void (*counters_add)(gk_backend *be, int64_t *c, gk_counters delta);

    /* Optional (NULL: the backend has only fp32): let sgemm use TF32 tensor cores. */
    void (*set_tf32)(gk_backend *be, bool enable);

    /*
     * Optional, all four or none (NULL on the CPU): graphs of recorded ops.
     * After graph_begin returns true, the ops issued on this backend are
     * recorded, not run, until graph_end, which returns them as a graph; NULL
     * with the sticky error set when the capture failed (the backend is then
     * out of capture mode). graph_begin returns false, recording nothing, when
     * graphs are switched off (CUDA: GAND_CUDA_GRAPHS=0 when the backend was
     * opened) or the backend has failed. Between begin and end only queued
     * ops may be issued: no alloc, free, upload, download, copy, synchronize.
     * graph_launch runs the recorded ops once, in order, with the arguments
     * they were issued with (so anything per-iteration must be a gk_step or
     * live in backend memory); graph_free releases a graph (NULL allowed).
     */
    bool (*graph_begin)(gk_backend *be);
    gk_graph *(*graph_end)(gk_backend *be);
    void (*graph_launch)(gk_backend *be, gk_graph *g);
    void (*graph_free)(gk_backend *be, gk_graph *g);
} gk_backend_ops;

struct gk_backend {
    const gk_backend_ops *ops;
    void *ctx;
    char error[256];  /* first failure, "" when healthy */
    char device[128]; /* human-readable device name */
};

/* Record a failure once (the first one wins), by the thread that owns be (kernels/error.c). */
void gk_backend_fail(gk_backend *be, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define GK_FAIL(be, ...) gk_backend_fail((be), __FILE__, __LINE__, __VA_ARGS__)

static inline const char *gk_backend_error(const gk_backend *be)
{
    return be->error[0] ? be->error : NULL;
}

/* Backends compiled into this binary, comma separated ("cpu" or "cpu,cuda"). */
const char *gk_backends_built(void);

/*
 * Open a backend by name: "cpu", "cuda" or "auto" (CUDA when built and a
 * device answers, else CPU). `why` receives a sentence saying what was picked
 * and why. Returns NULL with `why` set when the named backend is unavailable.
 */
gk_backend *gk_backend_open(const char *name, char *why, size_t why_len);
void gk_backend_close(gk_backend *be);

#endif
