/*
 * daemon/render.c — rendering a run's generator: sample grids, exported images, generate and
 * interpolate.
 */
#include "daemon/registry_internal.h"

/* A request's image scale out of 1..GAN_PNG_MAX_SCALE: true, with err set. */
static bool bad_scale(int scale, gan_error *err)
{
    if (scale >= 1 && scale <= GAN_PNG_MAX_SCALE)
        return false;
    gan_fail(err, "scale", "scale must be an integer in 1..%d, got %d", GAN_PNG_MAX_SCALE, scale);
    return true;
}

reg_status registry_sample_png(gand_registry *reg, const char *id, int n, uint64_t seed, int scale,
                               uint8_t **png, size_t *len, gan_error *err)
{
    *png = NULL;
    *len = 0;
    if (n < 1 || n > reg->max_sample_n)
        return gan_fail(err, "n", "n must be an integer in 1..%d, got %d", reg->max_sample_n, n),
               REG_INVALID;
    if (bad_scale(scale, err))
        return REG_INVALID;
    run *r;
    g_snapshot *s;
    reg_status st = generator_acquire(reg, id, &r, &s, err);
    if (st != REG_OK)
        return st;
    float *z = malloc((size_t)n * (size_t)s->cfg.latent_dim * sizeof(float));
    float *img = malloc((size_t)n * GAN_IMAGE_PIXELS * sizeof(float));
    if (!z || !img) {
        gan_fail(err, "n", "out of memory rendering %d samples", n);
        st = REG_INTERNAL;
    } else {
        gan_fill_noise(&s->cfg, seed, GK_PURPOSE_REQUEST, n, z);
        if (gan_generate(&s->cfg, s->params, z, n, img, err) != 0 ||
            gan_png_grid_encode(img, n, GAN_IMAGE_ROWS, GAN_IMAGE_COLS, scale, png, len, err) != 0)
            st = REG_INTERNAL;
    }
    free(z);
    free(img);
    generator_release(reg, r, s);
    return st;
}

reg_status registry_epoch_png_path(gand_registry *reg, const char *id, int epoch, char *path,
                                   size_t len)
{
    reg_lock(reg);
    run *r = run_find_locked(reg, id);
    bool found = false;
    for (int i = 0; r && i < r->nsamples && !found; i++)
        found = r->samples[i] == epoch;
    char p[PATH_MAX];
    if (found)
        sample_path(r, epoch, p, sizeof p);
    reg_unlock(reg);
    if (!found || access(p, R_OK) != 0)
        return REG_NOT_FOUND;
    if ((size_t)str_printf(path, len, "%s", p) >= len)
        return REG_INTERNAL;
    return REG_OK;
}

reg_status registry_checkpoint_path(gand_registry *reg, const char *id, bool best, char *path,
                                    size_t len)
{
    reg_lock(reg);
    run *r = run_find_locked(reg, id);
    char p[PATH_MAX];
    bool have = r && (best ? r->best_epoch >= 0 : r->checkpoint_epoch >= 0);
    if (have)
        run_path(r, best ? "checkpoint-best.safetensors" : "checkpoint.safetensors", p, sizeof p);
    reg_unlock(reg);
    if (!have || access(p, R_OK) != 0)
        return REG_NOT_FOUND;
    if ((size_t)str_printf(path, len, "%s", p) >= len)
        return REG_INTERNAL;
    return REG_OK;
}

static uint8_t pixel_u8(float v)
{
    if (!(v > 0.0f)) /* also NaN */
        return 0;
    if (v >= 1.0f)
        return 255;
    return (uint8_t)(v * 255.0f + 0.5f);
}

reg_status registry_export_samples(gand_registry *reg, const char *id, int n, uint64_t seed,
                                   uint8_t **gz, size_t *len, gan_error *err)
{
    *gz = NULL;
    *len = 0;
    if (n < 1 || n > REG_EVAL_SAMPLES_MAX)
        return gan_fail(err, "n", "n must be an integer in 1..%d, got %d", REG_EVAL_SAMPLES_MAX, n),
               REG_INVALID;
    run *r;
    g_snapshot *s;
    reg_status st = generator_acquire(reg, id, &r, &s, err);
    if (st != REG_OK)
        return st;
    float *img = NULL;
    uint8_t *px = NULL;
    img = malloc((size_t)n * GAN_IMAGE_PIXELS * sizeof(float));
    px = malloc((size_t)n * GAN_IMAGE_PIXELS);
    if (!img || !px) {
        gan_fail(err, "n", "out of memory generating %d images", n);
        st = REG_INTERNAL;
        goto out;
    }
    /* the evaluation's noise: these are the images an evaluation with this seed scores */
    if (gan_generate_many(&s->cfg, s->params, n, seed, GK_PURPOSE_EVAL, img, err) != 0) {
        st = REG_INTERNAL;
        goto out;
    }
    for (size_t i = 0; i < (size_t)n * GAN_IMAGE_PIXELS; i++)
        px[i] = pixel_u8(img[i]);
    if (gan_idx_encode_images_gz(px, n, GAN_IMAGE_ROWS, GAN_IMAGE_COLS, gz, len, err) != 0)
        st = REG_INTERNAL;
out:
    free(img);
    free(px);
    generator_release(reg, r, s);
    return st;
}

