/*
 * tests/unit/test_trainer.c — the GAN as a whole on the CPU backend:
 * finite-difference checks of the full D and G losses, bit-identical resume
 * from a checkpoint, checkpoints themselves, the step counters, and a short
 * run in which D learns (graph replay: test_graph_replay.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "gan/checkpoint.h"
#include "gan/config.h"
#include "gan/epoch.h"
#include "gan/idx.h"
#include "gan/safetensors.h"
#include "gan/trainer.h"
#include "trainer_fixture.h"
#include "kernels/backend.h"
#include "kernels/elementwise.h"

/* ---- gradients of the whole losses -------------------------------------- */

typedef int (*eval_fn)(gan_trainer *, double *, float *, gan_error *);

/*
 * Perturb each parameter by ±h (in the flat buffer of G or D), recompute the
 * loss, and compare with the analytic gradient. The loss is evaluated on
 * the same batch, noise and dropout mask each time. Points at a kink (the
 * one-sided differences disagree) are skipped.
 */
static void check_loss_gradient(gan_config cfg, bool generator)
{
    gan_error err;
    gan_dataset ds = prefix(64);
    gan_trainer *t = gan_trainer_new(be, &cfg, &ds, &err);
    assert_non_null(t);
    /* move away from the initial point so ReLUs and maxouts are in general position */
    for (int i = 0; i < 3; i++)
        assert_int_equal(gan_trainer_step(t, &err), 0);

    size_t gn = gan_generator_param_count(&cfg), dn = gan_discriminator_param_count(&cfg);
    size_t n = generator ? gn : dn;
    float *g = malloc(gn * 4), *d = malloc(dn * 4), *grad = malloc(n * 4);
    assert_int_equal(gan_trainer_download_generator(t, g, &err), 0);
    assert_int_equal(gan_trainer_download_discriminator(t, d, &err), 0);
    eval_fn eval = generator ? gan_trainer_eval_g_loss : gan_trainer_eval_d_loss;
    double l0;
    assert_int_equal(eval(t, &l0, grad, &err), 0);
    float *p = generator ? g : d;
    const float h = 2e-3f;
    int checked = 0, skipped = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i += 3) {
        float keep = p[i];
        double lp, lm;
        p[i] = keep + h;
        gan_trainer_set_params(t, generator ? g : NULL, generator ? NULL : d, &err);
        eval(t, &lp, NULL, &err);
        p[i] = keep - h;
        gan_trainer_set_params(t, generator ? g : NULL, generator ? NULL : d, &err);
        eval(t, &lm, NULL, &err);
        p[i] = keep;
        double right = (lp - l0) / h, left = (l0 - lm) / h;
        if (fabs(right - left) > 0.05 * (fabs(right) + fabs(left)) + 2e-4) {
            skipped++;
            continue;
        }
        double fd = (lp - lm) / (2 * h);
        double e = fabs(fd - grad[i]) / (fabs(fd) + fabs(grad[i]) + 1e-2);
        if (e > worst)
            worst = e;
        if (e > 0.05) {
            print_error("%s param %zu: backward %.6g, finite difference %.6g\n",
                        generator ? "G" : "D", i, grad[i], fd);
            fail();
        }
        checked++;
    }
    gan_trainer_set_params(t, g, d, &err);
    assert_true(checked > 3 * skipped);
    assert_true(worst < 0.05);
    free(g);
    free(d);
    free(grad);
    gan_trainer_free(t);
}

static void test_d_loss_gradient(void **state)
{
    (void)state;
    check_loss_gradient(tiny_config(), false);
    gan_config c = tiny_config();
    c.d_dropout = 0.0;
    check_loss_gradient(c, false);
}

/* preset paper's D: dropout on the input and after both maxouts, label smoothing */
static void test_d_loss_gradient_all_dropouts(void **state)
{
    (void)state;
    gan_config c = tiny_config();
    c.d_input_dropout = 0.2;
    c.d_dropout = 0.5;
    c.d_final_dropout = 0.5;
    c.label_smoothing = 0.1;
    c.noise = GAN_NOISE_UNIFORM;
    check_loss_gradient(c, false);
    check_loss_gradient(c, true);
}

