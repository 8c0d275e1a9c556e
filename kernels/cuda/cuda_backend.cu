/*
 * kernels/cuda/cuda_backend.cu — the CUDA backend: cuBLAS for matrix products,
 * one small kernel per op for everything else.
 *
 * Same op names and meanings as kernels/cpu/cpu_backend.c (the reference; read
 * them side by side); tests/unit/test_ops.c holds both to a float64 reference.
 * Choices a reader would otherwise wonder about:
 *  - Row-major sgemm on column-major cuBLAS by swapping the operands: a
 *    row-major matrix read as column-major is its transpose, and
 *    Cᵀ = op(B)ᵀ·op(A)ᵀ, so cuBLAS computes the n×m product "B·A" with the
 *    same transpose flags and leading dimensions, and writes C row-major.
 *  - Errors are sticky, never fatal: every CUDA and cuBLAS call and every
 *    launch goes through CUDA_CHECK / CUBLAS_CHECK / LAUNCH_CHECK, which
 *    record the call, file, line and error string through gk_backend_fail
 *    (GK_FAIL's function; the first failure wins). Once an error is set every
 *    op returns at once. Kernel faults are asynchronous and surface at the
 *    next checked call that waits (download, synchronize, free).
 *  - Random numbers come from kernels/elementwise.h: element i uses word i % 4
 *    of Philox block i / 4 keyed by (seed, purpose, step), so they equal the
 *    CPU's bit for bit whatever the launch shape. Dropout and uniform fills
 *    run one thread per Philox block (four elements), normal fills one thread
 *    per element. The fills use __fmul_rn/__fadd_rn so lo + span·u rounds
 *    twice, as on the CPU, instead of being fused into an FMA.
 *  - Deterministic sums, no float atomics: sum and sigmoid_bce reduce a
 *    grid-stride slice per thread (softmax_ce: a slice of rows per warp),
 *    then a fixed shuffle tree per block into per-block partials (double),
 *    then one block adds the partials in order. The grid size depends on n
 *    (rows) only. bias_grad gives each column to one block, with a fixed tree
 *    over rows. Reruns are bit-identical on the same GPU and toolkit.
 *  - Built with --fmad=false (kernels/meson.build): Adam, SGD and axpy then
 *    round like the CPU code; these kernels are bound by memory, not FLOPs.
 *  - upload and download wait for the copy, so the host buffer may be reused
 *    (or read) on return; every other op is queued on the backend's stream.
 *  - softmax_ce's labels live on the device, so a bad one is found by the
 *    kernel, too late to fail the call: the kernel keeps the lowest bad row in
 *    a device word, and the next wait for the stream (upload, download,
 *    synchronize: stream_wait) fetches it with its copy and makes it the
 *    sticky error. Backends that never ran softmax_ce skip the fetch.
 *  - Per-iteration values arrive as gk_step (a device pointer into the
 *    trainer's int64 counter block plus a fixed offset): kernels read the
 *    counter when they run. Values derived from a step (Adam's bias
 *    corrections, the decayed lr, the moving average's weight) are computed
 *    in each thread from it with kernels/elementwise.h's helpers, in double
 *    like the CPU; device pow may differ from glibc's in the last bit of a
 *    double, which the rounding to float almost always hides (CPU/CUDA parity
 *    is to 1e-4 anyway; graph and eager CUDA runs use the same kernels).
 *
 * CUDA graphs (graph_begin / graph_end / graph_launch / graph_free): the
 * trainer captures one training iteration on the backend's stream
 * (cudaStreamBeginCapture in thread-local mode, so only this thread's
 * unsafe calls are refused), instantiates it and launches the executable
 * graph every iteration after: one launch instead of ~60 kernel launches and
 * cuBLAS calls, which dominate at batch 64. Because every per-iteration value
 * is read from device memory, the recorded launch arguments stay valid; the
 * trainer drops the graph when something baked in changes (see gan/trainer.c).
 * cuBLAS is legal inside a capture; it gets a fixed workspace
 * (cublasSetWorkspace, GKC_BLAS_WORKSPACE, set after cublasSetStream, which
 * resets it) so that it never allocates while capturing. graph_end always
 * ends the capture, also after a failure, so the stream leaves capture mode;
 * a failed capture (or instantiation) is the backend's sticky error and the
 * captured work is discarded, never run. GAND_CUDA_GRAPHS=0 in the
 * environment when the backend opens makes graph_begin decline: every
 * iteration then runs eagerly (tests/unit/test_gpu_parity.c compares both).
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_backend.h" /* brings kernels/backend.h with C linkage */
#include "kernels/elementwise.h"

#define GKC_THREADS 256         /* block size of the 1-D kernels */
#define GKC_REDUCE_BLOCKS 1024  /* most per-block partials a reduction makes */
#define GKC_REDUCE_PER_THREAD 4 /* a reduction's grid gives each thread ≥ this many elements */
#define GKC_BG_COLS 32          /* bias_grad: columns per block (one warp wide) */
#define GKC_BG_ROWS 32          /* bias_grad: row lanes per block */
#define GKC_BLAS_WORKSPACE ((size_t)32 << 20) /* cuBLAS's recommended workspace on Hopper */
#define GKC_WARPS (GKC_THREADS / 32)          /* rows per block of the row-wise softmax kernels */
#define GKC_NO_FAULT 0xffffffffffffffffull    /* label_fault when no bad label was seen */

typedef struct cuda_ctx {
    cudaStream_t stream;
    cublasHandle_t blas; /* bound to `stream`, CUBLAS_DEFAULT_MATH, workspace blas_ws */
    void *blas_ws;       /* GKC_BLAS_WORKSPACE bytes: cuBLAS never allocates (graph capture) */
    double *partials;    /* 2 × GKC_REDUCE_BLOCKS per-block sums of the reductions */
    unsigned max_blocks; /* grid cap of element-wise kernels: one full wave on the GPU */
    /* softmax_ce's bad labels (see stream_wait): the lowest (row << 32 | label) a kernel
     * found, GKC_NO_FAULT when none; on the device, and its pinned copy on the host */
    unsigned long long *label_fault, *label_fault_host;
    bool label_checks; /* a softmax_ce was issued: every wait fetches label_fault */
    bool graphs;       /* graph_begin may capture (GAND_CUDA_GRAPHS is not "0") */
    bool capturing;    /* between a successful graph_begin and its graph_end */
} cuda_ctx;

/* An instantiated graph of one captured op sequence. */
struct gk_graph {
    cudaGraphExec_t exec;
};

/* ---- checks --------------------------------------------------------------- */

static bool cuda_ok(gk_backend *be, cudaError_t err, const char *call, const char *file, int line)
{
    if (err == cudaSuccess)
        return true;
    gk_backend_fail(be, file, line, "%s: %s (%s)", call, cudaGetErrorString(err),
                    cudaGetErrorName(err));
    return false;
}

static bool cublas_ok(gk_backend *be, cublasStatus_t st, const char *call, const char *file,
                      int line)
{
    if (st == CUBLAS_STATUS_SUCCESS)
        return true;
    gk_backend_fail(be, file, line, "%s: %s (%s)", call, cublasGetStatusString(st),
                    cublasGetStatusName(st));
    return false;
}

