/*
 * gan/safetensors.c — read and write safetensors files, see safetensors.h.
 *
 * The writer lays tensors out contiguously from offset 0 in the order given
 * and pads the JSON header with spaces so the data starts 8-byte aligned,
 * which is what the reference (Rust/Python) implementation expects.
 *
 * The reader is strict about everything that could make it read out of
 * bounds or mislead a caller, and lenient only where nothing can go wrong
 * (unknown keys inside a tensor entry are ignored, holes between tensors
 * are allowed).
 *
 * Alignment: a parsed tensor's `data` points into the file buffer at
 * 8 + header length + begin. The header is padded to 8 by writers that
 * follow the format, but a hostile or foreign file need not be, so `data`
 * may be unaligned for F32/I32/I64: callers must memcpy out of it, never
 * cast it to float * and dereference.
 */
#include "gan/safetensors.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/fsutil.h"

/* Tensor data is stored little-endian and copied as is. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "gan/safetensors.c assumes a little-endian host");
#else
#error "cannot tell the byte order of this host; gan/safetensors.c needs little-endian"
#endif

#define FIELD "checkpoint"
#define METADATA_KEY "__metadata__"

/* Same limit as the reference implementation. */
enum { HEADER_MAX = 100000000 };

/* Largest file gan_st_read loads. */
#define ST_READ_MAX ((size_t)4 << 30)

/* Integers in JSON are doubles to cJSON; beyond 2^53 they are not exact. */
#define JSON_INT_MAX 9007199254740992.0

static const char *dtype_name(gan_dtype d)
{
    switch (d) {
    case GAN_F32:
        return "F32";
    case GAN_I32:
        return "I32";
    case GAN_I64:
        return "I64";
    case GAN_U8:
        return "U8";
    }
    return NULL;
}

static size_t dtype_size(gan_dtype d)
{
    switch (d) {
    case GAN_F32:
    case GAN_I32:
        return 4;
    case GAN_I64:
        return 8;
    case GAN_U8:
        return 1;
    }
    return 0;
}

static int dtype_parse(const char *s, gan_dtype *d)
{
    static const gan_dtype all[] = {GAN_F32, GAN_I32, GAN_I64, GAN_U8};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(s, dtype_name(all[i])) == 0) {
            *d = all[i];
            return 0;
        }
    }
    return -1;
}

/*
 * Byte size of a tensor: product(shape) * element size. Returns -1 on
 * overflow (of uint64). A zero dimension makes the size 0 whatever the
 * other dimensions are.
 */
static int shape_bytes(const int64_t *shape, int ndim, size_t elem, uint64_t *bytes)
{
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) {
            *bytes = 0;
            return 0;
        }
    }
    uint64_t p = elem;
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (p > UINT64_MAX / d)
            return -1;
        p *= d;
    }
    *bytes = p;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts names (an array of n pointers) and returns the first duplicate or NULL. */
static const char *find_duplicate(const char **names, size_t n)
{
    if (n < 2)
        return NULL;
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            return names[i];
    return NULL;
}

/* ---------------------------------------------------------------- writer */

