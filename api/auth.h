/*
 * api/auth.h — bearer-token authentication of the HTTP API.
 *
 * The token is a secret shared with clients through a file ([server]
 * token_file, --token-file). Requests present it as `Authorization: Bearer
 * <token>`, or, for reads only, as `?access_token=<token>` (EventSource and
 * <img> cannot send headers). Comparison is constant-time over a fixed
 * AUTH_TOKEN_MAX bytes, so its duration says nothing about how much of a
 * guess was right.
 */
#ifndef GAND_API_AUTH_H
#define GAND_API_AUTH_H

#include <stdbool.h>
#include <stddef.h>

enum {
    AUTH_TOKEN_MIN = 16,  /* shortest token accepted from the file */
    AUTH_TOKEN_MAX = 256, /* longest; also the length every comparison runs over */
};

/*
 * Read the token from path: its first line, trailing white space removed;
 * it must be AUTH_TOKEN_MIN..AUTH_TOKEN_MAX visible ASCII characters (no
 * spaces). token receives it NUL-terminated (token_cap > AUTH_TOKEN_MAX).
 * Returns 0, or -1 with a one-line message in err. warn receives a warning
 * ("" when none) when the file may be read by its group or by others.
 */
int auth_read_token_file(const char *path, char *token, size_t token_cap, size_t *len, char *warn,
                         size_t warn_len, char *err, size_t err_len);

/*
 * Is given (glen bytes) the token? expected is AUTH_TOKEN_MAX bytes, the
 * token zero-padded, elen its length. Runs over all AUTH_TOKEN_MAX bytes
 * whatever the inputs; a given longer than that never matches.
 */
bool auth_token_equal(const unsigned char *expected, size_t elen, const char *given, size_t glen);

#endif
