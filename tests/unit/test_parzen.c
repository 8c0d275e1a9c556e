/*
 * tests/unit/test_parzen.c — the Parzen-window log-likelihood (gan/parzen.c):
 * closed-form cases, a double-precision reference on random data, σ chosen
 * on sets whose best width is known by construction, bad inputs, and the
 * held-out splits of gan/evaluate.c with an evaluation over two files.
 * Data come from a fixed LCG, so every run sees the same numbers.
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

#include "gan/evaluate.h"
#include "gan/parzen.h"
#include "gan/trainer.h"
#include "kernels/backend.h"
#include "kernels/elementwise.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static gk_backend *be;

/* ---- helpers ------------------------------------------------------------ */

static uint64_t lcg_state;
static void lcg_seed(uint64_t s)
{
    lcg_state = s;
}
static double urand(void) /* [0, 1) */
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)((lcg_state >> 11) & ((1ULL << 53) - 1)) / 9007199254740992.0;
}
static double nrand(void) /* N(0, 1), Box–Muller */
{
    double u = 1.0 - urand(), v = urand();
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}
static float *uniform_set(int rows, int d)
{
    float *a = malloc((size_t)rows * (size_t)d * sizeof *a);
    assert_non_null(a);
    for (size_t i = 0; i < (size_t)rows * (size_t)d; i++)
        a[i] = (float)urand();
    return a;
}

/* log p(x) in double, straight from the definition (direct differences). */
static double ref_lp(const float *s, int m, const float *x, int d, double sigma)
{
    double *e = malloc((size_t)m * sizeof *e), mx = -INFINITY, sum = 0;
    assert_non_null(e);
    for (int j = 0; j < m; j++) {
        double d2 = 0;
        for (int k = 0; k < d; k++) {
            double t = (double)x[k] - (double)s[(size_t)j * (size_t)d + (size_t)k];
            d2 += t * t;
        }
        e[j] = -d2 / (2 * sigma * sigma);
        mx = e[j] > mx ? e[j] : mx;
    }
    for (int j = 0; j < m; j++)
        sum += exp(e[j] - mx);
    free(e);
    return mx + log(sum) - log((double)m) - 0.5 * d * log(2 * M_PI * sigma * sigma);
}

static void ref_score(const float *s, int m, const float *x, int n, int d, double sigma,
                      double *mean, double *se)
{
    double sum = 0, sq = 0;
    double *lp = malloc((size_t)n * sizeof *lp);
    assert_non_null(lp);
    for (int i = 0; i < n; i++) {
        lp[i] = ref_lp(s, m, x + (size_t)i * (size_t)d, d, sigma);
        sum += lp[i];
    }
    *mean = sum / n;
    for (int i = 0; i < n; i++)
        sq += (lp[i] - *mean) * (lp[i] - *mean);
    *se = sqrt(sq / n) / sqrt((double)n);
    free(lp);
}

static void assert_rel(double got, double want, double rel)
{
    double tol = rel * fmax(fabs(want), 1e-300);
    if (!(fabs(got - want) <= tol)) {
        print_error("got %.17g, want %.17g (rel err %.3g > %.3g)\n", got, want,
                    fabs(got - want) / fabs(want), rel);
        fail();
    }
}

/* Absolute, for values near 0 or carrying the float32 sgemm's absolute error. */
static void assert_abs(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol)) {
        print_error("got %.17g, want %.17g (abs err %.3g > %.3g)\n", got, want, fabs(got - want),
                    tol);
        fail();
    }
}

static double gauss_norm(int d, double sigma) /* −(d/2) log(2πσ²) */
{
    return -0.5 * d * log(2 * M_PI * sigma * sigma);
}

/* ---- closed forms ------------------------------------------------------- */