/* Each evaluates to true when the call succeeded; otherwise the error is recorded. */
#define CUDA_CHECK(be, call) cuda_ok((be), (call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(be, call) cublas_ok((be), (call), #call, __FILE__, __LINE__)
/* After a <<<...>>> launch: catches bad configurations and earlier sticky faults. */
#define LAUNCH_CHECK(be, kernel)                                                                   \
    cuda_ok((be), cudaGetLastError(), "launch " kernel, __FILE__, __LINE__)

/* The context, or NULL when an earlier failure turned every op into a no-op. */
static cuda_ctx *live_ctx(gk_backend *be)
{
    return be->error[0] ? NULL : (cuda_ctx *)be->ctx;
}

/* Blocks for a grid-stride loop over `work` items. */
static unsigned grid_for(const cuda_ctx *c, size_t work)
{
    size_t blocks = (work + GKC_THREADS - 1) / GKC_THREADS;
    return (unsigned)(blocks < c->max_blocks ? blocks : c->max_blocks);
}

/* Blocks of a reduction over n items: a function of n only, so sums are reproducible. */
static unsigned reduce_grid(size_t n)
{
    size_t per_block = (size_t)GKC_THREADS * GKC_REDUCE_PER_THREAD;
    size_t blocks = (n + per_block - 1) / per_block;
    if (blocks < 1)
        blocks = 1;
    return (unsigned)(blocks < GKC_REDUCE_BLOCKS ? blocks : GKC_REDUCE_BLOCKS);
}

/* Grid for the row × column kernels: x over columns, y strides over rows. */
static dim3 grid_rows_cols(const cuda_ctx *c, int rows, int cols)
{
    unsigned gx = (unsigned)((cols + GKC_THREADS - 1) / GKC_THREADS);
    unsigned gy = c->max_blocks / gx;
    if (gy < 1)
        gy = 1;
    if (gy > (unsigned)rows)
        gy = (unsigned)rows;
    if (gy > 65535u)
        gy = 65535u;
    return dim3(gx, gy);
}

#define GRID_STRIDE(i, n)                                                                          \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                        \
         i += (size_t)blockDim.x * gridDim.x)

/* ---- device helpers ------------------------------------------------------- */

/* The value of a step when the kernel runs: its counter (device memory) plus its offset. */
static __device__ __forceinline__ int64_t step_value(gk_step s)
{
    return s.at ? *s.at + s.offset : s.offset;
}

/*
 * Sums a and b over the block in a fixed order (shuffle tree per warp, then
 * over the warps); thread 0 holds the totals. blockDim.x must be a multiple
 * of 32, and every thread of the block must call it.
 */
static __device__ void block_sum2(double *a, double *b)
{
    __shared__ double warp_a[32], warp_b[32];
    double x = *a, y = *b;
    for (int off = 16; off > 0; off >>= 1) {
        x += __shfl_down_sync(0xffffffffu, x, off);
        y += __shfl_down_sync(0xffffffffu, y, off);
    }
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    if (lane == 0) {
        warp_a[warp] = x;
        warp_b[warp] = y;
    }
    __syncthreads();
    if (warp == 0) {
        const unsigned warps = blockDim.x >> 5;
        x = lane < warps ? warp_a[lane] : 0.0;
        y = lane < warps ? warp_b[lane] : 0.0;
        for (int off = 16; off > 0; off >>= 1) {
            x += __shfl_down_sync(0xffffffffu, x, off);
            y += __shfl_down_sync(0xffffffffu, y, off);
        }
    }
    *a = x;
    *b = y;
}

/*
 * The arg-max (ties to the lowest index) of a row of cols values and
 * Σ_c exp(x[c] − max) in double, by the 32 lanes of a warp: lane j reads
 * columns j, j + 32, ... in order, then a butterfly over the lanes. Every lane
 * gets the same results (each step adds the same two numbers in every lane).
 * All 32 lanes must call it with the same row.
 */
static __device__ int warp_row_argmax_expsum(const float *x, int cols, double *sum)
{
    const int lane = (int)(threadIdx.x & 31u);
    float best = -INFINITY;
    int arg = cols; /* a lane without columns loses every comparison */
    for (int c = lane; c < cols; c += 32)
        if (arg == cols || x[c] > best) {
            best = x[c];
            arg = c;
        }
    for (int off = 16; off > 0; off >>= 1) {
        const float ob = __shfl_xor_sync(0xffffffffu, best, off);
        const int oa = __shfl_xor_sync(0xffffffffu, arg, off);
        if (oa < cols && (arg == cols || ob > best || (ob == best && oa < arg))) {
            best = ob;
            arg = oa;
        }
    }
    const double m = (double)x[arg];
    double s = 0.0;
    for (int c = lane; c < cols; c += 32)
        s += exp((double)x[c] - m);
    for (int off = 16; off > 0; off >>= 1)
        s += __shfl_xor_sync(0xffffffffu, s, off);
    *sum = s;
    return arg;
}

/* ---- kernels (same names as the CPU functions, plus _kernel) -------------- */

static __global__ void bias_add_kernel(float *y, const float *bias, int rows, int cols)
{
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= cols)
        return;
    const float b = bias[col];
    for (int r = blockIdx.y; r < rows; r += gridDim.y)
        y[(size_t)r * (size_t)cols + col] += b;
}

/* bias_add then (leaky) ReLU in one pass; same grid as bias_add. y == x allowed. */
static __global__ void bias_relu_kernel(float *y, const float *x, const float *bias, int rows,
                                        int cols, float slope)
{
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= cols)
        return;
    const float b = bias[col];
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        const size_t i = (size_t)r * (size_t)cols + col;
        const float v = __fadd_rn(x[i], b);
        y[i] = v > 0.0f ? v : __fmul_rn(slope, v);
    }
}

/*
 * One block per GKC_BG_COLS columns: lane (x, y) sums rows y, y + 32, ... of
 * column x (coalesced across x), then a fixed tree over y. out[col] (+)= the
 * column sums of a (bias_grad), or with Weighted of w[r]·a[r][col]
 * (linear1_backward's dw, w = dy).
 */
template <bool Weighted>
static __global__ void column_sums_kernel(float *out, const float *a, const float *w, int rows,
                                          int cols, bool accumulate)
{
    __shared__ float part[GKC_BG_ROWS][GKC_BG_COLS + 1];
    const int col = blockIdx.x * GKC_BG_COLS + threadIdx.x;
    float s = 0.0f;
    if (col < cols)
        for (int r = threadIdx.y; r < rows; r += GKC_BG_ROWS) {
            const float v = a[(size_t)r * (size_t)cols + col];
            s += Weighted ? __fmul_rn(w[r], v) : v;
        }
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    for (int half = GKC_BG_ROWS / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.y < half)
            part[threadIdx.y][threadIdx.x] += part[threadIdx.y + half][threadIdx.x];
        __syncthreads();
    }
    if (threadIdx.y == 0 && col < cols)
        out[col] = accumulate ? out[col] + part[0][threadIdx.x] : part[0][threadIdx.x];
}

