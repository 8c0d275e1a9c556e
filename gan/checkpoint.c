/*
 * gan/checkpoint.c — gand's checkpoint format (gan/checkpoint.h).
 */
#include "gan/checkpoint.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/trainer.h"

#define CKPT_FORMAT "gand-checkpoint-1"

/* "generator.linear_1.weight" → "generator_ema.linear_1.weight" */
static void ema_name(char *out, size_t len, const char *name)
{
    const char *dot = strchr(name, '.');
    snprintf(out, len, "generator_ema%s", dot ? dot : "");
}

/* The optimiser's buffers: SGD keeps one per network (PyTorch's momentum_buffer), Adam two. */
static const char *opt_first(const gan_config *c, int net)
{
    if (c->optimizer == GAN_OPT_ADAM)
        return net == 0 ? "optimizer.generator.exp_avg" : "optimizer.discriminator.exp_avg";
    return net == 0 ? "optimizer.generator.momentum_buffer"
                    : "optimizer.discriminator.momentum_buffer";
}
static const char *const opt_second[2] = {"optimizer.generator.exp_avg_sq",
                                          "optimizer.discriminator.exp_avg_sq"};
static const char *const acc_name = "train.accumulators";

/* One flat buffer of the state with its tensor name and length. */
typedef struct flat {
    const char *name;
    float **data;
    size_t n;
} flat;

/* The state's flat (non-network) buffers in file order; returns how many. */
static int flat_buffers(gan_checkpoint_state *s, flat out[5])
{
    int n = 0;
    out[n++] = (flat){acc_name, &s->acc, s->acc_n};
    out[n++] = (flat){opt_first(&s->cfg, 0), &s->g_m, s->g_n};
    out[n++] = (flat){opt_first(&s->cfg, 1), &s->d_m, s->d_n};
    if (s->cfg.optimizer == GAN_OPT_ADAM) {
        out[n++] = (flat){opt_second[0], &s->g_v, s->g_n};
        out[n++] = (flat){opt_second[1], &s->d_v, s->d_n};
    }
    return n;
}

int gan_checkpoint_write(const char *path, const gan_checkpoint_state *s, gan_error *err)
{
    gan_tensor_info gt[6], dt[6];
    gan_generator_tensors(&s->cfg, gt);
    gan_discriminator_tensors(&s->cfg, dt);
    gan_st_tensor ts[23];
    int n = 0;
    for (int net = 0; net < 3; net++) {
        if (net == 2 && !s->g_ema)
            break;
        const gan_tensor_info *ti = net == 1 ? dt : gt;
        const float *base = net == 0 ? s->g : net == 1 ? s->d : s->g_ema;
        for (int i = 0; i < 6; i++) {
            gan_st_tensor *t = &ts[n++];
            memset(t, 0, sizeof *t);
            if (net == 2)
                ema_name(t->name, sizeof t->name, ti[i].name);
            else
                snprintf(t->name, sizeof t->name, "%s", ti[i].name);
            t->dtype = GAN_F32;
            t->ndim = ti[i].cols ? 2 : 1;
            t->shape[0] = ti[i].rows;
            t->shape[1] = ti[i].cols;
            t->data = base + ti[i].offset;
            t->nbytes = (size_t)ti[i].rows * (size_t)(ti[i].cols ? ti[i].cols : 1) * 4;
        }
    }
    flat fl[5];
    int nf = flat_buffers((gan_checkpoint_state *)s, fl);
    for (int i = 0; i < nf; i++) {
        gan_st_tensor *t = &ts[n++];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", fl[i].name);
        t->dtype = GAN_F32;
        t->ndim = 1;
        t->shape[0] = (int64_t)fl[i].n;
        t->data = *fl[i].data;
        t->nbytes = fl[i].n * sizeof(float);
    }
    char *cfg_json = gan_config_to_json(&s->cfg);
    const gan_checkpoint_position *p = &s->pos;
    char v[7][32];
    snprintf(v[0], sizeof v[0], "%d", p->epoch);
    snprintf(v[1], sizeof v[1], "%d", p->iteration);
    snprintf(v[2], sizeof v[2], "%d", p->epoch_batch_size);
    snprintf(v[3], sizeof v[3], "%lld", (long long)p->g_steps);
    snprintf(v[4], sizeof v[4], "%lld", (long long)p->d_steps);
    snprintf(v[5], sizeof v[5], "%lld", (long long)p->dropout_passes);
    snprintf(v[6], sizeof v[6], "%lld", (long long)p->d_steps_in_epoch);
    char secs[40];
    snprintf(secs, sizeof secs, "%.17g", p->epoch_seconds);
    gan_st_metadata meta[] = {
        {"format", CKPT_FORMAT},
        {"config", cfg_json ? cfg_json : "{}"},
        {"epoch", v[0]},
        {"iteration", v[1]},
        {"epoch_batch_size", v[2]},
        {"generator_steps", v[3]},
        {"discriminator_steps", v[4]},
        {"dropout_passes", v[5]},
        {"d_steps_in_epoch", v[6]},
        {"epoch_seconds", secs},
    };
    int rc = gan_st_write(path, ts, n, meta, (int)(sizeof meta / sizeof meta[0]), err);
    free(cfg_json);
    return rc;
}

