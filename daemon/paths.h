/*
 * daemon/paths.h — where gand finds what it ships.
 *
 * The bundled data sets are looked up in $GAND_DATADIR, then the installed
 * data directory (meson's datadir/gand), then the source tree the binary was
 * built from, so `gand` works both installed and straight from the build
 * directory.
 */
#ifndef GAND_DAEMON_PATHS_H
#define GAND_DAEMON_PATHS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The data sets gand ships (data/README.md), the first one the default:
 *   mnist      MNIST's 60,000 training digits, the last 10,000 held out to
 *              choose σ, MNIST's 10,000 test digits scored (the paper's protocol);
 *   mnist-60k  the same 60,000 all trained on (the seed's setting); σ on the
 *              test digits 0–4,999, scored on 5,000–9,999;
 *   mnist-10k  10,000 digits, the last 2,000 held out (halves: σ, score), for
 *              quick runs.
 */
typedef struct gand_bundled_dataset {
    const char *name;
    const char *images; /* file names in the data directory */
    const char *labels;
    const char *test_images; /* NULL: none */
    int holdout;
    const char *classifier;  /* its digit classifier (data/make-classifiers.sh) */
    const char *test_labels; /* the test file's labels, NULL: none */
} gand_bundled_dataset;

extern const gand_bundled_dataset gand_bundled_datasets[];
extern const int gand_bundled_dataset_count;

/* Full path of a file shipped in the data directory; -1 when none is found. */
int gand_data_file(const char *name, char *out, size_t len);

/* The bundled data set called name, or NULL. */
const gand_bundled_dataset *gand_bundled_dataset_find(const char *name);

#endif
