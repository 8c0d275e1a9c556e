#include "gan/error.h"

#include "gan/json_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int gan_fail(gan_error *err, const char *field, const char *fmt, ...)
{
    if (!err)
        return -1;
    /* what did not fit is cut on a character boundary, so a quoted name stays UTF-8 */
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    gan_utf8_trim(err->field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    gan_utf8_trim(err->message);
    return -1;
}
