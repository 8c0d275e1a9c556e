/*
 * tests/unit/test_sample_metrics.c — statistics of generated samples
 * (gan/sample_metrics.c): moments of known sets, Fréchet distances against
 * closed forms (moments fed directly: diagonal, commuting and a hand-worked
 * non-commuting 2 × 2 case; and from samples), k-NN radii and
 * precision/recall on configurations whose answers are known by
 * construction (a line of points, duplicates, identical sets, far clusters,
 * half the clusters covered) and against a double-precision brute force
 * over several tiles, class statistics on hand-made probabilities, the
 * whole evaluation against a prepared reference with its JSON, and bad
 * inputs. Data come from a fixed LCG, so every run sees the same numbers.
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

#include <cjson/cJSON.h>

#include "gan/sample_metrics.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

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

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    assert_non_null(p);
    return p;
}

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol)) {
        print_error("got %.17g, want %.17g (err %.3g > %.3g)\n", got, want, fabs(got - want), tol);
        fail();
    }
}

/*
 * n points in d dimensions from `clusters` Gaussian clusters (spread sigma,
 * centres uniform in [offset, offset + span)^d, drawn from seed), point i in
 * cluster i % clusters; the cluster of each point into label if non-NULL.
 */
static float *clustered(int n, int d, int clusters, double span, double offset, double sigma,
                        uint64_t centre_seed, int *label)
{
    double *c = xmalloc((size_t)clusters * d * sizeof *c);
    uint64_t saved = lcg_state;
    lcg_seed(centre_seed);
    for (int i = 0; i < clusters * d; i++)
        c[i] = offset + span * urand();
    lcg_state = saved;
    float *x = xmalloc((size_t)n * d * sizeof *x);
    for (int i = 0; i < n; i++) {
        int q = i % clusters;
        if (label)
            label[i] = q;
        for (int k = 0; k < d; k++)
            x[(size_t)i * d + k] = (float)(c[q * d + k] + sigma * nrand());
    }
    free(c);
    return x;
}

static double exact_d2(const float *a, const float *b, int d)
{
    double s = 0;
    for (int k = 0; k < d; k++) {
        double t = (double)a[k] - (double)b[k];
        s += t * t;
    }
    return s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Brute-force squared k-NN radii: sort every point's distances to the others. */
static void ref_radii2(const float *x, int n, int d, int k, double *r2)
{
    double *row = xmalloc((size_t)n * sizeof *row);
    for (int i = 0; i < n; i++) {
        int m = 0;
        for (int j = 0; j < n; j++)
            if (j != i)
                row[m++] = exact_d2(x + (size_t)i * d, x + (size_t)j * d, d);
        qsort(row, (size_t)m, sizeof *row, cmp_double);
        r2[i] = row[k - 1];
    }
    free(row);
}

/* Brute force: the fraction of a's points inside at least one of b's balls. */
static double ref_coverage(const float *a, int na, const float *b, const double *b_r2, int nb,
                           int d)
{
    int in = 0;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (exact_d2(a + (size_t)i * d, b + (size_t)j * d, d) <= b_r2[j]) {
                in++;
                break;
            }
    return (double)in / na;
}

/* Moments with their own storage, from arrays given here. */
static gan_moments moments_of(int d, const double *mean, const double *cov)
{
    gan_moments m = {.n = 0, .d = d};
    m.mean = xmalloc((size_t)d * sizeof *m.mean);
    m.cov = xmalloc((size_t)d * d * sizeof *m.cov);
    memcpy(m.mean, mean, (size_t)d * sizeof *m.mean);
    memcpy(m.cov, cov, (size_t)d * d * sizeof *m.cov);
    return m;
}

static double fd_of(const gan_moments *a, const gan_moments *b)
{
    double fd = -1;
    gan_error err = {0};
    if (gan_frechet_distance(a, b, &fd, &err) != 0) {
        print_error("gan_frechet_distance: %s: %s\n", err.field, err.message);
        fail();
    }
    return fd;
}

/* ---- moments -------------------------------------------------------------- */

/* Sets small enough to do by hand; every value exact in binary. */
static void test_moments_known(void **state)
{
    (void)state;
    gan_error err = {0};
    gan_moments m;
    /* the corners of a square: mean (1, 1), variances 4/3 (divisor n − 1), no correlation */
    const float square[8] = {0, 0, 2, 0, 0, 2, 2, 2};
    assert_int_equal(gan_moments_compute(square, 4, 2, &m, &err), 0);
    assert_int_equal(m.n, 4);
    assert_int_equal(m.d, 2);
    assert_true(m.mean[0] == 1.0 && m.mean[1] == 1.0);
    assert_close(m.cov[0], 4.0 / 3.0, 1e-15);
    assert_close(m.cov[3], 4.0 / 3.0, 1e-15);
    assert_true(m.cov[1] == 0.0 && m.cov[2] == 0.0);
    gan_moments_free(&m);
    assert_null(m.mean);
    /* points on a line y = 2x: variances 1 and 4, covariance 2, exactly */
    const float line[6] = {1, 2, 2, 4, 3, 6};
    assert_int_equal(gan_moments_compute(line, 3, 2, &m, &err), 0);
    assert_true(m.mean[0] == 2.0 && m.mean[1] == 4.0);
    assert_true(m.cov[0] == 1.0 && m.cov[3] == 4.0);
    assert_true(m.cov[1] == 2.0 && m.cov[2] == 2.0);
    gan_moments_free(&m);
    /* two points: the divisor is n − 1 = 1 */
    const float two[2] = {3, 5};
    assert_int_equal(gan_moments_compute(two, 2, 1, &m, &err), 0);
    assert_true(m.mean[0] == 4.0 && m.cov[0] == 2.0);
    gan_moments_free(&m);
    gan_moments_free(NULL);
}

/* More rows than one dsyrk block, far from the origin: against a naive double computation. */
static void test_moments_blocks(void **state)
{
    (void)state;
    lcg_seed(2);
    const int n = 1300, d = 7;
    float *x = clustered(n, d, 3, 4.0, 100.0, 1.0, 9, NULL);
    gan_moments m;
    gan_error err = {0};
    assert_int_equal(gan_moments_compute(x, n, d, &m, &err), 0);
    double mean[7] = {0}, cov[49] = {0};
    for (int i = 0; i < n; i++)
        for (int k = 0; k < d; k++)
            mean[k] += x[i * d + k];
    for (int k = 0; k < d; k++)
        mean[k] /= n;
    for (int i = 0; i < n; i++)
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++)
                cov[a * d + b] += (x[i * d + a] - mean[a]) * (x[i * d + b] - mean[b]);
    for (int q = 0; q < d * d; q++)
        cov[q] /= n - 1;
    for (int k = 0; k < d; k++)
        assert_close(m.mean[k], mean[k], 1e-12 * fabs(mean[k]));
    for (int q = 0; q < d * d; q++)
        assert_close(m.cov[q], cov[q], 1e-11);
    for (int a = 0; a < d; a++)
        for (int b = 0; b < d; b++)
            assert_true(m.cov[a * d + b] == m.cov[b * d + a]); /* exactly symmetric */
    gan_moments_free(&m);
    free(x);
}