static void test_g_loss_gradient(void **state)
{
    (void)state;
    gan_config c = tiny_config();
    check_loss_gradient(c, true);
    c.g_loss = GAN_G_LOSS_MINIMAX;
    check_loss_gradient(c, true);
    c.g_output = GAN_G_OUTPUT_SIGMOID;
    check_loss_gradient(c, true);
    c.g_activation = GAN_G_ACT_LEAKY_RELU;
    check_loss_gradient(c, true);
}

/* ---- resume identity ---------------------------------------------------- */

static void test_resume_identity(void **state)
{
    (void)state;
    gan_config c = tiny_config();
    c.latent_dim = 16;
    c.g_hidden = 32;
    c.d_units = 16;
    c.batch_size = 16;
    gan_dataset ds = prefix(200); /* 12 iterations an epoch */
    gan_error err;
    size_t gn = gan_generator_param_count(&c), dn = gan_discriminator_param_count(&c);
    const int N = 4;

    gan_trainer *straight = gan_trainer_new(be, &c, &ds, &err);
    assert_non_null(straight);
    run_until(straight, N, 0);
    float *g1 = malloc(gn * 4), *d1 = malloc(dn * 4), *g2 = malloc(gn * 4), *d2 = malloc(dn * 4);
    gan_trainer_download_generator(straight, g1, &err);
    gan_trainer_download_discriminator(straight, d1, &err);

    /* at an epoch boundary and in the middle of an epoch */
    const int stops[][2] = {{N / 2, 0}, {1, 5}};
    for (int s = 0; s < 2; s++) {
        char path[CKPT_PATH_MAX];
        temp_checkpoint_path(path);
        gan_trainer *a = gan_trainer_new(be, &c, &ds, &err);
        run_until(a, stops[s][0], stops[s][1]);
        assert_int_equal(gan_trainer_save(a, path, &err), 0);
        gan_trainer_free(a);

        gan_config saved;
        assert_int_equal(gan_checkpoint_read_config(path, &saved, &err), 0);
        assert_int_equal(saved.g_hidden, c.g_hidden);
        gan_trainer *b = gan_trainer_new(be, &saved, &ds, &err);
        assert_non_null(b);
        assert_int_equal(gan_trainer_load(b, path, &err), 0);
        assert_int_equal(gan_trainer_epoch(b), stops[s][0]);
        assert_int_equal(gan_trainer_iteration(b), stops[s][1]);
        run_until(b, N, 0);
        gan_trainer_download_generator(b, g2, &err);
        gan_trainer_download_discriminator(b, d2, &err);
        assert_memory_equal(g1, g2, gn * 4);
        assert_memory_equal(d1, d2, dn * 4);
        gan_trainer_free(b);
        unlink(path);
    }
    free(g1);
    free(d1);
    free(g2);
    free(d2);
    gan_trainer_free(straight);
}

/* SGD with momentum, decaying lr, uniform noise, three dropouts: resume is still exact */
static void test_paper_preset_resumes(void **state)
{
    (void)state;
    gan_config c;
    gan_error err;
    assert_int_equal(gan_config_preset(&c, "paper", &err), 0);
    c.latent_dim = 8;
    c.g_hidden = 16;
    c.d_units = 8;
    c.d_pieces = 3;
    c.batch_size = 20;
    c.momentum_epochs = 3;
    gan_dataset ds = prefix(100);
    size_t gn = gan_generator_param_count(&c);
    float *g1 = malloc(gn * 4), *g2 = malloc(gn * 4);
    gan_trainer *a = gan_trainer_new(be, &c, &ds, &err);
    assert_non_null(a);
    run_until(a, 4, 0);
    gan_trainer_download_generator(a, g1, &err);
    gan_trainer_free(a);

    char path[CKPT_PATH_MAX];
    temp_checkpoint_path(path);
    a = gan_trainer_new(be, &c, &ds, &err);
    run_until(a, 2, 3);
    assert_int_equal(gan_trainer_save(a, path, &err), 0);
    gan_trainer_free(a);
    gan_trainer *b = gan_trainer_new(be, &c, &ds, &err);
    assert_int_equal(gan_trainer_load(b, path, &err), 0);
    run_until(b, 4, 0);
    gan_trainer_download_generator(b, g2, &err);
    assert_memory_equal(g1, g2, gn * 4);
    gan_trainer_free(b);
    unlink(path);
    free(g1);
    free(g2);
}

