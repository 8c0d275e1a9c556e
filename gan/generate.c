/*
 * gan/generate.c — G's forward pass on the host, for every image a user sees:
 * the fixed-noise grids, samples.png, generate, interpolate, the IDX export and
 * the samples an evaluation scores.
 *
 * The promise: the image of a latent vector depends on that vector and the
 * weights only — not on how many other vectors share the request, not on the
 * thread count, not on the CPU. A BLAS cannot keep it: OpenBLAS picks its
 * kernel by CPU and by shape (one row takes another path than three), and each
 * kernel adds the products in its own order. So every output element of a
 * layer here is one fixed sequence of IEEE-754 single-precision operations,
 *
 *     y = b[n];  for k = 0 … K−1:  y = y + x[k] · W[n][k]   (each · and + rounded)
 *
 * and all the rest is arrangement. Vectors run across the rows of a block
 * (ROWS latent vectors at a time, a short block padded with zeros), never along
 * k, so each lane computes exactly the scalar loop above; this file is built
 * with -ffp-contract=off, so no multiply and add are fused into an FMA, whatever
 * vector width the CPU offers. Blocks are independent, so the threads
 * that share them cannot change a bit either. The sigmoid output uses an exp of
 * its own for the same reason: glibc chooses its expf by CPU.
 *
 * Training does not come here: its GEMMs go through the backend, fast and
 * reproducible for one shape on one machine, which is all resume needs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "gan/trainer.h"

enum {
    ROWS = 16,  /* latent vectors per block: one AVX-512 register of floats */
    COLS = 4,   /* output units computed together, sharing each load of the inputs */
    GROUP = 16, /* blocks that share each pass over a layer's weights */
    KCHUNK = 64 /* weight columns per pass: 1200 × 64 floats, 300 KB, stay in L2 */
};

typedef float rowvec __attribute__((vector_size(ROWS * sizeof(float))));
/* the same vector at any float-aligned address: the block buffers are only malloc-aligned */
typedef float rowvec_unaligned
    __attribute__((vector_size(ROWS * sizeof(float)), aligned(sizeof(float)), may_alias));
#define ROWS_AT(p) (*(rowvec_unaligned *)(p))
/*
 * The inner loop works on half a row block at a time: 8 floats, one AVX2
 * register. With 16-float vectors GCC's AVX2 code kept the sums on the stack
 * (a load and a store per add) and ran at a twentieth of sgemm's rate.
 */
enum { HALF = ROWS / 2 };
typedef float halfvec __attribute__((vector_size(HALF * sizeof(float))));
typedef float halfvec_unaligned
    __attribute__((vector_size(HALF * sizeof(float)), aligned(sizeof(float)), may_alias));
#define HALF_AT(p) (*(halfvec_unaligned *)(p))

/*
 * Part of one linear layer over a block, in transposed form: xt holds inputs
 * k0 … k0+kc−1 of the block (kc × ROWS, input k of every row contiguous), W
 * points at column k0 of the N × K row-major weight (PyTorch's layout, row
 * stride K), and yt (N × ROWS) holds the sums so far, to which those inputs'
 * products are added in order. Storing a float sum and loading it again is
 * exact, so adding a layer's inputs in chunks gives the bits of one pass.
 * Cloned for AVX-512 and AVX2 and picked at load time: the clones differ in
 * how many lanes one instruction covers, never in what a lane computes.
 */
