#!/usr/bin/env bash
# run_default.sh - `make run`: the main job on the model the repository carries.
# Until the distilled default model lands, that is the random tiny model models/tiny-b:
# print its config, then the logits after a few tokens.
set -eu
cd "$(dirname "$0")/.."
M=models/tiny-b
./gemma2 info -m "$M"
out=$(mktemp)
./gemma2 logits -m "$M" --ids 2,17,42,99,7 -o "$out"
python3 - "$out" <<'PY' 2>/dev/null || od -A d -t f4 -N 40 "$out"
import struct, sys
data = open(sys.argv[1], "rb").read()
V = 300
rows = [struct.unpack_from("<%df" % V, data, 4 * V * i) for i in range(len(data) // (4 * V))]
for i, r in enumerate(rows):
    top = sorted(range(V), key=lambda j: -r[j])[:5]
    print("after token %d: top-5 ids %s, logits %s" % (i, top, ["%.3f" % r[j] for j in top]))
PY
rm -f "$out"