/* ---- the Fréchet distance, closed forms ----------------------------------- */

/* Diagonal covariances: tr sqrt = Σ √(a_i b_i), FD = ‖Δμ‖² + Σ (√a_i − √b_i)². */
static void test_fd_diagonal(void **state)
{
    (void)state;
    const int d = 5;
    const double ma[5] = {0, 1, -2, 0.5, 3}, mb[5] = {1, 1, 0, -0.5, 3};
    const double va[5] = {1, 4, 0.25, 9, 2}, vb[5] = {4, 1, 0.25, 1, 0};
    double ca[25] = {0}, cb[25] = {0}, want = 0;
    for (int i = 0; i < d; i++) {
        ca[i * d + i] = va[i];
        cb[i * d + i] = vb[i]; /* a zero variance: singular, still fine */
        want += (ma[i] - mb[i]) * (ma[i] - mb[i]) + pow(sqrt(va[i]) - sqrt(vb[i]), 2);
    }
    gan_moments a = moments_of(d, ma, ca), b = moments_of(d, mb, cb);
    assert_close(fd_of(&a, &b), want, 1e-12);
    assert_close(fd_of(&b, &a), want, 1e-12);
    /* equal covariances: only the means remain */
    assert_close(fd_of(&a, &a), 0, 1e-12);
    memcpy(b.cov, a.cov, sizeof ca);
    assert_close(fd_of(&a, &b), 1 + 4 + 1, 1e-12);
    gan_moments_free(&a);
    gan_moments_free(&b);
}

