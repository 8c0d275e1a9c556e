/*
 * gan/epoch.c — the epoch-end policy (gan/epoch.h).
 */
#include "gan/epoch.h"

#include <stdio.h>
#include <stdlib.h>

#include "gan/png_grid.h"
#include "kernels/elementwise.h"

static bool every(int n, int epoch, bool last)
{
    return n > 0 && (epoch % n == 0 || last);
}

gan_epoch_plan gan_epoch_plan_for(const gan_config *cfg, int epoch)
{
    gan_epoch_plan p;
    p.last = epoch >= cfg->epochs;
    p.grid = every(cfg->sample_every, epoch, p.last);
    p.evaluate = every(cfg->evaluate_every, epoch, false);
    p.checkpoint = every(cfg->checkpoint_every, epoch, p.last);
    return p;
}

void gan_epoch_metrics_json(const gan_epoch_metrics *m, char *buf, size_t len)
{
    snprintf(buf, len,
             "{\"epoch\":%d,\"d_real\":%.6g,\"d_fake\":%.6g,\"d_loss\":%.6g,\"g_loss\":%.6g,"
             "\"d_x\":%.6g,\"d_g_z\":%.6g,\"seconds\":%.4f,\"samples_per_sec\":%.1f,"
             "\"lr_d\":%.6g,\"lr_g\":%.6g,\"batch_size\":%d}",
             m->epoch, m->d_real, m->d_fake, m->d_loss, m->g_loss, m->d_x, m->d_g_z, m->seconds,
             m->samples_per_sec, m->lr_d, m->lr_g, m->batch_size);
}

int gan_epoch_grid_write(const gan_config *cfg, const float *g_params, const char *path,
                         gan_error *err)
{
    float *z = malloc((size_t)GAN_GRID_SAMPLES * (size_t)cfg->latent_dim * sizeof(float));
    float *img = malloc((size_t)GAN_GRID_SAMPLES * GAN_IMAGE_PIXELS * sizeof(float));
    int rc = -1;
    if (!z || !img) {
        gan_fail(err, "samples", "out of memory rendering samples");
        goto out;
    }
    gan_fill_noise(cfg, cfg->seed, GK_PURPOSE_FIXED, GAN_GRID_SAMPLES, z);
    if (gan_generate(cfg, g_params, z, GAN_GRID_SAMPLES, img, err) == 0)
        rc = gan_png_grid_write(path, img, GAN_GRID_SAMPLES, GAN_IMAGE_ROWS, GAN_IMAGE_COLS,
                                GAN_GRID_SCALE, err);
out:
    free(z);
    free(img);
    return rc;
}