/* linear1_backward's dx: the outer product dy ⊗ w */
static __global__ void linear1_dx_kernel(float *dx, const float *dy, const float *w, int rows,
                                         int cols)
{
    const size_t n = (size_t)rows * (size_t)cols;
    GRID_STRIDE(i, n)
    {
        const size_t r = i / (size_t)cols;
        dx[i] = __fmul_rn(dy[r], w[i - r * (size_t)cols]);
    }
}

static __global__ void relu_forward_kernel(float *y, const float *x, size_t n, float slope)
{
    GRID_STRIDE(i, n)
    y[i] = x[i] > 0.0f ? x[i] : __fmul_rn(slope, x[i]);
}

static __global__ void relu_backward_kernel(float *dx, const float *dy, const float *y, size_t n,
                                            float slope)
{
    GRID_STRIDE(i, n)
    dx[i] = y[i] > 0.0f ? dy[i] : __fmul_rn(slope, dy[i]);
}

static __global__ void sigmoid_forward_kernel(float *y, const float *x, size_t n)
{
    GRID_STRIDE(i, n)
    y[i] = gk_sigmoid(x[i]);
}

static __global__ void sigmoid_backward_kernel(float *dx, const float *dy, const float *y, size_t n)
{
    GRID_STRIDE(i, n)
    dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

static __global__ void maxout_forward_kernel(float *y, int32_t *argmax, const float *x, size_t outs,
                                             int pieces)
{
    GRID_STRIDE(o, outs)
    {
        const float *in = x + o * (size_t)pieces;
        float best = in[0];
        int32_t arg = 0;
        for (int p = 1; p < pieces; p++) {
            if (in[p] > best) { /* strict: ties keep the lowest index */
                best = in[p];
                arg = p;
            }
        }
        y[o] = best;
        argmax[o] = arg;
    }
}

/* bias_add then maxout_forward in one pass, x unchanged; unit j of output o is o mod units. */
static __global__ void bias_maxout_kernel(float *y, int32_t *argmax, const float *x,
                                          const float *bias, size_t outs, int units, int pieces)
{
    GRID_STRIDE(o, outs)
    {
        const float *in = x + o * (size_t)pieces;
        const float *b = bias + (o % (size_t)units) * (size_t)pieces;
        float best = __fadd_rn(in[0], b[0]);
        int32_t arg = 0;
        for (int p = 1; p < pieces; p++) {
            const float v = __fadd_rn(in[p], b[p]);
            if (v > best) { /* strict: ties keep the lowest index */
                best = v;
                arg = p;
            }
        }
        y[o] = best;
        argmax[o] = arg;
    }
}

/* One thread per input element, so dx is written in full and coalesced; mask may be NULL. */
static __global__ void maxout_backward_kernel(float *dx, const float *dy, const float *mask,
                                              const int32_t *argmax, size_t outs, int pieces)
{
    const size_t n = outs * (size_t)pieces;
    GRID_STRIDE(i, n)
    {
        const size_t o = i / (size_t)pieces;
        const int p = (int)(i - o * (size_t)pieces);
        const float g = mask ? dy[o] * mask[o] : dy[o]; /* dropout_backward's product */
        dx[i] = p == argmax[o] ? g : 0.0f;
    }
}

static __global__ void dropout_keep_all_kernel(float *y, float *mask, const float *x, size_t n)
{
    GRID_STRIDE(i, n)
    {
        mask[i] = 1.0f;
        y[i] = x[i];
    }
}

/* One thread per Philox block: element i = 4b + j takes word j of block b. */
static __global__ void dropout_forward_kernel(float *y, float *mask, const float *x, size_t n,
                                              float p, float keep_scale, gk_rng rng)
{
    const size_t blocks = (n + 3) / 4;
    const uint32_t step = (uint32_t)step_value(rng.step);
    GRID_STRIDE(b, blocks)
    {
        const gk_philox4 r = gk_philox_block(rng.seed, rng.purpose, step, b);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const size_t i = b * 4 + (size_t)j;
            if (i < n) {
                const float m = gk_u01(r.v[j]) >= p ? keep_scale : 0.0f;
                mask[i] = m;
                y[i] = x[i] * m;
            }
        }
    }
}

static __global__ void dropout_backward_kernel(float *dx, const float *dy, const float *mask,
                                               size_t n)
{
    GRID_STRIDE(i, n)
    dx[i] = dy[i] * mask[i];
}

/*
 * Fused sigmoid + BCE: writes dlogit (when asked) and the block's loss and
 * probability sums into partials[block] and partials[GKC_REDUCE_BLOCKS + block].
 */
static __global__ void sigmoid_bce_kernel(float *dlogit, double *partials, const float *logit,
                                          size_t n, float target, float grad_scale, float inv_n)
{
    double loss = 0.0, prob_sum = 0.0;
    GRID_STRIDE(i, n)
    {
        const float prob = gk_sigmoid(logit[i]);
        loss += gk_bce_forward(prob, target);
        prob_sum += prob;
        if (dlogit)
            dlogit[i] = grad_scale * gk_sigmoid_bce_grad(prob, target) * inv_n;
    }
    block_sum2(&loss, &prob_sum);
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = loss;
        partials[GKC_REDUCE_BLOCKS + blockIdx.x] = prob_sum;
    }
}

/* One warp per row (grid-stride over rows); y == x allowed: lane j alone touches column j. */
static __global__ void softmax_forward_kernel(float *y, const float *x, int rows, int cols)
{
    const int lane = (int)(threadIdx.x & 31u);
    const int warps = (int)(gridDim.x * GKC_WARPS);
    for (int r = (int)(blockIdx.x * GKC_WARPS + (threadIdx.x >> 5)); r < rows; r += warps) {
        const float *in = x + (size_t)r * (size_t)cols;
        float *out = y + (size_t)r * (size_t)cols;
        double s;
        const double m = (double)in[warp_row_argmax_expsum(in, cols, &s)];
        for (int c = lane; c < cols; c += 32)
            out[c] = (float)(exp((double)in[c] - m) / s);
    }
}

/*
 * Fused softmax + cross-entropy, one warp per row: writes dlogit (when asked)
 * and the block's loss and correct-row sums into partials[block] and
 * partials[GKC_REDUCE_BLOCKS + block]. A row whose label is not a class index
 * gets dlogit 0, adds nothing, and its (row << 32 | label) goes into *fault
 * by atomicMin, so the lowest such row is the one reported.
 */
static __global__ void softmax_ce_kernel(float *dlogit, double *partials, unsigned long long *fault,
                                         const float *logit, const int32_t *labels, int rows,
                                         int cols, double scale, double log_tiny)
{
    const int lane = (int)(threadIdx.x & 31u);
    const int warps = (int)(gridDim.x * GKC_WARPS);
    double loss = 0.0, correct = 0.0; /* lane 0 of each warp keeps its rows' sums */
    for (int r = (int)(blockIdx.x * GKC_WARPS + (threadIdx.x >> 5)); r < rows; r += warps) {
        const float *x = logit + (size_t)r * (size_t)cols;
        float *d = dlogit ? dlogit + (size_t)r * (size_t)cols : NULL;
        const int l = labels[r];
        if (l < 0 || l >= cols) {
            if (lane == 0)
                atomicMin(fault, ((unsigned long long)(unsigned)r << 32) | (unsigned)l);
            if (d)
                for (int c = lane; c < cols; c += 32)
                    d[c] = 0.0f;
            continue;
        }
        double s;
        const int arg = warp_row_argmax_expsum(x, cols, &s);
        const double m = (double)x[arg];
        if (lane == 0) {
            correct += arg == l ? 1.0 : 0.0;
            const double log_p = (double)x[l] - m - log(s);
            loss -= log_p > log_tiny ? log_p : log_tiny;
        }
        if (d)
            for (int c = lane; c < cols; c += 32)
                d[c] = (float)(scale * (exp((double)x[c] - m) / s - (c == l ? 1.0 : 0.0)));
    }
    block_sum2(&loss, &correct);
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = loss;
        partials[GKC_REDUCE_BLOCKS + blockIdx.x] = correct;
    }
}

