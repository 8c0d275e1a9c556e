/* tests/unit/test_safetensors.c — gan/safetensors: round trip, format rules, hostile files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gan/fsutil.h"
#include "gan/safetensors.h"

static const float W[6] = {0.5f, -1.25f, 3.0e-8f, 1.0e30f, -0.0f, 42.0f};
static const int64_t STEP = 1234567890123LL;
static const uint8_t LABELS[5] = {0, 9, 3, 255, 7};
static const int32_t IDX[4] = {-1, 2, -2147483647 - 1, 2147483647};

static int make_tensors(gan_st_tensor *t)
{
    memset(t, 0, 4 * sizeof *t);
    snprintf(t[0].name, sizeof t[0].name, "g.w1");
    t[0].dtype = GAN_F32;
    t[0].ndim = 2;
    t[0].shape[0] = 2;
    t[0].shape[1] = 3;
    t[0].data = W;
    t[0].nbytes = sizeof W;

    snprintf(t[1].name, sizeof t[1].name, "step");
    t[1].dtype = GAN_I64;
    t[1].ndim = 0; /* scalar */
    t[1].data = &STEP;
    t[1].nbytes = sizeof STEP;

    snprintf(t[2].name, sizeof t[2].name, "labels");
    t[2].dtype = GAN_U8;
    t[2].ndim = 1;
    t[2].shape[0] = 5;
    t[2].data = LABELS;
    t[2].nbytes = sizeof LABELS;

    snprintf(t[3].name, sizeof t[3].name, "idx \"quoted\"");
    t[3].dtype = GAN_I32;
    t[3].ndim = 3;
    t[3].shape[0] = 2;
    t[3].shape[1] = 1;
    t[3].shape[2] = 2;
    t[3].data = IDX;
    t[3].nbytes = sizeof IDX;
    return 4;
}

static const gan_st_metadata META[2] = {{"format", "gand"}, {"epoch", "17"}};

static void check_contains(const gan_error *err, const char *word)
{
    assert_string_equal(err->field, "checkpoint");
    if (!strstr(err->message, word))
        fail_msg("message '%s' lacks '%s'", err->message, word);
}

static void test_round_trip(void **state)
{
    (void)state;
    gan_st_tensor t[4];
    int n = make_tensors(t);
    gan_error err = {{0}, {0}};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(gan_st_encode(t, n, META, 2, &buf, &len, &err), 0);

    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    gan_st_file f;
    assert_int_equal(gan_st_parse(copy, len, &f, &err), 0);
    assert_int_equal(f.count, 4);
    assert_int_equal(f.metadata_count, 2);
    for (int i = 0; i < n; i++) {
        assert_string_equal(f.tensors[i].name, t[i].name); /* order kept */
        const gan_st_tensor *g = gan_st_find(&f, t[i].name);
        assert_ptr_equal(g, &f.tensors[i]);
        assert_int_equal(g->dtype, t[i].dtype);
        assert_int_equal(g->ndim, t[i].ndim);
        for (int d = 0; d < t[i].ndim; d++)
            assert_int_equal(g->shape[d], t[i].shape[d]);
        assert_int_equal(g->nbytes, t[i].nbytes);
        assert_memory_equal(g->data, t[i].data, t[i].nbytes);
    }
    float w[6];
    memcpy(w, gan_st_find(&f, "g.w1")->data, sizeof w); /* data may be unaligned */
    for (int i = 0; i < 6; i++)
        assert_memory_equal(&w[i], &W[i], sizeof w[i]); /* bit-exact, -0.0 included */
    int64_t step;
    memcpy(&step, gan_st_find(&f, "step")->data, sizeof step);
    assert_true(step == STEP);
    assert_string_equal(gan_st_meta(&f, "format"), "gand");
    assert_string_equal(gan_st_meta(&f, "epoch"), "17");
    assert_null(gan_st_meta(&f, "missing"));
    assert_null(gan_st_find(&f, "missing"));
    assert_null(gan_st_find(NULL, "step"));

    /* Re-encoding what was read gives the same bytes. */
    uint8_t *again = NULL;
    size_t again_len = 0;
    assert_int_equal(
        gan_st_encode(f.tensors, f.count, f.metadata, f.metadata_count, &again, &again_len, &err),
        0);
    assert_int_equal(again_len, len);
    assert_memory_equal(again, buf, len);

    gan_st_free(&f);
    assert_null(f.buffer);
    assert_int_equal(f.count, 0);
    gan_st_free(&f); /* twice is harmless */
    free(again);
    free(buf);
}

