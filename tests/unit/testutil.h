/*
 * tests/unit/testutil.h — what the C tests share: where the source tree is
 * (GAND_SOURCE_ROOT, which meson sets) and the bundled 10,000 digits.
 */
#ifndef GAND_TESTS_TESTUTIL_H
#define GAND_TESTS_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "gan/idx.h"

static inline const char *test_source_root(void)
{
    const char *r = getenv("GAND_SOURCE_ROOT");
    return r && *r ? r : ".";
}

/* The path of a file in the source tree's data/. */
static inline void test_data_path(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/data/%s", test_source_root(), name);
}

/* The bundled 10,000-digit set (the tests use slices of it); -1 with the reason printed. */
static inline int test_load_digits(gan_dataset *ds)
{
    char path[4096];
    test_data_path("mnist-10k-images-idx3-ubyte.gz", path, sizeof path);
    gan_error err;
    if (gan_idx_load_images(path, ds, &err) != 0) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    return 0;
}

#endif