/* Commuting covariances R·diag·Rᵀ with one rotation R: the diagonal formula in R's basis. */
static void test_fd_commuting(void **state)
{
    (void)state;
    const int d = 4;
    /* R: a product of two Givens rotations, orthogonal and not axis-aligned */
    const double c1 = cos(0.7), s1 = sin(0.7), c2 = cos(-1.3), s2 = sin(-1.3);
    const double g1[16] = {c1, -s1, 0, 0, s1, c1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    const double g2[16] = {1, 0, 0, 0, 0, c2, 0, -s2, 0, 0, 1, 0, 0, s2, 0, c2};
    double r[16] = {0};
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            for (int k = 0; k < d; k++)
                r[i * d + j] += g1[i * d + k] * g2[k * d + j];
    const double va[4] = {3, 0.5, 2, 1e-3}, vb[4] = {1, 2, 2, 5};
    double ca[16] = {0}, cb[16] = {0}, want = 0;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            for (int k = 0; k < d; k++) {
                ca[i * d + j] += r[i * d + k] * va[k] * r[j * d + k];
                cb[i * d + j] += r[i * d + k] * vb[k] * r[j * d + k];
            }
    for (int k = 0; k < d; k++)
        want += pow(sqrt(va[k]) - sqrt(vb[k]), 2);
    const double mu[4] = {0.25, -1, 2, 0};
    gan_moments a = moments_of(d, mu, ca), b = moments_of(d, mu, cb);
    assert_close(fd_of(&a, &b), want, 1e-12);
    assert_close(fd_of(&b, &a), want, 1e-12);
    gan_moments_free(&a);
    gan_moments_free(&b);
}

/*
 * A non-commuting pair by hand: C1 = diag(1, 4), C2 = [[2, 1], [1, 2]].
 * C1^½ = diag(1, 2), M = C1^½ C2 C1^½ = [[2, 2], [2, 8]]; for a 2 × 2
 * positive definite M, tr √M = √(tr M + 2√det M) = √(10 + 2√12). So
 * FD = ‖Δμ‖² + 5 + 4 − 2√(10 + 4√3) (≈ 0.7712 without the means).
 */
static void test_fd_noncommuting(void **state)
{
    (void)state;
    const double ca[4] = {1, 0, 0, 4}, cb[4] = {2, 1, 1, 2};
    const double ma[2] = {0, 0}, mb[2] = {1, -2};
    const double tr_sqrt = sqrt(10 + 4 * sqrt(3.0));
    gan_moments a = moments_of(2, ma, ca), b = moments_of(2, mb, cb);
    assert_close(fd_of(&a, &b), 5 + 9 - 2 * tr_sqrt, 1e-13);
    /* the other way round: C2^½ C1 C2^½ has the same trace root */
    assert_close(fd_of(&b, &a), 5 + 9 - 2 * tr_sqrt, 1e-13);
    assert_close(fd_of(&a, &a), 0, 1e-13);
    assert_close(fd_of(&b, &b), 0, 1e-13);
    gan_moments_free(&a);
    gan_moments_free(&b);
}

/*
 * From samples: FD(x, x) ≈ 0 in 128 dimensions, also with fewer points than
 * dimensions (a singular covariance), and a shift of the mean alone gives
 * exactly its square; two Gaussians with known parameters come out near
 * their population FD.
 */
static void test_fd_samples(void **state)
{
    (void)state;
    lcg_seed(4);
    gan_error err = {0};
    const int d = 128;
    const int ns[2] = {2000, 60};
    for (int t = 0; t < 2; t++) {
        float *x = clustered(ns[t], d, 10, 6.0, -3.0, 1.0, 17, NULL);
        gan_moments m1, m2;
        assert_int_equal(gan_moments_compute(x, ns[t], d, &m1, &err), 0);
        assert_int_equal(gan_moments_compute(x, ns[t], d, &m2, &err), 0);
        double tr = 0;
        for (int k = 0; k < d; k++)
            tr += m1.cov[k * d + k];
        double fd = fd_of(&m1, &m2);
        assert_true(fd >= 0);
        assert_true(fd < 1e-12 * tr);
        /* means apart by δ, covariances equal: exactly ‖δ‖² (a singular covariance's null
         * directions must add nothing, though their eigenvalues come out at ±1e-14) */
        for (int k = 0; k < d; k++)
            m2.mean[k] += 1e-3;
        assert_close(fd_of(&m1, &m2), d * 1e-6, 1e-12 * tr);
        gan_moments_free(&m1);
        gan_moments_free(&m2);
        free(x);
    }
    /* N(0, diag(1, 4, 9)) against N((1, 0, -1), diag(4, 4, 1)): FD = 2 + 1 + 0 + 4 = 7 */
    const int n = 40000, d3 = 3;
    const double sa[3] = {1, 2, 3}, sb[3] = {2, 2, 1}, mb[3] = {1, 0, -1};
    float *xa = xmalloc((size_t)n * d3 * sizeof *xa), *xb = xmalloc((size_t)n * d3 * sizeof *xb);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < d3; k++) {
            xa[i * d3 + k] = (float)(sa[k] * nrand());
            xb[i * d3 + k] = (float)(mb[k] + sb[k] * nrand());
        }
    gan_moments a, b;
    assert_int_equal(gan_moments_compute(xa, n, d3, &a, &err), 0);
    assert_int_equal(gan_moments_compute(xb, n, d3, &b, &err), 0);
    assert_close(fd_of(&a, &b), 7.0, 0.1); /* sampling error ≈ 0.03 at n = 40,000 */
    gan_moments_free(&a);
    gan_moments_free(&b);
    free(xa);
    free(xb);
}

/* ---- k-NN radii ----------------------------------------------------------- */

/*
 * Ten points on a line, one apart: the third neighbour of an end point is 3
 * away, of every other point 2 away. Duplicates: a point with three copies
 * of itself has radius 0; with two copies, the distance to the next point.
 */