static void test_empty_file(void **state)
{
    (void)state;
    gan_error err = {{0}, {0}};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(gan_st_encode(NULL, 0, NULL, 0, &buf, &len, &err), 0);
    assert_int_equal(len, 16); /* "{}" padded to 8 */
    gan_st_file f;
    assert_int_equal(gan_st_parse(buf, len, &f, &err), 0);
    assert_int_equal(f.count, 0);
    assert_int_equal(f.metadata_count, 0);
    gan_st_free(&f);
}

/* Written file follows the reference implementation's rules (what Python's safetensors loads). */
static void test_written_file_format(void **state)
{
    (void)state;
    char dir[] = "/tmp/gand-st-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);

    gan_st_tensor t[4];
    int n = make_tensors(t);
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_st_write(path, t, n, META, 2, &err), 0);

    uint8_t *file = NULL;
    size_t len = 0;
    assert_int_equal(gan_read_file(path, &file, &len, 1 << 20, &err), 0);
    assert_true(len >= 8);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)file[i] << (8 * i);
    assert_true(hlen <= len - 8);
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(file[8], '{');

    char *json = malloc(hlen + 1);
    assert_non_null(json);
    memcpy(json, file + 8, hlen);
    json[hlen] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 0);
    assert_non_null(root);
    for (const char *p = end; *p; p++)
        assert_int_equal(*p, ' ');                /* padding is spaces only */
    assert_true((size_t)(end - json) + 8 > hlen); /* less than 8 bytes of padding */

    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    assert_true(cJSON_IsObject(meta));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(meta, "format")->valuestring, "gand");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(meta, "epoch")->valuestring, "17");

    /* Tensors contiguous from 0 in order, ending at the end of the file. */
    uint64_t expect_begin = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, t[i].name);
        assert_true(cJSON_IsObject(e));
        static const char *names[] = {"F32", "I32", "I64", "U8"};
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring,
                            names[t[i].dtype]);
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        assert_true(cJSON_IsArray(shape));
        assert_int_equal(cJSON_GetArraySize(shape), t[i].ndim);
        for (int d = 0; d < t[i].ndim; d++)
            assert_int_equal(cJSON_GetArrayItem(shape, d)->valuedouble, t[i].shape[d]);
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        assert_int_equal(cJSON_GetArraySize(off), 2);
        uint64_t b = (uint64_t)cJSON_GetArrayItem(off, 0)->valuedouble;
        uint64_t en = (uint64_t)cJSON_GetArrayItem(off, 1)->valuedouble;
        assert_int_equal(b, expect_begin);
        assert_int_equal(en - b, t[i].nbytes);
        assert_memory_equal(file + 8 + hlen + b, t[i].data, t[i].nbytes);
        expect_begin = en;
    }
    assert_int_equal(8 + hlen + expect_begin, len);
    assert_int_equal(cJSON_GetArraySize(root), n + 1);
    cJSON_Delete(root);
    free(json);

    gan_st_file f;
    assert_int_equal(gan_st_read(path, &f, &err), 0);
    assert_int_equal(f.count, n);
    gan_st_free(&f);

    char missing[300];
    snprintf(missing, sizeof missing, "%s/none.safetensors", dir);
    assert_int_equal(gan_st_read(missing, &f, &err), -1);
    assert_string_equal(err.field, "path");

    /* A corrupt file: the message names the path. */
    file[0] = 0xff;
    assert_int_equal(gan_write_file_atomic(path, file, len, &err), 0);
    assert_int_equal(gan_st_read(path, &f, &err), -1);
    check_contains(&err, "header length");
    assert_non_null(strstr(err.message, path));

    free(file);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* A file from a header text (padded to 8 with spaces) and data_len bytes of data. */
static uint8_t *make_file(const char *json, size_t data_len, size_t *len)
{
    size_t jl = strlen(json), hl = (jl + 7) / 8 * 8;
    *len = 8 + hl + data_len;
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, json, jl);
    memset(buf + 8 + jl, ' ', hl - jl);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + hl + i] = (uint8_t)i;
    return buf;
}

