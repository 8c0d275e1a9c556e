/* kernels/cpu/cpu_backend.h — constructor of a CPU backend instance (own error state). */
#ifndef GAND_KERNELS_CPU_BACKEND_H
#define GAND_KERNELS_CPU_BACKEND_H

#include <stddef.h>

#include "kernels/backend.h"

/* A new CPU backend (free with gk_backend_close). NULL + why on failure. */
gk_backend *gk_cpu_backend_open(char *why, size_t why_len);

#endif
