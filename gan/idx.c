/* gan/idx.c — IDX reader/writer (contract in gan/idx.h). */
#include "gan/idx.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gan/fsutil.h"

/* Largest file we read and largest decompressed IDX we accept: 1 GiB. */
#define IDX_MAX_BYTES ((size_t)1 << 30)

enum {
    IDX3_MAGIC = 0x00000803,
    IDX1_MAGIC = 0x00000801,
    IDX3_HEADER = 16,
    IDX1_HEADER = 8,
    MAX_LABEL = 9,
};

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int is_gzip(const uint8_t *buf, size_t len)
{
    return len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b;
}

static const char *magic_hint(uint32_t magic)
{
    if (magic == IDX1_MAGIC)
        return " (this looks like an IDX1 label file)";
    if (magic == IDX3_MAGIC)
        return " (this looks like an IDX3 image file)";
    if ((magic >> 16) == 0 && (magic & 0xff00) != 0x0800)
        return " (an IDX file, but not of unsigned bytes)";
    if ((magic >> 16) != 0)
        return " (not an IDX file)";
    return "";
}

/* Inflate a gzip buffer (one or more members) into a malloc'd buffer of at most IDX_MAX_BYTES. */
static int gunzip(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len, gan_error *err)
{
    /* The last 4 bytes hold the uncompressed size mod 2^32: a good first guess,
     * but the file controls it, so it is believed only up to what deflate can
     * reach (at most 1032:1); the buffer grows as needed past that. */
    size_t cap = in_len < IDX_MAX_BYTES / 4 ? in_len * 4 : IDX_MAX_BYTES + 1;
    if (in_len >= 18) {
        const uint8_t *t = in + in_len - 4;
        size_t isize =
            (size_t)t[0] | ((size_t)t[1] << 8) | ((size_t)t[2] << 16) | ((size_t)t[3] << 24);
        size_t reachable = in_len < IDX_MAX_BYTES / 1032 ? in_len * 1032 + 4096 : IDX_MAX_BYTES;
        if (isize > 0 && isize < reachable)
            cap = isize + 1;
    }
    if (cap < 4096)
        cap = 4096;
    if (cap > IDX_MAX_BYTES + 1)
        cap = IDX_MAX_BYTES + 1;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return gan_fail(err, "data", "out of memory decompressing %zu bytes of gzip data", in_len);

    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK) {
        free(buf);
        return gan_fail(err, "data", "cannot initialise zlib to decompress gzip data");
    }
    size_t in_pos = 0, used = 0;
    int rc = 0;
    for (;;) {
        if (used == cap) {
            if (cap > IDX_MAX_BYTES) {
                rc = gan_fail(err, "data",
                              "gzip data decompresses to more than %zu bytes (1 GiB), the limit "
                              "for an IDX file",
                              IDX_MAX_BYTES);
                break;
            }
            size_t ncap = cap * 2 > IDX_MAX_BYTES + 1 ? IDX_MAX_BYTES + 1 : cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                rc = gan_fail(err, "data", "out of memory decompressing gzip data (%zu bytes)",
                              ncap);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t in_left = in_len - in_pos, out_left = cap - used;
        zs.next_in = (Bytef *)(uintptr_t)(in + in_pos);
        zs.avail_in = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
        zs.next_out = buf + used;
        zs.avail_out = out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
        uInt avail_in0 = zs.avail_in, avail_out0 = zs.avail_out;
        int z = inflate(&zs, Z_NO_FLUSH);
        in_pos += avail_in0 - zs.avail_in;
        used += avail_out0 - zs.avail_out;
        if (z == Z_STREAM_END) {
            if (in_pos == in_len)
                break;
            /* Another gzip member may follow (as `cat a.gz b.gz` makes); anything else is junk. */
            if (!is_gzip(in + in_pos, in_len - in_pos)) {
                rc = gan_fail(err, "data",
                              "corrupt gzip: %zu bytes of non-gzip data after the end of the "
                              "compressed stream",
                              in_len - in_pos);
                break;
            }
            if (inflateReset(&zs) != Z_OK) {
                rc = gan_fail(err, "data", "corrupt gzip: cannot reset zlib between members");
                break;
            }
            continue;
        }
        if (z == Z_OK)
            continue;
        if (z == Z_BUF_ERROR && zs.avail_out == 0)
            continue; /* output full: grow and go on */
        if (z == Z_BUF_ERROR && in_pos == in_len) {
            rc = gan_fail(err, "data",
                          "corrupt gzip: the compressed stream is truncated (it ends after %zu "
                          "bytes without its gzip trailer)",
                          in_len);
            break;
        }
        if (z == Z_MEM_ERROR) {
            rc = gan_fail(err, "data", "out of memory in zlib while decompressing gzip data");
            break;
        }
        rc = gan_fail(err, "data", "corrupt gzip data: %s",
                      zs.msg ? zs.msg : "zlib could not decompress it");
        break;
    }
    inflateEnd(&zs);
    if (rc == 0 && used > IDX_MAX_BYTES)
        rc = gan_fail(err, "data",
                      "gzip data decompresses to more than %zu bytes (1 GiB), the limit for an "
                      "IDX file",
                      IDX_MAX_BYTES);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = used;
    return 0;
}

