#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: tests/fuzz/corpus/<target>/.

A handful of small valid and near-valid inputs per target, deterministic (gzip
with mtime 0), python3 stdlib only. The safetensors files are laid out exactly
as gan_st_encode writes them (cJSON's unformatted JSON, keys in the order
dtype, shape, data_offsets, the header padded with spaces to a multiple of 8).
Run it again after changing it and commit the result; it replaces the
directories it writes.
"""
import gzip
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def write(target, files):
    d = os.path.join(CORPUS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


# ---- configs and patches ------------------------------------------------------------------

SEED = {
    "preset": "seed", "dataset": "mnist", "batch_size": 1024, "epochs": 500,
    "latent_dim": 100, "g_hidden": 1200, "g_output": "relu", "d_units": 240, "d_pieces": 5,
    "d_dropout": 0.8, "lr_d": 0.001, "lr_g": 0.001, "beta1": 0.9, "beta2": 0.999,
    "g_loss": "nonsaturating", "d_steps": 1, "seed": 1, "sample_every": 1,
    "checkpoint_every": 5, "evaluate_every": 0, "noise": "normal", "d_input_dropout": 0,
    "d_final_dropout": 0, "g_activation": "relu", "label_smoothing": 0, "g_init_range": 0,
    "d_init_range": 0, "optimizer": "adam", "momentum": 0.5, "momentum_final": 0.7,
    "momentum_epochs": 250, "lr_decay": 1, "lr_min": 0, "g_ema": 0, "device": "auto",
}

write("fuzz_config", {
    "empty-object.json": b"{}",
    "seed-full.json": compact(SEED),
    "paper.json": b'{"preset": "paper", "epochs": 2}',
    "fields.json": b'{"batch_size": 64, "lr_d": 2e-4, "g_output": "sigmoid", "seed": 9007199254740992,'
                   b' "dataset": "fashion-mnist", "g_activation": "leaky_relu", "lr_decay": 1.000004}',
    "unknown-field.json": b'{"latent": 10}',
    "out-of-range.json": b'{"beta1": 1, "d_pieces": 65}',
    "trailing.json": b'{"epochs": 3} x',
    "not-object.json": b'[1, "a", null, true]',
    "watch.json": b'{"watch_every": 2, "watch": [{"kind": "d_wins", "d_g_z_below": 0.1, "epochs": 2},'
                  b' {"kind": "mode_collapse", "modes_below": 7, "evaluations": 1, "action": "pause"},'
                  b' {"kind": "divergence", "evaluations": 4}]}',
    "bad-watch.json": b'{"watch": [{"kind": "divergence", "modes_below": 3}, 1]}',
})

write("fuzz_patch", {
    "lr.json": b'{"lr_d": 0.0002, "lr_g": 0.0002}',
    "mutable-all.json": compact({
        "batch_size": 64, "epochs": 10, "lr_d": 0.01, "lr_g": 0.02, "beta1": 0.5,
        "beta2": 0.99, "g_loss": "minimax", "d_steps": 2, "sample_every": 0,
        "checkpoint_every": 1, "evaluate_every": 3}),
    "no-change.json": b'{"epochs": 500}',
    "fixed-field.json": b'{"latent_dim": 10}',
    "null.json": b'{"lr_d": null}',
    "bad-enum.json": b'{"g_loss": "wasserstein"}',
    "empty-object.json": b"{}",
    "watch.json": b'{"watch": [{"kind": "mode_collapse", "action": "pause"}], "watch_every": 0}',
})

# ---- IDX -----------------------------------------------------------------------------------


def idx3(count, rows=28, cols=28, pixels=None):
    if pixels is None:  # a ring and a bar: compressible, not constant
        pixels = bytearray()
        for i in range(count):
            for r in range(rows):
                for c in range(cols):
                    ring = abs((r - 14) ** 2 + (c - 14) ** 2 - 64) < 12
                    pixels.append(255 if (ring if i % 2 == 0 else 12 <= c <= 15) else 0)
    return struct.pack(">IIII", 0x803, count, rows, cols) + bytes(pixels)


def idx1(labels):
    return struct.pack(">II", 0x801, len(labels)) + bytes(labels)


images = idx3(2)
labels = idx1([0, 7, 3])
write("fuzz_idx", {
    "images-2.idx3": images,
    "images-2.idx3.gz": gz(images),
    "images-2-two-members.idx3.gz": gz(images[:100]) + gz(images[100:]),
    "labels-3.idx1": labels,
    "labels-3.idx1.gz": gz(labels),
    "images-truncated.idx3": images[:700],
    "images-trailing.idx3.gz": gz(images + b"\0"),
    "images-count-zero.idx3": idx3(0),
    "labels-out-of-range.idx1": idx1([1, 10]),
    "gzip-truncated.gz": gz(labels)[:-6],
})

# ---- safetensors ---------------------------------------------------------------------------


def safetensors(tensors, metadata=None, pad=True):
    """tensors: [(name, dtype, shape, bytes)], laid out in order from offset 0."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = compact(header)
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def raw_header(text, data=b""):
    return struct.pack("<Q", len(text)) + text + data


W = struct.pack("<6f", 0.5, -1.25, 3.0e-8, 1.0e30, -0.0, 42.0)
write("fuzz_safetensors", {
    "checkpoint.safetensors": safetensors(
        [("g.w1", "F32", [2, 3], W),
         ("step", "I64", [], struct.pack("<q", 1234567890123)),
         ("labels", "U8", [5], bytes([0, 9, 3, 255, 7])),
         ("idx", "I32", [2, 1, 2], struct.pack("<4i", -1, 2, -2**31, 2**31 - 1))],
        {"format": "gand", "epoch": "17"}),
    "empty-tensor.safetensors": safetensors([("e", "F32", [0, 4], b"")]),
    "no-tensors.safetensors": safetensors([], {"k": "v"}),
    "unpadded.safetensors": safetensors([("b", "U8", [3], b"abc")], pad=False),
    "overlap.safetensors": raw_header(
        b'{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},'
        b'"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}', b"012345"),
    "bad-dtype.safetensors": raw_header(
        b'{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}', b"0123"),
    "size-mismatch.safetensors": raw_header(
        b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', b"01234567"),
    "header-too-long.safetensors": struct.pack("<Q", 4096) + b'{"a":',
})
