/* tests/unit/test_idx.c — IDX reader: the default data set, plain and gzip, every error. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkstemp, write, unlink */
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gan/idx.h"
#include "testutil.h"

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An IDX3 buffer: header (magic, count, rows, cols) then npix pixel bytes (pattern). */
static uint8_t *make_idx3(uint32_t magic, uint32_t count, uint32_t rows, uint32_t cols, size_t npix,
                          size_t *len)
{
    *len = 16 + npix;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    put_be32(b, magic);
    put_be32(b + 4, count);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    for (size_t i = 0; i < npix; i++)
        b[16 + i] = (uint8_t)(i * 7 + i / 784);
    return b;
}

static uint8_t *make_idx1(uint32_t magic, uint32_t count, size_t nlab, size_t *len)
{
    *len = 8 + nlab;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    put_be32(b, magic);
    put_be32(b + 4, count);
    for (size_t i = 0; i < nlab; i++)
        b[8 + i] = (uint8_t)(i % 10);
    return b;
}

static void expect_image_error(const uint8_t *buf, size_t len, const char *word)
{
    gan_dataset ds;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_idx_parse_images(buf, len, &ds, &err), -1);
    assert_string_equal(err.field, "data");
    if (!strstr(err.message, word))
        fail_msg("error \"%s\" does not mention \"%s\"", err.message, word);
    assert_null(ds.pixels);
    assert_int_equal(ds.count, 0);
}

static void expect_label_error(const uint8_t *buf, size_t len, const char *word)
{
    uint8_t *labels = (uint8_t *)1;
    int count = -1;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_idx_parse_labels(buf, len, &labels, &count, &err), -1);
    assert_string_equal(err.field, "data");
    if (!strstr(err.message, word))
        fail_msg("error \"%s\" does not mention \"%s\"", err.message, word);
    assert_null(labels);
}

static void write_tmp(char *path, size_t size, const uint8_t *data, size_t len)
{
    snprintf(path, size, "/tmp/test_idx.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void test_default_dataset_loads(void **state)
{
    (void)state;
    char img[4096], lab[4096];
    test_data_path("mnist-10k-images-idx3-ubyte.gz", img, sizeof img);
    test_data_path("mnist-10k-labels-idx1-ubyte.gz", lab, sizeof lab);
    gan_dataset ds;
    gan_error err = {{0}, {0}};
    if (gan_idx_load_images(img, &ds, &err) != 0)
        fail_msg("%s", err.message);
    assert_int_equal(ds.count, 10000);
    assert_int_equal(ds.rows, 28);
    assert_int_equal(ds.cols, 28);
    assert_null(ds.labels);
    if (gan_idx_load_labels(lab, &ds, &err) != 0)
        fail_msg("%s", err.message);
    assert_non_null(ds.labels);
    int per_class[10] = {0};
    for (int i = 0; i < ds.count; i++) {
        assert_true(ds.labels[i] <= 9);
        per_class[ds.labels[i]]++;
    }
    for (int d = 0; d < 10; d++)
        assert_true(per_class[d] > 0);
    /* Interleaved: the first ten images are one of each class, in order. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(ds.labels[i], i);
    /* Real digits: some ink and some background in every one of the first images. */
    for (int i = 0; i < 10; i++) {
        int ink = 0;
        for (int p = 0; p < GAN_IMAGE_PIXELS; p++)
            ink += ds.pixels[i * GAN_IMAGE_PIXELS + p] > 128;
        assert_true(ink > 20 && ink < 400);
    }
    gan_dataset_free(&ds);
    assert_null(ds.pixels);
}

static void test_plain_parses(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_idx3(0x803, 3, 28, 28, 3 * 784, &len);
    gan_dataset ds;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_idx_parse_images(b, len, &ds, &err), 0);
    assert_int_equal(ds.count, 3);
    assert_int_equal(ds.rows, 28);
    assert_int_equal(ds.cols, 28);
    assert_memory_equal(ds.pixels, b + 16, 3 * 784);
    gan_dataset_free(&ds);
    free(b);
}

static void test_gzip_roundtrip(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_idx3(0x803, 5, 28, 28, 5 * 784, &len);
    uint8_t *gz;
    size_t gz_len;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_idx_encode_images_gz(b + 16, 5, 28, 28, &gz, &gz_len, &err), 0);
    assert_true(gz_len > 18);
    assert_int_equal(gz[0], 0x1f);
    assert_int_equal(gz[1], 0x8b);
    gan_dataset ds;
    assert_int_equal(gan_idx_parse_images(gz, gz_len, &ds, &err), 0);
    assert_int_equal(ds.count, 5);
    assert_memory_equal(ds.pixels, b + 16, 5 * 784);
    gan_dataset_free(&ds);

    /* Through a file too: load detects gzip by magic, not by name. */
    char path[64];
    write_tmp(path, sizeof path, gz, gz_len);
    assert_int_equal(gan_idx_load_images(path, &ds, &err), 0);
    assert_int_equal(ds.count, 5);
    assert_memory_equal(ds.pixels, b + 16, 5 * 784);
    gan_dataset_free(&ds);
    unlink(path);

    /* Junk after the end of the gzip stream is refused. */
    uint8_t *junk = malloc(gz_len + 3);
    assert_non_null(junk);
    memcpy(junk, gz, gz_len);
    memcpy(junk + gz_len, "xyz", 3);
    expect_image_error(junk, gz_len + 3, "gzip");
    free(junk);
    free(gz);
    free(b);
}

