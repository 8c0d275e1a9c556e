/*
 * tests/unit/test_generate.c — G's host forward pass (gan_generate), which every
 * image a user sees comes from: it computes the network (against a float64
 * reference), the image of a latent vector is the same bits whatever else
 * shares the request and however many threads share the work, and the bits
 * are the ones every x86-64 CPU gives (a fingerprint committed here: run under
 * any OPENBLAS_CORETYPE, on Intel or AMD, AVX2 or AVX-512, it must not move).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/config.h"
#include "gan/trainer.h"
#include "kernels/elementwise.h"

/* A generator whose weights are Philox-uniform in ±range: the same on every machine. */
static float *make_generator(const gan_config *c, float range)
{
    size_t n = gan_generator_param_count(c);
    float *g = malloc(n * sizeof(float));
    assert_non_null(g);
    for (size_t i = 0; i < n; i++)
        g[i] = range * (2.0f * gk_philox_uniform(1234, 99, 0, i) - 1.0f);
    return g;
}

/* Uniform noise in ±√3: integer Philox and one multiply-add, no libm on the way. */
static float *make_noise(const gan_config *c, int n, uint64_t seed)
{
    float *z = malloc((size_t)n * c->latent_dim * sizeof(float));
    assert_non_null(z);
    gan_fill_noise(c, seed, 7, n, z);
    return z;
}

static gan_config config(const char *preset, gan_g_output out, float slope_is_leaky)
{
    gan_config c;
    gan_error err;
    assert_int_equal(gan_config_preset(&c, preset, &err), 0);
    c.g_output = out;
    c.g_activation = slope_is_leaky ? GAN_G_ACT_LEAKY_RELU : GAN_G_ACT_RELU;
    c.noise = GAN_NOISE_UNIFORM;
    return c;
}

/* The same network in float64, straight from its definition. */
static void reference(const gan_config *c, const float *g, const float *z, int n, double *out)
{
    gan_tensor_info ti[6];
    gan_generator_tensors(c, ti);
    int L = c->latent_dim, H = c->g_hidden, P = GAN_IMAGE_PIXELS;
    double slope = gan_config_g_slope(c);
    double *h1 = malloc((size_t)H * sizeof(double)), *h2 = malloc((size_t)H * sizeof(double));
    for (int r = 0; r < n; r++) {
        const float *x = z + (size_t)r * L;
        for (int j = 0; j < H; j++) {
            double s = g[ti[1].offset + j];
            for (int k = 0; k < L; k++)
                s += (double)x[k] * g[ti[0].offset + (size_t)j * L + k];
            h1[j] = s > 0 ? s : slope * s;
        }
        for (int j = 0; j < H; j++) {
            double s = g[ti[3].offset + j];
            for (int k = 0; k < H; k++)
                s += h1[k] * g[ti[2].offset + (size_t)j * H + k];
            h2[j] = s > 0 ? s : slope * s;
        }
        for (int j = 0; j < P; j++) {
            double s = g[ti[5].offset + j];
            for (int k = 0; k < H; k++)
                s += h2[k] * g[ti[4].offset + (size_t)j * H + k];
            s = c->g_output == GAN_G_OUTPUT_SIGMOID ? 1.0 / (1.0 + exp(-s)) : (s > 0 ? s : 0);
            out[(size_t)r * P + j] = s > 1 ? 1 : s;
        }
    }
    free(h1);
    free(h2);
}

static void generate(const gan_config *c, const float *g, const float *z, int n, float *images)
{
    gan_error err;
    assert_int_equal(gan_generate(c, g, z, n, images, &err), 0);
}