/* One sample, images at known distances: log p = −r²/(2σ²) − (d/2) log(2πσ²). */
static void test_one_sample_known(void **state)
{
    (void)state;
    lcg_seed(1);
    const int d = 784;
    float *s = uniform_set(1, d);
    float x[2 * 784];
    double r2[2] = {0, 0};
    const double want_r[2] = {0.75, 2.5};
    for (int i = 0; i < 2; i++) {
        double u[784], norm = 0;
        for (int k = 0; k < d; k++) {
            u[k] = nrand();
            norm += u[k] * u[k];
        }
        for (int k = 0; k < d; k++) {
            x[i * d + k] = (float)(s[k] + want_r[i] * u[k] / sqrt(norm));
            double t = (double)x[i * d + k] - s[k]; /* the distance the floats really have */
            r2[i] += t * t;
        }
    }
    const double sigmas[] = {0.1, 0.2782559402207124, 1.0, 3.0};
    for (int q = 0; q < 4; q++) {
        double sg = sigmas[q], mean, se;
        gan_error err = {0};
        double lp[2];
        for (int i = 0; i < 2; i++)
            lp[i] = -r2[i] / (2 * sg * sg) + gauss_norm(d, sg);
        assert_int_equal(gan_parzen_score(be, s, 1, x, 1, d, sg, &mean, &se, &err), 0);
        assert_rel(mean, lp[0], 1e-6);
        assert_true(se == 0.0);
        assert_int_equal(gan_parzen_score(be, s, 1, x, 2, d, sg, &mean, &se, &err), 0);
        assert_rel(mean, 0.5 * (lp[0] + lp[1]), 1e-6);
        assert_rel(se, 0.5 * fabs(lp[0] - lp[1]) / sqrt(2.0), 1e-6);
    }
    free(s);
}

/*
 * Two samples at the same distance r from x (x on their bisector, off the
 * line through them): logsumexp gains log 2, the 1/m loses it again, so the
 * answer is the one-sample one.
 */
static void test_two_equidistant(void **state)
{
    (void)state;
    const int d = 6;
    const float c[6] = {0.5f, 0.25f, 0.75f, 0.5f, 0.125f, 0.625f};
    const float u[6] = {0.25f, 0, 0, 0, 0, 0};     /* half the gap between the samples */
    const float w[6] = {0, 0.5f, -0.25f, 0, 0, 0}; /* x's offset, ⊥ u */
    float s[12], x[6];
    double r2 = 0;
    for (int k = 0; k < d; k++) {
        s[k] = c[k] + u[k];
        s[d + k] = c[k] - u[k];
        x[k] = c[k] + w[k];
        r2 += (double)u[k] * u[k] + (double)w[k] * w[k];
    }
    for (double sg = 0.1; sg < 1.01; sg *= 1.2915496650148839) {
        double mean, se;
        gan_error err = {0};
        assert_int_equal(gan_parzen_score(be, s, 2, x, 1, d, sg, &mean, &se, &err), 0);
        assert_rel(mean, -r2 / (2 * sg * sg) + gauss_norm(d, sg), 1e-6);
        /* and m = 1 with either sample gives the same number */
        double one;
        assert_int_equal(gan_parzen_score(be, s + d, 1, x, 1, d, sg, &one, NULL, &err), 0);
        assert_rel(mean, one, 1e-6);
    }
}

/*
 * Images identical to samples, σ tiny: each image sees only its own sample,
 * log p = −log m − (d/2) log(2πσ²), the kernel's peak over m. The float sgemm
 * leaves a distance of ~1e-8 instead of 0 (or a negative one, clamped), so
 * this holds to ~1e-4 nats at σ = 0.01; never above the peak.
 */
static void test_identical_tiny_sigma(void **state)
{
    (void)state;
    lcg_seed(3);
    const int m = 81, d = 4; /* a jittered 3⁴ lattice in [0,1]⁴: neighbours ≥ 0.23 apart */
    float *s = malloc((size_t)m * d * sizeof *s);
    assert_non_null(s);
    for (int i = 0, code = 0; i < m; i++, code = i)
        for (int k = 0; k < d; k++, code /= 3)
            s[i * d + k] = (float)(1.0 / 6 + (code % 3) / 3.0 + 0.1 * (urand() - 0.5));
    double min_d2 = INFINITY;
    for (int a = 0; a < m; a++)
        for (int b = a + 1; b < m; b++) {
            double d2 = 0;
            for (int k = 0; k < d; k++) {
                double t = (double)s[a * d + k] - s[b * d + k];
                d2 += t * t;
            }
            min_d2 = fmin(min_d2, d2);
        }
    const double sg = 0.01;
    assert_true(min_d2 / (2 * sg * sg) > 40); /* the other samples add < e^-40 each */
    const double peak = -log((double)m) + gauss_norm(d, sg);
    double mean, se;
    gan_error err = {0};
    assert_int_equal(gan_parzen_score(be, s, m, s, m, d, sg, &mean, &se, &err), 0);
    assert_true(mean <= peak + 1e-12);
    assert_true(fabs(mean - peak) < 5e-4);
    assert_true(se < 1e-3);
    /* one image at a time: each is at the peak too */
    for (int i = 0; i < m; i += 7) {
        assert_int_equal(gan_parzen_score(be, s, m, s + i * d, 1, d, sg, &mean, NULL, &err), 0);
        assert_true(mean <= peak + 1e-12 && fabs(mean - peak) < 1e-3);
    }
    free(s);
}

