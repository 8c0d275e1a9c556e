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
    ROWS = 16, /* latent vectors per block: one AVX-512 register of floats */
    COLS = 4,  /* output units computed together, sharing each load of the inputs */
};

typedef float rowvec __attribute__((vector_size(ROWS * sizeof(float))));
/* the same vector at any float-aligned address: the block buffers are only malloc-aligned */
typedef float rowvec_unaligned
    __attribute__((vector_size(ROWS * sizeof(float)), aligned(sizeof(float)), may_alias));
#define ROWS_AT(p) (*(rowvec_unaligned *)(p))

/*
 * One linear layer over a block, in transposed form: xt is K × ROWS (input k of
 * every row of the block is contiguous), W is N × K row-major (PyTorch's
 * weight), yt is N × ROWS. Cloned for AVX-512 and AVX2 and picked at load
 * time: the clones differ in how many lanes one instruction covers, never in
 * what a lane computes.
 */
#if defined(__x86_64__)
#define GAND_LANE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GAND_LANE_CLONES
#endif
GAND_LANE_CLONES static void linear_block(const float *xt, int K, const float *W, const float *b,
                                          int N, float *yt)
{
    int n = 0;
    for (; n + COLS <= N; n += COLS) {
        const float *w0 = W + (size_t)n * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
        rowvec a0 = b[n] + (rowvec){0}, a1 = b[n + 1] + (rowvec){0};
        rowvec a2 = b[n + 2] + (rowvec){0}, a3 = b[n + 3] + (rowvec){0};
        for (int k = 0; k < K; k++) {
            rowvec x = ROWS_AT(xt + (size_t)k * ROWS);
            a0 = a0 + x * w0[k];
            a1 = a1 + x * w1[k];
            a2 = a2 + x * w2[k];
            a3 = a3 + x * w3[k];
        }
        ROWS_AT(yt + (size_t)n * ROWS) = a0;
        ROWS_AT(yt + (size_t)(n + 1) * ROWS) = a1;
        ROWS_AT(yt + (size_t)(n + 2) * ROWS) = a2;
        ROWS_AT(yt + (size_t)(n + 3) * ROWS) = a3;
    }
    for (; n < N; n++) {
        const float *w = W + (size_t)n * K;
        rowvec a = b[n] + (rowvec){0};
        for (int k = 0; k < K; k++)
            a = a + ROWS_AT(xt + (size_t)k * ROWS) * w[k];
        ROWS_AT(yt + (size_t)n * ROWS) = a;
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

/* G over one block of ROWS latent vectors; images receives `rows` (<= ROWS) of them. */
static void generate_block(const gan_config *cfg, const float *g, const gan_tensor_info ti[6],
                           const float *z, int rows, float *images, float *a, float *c)
{
    const float slope = gan_config_g_slope(cfg);
    int L = cfg->latent_dim, H = cfg->g_hidden, P = GAN_IMAGE_PIXELS;
    /* a = zᵀ, zero-padded: a padded row is computed and thrown away */
    memset(a, 0, (size_t)L * ROWS * sizeof(float));
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < L; k++)
            a[(size_t)k * ROWS + r] = z[(size_t)r * L + k];
    linear_block(a, L, g + ti[0].offset, g + ti[1].offset, H, c);
    leaky_relu(c, (size_t)H * ROWS, slope);
    linear_block(c, H, g + ti[2].offset, g + ti[3].offset, H, a);
    leaky_relu(a, (size_t)H * ROWS, slope);
    linear_block(a, H, g + ti[4].offset, g + ti[5].offset, P, c);
    for (int r = 0; r < rows; r++) {
        float *img = images + (size_t)r * P;
        for (int p = 0; p < P; p++) {
            float v = c[(size_t)p * ROWS + r];
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
    /* two ping-pong buffers per block, each big enough for the widest layer */
    size_t width = (size_t)cfg->latent_dim;
    if ((size_t)cfg->g_hidden > width)
        width = (size_t)cfg->g_hidden;
    if ((size_t)GAN_IMAGE_PIXELS > width)
        width = GAN_IMAGE_PIXELS;
    size_t per_block = width * ROWS;
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    if (threads > blocks)
        threads = blocks;
    float *scratch = malloc((size_t)threads * 2 * per_block * sizeof(float));
    if (!scratch)
        return gan_fail(err, "n", "out of memory generating %d images", n);
#pragma omp parallel for schedule(static) num_threads(threads) if (blocks > 1)
    for (int blk = 0; blk < blocks; blk++) {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        float *a = scratch + (size_t)t * 2 * per_block, *c = a + per_block;
        int first = blk * ROWS, rows = n - first < ROWS ? n - first : ROWS;
        generate_block(cfg, g_params, ti, z + (size_t)first * cfg->latent_dim, rows,
                       images + (size_t)first * GAN_IMAGE_PIXELS, a, c);
    }
    free(scratch);
    return 0;
}
