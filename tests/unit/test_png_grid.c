/* tests/unit/test_png_grid.c — gan/png_grid: layout, pixel values, errors, file write. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gan/fsutil.h"
#include "gan/png_grid.h"

enum { N = 10, ROWS = 4, COLS = 5, SCALE = 2 };

/* 10 images of 4x5: a fixed pattern per image so positions can be checked. */
static float *make_images(void)
{
    float *im = calloc((size_t)N * ROWS * COLS, sizeof *im);
    assert_non_null(im);
    for (int k = 0; k < N; k++) {
        float *c = im + (size_t)k * ROWS * COLS;
        for (int i = 0; i < ROWS * COLS; i++) {
            switch (k) {
            case 0:
                c[i] = 1.0f; /* white */
                break;
            case 1:
                c[i] = 2.5f; /* clamps to 255 */
                break;
            case 2:
                c[i] = -3.0f; /* clamps to 0 */
                break;
            case 3:
                c[i] = 0.2f; /* round(51.0) */
                break;
            case 4:
                c[i] = 0.0f;
                break;
            default:
                c[i] = (float)i / 255.0f; /* pixel i has value i */
                break;
            }
        }
    }
    im[4 * ROWS * COLS + 1 * COLS + 2] = 1.0f; /* image 4: one white pixel at (1,2) */
    return im;
}

typedef struct decoded {
    int width, height;
    uint8_t *pixels;
} decoded;

static decoded decode(const uint8_t *png, size_t len)
{
    /* IHDR: bit depth 8, colour type 0 (grey). */
    assert_true(len > 33);
    assert_int_equal(png[24], 8);
    assert_int_equal(png[25], 0);

    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_memory(&img, png, len));
    assert_int_equal(img.format & PNG_FORMAT_FLAG_COLOR, 0);
    assert_int_equal(img.format & PNG_FORMAT_FLAG_ALPHA, 0);
    img.format = PNG_FORMAT_GRAY;
    decoded d = {(int)img.width, (int)img.height, malloc(PNG_IMAGE_SIZE(img))};
    assert_non_null(d.pixels);
    assert_true(png_image_finish_read(&img, NULL, d.pixels, 0, NULL));
    png_image_free(&img);
    return d;
}

/* Value at unscaled (x0, y0); checks every one of the scale×scale copies agrees. */
static int px(const decoded *d, int x0, int y0)
{
    int v = d->pixels[(size_t)(y0 * SCALE) * d->width + x0 * SCALE];
    for (int dy = 0; dy < SCALE; dy++)
        for (int dx = 0; dx < SCALE; dx++)
            assert_int_equal(d->pixels[(size_t)(y0 * SCALE + dy) * d->width + x0 * SCALE + dx], v);
    return v;
}

/* Unscaled top-left pixel of cell pixel (r, c) of image k; the grid has 4 columns. */
static int cell_x(int k, int c)
{
    return (k % 4) * (COLS + 1) + 1 + c;
}
static int cell_y(int k, int r)
{
    return (k / 4) * (ROWS + 1) + 1 + r;
}

