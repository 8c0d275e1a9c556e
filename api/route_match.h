/*
 * api/route_match.h — path patterns of the route table.
 *
 * A pattern is a list of path segments; "{x}" captures one non-empty segment,
 * "{x}.png" one that ends in ".png" (capturing what comes before), and "**"
 * the non-empty rest of the path.
 */
#ifndef GAND_API_ROUTE_MATCH_H
#define GAND_API_ROUTE_MATCH_H

#include <stdbool.h>
#include <stddef.h>

enum { API_ROUTE_MAX_PARAMS = 4 };

/*
 * Match path against pattern. Captured parameters are copied NUL-separated
 * into buf (buf_len bytes) and pointed to by params[0..]; at most
 * API_ROUTE_MAX_PARAMS. Returns false on no match (or when buf is too small).
 */
bool api_path_match(const char *pattern, const char *path, char *buf, size_t buf_len,
                    const char **params);

#endif