/*
 * g_ema: the sampler is the average of G's weights, not G's weights; it
 * survives a checkpoint exactly; a checkpoint's reader hands out the average.
 */
static void test_generator_average(void **state)
{
    (void)state;
    gan_config c = tiny_config();
    c.batch_size = 20;
    c.g_ema = 0.9;
    gan_dataset ds = prefix(100); /* 5 iterations an epoch */
    gan_error err;
    size_t gn = gan_generator_param_count(&c);
    float *g = malloc(gn * 4), *avg = malloc(gn * 4), *want = malloc(gn * 4),
          *avg2 = malloc(gn * 4);

    /* by hand: the average after k G steps, from the raw weights of each step */
    gan_trainer *a = gan_trainer_new(be, &c, &ds, &err);
    assert_non_null(a);
    gan_trainer_download_generator(a, want, &err);
    for (int k = 1; k <= 7; k++) {
        run_until(a, k / 5, k % 5);
        gan_trainer_download_generator(a, g, &err);
        double ramp = (1.0 + k) / (3.0 + k), decay = ramp < 0.9 ? ramp : 0.9;
        for (size_t i = 0; i < gn; i++)
            want[i] += (float)(1.0 - decay) * (g[i] - want[i]);
    }
    gan_trainer_download_sampler(a, avg, &err);
    double diff = 0, off = 0;
    for (size_t i = 0; i < gn; i++) {
        diff = fmax(diff, fabs((double)avg[i] - want[i]));
        off = fmax(off, fabs((double)avg[i] - g[i]));
    }
    assert_true(diff < 1e-6); /* the same float steps, up to contraction */
    assert_true(off > 1e-4);  /* and not the raw weights */

    /* checkpoint at epoch 1, iteration 2 (= 7 steps); resume and compare */
    char path[CKPT_PATH_MAX];
    temp_checkpoint_path(path);
    assert_int_equal(gan_trainer_save(a, path, &err), 0);
    float *read = NULL;
    int epoch = -1;
    assert_int_equal(gan_checkpoint_read_generator(path, &c, &read, &epoch, &err), 0);
    assert_memory_equal(read, avg, gn * 4);
    free(read);
    gan_config plain = c;
    plain.g_ema = 0;
    assert_int_equal(gan_checkpoint_read_generator(path, &plain, &read, &epoch, &err), 0);
    assert_memory_equal(read, g, gn * 4);
    free(read);

    run_until(a, 3, 0);
    gan_trainer_download_sampler(a, avg, &err);
    gan_trainer *b = gan_trainer_new(be, &c, &ds, &err);
    assert_int_equal(gan_trainer_load(b, path, &err), 0);
    run_until(b, 3, 0);
    gan_trainer_download_sampler(b, avg2, &err);
    assert_memory_equal(avg, avg2, gn * 4);

    /* a checkpoint without the average does not load into a run that keeps one */
    gan_trainer *p = gan_trainer_new(be, &plain, &ds, &err);
    assert_int_equal(gan_trainer_save(p, path, &err), 0);
    assert_int_equal(gan_trainer_load(b, path, &err), -1);
    assert_non_null(strstr(err.message, "g_ema"));

    gan_trainer_free(p);
    gan_trainer_free(a);
    gan_trainer_free(b);
    unlink(path);
    free(g);
    free(avg);
    free(avg2);
    free(want);
}

