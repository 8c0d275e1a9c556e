/*
 * kernels/error.c — the sticky error every op of a backend reports through.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kernels/backend.h"

void gk_backend_fail(gk_backend *be, const char *file, int line, const char *fmt, ...)
{
    if (be->error[0])
        return; /* the first failure is the one worth reporting */
    const char *base = strrchr(file, '/');
    int off = snprintf(be->error, sizeof be->error, "%s:%d: ", base ? base + 1 : file, line);
    if (off < 0 || (size_t)off >= sizeof be->error)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(be->error + off, sizeof be->error - (size_t)off, fmt, ap);
    va_end(ap);
}