/* If buf is gzip, inflate it into *owned and point *data at it; otherwise use buf as is. */
static int maybe_gunzip(const uint8_t *buf, size_t len, const uint8_t **data, size_t *data_len,
                        uint8_t **owned, gan_error *err)
{
    *owned = NULL;
    if (!buf && len > 0)
        return gan_fail(err, "data", "no data (NULL buffer)");
    if (!is_gzip(buf, len)) {
        *data = buf;
        *data_len = len;
        return 0;
    }
    if (gunzip(buf, len, owned, data_len, err) != 0)
        return -1;
    *data = *owned;
    return 0;
}

int gan_idx_parse_images(const uint8_t *buf, size_t len, gan_dataset *out, gan_error *err)
{
    if (!out)
        return gan_fail(err, "data", "no dataset to fill (NULL)");
    memset(out, 0, sizeof *out);
    const uint8_t *p = NULL;
    size_t n = 0;
    uint8_t *owned = NULL;
    if (maybe_gunzip(buf, len, &p, &n, &owned, err) != 0)
        return -1;
    int rc = -1;
    if (n < 4) {
        gan_fail(err, "data",
                 "truncated IDX3 image file: %zu bytes, too short for the 4-byte magic number", n);
        goto done;
    }
    uint32_t magic = be32(p);
    if (magic != IDX3_MAGIC) {
        gan_fail(err, "data",
                 "wrong magic number 0x%08x%s; expected 0x%08x (IDX3 unsigned-byte images, 3 "
                 "dimensions)",
                 (unsigned)magic, magic_hint(magic), (unsigned)IDX3_MAGIC);
        goto done;
    }
    if (n < IDX3_HEADER) {
        gan_fail(err, "data",
                 "truncated IDX3 image file: %zu bytes, shorter than the %d-byte header", n,
                 IDX3_HEADER);
        goto done;
    }
    uint32_t count = be32(p + 4), rows = be32(p + 8), cols = be32(p + 12);
    if (rows != GAN_IMAGE_ROWS || cols != GAN_IMAGE_COLS) {
        gan_fail(err, "data", "images are %u×%u (rows×cols); only %d×%d images are supported",
                 (unsigned)rows, (unsigned)cols, GAN_IMAGE_ROWS, GAN_IMAGE_COLS);
        goto done;
    }
    if (count == 0) {
        gan_fail(err, "data", "image count of zero: the IDX3 header says the file holds no images");
        goto done;
    }
    if (count > (uint32_t)INT_MAX) {
        gan_fail(err, "data", "image count %u is too large (at most %d)", (unsigned)count, INT_MAX);
        goto done;
    }
    uint64_t want = (uint64_t)count * GAN_IMAGE_PIXELS;
    uint64_t have = n - IDX3_HEADER;
    if (have < want) {
        gan_fail(err, "data",
                 "truncated IDX3 image file: expected %llu bytes of pixel data for %u images, "
                 "found %llu",
                 (unsigned long long)want, (unsigned)count, (unsigned long long)have);
        goto done;
    }
    if (have > want) {
        gan_fail(err, "data",
                 "%llu trailing bytes after the pixel data of %u images (expected exactly %llu "
                 "bytes of pixel data)",
                 (unsigned long long)(have - want), (unsigned)count, (unsigned long long)want);
        goto done;
    }
    uint8_t *pixels = malloc((size_t)want);
    if (!pixels) {
        gan_fail(err, "data", "out of memory for %u images (%llu bytes)", (unsigned)count,
                 (unsigned long long)want);
        goto done;
    }
    memcpy(pixels, p + IDX3_HEADER, (size_t)want);
    out->count = (int)count;
    out->rows = GAN_IMAGE_ROWS;
    out->cols = GAN_IMAGE_COLS;
    out->pixels = pixels;
    out->labels = NULL;
    rc = 0;
done:
    free(owned);
    return rc;
}

