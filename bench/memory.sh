#!/usr/bin/env bash
# bench/memory.sh - memory of a 2B-shape model evaluated over a full 8192-token context:
# peak RSS against the file size plus the KV cache, and what the sliding-window ring saves.
#
#   bench/memory.sh [WORKDIR]     (default WORKDIR: bench/out; needs ~16 GB of disk)
#
# It makes a random Gemma 2 of the 2B shape with the oracle's make_gguf.py (BF16, as GGUF and as a
# Hugging Face directory: same weights), quantizes the GGUF to Q8_0 (our `gemma2 quantize` if it
# exists, else the oracle's llama_quantize), then for each file runs
#   gemma2 bench -m FILE -p 8192 -n 0 -r 1 --no-warmup --ctx 8192
# (one batch of 8192 prompt tokens in pieces of 512, logits of the last token) and prints a table.
# Weights are memory-mapped: the touched pages of the file count in the RSS.
set -eu
cd "$(dirname "$0")/.."
W=${1:-bench/out}
SHARED=${GEMMA2_SHARED:-../shared}
PY=${PYTHON:-/usr/bin/python3}
mkdir -p "$W"
make -s gemma2
if [ ! -f "$W/g2b-bf16.gguf" ] || [ ! -d "$W/g2b-bf16_hf" ]; then
    "$PY" "$SHARED/oracle/make_gguf.py" "$W/g2b-bf16.gguf" --hf-out "$W/g2b-bf16_hf" --preset gemma2-2b --dtype bf16 --seed 0
fi
if [ ! -f "$W/g2b-q8_0.gguf" ]; then
    if ./gemma2 quantize --help > /dev/null 2>&1; then
        ./gemma2 quantize "$W/g2b-bf16.gguf" "$W/g2b-q8_0.gguf" --type q8_0 -q
    else
        "${ORACLE_DIR:?set ORACLE_DIR or build gemma2 quantize}/bin/llama_quantize" "$W/g2b-bf16.gguf" "$W/g2b-q8_0.gguf" Q8_0
    fi
fi
printf '%-28s %14s %14s %14s %14s %14s %10s\n' model file_bytes kv_bytes kv_no_ring peak_rss rss-file-kv pp8192_s
for f in "$W/g2b-bf16.gguf" "$W/g2b-q8_0.gguf" "$W/g2b-bf16_hf"; do
    out=$(./gemma2 bench -m "$f" -p 8192 -n 0 -r 1 --no-warmup --ctx 8192 -t "${THREADS:-2}")
    hdr=$(echo "$out" | grep '^#')
    line=$(echo "$out" | grep '^pp8192')
    get() { echo "$1" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2; }
    fb=$(get "$hdr" file_bytes) kv=$(get "$hdr" kv_bytes) kvn=$(get "$hdr" kv_bytes_no_ring)
    rss=$(get "$line" peak_rss) ms=$(get "$line" ms)
    printf '%-28s %14s %14s %14s %14s %14s %10.1f\n' "$(basename "$f")" "$fb" "$kv" "$kvn" "$rss" $((rss - fb - kv)) \
        "$(echo "$ms / 1000" | bc -l)"
done
