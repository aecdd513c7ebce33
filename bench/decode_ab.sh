#!/usr/bin/env bash
# bench/decode_ab.sh - decode speed (tg64) of ours against llama.cpp's on the same GGUF files,
# sorted by the machine's memory bandwidth at the time of each measurement.
#
#   ORACLE_DIR=... bench/decode_ab.sh [WORKDIR] [ROUNDS]      (default bench/out, 4 rounds)
#
# Why: on this VM the read bandwidth of 2 threads drifts between about 35 and 62 GB/s from one
# minute to the next (other tenants of the host), and decode is bound by it, so two runs a few
# minutes apart are not comparable (bench/compare_llama.sh's medians mix both states). Each
# round here runs, per type, the bandwidth probe, ours (--load-mode auto), llama.cpp with
# --load-mode none and mmap, and the probe again, back to back (~1 minute); a round counts as
# "high" when both probes read >= 50 GB/s, "low" when both read < 45 GB/s, and is left out
# otherwise. Prints per type and state: medians of ours and of llama.cpp's faster mode, ratio.
set -eu
cd "$(dirname "$0")/.."
W=${1:-bench/out}
ROUNDS=${2:-4}
TYPES=${TYPES:-bf16 q8_0 q4_0 q4_k_m}
T=${THREADS:-2}
PY=${PYTHON:-/usr/bin/python3}
LB=${ORACLE_DIR:?set ORACLE_DIR (../shared/oracle/setup.sh)}/bin/llama_bench
make -s gemma2
bash bench/kernels_bench.sh "$T" 1 bw > /dev/null 2>&1 # builds build/bench/kernels_bench
probe() { build/bench/kernels_bench "$T" 2 bw | sed -n 's/.*best \([0-9.]*\) GB.*/\1/p'; }
log=$W/decode_ab.log
: > "$log"
for r in $(seq "$ROUNDS"); do
    for t in $TYPES; do
        f=$W/g2b-$t.gguf
        b0=$(probe)
        o=$(./gemma2 bench -m "$f" -p 0 -n 64 -r 2 -t "$T" | sed -n 's/^tg64 .*samples=\([0-9.,]*\).*/\1/p')
        ln=$("$LB" "$f" --prompt 0 --gen 64 --reps 2 --threads "$T" --load-mode none 2>/dev/null | sed -n 's/^tg64 .*samples=\([0-9.,]*\).*/\1/p')
        lm=$("$LB" "$f" --prompt 0 --gen 64 --reps 2 --threads "$T" --load-mode mmap 2>/dev/null | sed -n 's/^tg64 .*samples=\([0-9.,]*\).*/\1/p')
        b1=$(probe)
        echo "$t $b0 $b1 ours=$o none=$ln mmap=$lm" | tee -a "$log"
    done
done
"$PY" - "$log" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    t, b0, b1, *kv = line.split()
    b0, b1 = float(b0), float(b1)
    state = "high" if min(b0, b1) >= 50 else "low" if max(b0, b1) < 45 else None
    if state is None:
        continue
    d = rows.setdefault((t, state), {"ours": [], "none": [], "mmap": [], "n": 0})
    d["n"] += 1
    for item in kv:
        k, v = item.split("=")
        if v:
            d[k].extend(float(x) for x in v.split(","))
print("%-8s %-5s %7s %9s %11s %11s %6s" % ("type", "bw", "rounds", "ours t/s", "llama none", "llama mmap", "ratio"))
for (t, state), d in sorted(rows.items()):
    med = lambda k: statistics.median(d[k]) if d[k] else 0.0
    o, n, m = med("ours"), med("none"), med("mmap")
    print("%-8s %-5s %7d %9.2f %11.2f %11.2f %6.2f" % (t, state, d["n"], o, n, m, o / max(n, m) if max(n, m) else 0))
PY