static void test_radii_line_and_duplicates(void **state)
{
    (void)state;
    gan_error err = {0};
    float line[20];
    for (int i = 0; i < 10; i++) {
        line[2 * i] = (float)i + 100.0f; /* far from the origin: centring matters */
        line[2 * i + 1] = -50.0f;
    }
    double r2[10];
    assert_int_equal(gan_knn_radii2(line, 10, 2, 3, r2, &err), 0);
    for (int i = 0; i < 10; i++)
        assert_true(r2[i] == (i == 0 || i == 9 ? 9.0 : 4.0));
    assert_int_equal(gan_knn_radii2(line, 10, 2, 1, r2, &err), 0);
    for (int i = 0; i < 10; i++)
        assert_true(r2[i] == 1.0);

    /* points 0..3 coincide (four copies), 4..6 coincide (three), 7 and 8 apart */
    const float p[9 * 3] = {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 5, 5,
                            5, 5, 5, 5, 5, 5, 5, 5, 5, 7, 9, 9, 9};
    double q2[9];
    assert_int_equal(gan_knn_radii2(p, 9, 3, 3, q2, &err), 0);
    for (int i = 0; i < 4; i++)
        assert_true(q2[i] == 0.0);
    for (int i = 4; i < 7; i++)
        assert_true(q2[i] == 4.0); /* two copies at 0, then (5, 5, 7) at 2 */
    assert_true(q2[7] == 4.0);     /* (5, 5, 7): the three copies at 2 */
    assert_true(q2[8] == 48.0);    /* (9, 9, 9): 36 to (5, 5, 7), then 48 three times */
}

/* Clustered data over several tiles (1024 rows each), against the brute force. */
static void test_radii_reference(void **state)
{
    (void)state;
    lcg_seed(6);
    const int n = 2300, d = 16;
    float *x = clustered(n, d, 12, 8.0, 30.0, 1.0, 3, NULL);
    double *got = xmalloc((size_t)n * sizeof *got), *want = xmalloc((size_t)n * sizeof *want);
    gan_error err = {0};
    assert_int_equal(gan_knn_radii2(x, n, d, 3, got, &err), 0);
    ref_radii2(x, n, d, 3, want);
    for (int i = 0; i < n; i++)
        assert_close(got[i], want[i], 1e-12 * want[i]);
    free(x);
    free(got);
    free(want);
}

/* ---- precision and recall ------------------------------------------------- */

static void pr(const float *gen, int ng, const float *real, int nr, int d, int k, double *p,
               double *r)
{
    double *rg = xmalloc((size_t)ng * sizeof *rg), *rr = xmalloc((size_t)nr * sizeof *rr);
    gan_error err = {0};
    assert_int_equal(gan_knn_radii2(gen, ng, d, k, rg, &err), 0);
    assert_int_equal(gan_knn_radii2(real, nr, d, k, rr, &err), 0);
    assert_int_equal(gan_precision_recall(gen, rg, ng, real, rr, nr, d, p, r, &err), 0);
    free(rg);
    free(rr);
}

/* The same set on both sides, with duplicates in it: every point is in its twin's ball. */
static void test_pr_identical(void **state)
{
    (void)state;
    lcg_seed(7);
    const int n = 1500, d = 32;
    float *x = clustered(n, d, 10, 10.0, 0.0, 1.0, 5, NULL);
    for (int i = 0; i < 40; i++) /* 40 points copied 4 times over: radius 0 */
        memcpy(x + (size_t)(1000 + i) * d, x + (size_t)(i % 10) * d, (size_t)d * sizeof *x);
    double p = -1, r = -1;
    pr(x, n, x, n, d, 3, &p, &r);
    assert_true(p == 1.0);
    assert_true(r == 1.0);
    free(x);
}

/* Far-apart clusters: nobody is in anybody's ball. */
static void test_pr_disjoint(void **state)
{
    (void)state;
    lcg_seed(8);
    const int d = 16;
    float *real = clustered(600, d, 5, 10.0, 0.0, 1.0, 11, NULL);
    float *gen = clustered(500, d, 5, 10.0, 500.0, 1.0, 12, NULL);
    double p = -1, r = -1;
    pr(gen, 500, real, 600, d, 3, &p, &r);
    assert_true(p == 0.0);
    assert_true(r == 0.0);
    free(real);
    free(gen);
}

/*
 * Four far-apart real clusters; the generated set covers two of them. As
 * copies of those clusters' real points: precision 1 and recall ½ exactly.
 * As fresh draws from the same two clusters: a perfect generator of them,
 * yet k = 3 balls in 8 dimensions miss some draws (precision 0.88 here) and
 * recall falls below ½ by as much (0.43), never above it.
 */
static void test_pr_half_the_clusters(void **state)
{
    (void)state;
    lcg_seed(9);
    const int nr = 800, d = 8;
    int *label = xmalloc(nr * sizeof *label);
    float *real = clustered(nr, d, 4, 200.0, 0.0, 1.0, 13, label);
    float *gen = xmalloc((size_t)nr * d * sizeof *gen);
    int ng = 0;
    for (int i = 0; i < nr; i++)
        if (label[i] < 2)
            memcpy(gen + (size_t)ng++ * d, real + (size_t)i * d, (size_t)d * sizeof *gen);
    assert_int_equal(ng, nr / 2);
    double p = -1, r = -1;
    pr(gen, ng, real, nr, d, 3, &p, &r);
    assert_true(p == 1.0);
    assert_true(r == 0.5);

    /* fresh draws: the same centres (seed 13), the generator's own noise */
    float *fresh = clustered(nr, d, 4, 200.0, 0.0, 1.0, 13, label);
    ng = 0;
    for (int i = 0; i < nr; i++)
        if (label[i] < 2)
            memcpy(gen + (size_t)ng++ * d, fresh + (size_t)i * d, (size_t)d * sizeof *gen);
    pr(gen, ng, real, nr, d, 3, &p, &r);
    assert_true(p > 0.8 && p < 1.0); /* 0.88: k = 3 balls miss some fresh draws */
    assert_true(r > 0.4 && r < 0.5);
    free(label);
    free(real);
    free(gen);
    free(fresh);
}