#if defined(__x86_64__)
#define GAND_LANE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GAND_LANE_CLONES
#endif
GAND_LANE_CLONES static void linear_chunk(const float *xt, int kc, const float *W, int K, int N,
                                          float *yt)
{
    int n = 0;
    for (; n + COLS <= N; n += COLS) { /* COLS = 4, written out: the sums stay in registers */
        const float *w0 = W + (size_t)n * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
        float *y0 = yt + (size_t)n * ROWS, *y1 = y0 + ROWS, *y2 = y1 + ROWS, *y3 = y2 + ROWS;
        halfvec a0 = HALF_AT(y0), b0 = HALF_AT(y0 + HALF), a1 = HALF_AT(y1),
                b1 = HALF_AT(y1 + HALF);
        halfvec a2 = HALF_AT(y2), b2 = HALF_AT(y2 + HALF), a3 = HALF_AT(y3),
                b3 = HALF_AT(y3 + HALF);
        for (int k = 0; k < kc; k++) {
            halfvec lo = HALF_AT(xt + (size_t)k * ROWS), hi = HALF_AT(xt + (size_t)k * ROWS + HALF);
            a0 = a0 + lo * w0[k];
            b0 = b0 + hi * w0[k];
            a1 = a1 + lo * w1[k];
            b1 = b1 + hi * w1[k];
            a2 = a2 + lo * w2[k];
            b2 = b2 + hi * w2[k];
            a3 = a3 + lo * w3[k];
            b3 = b3 + hi * w3[k];
        }
        HALF_AT(y0) = a0;
        HALF_AT(y0 + HALF) = b0;
        HALF_AT(y1) = a1;
        HALF_AT(y1 + HALF) = b1;
        HALF_AT(y2) = a2;
        HALF_AT(y2 + HALF) = b2;
        HALF_AT(y3) = a3;
        HALF_AT(y3 + HALF) = b3;
    }
    for (; n < N; n++) {
        const float *w = W + (size_t)n * K;
        halfvec a0 = HALF_AT(yt + (size_t)n * ROWS), a1 = HALF_AT(yt + (size_t)n * ROWS + HALF);
        for (int k = 0; k < kc; k++) {
            a0 = a0 + HALF_AT(xt + (size_t)k * ROWS) * w[k];
            a1 = a1 + HALF_AT(xt + (size_t)k * ROWS + HALF) * w[k];
        }
        HALF_AT(yt + (size_t)n * ROWS) = a0;
        HALF_AT(yt + (size_t)n * ROWS + HALF) = a1;
    }
}

/*
 * One linear layer over nb blocks (block i's input at xt + i·xs, its output
 * at yt + i·ys, each transposed as above). A block alone would stream all of
 * W from memory for its 16 rows — G's 1200 × 1200 layer is 5.8 MB, more than
 * the caches — so W is walked in chunks of KCHUNK columns that stay in cache
 * while every block of the group adds them: memory traffic falls by the
 * group's size and the sums keep their order (see linear_chunk).
 */
static void linear_blocks(const float *xt, size_t xs, int nb, int K, const float *W, const float *b,
                          int N, float *yt, size_t ys)
{
    for (int i = 0; i < nb; i++)
        for (int n = 0; n < N; n++)
            ROWS_AT(yt + i * ys + (size_t)n * ROWS) = b[n] + (rowvec){0};
    for (int k0 = 0; k0 < K; k0 += KCHUNK) {
        int kc = K - k0 < KCHUNK ? K - k0 : KCHUNK;
        for (int i = 0; i < nb; i++)
            linear_chunk(xt + i * xs + (size_t)k0 * ROWS, kc, W + k0, K, N, yt + i * ys);
    }
}

static void leaky_relu(float *v, size_t count, float slope)
{
    for (size_t i = 0; i < count; i++)
        v[i] = v[i] > 0.0f ? v[i] : slope * v[i];
}

/*
 * e^x for |x| <= 104, the same bits on every CPU: x = n·ln2 + r with |r| <= ln2/2,
 * e^r by its Taylor series to r^12 (error below 1e-15), and 2^n exactly.
 */
static double exp_fixed(double x)
{
    double n = nearbyint(x * 1.4426950408889634);
    double r = x - n * 0.6931471805599453;
    double p = 1.0 / 479001600.0;
    static const double inv_fact[12] = {
        1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0,
        1.0 / 120.0,      1.0 / 24.0,      1.0 / 6.0,      1.0 / 2.0,     1.0,          1.0,
    };
    for (int i = 0; i < 12; i++)
        p = p * r + inv_fact[i];
    return ldexp(p, (int)n);
}

