/*
 * tests/unit/test_cpu_machine.c — what the CPU backend does about the machine it
 * runs on: denormals flushed on every thread that computes, and which OpenBLAS
 * kernels replace a fallback (kernels/cpu/blas_kernels.h).
 */
#include <float.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#if defined(__SSE__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

#include "kernels/backend.h"
#include "kernels/cpu/blas_kernels.h"

/* Past the backend's threading threshold (GK_PAR_MIN), so that its OpenMP team computes. */
#define N_TEAM (3u << 20)

/* axpy y += a·x with a·x = 1e-40, below FLT_MIN: flushed, y stays 0 everywhere. */
static void expect_flushed(gk_backend *be, size_t n)
{
    float *x = be->ops->alloc(be, n * sizeof(float)), *y = be->ops->alloc(be, n * sizeof(float));
    be->ops->fill(be, x, n, 1e-30f);
    be->ops->fill(be, y, n, 0.0f);
    be->ops->axpy(be, y, x, n, 1e-10f);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) { /* by its bits: under DAZ a denormal compares equal to 0 */
        uint32_t bits;
        memcpy(&bits, &y[i], sizeof bits);
        kept += bits != 0;
    }
    if (kept)
        print_error("%zu of %zu products below FLT_MIN were kept (first: %g)\n", kept, n,
                    (double)y[0]);
    assert_int_equal(kept, 0);
    be->ops->free(be, x);
    be->ops->free(be, y);
}

static void test_denormals_flushed(void **state)
{
    (void)state;
    char why[256];
    gk_backend *be = gk_backend_open("cpu", why, sizeof why);
    assert_non_null(be);
    expect_flushed(be, 1000);   /* the calling thread */
    expect_flushed(be, N_TEAM); /* its OpenMP team */
    gk_backend_close(be);
}

static void *flush_in_thread(void *arg)
{
    /* this thread keeps denormals (it inherited the mode of the thread that made it, which
     * has run ops), and so does the OpenMP team it starts before its first op */
#if defined(__SSE__)
    _mm_setcsr(_mm_getcsr() & ~(unsigned)(_MM_FLUSH_ZERO_ON | _MM_DENORMALS_ZERO_ON));
#endif
#if defined(_OPENMP)
#pragma omp parallel
    {
        volatile float warm = 1.0f;
        (void)warm;
    }
#endif
    expect_flushed(arg, 1000);
    expect_flushed(arg, N_TEAM);
    return NULL;
}

/* A backend opened by one thread and used by another (the daemon's evaluations), whose
 * OpenMP team was started before. */
static void test_denormals_flushed_other_thread(void **state)
{
    (void)state;
    char why[256];
    gk_backend *be = gk_backend_open("cpu", why, sizeof why);
    assert_non_null(be);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flush_in_thread, be), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    gk_backend_close(be);
}

static void test_blas_core_choice(void **state)
{
    (void)state;
    /* OpenBLAS's fallbacks on CPUs it does not know */
    assert_string_equal(gk_blas_core_for("Prescott", GK_ISA_AVX512, false), "SkylakeX");
    assert_string_equal(gk_blas_core_for("prescott", GK_ISA_AVX512, true), "SkylakeX");
    assert_string_equal(gk_blas_core_for("Prescott", GK_ISA_AVX2, false), "Haswell");
    assert_string_equal(gk_blas_core_for("Barcelona", GK_ISA_AVX2, true), "Zen");
    assert_string_equal(gk_blas_core_for("Nehalem", GK_ISA_AVX2, false), "Haswell");
    /* what OpenBLAS meant: kept */
    assert_null(gk_blas_core_for("Prescott", GK_ISA_SSE, false));
    assert_null(gk_blas_core_for("Prescott", GK_ISA_AVX, false));
    assert_null(gk_blas_core_for("Haswell", GK_ISA_AVX512, false));
    assert_null(gk_blas_core_for("Zen", GK_ISA_AVX512, true));
    assert_null(gk_blas_core_for("SkylakeX", GK_ISA_AVX512, false));
    assert_null(gk_blas_core_for("Sandybridge", GK_ISA_AVX2, false));
    assert_null(gk_blas_core_for("armv8", GK_ISA_SSE, false));
    assert_null(gk_blas_core_for(NULL, GK_ISA_AVX512, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_denormals_flushed),
        cmocka_unit_test(test_denormals_flushed_other_thread),
        cmocka_unit_test(test_blas_core_choice),
    };
    return cmocka_run_group_tests_name("cpu_machine", tests, NULL, NULL);
}
