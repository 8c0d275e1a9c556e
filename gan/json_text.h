/*
 * gan/json_text.h — JSON text that says exactly what it holds: numbers that
 * read back to the same bits, integers read from their digits (not from the
 * double cJSON makes of them), and strings that are valid UTF-8 whatever bytes
 * they were made from.
 *
 * cJSON 1.7.15 holds a number as a double and prints it with %1.15g whenever
 * that reads back within a relative DBL_EPSILON ("near enough"), so
 * 0.30000000000000004 prints as 0.3 and 2^53 as 9.00719925474099e+15; and it
 * parses 9007199254740993 to the double 2^53. These functions do what it does
 * not: print numbers exactly (as cJSON "raw" items), and keep each number's
 * source text when parsing so that integer fields can be checked on it.
 */
#ifndef GAND_GAN_JSON_TEXT_H
#define GAND_GAN_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* ---- numbers ------------------------------------------------------------------------------ */

/*
 * The shortest "%.Ng" (N = 1..17) of finite d that strtod reads back as
 * exactly d: 0.1 is "0.1", 2^53 "9007199254740992", the smallest subnormal
 * "5e-324", 0.1 + 0.2 "0.30000000000000004". size must be at least 32.
 */
void gan_format_double(char *buf, size_t size, double d);

/*
 * An item that prints as d exactly (gan_format_double), or as null when d is
 * not finite. It is a cJSON raw item, not a number: code that reads the tree
 * before it is printed must not expect cJSON_IsNumber. NULL when out of memory.
 */
struct cJSON *gan_json_double(double d);
/* The same for an unsigned integer, printed as its digits. */
struct cJSON *gan_json_u64(uint64_t v);
/* Add gan_json_double(d) / gan_json_u64(v) to object o as name; the item, or NULL. */
struct cJSON *gan_json_add_double(struct cJSON *o, const char *name, double d);
struct cJSON *gan_json_add_u64(struct cJSON *o, const char *name, uint64_t v);

/*
 * cJSON_ParseWithLengthOpts(text, len, end, require_null_terminated) (with
 * require_null_terminated, text[len] must be the NUL that ends it), and each
 * number item keeps its source text ("9007199254740993", "1e-400") in its
 * valuestring, which cJSON_Delete frees. NULL as cJSON says.
 */
struct cJSON *gan_json_parse(const char *text, size_t len, const char **end,
                             bool require_null_terminated);
/* The source text of a number item that gan_json_parse made, else NULL. */
const char *gan_json_literal(const struct cJSON *v);

/*
 * Is v a JSON number whose value is exactly an integer in min..max? Judged on
 * its source text when it has one: 9007199254740993 is not 2^53, 1.5 and
 * 3.0000000000000001 are not integers, 1e3 and 7.0 are. Without one, on the
 * double (cJSON's value). min and max must lie within ±2^53.
 */
bool gan_json_integer(const struct cJSON *v, int64_t min, int64_t max, int64_t *out);

/*
 * A JSON value as short text for "..., got <this>": a number's source text
 * when it has one, else cJSON's printing; valid UTF-8, at most max bytes
 * (cut on a character boundary and ended with "..." when longer).
 * size > max.
 */
void gan_json_got(const struct cJSON *v, char *buf, size_t size, size_t max);

/* ---- UTF-8 -------------------------------------------------------------------------------- */

/* Is s[0..len) valid UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF)? */
bool gan_utf8_valid(const char *s, size_t len);

/*
 * Copy NUL-terminated src into dst (size > 0 bytes, NUL-terminated) as valid
 * UTF-8: every byte that does not start a valid sequence becomes U+FFFD (the
 * replacement character, 3 bytes). Takes at most max bytes of output, ending
 * on a character boundary; when src did not fit, the output ends with "..."
 * (within max). max is also capped at size - 1. Returns whether all of src fit.
 */
bool gan_utf8_clip(char *dst, size_t size, const char *src, size_t max);

/* The same into a malloc'd copy with no limit (NULL when out of memory). */
char *gan_utf8_dup(const char *src);

/*
 * Shorten NUL-terminated s so that it does not end inside a multibyte
 * character: for a buffer that snprintf may have cut.
 */
void gan_utf8_trim(char *s);

#endif
