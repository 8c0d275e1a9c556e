/*
 * gan/png_grid.c — sample grids as PNG (libpng), see png_grid.h.
 *
 * The picture is produced one unscaled row at a time: the row is built at
 * scale 1, widened by the scale (nearest neighbour) and handed to libpng
 * `scale` times, so memory stays at two rows plus the compressed output.
 * Cells past the last image (when n is not a multiple of the column count)
 * are filled with the gap grey.
 */
#include "gan/png_grid.h"

#include <limits.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gan/fsutil.h"

enum { GAP_GREY = 128, MAX_SIDE = 16384 };

/* Columns of the grid: ceil(sqrt(n)) computed exactly in integers. */
static int64_t grid_cols(int n)
{
    int64_t c = 1;
    while (c * c < (int64_t)n)
        c++;
    return c;
}

/*
 * Width and height in 64 bits; only meaningful for n, rows, cols, scale ≥ 1.
 * columns ≤ 0: the near-square default.
 */
static void grid_size64(int n, int rows, int cols, int columns, int scale, int64_t *w, int64_t *h)
{
    int64_t gc = columns > 0 ? columns : grid_cols(n);
    int64_t gr = ((int64_t)n + gc - 1) / gc;
    *w = (gc * ((int64_t)cols + 1) + 1) * scale;
    *h = (gr * ((int64_t)rows + 1) + 1) * scale;
}

void gan_png_grid_size(int n, int rows, int cols, int scale, int *width, int *height)
{
    gan_png_grid_size_cols(n, rows, cols, 0, scale, width, height);
}

void gan_png_grid_size_cols(int n, int rows, int cols, int columns, int scale, int *width,
                            int *height)
{
    int64_t w = 0, h = 0;
    if (n >= 1 && rows >= 1 && cols >= 1 && scale >= 1 && scale <= GAN_PNG_MAX_SCALE)
        grid_size64(n, rows, cols, columns, scale, &w, &h);
    if (w > INT_MAX || h > INT_MAX)
        w = h = 0;
    if (width)
        *width = (int)w;
    if (height)
        *height = (int)h;
}

static int check_args(const float *images, int n, int rows, int cols, int columns, int scale,
                      gan_error *err)
{
    if (n < 1)
        return gan_fail(err, "n", "n (number of images) must be at least 1, got %d", n);
    if (rows < 1)
        return gan_fail(err, "rows", "rows must be at least 1, got %d", rows);
    if (cols < 1)
        return gan_fail(err, "cols", "cols must be at least 1, got %d", cols);
    if (scale < 1 || scale > GAN_PNG_MAX_SCALE)
        return gan_fail(err, "scale", "scale must be an integer in 1..%d, got %d",
                        GAN_PNG_MAX_SCALE, scale);
    if (!images)
        return gan_fail(err, "images", "images must not be NULL");
    if (columns < 0)
        return gan_fail(err, "columns", "columns must be at least 1 (0: near-square), got %d",
                        columns);
    int64_t w, h;
    grid_size64(n, rows, cols, columns, scale, &w, &h);
    if (w > MAX_SIDE || h > MAX_SIDE)
        return gan_fail(err, "n",
                        "a grid of %d images of %dx%d at scale %d would be %lldx%lld pixels, "
                        "more than the limit of %d per side",
                        n, rows, cols, scale, (long long)w, (long long)h, MAX_SIDE);
    return 0;
}

static uint8_t to_grey(float v)
{
    if (!(v > 0.0f)) /* also NaN */
        return 0;
    if (v >= 1.0f)
        return 255;
    return (uint8_t)(v * 255.0f + 0.5f);
}

/* libpng's I/O and error context: the growing output buffer filled by the
 * write callback, and the message of an error that ended the write. */
struct png_mem {
    uint8_t *data;
    size_t len, cap;
    char message[256];
};

