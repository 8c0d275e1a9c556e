/*
 * bench/bench_sample_metrics.c — one evaluation's sample metrics
 * (gan/sample_metrics.c) against the sgemm rate at the same shapes.
 *
 * Synthetic but structured data stand in for the classifier's output: real
 * features from 10 Gaussian clusters in d dimensions, generated ones from 9
 * of them with unequal weights and centres shifted by 0.1·N(0, I), so that
 * precision and recall come out near ½, neither all-in nor all-out; class
 * probabilities peaked on each point's cluster. The real reference
 * (moments, k-NN radii, histogram) is prepared and timed apart, since an
 * evaluation reuses it; then gan_sample_metrics_compute is timed whole and
 * in its parts (the public functions it is made of, one by one).
 *
 * The ceiling: almost all of the arithmetic is the distance tiles' sgemms —
 * ng² for the generated radii plus ng·nr for precision/recall, 2·d flops
 * each. The same sgemms (1024 × 1024 tiles, k = d) are replayed alone, and
 * the evaluation's rate over those flops is reported as a ratio to theirs:
 * 1 would mean the scans, the exact recomputations and the moments were
 * free. On a shared machine other OpenMP programs inflate every time —
 * the moments' many small BLAS and LAPACK calls most, each a parallel
 * region whose barrier waits for a descheduled thread — and the ratio, both
 * sides timed in the same run, least. A benchmark prints numbers; it
 * asserts nothing. Usage:
 *   bench_sample_metrics [--gen N] [--real N] [--dims D] [--repeats R]
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "gan/sample_metrics.h"

enum { TILE = 1024, CLUSTERS = 10 };

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t lcg = 12345;
static double urand(void)
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)((lcg >> 11) & ((1ULL << 53) - 1)) / 9007199254740992.0;
}
static double nrand(void)
{
    double u = 1.0 - urand(), v = urand();
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/*
 * n points: cluster c drawn with weight w[c] around centre[c] + shift·N(0, I)
 * (one shift per cluster), spread sigma; probabilities 0.9 on the cluster.
 */
static void make_set(int n, int d, const double *centre, const double *w, double shift,
                     double sigma, float *x, float *probs)
{
    double *off = malloc((size_t)CLUSTERS * d * sizeof *off), total = 0;
    for (int i = 0; i < CLUSTERS * d; i++)
        off[i] = centre[i] + shift * nrand();
    for (int c = 0; c < CLUSTERS; c++)
        total += w[c];
    for (int i = 0; i < n; i++) {
        double u = urand() * total;
        int c = 0;
        while (c < CLUSTERS - 1 && (u -= w[c]) >= 0)
            c++;
        for (int k = 0; k < d; k++)
            x[(size_t)i * d + k] = (float)(off[c * d + k] + sigma * nrand());
        for (int q = 0; q < CLUSTERS; q++)
            probs[(size_t)i * CLUSTERS + q] = q == c ? 0.91f : 0.01f;
    }
    free(off);
}

/* The distance sgemms of one evaluation, alone: seconds. */
static double time_tiles(const float *gen, int ng, const float *real, int nr, int d, float *dist)
{
    double t0 = now();
    for (int pass = 0; pass < 2; pass++) { /* generated × generated, generated × real */
        const float *b = pass ? real : gen;
        int nb = pass ? nr : ng;
        for (int i0 = 0; i0 < ng; i0 += TILE)
            for (int j0 = 0; j0 < nb; j0 += TILE) {
                int ri = ng - i0 < TILE ? ng - i0 : TILE, rj = nb - j0 < TILE ? nb - j0 : TILE;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ri, rj, d, -2.0f,
                            gen + (size_t)i0 * d, d, b + (size_t)j0 * d, d, 0.0f, dist, rj);
            }
    }
    return now() - t0;
}

