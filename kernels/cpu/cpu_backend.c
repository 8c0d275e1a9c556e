/*
 * kernels/cpu/cpu_backend.c — the CPU backend: OpenBLAS for matrix products,
 * OpenMP-threaded, vectorisable C loops for everything else.
 *
 * This is the readable reference for every op; the CUDA backend uses the same
 * op names and is tested against it. Two choices worth knowing:
 *  - Reductions (sum, bias_grad) never depend on the thread count: sums work
 *    on fixed 4096-element chunks whose partials are added in order, and
 *    bias_grad threads over columns. So these loops give the same bits
 *    whatever OMP_NUM_THREADS says; OpenBLAS's sgemm does not (its sums
 *    depend on its thread count), so a resume is bit-identical under the
 *    same thread count, which the resume test keeps.
 *  - Only loops with enough work are threaded. A loop that streams memory
 *    (a few cheap operations per element) is threaded from GK_PAR_MIN, a
 *    million elements: OpenMP's threads spin for a while after each parallel
 *    region, and with the pthread build of OpenBLAS they then steal the cores
 *    its own threads need for the next sgemm (with a threshold of 32 K
 *    elements batch-64 training ran 7× slower on 2 cores than with
 *    element-wise loops on one thread). A loop that computes per element
 *    (Philox, Adam's square root and divisions) is threaded from
 *    GK_PAR_MIN_HEAVY: those cost 2–10 ns an element, so 64 K elements are
 *    worth a fork and join; Box–Muller in double (some 30 ns a number) from
 *    GK_PAR_MIN_NORMAL, 4 K. Threads split only the iterations: every element
 *    is computed the same way whatever the thread count.
 *  - The loops are written to vectorise (no branches around floating-point
 *    operations; the library is compiled with -fno-math-errno and
 *    -fno-trapping-math, so sqrtf is an instruction and a select of two
 *    values is not a branch): Adam, the (leaky) ReLUs and the Philox fills ran scalar
 *    before, several times slower than memory allows. Every lane computes
 *    exactly what the scalar code did, so the bits are the same.
 *
 * Ops keep no state beyond the backend's sticky error.
 * A gk_step's counter lives in host memory here and is read when the op is
 * called (which is when it runs); there are no graphs (graph_* are NULL).
 */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/elementwise.h"

#if defined(__SSE__)
#include <pmmintrin.h> /* _MM_DENORMALS_ZERO_ON */
#include <xmmintrin.h>
#endif

#define GK_PAR_MIN (1 << 20)
#define GK_PAR_MIN_HEAVY (1 << 16)
#define GK_PAR_MIN_NORMAL (1 << 12) /* Box–Muller in double: some 30 ns a number */
#define GK_SUM_CHUNK 4096

#if defined(_OPENMP)
#define GK_PRAGMA(x) _Pragma(#x)
#define GK_PARALLEL_FOR(n) GK_PRAGMA(omp parallel for simd schedule(static) if ((n) >= GK_PAR_MIN))
#define GK_PARALLEL_FOR_PLAIN(n)                                                                   \
    GK_PRAGMA(omp parallel for schedule(static) if ((n) >= GK_PAR_MIN))
/* n counts elements of per-element computation (see GK_PAR_MIN_HEAVY) */
#define GK_PARALLEL_FOR_HEAVY(n)                                                                   \
    GK_PRAGMA(omp parallel for schedule(static) if ((n) >= GK_PAR_MIN_HEAVY))
#define GK_PARALLEL_FOR_NORMAL(n)                                                                  \
    GK_PRAGMA(omp parallel for schedule(static) if ((n) >= GK_PAR_MIN_NORMAL))
#else
#define GK_PARALLEL_FOR(n)
#define GK_PARALLEL_FOR_PLAIN(n)
#define GK_PARALLEL_FOR_HEAVY(n)
#define GK_PARALLEL_FOR_NORMAL(n)
#endif

/* The loops that vectorise are compiled three times, for AVX-512 (x86-64-v4), AVX2
 * (x86-64-v3) and baseline x86-64, and the loader picks the widest the CPU has (an ifunc).
 * The library is compiled with -ffp-contract=off, so no clone fuses a multiply and an add:
 * every lane of every clone rounds each operation as the scalar code does, and the bits are
 * the same on every CPU. */