static void on_png_error(png_structp png, png_const_charp msg)
{
    struct png_mem *mem = png_get_error_ptr(png);
    snprintf(mem->message, sizeof mem->message, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void on_png_write(png_structp png, png_bytep data, png_size_t len)
{
    struct png_mem *mem = png_get_io_ptr(png);
    if (len > SIZE_MAX - mem->len)
        png_error(png, "PNG output too large");
    if (mem->len + len > mem->cap) {
        size_t cap = mem->cap ? mem->cap : 4096;
        while (cap < mem->len + len)
            cap = cap > SIZE_MAX / 2 ? mem->len + len : cap * 2;
        uint8_t *p = realloc(mem->data, cap);
        if (!p)
            png_error(png, "out of memory");
        mem->data = p;
        mem->cap = cap;
    }
    memcpy(mem->data + mem->len, data, len);
    mem->len += len;
}

static void on_png_flush(png_structp png)
{
    (void)png;
}

/*
 * All libpng calls live here. Everything that changes between setjmp and a
 * possible longjmp (output buffer, error message, rows) is owned by the caller and
 * reached through pointers, and png/info are not assigned after setjmp, so no
 * local of this function needs to be volatile.
 */
static int write_png(struct png_mem *mem, uint8_t *row0, uint8_t *row, const float *images, int n,
                     int rows, int cols, int columns, int scale, int width, int height,
                     gan_error *err)
{
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, mem, on_png_error, on_png_warning);
    if (!png)
        return gan_fail(err, "png", "cannot create the PNG writer (out of memory)");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return gan_fail(err, "png", "cannot create the PNG writer (out of memory)");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return gan_fail(err, "png", "cannot encode the PNG: %s", mem->message);
    }

    png_set_write_fn(png, mem, on_png_write, on_png_flush);
    png_set_compression_level(png, Z_BEST_SPEED);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);

    const int gc = columns > 0 ? columns : (int)grid_cols(n);
    const int w0 = width / scale, h0 = height / scale;
    const size_t cell = (size_t)rows * (size_t)cols;
    for (int y0 = 0; y0 < h0; y0++) {
        const int gy = y0 / (rows + 1), py = y0 % (rows + 1) - 1;
        for (int x0 = 0; x0 < w0; x0++) {
            const int gx = x0 / (cols + 1), px = x0 % (cols + 1) - 1;
            const int64_t k = (int64_t)gy * gc + gx;
            if (py < 0 || px < 0 || k >= n)
                row0[x0] = GAP_GREY;
            else
                row0[x0] =
                    to_grey(images[(size_t)k * cell + (size_t)py * (size_t)cols + (size_t)px]);
        }
        for (int x = 0; x < width; x++)
            row[x] = row0[x / scale];
        for (int s = 0; s < scale; s++)
            png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int gan_png_grid_encode(const float *images, int n, int rows, int cols, int scale, uint8_t **png,
                        size_t *png_len, gan_error *err)
{
    return gan_png_grid_encode_cols(images, n, rows, cols, 0, scale, png, png_len, err);
}

int gan_png_grid_encode_cols(const float *images, int n, int rows, int cols, int columns, int scale,
                             uint8_t **png, size_t *png_len, gan_error *err)
{
    if (!png || !png_len)
        return gan_fail(err, "png", "output pointers must not be NULL");
    *png = NULL;
    *png_len = 0;
    if (check_args(images, n, rows, cols, columns, scale, err) != 0)
        return -1;
    int width, height;
    gan_png_grid_size_cols(n, rows, cols, columns, scale, &width, &height);

    struct png_mem mem = {0};
    uint8_t *row0 = malloc((size_t)(width / scale));
    uint8_t *row = malloc((size_t)width);
    int rc;
    if (!row0 || !row)
        rc = gan_fail(err, "png", "out of memory for a %dx%d grid", width, height);
    else
        rc = write_png(&mem, row0, row, images, n, rows, cols, columns, scale, width, height, err);
    free(row0);
    free(row);
    if (rc != 0) {
        free(mem.data);
        return -1;
    }
    *png = mem.data;
    *png_len = mem.len;
    return 0;
}

int gan_png_grid_write(const char *path, const float *images, int n, int rows, int cols, int scale,
                       gan_error *err)
{
    if (!path || !*path)
        return gan_fail(err, "path", "path must not be empty");
    uint8_t *png = NULL;
    size_t len = 0;
    if (gan_png_grid_encode(images, n, rows, cols, scale, &png, &len, err) != 0)
        return -1;
    int rc = gan_write_file_atomic(path, png, len, err);
    free(png);
    return rc;
}
