/*
 * bench/bench_evaluation.c — what one evaluation of a generator costs on this
 * machine, step by step, as the daemon's worker runs it: generating the
 * samples (gan_generate_many: G's host forward pass, the same pixels on
 * every CPU), the digit classifier over them (gan_classifier_forward, on the
 * backend), the sample metrics against the held-out reference
 * (gan_sample_metrics_compute), and, apart, the reference itself (made once
 * per data set) and the Parzen estimate (only evaluate_every and requests).
 *
 * G has the preset's shape and its initial weights: the cost does not depend
 * on what G has learned. The ceiling: the same matrix products as one sgemm
 * each (G's two layers, the classifier's three), so "× sgemm" says how far
 * the reproducible host pass and the classifier are from the BLAS rate. A
 * benchmark prints numbers; it asserts nothing. Usage:
 *   bench_evaluation [--samples N] [--preset NAME] [--classifier FILE] [--parzen]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "gan/classifier.h"
#include "gan/evaluate.h"
#include "gan/sample_metrics.h"
#include "gan/trainer.h"
#include "kernels/backend.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, const gan_error *err)
{
    fprintf(stderr, "bench_evaluation: %s: %s\n", what, err ? err->message : "out of memory");
    exit(1);
}

/* Seconds of one row-major sgemm m × n × k (the best of three). */
static double sgemm_seconds(int m, int n, int k)
{
    float *a = calloc((size_t)m * k, sizeof(float)), *b = calloc((size_t)k * n, sizeof(float));
    float *c = calloc((size_t)m * n, sizeof(float));
    if (!a || !b || !c)
        die("sgemm", NULL);
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
        t = now() - t;
        if (t < best)
            best = t;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"samples", required_argument, NULL, 's'},
                                         {"preset", required_argument, NULL, 'p'},
                                         {"classifier", required_argument, NULL, 'c'},
                                         {"parzen", no_argument, NULL, 'z'},
                                         {NULL, 0, NULL, 0}};
    int n = 10000;
    const char *preset = "seed";
    const char *classifier = GAND_SOURCE_DATADIR "/mnist-classifier.safetensors";
    bool parzen = false;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 's')
            n = atoi(optarg);
        else if (c == 'p')
            preset = optarg;
        else if (c == 'c')
            classifier = optarg;
        else if (c == 'z')
            parzen = true;
        else
            return 2;
    }
    if (n < 4 || n > 100000) {
        fprintf(stderr, "bench_evaluation: --samples must be in 4..100000\n");
        return 2;
    }
    gan_error err;
    gan_config cfg;
    if (gan_config_preset(&cfg, preset, &err) != 0)
        die("--preset", &err);
    gan_classifier cl;
    if (gan_classifier_load(classifier, &cl, &err) != 0)
        die("--classifier", &err);
    gan_dataset train, test;
    if (gan_idx_load_images(GAND_SOURCE_DATADIR "/mnist-train-images-idx3-ubyte.gz", &train,
                            &err) != 0 ||
        gan_idx_load_images(GAND_SOURCE_DATADIR "/mnist-t10k-images-idx3-ubyte.gz", &test, &err) !=
            0)
        die("data", &err);
    gan_split split;
    gan_split_make(train.count, 10000, test.count, &split, &err);
    char why[256];
    gk_backend *be = gk_backend_open("cpu", why, sizeof why);
    if (!be) {
        fprintf(stderr, "bench_evaluation: %s\n", why);
        return 1;
    }

    /* G's initial weights, from a trainer on a slice of the digits */
    gan_dataset slice = train;
    slice.count = cfg.batch_size;
    gan_trainer *t = gan_trainer_new(be, &cfg, &slice, &err);
    float *g = malloc(gan_generator_param_count(&cfg) * sizeof(float));
    if (!t || !g || gan_trainer_download_sampler(t, g, &err) != 0)
        die("generator", &err);
    gan_trainer_free(t);

    float *images = malloc((size_t)n * GAN_IMAGE_PIXELS * sizeof(float));
    float *probs = malloc((size_t)n * GAN_CLASSIFIER_CLASSES * sizeof(float));
    float *feat = malloc((size_t)n * GAN_CLASSIFIER_FEATURES * sizeof(float));
    if (!images || !probs || !feat)
        die("buffers", NULL);

    double t0 = now();
    gan_eval_classifier judge;
    if (gan_eval_classifier_prepare(be, &cl, &train, &test, &split, &judge, &err) != 0)
        die("reference", &err);
    double t_ref = now() - t0;

    t0 = now();
    if (gan_generate_many(&cfg, g, n, 0, GK_PURPOSE_EVAL, images, &err) != 0)
        die("generate", &err);
    double t_gen = now() - t0;
    t0 = now();
    if (gan_classifier_forward(be, &cl, images, n, probs, feat, &err) != 0)
        die("classifier", &err);
    double t_cls = now() - t0;
    gan_sample_metrics m;
    t0 = now();
    if (gan_sample_metrics_compute(judge.reference, probs, feat, n, GAN_CLASSIFIER_FEATURES, &m,
                                   &err) != 0)
        die("metrics", &err);
    double t_met = now() - t0;
    double t_pz = 0;
    if (parzen) {
        gan_parzen_result pr;
        t0 = now();
        if (gan_evaluate_images(be, images, n, &train, &test, &split, &pr, &err) != 0)
            die("parzen", &err);
        t_pz = now() - t0;
    }

    double c_gen = sgemm_seconds(n, cfg.g_hidden, cfg.latent_dim) +
                   sgemm_seconds(n, cfg.g_hidden, cfg.g_hidden) +
                   sgemm_seconds(n, GAN_IMAGE_PIXELS, cfg.g_hidden);
    double c_cls = sgemm_seconds(n, GAN_CLASSIFIER_HIDDEN, GAN_IMAGE_PIXELS) +
                   sgemm_seconds(n, GAN_CLASSIFIER_FEATURES, GAN_CLASSIFIER_HIDDEN) +
                   sgemm_seconds(n, GAN_CLASSIFIER_CLASSES, GAN_CLASSIFIER_FEATURES);

    printf("one evaluation of %d samples, preset %s (G %d→%d→%d→784), on %s\n", n, preset,
           cfg.latent_dim, cfg.g_hidden, cfg.g_hidden, be->device);
    printf("| step | seconds | the same products as sgemm | × sgemm |\n| --- | ---: | ---: | ---: "
           "|\n");
    printf("| generate (host G, reproducible) | %.3f | %.3f | %.1f |\n", t_gen, c_gen,
           t_gen / c_gen);
    printf("| classifier forward | %.3f | %.3f | %.1f |\n", t_cls, c_cls, t_cls / c_cls);
    printf("| sample metrics (FD, precision, recall, classes) | %.3f | – | – |\n", t_met);
    printf("| **a watch evaluation, all three** | **%.3f** | | |\n", t_gen + t_cls + t_met);
    printf("| reference of the %d test images (once per data set) | %.3f | – | – |\n",
           split.test_end - split.test_begin, t_ref);
    if (parzen)
        printf("| Parzen estimate (evaluate_every, requests) | %.3f | – | – |\n", t_pz);
    printf("metrics of untrained G: fid %.1f, %d modes, precision %.3f, recall %.3f\n", m.fid,
           m.modes, m.precision, m.recall);

    gan_eval_classifier_release(&judge);
    gan_classifier_free(&cl);
    free(images);
    free(probs);
    free(feat);
    free(g);
    gan_dataset_free(&train);
    gan_dataset_free(&test);
    gk_backend_close(be);
    return 0;
}