static void expect_reject_buf(uint8_t *buf, size_t len, const char *word)
{
    gan_st_file f;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_st_parse(buf, len, &f, &err), -1); /* frees buf */
    check_contains(&err, word);
    assert_null(f.buffer);
    assert_null(f.tensors);
    assert_int_equal(f.count, 0);
}

static void expect_reject(const char *json, size_t data_len, const char *word)
{
    size_t len;
    uint8_t *buf = make_file(json, data_len, &len);
    expect_reject_buf(buf, len, word);
}

static void expect_accept(const char *json, size_t data_len, int count)
{
    size_t len;
    uint8_t *buf = make_file(json, data_len, &len);
    gan_st_file f;
    gan_error err = {{0}, {0}};
    if (gan_st_parse(buf, len, &f, &err) != 0)
        fail_msg("rejected %s: %s", json, err.message);
    assert_int_equal(f.count, count);
    gan_st_free(&f);
}

static void test_hostile_prefix(void **state)
{
    (void)state;
    /* Truncated 8-byte prefix. */
    for (size_t n = 0; n < 8; n++) {
        uint8_t *buf = malloc(8);
        assert_non_null(buf);
        memset(buf, 0, 8);
        expect_reject_buf(buf, n, "too short");
    }
    /* Header length larger than the file. */
    size_t len;
    uint8_t *buf = make_file("{}", 0, &len);
    buf[0] = 64;
    expect_reject_buf(buf, len, "exceeds the file");
    /* Header length above 100 MB (also above the file). */
    buf = make_file("{}", 0, &len);
    memset(buf, 0xff, 8);
    expect_reject_buf(buf, len, "limit");
    buf = make_file("{}", 0, &len);
    memset(buf, 0, 8);
    buf[3] = 0x10; /* 268435456 */
    expect_reject_buf(buf, len, "limit");
    /* Zero-length header. */
    buf = make_file("", 8, &len);
    expect_reject_buf(buf, len, "JSON");
}

static void test_hostile_json(void **state)
{
    (void)state;
    expect_reject("{\"a\": ", 0, "JSON");
    expect_reject("not json", 0, "JSON");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}", 1, "JSON");
    expect_reject("[1, 2]", 0, "object");
    expect_reject("{} {}", 0, "after its JSON");
    expect_reject("{\"a\":5}", 0, "not a JSON object");
    /* A NUL inside the header. */
    size_t len;
    uint8_t *buf = make_file("{}      x", 0, &len);
    buf[8 + 3] = '\0';
    expect_reject_buf(buf, len, "after its JSON");
}

