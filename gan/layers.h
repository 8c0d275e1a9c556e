/*
 * gan/layers.h — the building blocks of the networks gand trains on a
 * backend (gan/trainer.c's GAN, gan/classifier.c's digit classifier): the
 * linear layer forward and backward, and the epoch's permutation.
 *
 * Weights are stored as PyTorch's nn.Linear stores them: W is out × in, and
 * y = x·Wᵀ + b for a batch x of B rows. Everything is issued on the backend
 * as ops; nothing here synchronises or allocates.
 */
#ifndef GAND_GAN_LAYERS_H
#define GAND_GAN_LAYERS_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/backend.h"

/* y[B][out] = x[B][in] · Wᵀ (the bias is added by the caller, fused or not) */
void gan_matmul_wt(gk_backend *be, float *y, const float *x, const float *W, int B, int in,
                   int out);

/* y[B][out] = x[B][in] · Wᵀ + b */
void gan_linear_forward(gk_backend *be, float *y, const float *x, const float *W, const float *bias,
                        int B, int in, int out);

/*
 * The backward pass of a linear layer from dy (B × out): dW (+)= dyᵀ · x and
 * db (+)= Σ_rows dy when dW is non-NULL (accumulate selects +=; db NULL: the
 * caller forms the bias gradient itself, e.g. fused into maxout_backward), and
 * dx = dy · W when dx is non-NULL.
 */
void gan_linear_backward(gk_backend *be, float *dx, float *dW, float *db, const float *dy,
                         const float *x, const float *W, int B, int in, int out, bool accumulate);

/*
 * perm = a permutation of 0..n−1, Fisher–Yates driven by Philox (seed,
 * GK_PURPOSE_SHUFFLE, step = epoch): a pure function of the three, so a run
 * resumed mid-epoch sees the same order.
 */
void gan_permutation(int32_t *perm, int n, uint64_t seed, int epoch);

#endif