/* ---- against the double reference -------------------------------------- */

static void check_random(int m, int n, int d, uint64_t seed)
{
    lcg_seed(seed);
    float *s = uniform_set(m, d), *x = uniform_set(n, d);
    const double sigmas[] = {0.1, 0.2, 0.4641588833612779, 1.0};
    for (int q = 0; q < 4; q++) {
        double mean, se, rmean, rse;
        gan_error err = {0};
        assert_int_equal(gan_parzen_score(be, s, m, x, n, d, sigmas[q], &mean, &se, &err), 0);
        ref_score(s, m, x, n, d, sigmas[q], &rmean, &rse);
        assert_rel(mean, rmean, 1e-5);
        assert_rel(se, rse, 1e-5);
    }
    free(s);
    free(x);
}

static void test_random_reference(void **state)
{
    (void)state;
    check_random(300, 50, 20, 11);
}

/* More images than one 256-row block, and a ragged last block. */
static void test_random_reference_blocks(void **state)
{
    (void)state;
    check_random(97, 600, 13, 12);
}

/* Selection scores every σ from one set of distances: same as scoring each alone. */
static void test_select_matches_score(void **state)
{
    (void)state;
    lcg_seed(21);
    const int m = 200, n = 300, d = 8;
    float *s = uniform_set(m, d), *v = uniform_set(n, d);
    double grid[GAN_PARZEN_PAPER_SIGMAS], best_sigma = 0, best_mean = 0;
    gan_parzen_paper_sigmas(grid);
    assert_rel(grid[0], 0.1, 1e-15);
    assert_rel(grid[9], 1.0, 1e-15);
    assert_rel(grid[1], pow(10, -8.0 / 9.0), 1e-15);
    gan_error err = {0};
    assert_int_equal(
        gan_parzen_select_sigma(be, s, m, v, n, d, NULL, 0, &best_sigma, &best_mean, &err), 0);
    int best = -1;
    double top = -INFINITY;
    for (int k = 0; k < GAN_PARZEN_PAPER_SIGMAS; k++) {
        double mean, rmean, rse;
        assert_int_equal(gan_parzen_score(be, s, m, v, n, d, grid[k], &mean, NULL, &err), 0);
        ref_score(s, m, v, n, d, grid[k], &rmean, &rse);
        assert_rel(mean, rmean, 1e-5);
        if (rmean > top) {
            top = rmean;
            best = k;
        }
        if (grid[k] == best_sigma)
            assert_rel(best_mean, mean, 1e-12);
    }
    assert_true(best > 0 && best < 9); /* an interior optimum, so the choice means something */
    assert_true(best_sigma == grid[best]);
    free(s);
    free(v);
}

/*
 * Validation points on a lattice 12 apart, each with one sample at distance
 * r: log p = −r²/(2σ²) − d log σ + const, whose maximum over σ is σ = r/√d.
 * With r = grid[k]·√d that is exactly grid value k; the grid's ratio of
 * 10^(1/9) makes the neighbours clearly worse (by 0.06·d nats and more).
 */
