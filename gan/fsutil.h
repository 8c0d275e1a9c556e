/*
 * gan/fsutil.h — durable file writes.
 *
 * gan_write_file_atomic writes PATH.tmp.<pid>, fsyncs it, renames it over PATH
 * and fsyncs the directory, so a reader (or a crash) sees the old file or the
 * new one, never a torn one. On failure the old file is untouched and the
 * temp file removed.
 */
#ifndef GAND_GAN_FSUTIL_H
#define GAND_GAN_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "gan/error.h"

int gan_write_file_atomic(const char *path, const void *data, size_t len, gan_error *err);

/* Read a whole file into a malloc'd buffer (NUL-terminated for convenience; *len excludes it). */
int gan_read_file(const char *path, uint8_t **data, size_t *len, size_t max_len, gan_error *err);

/*
 * Append one line (a '\n' is added) to a regular file and fsync it; -1 with
 * errno set on failure (EINVAL: the path is not a regular file), and then the
 * file is as it was. A torn last line (no '\n': a crash mid-append) is cut
 * before the new line is written, so the two are never glued together.
 */
int gan_append_line(const char *path, const char *line);

/*
 * Cut a torn last line (bytes after the last '\n') off a regular file; *dropped
 * says how many bytes went. 0 also when the file does not exist; -1 with errno
 * (EINVAL: not a regular file).
 */
int gan_torn_tail(const char *path, long long *dropped);

/* fsync the directory that holds path (after a rename or create). */
int gan_fsync_parent(const char *path);

#endif