static void test_checkpoint_of_other_model_rejected(void **state)
{
    (void)state;
    gan_config c = tiny_config();
    gan_dataset ds = prefix(64);
    gan_error err;
    char path[CKPT_PATH_MAX];
    temp_checkpoint_path(path);
    gan_trainer *a = gan_trainer_new(be, &c, &ds, &err);
    assert_int_equal(gan_trainer_save(a, path, &err), 0);
    gan_trainer_free(a);
    c.g_hidden = 11;
    gan_trainer *b = gan_trainer_new(be, &c, &ds, &err);
    assert_int_equal(gan_trainer_load(b, path, &err), -1);
    assert_non_null(strstr(err.message, "other sizes"));
    gan_trainer_free(b);
    unlink(path);
}

/*
 * gan/checkpoint.c on its own: a trainer's file reads back as the state it
 * saved (position, buffers), inspect agrees, and each way a checkpoint can
 * fail to fit a run is named.
 */
static void test_checkpoint_module(void **state)
{
    (void)state;
    gan_config c = tiny_config();
    gan_dataset ds = prefix(100);
    gan_error err;
    char path[CKPT_PATH_MAX];
    temp_checkpoint_path(path);
    gan_trainer *a = gan_trainer_new(be, &c, &ds, &err);
    run_until(a, 1, 2);
    assert_int_equal(gan_trainer_save(a, path, &err), 0);
    size_t gn = gan_generator_param_count(&c), dn = gan_discriminator_param_count(&c);
    float *g = malloc(gn * 4), *d = malloc(dn * 4);
    gan_trainer_download_generator(a, g, &err);
    gan_trainer_download_discriminator(a, d, &err);

    gan_checkpoint_state st;
    assert_int_equal(gan_checkpoint_read(path, &c, 8, &st, &err), 0);
    assert_int_equal(st.pos.epoch, 1);
    assert_int_equal(st.pos.iteration, 2);
    assert_int_equal(st.pos.epoch_batch_size, c.batch_size);
    assert_true(st.pos.g_steps == gan_trainer_g_steps(a));
    assert_int_equal(st.g_n, gn);
    assert_memory_equal(st.g, g, gn * 4);
    assert_memory_equal(st.d, d, dn * 4);
    assert_non_null(st.g_v); /* Adam: two buffers per network */
    assert_null(st.g_ema);
    /* written again from the state read, the file reads back the same */
    char path2[CKPT_PATH_MAX];
    temp_checkpoint_path(path2);
    assert_int_equal(gan_checkpoint_write(path2, &st, &err), 0);
    gan_checkpoint_state st2;
    assert_int_equal(gan_checkpoint_read(path2, &c, 8, &st2, &err), 0);
    assert_memory_equal(st2.d_v, st.d_v, dn * 4);
    assert_memory_equal(st2.acc, st.acc, 8 * 4);
    assert_true(st2.pos.epoch_seconds == st.pos.epoch_seconds);
    gan_checkpoint_state_free(&st2);
    gan_checkpoint_state_free(&st);
    unlink(path2);

    gan_checkpoint_position pos;
    float *sampler = NULL;
    assert_int_equal(gan_checkpoint_inspect(path, &c, &pos, &sampler, &err), 0);
    assert_int_equal(pos.epoch, 1);
    assert_int_equal(pos.iteration, 2);
    assert_memory_equal(sampler, g, gn * 4);
    free(sampler);

    /* what does not fit: sizes, output, optimiser, the average of G's weights */
    gan_config other[4] = {c, c, c, c};
    other[0].d_pieces = c.d_pieces + 1;
    other[1].g_output = c.g_output == GAN_G_OUTPUT_RELU ? GAN_G_OUTPUT_SIGMOID : GAN_G_OUTPUT_RELU;
    other[2].optimizer = GAN_OPT_SGD;
    other[3].g_ema = 0.99;
    const char *named[4] = {"other sizes", "other sizes", "another optimizer", "g_ema"};
    for (int i = 0; i < 4; i++) {
        err = (gan_error){{0}, {0}};
        assert_int_equal(gan_checkpoint_inspect(path, &other[i], &pos, NULL, &err), -1);
        assert_non_null(strstr(err.message, named[i]));
        assert_string_equal(err.field, "checkpoint");
        assert_int_equal(gan_checkpoint_read(path, &other[i], 8, &st, &err), -1);
        assert_non_null(strstr(err.message, named[i]));
    }
    /* not a checkpoint at all */
    FILE *f = fopen(path, "wb");
    fputs("not a safetensors file", f);
    fclose(f);
    assert_int_equal(gan_checkpoint_inspect(path, &c, &pos, NULL, &err), -1);
    assert_int_equal(gan_checkpoint_read_config(path, &other[0], &err), -1);
    unlink(path);
    gan_trainer_free(a);
    free(g);
    free(d);
}

