/*
 * gan/model.c — the model's shapes (the PyTorch state_dict layout of G and D
 * in their flat buffers), its cost per sample, and G's noise on the host:
 * pure functions of a config, shared by the trainer, checkpoints and tools.
 */
#include <stdlib.h>

#include "gan/trainer.h"
#include "kernels/elementwise.h"

int gan_generator_tensors(const gan_config *c, gan_tensor_info o[6])
{
    int L = c->latent_dim, H = c->g_hidden, P = GAN_IMAGE_PIXELS;
    gan_tensor_info t[6] = {
        {"generator.linear_1.weight", H, L, 0}, {"generator.linear_1.bias", H, 0, 0},
        {"generator.linear_2.weight", H, H, 0}, {"generator.linear_2.bias", H, 0, 0},
        {"generator.linear_3.weight", P, H, 0}, {"generator.linear_3.bias", P, 0, 0},
    };
    size_t off = 0;
    for (int i = 0; i < 6; i++) {
        t[i].offset = off;
        off += (size_t)t[i].rows * (size_t)(t[i].cols ? t[i].cols : 1);
        o[i] = t[i];
    }
    return 6;
}

int gan_discriminator_tensors(const gan_config *c, gan_tensor_info o[6])
{
    int U = c->d_units, UK = c->d_units * c->d_pieces, P = GAN_IMAGE_PIXELS;
    gan_tensor_info t[6] = {
        {"discriminator.max_1.linear.weight", UK, P, 0},
        {"discriminator.max_1.linear.bias", UK, 0, 0},
        {"discriminator.max_2.linear.weight", UK, U, 0},
        {"discriminator.max_2.linear.bias", UK, 0, 0},
        {"discriminator.linear.weight", 1, U, 0},
        {"discriminator.linear.bias", 1, 0, 0},
    };
    size_t off = 0;
    for (int i = 0; i < 6; i++) {
        t[i].offset = off;
        off += (size_t)t[i].rows * (size_t)(t[i].cols ? t[i].cols : 1);
        o[i] = t[i];
    }
    return 6;
}

static size_t tensors_total(const gan_tensor_info t[6])
{
    return t[5].offset + (size_t)t[5].rows;
}

size_t gan_generator_param_count(const gan_config *cfg)
{
    gan_tensor_info t[6];
    gan_generator_tensors(cfg, t);
    return tensors_total(t);
}

size_t gan_discriminator_param_count(const gan_config *cfg)
{
    gan_tensor_info t[6];
    gan_discriminator_tensors(cfg, t);
    return tensors_total(t);
}

gan_flops gan_flops_per_sample(const gan_config *c)
{
    double L = c->latent_dim, H = c->g_hidden, P = GAN_IMAGE_PIXELS, U = c->d_units,
           UK = (double)c->d_units * c->d_pieces;
    double g_fwd = L * H + H * H + H * P;
    double d_fwd = P * UK + U * UK + U;
    /* backward of a layer: dW costs as much as the forward; dX too, except for
     * the first layer of each network, whose input gradient nobody needs. */
    double d_dw = d_fwd;
    double d_dx_inner = U * UK + U; /* layers 2 and 3 */
    double d_dx_input = P * UK;     /* layer 1, only the G step needs it */
    double g_dw = g_fwd;
    double g_dx_inner = H * H + H * P; /* layers 2 and 3 */
    gan_flops f;
    /* D step: G forward on z, D forward+backward on the real and the fake batch */
    f.d_step = g_fwd + 2.0 * (d_fwd + d_dw + d_dx_inner);
    /* G step: G forward, D forward, D backward to its input, G backward */
    f.g_step = g_fwd + d_fwd + d_dx_inner + d_dx_input + g_dw + g_dx_inner;
    f.d_step *= c->d_steps;
    f.total = f.d_step + f.g_step;
    return f;
}

/* ---- noise on the host ------------------------------------------------------ */

void gan_fill_noise(const gan_config *cfg, uint64_t seed, uint32_t purpose, int n, float *z)
{
    size_t total = (size_t)n * (size_t)cfg->latent_dim;
    for (size_t i = 0; i < total; i++)
        z[i] = cfg->noise == GAN_NOISE_UNIFORM
                   ? -1.7320508f + 3.4641016f * gk_philox_uniform(seed, purpose, 0, i)
                   : gk_philox_normal(seed, purpose, 0, i);
}
