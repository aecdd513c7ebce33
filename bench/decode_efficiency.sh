#!/usr/bin/env bash
# bench/decode_efficiency.sh - decode's weight traffic as a fraction of the memory bandwidth
# measured between its steps (issue 6: "decode at 85% of the measured bandwidth or better").
#
#   bench/decode_efficiency.sh [WORKDIR] [ROUNDS]     (default bench/out, 1 round)
#   TYPES="bf16 q4_0" ISA=avx2 LOAD=mmap TG=64 REPS=3 PROBE_MIB=256 bench/decode_efficiency.sh
#
# Decode reads every weight once per token. On this shared host the read bandwidth swings between
# about 30 and 65 GB/s from one second to the next (README, Performance), so a probe taken
# before a run says little about the run itself. Here `gemma2 bench --probe-bw` reads PROBE_MIB
# MiB of its own memory (huge pages, the same threads) right before each decode step and times
# the step alone: each step's weight bytes / its time, divided by the probe just before it, and
# the median of that over all steps. Files: those of bench/compare_llama.sh ($W/g2b-TYPE.gguf).
set -eu
cd "$(dirname "$0")/.."
W=${1:-bench/out}
ROUNDS=${2:-1}
TYPES=${TYPES:-bf16 f16 q8_0 q4_0 q4_k_m}
LOAD=${LOAD:-auto}
T=${THREADS:-2}
TG=${TG:-64}
REPS=${REPS:-3}
PROBE_MIB=${PROBE_MIB:-256}
SHAPE=${SHAPE:-2b}
LOG=${LOG:-$W/decode_efficiency.log}
if [ -n "${ISA:-}" ]; then export GEMMA2_ISA=$ISA; fi
make -s gemma2
: > "$LOG"
for r in $(seq 1 "$ROUNDS"); do
    for t in $TYPES; do
        f=$W/g$SHAPE-$t.gguf
        [ -f "$f" ] || { echo "missing $f: run bench/compare_llama.sh first" >&2; exit 1; }
        ./gemma2 bench -m "$f" -p 0 -n "$TG" -r "$REPS" -t "$T" --load-mode "$LOAD" --probe-bw "$PROBE_MIB" \
            | sed -n "s/^tg/$t tg/p" >> "$LOG"
    done
done
echo "# $(date -u +%F) decode tg$TG, $T threads, load $LOAD${ISA:+, ISA $ISA}: weight traffic against the probe before each step"
awk '{
    printf "%-7s", $1
    for (i = 2; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] ~ /^(t\/s|weight_GB\/s|probe_GB\/s|probe_min|probe_max|weight_per_probe|ratio_min|ratio_max)$/) v[kv[1]] = kv[2]
    }
    printf " tg t/s %7s  weight %6s GB/s  probe %6s GB/s (%s-%s)  weight/probe %s (%s-%s)\n", v["t/s"], v["weight_GB/s"],
           v["probe_GB/s"], v["probe_min"], v["probe_max"], v["weight_per_probe"], v["ratio_min"], v["ratio_max"]
}' "$LOG"
