#!/usr/bin/env python3
"""gguf_f32_tensors.py IN.gguf OUT.gguf REGEX - a copy of a Q8_0 GGUF file in which the Q8_0
tensors whose names match REGEX are stored as F32 (their dequantized values, exactly).

An experiment tool, not a converter: with those matrices in F32 our engine multiplies them with
exact fp32 activations instead of int8 ones, so comparing the KL of such files against the BF16
model's (bench/kl_divergence.sh's python, or `gemma2 logits`) tells how much accuracy int8
activations cost in each group of matrices (docs/kernels.md, "Two int8 terms"). For example:
    bench/gguf_f32_tensors.py bench/out/g2b-q8_0.gguf /tmp/qkv-f32.gguf 'attn_(q|k|v)\\.'
Everything else (metadata, other tensors) is copied byte for byte; offsets are recomputed.
Needs numpy (Debian: python3-numpy)."""
import os
import re
import struct
import sys

import numpy as np

GGML_F32, GGML_Q8_0 = 0, 8


def main():
    src, dst, pattern = sys.argv[1], sys.argv[2], re.compile(sys.argv[3])
    f = open(src, "rb")
    head = f.read(1 << 24)  # header, metadata and tensor table (a Gemma 2 file's are < 16 MiB)
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, head, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("<Q")
        pos += n
        return head[pos - n:pos].decode()

    def value(t):  # skips one metadata value of type t
        sizes = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B", 10: "<Q", 11: "<q", 12: "<d"}
        if t == 8:
            string()
        elif t == 9:
            at, n = take("<I"), take("<Q")
            for _ in range(n):
                value(at)
        else:
            take(sizes[t])

    magic, version, n_tensors, n_kv = take("<I"), take("<I"), take("<Q"), take("<Q")
    if magic != 0x46554747 or version != 3:
        sys.exit("%s: not a GGUF v3 file" % src)
    kv_start = pos
    alignment = 32
    for _ in range(n_kv):
        key, t = string(), take("<I")
        if key == "general.alignment":
            alignment = take("<I")
        else:
            value(t)
    kv = head[kv_start:pos]
    tensors = []
    for _ in range(n_tensors):
        name, nd = string(), take("<I")
        dims = [take("<Q") for _ in range(nd)]
        tensors.append((name, dims, take("<I"), take("<Q")))
    data_start = -(-pos // alignment) * alignment

    def nbytes(dims, t):
        n = int(np.prod(dims))
        if t == GGML_F32:
            return 4 * n
        if t == GGML_Q8_0:
            return n // 32 * 34
        sys.exit("%s: tensor type %d is not handled (Q8_0 files only)" % (src, t))

    out_table, offset, changed = [], 0, 0
    for name, dims, t, _ in tensors:
        nt = GGML_F32 if t == GGML_Q8_0 and pattern.search(name) else t
        changed += nt != t
        out_table.append((name, dims, nt, offset))
        offset += -(-nbytes(dims, nt) // alignment) * alignment
    # the tensor table: name length, name, dims count, dims, type, offset
    hdr = bytearray(struct.pack("<IIQQ", magic, version, n_tensors, n_kv)) + kv
    for name, dims, t, off in out_table:
        b = name.encode()
        hdr += struct.pack("<Q", len(b)) + b + struct.pack("<I", len(dims))
        hdr += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", t, off)
    hdr += b"\0" * (-len(hdr) % alignment)
    tmp = dst + ".tmp"
    with open(tmp, "wb") as out:
        out.write(hdr)
        for (name, dims, t, off), (_, _, nt, _) in zip(tensors, out_table):
            f.seek(data_start + off)
            raw = f.read(nbytes(dims, t))
            if nt != t:
                blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 34)
                scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
                raw = (blocks[:, 2:].copy().view(np.int8).astype(np.float32) * scale).tobytes()
            out.write(raw + b"\0" * (-len(raw) % alignment))
    os.replace(tmp, dst)
    print("%s: %d of %d tensors stored as F32" % (dst, changed, n_tensors))


if __name__ == "__main__":
    main()