static void test_select_exact_optimum(void **state)
{
    (void)state;
    const int side = 4, d = 3, n = side * side * side;
    double grid[GAN_PARZEN_PAPER_SIGMAS];
    gan_parzen_paper_sigmas(grid);
    float *v = malloc((size_t)n * d * sizeof *v), *s = malloc((size_t)n * d * sizeof *s);
    assert_non_null(v);
    assert_non_null(s);
    lcg_seed(31);
    for (int k = 0; k < GAN_PARZEN_PAPER_SIGMAS; k++) {
        double r = grid[k] * sqrt((double)d);
        for (int i = 0; i < n; i++) {
            double u[3], norm = 0;
            for (int q = 0; q < d; q++) {
                u[q] = nrand();
                norm += u[q] * u[q];
            }
            int idx[3] = {i % side, (i / side) % side, i / (side * side)};
            for (int q = 0; q < d; q++) {
                v[i * d + q] = (float)(12.0 * idx[q]);
                s[i * d + q] = (float)(12.0 * idx[q] + r * u[q] / sqrt(norm));
            }
        }
        double best_sigma = 0, best_mean = 0;
        gan_error err = {0};
        assert_int_equal(
            gan_parzen_select_sigma(be, s, n, v, n, d, NULL, 0, &best_sigma, &best_mean, &err), 0);
        assert_true(best_sigma == grid[k]);
        double want = -0.5 * d - log((double)n) + gauss_norm(d, grid[k]);
        assert_abs(best_mean, want, 2e-3); /* float32 sgemm on coordinates up to 36 */
    }
    free(v);
    free(s);
}

/*
 * The same with noise: samples = validation points + N(0, τ²I), τ = grid[k].
 * The best σ² is then mean‖noise‖²/d ≈ τ² (checked on the drawn noise), so
 * the choice is grid[k]. The validation points double as the test set.
 */
static void test_evaluate_noisy_copies(void **state)
{
    (void)state;
    const int side = 8, d = 3, n = side * side * side; /* 512 points: 2 blocks */
    double grid[GAN_PARZEN_PAPER_SIGMAS];
    gan_parzen_paper_sigmas(grid);
    float *v = malloc((size_t)n * d * sizeof *v), *s = malloc((size_t)n * d * sizeof *s);
    assert_non_null(v);
    assert_non_null(s);
    lcg_seed(41);
    const int ks[] = {1, 4, 8};
    for (int t = 0; t < 3; t++) {
        const double tau = grid[ks[t]];
        double sq = 0;
        for (int i = 0; i < n; i++) {
            int idx[3] = {i % side, (i / side) % side, i / (side * side)};
            for (int q = 0; q < d; q++) {
                v[i * d + q] = (float)(12.0 * idx[q]);
                s[i * d + q] = (float)(12.0 * idx[q] + tau * nrand());
                double e = (double)s[i * d + q] - v[i * d + q];
                sq += e * e;
            }
        }
        double best = sqrt(sq / n / d);                           /* the continuous optimum */
        assert_true(fabs(log(best / tau)) < log(10.0) / 9.0 / 4); /* well inside grid[k]'s cell */

        gan_parzen_result res;
        memset(&res, 0xff, sizeof res);
        gan_error err = {0};
        assert_int_equal(gan_parzen_evaluate(be, s, n, v, n, v, n, d, &res, &err), 0);
        assert_true(res.sigma == tau);
        assert_int_equal(res.samples, n);
        assert_int_equal(res.images, n);
        double rmean, rse;
        ref_score(s, n, v, n, d, tau, &rmean, &rse);
        assert_abs(res.mean_ll, rmean, 2e-3);
        assert_abs(res.stderr_ll, rse, 1e-4);
    }
    free(v);
    free(s);
}

/* evaluate = select σ on valid, then score test with it. */
static void test_evaluate_two_sets(void **state)
{
    (void)state;
    lcg_seed(51);
    const int m = 150, nv = 40, nt = 70, d = 10;
    float *s = uniform_set(m, d), *v = uniform_set(nv, d), *t = uniform_set(nt, d);
    gan_parzen_result res;
    gan_error err = {0};
    assert_int_equal(gan_parzen_evaluate(be, s, m, v, nv, t, nt, d, &res, &err), 0);
    double sigma = 0, mean, se;
    assert_int_equal(gan_parzen_select_sigma(be, s, m, v, nv, d, NULL, 0, &sigma, NULL, &err), 0);
    assert_true(res.sigma == sigma);
    assert_int_equal(gan_parzen_score(be, s, m, t, nt, d, sigma, &mean, &se, &err), 0);
    assert_rel(res.mean_ll, mean, 1e-12);
    assert_rel(res.stderr_ll, se, 1e-12);
    assert_int_equal(res.samples, m);
    assert_int_equal(res.images, nt);
    free(s);
    free(v);
    free(t);
}

