#!/usr/bin/env bash
# bench/compare_llama.sh - gemma2 bench against llama.cpp's llama_bench (the oracle) on the same
# GGUF files, interleaved A B A B, 2 threads, pp512 and tg128: the table of issue 6.
#
#   bench/compare_llama.sh [WORKDIR] [ROUNDS]      (default bench/out, 2 rounds of 3 reps each)
#   TYPES="bf16 q8_0" LOAD=read bench/compare_llama.sh      (a subset; weights read into memory)
#
# Files: a random Gemma 2 of the 2B shape from the oracle's make_gguf.py (BF16), quantized by
# `gemma2 quantize` (byte-identical to llama_quantize's output, see tests/cli/quantize.sh).
# LOAD=mmap (default) maps the file in both programs; LOAD=read copies the weights into memory
# (ours: --load-mode read on huge pages; llama.cpp: --load-mode none). llama.cpp runs with its
# defaults otherwise (f16 KV cache, flash attention auto); ours keeps an f32 KV cache.
# Prints medians over all samples, the ratio ours / llama.cpp, and decode weight traffic as a
# fraction of this machine's read bandwidth (bench/kernels_bench measures it).
set -eu
cd "$(dirname "$0")/.."
W=${1:-bench/out}
ROUNDS=${2:-2}
TYPES=${TYPES:-bf16 q8_0 q4_0 q4_k_m}
LOAD=${LOAD:-mmap}
T=${THREADS:-2}
SHARED=${GEMMA2_SHARED:-../shared}
PY=${PYTHON:-/usr/bin/python3}
LB=${ORACLE_DIR:?set ORACLE_DIR (../shared/oracle/setup.sh)}/bin/llama_bench
mkdir -p "$W"
make -s gemma2
[ -f "$W/g2b-bf16.gguf" ] || "$PY" "$SHARED/oracle/make_gguf.py" "$W/g2b-bf16.gguf" --preset gemma2-2b --dtype bf16 --seed 0
for t in $TYPES; do
    [ "$t" = bf16 ] || [ -f "$W/g2b-$t.gguf" ] || ./gemma2 quantize "$W/g2b-bf16.gguf" "$W/g2b-$t.gguf" --type "$t" -q -t "$T"
done
bw=$(bash bench/kernels_bench.sh "$T" 3 2>/dev/null | sed -n 's/^memory read bandwidth.*median \([0-9.]*\) GB\/s.*/\1/p')
echo "# $(date -u +%F) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $T threads, load=$LOAD, read bandwidth ${bw:-?} GB/s"
lm=$([ "$LOAD" = read ] && echo none || echo mmap)
log=$W/compare_$LOAD.log
: > "$log"
for r in $(seq "$ROUNDS"); do
    for t in $TYPES; do
        f=$W/g2b-$t.gguf
        ./gemma2 bench -m "$f" -p 512 -n 128 -r 3 -t "$T" --load-mode "$LOAD" | sed "s/^/ours $t /" >> "$log"
        "$LB" "$f" --prompt 512 --gen 128 --reps 3 --threads "$T" --load-mode "$lm" 2>/dev/null | sed "s/^/llama $t /" >> "$log"
    done
done
"$PY" - "$log" "${bw:-0}" <<'PY'
import re, statistics, sys
log, bw = sys.argv[1], float(sys.argv[2])
rows = {}
for line in open(log):
    who, typ, rest = line.split(" ", 2)
    m = re.match(r"(pp\d+|tg\d+) t/s=\S+ .*samples=(\S+)", rest)
    if not m:
        continue
    key = (typ, m.group(1))
    rows.setdefault(key, {}).setdefault(who, []).extend(float(x) for x in m.group(2).split(","))
    mb = re.search(r"model_bytes=(\d+)", rest)
    if mb and who == "ours":
        rows[key]["bytes"] = int(mb.group(1))
print("%-8s %-6s %10s %10s %7s %12s" % ("type", "test", "ours t/s", "llama t/s", "ratio", "decode/bw"))
for (typ, test), d in sorted(rows.items()):
    o, l = statistics.median(d.get("ours", [0])), statistics.median(d.get("llama", [0]))
    frac = ""
    if test.startswith("tg") and bw > 0 and "bytes" in d:
        frac = "%.0f%%" % (100 * o * d["bytes"] / 1e9 / bw)
    print("%-8s %-6s %10.2f %10.2f %7.2f %12s" % (typ, test, o, l, o / l if l else 0, frac))
PY