static int check_tensors(const gan_st_tensor *t, int count, const gan_st_metadata *meta,
                         int meta_count, gan_error *err)
{
    if (count < 0 || (count > 0 && !t))
        return gan_fail(err, FIELD, "tensor count must be 0 or more with a tensor array, got %d",
                        count);
    if (meta_count < 0 || (meta_count > 0 && !meta))
        return gan_fail(err, FIELD,
                        "metadata count must be 0 or more with a metadata array, got %d",
                        meta_count);
    for (int i = 0; i < count; i++) {
        size_t len = strnlen(t[i].name, GAN_ST_NAME_MAX);
        if (len == 0)
            return gan_fail(err, FIELD, "tensor %d: the name is empty", i);
        if (len >= GAN_ST_NAME_MAX)
            return gan_fail(err, FIELD, "tensor %d: the name is longer than %d bytes", i,
                            GAN_ST_NAME_MAX - 1);
        if (strcmp(t[i].name, METADATA_KEY) == 0)
            return gan_fail(err, FIELD, "tensor %d: the name '%s' is reserved", i, METADATA_KEY);
        if (!dtype_name(t[i].dtype))
            return gan_fail(err, FIELD, "tensor '%s': unknown dtype %d", t[i].name,
                            (int)t[i].dtype);
        if (t[i].ndim < 0 || t[i].ndim > GAN_ST_MAX_DIMS)
            return gan_fail(err, FIELD, "tensor '%s': ndim must be in 0..%d, got %d", t[i].name,
                            GAN_ST_MAX_DIMS, t[i].ndim);
        for (int d = 0; d < t[i].ndim; d++)
            if (t[i].shape[d] < 0 || (double)t[i].shape[d] > JSON_INT_MAX)
                return gan_fail(err, FIELD, "tensor '%s': shape[%d] must be in 0..2^53, got %lld",
                                t[i].name, d, (long long)t[i].shape[d]);
        uint64_t bytes;
        if (shape_bytes(t[i].shape, t[i].ndim, dtype_size(t[i].dtype), &bytes) != 0 ||
            bytes != (uint64_t)t[i].nbytes)
            return gan_fail(err, FIELD,
                            "tensor '%s': nbytes is %zu but the shape and dtype %s need a "
                            "different size",
                            t[i].name, t[i].nbytes, dtype_name(t[i].dtype));
        if (t[i].nbytes > 0 && !t[i].data)
            return gan_fail(err, FIELD, "tensor '%s': data is NULL", t[i].name);
    }
    for (int i = 0; i < meta_count; i++)
        if (!meta[i].key || !meta[i].value)
            return gan_fail(err, FIELD, "metadata entry %d: key and value must not be NULL", i);

    int rc = 0;
    size_t n = (size_t)(count > meta_count ? count : meta_count);
    const char **names = n ? malloc(n * sizeof *names) : NULL;
    if (n && !names)
        return gan_fail(err, FIELD, "out of memory");
    for (int i = 0; i < count; i++)
        names[i] = t[i].name;
    const char *dup = find_duplicate(names, (size_t)count);
    if (dup) {
        rc = gan_fail(err, FIELD, "tensor '%s': duplicate name", dup);
    } else {
        for (int i = 0; i < meta_count; i++)
            names[i] = meta[i].key;
        dup = find_duplicate(names, (size_t)meta_count);
        if (dup)
            rc = gan_fail(err, FIELD, "metadata key '%s': duplicate key", dup);
    }
    free(names);
    return rc;
}

static cJSON *build_header(const gan_st_tensor *t, int count, const gan_st_metadata *meta,
                           int meta_count)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    if (meta_count > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, METADATA_KEY);
        if (!m)
            goto fail;
        for (int i = 0; i < meta_count; i++)
            if (!cJSON_AddStringToObject(m, meta[i].key, meta[i].value))
                goto fail;
    }
    uint64_t offset = 0;
    for (int i = 0; i < count; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name);
        if (!e || !cJSON_AddStringToObject(e, "dtype", dtype_name(t[i].dtype)))
            goto fail;
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        if (!shape)
            goto fail;
        for (int d = 0; d < t[i].ndim; d++) {
            cJSON *v = cJSON_CreateNumber((double)t[i].shape[d]);
            if (!v)
                goto fail;
            cJSON_AddItemToArray(shape, v);
        }
        cJSON *off = cJSON_AddArrayToObject(e, "data_offsets");
        if (!off)
            goto fail;
        cJSON *b = cJSON_CreateNumber((double)offset);
        if (!b)
            goto fail;
        cJSON_AddItemToArray(off, b);
        offset += t[i].nbytes;
        cJSON *en = cJSON_CreateNumber((double)offset);
        if (!en)
            goto fail;
        cJSON_AddItemToArray(off, en);
    }
    return root;
fail:
    cJSON_Delete(root);
    return NULL;
}

