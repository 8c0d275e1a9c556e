/*
 * gan/idx.h — IDX files (the MNIST format), plain or gzip-compressed.
 *
 * Images are IDX3 (magic 0x00000803: u8, 3 dims: count × 28 × 28); labels are
 * IDX1 (magic 0x00000801: u8, 1 dim). gzip is detected by its magic bytes,
 * not the file name. Every failure names the file and what was wrong: a
 * wrong magic number, a truncated file, dimensions other than 28×28, trailing
 * bytes, a count of zero.
 */
#ifndef GAND_GAN_IDX_H
#define GAND_GAN_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "gan/error.h"

enum { GAN_IMAGE_ROWS = 28, GAN_IMAGE_COLS = 28, GAN_IMAGE_PIXELS = 28 * 28 };

/* A set of 28×28 grey-scale images, pixels as stored (0..255), row-major. */
typedef struct gan_dataset {
    int count;
    int rows, cols;
    uint8_t *pixels; /* count × rows × cols, owned (free with gan_dataset_free) */
    uint8_t *labels; /* count labels 0..9, or NULL when no label file was read */
} gan_dataset;

/* Parse IDX3 images from memory (already decompressed or gzip: both accepted). */
int gan_idx_parse_images(const uint8_t *buf, size_t len, gan_dataset *out, gan_error *err);
/* Parse IDX1 labels from memory; *labels is malloc'd, caller frees. */
int gan_idx_parse_labels(const uint8_t *buf, size_t len, uint8_t **labels, int *count,
                         gan_error *err);

/* Load an image file (plain or .gz). err->field = "path" on failure. */
int gan_idx_load_images(const char *path, gan_dataset *out, gan_error *err);
/* Load a label file and attach it to ds; its count must equal ds->count. */
int gan_idx_load_labels(const char *path, gan_dataset *ds, gan_error *err);

/* Write images as gzip IDX3 into a malloc'd buffer (caller frees). */
int gan_idx_encode_images_gz(const uint8_t *pixels, int count, int rows, int cols, uint8_t **out,
                             size_t *out_len, gan_error *err);

void gan_dataset_free(gan_dataset *ds);

#endif