/* ---- the epoch record ----------------------------------------------------- */

/* One format (gan/epoch.c): the line, and a cJSON tree that prints the same line. */
static void test_epoch_record_format(void **state)
{
    (void)state;
    gan_epoch_metrics m = {.epoch = 12,
                           .iterations = 7,
                           .d_real = 0.25,
                           .d_fake = 1.0 / 3.0,
                           .d_loss = 0.5833333,
                           .g_loss = 2.5e-7,
                           .d_x = 0.9,
                           .d_g_z = 0.1,
                           .seconds = 1.23456,
                           .samples_per_sec = 1234.56,
                           .lr_d = 2e-4,
                           .lr_g = 1e-3,
                           .batch_size = 32};
    char line[1024];
    gan_epoch_metrics_json(&m, line, sizeof line);
    assert_string_equal(line, "{\"epoch\":12,\"d_real\":0.25,\"d_fake\":0.333333,"
                              "\"d_loss\":0.583333,\"g_loss\":2.5e-07,\"d_x\":0.9,"
                              "\"d_g_z\":0.1,\"seconds\":1.2346,\"samples_per_sec\":1234.6,"
                              "\"lr_d\":0.0002,\"lr_g\":0.001,\"batch_size\":32}");
    cJSON *o = gan_epoch_metrics_cjson(&m);
    char *printed = cJSON_PrintUnformatted(o);
    assert_string_equal(printed, line);
    cJSON_free(printed);
    cJSON_Delete(o);
    char cut[20]; /* a short buffer is filled, never overrun */
    gan_epoch_metrics_json(&m, cut, sizeof cut);
    assert_int_equal(strlen(cut), sizeof cut - 1);
}

/* ---- precision ------------------------------------------------------------ */

static bool spy_tf32;
static int spy_sgemms, spy_sgemms_fp32;
static void spy_set_tf32(gk_backend *b, bool on)
{
    (void)b;
    spy_tf32 = on;
}
static void spy_sgemm(gk_backend *b, bool ta, bool tb, int m, int n, int k, float alpha,
                      const float *a, int lda, const float *bb, int ldb, float beta, float *c,
                      int ldc)
{
    spy_sgemms++;
    spy_sgemms_fp32 += !spy_tf32;
    be->ops->sgemm(b, ta, tb, m, n, k, alpha, a, lda, bb, ldb, beta, c, ldc);
}

/* A TF32 run's steps run in TF32 even after an evaluation turned the mode off. */
static void test_tf32_run_keeps_its_precision(void **state)
{
    (void)state;
    gk_backend_ops ops = *be->ops;
    ops.set_tf32 = spy_set_tf32;
    ops.sgemm = spy_sgemm;
    gk_backend spy = *be;
    spy.ops = &ops;
    gan_config c = tiny_config();
    c.precision = GAN_PRECISION_TF32;
    gan_dataset ds = prefix(64);
    gan_error err;
    gan_trainer *t = gan_trainer_new(&spy, &c, &ds, &err);
    assert_non_null(t);
    spy_sgemms = spy_sgemms_fp32 = 0;
    assert_int_equal(gan_trainer_step(t, &err), 0);
    spy_set_tf32(&spy, false); /* what an evaluation in between does */
    assert_int_equal(gan_trainer_step(t, &err), 0);
    assert_true(spy_sgemms > 0);
    assert_int_equal(spy_sgemms_fp32, 0);
    gan_trainer_free(t);
}

