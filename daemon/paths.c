#include "daemon/paths.h"

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