int gan_idx_parse_labels(const uint8_t *buf, size_t len, uint8_t **labels, int *count,
                         gan_error *err)
{
    if (!labels || !count)
        return gan_fail(err, "data", "no label output (NULL)");
    *labels = NULL;
    *count = 0;
    const uint8_t *p = NULL;
    size_t n = 0;
    uint8_t *owned = NULL;
    if (maybe_gunzip(buf, len, &p, &n, &owned, err) != 0)
        return -1;
    int rc = -1;
    if (n < 4) {
        gan_fail(err, "data",
                 "truncated IDX1 label file: %zu bytes, too short for the 4-byte magic number", n);
        goto done;
    }
    uint32_t magic = be32(p);
    if (magic != IDX1_MAGIC) {
        gan_fail(err, "data",
                 "wrong magic number 0x%08x%s; expected 0x%08x (IDX1 unsigned-byte labels, 1 "
                 "dimension)",
                 (unsigned)magic, magic_hint(magic), (unsigned)IDX1_MAGIC);
        goto done;
    }
    if (n < IDX1_HEADER) {
        gan_fail(err, "data",
                 "truncated IDX1 label file: %zu bytes, shorter than the %d-byte header", n,
                 IDX1_HEADER);
        goto done;
    }
    uint32_t cnt = be32(p + 4);
    if (cnt == 0) {
        gan_fail(err, "data", "label count of zero: the IDX1 header says the file holds no labels");
        goto done;
    }
    if (cnt > (uint32_t)INT_MAX) {
        gan_fail(err, "data", "label count %u is too large (at most %d)", (unsigned)cnt, INT_MAX);
        goto done;
    }
    size_t have = n - IDX1_HEADER;
    if (have < cnt) {
        gan_fail(err, "data",
                 "truncated IDX1 label file: expected %u bytes of label data, found %zu",
                 (unsigned)cnt, have);
        goto done;
    }
    if (have > cnt) {
        gan_fail(err, "data",
                 "%zu trailing bytes after %u labels (expected exactly %u bytes of label data)",
                 have - cnt, (unsigned)cnt, (unsigned)cnt);
        goto done;
    }
    for (uint32_t i = 0; i < cnt; i++) {
        if (p[IDX1_HEADER + i] > MAX_LABEL) {
            gan_fail(err, "data", "label %u at index %u is out of range: labels must be 0..%d",
                     (unsigned)p[IDX1_HEADER + i], (unsigned)i, MAX_LABEL);
            goto done;
        }
    }
    uint8_t *l = malloc(cnt);
    if (!l) {
        gan_fail(err, "data", "out of memory for %u labels", (unsigned)cnt);
        goto done;
    }
    memcpy(l, p + IDX1_HEADER, cnt);
    *labels = l;
    *count = (int)cnt;
    rc = 0;
done:
    free(owned);
    return rc;
}

/* Re-report a parse error as a "path" error whose message starts with the path. */
static int fail_with_path(gan_error *err, const char *path, const gan_error *inner)
{
    return gan_fail(err, "path", "%s: %s", path, inner->message);
}

int gan_idx_load_images(const char *path, gan_dataset *out, gan_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!path || !out)
        return gan_fail(err, "path", "no image file path or dataset given (NULL)");
    uint8_t *buf;
    size_t len;
    if (gan_read_file(path, &buf, &len, IDX_MAX_BYTES, err) != 0)
        return -1;
    gan_error inner = {{0}, {0}};
    int rc = gan_idx_parse_images(buf, len, out, &inner);
    free(buf);
    if (rc != 0)
        return fail_with_path(err, path, &inner);
    return 0;
}