/* ---- held-out splits and an evaluation over two files ---------------------- */

static void expect_split(int count, int holdout, int test_count, int train, int vb, int ve, bool vt,
                         int tb, int te, bool tt)
{
    gan_split s;
    gan_error err = {0};
    assert_int_equal(gan_split_make(count, holdout, test_count, &s, &err), 0);
    assert_int_equal(s.train_count, train);
    assert_int_equal(s.valid_begin, vb);
    assert_int_equal(s.valid_end, ve);
    assert_int_equal(s.valid_in_test, vt);
    assert_int_equal(s.test_begin, tb);
    assert_int_equal(s.test_end, te);
    assert_int_equal(s.test_in_test, tt);
}

static void test_splits(void **state)
{
    (void)state;
    /* the paper's MNIST protocol: σ on training digits 50,000..59,999, t10k scored */
    expect_split(60000, 10000, 10000, 50000, 50000, 60000, false, 0, 10000, true);
    /* all 60,000 trained on: the test file in halves */
    expect_split(60000, 0, 10000, 60000, 0, 5000, true, 5000, 10000, true);
    /* no test file: the holdout in halves, the odd image to the test half */
    expect_split(10000, 2000, 0, 8000, 8000, 9000, false, 9000, 10000, false);
    expect_split(10, 3, 0, 7, 7, 8, false, 8, 10, false);
    /* nothing held out: a split without images to evaluate on */
    gan_split s;
    gan_error err = {0};
    assert_int_equal(gan_split_make(100, 0, 0, &s, &err), 0);
    assert_false(gan_split_evaluable(&s));
    assert_int_equal(gan_split_make(100, 1, 0, &s, &err), 0);
    assert_false(gan_split_evaluable(&s));
    assert_int_equal(gan_split_make(100, 1, 5, &s, &err), 0);
    assert_true(gan_split_evaluable(&s));
    err = (gan_error){0};
    assert_int_equal(gan_split_make(100, 100, 0, &s, &err), -1);
    assert_string_equal(err.field, "holdout");
    assert_int_equal(gan_split_make(100, -1, 0, &s, &err), -1);
}

/* A data set of n random images (bytes), caller frees pixels. */
static gan_dataset random_images(int n)
{
    gan_dataset ds = {0};
    ds.count = n;
    ds.rows = GAN_IMAGE_ROWS;
    ds.cols = GAN_IMAGE_COLS;
    ds.pixels = malloc((size_t)n * GAN_IMAGE_PIXELS);
    for (size_t i = 0; i < (size_t)n * GAN_IMAGE_PIXELS; i++)
        ds.pixels[i] = (uint8_t)(urand() * 256.0);
    return ds;
}

