#include "api/parse_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

bool api_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s || isspace((unsigned char)s[0]))
        return false;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || end == s || *end || n < min || n > max)
        return false;
    *out = n;
    return true;
}
