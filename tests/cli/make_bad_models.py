#!/usr/bin/env python3
"""make_bad_models.py OUT_DIR SHARED_DIR - writes broken variants of the torchref tiny-b model
(Hugging Face directory and GGUF) for the bad-input tests. Needs numpy only."""
import json, os, shutil, struct, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_tool  # noqa: E402

out, shared = sys.argv[1], sys.argv[2]
src = os.path.join(shared, "torchref", "tiny-b")
os.makedirs(out, exist_ok=True)


def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n])
    hdr.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in hdr.items()}


def write_st(path, tensors):
    hdr, off, blobs = {}, 0, []
    for k, (dt, shape, data) in tensors.items():
        hdr[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def hf_variant(name, tensors=None, config=None, raw=None):
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    cfg = json.load(open(os.path.join(src, "config.json")))
    if config is not None:
        cfg = config(cfg)
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
    if raw is not None:
        open(os.path.join(d, "model.safetensors"), "wb").write(raw)
    else:
        write_st(os.path.join(d, "model.safetensors"), tensors if tensors is not None else read_st(os.path.join(src, "model.safetensors")))


base = read_st(os.path.join(src, "model.safetensors"))
good = open(os.path.join(src, "model.safetensors"), "rb").read()
Q = "model.layers.0.self_attn.q_proj.weight"

hf_variant("hf_good")
t = dict(base); del t[Q]; hf_variant("hf_missing_tensor", t)
K = "model.layers.0.self_attn.k_proj.weight"
t = dict(base); dt, sh, data = t[K]; t[K] = (dt, [sh[1], sh[0]], data); hf_variant("hf_wrong_shape", t)
t = dict(base); dt, sh, data = t[Q]; t[Q] = ("I32", sh, data); hf_variant("hf_bad_dtype", t)
hf_variant("hf_bad_config_json", config=lambda c: '{"model_type": "gemma2", "hidden_size": ')
hf_variant("hf_heads_not_divisible", config=lambda c: {**c, "num_attention_heads": 3, "num_key_value_heads": 2})
hf_variant("hf_not_gemma2", config=lambda c: {**c, "model_type": "llama"})
hf_variant("hf_config_wrong_type", config=lambda c: {**c, "hidden_size": "48"})
hf_variant("hf_truncated", raw=good[: len(good) // 2])
hf_variant("hf_header_too_long", raw=struct.pack("<Q", 1 << 40) + good[8:])
hf_variant("hf_header_not_json", raw=struct.pack("<Q", 16) + b"{not json at all" + good[24:])
n = struct.unpack("<Q", good[:8])[0]
h = json.loads(good[8:8 + n]); h[Q]["data_offsets"][1] += 10 ** 9
hb = json.dumps(h).encode(); hb += b" " * (-len(hb) % 8)
hf_variant("hf_offset_past_end", raw=struct.pack("<Q", len(hb)) + hb + good[8 + n:])
os.makedirs(os.path.join(out, "hf_no_weights"), exist_ok=True)
shutil.copy(os.path.join(src, "config.json"), os.path.join(out, "hf_no_weights", "config.json"))
for f in ("model.safetensors",):
    p = os.path.join(out, "hf_no_weights", f)
    if os.path.exists(p):
        os.remove(p)

# GGUF variants from a conversion of the same model
gguf = os.path.join(out, "good.gguf")
subprocess.run([sys.executable, os.path.join(shared, "oracle", "make_gguf.py"), gguf, "--from-hf", src],
               check=True, stdout=subprocess.DEVNULL)
g = bytearray(open(gguf, "rb").read())


infos = {t["name"]: (t["type_pos"], t["offset_pos"]) for t in gguf_tool.parse(gguf)[2]}
def gguf_variant(name, data):
    open(os.path.join(out, name), "wb").write(bytes(data))

b = bytearray(g); b[0:4] = b"GGUX"; gguf_variant("bad_magic.gguf", b)
gguf_variant("truncated_header.gguf", g[:200])
gguf_variant("truncated_data.gguf", g[: len(g) - 4096])
b = bytearray(g); struct.pack_into("<Q", b, infos["blk.0.attn_q.weight"][1], 1 << 40); gguf_variant("offset_past_end.gguf", b)
b = bytearray(g); struct.pack_into("<I", b, infos["blk.0.attn_q.weight"][0], 99); gguf_variant("unknown_type.gguf", b)
b = bytearray(g); struct.pack_into("<I", b, infos["blk.0.attn_q.weight"][0], 12); gguf_variant("q4k_wrong_row.gguf", b)
b = bytearray(g); struct.pack_into("<I", b, 4, 7); gguf_variant("bad_version.gguf", b)
open(os.path.join(out, "empty.gguf"), "wb").close()
print("ok")
