#!/usr/bin/env bash
# bench/compare_llama.sh - gemma2 bench against llama.cpp's llama_bench (the oracle) on the same
# GGUF files, interleaved A B A B, 2 threads, pp512 and tg128: the table of issue 6.
#
#   bench/compare_llama.sh [WORKDIR] [ROUNDS]      (default bench/out, 2 rounds of 3 reps each)
#   TYPES="bf16 q8_0" LOAD=mmap bench/compare_llama.sh      (a subset; our weights mapped)
#   APPEND=1 bench/compare_llama.sh bench/out 1             (one more round, table over all)
#   PP=0 TG=32 DEPTH=2048 LOAD=read bench/compare_llama.sh  (decode after 2048 tokens of context)
#   SHAPE=9b TYPES=q4_0 bench/compare_llama.sh bench/out 1    (the 9B shape: files g9b-*.gguf)
#   SHAPE=27b TYPES=q4_0 REPS=1 PP=512 TG=64 bench/compare_llama.sh bench/out 1
#       (the 27B shape: its BF16 file would be 54 GB, so g27b-q4_0.gguf is written directly by
#        bench/make_q4_0_gguf.py, every matrix Q4_0; run that first)
#   GEMMA2_BF16_DOT=0 TYPES=bf16 LOAD=read bench/compare_llama.sh   (ours with exact BF16 products)
#   ISA=avx2 TYPES=q4_0 bench/compare_llama.sh       (a CPU without AVX-512: ours with GEMMA2_ISA=avx2,
#                                                     llama.cpp with its haswell build, AVX2 + FMA)
#   KV=f32 SHAPE=9b TYPES=q4_0 bench/compare_llama.sh bench/out 1   (both engines with this KV
#                                                     cache type: f32, f16 or bf16)
#
# Files: a random Gemma 2 of the 2B shape (SHAPE=9b / 27b: those presets) from the oracle's
# make_gguf.py (BF16), quantized by `gemma2 quantize` (byte-identical to llama_quantize's
# output, see tests/cli/quantize.sh).
# Ours runs with --load-mode $LOAD (default auto: here, read: weights copied onto huge pages and
# repacked); llama.cpp runs in both of its loading modes, mmap and none (read into memory), and
# the ratio is against the faster of the two for each test. llama.cpp runs with its defaults
# otherwise (f16 KV cache, flash attention auto, its own repacking of Q4_0/Q4_K on AVX-512);
# ours keeps an f32 KV cache (KV=...: both take that type). Each round runs ours, llama mmap,
# llama none per type, in turn.
# Prints medians over all samples, the ratio, and decode weight traffic as a fraction of this
# machine's read bandwidth (bench/kernels_bench's probe on huge pages, run before each type of
# each round; the best of all: the host's bandwidth drifts between about 30 and 62 GB/s from
# minute to minute here).
set -eu
cd "$(dirname "$0")/.."
W=${1:-bench/out}
ROUNDS=${2:-2}
TYPES=${TYPES:-bf16 q8_0 q4_0 q4_k_m}
LOAD=${LOAD:-auto}
T=${THREADS:-2}
PP=${PP:-512}
TG=${TG:-128}
DEPTH=${DEPTH:-0}
REPS=${REPS:-3}      # samples per test and engine (REPS=1 for the 27B shape)
SHAPE=${SHAPE:-2b}   # make_gguf.py's preset gemma2-$SHAPE; files $W/g$SHAPE-TYPE.gguf
SHARED=${GEMMA2_SHARED:-../shared}
PY=${PYTHON:-/usr/bin/python3}
LB=${ORACLE_DIR:?set ORACLE_DIR (../shared/oracle/setup.sh)}/bin/llama_bench
ISA=${ISA:-}   # avx2: both engines limited to AVX2 + FMA
KV=${KV:-}     # the KV cache type of both engines; empty: each its default (ours f32, llama.cpp f16)
LARGS=""
OARGS=""
if [ -n "$KV" ]; then LARGS="--kv-type $KV"; OARGS="--kv-type $KV"; fi
if [ -n "$ISA" ]; then
    [ "$ISA" = avx2 ] || { echo "ISA: only avx2 is supported" >&2; exit 2; }
    export GEMMA2_ISA=avx2
    lib=$(find "$ORACLE_DIR/node_modules" -name libggml-cpu-haswell.so | head -1)
    [ -n "$lib" ] || { echo "no libggml-cpu-haswell.so under $ORACLE_DIR/node_modules" >&2; exit 1; }
    LARGS="$LARGS --cpu-lib $lib"