static __global__ void sum_partials_kernel(double *partials, const float *x, size_t n)
{
    double s = 0.0, unused = 0.0;
    GRID_STRIDE(i, n)
    s += x[i];
    block_sum2(&s, &unused);
    if (threadIdx.x == 0)
        partials[blockIdx.x] = s;
}

/*
 * One block: acc[k] += (float)(Σ_b partials[k·GKC_REDUCE_BLOCKS + b] / divisor)
 * for k < count (1 or 2), the partials added in a fixed order.
 */
static __global__ void reduce_finish_kernel(float *acc, const double *partials, unsigned blocks,
                                            int count, double divisor)
{
    double a = 0.0, b = 0.0;
    for (unsigned i = threadIdx.x; i < blocks; i += blockDim.x) {
        a += partials[i];
        if (count > 1)
            b += partials[GKC_REDUCE_BLOCKS + i];
    }
    block_sum2(&a, &b);
    if (threadIdx.x == 0) {
        acc[0] += (float)(a / divisor);
        if (count > 1)
            acc[1] += (float)(b / divisor);
    }
}

/* t, lr_t and the bias corrections from the step counter, once per thread, in double */
static __global__ void adam_kernel(float *param, float *grad, float *m, float *v, size_t n,
                                   gk_adam hp)
{
    const int64_t t = step_value(hp.t);
    const float lr = gk_lr_at(hp.lr.lr, hp.lr.decay, hp.lr.min, t);
    float bias_c1, bias_c2_sqrt;
    gk_adam_corrections(hp.beta1, hp.beta2, t, &bias_c1, &bias_c2_sqrt);
    GRID_STRIDE(i, n)
    {
        gk_adam_update(&param[i], grad[i], &m[i], &v[i], lr, hp.beta1, hp.beta2, hp.eps,
                       hp.weight_decay, bias_c1, bias_c2_sqrt);
        grad[i] = 0.0f; /* backend.h: the next backward pass accumulates */
    }
}

static __global__ void sgd_momentum_kernel(float *param, float *grad, float *vel, size_t n,
                                           gk_lr sched, gk_step step, gk_momentum mom,
                                           gk_step epoch)
{
    const float lr = gk_lr_at(sched.lr, sched.decay, sched.min, step_value(step));
    const float momentum = gk_momentum_at(mom.start, mom.final, mom.epochs, step_value(epoch));
    GRID_STRIDE(i, n)
    {
        const float v = momentum * vel[i] - lr * grad[i];
        vel[i] = v;
        param[i] += v;
        grad[i] = 0.0f;
    }
}

static __global__ void fill_normal_kernel(float *x, size_t n, gk_rng rng, float mean, float std)
{
    const uint32_t step = (uint32_t)step_value(rng.step);
    GRID_STRIDE(i, n)
    x[i] = __fadd_rn(mean, __fmul_rn(std, gk_philox_normal(rng.seed, rng.purpose, step, i)));
}

/* One thread per Philox block, as dropout. */
static __global__ void fill_uniform_kernel(float *x, size_t n, gk_rng rng, float lo, float span)
{
    const size_t blocks = (n + 3) / 4;
    const uint32_t step = (uint32_t)step_value(rng.step);
    GRID_STRIDE(b, blocks)
    {
        const gk_philox4 r = gk_philox_block(rng.seed, rng.purpose, step, b);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const size_t i = b * 4 + (size_t)j;
            if (i < n)
                x[i] = __fadd_rn(lo, __fmul_rn(span, gk_u01(r.v[j])));
        }
    }
}

static __global__ void gather_rows_u8_kernel(float *dst, const uint8_t *src, const int32_t *index,
                                             int rows, int cols, float scale, gk_step block,
                                             int64_t blocks)
{
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= cols)
        return;
    index += (size_t)(step_value(block) % blocks) * (size_t)rows;
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        const uint8_t *in = src + (size_t)index[r] * (size_t)cols;
        dst[(size_t)r * (size_t)cols + col] = (float)in[col] * scale;
    }
}

/* One block per row: strided sum of squares in double, a fixed tree, then scale. */
static __global__ void clip_row_norms_kernel(float *W, int cols, float max_norm)
{
    __shared__ double part[GKC_THREADS];
    float *w = W + (size_t)blockIdx.x * (size_t)cols;
    double sq = 0.0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        sq += (double)w[c] * (double)w[c];
    part[threadIdx.x] = sq;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    float norm = (float)sqrt(part[0]);
    float scale = __fdiv_rn(norm < max_norm ? norm : max_norm, __fadd_rn(1e-7f, norm));
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        w[c] = __fmul_rn(w[c], scale);
}

static __global__ void mark_nonfinite_kernel(float *acc, int n, int slot, gk_step tag)
{
    if (threadIdx.x != 0 || acc[slot] != 0.0f)
        return;
    for (int i = 0; i < n; i++)
        if (!isfinite(acc[i])) {
            acc[slot] = (float)step_value(tag);
            return;
        }
}

/* One thread per counter. */
static __global__ void counters_add_kernel(int64_t *c, gk_counters delta)
{
    if (threadIdx.x < GK_COUNTERS)
        c[threadIdx.x] += delta.v[threadIdx.x];
}

static __global__ void fill_kernel(float *x, size_t n, float value)
{
    GRID_STRIDE(i, n)
    x[i] = value;
}

static __global__ void axpy_kernel(float *y, const float *x, size_t n, float a)
{
    GRID_STRIDE(i, n)
    y[i] += a * x[i];
}

static __global__ void ema_update_kernel(float *y, const float *x, size_t n, double decay,
                                         gk_step step)
{
    const float w = gk_ema_weight(decay, step_value(step));
    GRID_STRIDE(i, n)
    y[i] += w * (x[i] - y[i]);
}

/* ---- ops ------------------------------------------------------------------ */

/*
 * Wait for everything queued on the stream. Once a softmax_ce has been
 * issued, the wait also fetches the bad-label record its kernels keep
 * (label_fault, copied into pinned memory on the stream, so the copy costs
 * no extra wait) and turns a recorded row into the sticky error, as the CPU
 * reports a bad label at once. The record is then reset, so the error is
 * reported once. False when the wait or the record failed.
 */