int gan_st_encode(const gan_st_tensor *tensors, int count, const gan_st_metadata *metadata,
                  int metadata_count, uint8_t **out, size_t *out_len, gan_error *err)
{
    if (!out || !out_len)
        return gan_fail(err, FIELD, "output pointers must not be NULL");
    *out = NULL;
    *out_len = 0;
    if (check_tensors(tensors, count, metadata, metadata_count, err) != 0)
        return -1;

    size_t data_len = 0;
    for (int i = 0; i < count; i++) {
        if (tensors[i].nbytes > SIZE_MAX / 2 - data_len)
            return gan_fail(err, FIELD, "the tensors are too large to encode");
        data_len += tensors[i].nbytes;
    }
    if ((double)data_len > JSON_INT_MAX)
        return gan_fail(err, FIELD, "the tensors are too large to encode");

    cJSON *root = build_header(tensors, count, metadata, metadata_count);
    char *json = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json)
        return gan_fail(err, FIELD, "out of memory building the header");
    size_t jlen = strlen(json);
    size_t hlen = (jlen + 7) / 8 * 8;
    if (hlen > HEADER_MAX) {
        free(json);
        return gan_fail(err, FIELD, "the header would be %zu bytes, more than the limit of %d",
                        hlen, HEADER_MAX);
    }
    if (data_len > SIZE_MAX - 8 - hlen) {
        free(json);
        return gan_fail(err, FIELD, "the tensors are too large to encode");
    }
    size_t total = 8 + hlen + data_len;
    uint8_t *buf = malloc(total ? total : 1);
    if (!buf) {
        free(json);
        return gan_fail(err, FIELD, "out of memory for a %zu-byte file", total);
    }
    uint64_t h = hlen;
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(h >> (8 * i));
    memcpy(buf + 8, json, jlen);
    memset(buf + 8 + jlen, ' ', hlen - jlen);
    free(json);
    uint8_t *p = buf + 8 + hlen;
    for (int i = 0; i < count; i++) {
        if (tensors[i].nbytes)
            memcpy(p, tensors[i].data, tensors[i].nbytes);
        p += tensors[i].nbytes;
    }
    *out = buf;
    *out_len = total;
    return 0;
}

