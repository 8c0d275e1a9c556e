#include "gan/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int gan_fail(gan_error *err, const char *field, const char *fmt, ...)
{
    if (!err)
        return -1;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}