static bool stream_wait(gk_backend *be, cuda_ctx *c)
{
    if (c->label_checks &&
        !CUDA_CHECK(be, cudaMemcpyAsync(c->label_fault_host, c->label_fault, sizeof *c->label_fault,
                                        cudaMemcpyDeviceToHost, c->stream)))
        return false;
    if (!CUDA_CHECK(be, cudaStreamSynchronize(c->stream)))
        return false;
    if (!c->label_checks || *c->label_fault_host == GKC_NO_FAULT)
        return true;
    const unsigned long long f = *c->label_fault_host;
    *c->label_fault_host = GKC_NO_FAULT;
    CUDA_CHECK(be, cudaMemsetAsync(c->label_fault, 0xff, sizeof *c->label_fault, c->stream));
    GK_FAIL(be, "softmax_ce: row %u has label %d, not a class index 0..cols-1 (found on the GPU)",
            (unsigned)(f >> 32), (int)(unsigned)(f & 0xffffffffu));
    return false;
}

static void *cuda_alloc(gk_backend *be, size_t bytes)
{
    cuda_ctx *c = live_ctx(be);
    if (!c)
        return NULL;
    void *p = NULL;
    size_t rounded = bytes ? bytes : 1; /* a valid, distinct pointer even for 0 bytes */
    cudaError_t err = cudaMalloc(&p, rounded);
    if (err != cudaSuccess) {
        gk_backend_fail(be, __FILE__, __LINE__, "cudaMalloc of %zu bytes: %s (%s)", bytes,
                        cudaGetErrorString(err), cudaGetErrorName(err));
        return NULL;
    }
    /* on the stream, so later ops on it see the zeros */
    if (!CUDA_CHECK(be, cudaMemsetAsync(p, 0, rounded, c->stream))) {
        cudaFree(p);
        return NULL;
    }
    return p;
}

static void cuda_free(gk_backend *be, void *p)
{
    if (!p)
        return;
    /* freed even after a failure, so a failed run gives its memory back */
    cudaError_t err = cudaFree(p);
    if (!be->error[0])
        CUDA_CHECK(be, err);
}

static void cuda_upload(gk_backend *be, void *dst, const void *host_src, size_t bytes)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || bytes == 0)
        return;
    if (CUDA_CHECK(be, cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, c->stream)))
        stream_wait(be, c);
}

static void cuda_download(gk_backend *be, void *host_dst, const void *src, size_t bytes)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || bytes == 0)
        return; /* after a failure host_dst keeps what it held (e.g. the last good weights) */
    if (CUDA_CHECK(be, cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, c->stream)))
        stream_wait(be, c);
}

/* memmove meaning: overlapping ranges go through a stream-ordered temporary. */
static void cuda_copy(gk_backend *be, void *dst, const void *src, size_t bytes)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || bytes == 0 || dst == src)
        return;
    const char *d = (const char *)dst, *s = (const char *)src;
    if (d + bytes <= s || s + bytes <= d) {
        CUDA_CHECK(be, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream));
        return;
    }
    void *tmp = NULL;
    if (!CUDA_CHECK(be, cudaMallocAsync(&tmp, bytes, c->stream)))
        return;
    if (CUDA_CHECK(be, cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, c->stream)))
        CUDA_CHECK(be, cudaMemcpyAsync(dst, tmp, bytes, cudaMemcpyDeviceToDevice, c->stream));
    CUDA_CHECK(be, cudaFreeAsync(tmp, c->stream));
}

static void cuda_synchronize(gk_backend *be)
{
    cuda_ctx *c = live_ctx(be);
    if (c)
        stream_wait(be, c);
}

/* Row-major C = α·op(A)·op(B) + β·C as column-major Cᵀ = α·op(B)ᵀ·op(A)ᵀ + β·Cᵀ. */
static void cuda_sgemm(gk_backend *be, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                       const float *a, int lda, const float *b, int ldb, float beta, float *c,
                       int ldc)
{
    cuda_ctx *ctx = live_ctx(be);
    if (!ctx || m <= 0 || n <= 0 || k <= 0)
        return; /* backend.h: an empty shape changes nothing */
    CUBLAS_CHECK(be, cublasSgemm(ctx->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb, a,
                                 lda, &beta, c, ldc));
}

static void cuda_bias_add(gk_backend *be, float *y, const float *bias, int rows, int cols)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || rows <= 0 || cols <= 0)
        return;
    bias_add_kernel<<<grid_rows_cols(c, rows, cols), GKC_THREADS, 0, c->stream>>>(y, bias, rows,
                                                                                  cols);
    LAUNCH_CHECK(be, "bias_add_kernel");
}

static void cuda_bias_relu(gk_backend *be, float *y, const float *x, const float *bias, int rows,
                           int cols, float slope)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || rows <= 0 || cols <= 0)
        return;
    bias_relu_kernel<<<grid_rows_cols(c, rows, cols), GKC_THREADS, 0, c->stream>>>(y, x, bias, rows,
                                                                                   cols, slope);
    LAUNCH_CHECK(be, "bias_relu_kernel");
}

static void cuda_bias_grad(gk_backend *be, float *db, const float *dy, int rows, int cols,
                           bool accumulate)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || cols <= 0)
        return;
    if (rows < 0)
        rows = 0; /* CPU meaning: an empty sum, so db = 0 (or unchanged when accumulating) */
    const unsigned blocks = (unsigned)((cols + GKC_BG_COLS - 1) / GKC_BG_COLS);
    column_sums_kernel<false><<<blocks, dim3(GKC_BG_COLS, GKC_BG_ROWS), 0, c->stream>>>(
        db, dy, nullptr, rows, cols, accumulate);
    LAUNCH_CHECK(be, "column_sums_kernel (bias_grad)");
}

static void cuda_linear1_backward(gk_backend *be, float *dx, float *dw, float *db, const float *dy,
                                  const float *x, const float *w, int rows, int cols,
                                  bool accumulate)
{
    cuda_ctx *c = live_ctx(be);
    if (!c)
        return;
    if (db)
        cuda_bias_grad(be, db, dy, rows, 1, accumulate);
    if (cols <= 0)
        return;
    if (rows < 0)
        rows = 0; /* the CPU's meaning: sums of nothing */
    if (dw) {
        const unsigned blocks = (unsigned)((cols + GKC_BG_COLS - 1) / GKC_BG_COLS);
        column_sums_kernel<true><<<blocks, dim3(GKC_BG_COLS, GKC_BG_ROWS), 0, c->stream>>>(
            dw, x, dy, rows, cols, accumulate);
        LAUNCH_CHECK(be, "column_sums_kernel (linear1_backward)");
    }
    if (dx && rows > 0) {
        linear1_dx_kernel<<<grid_for(c, (size_t)rows * (size_t)cols), GKC_THREADS, 0,
                            c->stream>>>(dx, dy, w, rows, cols);
        LAUNCH_CHECK(be, "linear1_dx_kernel");
    }
}

static void cuda_relu_forward(gk_backend *be, float *y, const float *x, size_t n, float slope)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n == 0)
        return;
    relu_forward_kernel<<<grid_for(c, n), GKC_THREADS, 0, c->stream>>>(y, x, n, slope);
    LAUNCH_CHECK(be, "relu_forward_kernel");
}

static void cuda_relu_backward(gk_backend *be, float *dx, const float *dy, const float *y, size_t n,
                               float slope)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n == 0)
        return;
    relu_backward_kernel<<<grid_for(c, n), GKC_THREADS, 0, c->stream>>>(dx, dy, y, n, slope);
    LAUNCH_CHECK(be, "relu_backward_kernel");
}