static void die(const char *what, const gan_error *err)
{
    fprintf(stderr, "bench_sample_metrics: %s: %s (%s)\n", what, err->message, err->field);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of r timings (sorted in place). */
static double median(double *t, int r)
{
    qsort(t, (size_t)r, sizeof *t, cmp_double);
    return r % 2 ? t[r / 2] : 0.5 * (t[r / 2 - 1] + t[r / 2]);
}

int main(int argc, char **argv)
{
    int ng = 10000, nr = 10000, d = 128, repeats = 5;
    static const struct option opts[] = {{"gen", required_argument, NULL, 'g'},
                                         {"real", required_argument, NULL, 'r'},
                                         {"dims", required_argument, NULL, 'd'},
                                         {"repeats", required_argument, NULL, 'R'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'g':
            ng = atoi(optarg);
            break;
        case 'r':
            nr = atoi(optarg);
            break;
        case 'd':
            d = atoi(optarg);
            break;
        case 'R':
            repeats = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: bench_sample_metrics [--gen N] [--real N] [--dims D] "
                            "[--repeats R]\n");
            return 2;
        }
    }
    if (ng <= GAN_SAMPLE_K || nr <= GAN_SAMPLE_K || d < 1 || repeats < 1 || repeats > 100) {
        fprintf(stderr,
                "bench_sample_metrics: need --gen, --real > %d, --dims ≥ 1, "
                "--repeats in 1..100\n",
                GAN_SAMPLE_K);
        return 2;
    }

    double *centre = malloc((size_t)CLUSTERS * d * sizeof *centre);
    for (int i = 0; i < CLUSTERS * d; i++)
        centre[i] = 1.5 * nrand(); /* clusters ≈ 2√d apart, spread 1: NN radii well inside */
    const double w_real[CLUSTERS] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const double w_gen[CLUSTERS] = {2, 1.5, 1, 1, 1, 1, 0.5, 0.5, 0.25, 0}; /* class 9 missing */
    float *real = malloc((size_t)nr * d * sizeof *real), *pr = malloc((size_t)nr * 10 * sizeof *pr);
    float *gen = malloc((size_t)ng * d * sizeof *gen), *pg = malloc((size_t)ng * 10 * sizeof *pg);
    float *dist = malloc((size_t)TILE * TILE * sizeof *dist);
    double *radius2 = malloc((size_t)ng * sizeof *radius2);
    if (!centre || !real || !pr || !gen || !pg || !dist || !radius2) {
        fprintf(stderr, "bench_sample_metrics: out of memory\n");
        return 1;
    }
    make_set(nr, d, centre, w_real, 0.0, 1.0, real, pr);
    make_set(ng, d, centre, w_gen, 0.1, 1.0, gen, pg);

    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    printf("# gand sample-metrics benchmark\n# %d generated vs %d real points, %d dimensions, "
           "k = %d; %d OpenMP threads, %d BLAS threads (%s)\n# best and median of %d runs\n",
           ng, nr, d, GAN_SAMPLE_K, threads, openblas_get_num_threads(), openblas_get_config(),
           repeats);

    gan_error err;
    double t_ref[100], t_eval[100], t_mom[100], t_rad[100], t_pr[100], t_cls[100], t_gemm[100];
    gan_sample_reference *ref = NULL;
    gan_sample_metrics m;
    for (int r = 0; r < repeats; r++) {
        gan_sample_reference_free(ref);
        double t0 = now();
        ref = gan_sample_reference_new(pr, real, nr, d, &err);
        t_ref[r] = now() - t0;
        if (!ref)
            die("reference", &err);
    }
    /* warm-up: page in the buffers, start the thread pools */
    if (gan_sample_metrics_compute(ref, pg, gen, ng, d, &m, &err) != 0)
        die("metrics", &err);
    time_tiles(gen, ng, real, nr, d, dist);

    /* the ceiling is timed between evaluations, so that both see the same machine */
    for (int r = 0; r < repeats; r++) {
        t_gemm[r] = time_tiles(gen, ng, real, nr, d, dist);
        double t0 = now();
        if (gan_sample_metrics_compute(ref, pg, gen, ng, d, &m, &err) != 0)
            die("metrics", &err);
        t_eval[r] = now() - t0;
    }
    /* the parts; precision/recall takes the real radii, computed here outside the clock */
    double *real_r2 = malloc((size_t)nr * sizeof *real_r2);
    if (!real_r2 || gan_knn_radii2(real, nr, d, GAN_SAMPLE_K, real_r2, &err) != 0)
        die("real radii", &err);
    for (int r = 0; r < repeats; r++) {
        gan_moments mg;
        double fd, p, rc, top;
        int h[GAN_SAMPLE_CLASSES];
        double t0 = now();
        if (gan_moments_compute(gen, ng, d, &mg, &err) != 0 ||
            gan_frechet_distance(gan_sample_reference_moments(ref), &mg, &fd, &err) != 0)
            die("moments", &err);
        gan_moments_free(&mg);
        double t1 = now();
        if (gan_knn_radii2(gen, ng, d, GAN_SAMPLE_K, radius2, &err) != 0)
            die("radii", &err);
        double t2 = now();
        if (gan_precision_recall(gen, radius2, ng, real, real_r2, nr, d, &p, &rc, &err) != 0)
            die("precision/recall", &err);
        double t3 = now();
        if (gan_class_histogram(pg, ng, h, &top, &err) != 0)
            die("histogram", &err);
        (void)gan_class_modes(h, gan_sample_reference_histogram(ref));
        (void)gan_class_kl(h, gan_sample_reference_histogram(ref));
        double t4 = now();
        t_mom[r] = t1 - t0;
        t_rad[r] = t2 - t1;
        t_pr[r] = t3 - t2;
        t_cls[r] = t4 - t3;
    }

    printf("# metrics: fid %.4g, precision %.4f, recall %.4f, modes %d, kl %.4f, "
           "mean_top_prob %.3f\n",
           m.fid, m.precision, m.recall, m.modes, m.kl, m.mean_top_prob);
    const double flops = 2.0 * d * ((double)ng * ng + (double)ng * nr);
    double best_eval = t_eval[0], best_gemm = t_gemm[0];
    for (int r = 1; r < repeats; r++) {
        best_eval = t_eval[r] < best_eval ? t_eval[r] : best_eval;
        best_gemm = t_gemm[r] < best_gemm ? t_gemm[r] : best_gemm;
    }
    struct {
        const char *what;
        double *t;
    } rows[] = {
        {"reference: moments, radii, histogram (once)", t_ref},
        {"evaluation, all metrics", t_eval},
        {"  moments + Fréchet distance", t_mom},
        {"  generated radii", t_rad},
        {"  precision + recall", t_pr},
        {"  class statistics", t_cls},
        {"sgemm ceiling: the evaluation's distance tiles alone", t_gemm},
    };
    printf("| step | best s | median s |\n|---|---:|---:|\n");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        double best = rows[i].t[0];
        for (int r = 1; r < repeats; r++)
            best = rows[i].t[r] < best ? rows[i].t[r] : best;
        printf("| %s | %.3f | %.3f |\n", rows[i].what, best, median(rows[i].t, repeats));
    }
    printf("# distance sgemm flops per evaluation: %.1f G; evaluation %.1f GFLOP/s, sgemm at "
           "these shapes %.1f GFLOP/s; ratio %.2f\n",
           flops / 1e9, flops / best_eval / 1e9, flops / best_gemm / 1e9, best_gemm / best_eval);

    gan_sample_reference_free(ref);
    free(centre);
    free(real);
    free(pr);
    free(gen);
    free(pg);
    free(dist);
    free(radius2);
    free(real_r2);
    return 0;
}