int gan_checkpoint_fits(const gan_config *saved, const gan_config *run, const char *path,
                        gan_error *err)
{
    if (saved->latent_dim != run->latent_dim || saved->g_hidden != run->g_hidden ||
        saved->d_units != run->d_units || saved->d_pieces != run->d_pieces ||
        saved->g_output != run->g_output)
        return gan_fail(err, "checkpoint", "checkpoint %s holds a model of other sizes", path);
    if (saved->optimizer != run->optimizer)
        return gan_fail(err, "checkpoint",
                        "checkpoint %s holds the state of another optimizer (%s; this run: %s)",
                        path, saved->optimizer == GAN_OPT_ADAM ? "adam" : "sgd",
                        run->optimizer == GAN_OPT_ADAM ? "adam" : "sgd");
    if ((saved->g_ema > 0) != (run->g_ema > 0))
        return gan_fail(err, "checkpoint",
                        "checkpoint %s %s an average of G's weights (g_ema); this run %s", path,
                        saved->g_ema > 0 ? "keeps" : "lacks",
                        run->g_ema > 0 ? "needs one" : "keeps none");
    return 0;
}

/* The file's config, after checking its format. */
static int file_config(const gan_st_file *f, const char *path, gan_config *cfg, gan_error *err)
{
    const char *fmt = gan_st_meta(f, "format");
    const char *json = gan_st_meta(f, "config");
    if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0)
        return gan_fail(err, "checkpoint",
                        "%s is not a gand checkpoint (format '%s', expected '%s')", path,
                        fmt ? fmt : "(none)", CKPT_FORMAT);
    if (!json)
        return gan_fail(err, "checkpoint", "%s has no config in its metadata", path);
    return gan_config_from_json(cfg, json, 0, err);
}

static int meta_int(const gan_st_file *f, const char *path, const char *key, long long lo,
                    long long hi, long long *out, gan_error *err)
{
    const char *s = gan_st_meta(f, key);
    char *end = NULL;
    if (!s)
        return gan_fail(err, "checkpoint", "%s: the metadata lacks '%s'", path, key);
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return gan_fail(err, "checkpoint", "%s: metadata '%s' = '%s' is out of range", path, key,
                        s);
    *out = v;
    return 0;
}