static void cuda_sigmoid_forward(gk_backend *be, float *y, const float *x, size_t n)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n == 0)
        return;
    sigmoid_forward_kernel<<<grid_for(c, n), GKC_THREADS, 0, c->stream>>>(y, x, n);
    LAUNCH_CHECK(be, "sigmoid_forward_kernel");
}

static void cuda_sigmoid_backward(gk_backend *be, float *dx, const float *dy, const float *y,
                                  size_t n)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n == 0)
        return;
    sigmoid_backward_kernel<<<grid_for(c, n), GKC_THREADS, 0, c->stream>>>(dx, dy, y, n);
    LAUNCH_CHECK(be, "sigmoid_backward_kernel");
}

static void cuda_maxout_forward(gk_backend *be, float *y, int32_t *argmax, const float *x, int rows,
                                int units, int pieces)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || rows <= 0 || units <= 0 || pieces <= 0)
        return;
    const size_t outs = (size_t)rows * (size_t)units;
    maxout_forward_kernel<<<grid_for(c, outs), GKC_THREADS, 0, c->stream>>>(y, argmax, x, outs,
                                                                            pieces);
    LAUNCH_CHECK(be, "maxout_forward_kernel");
}

static void cuda_bias_maxout(gk_backend *be, float *y, int32_t *argmax, const float *x,
                             const float *bias, int rows, int units, int pieces)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || rows <= 0 || units <= 0 || pieces <= 0)
        return;
    const size_t outs = (size_t)rows * (size_t)units;
    bias_maxout_kernel<<<grid_for(c, outs), GKC_THREADS, 0, c->stream>>>(y, argmax, x, bias, outs,
                                                                         units, pieces);
    LAUNCH_CHECK(be, "bias_maxout_kernel");
}

/* backend.h: dx as the kernel writes it, then db as bias_grad sums dx (bit for bit, here too) */
static void cuda_maxout_backward(gk_backend *be, float *dx, float *db, const float *dy,
                                 const float *mask, const int32_t *argmax, int rows, int units,
                                 int pieces, bool accumulate)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || units <= 0 || pieces <= 0)
        return;
    if (rows > 0) {
        const size_t outs = (size_t)rows * (size_t)units;
        maxout_backward_kernel<<<grid_for(c, outs * (size_t)pieces), GKC_THREADS, 0,
                                 c->stream>>>(dx, dy, mask, argmax, outs, pieces);
        LAUNCH_CHECK(be, "maxout_backward_kernel");
    }
    if (db)
        cuda_bias_grad(be, db, dx, rows, units * pieces, accumulate);
}

static void cuda_dropout_forward(gk_backend *be, float *y, float *mask, const float *x, size_t n,
                                 float p, gk_rng rng)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n == 0)
        return;
    if (p <= 0.0f) {
        dropout_keep_all_kernel<<<grid_for(c, n), GKC_THREADS, 0, c->stream>>>(y, mask, x, n);
        LAUNCH_CHECK(be, "dropout_keep_all_kernel");
        return;
    }
    const float keep_scale = 1.0f / (1.0f - p); /* on the host, exactly as the CPU */
    dropout_forward_kernel<<<grid_for(c, (n + 3) / 4), GKC_THREADS, 0, c->stream>>>(
        y, mask, x, n, p, keep_scale, rng);
    LAUNCH_CHECK(be, "dropout_forward_kernel");
}

static void cuda_dropout_backward(gk_backend *be, float *dx, const float *dy, const float *mask,
                                  size_t n)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n == 0)
        return;
    dropout_backward_kernel<<<grid_for(c, n), GKC_THREADS, 0, c->stream>>>(dx, dy, mask, n);
    LAUNCH_CHECK(be, "dropout_backward_kernel");
}

static void cuda_sigmoid_bce(gk_backend *be, float *dlogit, float *acc, const float *logit, int n,
                             float target, float grad_scale)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n <= 0)
        return;
    const float inv_n = 1.0f / (float)n;
    const unsigned blocks = reduce_grid((size_t)n);
    sigmoid_bce_kernel<<<blocks, GKC_THREADS, 0, c->stream>>>(dlogit, c->partials, logit, (size_t)n,
                                                              target, grad_scale, inv_n);
    if (!LAUNCH_CHECK(be, "sigmoid_bce_kernel"))
        return;
    reduce_finish_kernel<<<1, GKC_THREADS, 0, c->stream>>>(acc, c->partials, blocks, 2, (double)n);
    LAUNCH_CHECK(be, "reduce_finish_kernel");
}

static void cuda_softmax_forward(gk_backend *be, float *y, const float *x, int rows, int cols)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || rows <= 0 || cols <= 0)
        return;
    size_t blocks = ((size_t)rows + GKC_WARPS - 1) / GKC_WARPS;
    if (blocks > c->max_blocks)
        blocks = c->max_blocks;
    softmax_forward_kernel<<<(unsigned)blocks, GKC_THREADS, 0, c->stream>>>(y, x, rows, cols);
    LAUNCH_CHECK(be, "softmax_forward_kernel");
}

static void cuda_softmax_ce(gk_backend *be, float *dlogit, float *acc, const float *logit,
                            const int32_t *labels, int rows, int cols, float grad_scale)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || rows <= 0 || cols <= 0)
        return; /* backend.h: a mean over nothing adds nothing */
    /* from now on every wait looks for a bad label */
    c->label_checks = true;
    /* a function of rows only, so the sums are reproducible */
    size_t blocks = ((size_t)rows + GKC_WARPS - 1) / GKC_WARPS;
    if (blocks > GKC_REDUCE_BLOCKS)
        blocks = GKC_REDUCE_BLOCKS;
    const double scale = (double)grad_scale / rows, log_tiny = log((double)FLT_MIN);
    softmax_ce_kernel<<<(unsigned)blocks, GKC_THREADS, 0, c->stream>>>(
        dlogit, c->partials, c->label_fault, logit, labels, rows, cols, scale, log_tiny);
    if (!LAUNCH_CHECK(be, "softmax_ce_kernel"))
        return;
    reduce_finish_kernel<<<1, GKC_THREADS, 0, c->stream>>>(acc, c->partials, (unsigned)blocks, 2,
                                                           (double)rows);
    LAUNCH_CHECK(be, "reduce_finish_kernel");
}

static void cuda_adam(gk_backend *be, float *param, float *grad, float *m, float *v, size_t n,
                      gk_adam hp)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n == 0)
        return;
    adam_kernel<<<grid_for(c, n), GKC_THREADS, 0, c->stream>>>(param, grad, m, v, n, hp);
    LAUNCH_CHECK(be, "adam_kernel");
}

static void cuda_sgd_momentum(gk_backend *be, float *param, float *grad, float *vel, size_t n,
                              gk_lr lr, gk_step step, gk_momentum momentum, gk_step epoch)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n == 0)
        return;
    sgd_momentum_kernel<<<grid_for(c, n), GKC_THREADS, 0, c->stream>>>(param, grad, vel, n, lr,
                                                                       step, momentum, epoch);
    LAUNCH_CHECK(be, "sgd_momentum_kernel");
}