reg_status registry_latent_dim(gand_registry *reg, const char *id, int *dim)
{
    reg_lock(reg);
    run *r = run_find_locked(reg, id);
    if (r)
        *dim = r->cfg.latent_dim;
    reg_unlock(reg);
    return r ? REG_OK : REG_NOT_FOUND;
}

/* images (n × 784) as {"epoch":E,"images":[[...],...]}, pixels in [0, 1]. */
static char *images_json(const float *img, int n, int epoch)
{
    sb b = {0};
    sb_printf(&b, "{\"epoch\":%d,\"images\":[", epoch);
    for (int k = 0; k < n; k++) {
        sb_puts(&b, k ? ",[" : "[");
        const float *p = img + (size_t)k * GAN_IMAGE_PIXELS;
        for (int i = 0; i < GAN_IMAGE_PIXELS; i++) {
            float v = p[i] > 0.0f ? (p[i] < 1.0f ? p[i] : 1.0f) : 0.0f; /* NaN → 0 */
            if (v == 0.0f || v == 1.0f)
                sb_puts(&b, v == 0.0f ? (i ? ",0" : "0") : (i ? ",1" : "1"));
            else
                sb_printf(&b, i ? ",%.5g" : "%.5g", (double)v);
        }
        sb_puts(&b, "]");
    }
    sb_puts(&b, "]}");
    return sb_take(&b);
}

reg_status registry_generate(gand_registry *reg, const char *id, const float *z, int n, int dim,
                             int scale, bool as_json, uint8_t **out, size_t *len, gan_error *err)
{
    *out = NULL;
    *len = 0;
    if (n < 1 || n > REG_GENERATE_MAX)
        return gan_fail(err, "z", "z must hold 1..%d latent vectors, got %d", REG_GENERATE_MAX, n),
               REG_INVALID;
    if (bad_scale(scale, err))
        return REG_INVALID;
    run *r;
    g_snapshot *s;
    reg_status st = generator_acquire(reg, id, &r, &s, err);
    if (st != REG_OK)
        return st;
    float *img = NULL;
    if (dim != s->cfg.latent_dim) {
        gan_fail(err, "z", "each latent vector must have %d numbers (the run's latent_dim), got %d",
                 s->cfg.latent_dim, dim);
        st = REG_INVALID;
        goto out;
    }
    img = malloc((size_t)n * GAN_IMAGE_PIXELS * sizeof(float));
    if (!img) {
        gan_fail(err, "z", "out of memory generating %d images", n);
        st = REG_INTERNAL;
        goto out;
    }
    if (gan_generate(&s->cfg, s->params, z, n, img, err) != 0) {
        st = REG_INTERNAL;
        goto out;
    }
    if (as_json) {
        char *text = images_json(img, n, s->epoch);
        if (!text) {
            gan_fail(err, "", "out of memory");
            st = REG_INTERNAL;
            goto out;
        }
        *out = (uint8_t *)text;
        *len = strlen(text);
    } else if (gan_png_grid_encode(img, n, GAN_IMAGE_ROWS, GAN_IMAGE_COLS, scale, out, len, err) !=
               0) {
        st = REG_INTERNAL;
    }
out:
    free(img);
    generator_release(reg, r, s);
    return st;
}

reg_status registry_interpolate(gand_registry *reg, const char *id, uint64_t from, uint64_t to,
                                int steps, int scale, uint8_t **png, size_t *len, gan_error *err)
{
    *png = NULL;
    *len = 0;
    if (steps < 2 || steps > REG_INTERPOLATE_MAX)
        return gan_fail(err, "steps", "steps must be an integer in 2..%d, got %d",
                        REG_INTERPOLATE_MAX, steps),
               REG_INVALID;
    if (bad_scale(scale, err))
        return REG_INVALID;
    run *r;
    g_snapshot *s;
    reg_status st = generator_acquire(reg, id, &r, &s, err);
    if (st != REG_OK)
        return st;
    float *ends = NULL, *z = NULL, *img = NULL;
    size_t L = (size_t)s->cfg.latent_dim;
    ends = malloc(2 * L * sizeof(float));
    z = malloc((size_t)steps * L * sizeof(float));
    img = malloc((size_t)steps * GAN_IMAGE_PIXELS * sizeof(float));
    if (!ends || !z || !img) {
        gan_fail(err, "steps", "out of memory");
        st = REG_INTERNAL;
        goto out;
    }
    gan_fill_noise(&s->cfg, from, GK_PURPOSE_REQUEST, 1, ends);
    gan_fill_noise(&s->cfg, to, GK_PURPOSE_REQUEST, 1, ends + L);
    for (int i = 0; i < steps; i++) {
        double t = (double)i / (double)(steps - 1);
        for (size_t j = 0; j < L; j++)
            z[(size_t)i * L + j] = (float)((1.0 - t) * ends[j] + t * ends[L + j]);
    }
    if (gan_generate(&s->cfg, s->params, z, steps, img, err) != 0 ||
        gan_png_grid_encode_cols(img, steps, GAN_IMAGE_ROWS, GAN_IMAGE_COLS, steps, scale, png, len,
                                 err) != 0)
        st = REG_INTERNAL;
out:
    free(ends);
    free(z);
    free(img);
    generator_release(reg, r, s);
    return st;
}
