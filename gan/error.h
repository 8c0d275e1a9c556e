/*
 * gan/error.h — the error every gan/ function reports through.
 *
 * `field` names the offending input (a config field, a file, a tensor) so the
 * API can put it in a problem+json `field`; `message` is one sentence a user
 * can act on, naming the allowed range where there is one.
 */
#ifndef GAND_GAN_ERROR_H
#define GAND_GAN_ERROR_H

#include <stddef.h>

typedef struct gan_error {
    char field[64];
    char message[512];
} gan_error;

/* Fill err (if non-NULL) and return -1, so callers can `return gan_fail(...)`. */
int gan_fail(gan_error *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
