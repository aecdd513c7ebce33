#!/usr/bin/env bash
# tokenizer_bench.sh - encode ~10 MB of mixed text with ours and with SentencePiece's spm_encode
# (Debian package `sentencepiece`), same model, line by line; check the ids are identical and report
# MB/s for both, the ratio, and the memory of the loaded 256k vocabulary. Not a test.
#
#   bench/tokenizer_bench.sh [TOKENIZER] [MB]     (defaults: ../shared/tokenizer/gemma_tokenizer.model, 10)
# Uses the release CLI (./gemma2; `make` first). Output and inputs go to bench/out/.
set -eu
SHARED=${GEMMA2_SHARED:-../shared}
MODEL=${1:-$SHARED/tokenizer/gemma_tokenizer.model}
MB=${2:-10}
BIN=${GEMMA2_RELEASE_BIN:-./gemma2}
PY=${PYTHON:-/usr/bin/python3}
OUT=bench/out
mkdir -p "$OUT"
command -v spm_encode > /dev/null || { echo "spm_encode not found (apt-get install sentencepiece)" >&2; exit 1; }

# Mixed text: English prose, math word problems (JSON lines), Wikipedia with digits, code-like lines,
# and every 10th line one of the multilingual / emoji / markup strings of the expected-ids file.
"$PY" - "$SHARED" "$OUT/mixed.txt" "$MB" <<'PYEOF'
import json, sys, itertools
shared, out, mb = sys.argv[1], sys.argv[2], float(sys.argv[3])
def lines(p):
    with open(p, encoding="utf-8", errors="replace") as f:
        return [l.rstrip("\n") for l in f]
srcs = [lines(shared + "/data/pretrain/" + n) for n in
        ("jane_austen_6_novels.txt", "moby_dick.txt", "tiny_shakespeare.txt", "tinystories_valid_prefix.txt")]
srcs.append(lines(shared + "/data/sft/gsm8k_train.jsonl"))
srcs.append(lines(shared + "/data/eval/wikitext-2-raw/wiki.test.raw"))
multi = [json.loads(l)["text"].replace("\n", " ").replace("\0", " ") for l in open(shared + "/tokenizer/gemma2_expected.jsonl", encoding="utf-8")]
limit = int(mb * 1e6)
n = 0
with open(out, "w", encoding="utf-8") as f:
    its = [itertools.cycle(s) for s in srcs]
    mi = itertools.cycle(multi)
    k = 0
    while n < limit:
        l = next(mi) if k % 10 == 9 else next(its[k % len(its)])
        k += 1
        f.write(l + "\n")
        n += len(l.encode("utf-8")) + 1
PYEOF
bytes=$(wc -c < "$OUT/mixed.txt")
lines=$(wc -l < "$OUT/mixed.txt")
echo "input: $OUT/mixed.txt, $bytes bytes, $lines lines; model: $MODEL"

# CPU seconds (user + sys) of a command; on a shared machine they vary less than wall time.
cpu() { # OUTFILE INFILE CMD...
    local o=$1 i=$2
    shift 2
    /usr/bin/time -f "%U %S %e" -o "$OUT/time.txt" "$@" < "$i" > "$o" 2>> "$OUT/ours.stats" || return 1
    awk '{ printf "%.3f %.3f", $1 + $2, $3 }' "$OUT/time.txt"
}
: > "$OUT/ours.stats"
read -r o_cpu o_wall <<< "$(cpu "$OUT/ours.ids" /dev/null "$BIN" tokenize -t "$MODEL" --file "$OUT/mixed.txt" --lines --stats)"
read -r o_load _ <<< "$(cpu /dev/null /dev/null "$BIN" tokenize -t "$MODEL" --text "")"
read -r s_cpu s_wall <<< "$(cpu "$OUT/spm.ids" "$OUT/mixed.txt" spm_encode --model="$MODEL" --output_format=id)"
read -r s_load _ <<< "$(cpu /dev/null /dev/null spm_encode --model="$MODEL" --output_format=id)"

if cmp -s "$OUT/ours.ids" "$OUT/spm.ids"; then same="identical ids"; else same="IDS DIFFER"; fi
head -n 1 "$OUT/ours.stats"
awk -v b="$bytes" -v oc="$o_cpu" -v ol="$o_load" -v ow="$o_wall" -v sc="$s_cpu" -v sl="$s_load" -v sw="$s_wall" -v same="$same" 'BEGIN {
    oe = oc - ol; se = sc - sl
    printf "ours:       %.2f s CPU (load %.2f s; %.2f s wall) -> %.2f MB/s encoding, %.2f MB/s end to end\n", oc, ol, ow, b / 1e6 / oe, b / 1e6 / oc
    printf "spm_encode: %.2f s CPU (load %.2f s; %.2f s wall) -> %.2f MB/s encoding, %.2f MB/s end to end\n", sc, sl, sw, b / 1e6 / se, b / 1e6 / sc
    printf "ratio ours/spm_encode: %.2fx encoding, %.2fx end to end; %s\n", se / oe, sc / oc, same
}'
if command -v /usr/bin/time > /dev/null; then
    o=$(/usr/bin/time -f %M "$BIN" tokenize -t "$MODEL" --text x 2>&1 > /dev/null | tail -n 1)
    s=$(echo x | /usr/bin/time -f %M spm_encode --model="$MODEL" 2>&1 > /dev/null | tail -n 1)
    echo "peak RSS with the model loaded: ours $((o / 1024)) MB, spm_encode $((s / 1024)) MB"
fi
[ "$same" = "identical ids" ]
