/*
 * tests/fuzz/fuzz_idx.c — gan_idx_parse_images and gan_idx_parse_labels on arbitrary
 * bytes (plain or gzip; the library caps what gzip may decompress to).
 *
 * What parses must be consistent: 28×28 images, count ≥ 1, labels 0..9; a plain
 * input is exactly header + data and the parsed bytes are the input's; images
 * re-encoded with gan_idx_encode_images_gz parse back to the same pixels.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gan/idx.h"
#include "tests/fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_gzip(const uint8_t *data, size_t size)
{
    return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

static void fuzz_images(const uint8_t *data, size_t size)
{
    gan_dataset ds;
    gan_error err = {{0}, {0}};
    if (gan_idx_parse_images(data, size, &ds, &err) != 0) {
        FUZZ_CHECK(err.message[0] != '\0', "an error without a message");
        FUZZ_CHECK(ds.pixels == NULL && ds.count == 0, "a failed parse left a dataset behind");
        return;
    }
    FUZZ_CHECK(ds.count >= 1 && ds.rows == GAN_IMAGE_ROWS && ds.cols == GAN_IMAGE_COLS &&
                   ds.pixels != NULL && ds.labels == NULL,
               "bad dataset: %d images of %d×%d", ds.count, ds.rows, ds.cols);
    size_t npix = (size_t)ds.count * GAN_IMAGE_PIXELS;
    if (!is_gzip(data, size)) {
        FUZZ_CHECK(size == 16 + npix, "%zu bytes parsed as %d images", size, ds.count);
        FUZZ_CHECK(memcmp(ds.pixels, data + 16, npix) == 0, "pixels differ from the input");
    }

    uint8_t *gz = NULL;
    size_t gz_len = 0;
    FUZZ_CHECK(
        gan_idx_encode_images_gz(ds.pixels, ds.count, ds.rows, ds.cols, &gz, &gz_len, &err) == 0,
        "cannot re-encode %d images: %s", ds.count, err.message);
    gan_dataset back;
    FUZZ_CHECK(gan_idx_parse_images(gz, gz_len, &back, &err) == 0,
               "re-encoded images do not parse: %s", err.message);
    FUZZ_CHECK(back.count == ds.count && memcmp(back.pixels, ds.pixels, npix) == 0,
               "re-encoded images differ");
    gan_dataset_free(&back);
    free(gz);
    gan_dataset_free(&ds);
}

static void fuzz_labels(const uint8_t *data, size_t size)
{
    uint8_t *labels = (uint8_t *)&labels; /* must be reset to NULL on failure */
    int count = -1;
    gan_error err = {{0}, {0}};
    if (gan_idx_parse_labels(data, size, &labels, &count, &err) != 0) {
        FUZZ_CHECK(err.message[0] != '\0', "an error without a message");
        FUZZ_CHECK(labels == NULL && count == 0, "a failed parse left labels behind");
        return;
    }
    FUZZ_CHECK(count >= 1 && labels != NULL, "bad labels: count %d", count);
    for (int i = 0; i < count; i++)
        FUZZ_CHECK(labels[i] <= 9, "label %d is %u", i, (unsigned)labels[i]);
    if (!is_gzip(data, size)) {
        FUZZ_CHECK(size == 8 + (size_t)count, "%zu bytes parsed as %d labels", size, count);
        FUZZ_CHECK(memcmp(labels, data + 8, (size_t)count) == 0, "labels differ from the input");
    }
    free(labels);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_images(data, size);
    fuzz_labels(data, size);
    return 0;
}