static void test_wrong_magic(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_idx3(0x801, 1, 28, 28, 784, &len); /* a label magic on an image file */
    expect_image_error(b, len, "magic");
    expect_image_error(b, len, "0x00000801");
    expect_image_error(b, len, "0x00000803");
    free(b);
    b = make_idx3(0x89504e47, 1, 28, 28, 784, &len); /* PNG */
    expect_image_error(b, len, "magic");
    free(b);
    b = make_idx1(0x803, 1, 1, &len);
    expect_label_error(b, len, "magic");
    free(b);
}

static void test_truncated(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_idx3(0x803, 2, 28, 28, 2 * 784, &len);
    expect_image_error(b, len - 1, "truncated");
    expect_image_error(b, len - 1, "1568"); /* expected bytes */
    expect_image_error(b, len - 1, "1567"); /* found bytes */
    expect_image_error(b, 10, "truncated"); /* inside the header */
    expect_image_error(b, 2, "truncated");  /* inside the magic */
    expect_image_error(b, 0, "truncated");
    free(b);
    b = make_idx1(0x801, 5, 5, &len);
    expect_label_error(b, len - 2, "truncated");
    free(b);
}

static void test_wrong_dimensions(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_idx3(0x803, 1, 32, 32, 32 * 32, &len);
    expect_image_error(b, len, "28");
    expect_image_error(b, len, "32");
    free(b);
    b = make_idx3(0x803, 1, 28, 27, 28 * 27, &len);
    expect_image_error(b, len, "27");
    free(b);
    /* The same through gzip. */
    uint8_t *px = calloc(32 * 32, 1), *gz;
    size_t gz_len;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_idx_encode_images_gz(px, 1, 32, 32, &gz, &gz_len, &err), 0);
    expect_image_error(gz, gz_len, "28");
    free(gz);
    free(px);
}

static void test_zero_count(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_idx3(0x803, 0, 28, 28, 0, &len);
    expect_image_error(b, len, "zero");
    free(b);
    b = make_idx1(0x801, 0, 0, &len);
    expect_label_error(b, len, "zero");
    free(b);
}

static void test_trailing_bytes(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_idx3(0x803, 1, 28, 28, 784 + 5, &len);
    expect_image_error(b, len, "trailing");
    expect_image_error(b, len, "5 trailing");
    free(b);
    b = make_idx1(0x801, 3, 4, &len);
    expect_label_error(b, len, "trailing");
    free(b);
}

