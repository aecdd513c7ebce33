#!/bin/bash
# train_bench.sh - training throughput of `gemma2 train` against PyTorch (train_bench_torch.py),
# side by side, on the same Gemma 2 shape: vocab 4096, hidden 256, 6 layers, 4 heads, 1 kv head,
# head_dim 64, FFN 1024, batch 8 x 256, 2 threads, fp32, AdamW, random tokens.
#
#   bench/train_bench.sh [STEPS]        (from the repo root; GEMMA2_BIN=./gemma2 by default)
#
# Prints tokens/s (wall clock, median step) and tokens per CPU-second for both, and the ratios.
# On a shared machine the wall-clock numbers move with the load: compare the two in one run.
set -eu
STEPS=${1:-5}
BIN=${GEMMA2_BIN:-./gemma2}
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

$PY - "$TMP" <<'PY'
import struct, random, sys
random.seed(1)
n = 400000
toks = [random.randrange(4096) for _ in range(n)]
open(sys.argv[1] + "/train.bin", "wb").write(b"G2TOKENS" + struct.pack("<IIQQ", 1, 4096, n, 0) + struct.pack("<%dI" % n, *toks))
PY

SHAPE="--vocab 4096 --hidden 256 --layers 6 --heads 4 --kv-heads 1 --head-dim 64 --ffn 1024 --window 4096"
TIMEFORMAT="%R %U %S"
{ time OMP_WAIT_POLICY=passive "$BIN" train --data "$TMP" --out "$TMP/run" $SHAPE --batch 8 --seq 256 \
    --steps $((STEPS + 1)) --lr 3e-4 -t 2 >/dev/null 2>"$TMP/ours.log"; } 2>"$TMP/ours.time"
# median tokens/s of the steps after the first (the first pays for page faults)
OURS=$(awk -F, 'NR > 2 { print $6 }' "$TMP/run/log.csv" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
read -r OWALL OUSER OSYS <"$TMP/ours.time"
OCPU=$(echo "$OUSER $OSYS" | awk '{ print $1 + $2 }')
OTOK=$(( (STEPS + 1) * 8 * 256 ))

TORCH_LINE=$($PY "$HERE/train_bench_torch.py" "$STEPS" 2)
TT=$(echo "$TORCH_LINE" | awk '{ print $3 }')
TCPU=$(echo "$TORCH_LINE" | awk '{ print $5 }')
TTOK=$(( STEPS * 8 * 256 ))

echo "machine load (1 min): $(cut -d' ' -f1 /proc/loadavg)"
printf "gemma2 train : %8.1f tok/s (median step)   %8.1f tok per CPU-second (whole run, %s CPU-s incl. init+save)\n" "$OURS" \
    "$(echo "$OTOK $OCPU" | awk '{ print $1 / $2 }')" "$OCPU"
printf "pytorch %s : %8.1f tok/s                 %8.1f tok per CPU-second (%s CPU-s)\n" \
    "$($PY -c 'import torch; print(torch.__version__)')" "$TT" "$(echo "$TTOK $TCPU" | awk '{ print $1 / $2 }')" "$TCPU"
echo "ratio (wall tok/s): $(echo "$OURS $TT" | awk '{ printf "%.2f", $1 / $2 }')x;" \
    "ratio (tok per CPU-s): $(echo "$OTOK $OCPU $TTOK $TCPU" | awk '{ printf "%.2f", ($1 / $2) / ($3 / $4) }')x"