int gan_idx_load_labels(const char *path, gan_dataset *ds, gan_error *err)
{
    if (!path || !ds)
        return gan_fail(err, "path", "no label file path or dataset given (NULL)");
    uint8_t *buf;
    size_t len;
    if (gan_read_file(path, &buf, &len, IDX_MAX_BYTES, err) != 0)
        return -1;
    gan_error inner = {{0}, {0}};
    uint8_t *labels;
    int count;
    int rc = gan_idx_parse_labels(buf, len, &labels, &count, &inner);
    free(buf);
    if (rc != 0)
        return fail_with_path(err, path, &inner);
    if (count != ds->count) {
        free(labels);
        return gan_fail(err, "path",
                        "%s: label count %d does not match the image count %d: each image needs "
                        "exactly one label",
                        path, count, ds->count);
    }
    free(ds->labels);
    ds->labels = labels;
    return 0;
}

int gan_idx_encode_images_gz(const uint8_t *pixels, int count, int rows, int cols, uint8_t **out,
                             size_t *out_len, gan_error *err)
{
    if (!out || !out_len)
        return gan_fail(err, "data", "no output buffer (NULL)");
    *out = NULL;
    *out_len = 0;
    if (count < 1 || rows < 1 || cols < 1)
        return gan_fail(err, "data",
                        "cannot encode %d images of %d×%d: count, rows and cols must be at least 1",
                        count, rows, cols);
    if (!pixels)
        return gan_fail(err, "data", "no pixels to encode (NULL)");
    uint64_t npix = (uint64_t)count * (uint64_t)rows * (uint64_t)cols;
    if (npix > IDX_MAX_BYTES - IDX3_HEADER)
        return gan_fail(err, "data", "%d images of %d×%d are more than the 1 GiB IDX limit", count,
                        rows, cols);
    size_t plain_len = IDX3_HEADER + (size_t)npix;
    uint8_t hdr[IDX3_HEADER];
    put_be32(hdr, IDX3_MAGIC);
    put_be32(hdr + 4, (uint32_t)count);
    put_be32(hdr + 8, (uint32_t)rows);
    put_be32(hdr + 12, (uint32_t)cols);

    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return gan_fail(err, "data", "cannot initialise zlib to compress gzip data");
    size_t cap = (size_t)deflateBound(&zs, (uLong)plain_len) + 64;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&zs);
        return gan_fail(err, "data", "out of memory for %zu bytes of gzip output", cap);
    }
    /* Two inputs (header, then pixels), each fed in uInt-sized pieces. */
    const uint8_t *src[2] = {hdr, pixels};
    size_t src_len[2] = {IDX3_HEADER, (size_t)npix};
    size_t used = 0;
    int rc = 0;
    for (int part = 0; part < 2 && rc == 0; part++) {
        size_t pos = 0;
        for (;;) {
            size_t left = src_len[part] - pos;
            int last = part == 1 && left <= UINT_MAX;
            zs.next_in = (Bytef *)(uintptr_t)(src[part] + pos);
            zs.avail_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
            uInt in0 = zs.avail_in;
            do {
                if (used == cap) {
                    uint8_t *nb = realloc(buf, cap * 2);
                    if (!nb) {
                        rc = gan_fail(err, "data", "out of memory growing gzip output");
                        break;
                    }
                    buf = nb;
                    cap *= 2;
                }
                size_t out_left = cap - used;
                zs.next_out = buf + used;
                zs.avail_out = out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
                uInt out0 = zs.avail_out;
                int z = deflate(&zs, last ? Z_FINISH : Z_NO_FLUSH);
                used += out0 - zs.avail_out;
                if (z == Z_STREAM_END)
                    break;
                if (z != Z_OK && z != Z_BUF_ERROR) {
                    rc = gan_fail(err, "data", "zlib failed to compress: %s",
                                  zs.msg ? zs.msg : "unknown error");
                    break;
                }
            } while (last || zs.avail_in > 0 || zs.avail_out == 0);
            pos += in0;
            if (rc != 0 || pos >= src_len[part])
                break;
        }
    }
    deflateEnd(&zs);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = used;
    return 0;
}

void gan_dataset_free(gan_dataset *ds)
{
    if (!ds)
        return;
    free(ds->pixels);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}
