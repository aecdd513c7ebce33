#!/usr/bin/env bash
# tokenizer_train.sh - `gemma2 tokenizer train` on public-domain text; the model it writes must load in
# SentencePiece (spm_encode, python3-sentencepiece) and encode held-out text exactly as ours does.
# Run from the repository root; GEMMA2_BIN, GEMMA2_SHARED as the other CLI tests.
set -u
BIN=${GEMMA2_BIN:-build/asan/gemma2}
SHARED=${GEMMA2_SHARED:-../shared}
PY=${PYTHON:-/usr/bin/python3}
D=tests/generated/tok_train
mkdir -p "$D"
fails=0
ok() { echo "ok $1"; }
fail() { echo "FAIL $1${2:+: $2}"; fails=$((fails + 1)); }
skip() { echo "skip $1: $2 (skipped)"; }

TRAIN=$SHARED/data/pretrain/tiny_shakespeare.txt
[ -f "$TRAIN" ] || { fail tokenizer_train_setup "no $TRAIN"; exit 1; }
# held out: other books, wiki text with digits, and a few lines of other scripts and markup
{
    head -n 3000 "$SHARED/data/pretrain/moby_dick.txt"
    head -n 1500 "$SHARED/data/eval/wikitext-2-raw/wiki.test.raw"
    printf '%s\n' "Año 2024: 12345 coins, 3.14159." "日本語のテキスト and 한국어" "<start_of_turn>user" \
        "Tabs	and    spaces   " "   leading spaces" "emoji 😀 here" "<bos> is text" ""
} > "$D/heldout.txt"

if "$BIN" tokenizer train --vocab-size 3000 --out "$D/shakespeare.model" "$TRAIN" 2> "$D/train.log"; then
    ok tokenizer_train_runs
else
    fail tokenizer_train_runs "$(tail -c 300 "$D/train.log")"
    exit 1
fi
"$BIN" tokenizer info -t "$D/shakespeare.model" > "$D/info.txt" 2>&1
if grep -q "pieces: 3000 " "$D/info.txt" && grep -q "bos 2  eos 1  pad 0  unk 3  start_of_turn 4  end_of_turn 5" "$D/info.txt" &&
    grep -q "byte 256" "$D/info.txt"; then
    ok tokenizer_train_layout
else
    fail tokenizer_train_layout "$(cat "$D/info.txt")"
fi

"$BIN" tokenize -t "$D/shakespeare.model" --file "$D/heldout.txt" --lines > "$D/ours.ids" 2> "$D/ours.err" ||
    fail tokenizer_train_encode "$(head -c 300 "$D/ours.err")"
n=$(wc -l < "$D/heldout.txt")
if command -v spm_encode > /dev/null; then
    if spm_encode --model="$D/shakespeare.model" --output_format=id < "$D/heldout.txt" > "$D/spm.ids" 2> "$D/spm.err"; then
        same=$(paste -d '\t' "$D/ours.ids" "$D/spm.ids" | awk -F '\t' '$1 == $2' | wc -l)
        echo "# spm_encode: $same/$n held-out lines identical"
        if [ "$same" -eq "$n" ]; then ok tokenizer_train_spm_encode_identical; else fail tokenizer_train_spm_encode_identical "$same/$n"; fi
    else
        fail tokenizer_train_spm_encode_identical "spm_encode cannot load the model: $(head -c 300 "$D/spm.err")"
    fi
else
    skip tokenizer_train_spm_encode_identical "spm_encode (Debian package sentencepiece) is not installed"
fi
if "$PY" -c 'import sentencepiece' 2> /dev/null; then
    "$PY" - "$D/shakespeare.model" "$D/heldout.txt" > "$D/py.ids" 2> "$D/py.err" <<'PYEOF'
import sys, sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
assert (sp.pad_id(), sp.eos_id(), sp.bos_id(), sp.unk_id()) == (0, 1, 2, 3)
for line in open(sys.argv[2], "rb").read().split(b"\n")[:-1]:
    print(" ".join(map(str, sp.encode(line))))
PYEOF
    same=$(paste -d '\t' "$D/ours.ids" "$D/py.ids" | awk -F '\t' '$1 == $2' | wc -l)
    echo "# python sentencepiece: $same/$n held-out lines identical"
    if [ "$same" -eq "$n" ]; then ok tokenizer_train_python_identical; else fail tokenizer_train_python_identical "$same/$n $(head -c 200 "$D/py.err")"; fi
else
    skip tokenizer_train_python_identical "python3-sentencepiece is not installed for $PY"
fi
# the trained tokenizer actually compresses held-out English (bytes per token)
bpt=$(awk -v b="$(wc -c < "$D/heldout.txt")" '{ n += NF } END { printf "%.2f", b / n }' "$D/ours.ids")
echo "# held-out bytes per token: $bpt"
if awk -v x="$bpt" 'BEGIN { exit !(x > 2.0) }'; then ok tokenizer_train_compresses; else fail tokenizer_train_compresses "$bpt bytes/token"; fi
# a vocabulary smaller than the reserved pieces is a clear error
"$BIN" tokenizer train --vocab-size 100 --out "$D/small.model" "$TRAIN" 2> "$D/err.txt"
if [ $? -eq 1 ] && grep -q "too small" "$D/err.txt"; then ok tokenizer_train_small_vocab; else fail tokenizer_train_small_vocab "$(cat "$D/err.txt")"; fi
[ $fails -eq 0 ]
