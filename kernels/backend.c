/*
 * kernels/backend.c — picking a backend. The backends themselves depend only
 * on kernels/error.c (their sticky error), never on this file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#ifdef GAND_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

const char *gk_backends_built(void)
{
#ifdef GAND_HAVE_CUDA
    return "cpu,cuda";
#else
    return "cpu";
#endif
}

gk_backend *gk_backend_open(const char *name, char *why, size_t why_len)
{
    if (strcmp(name, "cpu") == 0) {
        gk_backend *be = gk_cpu_backend_open(why, why_len);
        if (be)
            snprintf(why, why_len, "cpu backend requested");
        return be;
    }
    if (strcmp(name, "cuda") == 0 || strcmp(name, "auto") == 0) {
#ifdef GAND_HAVE_CUDA
        char cuda_why[256] = "";
        gk_backend *be = gk_cuda_backend_open(cuda_why, sizeof cuda_why);
        if (be) {
            snprintf(why, why_len, "cuda backend %s: %s",
                     strcmp(name, "auto") == 0 ? "picked by auto" : "requested", be->device);
            return be;
        }
        if (strcmp(name, "cuda") == 0) {
            snprintf(why, why_len, "cuda backend unavailable: %s", cuda_why);
            return NULL;
        }
        char cpu_why[64];
        be = gk_cpu_backend_open(cpu_why, sizeof cpu_why);
        if (be)
            snprintf(why, why_len, "auto picked cpu: cuda is built in but %s", cuda_why);
        return be;
#else
        if (strcmp(name, "cuda") == 0) {
            snprintf(why, why_len,
                     "cuda backend unavailable: this gand was built without CUDA "
                     "(backends built: %s)",
                     gk_backends_built());
            return NULL;
        }
        char cpu_why[64];
        gk_backend *be = gk_cpu_backend_open(cpu_why, sizeof cpu_why);
        if (be)
            snprintf(why, why_len, "auto picked cpu: this gand was built without CUDA");
        return be;
#endif
    }
    snprintf(why, why_len, "unknown device '%s'; expected auto, cpu or cuda", name);
    return NULL;
}

void gk_backend_close(gk_backend *be)
{
    if (!be)
        return;
#ifdef GAND_HAVE_CUDA
    if (strcmp(be->ops->name, "cuda") == 0) {
        gk_cuda_backend_close(be);
        return;
    }
#endif
    free(be);
}