/*
 * The line of test_radii_line_and_duplicates as the real set (radii 3 at the
 * ends, 2 inside). Generated points: 1.5 above an inner point (inside), 2
 * above it (on the sphere: inside, balls are closed), 2.5 above (outside),
 * 2.9 above an end point (inside its radius 3), 3 beyond an end on the line
 * (on the sphere). With k = 2 the inner radii would be 1 and the ends' 2:
 * none of them inside. Precision 4/5, and recall is precision with the
 * roles swapped.
 */
static void test_pr_line(void **state)
{
    (void)state;
    float real[20];
    for (int i = 0; i < 10; i++) {
        real[2 * i] = (float)i;
        real[2 * i + 1] = 0;
    }
    const float gen[10] = {4, 1.5f, 4, 2, 4, 2.5f, 0, 2.9f, -3, 0};
    double p = -1, r = -1, p2 = -1, r2 = -1;
    pr(gen, 5, real, 10, 2, 3, &p, &r);
    assert_true(p == 0.8);
    pr(real, 10, gen, 5, 2, 3, &p2, &r2);
    assert_true(r2 == p);
    assert_true(p2 == r);
    pr(gen, 5, real, 10, 2, 2, &p, &r);
    assert_true(p == 0.0);

    /* the whole evaluation uses k = 3 too */
    float probs[10 * 10] = {0};
    for (int i = 0; i < 10; i++)
        probs[i * 10 + i] = 1;
    gan_error err = {0};
    gan_sample_reference *ref = gan_sample_reference_new(probs, real, 10, 2, &err);
    assert_non_null(ref);
    gan_sample_metrics m;
    assert_int_equal(gan_sample_metrics_compute(ref, probs, gen, 5, 2, &m, &err), 0);
    assert_true(m.precision == 0.8);
    assert_true(m.recall == p2);
    gan_sample_reference_free(ref);
}

/* Overlapping clusters of different spread over several tiles, against the brute force. */
static void test_pr_reference(void **state)
{
    (void)state;
    lcg_seed(10);
    const int nr = 1500, ng = 1100, d = 12;
    float *real = clustered(nr, d, 8, 6.0, 20.0, 1.0, 21, NULL);
    float *gen = clustered(ng, d, 6, 6.0, 20.0, 0.7, 21, NULL); /* 6 of the 8, tighter */
    double *rr = xmalloc((size_t)nr * sizeof *rr), *rg = xmalloc((size_t)ng * sizeof *rg);
    ref_radii2(real, nr, d, 3, rr);
    ref_radii2(gen, ng, d, 3, rg);
    double p = -1, r = -1;
    gan_error err = {0};
    assert_int_equal(gan_precision_recall(gen, rg, ng, real, rr, nr, d, &p, &r, &err), 0);
    double want_p = ref_coverage(gen, ng, real, rr, nr, d);
    double want_r = ref_coverage(real, nr, gen, rg, ng, d);
    assert_true(want_p > 0.2 && want_p < 1.0); /* a case where the counts mean something */
    assert_true(want_r > 0.2 && want_r < 0.9);
    assert_true(p == want_p);
    assert_true(r == want_r);
    /* one output is enough */
    double p_only = -1;
    assert_int_equal(gan_precision_recall(gen, rg, ng, real, rr, nr, d, &p_only, NULL, &err), 0);
    assert_true(p_only == p);
    free(real);
    free(gen);
    free(rr);
    free(rg);
}

/* ---- class statistics ----------------------------------------------------- */

static void test_class_histogram(void **state)
{
    (void)state;
    float probs[5 * 10] = {0};
    probs[0 * 10 + 2] = 1.0f; /* class 2, top 1 */
    probs[1 * 10 + 3] = 0.5f; /* a tie of 3 and 7: the lower index, top 0.5 */
    probs[1 * 10 + 7] = 0.5f;
    for (int c = 0; c < 10; c++)
        probs[2 * 10 + c] = 0.1f; /* uniform: class 0, top 0.1 */
    probs[3 * 10 + 9] = 0.625f;   /* class 9, top 0.625 */
    probs[3 * 10 + 1] = 0.375f;
    probs[4 * 10 + 9] = 0.75f; /* class 9 again */
    probs[4 * 10 + 0] = 0.25f;
    int h[10];
    double top = -1;
    gan_error err = {0};
    assert_int_equal(gan_class_histogram(probs, 5, h, &top, &err), 0);
    const int want[10] = {1, 0, 1, 1, 0, 0, 0, 0, 0, 2};
    for (int c = 0; c < 10; c++)
        assert_int_equal(h[c], want[c]);
    assert_close(top, (1 + 0.5 + (double)0.1f + 0.625 + 0.75) / 5, 1e-15);
    assert_int_equal(gan_class_histogram(probs, 5, h, NULL, &err), 0);
}