static void cuda_fill_normal(gk_backend *be, float *x, size_t n, gk_rng rng, float mean, float std)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n == 0)
        return;
    fill_normal_kernel<<<grid_for(c, n), GKC_THREADS, 0, c->stream>>>(x, n, rng, mean, std);
    LAUNCH_CHECK(be, "fill_normal_kernel");
}

static void cuda_fill_uniform(gk_backend *be, float *x, size_t n, gk_rng rng, float lo, float hi)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n == 0)
        return;
    const float span = hi - lo;
    fill_uniform_kernel<<<grid_for(c, (n + 3) / 4), GKC_THREADS, 0, c->stream>>>(x, n, rng, lo,
                                                                                 span);
    LAUNCH_CHECK(be, "fill_uniform_kernel");
}

static void cuda_gather_rows_u8(gk_backend *be, float *dst, const uint8_t *src,
                                const int32_t *index, int rows, int cols, float scale,
                                gk_step block, int64_t blocks)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || rows <= 0 || cols <= 0)
        return;
    if (blocks < 1) {
        GK_FAIL(be, "gather_rows_u8: blocks is %lld, must be at least 1", (long long)blocks);
        return;
    }
    gather_rows_u8_kernel<<<grid_rows_cols(c, rows, cols), GKC_THREADS, 0, c->stream>>>(
        dst, src, index, rows, cols, scale, block, blocks);
    LAUNCH_CHECK(be, "gather_rows_u8_kernel");
}

static void cuda_sum(gk_backend *be, float *acc, const float *x, size_t n)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n == 0)
        return; /* adds the sum of nothing */
    const unsigned blocks = reduce_grid(n);
    sum_partials_kernel<<<blocks, GKC_THREADS, 0, c->stream>>>(c->partials, x, n);
    if (!LAUNCH_CHECK(be, "sum_partials_kernel"))
        return;
    reduce_finish_kernel<<<1, GKC_THREADS, 0, c->stream>>>(acc, c->partials, blocks, 1, 1.0);
    LAUNCH_CHECK(be, "reduce_finish_kernel");
}

static void cuda_fill(gk_backend *be, float *x, size_t n, float value)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n == 0)
        return;
    fill_kernel<<<grid_for(c, n), GKC_THREADS, 0, c->stream>>>(x, n, value);
    LAUNCH_CHECK(be, "fill_kernel");
}

static void cuda_axpy(gk_backend *be, float *y, const float *x, size_t n, float a)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n == 0)
        return;
    axpy_kernel<<<grid_for(c, n), GKC_THREADS, 0, c->stream>>>(y, x, n, a);
    LAUNCH_CHECK(be, "axpy_kernel");
}

static void cuda_ema_update(gk_backend *be, float *y, const float *x, size_t n, double decay,
                            gk_step step)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || n == 0)
        return;
    ema_update_kernel<<<grid_for(c, n), GKC_THREADS, 0, c->stream>>>(y, x, n, decay, step);
    LAUNCH_CHECK(be, "ema_update_kernel");
}

static void cuda_clip_row_norms(gk_backend *be, float *W, int rows, int cols, float max_norm)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || rows == 0)
        return;
    clip_row_norms_kernel<<<rows, GKC_THREADS, 0, c->stream>>>(W, cols, max_norm);
    LAUNCH_CHECK(be, "clip_row_norms_kernel");
}

static void cuda_mark_nonfinite(gk_backend *be, float *acc, int n, int slot, gk_step tag)
{
    cuda_ctx *c = live_ctx(be);
    if (!c)
        return;
    mark_nonfinite_kernel<<<1, 32, 0, c->stream>>>(acc, n, slot, tag);
    LAUNCH_CHECK(be, "mark_nonfinite_kernel");
}

static void cuda_counters_add(gk_backend *be, int64_t *ctr, gk_counters delta)
{
    cuda_ctx *c = live_ctx(be);
    if (!c)
        return;
    counters_add_kernel<<<1, 32, 0, c->stream>>>(ctr, delta);
    LAUNCH_CHECK(be, "counters_add_kernel");
}

/* ---- graphs ---------------------------------------------------------------- */

static bool cuda_graph_begin(gk_backend *be)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || !c->graphs)
        return false;
    if (c->capturing) {
        GK_FAIL(be, "graph_begin while a capture is in progress");
        return false;
    }
    /* thread-local: unsafe calls (cudaMalloc, synchronisation) from this thread fail the
     * capture; other threads of the process are not affected */
    if (!CUDA_CHECK(be, cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal)))
        return false;
    c->capturing = true;
    return true;
}

/*
 * Ends the capture whatever happened since graph_begin (the stream must leave
 * capture mode), then instantiates the graph unless the backend has failed.
 */
static gk_graph *cuda_graph_end(gk_backend *be)
{
    cuda_ctx *c = (cuda_ctx *)be->ctx;
    if (!c || !c->capturing) {
        GK_FAIL(be, "graph_end without a capture in progress");
        return NULL;
    }
    c->capturing = false;
    cudaGraph_t graph = NULL;
    cudaError_t ended = cudaStreamEndCapture(c->stream, &graph);
    if (ended != cudaSuccess)
        (void)cudaGetLastError(); /* recorded below (or earlier); not left for the next check */
    gk_graph *g = NULL;
    if (!be->error[0] && cuda_ok(be, ended, "cudaStreamEndCapture", __FILE__, __LINE__)) {
        g = (gk_graph *)calloc(1, sizeof *g);
        if (!g)
            GK_FAIL(be, "out of memory for a graph");
        else if (!CUDA_CHECK(be, cudaGraphInstantiate(&g->exec, graph, 0))) {
            free(g);
            g = NULL;
        }
    }
    if (graph) {
        cudaError_t destroyed = cudaGraphDestroy(graph); /* the executable graph is independent */
        if (!be->error[0])
            cuda_ok(be, destroyed, "cudaGraphDestroy", __FILE__, __LINE__);
    }
    return g;
}

static void cuda_graph_launch(gk_backend *be, gk_graph *g)
{
    cuda_ctx *c = live_ctx(be);
    if (!c || !g)
        return;
    CUDA_CHECK(be, cudaGraphLaunch(g->exec, c->stream));
}

/* An executable graph still running is freed when it completes (cudaGraphExecDestroy). */
static void cuda_graph_free(gk_backend *be, gk_graph *g)
{
    if (!g)
        return;
    cudaError_t err = cudaGraphExecDestroy(g->exec);
    if (!be->error[0])
        CUDA_CHECK(be, err);
    free(g);
}

