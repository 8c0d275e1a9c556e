/*
 * gan/layers.c — linear layers and the epoch's permutation (gan/layers.h).
 */
#include "gan/layers.h"

#include "kernels/elementwise.h"

void gan_matmul_wt(gk_backend *be, float *y, const float *x, const float *W, int B, int in, int out)
{
    be->ops->sgemm(be, false, true, B, out, in, 1.0f, x, in, W, in, 0.0f, y, out);
}

void gan_linear_forward(gk_backend *be, float *y, const float *x, const float *W, const float *bias,
                        int B, int in, int out)
{
    gan_matmul_wt(be, y, x, W, B, in, out);
    be->ops->bias_add(be, y, bias, B, out);
}

void gan_linear_backward(gk_backend *be, float *dx, float *dW, float *db, const float *dy,
                         const float *x, const float *W, int B, int in, int out, bool accumulate)
{
    if (dW) {
        be->ops->sgemm(be, true, false, out, in, B, 1.0f, dy, out, x, in, accumulate ? 1.0f : 0.0f,
                       dW, in);
        if (db)
            be->ops->bias_grad(be, db, dy, B, out, accumulate);
    }
    if (dx)
        be->ops->sgemm(be, false, false, B, in, out, 1.0f, dy, out, W, in, 0.0f, dx, in);
}

void gan_permutation(int32_t *perm, int n, uint64_t seed, int epoch)
{
    for (int i = 0; i < n; i++)
        perm[i] = i;
    /* j uniform in 0..i from the top 32 bits of word i % 4 of block i / 4 times i + 1 */
    for (int i = n - 1; i > 0; i--) {
        gk_philox4 r = gk_philox_block(seed, GK_PURPOSE_SHUFFLE, (uint32_t)epoch, (uint64_t)i >> 2);
        uint32_t j = (uint32_t)(((uint64_t)r.v[i & 3] * (uint64_t)(i + 1)) >> 32);
        int32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}
