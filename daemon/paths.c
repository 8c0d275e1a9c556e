#include "daemon/paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

const gand_bundled_dataset gand_bundled_datasets[] = {
    {"mnist", "mnist-train-images-idx3-ubyte.gz", "mnist-train-labels-idx1-ubyte.gz",
     "mnist-t10k-images-idx3-ubyte.gz", 10000, "mnist-classifier.safetensors",
     "mnist-t10k-labels-idx1-ubyte.gz"},
    /* mnist's classifier: trained on 50,000 of these digits, never on the test digits */
    {"mnist-60k", "mnist-train-images-idx3-ubyte.gz", "mnist-train-labels-idx1-ubyte.gz",
     "mnist-t10k-images-idx3-ubyte.gz", 0, "mnist-classifier.safetensors",
     "mnist-t10k-labels-idx1-ubyte.gz"},
    {"mnist-10k", "mnist-10k-images-idx3-ubyte.gz", "mnist-10k-labels-idx1-ubyte.gz", NULL, 2000,
     "mnist-10k-classifier.safetensors", NULL},
};
const int gand_bundled_dataset_count =
    (int)(sizeof gand_bundled_datasets / sizeof gand_bundled_datasets[0]);

const gand_bundled_dataset *gand_bundled_dataset_find(const char *name)
{
    for (int i = 0; i < gand_bundled_dataset_count; i++)
        if (strcmp(gand_bundled_datasets[i].name, name) == 0)
            return &gand_bundled_datasets[i];
    return NULL;
}