static float sigmoid_fixed(float x)
{
    double m = -(double)x;
    if (m > 104.0)
        return 0.0f;
    if (m < -104.0)
        return 1.0f;
    return (float)(1.0 / (1.0 + exp_fixed(m)));
}

/*
 * G over a group of nb ≤ GROUP blocks: `rows` latent vectors (≤ nb·ROWS),
 * images receives them. a and c hold GROUP blocks of the widest layer each.
 */
static void generate_group(const gan_config *cfg, const float *g, const gan_tensor_info ti[6],
                           const float *z, int rows, float *images, float *a, float *c,
                           size_t per_block)
{
    const float slope = gan_config_g_slope(cfg);
    int L = cfg->latent_dim, H = cfg->g_hidden, P = GAN_IMAGE_PIXELS;
    int nb = (rows + ROWS - 1) / ROWS;
    /* a = zᵀ per block, zero-padded: a padded row is computed and thrown away */
    memset(a, 0, (size_t)nb * per_block * sizeof(float));
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < L; k++)
            a[(size_t)(r / ROWS) * per_block + (size_t)k * ROWS + r % ROWS] = z[(size_t)r * L + k];
    linear_blocks(a, per_block, nb, L, g + ti[0].offset, g + ti[1].offset, H, c, per_block);
    for (int i = 0; i < nb; i++)
        leaky_relu(c + (size_t)i * per_block, (size_t)H * ROWS, slope);
    linear_blocks(c, per_block, nb, H, g + ti[2].offset, g + ti[3].offset, H, a, per_block);
    for (int i = 0; i < nb; i++)
        leaky_relu(a + (size_t)i * per_block, (size_t)H * ROWS, slope);
    linear_blocks(a, per_block, nb, H, g + ti[4].offset, g + ti[5].offset, P, c, per_block);
    for (int r = 0; r < rows; r++) {
        const float *out = c + (size_t)(r / ROWS) * per_block + r % ROWS;
        float *img = images + (size_t)r * P;
        for (int p = 0; p < P; p++) {
            float v = out[(size_t)p * ROWS];
            v = cfg->g_output == GAN_G_OUTPUT_SIGMOID ? sigmoid_fixed(v) : (v > 0.0f ? v : 0.0f);
            img[p] = v > 1.0f ? 1.0f : v; /* ReLU output is clamped for display */
        }
    }
}

int gan_generate(const gan_config *cfg, const float *g_params, const float *z, int n, float *images,
                 gan_error *err)
{
    if (n <= 0)
        return 0;
    gan_tensor_info ti[6];
    gan_generator_tensors(cfg, ti);
    int blocks = (n + ROWS - 1) / ROWS;
    /* groups of up to GROUP blocks, but at least one group per thread when n allows */
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    int group = (blocks + threads - 1) / threads;
    if (group > GROUP)
        group = GROUP;
    if (group < 1)
        group = 1;
    int groups = (blocks + group - 1) / group;
    if (threads > groups)
        threads = groups;
    /* two ping-pong buffers per group, each block's big enough for the widest layer */
    size_t width = (size_t)cfg->latent_dim;
    if ((size_t)cfg->g_hidden > width)
        width = (size_t)cfg->g_hidden;
    if ((size_t)GAN_IMAGE_PIXELS > width)
        width = GAN_IMAGE_PIXELS;
    size_t per_block = width * ROWS;
    size_t per_thread = 2 * (size_t)group * per_block;
    float *scratch = malloc((size_t)threads * per_thread * sizeof(float));
    if (!scratch)
        return gan_fail(err, "n", "out of memory generating %d images", n);
#pragma omp parallel for schedule(static) num_threads(threads) if (groups > 1)
    for (int gi = 0; gi < groups; gi++) {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        float *a = scratch + (size_t)t * per_thread, *c = a + (size_t)group * per_block;
        int first = gi * group * ROWS;
        int rows = n - first < group * ROWS ? n - first : group * ROWS;
        generate_group(cfg, g_params, ti, z + (size_t)first * cfg->latent_dim, rows,
                       images + (size_t)first * GAN_IMAGE_PIXELS, a, c, per_block);
    }
    free(scratch);
    return 0;
}
