/*
 * kernels/cpu/blas_kernels.c — OpenBLAS kernels that fit the CPU where
 * OpenBLAS did not recognise it (see blas_kernels.h).
 */
#include "kernels/cpu/blas_kernels.h"

#include <cblas.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The widest vector instructions this CPU and its OS both support. */
static gk_isa cpu_isa(void)
{
#if defined(__x86_64__) || defined(__i386__)
    /* libgcc's checks include the OS's (XCR0): registers it does not save count as absent */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return GK_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return GK_ISA_AVX2;
    if (__builtin_cpu_supports("avx"))
        return GK_ISA_AVX;
#endif
    return GK_ISA_SSE;
}

static bool cpu_is_amd(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_is("amd");
#else
    return false;
#endif
}

const char *gk_blas_core_for(const char *chosen, gk_isa isa, bool amd)
{
    /* OpenBLAS's x86 cores from before AVX: what it falls back to for a model it
     * does not know (Prescott for Intel, and for AMD with an unknown family) */
    static const char *const sse_era[] = {
        "Unknown", "Katmai",       "Coppermine", "Northwood",  "Prescott", "Banias",
        "Atom",    "Core2",        "Penryn",     "Dunnington", "Nehalem",  "Athlon",
        "Opteron", "Opteron_SSE3", "Barcelona",  "Nano",       "Bobcat",
    };
    if (!chosen || isa < GK_ISA_AVX2)
        return NULL;
    bool fallback = false;
    for (size_t i = 0; i < sizeof sse_era / sizeof sse_era[0]; i++)
        fallback = fallback || strcasecmp(chosen, sse_era[i]) == 0;
    if (!fallback)
        return NULL;
    if (isa == GK_ISA_AVX512)
        return "SkylakeX";
    return amd ? "Zen" : "Haswell";
}

static const char *isa_name(gk_isa isa)
{
    switch (isa) {
    case GK_ISA_AVX512:
        return "AVX-512";
    case GK_ISA_AVX2:
        return "AVX2";
    case GK_ISA_AVX:
        return "AVX";
    case GK_ISA_SSE:
        break;
    }
    return "SSE";
}

const char *gk_blas_fit_kernels(void)
{
    static char said[512];
    static bool done; /* the first call (in main, before any thread) decides */
    if (done)
        return said;
    done = true;
    const char *config = openblas_get_config();
    if (getenv("OPENBLAS_CORETYPE") || !config || !strstr(config, "DYNAMIC_ARCH"))
        return said; /* the user's choice, or a library built for one CPU */
    char chosen[64];
    snprintf(chosen, sizeof chosen, "%s", openblas_get_corename());
    gk_isa isa = cpu_isa();
    const char *core = gk_blas_core_for(chosen, isa, cpu_is_amd());
    if (!core)
        return said;
    /* OpenBLAS's DYNAMIC_ARCH entry points (exported, not in its headers): the first
     * forgets the kernel table, the second chooses one as the library's constructor did,
     * reading OPENBLAS_CORETYPE. Looked up, so a library without them is only not
     * corrected. */
    void (*quit)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    void (*init)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (!quit || !init) {
        snprintf(said, sizeof said,
                 "OpenBLAS did not recognise this CPU and runs its %s kernels, though the CPU "
                 "has %s, and this OpenBLAS cannot be told otherwise once loaded: matrix "
                 "products run several times slower than they could (set "
                 "OPENBLAS_CORETYPE=%s in the environment)",
                 chosen, isa_name(isa), core);
        return said;
    }
    setenv("OPENBLAS_CORETYPE", core, 1);
    quit();
    init();
    unsetenv("OPENBLAS_CORETYPE");
    snprintf(said, sizeof said,
             "OpenBLAS did not recognise this CPU (it has %s) and chose its %s kernels; gand "
             "had it choose again with OPENBLAS_CORETYPE=%s: it now runs its %s kernels (set "
             "OPENBLAS_CORETYPE to choose yourself)",
             isa_name(isa), chosen, core, openblas_get_corename());
    return said;
}