/* ---- learning ----------------------------------------------------------- */

/* One iteration per epoch, so each epoch record is one iteration's numbers. */
static void test_discriminator_learns(void **state)
{
    (void)state;
    gan_config c;
    gan_config_preset(&c, "seed", NULL);
    c.batch_size = 64;
    gan_dataset ds = prefix(64);
    gan_error err;
    gan_trainer *t = gan_trainer_new(be, &c, &ds, &err);
    assert_non_null(t);
    gan_epoch_metrics m[8];
    for (int i = 0; i < 8; i++) {
        assert_int_equal(gan_trainer_step(t, &err), 0);
        assert_int_equal(gan_trainer_finish_epoch(t, &m[i], &err), 0);
        assert_int_equal(m[i].iterations, 1);
        printf("  iteration %d: d_x %.4f d_g_z %.4f d_real %.4f d_fake %.4f g %.4f\n", i + 1,
               m[i].d_x, m[i].d_g_z, m[i].d_real, m[i].d_fake, m[i].g_loss);
    }
    /* an untrained D is unsure; within three iterations it believes the real digits,
     * and a few later it has learnt to reject G's output (before G catches up) */
    assert_true(fabs(m[0].d_x - 0.5) < 0.1 && fabs(m[0].d_g_z - 0.5) < 0.1);
    assert_true(m[2].d_x > m[0].d_x + 0.15);
    assert_true(m[2].d_real < m[0].d_real - 0.2);
    assert_true(m[6].d_g_z < m[0].d_g_z - 0.3);
    assert_true(m[6].g_loss > m[0].g_loss + 1.0);
    gan_trainer_free(t);
}

static void test_batch_larger_than_data(void **state)
{
    (void)state;
    gan_config c = tiny_config();
    c.batch_size = 100;
    gan_dataset ds = prefix(64);
    gan_error err;
    assert_null(gan_trainer_new(be, &c, &ds, &err));
    assert_string_equal(err.field, "batch_size");
    assert_non_null(strstr(err.message, "larger than the data set"));
    c.batch_size = 8;
    c.precision = GAN_PRECISION_TF32;
    assert_null(gan_trainer_new(be, &c, &ds, &err));
    assert_string_equal(err.field, "precision");
}

/* A diverging run names the epoch and the first iteration whose loss was not finite. */
static void test_nonfinite_loss_located(void **state)
{
    (void)state;
    gan_config c = tiny_config();
    gan_dataset ds = prefix(64); /* 8 iterations an epoch */
    gan_error err;
    gan_trainer *t = gan_trainer_new(be, &c, &ds, &err);
    assert_non_null(t);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gan_trainer_step(t, &err), 0);
    /* poison D's output bias: from the next iteration on every logit is NaN */
    size_t dn = gan_discriminator_param_count(&c);
    float *d = malloc(dn * 4);
    gan_trainer_download_discriminator(t, d, &err);
    d[dn - 1] = NAN;
    gan_trainer_set_params(t, NULL, d, &err);
    while (!gan_trainer_epoch_complete(t))
        assert_int_equal(gan_trainer_step(t, &err), 0);
    gan_epoch_metrics m;
    assert_int_equal(gan_trainer_finish_epoch(t, &m, &err), -1);
    assert_string_equal(err.message, "non-finite loss at epoch 1, iteration 4");
    free(d);
    gan_trainer_free(t);
}

/* ---- step counters ------------------------------------------------------ */

static long long ckpt_meta(const char *path, const char *key)
{
    gan_st_file f;
    gan_error err;
    assert_int_equal(gan_st_read(path, &f, &err), 0);
    const char *v = gan_st_meta(&f, key);
    assert_non_null(v);
    long long n = atoll(v);
    gan_st_free(&f);
    return n;
}

