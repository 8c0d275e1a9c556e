/*
 * daemon/paths.h — where gand finds what it ships.
 *
 * The bundled data set is looked up in $GAND_DATADIR, then the installed data
 * directory (meson's datadir/gand), then the source tree the binary was built
 * from, so `gand` works both installed and straight from the build directory.
 */
#ifndef GAND_DAEMON_PATHS_H
#define GAND_DAEMON_PATHS_H

#include <stddef.h>

#define GAND_DEFAULT_IMAGES "mnist-10k-images-idx3-ubyte.gz"
#define GAND_DEFAULT_LABELS "mnist-10k-labels-idx1-ubyte.gz"

/* Full path of a file shipped in the data directory; -1 when none is found. */
int gand_data_file(const char *name, char *out, size_t len);
int gand_default_dataset_path(char *out, size_t len);

#endif
