#include "daemon/paths.h"
#include "daemon/commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int gand_data_file(const char *name, char *out, size_t len)
{
    const char *dirs[] = {getenv("GAND_DATADIR"), GAND_INSTALL_DATADIR, GAND_SOURCE_DATADIR};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if (!dirs[i] || !dirs[i][0])
            continue;
        if ((size_t)snprintf(out, len, "%s/%s", dirs[i], name) >= len)
            continue;
        if (access(out, R_OK) == 0)
            return 0;
    }
    return -1;
}

int gand_default_dataset_path(char *out, size_t len)
{
    return gand_data_file(GAND_DEFAULT_IMAGES, out, len);
}

bool gand_option_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "gand %s: %s must be an integer in %ld..%ld, got '%s'\n", cmd, opt, lo, hi,
                s);
        return false;
    }
    *out = v;
    return true;
}
