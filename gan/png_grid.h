/*
 * gan/png_grid.h — sample grids as PNG (libpng).
 *
 * n images of rows × cols floats (values clamped to [0,1], 0 = black) are laid
 * out in a near-square grid: ceil(sqrt(n)) columns, as many rows as needed,
 * a 1-pixel mid-grey (128) gap between and around cells, and the whole
 * picture upscaled by an integer factor (nearest neighbour). 8-bit grey.
 */
#ifndef GAND_GAN_PNG_GRID_H
#define GAND_GAN_PNG_GRID_H

#include <stddef.h>
#include <stdint.h>

#include "gan/error.h"

enum { GAN_PNG_MAX_SCALE = 8 };

/* Size in pixels of the grid for n images at a scale, without making it. */
void gan_png_grid_size(int n, int rows, int cols, int scale, int *width, int *height);

/* Encode into a malloc'd buffer (*png, caller frees). 1 ≤ scale ≤ 8, n ≥ 1. */
int gan_png_grid_encode(const float *images, int n, int rows, int cols, int scale, uint8_t **png,
                        size_t *png_len, gan_error *err);

/*
 * The same with a given number of grid columns (0: the near-square default);
 * columns = n gives one row, e.g. an interpolation strip.
 */
void gan_png_grid_size_cols(int n, int rows, int cols, int columns, int scale, int *width,
                            int *height);
int gan_png_grid_encode_cols(const float *images, int n, int rows, int cols, int columns, int scale,
                             uint8_t **png, size_t *png_len, gan_error *err);

/* Encode and write atomically (temp file, fsync, rename). */
int gan_png_grid_write(const char *path, const float *images, int n, int rows, int cols, int scale,
                       gan_error *err);

#endif
