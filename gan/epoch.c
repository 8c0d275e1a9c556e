/*
 * gan/epoch.c — the epoch-end policy (gan/epoch.h).
 */
#include "gan/epoch.h"

#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

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

/* The record's fields and how each prints (raw text, so a cJSON tree prints the same line). */
cJSON *gan_epoch_metrics_cjson(const gan_epoch_metrics *m)
{
    const struct {
        const char *name, *fmt;
        double v;
    } f[] = {{"epoch", "%.0f", m->epoch},
             {"d_real", "%.6g", m->d_real},
             {"d_fake", "%.6g", m->d_fake},
             {"d_loss", "%.6g", m->d_loss},
             {"g_loss", "%.6g", m->g_loss},
             {"d_x", "%.6g", m->d_x},
             {"d_g_z", "%.6g", m->d_g_z},
             {"seconds", "%.4f", m->seconds},
             {"samples_per_sec", "%.1f", m->samples_per_sec},
             {"lr_d", "%.6g", m->lr_d},
             {"lr_g", "%.6g", m->lr_g},
             {"batch_size", "%.0f", m->batch_size}};
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < sizeof f / sizeof f[0]; i++) {
        char num[64];
        snprintf(num, sizeof num, f[i].fmt, f[i].v);
        if (!cJSON_AddRawToObject(o, f[i].name, num)) {
            cJSON_Delete(o);
            o = NULL;
        }
    }
    return o;
}

void gan_epoch_metrics_json(const gan_epoch_metrics *m, char *buf, size_t len)
{
    cJSON *o = gan_epoch_metrics_cjson(m);
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    snprintf(buf, len, "%s", s ? s : "{}");
    cJSON_free(s);
    cJSON_Delete(o);
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
