/*
 * tests/unit/ops_fixture.h — what the op tests share (test_ops.c,
 * test_ops_training.c): the backend under test, random inputs from a fixed
 * LCG, moving arrays to and from the backend, the comparisons, and running a
 * table of tests on every backend built in (one without a device is skipped
 * with a message). Each test program is one translation unit.
 */
#ifndef GAND_TESTS_OPS_FIXTURE_H
#define GAND_TESTS_OPS_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/elementwise.h"

static gk_backend *be; /* the backend under test (set per group) */

/* ---- helpers ------------------------------------------------------------ */

static uint64_t lcg_state = 12345;
static inline float frand(float lo, float hi)
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (float)((lcg_state >> 40) & 0xFFFFFF) / 16777216.0f;
}

static inline float *rand_vec(size_t n, float lo, float hi)
{
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        v[i] = frand(lo, hi);
    return v;
}

static inline void *dev_from(const void *host, size_t bytes)
{
    void *d = be->ops->alloc(be, bytes);
    assert_non_null(d);
    be->ops->upload(be, d, host, bytes);
    return d;
}

static inline void *host_from(const void *dev, size_t bytes)
{
    void *h = malloc(bytes);
    be->ops->download(be, h, dev, bytes);
    be->ops->synchronize(be);
    return h;
}

/* NMSE = Σ(a−ref)² / Σ ref²; asserts ≤ tol and prints the op on failure */
static inline void expect_close(const char *what, const float *got, const double *ref, size_t n,
                                double tol)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    double nmse = den > 0 ? num / den : num;
    if (!(nmse <= tol)) {
        print_error("%s on %s: NMSE %.3g > %.3g\n", what, be->ops->name, nmse, tol);
        fail();
    }
}

static inline void expect_exact(const char *what, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0) {
            print_error("%s on %s: element %zu is %.9g, want %.9g\n", what, be->ops->name, i,
                        got[i], want[i]);
            fail();
        }
    }
}

/* every one of the n floats at dev (backend memory) is +0 or −0 */
static inline void expect_zero(const char *what, const float *dev, size_t n)
{
    float *got = host_from(dev, n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        if (got[i] != 0.0f) {
            print_error("%s on %s: element %zu is %.9g, want 0\n", what, be->ops->name, i, got[i]);
            free(got);
            fail();
        }
    free(got);
}

/* Whether the backend under test is a GPU (tests then use sizes beyond one wave of its grid). */
static inline bool on_gpu(void)
{
    return strcmp(be->ops->name, "cpu") != 0;
}

#define TOL 1e-10 /* fp32 vs fp64: NMSE this small means agreement to ~1e-5 relative */

/* GAND_REQUIRE_CUDA=1 (the device check sets it): CUDA that is absent or does not open fails. */
static inline bool cuda_required(void)
{
    const char *v = getenv("GAND_REQUIRE_CUDA");
    return v && strcmp(v, "1") == 0;
}

/* Run `tests` once per backend built in, as group "<name>-<backend>"; the number failed. */
static inline int run_on_each_backend(const char *name, const struct CMUnitTest *tests, size_t n)
{
    int failed = 0;
    const char *names[] = {"cpu", "cuda"};
    for (size_t i = 0; i < 2; i++) {
        bool required = i == 1 && cuda_required();
        if (strstr(gk_backends_built(), names[i]) == NULL) {
            if (required) {
                printf("FAIL %s on cuda: GAND_REQUIRE_CUDA=1 but CUDA is not built in\n", name);
                failed++;
            }
            continue;
        }
        char why[256];
        gk_backend *b = gk_backend_open(names[i], why, sizeof why);
        if (!b) {
            printf("%s %s on %s: %s\n", required ? "FAIL" : "SKIP", name, names[i], why);
            failed += required;
            continue;
        }
        char group[48];
        snprintf(group, sizeof group, "%s-%s", name, names[i]);
        be = b;
        failed += _cmocka_run_group_tests(group, tests, n, NULL, NULL);
        if (gk_backend_error(b)) {
            printf("backend %s reported: %s\n", names[i], gk_backend_error(b));
            failed++;
        }
        gk_backend_close(b);
    }
    return failed;
}

#endif