static void check_grid(const uint8_t *png, size_t len)
{
    int w, h;
    gan_png_grid_size(N, ROWS, COLS, SCALE, &w, &h);
    /* ceil(sqrt(10)) = 4 columns, 3 rows: (4*6+1)*2 x (3*5+1)*2 */
    assert_int_equal(w, 50);
    assert_int_equal(h, 32);

    decoded d = decode(png, len);
    assert_int_equal(d.width, w);
    assert_int_equal(d.height, h);

    /* Gaps: the border, between cells, all 128. */
    for (int x0 = 0; x0 < w / SCALE; x0++) {
        assert_int_equal(px(&d, x0, 0), 128);
        assert_int_equal(px(&d, x0, ROWS + 1), 128);
        assert_int_equal(px(&d, x0, h / SCALE - 1), 128);
    }
    for (int y0 = 0; y0 < h / SCALE; y0++) {
        assert_int_equal(px(&d, 0, y0), 128);
        assert_int_equal(px(&d, COLS + 1, y0), 128);
        assert_int_equal(px(&d, w / SCALE - 1, y0), 128);
    }
    for (int r = 0; r < ROWS; r++) {
        for (int c = 0; c < COLS; c++) {
            assert_int_equal(px(&d, cell_x(0, c), cell_y(0, r)), 255);
            assert_int_equal(px(&d, cell_x(1, c), cell_y(1, r)), 255);
            assert_int_equal(px(&d, cell_x(2, c), cell_y(2, r)), 0);
            assert_int_equal(px(&d, cell_x(3, c), cell_y(3, r)), 51);
            assert_int_equal(px(&d, cell_x(4, c), cell_y(4, r)), r == 1 && c == 2 ? 255 : 0);
            for (int k = 5; k < N; k++)
                assert_int_equal(px(&d, cell_x(k, c), cell_y(k, r)), r * COLS + c);
            /* cells 10 and 11 hold no image: gap grey */
            assert_int_equal(px(&d, cell_x(10, c), cell_y(10, r)), 128);
            assert_int_equal(px(&d, cell_x(11, c), cell_y(11, r)), 128);
        }
    }
    free(d.pixels);
}

static void test_encode_layout_and_values(void **state)
{
    (void)state;
    float *im = make_images();
    uint8_t *png = NULL;
    size_t len = 0;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_png_grid_encode(im, N, ROWS, COLS, SCALE, &png, &len, &err), 0);
    assert_non_null(png);
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    check_grid(png, len);
    free(png);
    free(im);
}

static void test_single_image_scale_1(void **state)
{
    (void)state;
    float v[4] = {0.0f, 0.5f, 1.0f, 0.25f};
    uint8_t *png = NULL;
    size_t len = 0;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_png_grid_encode(v, 1, 2, 2, 1, &png, &len, &err), 0);
    decoded d = decode(png, len);
    assert_int_equal(d.width, 4);
    assert_int_equal(d.height, 4);
    const uint8_t want[16] = {128, 128, 128, 128, 128, 0,   128, 128,
                              128, 255, 64,  128, 128, 128, 128, 128};
    assert_memory_equal(d.pixels, want, 16);
    free(d.pixels);
    free(png);
}

/* columns = n: one row of cells (an interpolation strip); columns 0 is the near-square grid. */
static void test_strip_one_row(void **state)
{
    (void)state;
    float *im = make_images();
    uint8_t *png = NULL;
    size_t len = 0;
    gan_error err = {{0}, {0}};
    int w, h;
    gan_png_grid_size_cols(N, ROWS, COLS, N, SCALE, &w, &h);
    assert_int_equal(w, (N * (COLS + 1) + 1) * SCALE);
    assert_int_equal(h, (ROWS + 2) * SCALE);
    assert_int_equal(gan_png_grid_encode_cols(im, N, ROWS, COLS, N, SCALE, &png, &len, &err), 0);
    decoded d = decode(png, len);
    assert_int_equal(d.width, w);
    assert_int_equal(d.height, h);
    for (int k = 0; k < N; k++) {
        int x = k * (COLS + 1) + 1;
        assert_int_equal(px(&d, x - 1, 1), 128); /* the gap before each cell */
        if (k == 0)
            assert_int_equal(px(&d, x, 1), 255);
        if (k == 2)
            assert_int_equal(px(&d, x, 1), 0);
        if (k == 3)
            assert_int_equal(px(&d, x, 1), 51);
        if (k >= 5)
            assert_int_equal(px(&d, x + 2, 1 + 1), 1 * COLS + 2);
    }
    free(d.pixels);
    free(png);
    gan_png_grid_size_cols(N, ROWS, COLS, 0, SCALE, &w, &h);
    assert_int_equal(w, 50);
    assert_int_equal(h, 32);
    png = (uint8_t *)1;
    assert_int_equal(gan_png_grid_encode_cols(im, N, ROWS, COLS, -1, SCALE, &png, &len, &err), -1);
    assert_null(png);
    assert_string_equal(err.field, "columns");
    free(im);
}

