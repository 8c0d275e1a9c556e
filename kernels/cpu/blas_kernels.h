/*
 * kernels/cpu/blas_kernels.h — which of OpenBLAS's kernels a process runs.
 *
 * A DYNAMIC_ARCH OpenBLAS picks its kernels by CPU model when it is loaded. A
 * model newer than the library (Debian 12's OpenBLAS 0.3.21 on an Emerald
 * Rapids Xeon, say) gets its generic SSE3 kernels ("Prescott"): a third of
 * what sgemm reaches with the AVX-512 ones on the same cores. OpenBLAS's own
 * way to choose is OPENBLAS_CORETYPE, read when the library initialises its
 * kernel table; gk_blas_fit_kernels sets it and has the table initialised
 * again, before the first matrix product.
 */
#ifndef GAND_KERNELS_CPU_BLAS_KERNELS_H
#define GAND_KERNELS_CPU_BLAS_KERNELS_H

#include <stdbool.h>

/* The widest vector instructions a CPU and its OS both support. */
typedef enum { GK_ISA_SSE, GK_ISA_AVX, GK_ISA_AVX2, GK_ISA_AVX512 } gk_isa;

/* The OpenBLAS core to force where OpenBLAS chose `chosen` (its name for a
 * kernel set, any case) on a CPU with `isa` (`amd`: made by AMD), or NULL to
 * keep its choice. Only a fallback is replaced: a core of the SSE era on a CPU
 * with AVX2 or AVX-512 (an SSE-only CPU, or a core of the AVX era, is what
 * OpenBLAS meant, and is kept). */
const char *gk_blas_core_for(const char *chosen, gk_isa isa, bool amd);

/* Call first in main, before any other thread starts and before any BLAS call.
 * Where OpenBLAS fell back (gk_blas_core_for) and OPENBLAS_CORETYPE is not set
 * (a user's choice is kept), has OpenBLAS choose again with OPENBLAS_CORETYPE
 * set, then unsets it, so that programs this one starts (a Slurm job on
 * another machine) choose for themselves. Returns a sentence worth logging
 * once, or "" when OpenBLAS's choice stands. */
const char *gk_blas_fit_kernels(void);

#endif