int gan_st_write(const char *path, const gan_st_tensor *tensors, int count,
                 const gan_st_metadata *metadata, int metadata_count, gan_error *err)
{
    if (!path || !*path)
        return gan_fail(err, "path", "path must not be empty");
    uint8_t *buf = NULL;
    size_t len = 0;
    if (gan_st_encode(tensors, count, metadata, metadata_count, &buf, &len, err) != 0)
        return -1;
    int rc = gan_write_file_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- reader */

/* A JSON number that is a whole number in 0..2^53. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > JSON_INT_MAX || d != (double)(uint64_t)d)
        return -1;
    *out = (uint64_t)d;
    return 0;
}

struct range {
    uint64_t begin, end;
    int index;
};

static int cmp_range(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int parse_tensor(const cJSON *e, const uint8_t *data, uint64_t data_len, gan_st_tensor *t,
                        gan_error *err)
{
    const char *name = e->string;
    size_t nlen = strlen(name);
    if (nlen == 0)
        return gan_fail(err, FIELD, "a tensor has an empty name");
    if (nlen >= GAN_ST_NAME_MAX)
        return gan_fail(err, FIELD, "tensor '%.40s...': the name is longer than %d bytes", name,
                        GAN_ST_NAME_MAX - 1);
    memcpy(t->name, name, nlen + 1);
    if (!cJSON_IsObject(e))
        return gan_fail(err, FIELD, "tensor '%s': the entry is not a JSON object", name);

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dtype))
        return gan_fail(err, FIELD, "tensor '%s': dtype is missing or not a string", name);
    if (dtype_parse(dtype->valuestring, &t->dtype) != 0)
        return gan_fail(err, FIELD, "tensor '%s': unknown dtype '%.32s' (F32, I32, I64, U8)", name,
                        dtype->valuestring);

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(shape))
        return gan_fail(err, FIELD, "tensor '%s': shape is missing or not an array", name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > GAN_ST_MAX_DIMS)
        return gan_fail(err, FIELD, "tensor '%s': shape has %d dimensions, at most %d allowed",
                        name, ndim, GAN_ST_MAX_DIMS);
    t->ndim = ndim;
    int d = 0;
    for (const cJSON *v = shape->child; v; v = v->next, d++) {
        uint64_t u;
        if (json_uint(v, &u) != 0)
            return gan_fail(err, FIELD, "tensor '%s': shape[%d] must be a non-negative integer",
                            name, d);
        t->shape[d] = (int64_t)u;
    }

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || json_uint(off->child, &begin) ||
        json_uint(off->child->next, &end))
        return gan_fail(err, FIELD, "tensor '%s': data_offsets must be two non-negative integers",
                        name);
    if (begin > end)
        return gan_fail(err, FIELD, "tensor '%s': data_offsets begin %llu is after end %llu", name,
                        (unsigned long long)begin, (unsigned long long)end);
    if (end > data_len)
        return gan_fail(err, FIELD,
                        "tensor '%s': data_offsets exceed the file (end %llu, %llu data bytes)",
                        name, (unsigned long long)end, (unsigned long long)data_len);
    uint64_t bytes;
    if (shape_bytes(t->shape, t->ndim, dtype_size(t->dtype), &bytes) != 0 || bytes != end - begin)
        return gan_fail(err, FIELD,
                        "tensor '%s': data_offsets span %llu bytes, which does not match the "
                        "size of its shape and dtype %s",
                        name, (unsigned long long)(end - begin), dtype_name(t->dtype));
    t->data = data + begin;
    t->nbytes = (size_t)(end - begin);
    return 0;
}

static int parse_metadata(const cJSON *m, gan_st_file *out, gan_error *err)
{
    if (!cJSON_IsObject(m))
        return gan_fail(err, FIELD, "%s is not a JSON object", METADATA_KEY);
    size_t n = 0, bytes = 0;
    for (const cJSON *v = m->child; v; v = v->next, n++) {
        if (!cJSON_IsString(v))
            return gan_fail(err, FIELD, "%s '%.64s': the value is not a string", METADATA_KEY,
                            v->string);
        bytes += strlen(v->string) + 1 + strlen(v->valuestring) + 1;
    }
    if (n == 0)
        return 0;
    if (n > (size_t)INT32_MAX)
        return gan_fail(err, FIELD, "%s has too many entries", METADATA_KEY);
    const char **keys = malloc(n * sizeof *keys);
    out->metadata = calloc(n, sizeof *out->metadata);
    out->metadata_strings = malloc(bytes);
    if (!keys || !out->metadata || !out->metadata_strings) {
        free(keys);
        return gan_fail(err, FIELD, "out of memory reading %s", METADATA_KEY);
    }
    size_t i = 0;
    for (const cJSON *v = m->child; v; v = v->next)
        keys[i++] = v->string;
    const char *dup = find_duplicate(keys, n);
    free(keys);
    if (dup)
        return gan_fail(err, FIELD, "%s key '%.64s': duplicate key", METADATA_KEY, dup);

    char *s = out->metadata_strings;
    i = 0;
    for (const cJSON *v = m->child; v; v = v->next, i++) {
        size_t kl = strlen(v->string) + 1, vl = strlen(v->valuestring) + 1;
        memcpy(s, v->string, kl);
        out->metadata[i].key = s;
        s += kl;
        memcpy(s, v->valuestring, vl);
        out->metadata[i].value = s;
        s += vl;
    }
    out->metadata_count = (int)n;
    return 0;
}

/* Everything after the header is read; out->buffer is already set. */
static int parse_header(const cJSON *root, const uint8_t *data, uint64_t data_len, gan_st_file *out,
                        gan_error *err)
{
    if (!cJSON_IsObject(root))
        return gan_fail(err, FIELD, "the header is not a JSON object");

    size_t entries = 0, tensors = 0;
    const cJSON *meta = NULL;
    for (const cJSON *e = root->child; e; e = e->next, entries++) {
        if (strcmp(e->string, METADATA_KEY) == 0)
            meta = e;
        else
            tensors++;
    }
    if (tensors > (size_t)INT32_MAX)
        return gan_fail(err, FIELD, "the header lists too many tensors");

    /* Duplicate names (cJSON keeps them), __metadata__ included. */
    if (entries > 1) {
        const char **names = malloc(entries * sizeof *names);
        if (!names)
            return gan_fail(err, FIELD, "out of memory reading the header");
        size_t i = 0;
        for (const cJSON *e = root->child; e; e = e->next)
            names[i++] = e->string;
        const char *dup = find_duplicate(names, entries);
        int rc =
            dup ? gan_fail(err, FIELD, "tensor '%.*s': duplicate name", GAN_ST_NAME_MAX, dup) : 0;
        free(names);
        if (rc)
            return rc;
    }

    if (meta && parse_metadata(meta, out, err) != 0)
        return -1;

    if (tensors == 0)
        return 0;
    out->tensors = calloc(tensors, sizeof *out->tensors);
    struct range *ranges = malloc(tensors * sizeof *ranges);
    if (!out->tensors || !ranges) {
        free(ranges);
        return gan_fail(err, FIELD, "out of memory reading the header");
    }
    size_t n = 0, nonempty = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (e == meta)
            continue;
        gan_st_tensor *t = &out->tensors[n];
        if (parse_tensor(e, data, data_len, t, err) != 0) {
            free(ranges);
            return -1;
        }
        n++;
        if (t->nbytes > 0) {
            uint64_t b = (uint64_t)((const uint8_t *)t->data - data);
            ranges[nonempty++] = (struct range){b, b + t->nbytes, (int)(n - 1)};
        }
    }
    out->count = (int)n;

    /* Empty tensors occupy no bytes and cannot overlap anything. */
    qsort(ranges, nonempty, sizeof *ranges, cmp_range);
    for (size_t i = 1; i < nonempty; i++) {
        if (ranges[i].begin < ranges[i - 1].end) {
            int rc = gan_fail(err, FIELD, "tensor '%s': data overlaps tensor '%s'",
                              out->tensors[ranges[i].index].name,
                              out->tensors[ranges[i - 1].index].name);
            free(ranges);
            return rc;
        }
    }
    free(ranges);
    return 0;
}