static void expect_error(const float *im, int n, int rows, int cols, int scale, const char *field,
                         const char *word)
{
    uint8_t *png = (uint8_t *)1;
    size_t len = 99;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_png_grid_encode(im, n, rows, cols, scale, &png, &len, &err), -1);
    assert_null(png);
    assert_int_equal(len, 0);
    assert_string_equal(err.field, field);
    if (!strstr(err.message, word))
        fail_msg("message '%s' lacks '%s'", err.message, word);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float *im = make_images();
    expect_error(im, N, ROWS, COLS, 0, "scale", "1..8, got 0");
    expect_error(im, N, ROWS, COLS, 9, "scale", "1..8, got 9");
    expect_error(im, 0, ROWS, COLS, 1, "n", "got 0");
    expect_error(im, -4, ROWS, COLS, 1, "n", "at least 1");
    expect_error(im, N, 0, COLS, 1, "rows", "rows");
    expect_error(im, N, ROWS, -1, 1, "cols", "cols");
    expect_error(NULL, N, ROWS, COLS, 1, "images", "NULL");
    /* 1 image of 16383 rows: 16385 px high at scale 1, over the limit */
    expect_error(im, 1, 16383, 1, 1, "n", "16384");
    expect_error(im, 1, 2100, 1, 8, "n", "16384");

    int w = 7, h = 7;
    gan_png_grid_size(1, 2, 2, 9, &w, &h);
    assert_int_equal(w, 0);
    assert_int_equal(h, 0);
    gan_png_grid_size(0, 2, 2, 1, &w, &h);
    assert_int_equal(w, 0);
    gan_png_grid_size(1, 2, 2, 8, &w, &h);
    assert_int_equal(w, 32);
    assert_int_equal(h, 32);
    free(im);
}

static void test_write_and_reread(void **state)
{
    (void)state;
    char dir[] = "/tmp/gand-png-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/grid.png", dir);

    float *im = make_images();
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_png_grid_write(path, im, N, ROWS, COLS, SCALE, &err), 0);
    /* Overwrite in place: still atomic, still one file. */
    assert_int_equal(gan_png_grid_write(path, im, N, ROWS, COLS, SCALE, &err), 0);

    uint8_t *file = NULL;
    size_t len = 0;
    assert_int_equal(gan_read_file(path, &file, &len, 1 << 24, &err), 0);
    check_grid(file, len);

    uint8_t *png = NULL;
    size_t plen = 0;
    assert_int_equal(gan_png_grid_encode(im, N, ROWS, COLS, SCALE, &png, &plen, &err), 0);
    assert_int_equal(plen, len);
    assert_memory_equal(png, file, len);

    /* No temp file left behind. */
    DIR *d = opendir(dir);
    assert_non_null(d);
    int entries = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            entries++;
    closedir(d);
    assert_int_equal(entries, 1);

    /* A bad scale writes nothing and leaves the old file. */
    assert_int_equal(gan_png_grid_write(path, im, N, ROWS, COLS, 9, &err), -1);
    assert_string_equal(err.field, "scale");
    uint8_t *again = NULL;
    size_t alen = 0;
    assert_int_equal(gan_read_file(path, &again, &alen, 1 << 24, &err), 0);
    assert_int_equal(alen, len);
    free(again);

    /* A directory that does not exist fails with field "path". */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope/grid.png", dir);
    assert_int_equal(gan_png_grid_write(missing, im, N, ROWS, COLS, SCALE, &err), -1);
    assert_string_equal(err.field, "path");

    free(png);
    free(file);
    free(im);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_layout_and_values),
        cmocka_unit_test(test_single_image_scale_1),
        cmocka_unit_test(test_strip_one_row),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_write_and_reread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