fi
mkdir -p "$W"
make -s gemma2
G=$W/g$SHAPE
missing=0   # the BF16 source is made (and kept) only when a file of TYPES is missing
for t in $TYPES; do [ -f "$G-$t.gguf" ] || missing=1; done
[ "$missing" = 0 ] || [ -f "$G-bf16.gguf" ] || "$PY" "$SHARED/oracle/make_gguf.py" "$G-bf16.gguf" --preset "gemma2-$SHAPE" --dtype bf16 --seed 0
for t in $TYPES; do
    [ "$t" = bf16 ] || [ -f "$G-$t.gguf" ] || ./gemma2 quantize "$G-bf16.gguf" "$G-$t.gguf" --type "$t" -q -t "$T"
done
# The read-bandwidth probe (bench/kernels_bench.c, huge pages, best of 3): this host switches
# between about 30 and 57 GB/s from one minute to the next, so it runs again before each type
# of each round, and decode/bw is taken against the best of all the probes.
bash bench/kernels_bench.sh "$T" 1 bw > /dev/null 2>&1   # builds build/bench/kernels_bench
probe() { build/bench/kernels_bench "$T" 3 bw 2>/dev/null | sed -n 's/^memory read bandwidth.*best \([0-9.]*\) GB\/s.*/\1/p'; }
bw=$(probe)
echo "# $(date -u +%F) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $T threads, load=$LOAD, read bandwidth ${bw:-?} GB/s, pp$PP tg$TG depth $DEPTH, KV=${KV:-default}, GEMMA2_BF16_DOT=${GEMMA2_BF16_DOT:-default}, ISA=${ISA:-best}"
log=${LOG:-$W/compare_$LOAD.log}   # LOG=...: keep variants (depth, BF16_DOT) apart
[ "${APPEND:-0}" = 1 ] || : > "$log"   # APPEND=1: add rounds to the previous run's log
for r in $(seq "$ROUNDS"); do
    for t in $TYPES; do
        f=$G-$t.gguf
        echo "probe $t bw=$(probe)" >> "$log"
        ./gemma2 bench -m "$f" -p "$PP" -n "$TG" -d "$DEPTH" -r "$REPS" -t "$T" --load-mode "$LOAD" $OARGS | sed "s/^/ours $t /" >> "$log"
        for lm in mmap none; do
            "$LB" "$f" --prompt "$PP" --gen "$TG" --depth "$DEPTH" --reps "$REPS" --threads "$T" --load-mode "$lm" $LARGS 2>/dev/null |
                sed "s/^/llama-$lm $t /" >> "$log"
        done
    done
done
"$PY" - "$log" "${bw:-0}" <<'PY'
import re, statistics, sys
log, bw = sys.argv[1], float(sys.argv[2])
rows = {}
probes = [bw] if bw > 0 else []
for line in open(log):
    who, typ, rest = line.split(" ", 2)
    if who == "probe":
        m = re.match(r"bw=([0-9.]+)", rest)
        if m:
            probes.append(float(m.group(1)))
        continue
    m = re.match(r"((?:pp|tg)\d+(?:@d\d+)?) t/s=\S+ .*samples=(\S+)", rest)
    if not m:
        continue
    key = (typ, m.group(1))
    rows.setdefault(key, {}).setdefault(who, []).extend(float(x) for x in m.group(2).split(","))
    mb = re.search(r"read_bytes=(\d+)", rest) or re.search(r"model_bytes=(\d+)", rest)  # read_bytes: what decode reads
    if mb and who == "ours":
        rows[key]["bytes"] = int(mb.group(1))
    mr = re.search(r"peak_rss=(\d+)", rest)
    if mr:
        rss = rows[key].setdefault("rss", {})
        rss[who] = max(rss.get(who, 0), int(mr.group(1)) / 1e9)
bw = max(probes) if probes else 0.0
if probes:
    print("# read bandwidth: %d probes, %.1f-%.1f GB/s; decode/bw against the best" % (len(probes), min(probes), bw))
print("%-8s %-6s %10s %11s %11s %7s %12s   %s" % ("type", "test", "ours t/s", "llama mmap", "llama none", "ratio", "decode/bw",
                                              "peak RSS GB ours / llama mmap / none"))
for (typ, test), d in sorted(rows.items()):
    med = lambda k: statistics.median(d[k]) if d.get(k) else 0.0
    o, lm, ln = med("ours"), med("llama-mmap"), med("llama-none")
    best = max(lm, ln)
    frac = ""
    if test.startswith("tg") and bw > 0 and "bytes" in d:
        frac = "%.0f%%" % (100 * o * d["bytes"] / 1e9 / bw)
    rss = d.get("rss", {})
    rs = " / ".join("%.3f" % rss[k] if k in rss else "-" for k in ("ours", "llama-mmap", "llama-none"))
    print("%-8s %-6s %10.2f %11.2f %11.2f %7.2f %12s   %s" % (typ, test, o, lm, ln, o / best if best else 0, frac, rs))
PY