static void test_class_modes(void **state)
{
    (void)state;
    const int real[10] = {100, 100, 100, 100, 100, 100, 100, 100, 100, 100};
    /* a quarter of a 10% share is 25 of 1,000: class 0 exactly at it counts, 24 and 0 do not */
    const int gen[10] = {25, 24, 0, 351, 100, 100, 100, 100, 100, 100};
    assert_int_equal(gan_class_modes(gen, real), 8);
    assert_int_equal(gan_class_modes(real, real), 10);
    /* shares, not counts: twice the images need twice the count */
    const int gen2[10] = {50, 49, 0, 701, 200, 200, 200, 200, 200, 200};
    assert_int_equal(gan_class_modes(gen2, real), 8);
    /* a class the real images never show is no mode; real shares uneven */
    const int real3[10] = {0, 10, 40, 50, 100, 100, 100, 100, 100, 400};
    const int gen3[10] = {500, 3, 10, 12, 0, 0, 0, 0, 0, 475};
    /* N_g = N_r = 1000: class 1 needs 2.5 (3 ok), 2 needs 10 (ok), 3 needs 12.5 (12 not), 9 ok */
    assert_int_equal(gan_class_modes(gen3, real3), 3);
    const int none[10] = {0};
    assert_int_equal(gan_class_modes(none, real), 0);
}

