/*
 * kernels/cuda/cuda_backend.h — constructor and destructor of the CUDA backend.
 *
 * Built only when meson's `cuda` feature found nvcc and cuBLAS (GAND_HAVE_CUDA).
 * The backend owns one CUDA stream, one cuBLAS handle bound to it and a small
 * device scratch buffer for reductions; one thread at a time may use it.
 */
#ifndef GAND_KERNELS_CUDA_BACKEND_H
#define GAND_KERNELS_CUDA_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* the .cu file is C++: keep backend.h's functions C-linked there */
#endif

#include "kernels/backend.h"

/*
 * A new CUDA backend on device 0 (honours CUDA_VISIBLE_DEVICES). Returns NULL
 * with `why` set when there is no usable device (none present, no driver, or
 * a device this build has no kernels for). Free with gk_cuda_backend_close.
 */
gk_backend *gk_cuda_backend_open(char *why, size_t why_len);

/* Waits for outstanding work, then frees the stream, handle and scratch. NULL is a no-op. */
void gk_cuda_backend_close(gk_backend *be);

#ifdef __cplusplus
}
#endif

#endif