/*
 * What an iteration counts: d_steps D steps, one G step, and one D forward
 * pass (one set of dropout masks) per step: D sees its real and generated
 * rows in one pass.
 */
static void test_counters_per_iteration(void **state)
{
    (void)state;
    gan_config c = tiny_config();
    c.d_steps = 2;
    c.d_input_dropout = 0.2;
    c.d_final_dropout = 0.5;
    gan_dataset ds = prefix(40); /* 5 iterations an epoch */
    gan_error err;
    gan_trainer *t = gan_trainer_new(be, &c, &ds, &err);
    assert_non_null(t);
    run_until(t, 1, 3); /* 8 iterations */
    char path[CKPT_PATH_MAX];
    temp_checkpoint_path(path);
    assert_int_equal(gan_trainer_save(t, path, &err), 0);
    assert_int_equal(ckpt_meta(path, "generator_steps"), 8);
    assert_int_equal(ckpt_meta(path, "discriminator_steps"), 16);
    assert_int_equal(ckpt_meta(path, "dropout_passes"), 8 * (2 + 1));
    assert_int_equal(ckpt_meta(path, "d_steps_in_epoch"), 6);
    assert_int_equal(gan_trainer_g_steps(t), 8);
    /* finish_epoch compares the backend's counter block with the host's */
    run_until(t, 3, 0);
    unlink(path);
    gan_trainer_free(t);
}

/* The ops' step formulas are gan/config.c's, value for value. */
static void test_step_formulas_match_config(void **state)
{
    (void)state;
    gan_config c;
    gan_config_preset(&c, "paper", NULL);
    assert_true(c.lr_decay > 1.0);
    const int64_t steps[] = {0, 1, 2, 17, 1000, 123456, 5000000};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        float want = (float)gan_config_lr_at(&c, c.lr_d, steps[i]);
        assert_true(gk_lr_at(c.lr_d, c.lr_decay, c.lr_min, steps[i]) == want);
    }
    for (int e = 0; e < 300; e++)
        assert_true(gk_momentum_at(c.momentum, c.momentum_final, c.momentum_epochs, e) ==
                    (float)gan_config_momentum_at(&c, e));
    c.momentum_epochs = 0;
    assert_true(gk_momentum_at(c.momentum, c.momentum_final, 0, 7) ==
                (float)gan_config_momentum_at(&c, 7));
    gan_config_preset(&c, "seed", NULL);
    assert_true(gk_lr_at(c.lr_g, c.lr_decay, c.lr_min, 99) == (float)c.lr_g);
}

static void test_flops_per_sample(void **state)
{
    (void)state;
    gan_config c;
    gan_config_preset(&c, "seed", NULL);
    gan_flops f = gan_flops_per_sample(&c);
    /* D step 8.0 M, G step 9.8 M multiply-adds at the seed sizes */
    assert_true(fabs(f.d_step - 8.0e6) < 0.05e6);
    assert_true(fabs(f.g_step - 9.8e6) < 0.05e6);
    assert_true(fabs(f.total - 17.8e6) < 0.1e6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flops_per_sample),
        cmocka_unit_test(test_nonfinite_loss_located),
        cmocka_unit_test(test_d_loss_gradient),
        cmocka_unit_test(test_g_loss_gradient),
        cmocka_unit_test(test_d_loss_gradient_all_dropouts),
        cmocka_unit_test(test_paper_preset_resumes),
        cmocka_unit_test(test_resume_identity),
        cmocka_unit_test(test_generator_average),
        cmocka_unit_test(test_checkpoint_of_other_model_rejected),
        cmocka_unit_test(test_checkpoint_module),
        cmocka_unit_test(test_tf32_run_keeps_its_precision),
        cmocka_unit_test(test_epoch_record_format),
        cmocka_unit_test(test_discriminator_learns),
        cmocka_unit_test(test_batch_larger_than_data),
        cmocka_unit_test(test_counters_per_iteration),
        cmocka_unit_test(test_step_formulas_match_config),
    };
    return cmocka_run_group_tests_name("trainer", tests, load_digits, free_digits);
}