static void test_class_kl(void **state)
{
    (void)state;
    const int real[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const int gen[10] = {3, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    /* add-one smoothing: p = (4, 1, ..., 1)/13, q = (2, ..., 2)/20 */
    double want = 4.0 / 13 * log((4.0 / 13) / 0.1) + 9 * (1.0 / 13) * log((1.0 / 13) / 0.1);
    assert_close(gan_class_kl(gen, real), want, 1e-15);
    assert_close(gan_class_kl(real, real), 0, 1e-15);
    /* an empty real bin is finite, and the divergence is not symmetric */
    double back = gan_class_kl(real, gen);
    assert_true(isfinite(back) && back > 0 && fabs(back - want) > 1e-3);
    const int big[10] = {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000};
    assert_close(gan_class_kl(big, real), 0, 1e-15); /* equal shares, smoothed alike */
}

/* ---- everything at once --------------------------------------------------- */

/* Probabilities peaked on each point's cluster (cluster % 10), rows summing to 1. */
static float *cluster_probs(const int *label, int n, double peak)
{
    float *p = xmalloc((size_t)n * 10 * sizeof *p);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 10; c++)
            p[i * 10 + c] = (float)(c == label[i] % 10 ? peak : (1 - peak) / 9);
    return p;
}

static void test_metrics_all(void **state)
{
    (void)state;
    lcg_seed(12);
    const int nr = 700, ng = 500, d = 24;
    int *lr = xmalloc(nr * sizeof *lr), *lg = xmalloc(ng * sizeof *lg);
    float *real = clustered(nr, d, 10, 8.0, 0.0, 1.0, 31, lr);
    float *gen = clustered(ng, d, 7, 8.0, 0.0, 1.2, 31, lg); /* classes 7..9 missing */
    float *pr_ = cluster_probs(lr, nr, 0.91), *pg = cluster_probs(lg, ng, 0.82);
    gan_error err = {0};
    /* the reference keeps copies: what it was made from is overwritten and freed */
    float *scratch = xmalloc((size_t)nr * d * sizeof *scratch);
    memcpy(scratch, real, (size_t)nr * d * sizeof *scratch);
    gan_sample_reference *ref = gan_sample_reference_new(pr_, scratch, nr, d, &err);
    assert_non_null(ref);
    memset(scratch, 0, (size_t)nr * d * sizeof *scratch);
    free(scratch);
    assert_int_equal(gan_sample_reference_count(ref), nr);
    assert_int_equal(gan_sample_reference_dims(ref), d);

    gan_sample_metrics m;
    memset(&m, 0xff, sizeof m);
    assert_int_equal(gan_sample_metrics_compute(ref, pg, gen, ng, d, &m, &err), 0);
    assert_int_equal(m.generated, ng);
    assert_int_equal(m.real, nr);

    /* each number as the parts give it */
    gan_moments mr, mg;
    assert_int_equal(gan_moments_compute(real, nr, d, &mr, &err), 0);
    assert_int_equal(gan_moments_compute(gen, ng, d, &mg, &err), 0);
    const gan_moments *kept = gan_sample_reference_moments(ref);
    for (int q = 0; q < d * d; q++)
        assert_true(kept->cov[q] == mr.cov[q]);
    assert_true(m.fid == fd_of(&mr, &mg));
    assert_true(m.fid > 1);
    double p, r;
    pr(gen, ng, real, nr, d, GAN_SAMPLE_K, &p, &r);
    assert_true(m.precision == p);
    assert_true(m.recall == r);
    assert_true(r < 0.8); /* three of ten clusters never generated */
    int hr[10], hg[10];
    double top;
    assert_int_equal(gan_class_histogram(pr_, nr, hr, NULL, &err), 0);
    assert_int_equal(gan_class_histogram(pg, ng, hg, &top, &err), 0);
    const int *kept_h = gan_sample_reference_histogram(ref);
    for (int c = 0; c < 10; c++) {
        assert_int_equal(kept_h[c], hr[c]);
        assert_int_equal(m.histogram[c], hg[c]);
    }
    assert_int_equal(m.modes, 7);
    assert_int_equal(m.modes, gan_class_modes(hg, hr));
    assert_true(m.kl == gan_class_kl(hg, hr));
    assert_close(m.mean_top_prob, (double)0.82f, 1e-12);

    /* the JSON fields */
    cJSON *o = cJSON_CreateObject();
    assert_int_equal(gan_sample_metrics_add_cjson(&m, o), 0);
    const char *names[] = {"fid", "precision", "recall", "modes", "kl", "mean_top_prob"};
    const double values[] = {m.fid, m.precision, m.recall, m.modes, m.kl, m.mean_top_prob};
    char *text = cJSON_PrintUnformatted(o);
    cJSON *back = cJSON_Parse(text);
    for (int i = 0; i < 6; i++) { /* printed exactly: they read back as the same doubles */
        cJSON *v = cJSON_GetObjectItemCaseSensitive(back, names[i]);
        assert_true(cJSON_IsNumber(v));
        assert_true(v->valuedouble == values[i]);
    }
    cJSON *h = cJSON_GetObjectItemCaseSensitive(back, "histogram");
    assert_true(cJSON_IsArray(h));
    assert_int_equal(cJSON_GetArraySize(h), 10);
    for (int c = 0; c < 10; c++)
        assert_int_equal(cJSON_GetArrayItem(h, c)->valueint, m.histogram[c]);
    assert_true(cJSON_GetObjectItemCaseSensitive(back, "fid")->valuedouble == m.fid);
    assert_int_equal(cJSON_GetArraySize(back), 7);
    free(text);
    cJSON_Delete(back);
    cJSON_Delete(o);

    /* the real set against itself */
    assert_int_equal(gan_sample_metrics_compute(ref, pr_, real, nr, d, &m, &err), 0);
    assert_true(m.fid < 1e-9);
    assert_true(m.precision == 1.0 && m.recall == 1.0);
    assert_int_equal(m.modes, 10);
    assert_close(m.kl, 0, 1e-15);

    gan_moments_free(&mr);
    gan_moments_free(&mg);
    gan_sample_reference_free(ref);
    gan_sample_reference_free(NULL);
    free(lr);
    free(lg);
    free(real);
    free(gen);
    free(pr_);
    free(pg);
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

#define EXPECT_NULL_FIELD(call, name)                                                              \
    do {                                                                                           \
        gan_error e_ = {0};                                                                        \
        gan_error *err = &e_;                                                                      \
        assert_null((call));                                                                       \
        assert_string_equal(e_.field, (name));                                                     \
        assert_non_null(strstr(e_.message, (name)));                                               \
    } while (0)

static void test_bad_inputs(void **state)
{
    (void)state;
    enum { N = 6, D = 3 };
    float x[N * D], probs[N * 10] = {0};
    for (int i = 0; i < N * D; i++)
        x[i] = (float)(i % 7) * 0.5f + (float)(i / 5);
    for (int i = 0; i < N; i++)
        probs[i * 10 + i % 10] = 1;
    double r2[N];
    gan_moments m, m2;
    double fd;
    int h[10];

    EXPECT_FIELD(gan_moments_compute(x, 1, D, &m, err), "n");
    EXPECT_FIELD(gan_moments_compute(x, N, 0, &m, err), "d");
    EXPECT_FIELD(gan_moments_compute(NULL, N, D, &m, err), "x");
    EXPECT_FIELD(gan_moments_compute(x, N, D, NULL, err), "out");
    EXPECT_FIELD(gan_knn_radii2(x, 3, D, 3, r2, err), "n"); /* n must exceed k */
    EXPECT_FIELD(gan_knn_radii2(x, N, D, 0, r2, err), "k");
    EXPECT_FIELD(gan_knn_radii2(x, N, D, 3, NULL, err), "radius2");
    EXPECT_FIELD(gan_class_histogram(probs, 0, h, NULL, err), "n");
    EXPECT_FIELD(gan_class_histogram(NULL, N, h, NULL, err), "probs");

    gan_error e = {0};
    assert_int_equal(gan_moments_compute(x, N, D, &m, &e), 0);
    assert_int_equal(gan_moments_compute(x, N, 2, &m2, &e), 0); /* other dimensions */
    EXPECT_FIELD(gan_frechet_distance(&m, &m2, &fd, err), "b");
    EXPECT_FIELD(gan_frechet_distance(NULL, &m, &fd, err), "a");
    EXPECT_FIELD(gan_frechet_distance(&m, &m, NULL, err), "fd");
    m.cov[4] = NAN;
    EXPECT_FIELD(gan_frechet_distance(&m, &m, &fd, err), "a");
    gan_moments_free(&m);
    gan_moments_free(&m2);

    assert_int_equal(gan_knn_radii2(x, N, D, 3, r2, &e), 0);
    EXPECT_FIELD(gan_precision_recall(x, r2, 0, x, r2, N, D, NULL, NULL, err), "ng");
    EXPECT_FIELD(gan_precision_recall(x, r2, N, NULL, r2, N, D, NULL, NULL, err), "real");
    r2[2] = -1;
    EXPECT_FIELD(gan_precision_recall(x, r2, N, x, r2, N, D, NULL, NULL, err), "gen_radius2");
    r2[2] = INFINITY;
    EXPECT_FIELD(gan_precision_recall(x, r2, N, x, r2, N, D, NULL, NULL, err), "gen_radius2");
    r2[2] = 1;

    /* a diverged generator: non-finite or enormous features, named with their row */
    x[7] = NAN;
    EXPECT_FIELD(gan_moments_compute(x, N, D, &m, err), "x");
    EXPECT_FIELD(gan_knn_radii2(x, N, D, 3, r2, err), "x");
    EXPECT_FIELD(gan_precision_recall(x, r2, N, x, r2, N, D, NULL, NULL, err), "gen");
    x[7] = 1e30f;
    EXPECT_FIELD(gan_moments_compute(x, N, D, &m, err), "x");
    x[7] = 1;

    /* not probabilities: a row that does not sum to 1, a negative value (logits), a NaN */
    probs[13] = 1;
    EXPECT_FIELD(gan_class_histogram(probs, N, h, NULL, err), "probs");
    probs[13] = 0;
    probs[12] = -0.5f;
    probs[13] = 0.5f;
    EXPECT_FIELD(gan_class_histogram(probs, N, h, NULL, err), "probs");
    probs[12] = NAN;
    EXPECT_FIELD(gan_class_histogram(probs, N, h, NULL, err), "probs");
    probs[12] = 0;
    probs[13] = 0;

    /* the reference and the evaluation */
    EXPECT_NULL_FIELD(gan_sample_reference_new(probs, x, 3, D, err), "n");
    EXPECT_NULL_FIELD(gan_sample_reference_new(NULL, x, N, D, err), "probs");
    EXPECT_NULL_FIELD(gan_sample_reference_new(probs, NULL, N, D, err), "features");
    EXPECT_NULL_FIELD(gan_sample_reference_new(probs, x, N, 0, err), "d");
    x[4] = INFINITY;
    EXPECT_NULL_FIELD(gan_sample_reference_new(probs, x, N, D, err), "features");
    x[4] = 2;
    probs[5] = 0.5f;
    EXPECT_NULL_FIELD(gan_sample_reference_new(probs, x, N, D, err), "probs");
    probs[5] = 0;
    gan_sample_reference *ref = gan_sample_reference_new(probs, x, N, D, &e);
    assert_non_null(ref);
    gan_sample_metrics sm;
    EXPECT_FIELD(gan_sample_metrics_compute(NULL, probs, x, N, D, &sm, err), "reference");
    EXPECT_FIELD(gan_sample_metrics_compute(ref, probs, x, N, D, NULL, err), "out");
    EXPECT_FIELD(gan_sample_metrics_compute(ref, probs, x, N, 2, &sm, err), "d");
    EXPECT_FIELD(gan_sample_metrics_compute(ref, probs, x, 3, D, &sm, err), "n");
    EXPECT_FIELD(gan_sample_metrics_compute(ref, NULL, x, N, D, &sm, err), "probs");
    EXPECT_FIELD(gan_sample_metrics_compute(ref, probs, NULL, N, D, &sm, err), "features");
    x[0] = NAN;
    EXPECT_FIELD(gan_sample_metrics_compute(ref, probs, x, N, D, &sm, err), "features");
    x[0] = 0;
    assert_int_equal(gan_sample_metrics_compute(ref, probs, x, N, D, &sm, NULL), 0);
    assert_int_equal(gan_sample_metrics_add_cjson(&sm, NULL), -1);
    gan_sample_reference_free(ref);

    /* a NULL error pointer is allowed */
    assert_int_equal(gan_moments_compute(x, 1, D, &m, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moments_known),
        cmocka_unit_test(test_moments_blocks),
        cmocka_unit_test(test_fd_diagonal),
        cmocka_unit_test(test_fd_commuting),
        cmocka_unit_test(test_fd_noncommuting),
        cmocka_unit_test(test_fd_samples),
        cmocka_unit_test(test_radii_line_and_duplicates),
        cmocka_unit_test(test_radii_reference),
        cmocka_unit_test(test_pr_identical),
        cmocka_unit_test(test_pr_disjoint),
        cmocka_unit_test(test_pr_half_the_clusters),
        cmocka_unit_test(test_pr_line),
        cmocka_unit_test(test_pr_reference),
        cmocka_unit_test(test_class_histogram),
        cmocka_unit_test(test_class_modes),
        cmocka_unit_test(test_class_kl),
        cmocka_unit_test(test_metrics_all),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
