#!/usr/bin/env python3
"""gguf_tool.py - a small GGUF reader for the tests (numpy not needed).

  gguf_tool.py compare A.gguf B.gguf   tensors of A and B: same names, types, shapes and bytes?
                                       prints one line per difference; exit status 1 if any
  gguf_tool.py types FILE.gguf         one line per tensor: name type ne

As a module: parse(path) -> (version, kvs {key: value}, tensors [dict], data_start), with each
tensor's 'type_pos' / 'offset_pos' (byte positions of its type and offset fields in the header)
for tests that corrupt files on purpose."""
import struct, sys

SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
FMT = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 8: "Q8_0", 12: "Q4_K", 14: "Q6_K", 30: "BF16"}
BLOCK = {0: (1, 4), 1: (1, 2), 2: (32, 18), 8: (32, 34), 12: (256, 144), 14: (256, 210), 30: (1, 2)}


def parse(path):
    b = open(path, "rb").read()
    assert b[:4] == b"GGUF", "%s: not GGUF" % path
    version, nt, nkv = struct.unpack_from("<IQQ", b, 4)
    p = 24

    def rstr(p):
        n = struct.unpack_from("<Q", b, p)[0]
        return b[p + 8:p + 8 + n].decode("utf-8", "replace"), p + 8 + n

    kvs = {}
    for _ in range(nkv):
        key, p = rstr(p)
        t = struct.unpack_from("<I", b, p)[0]; p += 4
        if t == 8:
            v, p = rstr(p)
        elif t == 9:
            at, n = struct.unpack_from("<IQ", b, p); p += 12
            v = []
            for _ in range(n):
                if at == 8:
                    s, p = rstr(p); v.append(s)
                else:
                    v.append(struct.unpack_from("<" + FMT[at], b, p)[0]); p += SIZES[at]
        else:
            v = struct.unpack_from("<" + FMT[t], b, p)[0]; p += SIZES[t]
        kvs[key] = v
    tensors = []
    for _ in range(nt):
        name, p = rstr(p)
        nd = struct.unpack_from("<I", b, p)[0]; p += 4
        ne = list(struct.unpack_from("<%dQ" % nd, b, p)); p += 8 * nd
        ttype, off = struct.unpack_from("<IQ", b, p)
        tensors.append({"name": name, "ne": ne, "type": ttype, "offset": off, "type_pos": p, "offset_pos": p + 4})
        p += 12
    align = kvs.get("general.alignment", 32)
    data_start = (p + align - 1) // align * align
    for t in tensors:
        be, bb = BLOCK.get(t["type"], (1, 0))
        rows = 1
        for d in t["ne"][1:]:
            rows *= d
        t["nbytes"] = t["ne"][0] // be * bb * rows
        t["data"] = b[data_start + t["offset"]:data_start + t["offset"] + t["nbytes"]]
    return version, kvs, tensors, data_start


def main():
    if sys.argv[1] == "types":
        for t in parse(sys.argv[2])[2]:
            print(t["name"], TYPE_NAMES.get(t["type"], t["type"]), t["ne"])
        return 0
    a, b = parse(sys.argv[2])[2], parse(sys.argv[3])[2]
    ta, tb = {t["name"]: t for t in a}, {t["name"]: t for t in b}
    bad = 0
    for name in sorted(set(ta) | set(tb)):
        x, y = ta.get(name), tb.get(name)
        if x is None or y is None:
            print("%s: only in %s" % (name, sys.argv[2] if y is None else sys.argv[3])); bad += 1
        elif (x["type"], x["ne"]) != (y["type"], y["ne"]):
            print("%s: %s %s vs %s %s" % (name, TYPE_NAMES.get(x["type"]), x["ne"], TYPE_NAMES.get(y["type"]), y["ne"])); bad += 1
        elif x["data"] != y["data"]:
            nd = sum(1 for i in range(len(x["data"])) if x["data"][i] != y["data"][i])
            print("%s: %s, %d of %d bytes differ" % (name, TYPE_NAMES.get(x["type"]), nd, len(x["data"]))); bad += 1
    print("%d tensors compared, %d differ" % (len(set(ta) | set(tb)), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