static void test_hostile_entries(void **state)
{
    (void)state;
    expect_reject("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
                  "dtype 'F16'");
    expect_reject("{\"a\":{\"dtype\":3,\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "dtype");
    expect_reject("{\"a\":{\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "dtype");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,4]}}", 4, "shape");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0,
                  "shape[0]");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 2,
                  "shape[0]");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[\"2\"],\"data_offsets\":[0,2]}}", 2,
                  "shape[0]");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
                  "dimensions");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, "data_offsets");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 1,
                  "data_offsets");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 2,
                  "data_offsets");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 1,
                  "data_offsets");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,1]}}", 2,
                  "after end");
    /* Shape / offsets size mismatch: F32 [2] needs 8 bytes, offsets give 4. */
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8,
                  "does not match");
    expect_reject("{\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,4]}}", 8,
                  "does not match");
    /* Offsets beyond the data. */
    expect_reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 4,
                  "tensor 'w': data_offsets exceed the file");
    expect_reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],"
                  "\"data_offsets\":[1e300,1e300]}}",
                  4, "data_offsets");
    /* Shape whose byte size overflows 64 bits must not wrap to the offsets' size. */
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],"
                  "\"data_offsets\":[0,0]}}",
                  0, "shape[0]");
    expect_reject("{\"a\":{\"dtype\":\"I64\",\"shape\":[4294967296,4294967296,4294967296],"
                  "\"data_offsets\":[0,0]}}",
                  0, "does not match");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[2147483648,2147483648,4],"
                  "\"data_offsets\":[0,0]}}",
                  0, "does not match");
    /* Overlapping tensors. */
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                  12, "overlaps");
    expect_reject("{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[3,5]},"
                  "\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}",
                  8, "overlaps");
    /* Duplicate names. */
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                  "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                  2, "duplicate");
    expect_reject("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate");
    /* Names. */
    expect_reject("{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "empty");
    char json[512];
    char name[200];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(json, sizeof json, "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
             name);
    expect_reject(json, 1, "longer than");
    /* Metadata. */
    expect_reject("{\"__metadata__\":{\"epoch\":3}}", 0, "not a string");
    expect_reject("{\"__metadata__\":{\"k\":null}}", 0, "not a string");
    expect_reject("{\"__metadata__\":[\"a\"]}", 0, "__metadata__");
    expect_reject("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "duplicate");
}

static void test_lenient_but_safe(void **state)
{
    (void)state;
    /* Empty tensors may sit anywhere; holes are allowed; tensors in any order. */
    expect_accept("{\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
                  "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]},"
                  "\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                  10, 3);
    /* A zero dimension makes the size 0 even after huge ones. */
    expect_accept("{\"e\":{\"dtype\":\"I64\",\"shape\":[4294967296,4294967296,0],"
                  "\"data_offsets\":[0,0]}}",
                  0, 1);
    /* Unaligned data (header not padded to 8) is accepted; callers memcpy. */
    const char *json = "{\"f\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    size_t jl = strlen(json);
    uint8_t *buf = malloc(8 + jl + 4);
    assert_non_null(buf);
    memset(buf, 0, 8);
    buf[0] = (uint8_t)jl;
    memcpy(buf + 8, json, jl);
    float one = 1.0f;
    memcpy(buf + 8 + jl, &one, 4);
    gan_st_file f;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_st_parse(buf, 8 + jl + 4, &f, &err), 0);
    float got;
    memcpy(&got, gan_st_find(&f, "f")->data, sizeof got);
    assert_true(got == 1.0f);
    gan_st_free(&f);
}

static void expect_encode_error(const gan_st_tensor *t, int n, const gan_st_metadata *m, int mc,
                                const char *word)
{
    uint8_t *buf = (uint8_t *)1;
    size_t len = 5;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_st_encode(t, n, m, mc, &buf, &len, &err), -1);
    assert_null(buf);
    assert_int_equal(len, 0);
    check_contains(&err, word);
}

static void test_encode_validation(void **state)
{
    (void)state;
    gan_st_tensor t[4];
    int n = make_tensors(t);
    t[0].nbytes = 20;
    expect_encode_error(t, n, NULL, 0, "nbytes");
    n = make_tensors(t);
    t[2].shape[0] = 6;
    expect_encode_error(t, n, NULL, 0, "tensor 'labels'");
    n = make_tensors(t);
    memcpy(t[3].name, "step", 5);
    expect_encode_error(t, n, NULL, 0, "duplicate");
    n = make_tensors(t);
    t[1].name[0] = '\0';
    expect_encode_error(t, n, NULL, 0, "empty");
    n = make_tensors(t);
    memset(t[1].name, 'x', sizeof t[1].name);
    expect_encode_error(t, n, NULL, 0, "longer");
    n = make_tensors(t);
    snprintf(t[1].name, sizeof t[1].name, "__metadata__");
    expect_encode_error(t, n, NULL, 0, "reserved");
    n = make_tensors(t);
    t[0].ndim = 5;
    expect_encode_error(t, n, NULL, 0, "ndim");
    n = make_tensors(t);
    t[0].shape[1] = -3;
    expect_encode_error(t, n, NULL, 0, "shape[1]");
    n = make_tensors(t);
    t[0].dtype = (gan_dtype)9;
    expect_encode_error(t, n, NULL, 0, "dtype");
    n = make_tensors(t);
    t[0].data = NULL;
    expect_encode_error(t, n, NULL, 0, "NULL");
    n = make_tensors(t);
    const gan_st_metadata dup[2] = {{"k", "1"}, {"k", "2"}};
    expect_encode_error(t, n, dup, 2, "duplicate");
    const gan_st_metadata null_value[1] = {{"k", NULL}};
    expect_encode_error(t, n, null_value, 1, "NULL");
    expect_encode_error(t, -1, NULL, 0, "count");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),          cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_written_file_format), cmocka_unit_test(test_hostile_prefix),
        cmocka_unit_test(test_hostile_json),        cmocka_unit_test(test_hostile_entries),
        cmocka_unit_test(test_lenient_but_safe),    cmocka_unit_test(test_encode_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
