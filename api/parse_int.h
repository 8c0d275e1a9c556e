/*
 * api/parse_int.h — strict decimal integers from query strings and headers.
 * Pure (no libmicrohttpd), so tests/fuzz/fuzz_route.c fuzzes it alone.
 */
#ifndef GAND_API_PARSE_INT_H
#define GAND_API_PARSE_INT_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Parse s as a whole base-10 integer in [min, max]: optional sign, digits,
 * nothing else (no leading space, no trailing garbage, no overflow).
 */
bool api_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
