/*
 * gan/epoch.c — the epoch-end policy (gan/epoch.h).
 */
#include "gan/epoch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    p.watch = !p.evaluate && every(cfg->watch_every, epoch, false);
    return p;
}

/* Precision and recall compare sets of equal size best; FD needs no more than this. */
int gan_watch_samples(int test_images)
{
    return test_images < GAN_EVAL_AUTO_SAMPLES ? test_images : GAN_EVAL_AUTO_SAMPLES;
}

/* The record's fields in order, and how each prints: the one definition of the format. */
typedef struct metric_field {
    const char *name, *fmt;
    double v;
} metric_field;
enum { METRIC_FIELDS = 12 };

static void metric_fields(const gan_epoch_metrics *m, metric_field f[METRIC_FIELDS])
{
    const metric_field all[METRIC_FIELDS] = {
        {"epoch", "%.0f", m->epoch},
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
        {"batch_size", "%.0f", m->batch_size},
    };
    memcpy(f, all, sizeof all);
}

cJSON *gan_epoch_metrics_cjson(const gan_epoch_metrics *m)
{
    metric_field f[METRIC_FIELDS];
    metric_fields(m, f);
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < METRIC_FIELDS; i++) {
        char num[64];
        snprintf(num, sizeof num, f[i].fmt, f[i].v);
        if (!cJSON_AddRawToObject(o, f[i].name, num)) { /* raw: it prints exactly that text */
            cJSON_Delete(o);
            o = NULL;
        }
    }
    return o;
}

/* Formatted straight into buf, no allocation: the daemon writes and serves many of these. */
void gan_epoch_metrics_json(const gan_epoch_metrics *m, char *buf, size_t len)
{
    metric_field f[METRIC_FIELDS];
    metric_fields(m, f);
    size_t at = 0;
    for (size_t i = 0; i < METRIC_FIELDS && at < len; i++) {
        int n = snprintf(buf + at, len - at, "%s\"%s\":", i ? "," : "{", f[i].name);
        if (n < 0)
            break;
        at += (size_t)n;
        if (at < len && (n = snprintf(buf + at, len - at, f[i].fmt, f[i].v)) > 0)
            at += (size_t)n;
    }
    if (at < len)
        snprintf(buf + at, len - at, "}");
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

/* The names come from the same table that prints the record. */
int gan_epoch_metrics_from_cjson(const cJSON *o, gan_epoch_metrics *m)
{
    gan_epoch_metrics zero;
    memset(&zero, 0, sizeof zero);
    metric_field f[METRIC_FIELDS];
    metric_fields(&zero, f);
    double v[METRIC_FIELDS];
    if (!cJSON_IsObject(o))
        return -1;
    for (int i = 0; i < METRIC_FIELDS; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, f[i].name);
        if (!cJSON_IsNumber(it))
            return -1;
        v[i] = it->valuedouble;
    }
    memset(m, 0, sizeof *m);
    m->epoch = (int)v[0];
    m->d_real = v[1];
    m->d_fake = v[2];
    m->d_loss = v[3];
    m->g_loss = v[4];
    m->d_x = v[5];
    m->d_g_z = v[6];
    m->seconds = v[7];
    m->samples_per_sec = v[8];
    m->lr_d = v[9];
    m->lr_g = v[10];
    m->batch_size = (int)v[11];
    return 0;
}