static void cuda_set_tf32(gk_backend *be, bool enable)
{
    cuda_ctx *c = live_ctx(be);
    if (!c)
        return;
    CUBLAS_CHECK(
        be, cublasSetMathMode(c->blas, enable ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

static const gk_backend_ops cuda_ops = {
    .name = "cuda",
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .copy = cuda_copy,
    .synchronize = cuda_synchronize,
    .sgemm = cuda_sgemm,
    .bias_add = cuda_bias_add,
    .bias_relu = cuda_bias_relu,
    .bias_grad = cuda_bias_grad,
    .linear1_backward = cuda_linear1_backward,
    .relu_forward = cuda_relu_forward,
    .relu_backward = cuda_relu_backward,
    .sigmoid_forward = cuda_sigmoid_forward,
    .sigmoid_backward = cuda_sigmoid_backward,
    .maxout_forward = cuda_maxout_forward,
    .bias_maxout = cuda_bias_maxout,
    .maxout_backward = cuda_maxout_backward,
    .dropout_forward = cuda_dropout_forward,
    .dropout_backward = cuda_dropout_backward,
    .sigmoid_bce = cuda_sigmoid_bce,
    .softmax_forward = cuda_softmax_forward,
    .softmax_ce = cuda_softmax_ce,
    .adam = cuda_adam,
    .sgd_momentum = cuda_sgd_momentum,
    .fill_normal = cuda_fill_normal,
    .fill_uniform = cuda_fill_uniform,
    .gather_rows_u8 = cuda_gather_rows_u8,
    .sum = cuda_sum,
    .fill = cuda_fill,
    .axpy = cuda_axpy,
    .ema_update = cuda_ema_update,
    .clip_row_norms = cuda_clip_row_norms,
    .mark_nonfinite = cuda_mark_nonfinite,
    .counters_add = cuda_counters_add,
    .set_tf32 = cuda_set_tf32,
    .graph_begin = cuda_graph_begin,
    .graph_end = cuda_graph_end,
    .graph_launch = cuda_graph_launch,
    .graph_free = cuda_graph_free,
};

/* ---- open / close ---------------------------------------------------------- */

static void destroy_ctx(cuda_ctx *c)
{
    if (!c)
        return;
    if (c->capturing) { /* a capture left open by a caller: end it before waiting */
        cudaGraph_t g = NULL;
        if (cudaStreamEndCapture(c->stream, &g) == cudaSuccess && g)
            cudaGraphDestroy(g);
        c->capturing = false;
    }
    if (c->stream)
        cudaStreamSynchronize(c->stream);
    if (c->blas)
        cublasDestroy(c->blas);
    if (c->blas_ws)
        cudaFree(c->blas_ws);
    if (c->partials)
        cudaFree(c->partials);
    if (c->label_fault)
        cudaFree(c->label_fault);
    if (c->label_fault_host)
        cudaFreeHost(c->label_fault_host);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    free(c);
}

/* Open-time checks write into `why` (there is no backend yet to hold an error). */
#define OPEN_CHECK(call)                                                                           \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            snprintf(why, why_len, "%s failed: %s (%s)", #call, cudaGetErrorString(e_),            \
                     cudaGetErrorName(e_));                                                        \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

extern "C" gk_backend *gk_cuda_backend_open(char *why, size_t why_len)
{
    gk_backend *be = NULL;
    cuda_ctx *c = NULL;
    cudaDeviceProp prop;
    cudaFuncAttributes attr;
    cublasStatus_t st;
    const int dev = 0;
    int count = 0;

    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        snprintf(why, why_len, "no CUDA device: cudaGetDeviceCount returned '%s' (%s)",
                 cudaGetErrorString(err), cudaGetErrorName(err));
        cudaGetLastError(); /* clear it: the process may keep running on the CPU */
        return NULL;
    }
    if (count == 0) {
        snprintf(why, why_len, "no CUDA device: cudaGetDeviceCount found none");
        return NULL;
    }
    OPEN_CHECK(cudaSetDevice(dev));
    OPEN_CHECK(cudaGetDeviceProperties(&prop, dev));
    /* Does this binary carry code the device can run (sm_90 SASS or compute_90 PTX)? */
    err = cudaFuncGetAttributes(&attr, relu_forward_kernel);
    if (err != cudaSuccess) {
        snprintf(why, why_len, "CUDA device %s (sm_%d%d) cannot run this build's kernels: %s",
                 prop.name, prop.major, prop.minor, cudaGetErrorString(err));
        cudaGetLastError();
        return NULL;
    }

    be = (gk_backend *)calloc(1, sizeof *be);
    c = (cuda_ctx *)calloc(1, sizeof *c);
    if (!be || !c) {
        snprintf(why, why_len, "out of memory");
        goto fail;
    }
    OPEN_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    st = cublasCreate(&c->blas);
    if (st != CUBLAS_STATUS_SUCCESS) {
        c->blas = NULL;
        snprintf(why, why_len, "cublasCreate failed: %s", cublasGetStatusString(st));
        goto fail;
    }
    /* cublasSetStream resets the workspace to cuBLAS's own pool: set ours after it */
    OPEN_CHECK(cudaMalloc(&c->blas_ws, GKC_BLAS_WORKSPACE));
    st = cublasSetStream(c->blas, c->stream);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasSetWorkspace(c->blas, c->blas_ws, GKC_BLAS_WORKSPACE);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH); /* no TF32: parity with the CPU */
    if (st != CUBLAS_STATUS_SUCCESS) {
        snprintf(why, why_len, "cuBLAS setup failed: %s", cublasGetStatusString(st));
        goto fail;
    }
    OPEN_CHECK(cudaMalloc((void **)&c->partials, 2 * GKC_REDUCE_BLOCKS * sizeof(double)));
    OPEN_CHECK(cudaMalloc((void **)&c->label_fault, sizeof *c->label_fault));
    OPEN_CHECK(cudaMemsetAsync(c->label_fault, 0xff, sizeof *c->label_fault, c->stream));
    OPEN_CHECK(cudaMallocHost((void **)&c->label_fault_host, sizeof *c->label_fault_host));
    *c->label_fault_host = GKC_NO_FAULT;
    {
        unsigned per_sm = (unsigned)prop.maxThreadsPerMultiProcessor / GKC_THREADS;
        c->max_blocks = (unsigned)prop.multiProcessorCount * (per_sm ? per_sm : 1);
        if (c->max_blocks < 1)
            c->max_blocks = 1;
    }
    {
        const char *env = getenv("GAND_CUDA_GRAPHS");
        c->graphs = !(env && strcmp(env, "0") == 0);
    }

    be->ops = &cuda_ops;
    be->ctx = c;
    snprintf(be->device, sizeof be->device, "%.96s (sm_%d%d, %.0f GiB%s)", prop.name, prop.major,
             prop.minor, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0),
             c->graphs ? "" : ", CUDA graphs off");
    /* the runtime keeps a thread's last error across contexts: a backend reopened after a
     * failure (the worker does that) must not inherit it at its first launch check */
    (void)cudaGetLastError();
    return be;

fail:
    destroy_ctx(c);
    free(be);
    cudaGetLastError();
    return NULL;
}

/*
 * After a failure the primary context may be poisoned (an illegal address, a
 * kernel fault: every later call in the process fails the same way), and a
 * new backend on it could not recover. So closing a failed backend resets the
 * device, which drops the primary context and everything in it; the next
 * gk_cuda_backend_open starts on a fresh one. gand holds at most one CUDA
 * backend at a time (the worker's), so nothing else loses its memory.
 */
extern "C" void gk_cuda_backend_close(gk_backend *be)
{
    if (!be)
        return;
    bool failed = be->error[0] != '\0';
    destroy_ctx((cuda_ctx *)be->ctx);
    free(be);
    if (failed)
        cudaDeviceReset();
}