static void test_matches_float64_reference(void **state)
{
    (void)state;
    static const struct {
        gan_g_output out;
        int leaky, hidden;
        float range;
    } cases[] = {{GAN_G_OUTPUT_RELU, 0, 1200, 0.05f}, {GAN_G_OUTPUT_SIGMOID, 1, 250, 0.1f}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        gan_config c = config("seed", cases[t].out, cases[t].leaky);
        c.g_hidden = cases[t].hidden; /* 250: units in no multiple of the kernel's 4 */
        float *g = make_generator(&c, cases[t].range);
        int n = 11; /* one full block and a padded one */
        float *z = make_noise(&c, n, 5);
        float *img = malloc((size_t)n * GAN_IMAGE_PIXELS * sizeof(float));
        double *ref = malloc((size_t)n * GAN_IMAGE_PIXELS * sizeof(double));
        generate(&c, g, z, n, img);
        reference(&c, g, z, n, ref);
        double worst = 0, spread = 0;
        for (size_t i = 0; i < (size_t)n * GAN_IMAGE_PIXELS; i++) {
            worst = fmax(worst, fabs(img[i] - ref[i]));
            spread = fmax(spread, ref[i]);
        }
        /* float32 sums of 1,200 terms against float64: a few units of 1e-6 */
        if (worst > 1e-4 || spread < 0.05) {
            fprintf(stderr, "case %zu: max |float32 - float64| = %g, largest pixel %g\n", t, worst,
                    spread);
            fail();
        }
        free(g);
        free(z);
        free(img);
        free(ref);
    }
}

/* Image i of a batch of n is the image of z_i alone, for every n and thread count. */
static void test_rows_do_not_depend_on_the_batch(void **state)
{
    (void)state;
    gan_config c = config("stable", GAN_G_OUTPUT_SIGMOID, 1);
    c.g_hidden = 250;
    float *g = make_generator(&c, 0.1f);
    enum { MAX = 37 };
    float *z = make_noise(&c, MAX, 11);
    size_t P = GAN_IMAGE_PIXELS;
    float *alone = malloc(MAX * P * sizeof(float)), *batch = malloc(MAX * P * sizeof(float));
    for (int i = 0; i < MAX; i++)
        generate(&c, g, z + (size_t)i * c.latent_dim, 1, alone + i * P);
    static const int sizes[] = {2, 3, 7, 8, 9, 16, 17, MAX};
    int threads_before = omp_get_max_threads();
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            int n = sizes[s];
            /* z_0 … z_{n-1} in order, then the same vectors starting at row 1 */
            generate(&c, g, z, n, batch);
            for (int i = 0; i < n; i++)
                if (memcmp(batch + i * P, alone + i * P, P * sizeof(float)) != 0) {
                    fprintf(stderr, "row %d of a batch of %d (%d threads) differs from it alone\n",
                            i, n, threads);
                    fail();
                }
            if (n < MAX) {
                generate(&c, g, z + c.latent_dim, n, batch);
                for (int i = 0; i < n; i++)
                    assert_memory_equal(batch + i * P, alone + (i + 1) * P, P * sizeof(float));
            }
        }
    }
    omp_set_num_threads(threads_before);
    free(g);
    free(z);
    free(alone);
    free(batch);
}

static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/*
 * The exact bits, as every x86-64 CPU computes them. If this moves, either the
 * arithmetic of gan/generate.c changed (then every image a user made moves too:
 * say so, and update the constants), or a machine computes another image for
 * the same z — the bug this test exists for.
 */
static void test_fingerprint_is_the_same_on_every_cpu(void **state)
{
    (void)state;
    static const struct {
        const char *preset;
        gan_g_output out;
        int leaky;
        uint64_t want;
    } cases[] = {
        {"seed", GAN_G_OUTPUT_RELU, 0, 0xa5e5bb7c8a9ae8e3ULL},
        {"stable", GAN_G_OUTPUT_SIGMOID, 1, 0x281fb6b3f886fd7bULL},
    };
    int wrong = 0;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        gan_config c = config(cases[t].preset, cases[t].out, cases[t].leaky);
        float *g = make_generator(&c, 0.08f);
        int n = 20;
        float *z = make_noise(&c, n, 3);
        float *img = malloc((size_t)n * GAN_IMAGE_PIXELS * sizeof(float));
        generate(&c, g, z, n, img);
        uint64_t h =
            fnv1a(img, (size_t)n * GAN_IMAGE_PIXELS * sizeof(float), 0xcbf29ce484222325ULL);
        if (h != cases[t].want) {
            fprintf(stderr, "%s/%s: fingerprint 0x%016llxULL, expected 0x%016llxULL\n",
                    cases[t].preset, gan_g_output_name(cases[t].out), (unsigned long long)h,
                    (unsigned long long)cases[t].want);
            wrong++;
        }
        free(g);
        free(z);
        free(img);
    }
    assert_int_equal(wrong, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_float64_reference),
        cmocka_unit_test(test_rows_do_not_depend_on_the_batch),
        cmocka_unit_test(test_fingerprint_is_the_same_on_every_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