static int file_position(const gan_st_file *f, const char *path, gan_checkpoint_position *p,
                         gan_error *err)
{
    long long e, it, b, gs, ds, dp, dse;
    if (meta_int(f, path, "epoch", 0, 100000000, &e, err) ||
        meta_int(f, path, "iteration", 0, 100000000, &it, err) ||
        meta_int(f, path, "epoch_batch_size", 1, 65536, &b, err) ||
        meta_int(f, path, "generator_steps", 0, INT64_MAX, &gs, err) ||
        meta_int(f, path, "discriminator_steps", 0, INT64_MAX, &ds, err) ||
        meta_int(f, path, "dropout_passes", 0, INT64_MAX, &dp, err) ||
        meta_int(f, path, "d_steps_in_epoch", 0, INT64_MAX, &dse, err))
        return -1;
    const char *secs = gan_st_meta(f, "epoch_seconds");
    *p = (gan_checkpoint_position){(int)e, (int)it, (int)b, gs,
                                   ds,     dp,      dse,    secs ? strtod(secs, NULL) : 0.0};
    return 0;
}

/* A float32 tensor of exactly n values, copied into a malloc'd buffer. */
static int read_tensor(const gan_st_file *f, const char *path, const char *name, size_t n,
                       float **out, gan_error *err)
{
    const gan_st_tensor *t = gan_st_find(f, name);
    if (!t)
        return gan_fail(err, "checkpoint", "%s lacks tensor '%s'", path, name);
    if (t->dtype != GAN_F32 || t->nbytes != n * sizeof(float))
        return gan_fail(
            err, "checkpoint",
            "%s: tensor '%s' has %zu bytes, expected %zu float32 values for this config", path,
            name, t->nbytes, n);
    if (!(*out = malloc(n * sizeof(float) + 1)))
        return gan_fail(err, "checkpoint", "out of memory reading %s", path);
    memcpy(*out, t->data, t->nbytes); /* file buffers may be unaligned: copy bytes */
    return 0;
}

/* One network (G, D or G's average) as a flat buffer. */
static int read_network(const gan_st_file *f, const char *path, const gan_tensor_info ti[6],
                        size_t total, bool ema, float **out, gan_error *err)
{
    if (!(*out = malloc(total * sizeof(float) + 1)))
        return gan_fail(err, "checkpoint", "out of memory reading %s", path);
    for (int i = 0; i < 6; i++) {
        char name[GAN_ST_NAME_MAX];
        if (ema)
            ema_name(name, sizeof name, ti[i].name);
        else
            snprintf(name, sizeof name, "%s", ti[i].name);
        float *t = NULL;
        size_t n = (size_t)ti[i].rows * (size_t)(ti[i].cols ? ti[i].cols : 1);
        if (read_tensor(f, path, name, n, &t, err) != 0)
            return -1;
        memcpy(*out + ti[i].offset, t, n * sizeof(float));
        free(t);
    }
    return 0;
}

void gan_checkpoint_state_free(gan_checkpoint_state *s)
{
    float **bufs[] = {&s->g, &s->g_m, &s->g_v, &s->d, &s->d_m, &s->d_v, &s->g_ema, &s->acc};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        free(*bufs[i]);
        *bufs[i] = NULL;
    }
}

int gan_checkpoint_read(const char *path, const gan_config *run, size_t acc_n,
                        gan_checkpoint_state *s, gan_error *err)
{
    memset(s, 0, sizeof *s);
    gan_st_file f;
    if (gan_st_read(path, &f, err) != 0)
        return -1;
    int rc = -1;
    if (file_config(&f, path, &s->cfg, err) != 0 || gan_checkpoint_fits(&s->cfg, run, path, err) ||
        file_position(&f, path, &s->pos, err) != 0)
        goto out;
    gan_tensor_info gt[6], dt[6];
    gan_generator_tensors(&s->cfg, gt);
    gan_discriminator_tensors(&s->cfg, dt);
    s->g_n = gan_generator_param_count(&s->cfg);
    s->d_n = gan_discriminator_param_count(&s->cfg);
    s->acc_n = acc_n;
    if (read_network(&f, path, gt, s->g_n, false, &s->g, err) != 0 ||
        read_network(&f, path, dt, s->d_n, false, &s->d, err) != 0 ||
        (s->cfg.g_ema > 0 && read_network(&f, path, gt, s->g_n, true, &s->g_ema, err) != 0))
        goto out;
    flat fl[5];
    int nf = flat_buffers(s, fl);
    for (int i = 0; i < nf; i++)
        if (read_tensor(&f, path, fl[i].name, fl[i].n, fl[i].data, err) != 0)
            goto out;
    rc = 0;
out:
    gan_st_free(&f);
    if (rc != 0)
        gan_checkpoint_state_free(s);
    return rc;
}

