/*
 * gan/safetensors.h — read and write safetensors files.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON (padded with
 * spaces to a multiple of 8), then the raw little-endian tensor data. The
 * JSON maps each tensor name to {"dtype", "shape", "data_offsets": [begin,
 * end]} (offsets relative to the data section) and may hold "__metadata__",
 * a map of string to string.
 *
 * The reader checks everything a hostile file could get wrong: header length
 * beyond the file, invalid JSON, unknown dtype, shapes whose byte size does
 * not match the offsets, offsets outside the data or overlapping, duplicate
 * names, non-string metadata.
 */
#ifndef GAND_GAN_SAFETENSORS_H
#define GAND_GAN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "gan/error.h"

typedef enum gan_dtype { GAN_F32, GAN_I32, GAN_I64, GAN_U8 } gan_dtype;

enum { GAN_ST_MAX_DIMS = 4, GAN_ST_NAME_MAX = 128 };

typedef struct gan_st_tensor {
    char name[GAN_ST_NAME_MAX];
    gan_dtype dtype;
    int ndim;
    int64_t shape[GAN_ST_MAX_DIMS];
    const void *data; /* writer: caller's memory; reader: points into the file buffer */
    size_t nbytes;
} gan_st_tensor;

typedef struct gan_st_metadata {
    const char *key;
    const char *value;
} gan_st_metadata;

/* A parsed file: owns its buffer; tensors[i].data points into it. */
typedef struct gan_st_file {
    uint8_t *buffer;
    size_t buffer_len;
    int count;
    gan_st_tensor *tensors;
    int metadata_count;
    gan_st_metadata *metadata; /* keys and values point into owned strings */
    char *metadata_strings;
} gan_st_file;

/* Serialise into a malloc'd buffer. Tensors are written in the order given. */
int gan_st_encode(const gan_st_tensor *tensors, int count, const gan_st_metadata *metadata,
                  int metadata_count, uint8_t **out, size_t *out_len, gan_error *err);

/* Write atomically: PATH.tmp, fsync, rename over PATH, fsync the directory. */
int gan_st_write(const char *path, const gan_st_tensor *tensors, int count,
                 const gan_st_metadata *metadata, int metadata_count, gan_error *err);

/* Parse a buffer; takes ownership of buf (freed by gan_st_free, or on failure). */
int gan_st_parse(uint8_t *buf, size_t len, gan_st_file *out, gan_error *err);
int gan_st_read(const char *path, gan_st_file *out, gan_error *err);
void gan_st_free(gan_st_file *f);

const gan_st_tensor *gan_st_find(const gan_st_file *f, const char *name);
const char *gan_st_meta(const gan_st_file *f, const char *key);

#endif
