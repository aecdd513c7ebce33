#!/usr/bin/env bash
# distill_table.sh EXP WIKI - the perplexity table of the distillation experiment (markdown on
# stdout): every run's latest checkpoint scored by `gemma2 perplexity` on the validation split
# (the first VCHUNKS chunks of 128 tokens of val.bin, the second half of each scored, as llama.cpp
# does) and on the first WCHUNKS chunks of WikiText-2's wiki.test.raw. Perplexities are per token of our 4096-piece
# tokenizer: comparable between our runs, not with word-level or other-tokenizer numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
EXP=$1 WIKI=$2
G=${G:-./gemma2}
# one thread: on 2 busy cores, OpenMP's spinning threads made 2-thread scoring 10x slower
PPL_THREADS=${PPL_THREADS:-1}
CTX=${CTX:-128}
# 300 chunks of the validation split (18,900 scored tokens) and 200 of WikiText-2 (12,600): a
# minute per model on a loaded machine; VCHUNKS=-1 WCHUNKS=-1 scores everything
VCHUNKS=${VCHUNKS:-300}
WCHUNKS=${WCHUNKS:-200}
[ -f "$EXP/val.ids" ] || python3 -c '
import struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<Q", b, 16)[0]
ids = struct.unpack_from("<%dI" % n, b, 32)
open(sys.argv[2], "w").write(" ".join(map(str, ids)) + "\n")' "$EXP/data/val.bin" "$EXP/val.ids"

ppl() { # model, args... -> "PPL +/- err"
    nice -n 10 $G perplexity -m "$1" --ctx "$CTX" --threads "$PPL_THREADS" "${@:2}" 2>/dev/null |
        sed -n 's/^Final estimate: PPL = \([0-9.]*\) +\/- \([0-9.]*\)/\1 ± \2/p'
}
desc() {
    case $1 in
    teacher) echo "teacher (next-token CE)" ;;
    scratch) echo "from scratch: next-token CE on the cache's windows" ;;
    scratch-all) echo "from scratch: next-token CE, random windows of all data" ;;
    distill-k*) echo "stored samples, K = ${1#distill-k}" ;;
    teacher-full) echo "teacher on the fly, full distribution (random windows of all data)" ;;
    teacher-top*) echo "teacher on the fly, top-${1#teacher-top}" ;;
    *) echo "$1" ;;
    esac
}
echo "| run | target | tokens seen | val PPL | WT2 test PPL | params |"
echo "|---|---|---:|---:|---:|---:|"
for r in ${RUNS:-teacher scratch distill-k8 distill-k32 distill-k256 teacher-full scratch-all teacher-top32}; do
    d="$EXP/runs/$r"
    [ -f "$d/latest" ] || continue
    ck="$d/$(cat "$d/latest")"
    steps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["step"])' "$ck/trainer_state.json")
    params=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["n_params"])' "$ck/trainer_state.json")
    v=$(ppl "$ck" --ids-file "$EXP/val.ids" --chunks "$VCHUNKS")
    w=$(ppl "$ck" -f "$WIKI" -t "$EXP/tokenizer.model" --chunks "$WCHUNKS")
    echo "| $r | $(desc "$r") | ${TOKENS_PER_STEP:-2048}x$steps | $v | $w | $params |"
done