int gan_checkpoint_read_config(const char *path, gan_config *cfg, gan_error *err)
{
    gan_st_file f;
    if (gan_st_read(path, &f, err) != 0)
        return -1;
    int rc = file_config(&f, path, cfg, err);
    gan_st_free(&f);
    return rc;
}

int gan_checkpoint_inspect(const char *path, const gan_config *run, gan_checkpoint_position *pos,
                           float **g, gan_error *err)
{
    gan_st_file f;
    if (gan_st_read(path, &f, err) != 0)
        return -1;
    gan_config saved;
    float *params = NULL;
    int rc = -1;
    if (file_config(&f, path, &saved, err) != 0 || gan_checkpoint_fits(&saved, run, path, err) ||
        file_position(&f, path, pos, err) != 0)
        goto out;
    if (g && !(params = malloc(gan_generator_param_count(run) * sizeof(float)))) {
        gan_fail(err, "checkpoint", "out of memory reading %s", path);
        goto out;
    }
    if (gan_generator_from_file(&f, path, run, params, err) != 0) {
        free(params);
        goto out;
    }
    if (g)
        *g = params;
    rc = 0;
out:
    gan_st_free(&f);
    return rc;
}

int gan_generator_from_file(const gan_st_file *f, const char *path, const gan_config *cfg,
                            float *out, gan_error *err)
{
    gan_tensor_info ti[6];
    gan_generator_tensors(cfg, ti);
    char first[GAN_ST_NAME_MAX];
    ema_name(first, sizeof first, ti[0].name);
    bool ema = cfg->g_ema > 0 && gan_st_find(f, first) != NULL;
    int rc = 0;
    for (int i = 0; i < 6 && rc == 0; i++) {
        char name[GAN_ST_NAME_MAX];
        if (ema)
            ema_name(name, sizeof name, ti[i].name);
        else
            snprintf(name, sizeof name, "%s", ti[i].name);
        const gan_st_tensor *s = gan_st_find(f, name);
        size_t want = (size_t)ti[i].rows * (size_t)(ti[i].cols ? ti[i].cols : 1);
        if (!s)
            rc = gan_fail(err, "checkpoint", "%s lacks tensor '%s'", path, name);
        else if (s->dtype != GAN_F32 || s->nbytes != want * sizeof(float))
            rc = gan_fail(err, "checkpoint", "%s: tensor '%s' has %zu bytes, expected %zu", path,
                          name, s->nbytes, want * sizeof(float));
        else if (out)
            memcpy(out + ti[i].offset, s->data, s->nbytes);
    }
    return rc;
}

int gan_checkpoint_read_generator(const char *path, const gan_config *cfg, float **g, int *epoch,
                                  gan_error *err)
{
    gan_st_file f;
    if (gan_st_read(path, &f, err) != 0)
        return -1;
    float *out = malloc(gan_generator_param_count(cfg) * sizeof(float));
    int rc = out ? gan_generator_from_file(&f, path, cfg, out, err)
                 : gan_fail(err, "checkpoint", "out of memory reading %s", path);
    const char *e = gan_st_meta(&f, "epoch");
    *epoch = e ? atoi(e) : 0;
    gan_st_free(&f);
    if (rc != 0) {
        free(out);
        return -1;
    }
    *g = out;
    return 0;
}