static void test_corrupt_gzip(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_idx3(0x803, 4, 28, 28, 4 * 784, &len);
    uint8_t *gz;
    size_t gz_len;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_idx_encode_images_gz(b + 16, 4, 28, 28, &gz, &gz_len, &err), 0);

    uint8_t *bad = malloc(gz_len);
    /* Garbage in the deflate data. */
    memcpy(bad, gz, gz_len);
    for (size_t i = 12; i < gz_len - 8; i++)
        bad[i] ^= 0xa5;
    expect_image_error(bad, gz_len, "gzip");
    /* A wrong CRC in the trailer. */
    memcpy(bad, gz, gz_len);
    bad[gz_len - 8] ^= 0xff;
    expect_image_error(bad, gz_len, "gzip");
    /* A bad compression method in the header. */
    memcpy(bad, gz, gz_len);
    bad[2] = 0x07;
    expect_image_error(bad, gz_len, "gzip");
    /* Cut short. */
    expect_image_error(gz, gz_len / 2, "gzip");
    expect_image_error(gz, 2, "gzip");
    /* Labels too. */
    expect_label_error(bad, gz_len, "gzip");
    free(bad);
    free(gz);
    free(b);
}

static void test_label_count_mismatch(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_idx3(0x803, 3, 28, 28, 3 * 784, &len);
    gan_dataset ds;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_idx_parse_images(b, len, &ds, &err), 0);
    free(b);

    char path[64];
    b = make_idx1(0x801, 4, 4, &len);
    write_tmp(path, sizeof path, b, len);
    assert_int_equal(gan_idx_load_labels(path, &ds, &err), -1);
    assert_string_equal(err.field, "path");
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "count"));
    assert_non_null(strstr(err.message, "4"));
    assert_non_null(strstr(err.message, "3"));
    assert_null(ds.labels);
    unlink(path);
    free(b);

    /* The matching count attaches. */
    b = make_idx1(0x801, 3, 3, &len);
    write_tmp(path, sizeof path, b, len);
    assert_int_equal(gan_idx_load_labels(path, &ds, &err), 0);
    assert_non_null(ds.labels);
    assert_int_equal(ds.labels[2], 2);
    unlink(path);
    free(b);
    gan_dataset_free(&ds);
}

static void test_label_out_of_range(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_idx1(0x801, 10, 10, &len);
    uint8_t *labels;
    int count;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_idx_parse_labels(b, len, &labels, &count, &err), 0);
    assert_int_equal(count, 10);
    assert_int_equal(labels[9], 9);
    free(labels);
    b[8 + 7] = 10;
    expect_label_error(b, len, "10");
    expect_label_error(b, len, "0..9");
    free(b);
}

static void test_load_errors_name_the_path(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_idx3(0x803, 1, 28, 28, 784 + 1, &len);
    char path[64];
    write_tmp(path, sizeof path, b, len);
    gan_dataset ds;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_idx_load_images(path, &ds, &err), -1);
    assert_string_equal(err.field, "path");
    assert_ptr_equal(strstr(err.message, path), err.message);
    assert_non_null(strstr(err.message, "trailing"));
    unlink(path);
    free(b);

    assert_int_equal(gan_idx_load_images("/nonexistent/idx.gz", &ds, &err), -1);
    assert_string_equal(err.field, "path");
    assert_non_null(strstr(err.message, "/nonexistent/idx.gz"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_dataset_loads),
        cmocka_unit_test(test_plain_parses),
        cmocka_unit_test(test_gzip_roundtrip),
        cmocka_unit_test(test_wrong_magic),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_wrong_dimensions),
        cmocka_unit_test(test_zero_count),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_corrupt_gzip),
        cmocka_unit_test(test_label_count_mismatch),
        cmocka_unit_test(test_label_out_of_range),
        cmocka_unit_test(test_load_errors_name_the_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