static void reset(gan_st_file *f)
{
    free(f->buffer);
    free(f->tensors);
    free(f->metadata);
    free(f->metadata_strings);
    memset(f, 0, sizeof *f);
}

int gan_st_parse(uint8_t *buf, size_t len, gan_st_file *out, gan_error *err)
{
    if (!out) {
        free(buf);
        return gan_fail(err, FIELD, "output pointer must not be NULL");
    }
    memset(out, 0, sizeof *out);
    out->buffer = buf;
    out->buffer_len = len;
    if (!buf || len < 8) {
        reset(out);
        return gan_fail(err, FIELD, "the file is %zu bytes, too short for its 8-byte header length",
                        len);
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)buf[i] << (8 * i);
    if (hlen > HEADER_MAX) {
        reset(out);
        return gan_fail(err, FIELD, "the header length %llu is more than the limit of %d bytes",
                        (unsigned long long)hlen, HEADER_MAX);
    }
    if (hlen > len - 8) {
        reset(out);
        return gan_fail(err, FIELD,
                        "the header length %llu exceeds the file (%zu bytes after the length)",
                        (unsigned long long)hlen, len - 8);
    }

    /* A NUL-terminated copy so no cJSON code path can read past the header. */
    char *text = malloc((size_t)hlen + 1);
    if (!text) {
        reset(out);
        return gan_fail(err, FIELD, "out of memory reading a %llu-byte header",
                        (unsigned long long)hlen);
    }
    memcpy(text, buf + 8, (size_t)hlen);
    text[hlen] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)hlen, &end, 0);
    int rc = 0;
    if (!root) {
        rc = gan_fail(err, FIELD, "the header is not valid JSON (at byte %zu)",
                      end ? (size_t)(end - text) : (size_t)0);
    } else {
        /* Only padding (whitespace) may follow the JSON value. */
        for (const char *p = end; p < text + hlen; p++) {
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
                rc = gan_fail(err, FIELD, "the header has data after its JSON (at byte %zu)",
                              (size_t)(p - text));
                break;
            }
        }
    }
    if (rc == 0)
        rc = parse_header(root, buf + 8 + hlen, (uint64_t)(len - 8 - hlen), out, err);
    cJSON_Delete(root);
    free(text);
    if (rc != 0) {
        reset(out);
        return -1;
    }
    return 0;
}

int gan_st_read(const char *path, gan_st_file *out, gan_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!path || !*path)
        return gan_fail(err, "path", "path must not be empty");
    uint8_t *buf = NULL;
    size_t len = 0;
    if (gan_read_file(path, &buf, &len, ST_READ_MAX, err) != 0)
        return -1;
    if (gan_st_parse(buf, len, out, err) != 0) {
        if (err) {
            char msg[sizeof err->message];
            snprintf(msg, sizeof msg, "%s", err->message);
            gan_fail(err, FIELD, "%s: %s", path, msg);
        }
        return -1;
    }
    return 0;
}

void gan_st_free(gan_st_file *f)
{
    if (f)
        reset(f);
}

const gan_st_tensor *gan_st_find(const gan_st_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

const char *gan_st_meta(const gan_st_file *f, const char *key)
{
    if (!f || !key)
        return NULL;
    for (int i = 0; i < f->metadata_count; i++)
        if (strcmp(f->metadata[i].key, key) == 0)
            return f->metadata[i].value;
    return NULL;
}
