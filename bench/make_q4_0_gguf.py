#!/usr/bin/python3
"""bench/make_q4_0_gguf.py - a random Gemma 2 written straight to a Q4_0 GGUF file.

usage: make_q4_0_gguf.py MAKE_GGUF_PY OUT.gguf --preset gemma2-27b [make_gguf.py options]

For shapes whose BF16 file does not fit on the disk (the 27B shape: 54 GB in BF16, 15 GB in
Q4_0), so that bench/compare_llama.sh can still time them. It runs the oracle's make_gguf.py
(MAKE_GGUF_PY) with --dtype bf16 and replaces only the storage of the matrices: the random
float32 values it draws, chunk by chunk, are quantized to Q4_0 as ggml's reference quantizer
does (quantize_row_q4_0_ref: d = the element of largest magnitude / -8, q = min(15, trunc(x / d
+ 8.5)), 16 bytes of nibbles after the fp16 d), instead of being rounded to bf16. Every matrix,
the token embedding included, is Q4_0 (llama_quantize --pure); norms stay F32. The vocabulary
and metadata are make_gguf.py's own (general.file_type still says BF16: informational only).
Needs numpy only.
"""
import importlib.util
import sys

import numpy as np

GGML_TYPE_Q4_0 = 2


def q4_0_bytes(x32):
    """float32 values (a multiple of 32, row-major) -> Q4_0 blocks"""
    x = np.ascontiguousarray(x32, dtype=np.float32).reshape(-1, 32)
    big = x[np.arange(len(x)), np.abs(x).argmax(axis=1)]
    d = big / np.float32(-8)
    inv = np.zeros_like(d)
    np.divide(np.float32(1), d, out=inv, where=d != 0)
    q = np.minimum(15, (x * inv[:, None] + np.float32(8.5)).astype(np.int8)).astype(np.uint8)
    out = np.empty((len(x), 18), dtype=np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    spec = importlib.util.spec_from_file_location("make_gguf", sys.argv[1])
    mg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mg)
    encode = mg.encode
    # matrices arrive here as 2-D chunks of whole rows (norms' GGUF bytes do not pass here)
    mg.encode = lambda x32, dtype: q4_0_bytes(x32) if dtype == "bf16" else encode(x32, dtype)
    mg.gguf_type = lambda s, c: 0 if s.kind == "norm" else GGML_TYPE_Q4_0
    mg.gguf_nbytes = lambda s, c: s.n * 4 if s.kind == "norm" else s.n // 32 * 18
    sys.argv = [sys.argv[1]] + sys.argv[2:] + ["--dtype", "bf16"]
    mg.main()


if __name__ == "__main__":
    main()
