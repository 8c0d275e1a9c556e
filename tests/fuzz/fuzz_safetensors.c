/*
 * tests/fuzz/fuzz_safetensors.c — gan_st_parse on a malloc'd copy of arbitrary bytes.
 *
 * Whatever parses must describe memory inside the buffer, re-encode with
 * gan_st_encode, and parse again to the same tensors (names, dtypes, shapes,
 * bytes, in order) and the same metadata.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gan/safetensors.h"
#include "tests/fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_same(const gan_st_file *a, const gan_st_file *b)
{
    FUZZ_CHECK(a->count == b->count, "%d tensors became %d", a->count, b->count);
    for (int i = 0; i < a->count; i++) {
        const gan_st_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        FUZZ_CHECK(strcmp(x->name, y->name) == 0, "tensor %d: name '%s' became '%s'", i, x->name,
                   y->name);
        FUZZ_CHECK(x->dtype == y->dtype && x->ndim == y->ndim, "tensor '%s': dtype/ndim differ",
                   x->name);
        for (int d = 0; d < x->ndim; d++)
            FUZZ_CHECK(x->shape[d] == y->shape[d], "tensor '%s': shape[%d] differs", x->name, d);
        FUZZ_CHECK(x->nbytes == y->nbytes, "tensor '%s': %zu bytes became %zu", x->name, x->nbytes,
                   y->nbytes);
        FUZZ_CHECK(x->nbytes == 0 || memcmp(x->data, y->data, x->nbytes) == 0,
                   "tensor '%s': data differs", x->name);
    }
    FUZZ_CHECK(a->metadata_count == b->metadata_count, "%d metadata entries became %d",
               a->metadata_count, b->metadata_count);
    for (int i = 0; i < a->metadata_count; i++) {
        const char *v = gan_st_meta(b, a->metadata[i].key);
        FUZZ_CHECK(v && strcmp(v, a->metadata[i].value) == 0, "metadata '%s' differs",
                   a->metadata[i].key);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf != NULL, "out of memory");
    if (size)
        memcpy(buf, data, size);

    gan_st_file f;
    gan_error err = {{0}, {0}};
    if (gan_st_parse(buf, size, &f, &err) != 0) { /* buf is freed */
        FUZZ_CHECK(err.message[0] != '\0', "an error without a message");
        return 0;
    }
    FUZZ_CHECK(f.buffer == buf && f.buffer_len == size, "the file does not own its buffer");
    FUZZ_CHECK(f.count >= 0 && (f.count == 0 || f.tensors), "bad tensor count %d", f.count);
    for (int i = 0; i < f.count; i++) {
        const gan_st_tensor *t = &f.tensors[i];
        const uint8_t *p = t->data;
        FUZZ_CHECK(t->nbytes <= size && p >= buf + 8 && p + t->nbytes <= buf + size,
                   "tensor '%s' points outside the file", t->name);
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= GAN_ST_MAX_DIMS, "tensor '%s': ndim %d", t->name,
                   t->ndim);
        FUZZ_CHECK(gan_st_find(&f, t->name) == t, "tensor '%s' is not found by name", t->name);
    }

    uint8_t *enc = NULL;
    size_t enc_len = 0;
    FUZZ_CHECK(
        gan_st_encode(f.tensors, f.count, f.metadata, f.metadata_count, &enc, &enc_len, &err) == 0,
        "a parsed file does not re-encode: %s", err.message);
    gan_st_file g;
    FUZZ_CHECK(gan_st_parse(enc, enc_len, &g, &err) == 0, "the re-encoded file does not parse: %s",
               err.message);
    check_same(&f, &g);
    gan_st_free(&g);
    gan_st_free(&f);
    return 0;
}