/* σ on the training file's tail and the whole test file scored, as by hand. */
static void test_evaluate_train_and_test_files(void **state)
{
    (void)state;
    lcg_seed(77);
    gan_config cfg;
    assert_int_equal(gan_config_preset(&cfg, "seed", NULL), 0);
    cfg.latent_dim = 8;
    cfg.g_hidden = 16;
    cfg.g_output = GAN_G_OUTPUT_SIGMOID;
    size_t gn = gan_generator_param_count(&cfg);
    float *g = malloc(gn * sizeof(float));
    for (size_t i = 0; i < gn; i++)
        g[i] = (float)(urand() - 0.5);
    gan_dataset train = random_images(50), test = random_images(30);
    gan_split split;
    gan_error err = {0};
    assert_int_equal(gan_split_make(train.count, 20, test.count, &split, &err), 0);
    gan_parzen_result got, want;
    const int m = 64;
    assert_int_equal(gan_evaluate_parzen(be, &cfg, g, &train, &test, &split, m, 5, &got, &err), 0);

    float *gen = malloc((size_t)m * GAN_IMAGE_PIXELS * sizeof(float));
    assert_int_equal(gan_generate_many(&cfg, g, m, 5, GK_PURPOSE_EVAL, gen, &err), 0);
    float *valid = gan_dataset_rows_float(&train, 30, 50);
    float *scored = gan_dataset_rows_float(&test, 0, 30);
    assert_int_equal(
        gan_parzen_evaluate(be, gen, m, valid, 20, scored, 30, GAN_IMAGE_PIXELS, &want, &err), 0);
    assert_true(got.sigma == want.sigma);
    assert_true(got.mean_ll == want.mean_ll);
    assert_int_equal(got.images, 30);
    /* a split that indexes a test file needs one */
    err = (gan_error){0};
    assert_int_equal(gan_evaluate_parzen(be, &cfg, g, &train, NULL, &split, m, 5, &got, &err), -1);
    assert_string_equal(err.field, "holdout");
    free(gen);
    free(valid);
    free(scored);
    free(train.pixels);
    free(test.pixels);
    free(g);
}

/* ---- precision: Parzen's distances never in TF32 ------------------------------ */

static bool spy_tf32;       /* the math mode the spy backend is in */
static int spy_sgemms_tf32; /* sgemm calls made while it was on */
static void spy_set_tf32(gk_backend *b, bool on)
{
    (void)b;
    spy_tf32 = on;
}
static void spy_sgemm(gk_backend *b, bool ta, bool tb, int m, int n, int k, float alpha,
                      const float *a, int lda, const float *bb, int ldb, float beta, float *c,
                      int ldc)
{
    spy_sgemms_tf32 += spy_tf32;
    be->ops->sgemm(b, ta, tb, m, n, k, alpha, a, lda, bb, ldb, beta, c, ldc);
}

/* A trainer on the same backend may have left TF32 on: the evaluation turns it off. */
static void test_evaluation_is_fp32(void **state)
{
    (void)state;
    gk_backend_ops ops = *be->ops;
    ops.set_tf32 = spy_set_tf32;
    ops.sgemm = spy_sgemm;
    gk_backend spy = *be;
    spy.ops = &ops;
    lcg_seed(5);
    const int m = 40, nv = 20, nt = 30, d = 12;
    float *s = uniform_set(m, d), *v = uniform_set(nv, d), *t = uniform_set(nt, d);
    gan_parzen_result res;
    gan_error err = {0};
    spy_tf32 = true;
    spy_sgemms_tf32 = 0;
    assert_int_equal(gan_parzen_evaluate(&spy, s, m, v, nv, t, nt, d, &res, &err), 0);
    assert_int_equal(spy_sgemms_tf32, 0);
    assert_false(spy_tf32);
    free(s);
    free(v);
    free(t);
}

/* ---- bad inputs --------------------------------------------------------- */

#define EXPECT_FIELD(call, name)                                                                   \
    do {                                                                                           \
        gan_error e_ = {0};                                                                        \
        gan_error *err = &e_;                                                                      \
        assert_int_equal((call), -1);                                                              \
        assert_string_equal(e_.field, (name));                                                     \
        assert_non_null(strstr(e_.message, (name)));                                               \
    } while (0)