#if defined(__x86_64__) && defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define GK_VECTOR_CLONES                                                                           \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define GK_VECTOR_CLONES
#endif

/* Inlined into its callers, so that it is compiled as part of each of their clones (a call
 * would run the baseline code). */
#define GK_INLINE static inline __attribute__((always_inline))

/*
 * Denormals: numbers below FLT_MIN cost 10-100× a normal operation on many x86 cores (an
 * Adam step over moments that decay towards zero took 27 ms instead of 2.5 on a Xeon).
 * Every thread that runs a CPU op flushes them to zero (MXCSR's FTZ and DAZ, FPCR.FZ on
 * arm64): the calling thread the first time it calls an op, and its OpenMP team, which
 * OpenBLAS's OpenMP build also computes with, at once; threads the team adds later copy
 * the mode of the thread that starts them. GAN training never depends on numbers below
 * 1e-38, and the mode is the same on every thread and every run, so results stay
 * deterministic; they differ from a build that keeps denormals only where one occurred.
 */
static void flush_denormals(void)
{
#if defined(__SSE__)
    _mm_setcsr(_mm_getcsr() | _MM_FLUSH_ZERO_ON | _MM_DENORMALS_ZERO_ON);
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (UINT64_C(1) << 24)));
#endif
}

static _Thread_local bool denormals_flushed;

/* What every op that computes does first. */
static inline void cpu_enter(gk_backend *be)
{
    (void)be;
    if (denormals_flushed)
        return;
    flush_denormals();
#if defined(_OPENMP)
    GK_PRAGMA(omp parallel)
    flush_denormals();
#endif
    denormals_flushed = true;
}

/* The (leaky) ReLU's factor for an input or output v: v > 0 ? 1 : slope. x · factor is bit
 * for bit `v > 0 ? x : slope·x` (x·1 is x), and a select of constants vectorises. */
static inline float relu_factor(float v, float slope)
{
    return v > 0.0f ? 1.0f : slope;
}

/* The value of a step: the counter it points at (host memory here) plus its offset. */
static int64_t step_of(gk_step s)
{
    return s.at ? *s.at + s.offset : s.offset;
}

/*
 * Philox blocks first .. first + PHILOX_LANES − 1 of (seed, purpose, step), words in
 * element order (w[4·k + j] is word j of block first + k): gk_philox_block's rounds on
 * PHILOX_LANES counters side by side, so that the compiler keeps them in vector lanes.
 */
