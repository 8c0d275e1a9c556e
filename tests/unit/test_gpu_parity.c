/*
 * tests/unit/test_gpu_parity.c — training parity of the CUDA backend with
 * the CPU backend: 20 iterations of the reference model from the same seed
 * give losses within 1e-4 relative and weights within 1e-4 relative.
 *
 * Skips (exit 77, shown as SKIP by meson) when CUDA is not built in or no
 * device answers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/config.h"
#include "gan/idx.h"
#include "gan/trainer.h"
#include "kernels/backend.h"

enum { ITERATIONS = 20, BATCH = 64 };

static double rel_diff(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static int run(gk_backend *be, const gan_config *cfg, const gan_dataset *ds, double losses[][4],
               float *g, float *d)
{
    gan_error err;
    gan_trainer *t = gan_trainer_new(be, cfg, ds, &err);
    if (!t) {
        fprintf(stderr, "%s: %s\n", be->ops->name, err.message);
        return -1;
    }
    for (int i = 0; i < ITERATIONS; i++) {
        gan_epoch_metrics m;
        if (gan_trainer_step(t, &err) != 0 || gan_trainer_finish_epoch(t, &m, &err) != 0) {
            fprintf(stderr, "%s: %s\n", be->ops->name, err.message);
            gan_trainer_free(t);
            return -1;
        }
        losses[i][0] = m.d_real;
        losses[i][1] = m.d_fake;
        losses[i][2] = m.g_loss;
        losses[i][3] = m.d_x;
    }
    int rc =
        gan_trainer_download_generator(t, g, &err) | gan_trainer_download_discriminator(t, d, &err);
    gan_trainer_free(t);
    return rc;
}

int main(void)
{
    char why[512];
    if (!strstr(gk_backends_built(), "cuda")) {
        printf("SKIP: gand was built without CUDA (backends: %s)\n", gk_backends_built());
        return 77;
    }
    gk_backend *gpu = gk_backend_open("cuda", why, sizeof why);
    if (!gpu) {
        printf("SKIP: %s\n", why);
        return 77;
    }
    gk_backend *cpu = gk_backend_open("cpu", why, sizeof why);
    const char *root = getenv("GAND_SOURCE_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/data/mnist-10k-images-idx3-ubyte.gz", root ? root : ".");
    gan_dataset ds;
    gan_error err;
    if (gan_idx_load_images(path, &ds, &err) != 0) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    ds.count = BATCH; /* one iteration per epoch: each epoch record is one iteration */
    gan_config cfg;
    gan_config_preset(&cfg, "seed", NULL);
    cfg.batch_size = BATCH;
    size_t gn = gan_generator_param_count(&cfg), dn = gan_discriminator_param_count(&cfg);
    float *g_cpu = malloc(gn * 4), *d_cpu = malloc(dn * 4), *g_gpu = malloc(gn * 4),
          *d_gpu = malloc(dn * 4);
    double l_cpu[ITERATIONS][4], l_gpu[ITERATIONS][4];
    int failed = 0;
    if (run(cpu, &cfg, &ds, l_cpu, g_cpu, d_cpu) != 0 ||
        run(gpu, &cfg, &ds, l_gpu, g_gpu, d_gpu) != 0)
        return 1;
    double worst = 0;
    for (int i = 0; i < ITERATIONS; i++)
        for (int k = 0; k < 4; k++) {
            double r = fabs(l_gpu[i][k] - l_cpu[i][k]) / fmax(fabs(l_cpu[i][k]), 1e-6);
            worst = fmax(worst, r);
            if (r > 1e-4) {
                printf("FAIL iteration %d quantity %d: cpu %.9g cuda %.9g (rel %.3g)\n", i + 1, k,
                       l_cpu[i][k], l_gpu[i][k], r);
                failed = 1;
            }
        }
    double rg = rel_diff(g_gpu, g_cpu, gn), rd = rel_diff(d_gpu, d_cpu, dn);
    printf("losses: worst relative difference %.3g over %d iterations\n", worst, ITERATIONS);
    printf("weights: G %.3g, D %.3g relative (limit 1e-4)\n", rg, rd);
    if (rg > 1e-4 || rd > 1e-4)
        failed = 1;
    printf("%s\n", failed ? "FAIL" : "PASS");
    gk_backend_close(gpu);
    gk_backend_close(cpu);
    gan_dataset_free(&ds);
    free(g_cpu);
    free(d_cpu);
    free(g_gpu);
    free(d_gpu);
    return failed;
}