static void test_bad_inputs(void **state)
{
    (void)state;
    float s[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f}, x[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    double mean = 0, se = 0, best = 0;
    gan_parzen_result res;

    EXPECT_FIELD(gan_parzen_score(be, s, 0, x, 1, 4, 0.5, &mean, &se, err), "m");
    EXPECT_FIELD(gan_parzen_score(be, s, -3, x, 1, 4, 0.5, &mean, &se, err), "m");
    EXPECT_FIELD(gan_parzen_score(be, s, 2, x, 0, 4, 0.5, &mean, &se, err), "n");
    EXPECT_FIELD(gan_parzen_score(be, s, 2, x, 1, 0, 0.5, &mean, &se, err), "d");
    EXPECT_FIELD(gan_parzen_score(be, s, 2, x, 1, 4, 0.0, &mean, &se, err), "sigma");
    EXPECT_FIELD(gan_parzen_score(be, s, 2, x, 1, 4, -0.5, &mean, &se, err), "sigma");
    EXPECT_FIELD(gan_parzen_score(be, s, 2, x, 1, 4, NAN, &mean, &se, err), "sigma");
    EXPECT_FIELD(gan_parzen_score(be, s, 2, x, 1, 4, INFINITY, &mean, &se, err), "sigma");
    EXPECT_FIELD(gan_parzen_score(be, NULL, 2, x, 1, 4, 0.5, &mean, &se, err), "samples");
    EXPECT_FIELD(gan_parzen_score(be, s, 2, NULL, 1, 4, 0.5, &mean, &se, err), "x");
    EXPECT_FIELD(gan_parzen_score(NULL, s, 2, x, 1, 4, 0.5, &mean, &se, err), "backend");

    const double bad[] = {0.1, NAN, 0.5};
    EXPECT_FIELD(gan_parzen_select_sigma(be, s, 0, x, 1, 4, NULL, 0, &best, NULL, err), "m");
    EXPECT_FIELD(gan_parzen_select_sigma(be, s, 2, x, 1, 4, bad, 3, &best, NULL, err), "sigmas");
    EXPECT_FIELD(gan_parzen_select_sigma(be, s, 2, x, 1, 4, bad, 0, &best, NULL, err), "ns");
    EXPECT_FIELD(gan_parzen_select_sigma(be, s, 2, x, 0, 4, NULL, 0, &best, NULL, err), "nv");
    EXPECT_FIELD(gan_parzen_evaluate(be, s, 0, x, 1, x, 1, 4, &res, err), "m");
    EXPECT_FIELD(gan_parzen_evaluate(be, s, 2, x, 1, x, 0, 4, &res, err), "nt");
    EXPECT_FIELD(gan_parzen_evaluate(be, s, 2, x, 1, NULL, 1, 4, &res, err), "test");
    EXPECT_FIELD(gan_parzen_evaluate(be, s, 2, x, 1, x, 1, 4, NULL, err), "out");

    /* a diverged generator: NaN pixels are named with their row */
    s[6] = NAN;
    EXPECT_FIELD(gan_parzen_score(be, s, 2, x, 1, 4, 0.5, &mean, &se, err), "samples");
    s[6] = 0.7f;
    x[2] = INFINITY;
    EXPECT_FIELD(gan_parzen_score(be, s, 2, x, 1, 4, 0.5, &mean, &se, err), "x");
    EXPECT_FIELD(gan_parzen_evaluate(be, s, 2, x, 1, s, 2, 4, &res, err), "valid");
    x[2] = 0.5f;

    /* a backend that already failed is refused, and not cleared */
    snprintf(be->error, sizeof be->error, "test.c:1: injected failure");
    EXPECT_FIELD(gan_parzen_score(be, s, 2, x, 1, 4, 0.5, &mean, &se, err), "backend");
    assert_string_equal(be->error, "test.c:1: injected failure");
    be->error[0] = '\0';

    /* a NULL error pointer is allowed */
    assert_int_equal(gan_parzen_score(be, s, 0, x, 1, 4, 0.5, &mean, &se, NULL), -1);
    assert_int_equal(gan_parzen_score(be, s, 2, x, 1, 4, 0.5, &mean, &se, NULL), 0);
    assert_true(isfinite(mean));
}

static int setup(void **state)
{
    (void)state;
    char why[256];
    be = gk_backend_open("cpu", why, sizeof why);
    if (!be) {
        fprintf(stderr, "cannot open the cpu backend: %s\n", why);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gk_backend_close(be);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_sample_known),
        cmocka_unit_test(test_two_equidistant),
        cmocka_unit_test(test_identical_tiny_sigma),
        cmocka_unit_test(test_random_reference),
        cmocka_unit_test(test_random_reference_blocks),
        cmocka_unit_test(test_select_matches_score),
        cmocka_unit_test(test_select_exact_optimum),
        cmocka_unit_test(test_evaluate_noisy_copies),
        cmocka_unit_test(test_evaluate_two_sets),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_splits),
        cmocka_unit_test(test_evaluation_is_fp32),
        cmocka_unit_test(test_evaluate_train_and_test_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
