/*
 * kernels/elementwise.h — per-element math shared by every backend.
 *
 * Written once as `static inline` functions that compile as C11 and as CUDA
 * device code (GK_HD expands to __host__ __device__ under nvcc), so the part
 * of the CUDA backend the CPU tests can check is as large as possible.
 *
 * Philox-4x32-10 (Salmon et al., SC'11): key = the run seed, counter =
 * (block index lo, block index hi, step, purpose). Element i of a fill uses
 * word i % 4 of block i / 4, so the numbers depend only on (seed, purpose,
 * step, i), never on how a backend splits the work. Box–Muller is evaluated
 * in double so CPU and GPU libm differences vanish after rounding to float.
 */
#ifndef GAND_KERNELS_ELEMENTWISE_H
#define GAND_KERNELS_ELEMENTWISE_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define GK_HD __host__ __device__ __forceinline__
#else
#define GK_HD static inline
#endif

typedef struct gk_philox4 {
    uint32_t v[4];
} gk_philox4;

GK_HD uint32_t gk_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

/* Philox-4x32 with R rounds on counter c and key k (the generic form, for tests). */
GK_HD gk_philox4 gk_philox4x32_rounds(gk_philox4 c, uint32_t k0, uint32_t k1, int rounds)
{
    for (int r = 0; r < rounds; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = gk_mulhilo32(0xD2511F53u, c.v[0], &hi0);
        uint32_t lo1 = gk_mulhilo32(0xCD9E8D57u, c.v[2], &hi1);
        gk_philox4 n;
        n.v[0] = hi1 ^ c.v[1] ^ k0;
        n.v[1] = lo1;
        n.v[2] = hi0 ^ c.v[3] ^ k1;
        n.v[3] = lo0;
        c = n;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return c;
}

/* The block of four words for (seed, purpose, step, block). */
GK_HD gk_philox4 gk_philox_block(uint64_t seed, uint32_t purpose, uint32_t step, uint64_t block)
{
    gk_philox4 c;
    c.v[0] = (uint32_t)block;
    c.v[1] = (uint32_t)(block >> 32);
    c.v[2] = step;
    c.v[3] = purpose;
    return gk_philox4x32_rounds(c, (uint32_t)seed, (uint32_t)(seed >> 32), 10);
}

/* 24 random bits to [0, 1). */
GK_HD float gk_u01(uint32_t x)
{
    return (float)(x >> 8) * (1.0f / 16777216.0f);
}

/* Uniform [0,1) number i of the stream. */
GK_HD float gk_philox_uniform(uint64_t seed, uint32_t purpose, uint32_t step, uint64_t i)
{
    gk_philox4 b = gk_philox_block(seed, purpose, step, i >> 2);
    return gk_u01(b.v[i & 3]);
}

/*
 * Box–Muller's radius and angle from two words: u1 in (0, 1] so the log is
 * finite, u2 in [0, 1); the pair is (r·cos θ, r·sin θ).
 */
GK_HD void gk_box_muller_polar(uint32_t w1, uint32_t w2, double *r, double *theta)
{
    double u1 = ((double)(w1 >> 8) + 1.0) * (1.0 / 16777216.0);
    double u2 = (double)(w2 >> 8) * (1.0 / 16777216.0);
    *r = sqrt(-2.0 * log(u1));
    *theta = 6.283185307179586476925286766559 * u2;
}

/*
 * Standard normal number i of the stream. Words (0,1) and (2,3) of a block
 * each make one Box–Muller pair: cos for the even word, sin for the odd.
 */
GK_HD float gk_philox_normal(uint64_t seed, uint32_t purpose, uint32_t step, uint64_t i)
{
    gk_philox4 b = gk_philox_block(seed, purpose, step, i >> 2);
    unsigned pair = (unsigned)(i & 2);
    double r, theta;
    gk_box_muller_polar(b.v[pair], b.v[pair + 1], &r, &theta);
    return (float)((i & 1) ? r * sin(theta) : r * cos(theta));
}

/*
 * The four standard normal numbers of block `block` (elements 4·block ..
 * 4·block + 3), bit for bit gk_philox_normal of each: one Philox block, one
 * log and square root per pair, sin and cos of the same angle.
 */
GK_HD void gk_philox_normal4(uint64_t seed, uint32_t purpose, uint32_t step, uint64_t block,
                             float out[4])
{
    gk_philox4 b = gk_philox_block(seed, purpose, step, block);
    for (unsigned pair = 0; pair < 4; pair += 2) {
        double r, theta;
        gk_box_muller_polar(b.v[pair], b.v[pair + 1], &r, &theta);
        out[pair] = (float)(r * cos(theta));
        out[pair + 1] = (float)(r * sin(theta));
    }
}

GK_HD float gk_sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* PyTorch BCELoss on one probability, log terms clamped at −100. */
GK_HD float gk_bce_forward(float prob, float target)
{
    float lp = logf(prob);
    float lq = logf(1.0f - prob);
    lp = lp < -100.0f ? -100.0f : lp;
    lq = lq < -100.0f ? -100.0f : lq;
    return -(target * lp + (1.0f - target) * lq);
}

/* d BCE / d prob, PyTorch's: (x − y) / max(x(1 − x), 1e-12). */
GK_HD float gk_bce_backward(float prob, float target)
{
    float d = prob * (1.0f - prob);
    return (prob - target) / (d > 1e-12f ? d : 1e-12f);
}

/* d BCE(sigmoid(logit)) / d logit, as autograd chains the two backward passes. */
GK_HD float gk_sigmoid_bce_grad(float prob, float target)
{
    return gk_bce_backward(prob, target) * (prob * (1.0f - prob));
}

/*
 * One Adam update of one parameter, torch.optim.Adam (no amsgrad):
 * bias_c1 = 1 − β1^t, bias_c2_sqrt = sqrt(1 − β2^t), computed once per step.
 * torch computes lr/c1 · m / (sqrt(v)/c2 + eps); this is the same value in exact
 * arithmetic with one division instead of two (the step factor lr·c2/c1 is the
 * same for every parameter): square roots and divisions share one unit on x86
 * cores, and were most of the optimiser's time. Rounding differs in the last bits.
 */
GK_HD void gk_adam_update(float *p, float g, float *m, float *v, float lr, float beta1, float beta2,
                          float eps, float weight_decay, float bias_c1, float bias_c2_sqrt)
{
    if (weight_decay != 0.0f)
        g += weight_decay * *p;
    float mt = beta1 * *m + (1.0f - beta1) * g;
    float vt = beta2 * *v + (1.0f - beta2) * g * g;
    *m = mt;
    *v = vt;
    float denom = sqrtf(vt) + eps * bias_c2_sqrt;
    *p -= (lr * bias_c2_sqrt / bias_c1) * mt / denom;
}

/*
 * The per-step scalars of the optimisers, from a step counter, in double and
 * rounded once to float: the same expressions on the host and on a GPU (whose
 * pow may differ from the host's in the last bit of a double, which rounding
 * to float almost always hides).
 */

/* Learning rate at step t: max(lr / decay^t, min); decay 1 keeps lr (gan_config_lr_at). */
GK_HD float gk_lr_at(double lr, double decay, double min, int64_t t)
{
    if (decay == 1.0)
        return (float)lr;
    double v = lr / pow(decay, (double)t);
    return (float)(v > min ? v : min);
}

/* SGD momentum in the 0-based epoch e (gan_config_momentum_at). */
GK_HD float gk_momentum_at(double start, double final, int64_t epochs, int64_t e)
{
    if (epochs <= 0 || e >= epochs)
        return (float)(epochs <= 0 ? start : final);
    return (float)(start + (final - start) * (double)e / (double)epochs);
}

/* Adam's bias corrections at step t: 1 − β1^t and sqrt(1 − β2^t). */
GK_HD void gk_adam_corrections(float beta1, float beta2, int64_t t, float *bias_c1,
                               float *bias_c2_sqrt)
{
    *bias_c1 = (float)(1.0 - pow((double)beta1, (double)t));
    *bias_c2_sqrt = (float)sqrt(1.0 - pow((double)beta2, (double)t));
}

/* Weight of one moving-average step at step t: 1 − min(decay, (1 + t)/(3 + t)). */
GK_HD float gk_ema_weight(double decay, int64_t t)
{
    double ramp = (1.0 + (double)t) / (3.0 + (double)t);
    return (float)(1.0 - (decay < ramp ? decay : ramp));
}

#endif