enum { PHILOX_LANES = 8 };
GK_INLINE void philox_group(uint64_t seed, uint32_t purpose, uint32_t step, uint64_t first,
                            uint32_t w[4 * PHILOX_LANES])
{
    uint32_t c0[PHILOX_LANES], c1[PHILOX_LANES], c2[PHILOX_LANES], c3[PHILOX_LANES];
    for (int l = 0; l < PHILOX_LANES; l++) {
        uint64_t block = first + (uint64_t)l;
        c0[l] = (uint32_t)block;
        c1[l] = (uint32_t)(block >> 32);
        c2[l] = step;
        c3[l] = purpose;
    }
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        for (int l = 0; l < PHILOX_LANES; l++) {
            uint64_t p0 = (uint64_t)0xD2511F53u * c0[l], p1 = (uint64_t)0xCD9E8D57u * c2[l];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = (uint32_t)p1;
            c3[l] = (uint32_t)p0;
            c0[l] = n0;
            c2[l] = n2;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    for (int l = 0; l < PHILOX_LANES; l++) {
        w[4 * l] = c0[l];
        w[4 * l + 1] = c1[l];
        w[4 * l + 2] = c2[l];
        w[4 * l + 3] = c3[l];
    }
}

/* Groups of PHILOX_LANES blocks that n elements span. */
static size_t philox_groups(size_t n)
{
    return (n + 4 * PHILOX_LANES - 1) / (4 * PHILOX_LANES);
}

/* The uniforms [0, 1) of group g's elements (of n): returns how many of the group's exist. */
GK_INLINE size_t philox_uniform_group(gk_rng rng, uint32_t step, size_t g, size_t n,
                                      float u[4 * PHILOX_LANES])
{
    uint32_t w[4 * PHILOX_LANES];
    philox_group(rng.seed, rng.purpose, step, g * PHILOX_LANES, w);
    size_t i0 = g * 4 * PHILOX_LANES, end = n - i0 < 4 * PHILOX_LANES ? n - i0 : 4 * PHILOX_LANES;
    for (size_t j = 0; j < 4 * PHILOX_LANES; j++)
        u[j] = gk_u01(w[j]);
    return end;
}

static void *cpu_alloc(gk_backend *be, size_t bytes)
{
    void *p = NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0)
        rounded = 64;
    if (posix_memalign(&p, 64, rounded) != 0) {
        GK_FAIL(be, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

static void cpu_free(gk_backend *be, void *p)
{
    (void)be;
    free(p);
}

static void cpu_copy(gk_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    if (bytes)
        memmove(dst, src, bytes);
}

static void cpu_synchronize(gk_backend *be)
{
    (void)be;
}

static void cpu_sgemm(gk_backend *be, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                      const float *a, int lda, const float *b, int ldb, float beta, float *c,
                      int ldc)
{
    cpu_enter(be);
    if (m <= 0 || n <= 0 || k <= 0)
        return; /* backend.h: an empty shape changes nothing */
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

GK_VECTOR_CLONES
static void cpu_bias_add(gk_backend *be, float *y, const float *bias, int rows, int cols)
{
    cpu_enter(be);
    size_t total = (size_t)rows * (size_t)cols;
    (void)total;
    GK_PARALLEL_FOR_PLAIN(total)
    for (int r = 0; r < rows; r++) {
        float *row = y + (size_t)r * (size_t)cols;
        for (int c = 0; c < cols; c++)
            row[c] += bias[c];
    }
}

GK_VECTOR_CLONES
static void cpu_bias_relu(gk_backend *be, float *y, const float *x, const float *bias, int rows,
                          int cols, float slope)
{
    cpu_enter(be);
    size_t total = (size_t)rows * (size_t)cols;
    (void)total;
    GK_PARALLEL_FOR_PLAIN(total)
    for (int r = 0; r < rows; r++) {
        const float *in = x + (size_t)r * (size_t)cols;
        float *out = y + (size_t)r * (size_t)cols;
        for (int c = 0; c < cols; c++) {
            float v = in[c] + bias[c]; /* bias_add's sum, then relu_forward's select */
            out[c] = v * relu_factor(v, slope);
        }
    }
}

static void cpu_bias_grad(gk_backend *be, float *db, const float *dy, int rows, int cols,
                          bool accumulate)
{
    cpu_enter(be);
    /* Column blocks of 64 per thread: each column is summed in row order by
     * exactly one thread, so the result does not depend on the thread count. */
    int blocks = (cols + 63) / 64;
    size_t total = (size_t)rows * (size_t)cols;
    (void)total;
    GK_PARALLEL_FOR_PLAIN(total)
    for (int blk = 0; blk < blocks; blk++) {
        int c0 = blk * 64, c1 = c0 + 64 < cols ? c0 + 64 : cols;
        float acc[64];
        for (int c = c0; c < c1; c++)
            acc[c - c0] = 0.0f;
        for (int r = 0; r < rows; r++) {
            const float *row = dy + (size_t)r * (size_t)cols;
            for (int c = c0; c < c1; c++)
                acc[c - c0] += row[c];
        }
        for (int c = c0; c < c1; c++)
            db[c] = accumulate ? db[c] + acc[c - c0] : acc[c - c0];
    }
}

/* Columns of dw one thread sums (each in row order, so the bits are the thread count's). */
enum { LINEAR1_COLS = 256 };

static void cpu_linear1_backward(gk_backend *be, float *dx, float *dw, float *db, const float *dy,
                                 const float *x, const float *w, int rows, int cols,
                                 bool accumulate)
{
    cpu_enter(be);
    if (db) /* bias_grad's sum over one column */
        cpu_bias_grad(be, db, dy, rows, 1, accumulate);
    if (cols <= 0 || (!dw && !dx))
        return;
    if (rows <= 0) {
        if (dw && !accumulate)
            memset(dw, 0, (size_t)cols * sizeof(float));
        return;
    }
    const int blocks = (cols + LINEAR1_COLS - 1) / LINEAR1_COLS;
    size_t total = (size_t)rows * (size_t)cols;
    (void)total;
    GK_PARALLEL_FOR_PLAIN(total)
    for (int blk = 0; blk < blocks; blk++) {
        const int c0 = blk * LINEAR1_COLS, nc = cols - c0 < LINEAR1_COLS ? cols - c0 : LINEAR1_COLS;
        float acc[LINEAR1_COLS];
        for (int c = 0; c < nc; c++)
            acc[c] = 0.0f;
        for (int r = 0; r < rows; r++) {
            const float g = dy[r];
            const float *in = x + (size_t)r * (size_t)cols + c0;
            if (dw)
                for (int c = 0; c < nc; c++)
                    acc[c] += g * in[c];
            if (dx) {
                float *out = dx + (size_t)r * (size_t)cols + c0;
                for (int c = 0; c < nc; c++)
                    out[c] = g * w[c0 + c];
            }
        }
        if (dw)
            for (int c = 0; c < nc; c++)
                dw[c0 + c] = accumulate ? dw[c0 + c] + acc[c] : acc[c];
    }
}

GK_VECTOR_CLONES
static void cpu_relu_forward(gk_backend *be, float *y, const float *x, size_t n, float slope)
{
    cpu_enter(be);
    GK_PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * relu_factor(x[i], slope);
}

GK_VECTOR_CLONES
static void cpu_relu_backward(gk_backend *be, float *dx, const float *dy, const float *y, size_t n,
                              float slope)
{
    cpu_enter(be);
    GK_PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * relu_factor(y[i], slope);
}

static void cpu_sigmoid_forward(gk_backend *be, float *y, const float *x, size_t n)
{
    cpu_enter(be);
    GK_PARALLEL_FOR_HEAVY(n)
    for (size_t i = 0; i < n; i++)
        y[i] = gk_sigmoid(x[i]);
}

static void cpu_sigmoid_backward(gk_backend *be, float *dx, const float *dy, const float *y,
                                 size_t n)
{
    cpu_enter(be);
    GK_PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

GK_VECTOR_CLONES
static void cpu_maxout_forward(gk_backend *be, float *y, int32_t *argmax, const float *x, int rows,
                               int units, int pieces)
{
    cpu_enter(be);
    size_t total = (size_t)rows * (size_t)units;
    GK_PARALLEL_FOR_PLAIN(total * (size_t)pieces)
    for (size_t o = 0; o < total; o++) {
        const float *in = x + o * (size_t)pieces;
        float best = in[0];
        int32_t arg = 0;
        for (int p = 1; p < pieces; p++) {
            arg = in[p] > best ? p : arg; /* strict: ties keep the lowest index */
            best = in[p] > best ? in[p] : best;
        }
        y[o] = best;
        argmax[o] = arg;
    }
}

GK_VECTOR_CLONES
static void cpu_bias_maxout(gk_backend *be, float *y, int32_t *argmax, const float *x,
                            const float *bias, int rows, int units, int pieces)
{
    cpu_enter(be);
    size_t total = (size_t)rows * (size_t)units * (size_t)pieces;
    (void)total;
    GK_PARALLEL_FOR_PLAIN(total)
    for (int r = 0; r < rows; r++) {
        size_t o0 = (size_t)r * (size_t)units;
        for (int j = 0; j < units; j++) {
            const float *in = x + (o0 + (size_t)j) * (size_t)pieces;
            const float *b = bias + (size_t)j * (size_t)pieces;
            float best = in[0] + b[0];
            int32_t arg = 0;
            for (int p = 1; p < pieces; p++) {
                float v = in[p] + b[p];
                arg = v > best ? p : arg; /* strict: ties keep the lowest index */
                best = v > best ? v : best;
            }
            y[o0 + (size_t)j] = best;
            argmax[o0 + (size_t)j] = arg;
        }
    }
}

/* The columns of one thread's share of maxout_backward's bias sums (bias_grad's 64, or more). */
enum { MAXOUT_BG_COLS = 320 };

GK_VECTOR_CLONES
static void cpu_maxout_backward(gk_backend *be, float *dx, float *db, const float *dy,
                                const float *mask, const int32_t *argmax, int rows, int units,
                                int pieces, bool accumulate)
{
    cpu_enter(be);
    if (units <= 0 || pieces <= 0)
        return;
    const size_t cols = (size_t)units * (size_t)pieces;
    if (rows <= 0) {
        if (db && !accumulate)
            memset(db, 0, cols * sizeof(float)); /* bias_grad's sum of nothing */
        return;
    }
    /* Blocks of whole units, each written and summed over every row, in row order, by
     * one thread: each column's sum is bias_grad's, whatever the thread count. */
    const int per_block = pieces <= MAXOUT_BG_COLS ? MAXOUT_BG_COLS / pieces : 1;
    const int blocks = (units + per_block - 1) / per_block;
    if (db && pieces > MAXOUT_BG_COLS) { /* a unit wider than the sums: two passes */
        cpu_maxout_backward(be, dx, NULL, dy, mask, argmax, rows, units, pieces, false);
        cpu_bias_grad(be, db, dx, rows, (int)cols, accumulate);
        return;
    }
    size_t total = (size_t)rows * cols;
    (void)total;
    GK_PARALLEL_FOR_PLAIN(total)
    for (int blk = 0; blk < blocks; blk++) {
        const int j0 = blk * per_block, j1 = j0 + per_block < units ? j0 + per_block : units;
        const size_t c0 = (size_t)j0 * (size_t)pieces, nc = (size_t)(j1 - j0) * (size_t)pieces;
        float acc[MAXOUT_BG_COLS];
        for (size_t c = 0; c < nc && db; c++)
            acc[c] = 0.0f;
        for (int r = 0; r < rows; r++) {
            const size_t o = (size_t)r * (size_t)units;
            float *out = dx + (size_t)r * cols + c0;
            /* the row's share zeroed (vectorised), then each unit's winner written */
            memset(out, 0, nc * sizeof(float));
            for (int j = j0; j < j1; j++) {
                const float g = mask ? dy[o + (size_t)j] * mask[o + (size_t)j] : dy[o + (size_t)j];
                out[(size_t)(j - j0) * (size_t)pieces + (size_t)argmax[o + (size_t)j]] = g;
            }
            if (db)
                for (size_t c = 0; c < nc; c++) /* bias_grad's sum: every element, zeros too */
                    acc[c] += out[c];
        }
        if (db)
            for (size_t c = 0; c < nc; c++)
                db[c0 + c] = accumulate ? db[c0 + c] + acc[c] : acc[c];
    }
}

GK_VECTOR_CLONES
static void cpu_dropout_forward(gk_backend *be, float *y, float *mask, const float *x, size_t n,
                                float p, gk_rng rng)
{
    cpu_enter(be);
    if (p <= 0.0f) {
        GK_PARALLEL_FOR(n)
        for (size_t i = 0; i < n; i++) {
            mask[i] = 1.0f;
            y[i] = x[i];
        }
        return;
    }
    const float keep_scale = 1.0f / (1.0f - p);
    const uint32_t step = (uint32_t)step_of(rng.step);
    /* One Philox block gives the uniforms of four consecutive elements; a group of
     * PHILOX_LANES blocks is computed side by side. */
    size_t groups = philox_groups(n);
    GK_PARALLEL_FOR_HEAVY(n)
    for (size_t g = 0; g < groups; g++) {
        float u[4 * PHILOX_LANES];
        size_t i0 = g * 4 * PHILOX_LANES, end = philox_uniform_group(rng, step, g, n, u);
        for (size_t j = 0; j < end; j++) {
            float m = u[j] >= p ? keep_scale : 0.0f;
            mask[i0 + j] = m;
            y[i0 + j] = x[i0 + j] * m;
        }
    }
}

GK_VECTOR_CLONES
static void cpu_dropout_backward(gk_backend *be, float *dx, const float *dy, const float *mask,
                                 size_t n)
{
    cpu_enter(be);
    GK_PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * mask[i];
}

static void cpu_sigmoid_bce(gk_backend *be, float *dlogit, float *acc, const float *logit, int n,
                            float target, float grad_scale)
{
    cpu_enter(be);
    /* n is a batch (≤ 65536): serial, in order, so the loss is reproducible. */
    if (n <= 0)
        return;
    double loss = 0.0, prob_sum = 0.0;
    const float inv_n = 1.0f / (float)n;
    for (int i = 0; i < n; i++) {
        float prob = gk_sigmoid(logit[i]);
        loss += gk_bce_forward(prob, target);
        prob_sum += prob;
        if (dlogit)
            dlogit[i] = grad_scale * gk_sigmoid_bce_grad(prob, target) * inv_n;
    }
    acc[0] += (float)(loss / n);
    acc[1] += (float)(prob_sum / n);
}

/* The arg-max of a row (ties to the lowest index) and Σ_c exp(x[c] − max), in double. */
static int row_argmax_expsum(const float *x, int cols, double *sum)
{
    int arg = 0;
    for (int c = 1; c < cols; c++)
        if (x[c] > x[arg]) /* strict: ties keep the lowest index */
            arg = c;
    double s = 0.0;
    for (int c = 0; c < cols; c++)
        s += exp((double)x[c] - (double)x[arg]);
    *sum = s;
    return arg;
}

static void cpu_softmax_forward(gk_backend *be, float *y, const float *x, int rows, int cols)
{
    cpu_enter(be);
    if (rows <= 0 || cols <= 0)
        return;
    size_t total = (size_t)rows * (size_t)cols;
    (void)total;
    GK_PARALLEL_FOR_PLAIN(total)
    for (int r = 0; r < rows; r++) {
        const float *in = x + (size_t)r * (size_t)cols;
        float *out = y + (size_t)r * (size_t)cols;
        double s;
        const double m = in[row_argmax_expsum(in, cols, &s)];
        for (int c = 0; c < cols; c++) /* in place: in[c] is read before out[c] is written */
            out[c] = (float)(exp((double)in[c] - m) / s);
    }
}

static void cpu_softmax_ce(gk_backend *be, float *dlogit, float *acc, const float *logit,
                           const int32_t *labels, int rows, int cols, float grad_scale)
{
    if (rows <= 0 || cols <= 0)
        return; /* backend.h: a mean over nothing adds nothing */
    /* every label first, so a bad one fails the op before anything is written */
    for (int r = 0; r < rows; r++)
        if (labels[r] < 0 || labels[r] >= cols) {
            GK_FAIL(be, "softmax_ce: row %d has label %d, not a class index 0..%d", r,
                    (int)labels[r], cols - 1);
            return;
        }
    /* a batch: serial, in row order, so the loss is reproducible */
    const double log_tiny = log((double)FLT_MIN), scale = (double)grad_scale / rows;
    double loss = 0.0, correct = 0.0;
    for (int r = 0; r < rows; r++) {
        const float *x = logit + (size_t)r * (size_t)cols;
        const int l = labels[r];
        double s;
        const int arg = row_argmax_expsum(x, cols, &s);
        const double m = x[arg];
        correct += arg == l;
        const double log_p = (double)x[l] - m - log(s);
        loss -= log_p > log_tiny ? log_p : log_tiny;
        if (dlogit) {
            float *d = dlogit + (size_t)r * (size_t)cols;
            for (int c = 0; c < cols; c++)
                d[c] = (float)(scale * (exp((double)x[c] - m) / s - (c == l ? 1.0 : 0.0)));
        }
    }
    acc[0] += (float)(loss / rows);
    acc[1] += (float)(correct / rows);
}

GK_VECTOR_CLONES
static void cpu_adam(gk_backend *be, float *param, float *grad, float *m, float *v, size_t n,
                     gk_adam hp)
{
    cpu_enter(be);
    const int64_t t = step_of(hp.t);
    const float lr = gk_lr_at(hp.lr.lr, hp.lr.decay, hp.lr.min, t);
    float c1, c2;
    gk_adam_corrections(hp.beta1, hp.beta2, t, &c1, &c2);
    const float bias_c1 = c1, bias_c2_sqrt = c2; /* not address-taken: kept in registers */
    /* one pass over the four arrays, zeroing the gradient as it goes; the weight-decay
     * test is out of the loop so the loop vectorises (its square root and two divisions
     * are most of its cost) */
    if (hp.weight_decay != 0.0f) {
        GK_PARALLEL_FOR_HEAVY(n)
        for (size_t i = 0; i < n; i++) {
            gk_adam_update(&param[i], grad[i], &m[i], &v[i], lr, hp.beta1, hp.beta2, hp.eps,
                           hp.weight_decay, bias_c1, bias_c2_sqrt);
            grad[i] = 0.0f;
        }
    } else {
        GK_PARALLEL_FOR_HEAVY(n)
        for (size_t i = 0; i < n; i++) {
            gk_adam_update(&param[i], grad[i], &m[i], &v[i], lr, hp.beta1, hp.beta2, hp.eps, 0.0f,
                           bias_c1, bias_c2_sqrt);
            grad[i] = 0.0f;
        }
    }
}

GK_VECTOR_CLONES
static void cpu_sgd_momentum(gk_backend *be, float *param, float *grad, float *vel, size_t n,
                             gk_lr lr_sched, gk_step step, gk_momentum mom, gk_step epoch)
{
    cpu_enter(be);
    const float lr = gk_lr_at(lr_sched.lr, lr_sched.decay, lr_sched.min, step_of(step));
    const float momentum = gk_momentum_at(mom.start, mom.final, mom.epochs, step_of(epoch));
    GK_PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++) {
        vel[i] = momentum * vel[i] - lr * grad[i];
        param[i] += vel[i];
        grad[i] = 0.0f;
    }
}

GK_VECTOR_CLONES
static void cpu_fill_normal(gk_backend *be, float *x, size_t n, gk_rng rng, float mean, float std)
{
    cpu_enter(be);
    const uint32_t step = (uint32_t)step_of(rng.step);
    size_t blocks = (n + 3) / 4;
    /* a block's four numbers at once: one Philox block and two Box–Muller pairs for four
     * elements, where gk_philox_normal computes a block and a pair for each; threaded from
     * 4 K numbers (a batch-64 z), as each costs some 30 ns */
    GK_PARALLEL_FOR_NORMAL(n)
    for (size_t b = 0; b < blocks; b++) {
        float z[4];
        gk_philox_normal4(rng.seed, rng.purpose, step, b, z);
        for (size_t j = 0; j < 4 && b * 4 + j < n; j++)
            x[b * 4 + j] = mean + std * z[j];
    }
}

GK_VECTOR_CLONES
static void cpu_fill_uniform(gk_backend *be, float *x, size_t n, gk_rng rng, float lo, float hi)
{
    cpu_enter(be);
    const uint32_t step = (uint32_t)step_of(rng.step);
    const float span = hi - lo;
    size_t groups = philox_groups(n);
    GK_PARALLEL_FOR_HEAVY(n)
    for (size_t g = 0; g < groups; g++) {
        float u[4 * PHILOX_LANES];
        size_t i0 = g * 4 * PHILOX_LANES, end = philox_uniform_group(rng, step, g, n, u);
        for (size_t j = 0; j < end; j++)
            x[i0 + j] = lo + span * u[j];
    }
}

GK_VECTOR_CLONES
static void cpu_gather_rows_u8(gk_backend *be, float *dst, const uint8_t *src, const int32_t *index,
                               int rows, int cols, float scale, gk_step block, int64_t blocks)
{
    cpu_enter(be);
    if (blocks < 1) {
        GK_FAIL(be, "gather_rows_u8: blocks is %lld, must be at least 1", (long long)blocks);
        return;
    }
    index += (size_t)(step_of(block) % blocks) * (size_t)rows;
    size_t total = (size_t)rows * (size_t)cols;
    (void)total;
    GK_PARALLEL_FOR_PLAIN(total)
    for (int r = 0; r < rows; r++) {
        const uint8_t *in = src + (size_t)index[r] * (size_t)cols;
        float *out = dst + (size_t)r * (size_t)cols;
        for (int c = 0; c < cols; c++)
            out[c] = (float)in[c] * scale;
    }
}

static void cpu_sum(gk_backend *be, float *acc, const float *x, size_t n)
{
    cpu_enter(be);
    size_t chunks = (n + GK_SUM_CHUNK - 1) / GK_SUM_CHUNK;
    double total = 0.0;
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t end = (ch + 1) * GK_SUM_CHUNK < n ? (ch + 1) * GK_SUM_CHUNK : n;
        float part = 0.0f;
        for (size_t i = ch * GK_SUM_CHUNK; i < end; i++)
            part += x[i];
        total += part;
    }
    acc[0] += (float)total;
}

GK_VECTOR_CLONES
static void cpu_fill(gk_backend *be, float *x, size_t n, float value)
{
    cpu_enter(be);
    GK_PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++)
        x[i] = value;
}

GK_VECTOR_CLONES
static void cpu_axpy(gk_backend *be, float *y, const float *x, size_t n, float a)
{
    cpu_enter(be);
    GK_PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

GK_VECTOR_CLONES
static void cpu_ema_update(gk_backend *be, float *y, const float *x, size_t n, double decay,
                           gk_step step)
{
    cpu_enter(be);
    const float w = gk_ema_weight(decay, step_of(step));
    GK_PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++)
        y[i] += w * (x[i] - y[i]);
}

static void cpu_clip_row_norms(gk_backend *be, float *W, int rows, int cols, float max_norm)
{
    cpu_enter(be);
    for (int r = 0; r < rows; r++) {
        float *w = W + (size_t)r * (size_t)cols;
        double sq = 0.0;
        for (int c = 0; c < cols; c++)
            sq += (double)w[c] * w[c];
        float norm = (float)sqrt(sq);
        float scale = (norm < max_norm ? norm : max_norm) / (1e-7f + norm);
        for (int c = 0; c < cols; c++)
            w[c] *= scale;
    }
}

static void cpu_mark_nonfinite(gk_backend *be, float *acc, int n, int slot, gk_step tag)
{
    cpu_enter(be);
    if (acc[slot] != 0.0f)
        return;
    for (int i = 0; i < n; i++)
        if (!isfinite(acc[i])) {
            acc[slot] = (float)step_of(tag);
            return;
        }
}

static void cpu_counters_add(gk_backend *be, int64_t *c, gk_counters delta)
{
    cpu_enter(be);
    for (int i = 0; i < GK_COUNTERS; i++)
        c[i] += delta.v[i];
}

/* Host and backend memory are the same memory: all three moves are one copy. */
static void cpu_upload(gk_backend *be, void *dst, const void *src, size_t bytes)
{
    cpu_copy(be, dst, src, bytes);
}

static void cpu_download(gk_backend *be, void *dst, const void *src, size_t bytes)
{
    cpu_copy(be, dst, src, bytes);
}

static const gk_backend_ops cpu_ops = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .copy = cpu_copy,
    .synchronize = cpu_synchronize,
    .sgemm = cpu_sgemm,
    .bias_add = cpu_bias_add,
    .bias_relu = cpu_bias_relu,
    .bias_grad = cpu_bias_grad,
    .linear1_backward = cpu_linear1_backward,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
    .sigmoid_forward = cpu_sigmoid_forward,
    .sigmoid_backward = cpu_sigmoid_backward,
    .maxout_forward = cpu_maxout_forward,
    .bias_maxout = cpu_bias_maxout,
    .maxout_backward = cpu_maxout_backward,
    .dropout_forward = cpu_dropout_forward,
    .dropout_backward = cpu_dropout_backward,
    .sigmoid_bce = cpu_sigmoid_bce,
    .softmax_forward = cpu_softmax_forward,
    .softmax_ce = cpu_softmax_ce,
    .adam = cpu_adam,
    .sgd_momentum = cpu_sgd_momentum,
    .fill_normal = cpu_fill_normal,
    .fill_uniform = cpu_fill_uniform,
    .gather_rows_u8 = cpu_gather_rows_u8,
    .sum = cpu_sum,
    .fill = cpu_fill,
    .axpy = cpu_axpy,
    .ema_update = cpu_ema_update,
    .mark_nonfinite = cpu_mark_nonfinite,
    .counters_add = cpu_counters_add,
    .clip_row_norms = cpu_clip_row_norms,
};

gk_backend *gk_cpu_backend_open(char *why, size_t why_len)
{
    gk_backend *be = calloc(1, sizeof *be);
    if (!be) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    be->ops = &cpu_ops;
    char *cfg = openblas_get_config();
    snprintf(be->device, sizeof be->device, "CPU, %d BLAS threads (%s)", openblas_get_num_threads(),
             cfg ? cfg : "OpenBLAS");
    return be;
}
