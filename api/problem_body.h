/*
 * api/problem_body.h — the text of a problem document (RFC 9457).
 * Pure (no libmicrohttpd), so tests/fuzz/ checks what it makes of hostile bytes.
 */
#ifndef GAND_API_PROBLEM_BODY_H
#define GAND_API_PROBLEM_BODY_H

/*
 * The problem document as JSON text, malloc'd (NULL when out of memory): type,
 * title, status, detail, field (left out when NULL or "") and instance. Valid
 * UTF-8 whatever bytes detail, field and instance hold: each byte that does not
 * begin a valid sequence becomes U+FFFD.
 */
char *api_problem_body(unsigned status, const char *title, const char *type, const char *field,
                       const char *detail, const char *instance);

#endif
