#!/usr/bin/env bash
# tests/cli/train_data.sh - `gemma2 data prepare`: text and JSONL to token shards with the Gemma
# tokenizer, the shard header, the train/validation split, and bad input.
# Run from the repo root; GEMMA2_BIN = the (sanitized) CLI.
set -u
BIN=${GEMMA2_BIN:-./gemma2}
PY=${PYTHON:-/usr/bin/python3}
SHARED=${GEMMA2_SHARED:-../shared}
TOK=$SHARED/tokenizer/gemma_tokenizer.model
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
check() { if eval "$2"; then echo "ok $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
if [ ! -f "$TOK" ]; then
    echo "skip train_data: no $TOK"
    exit 0
fi

printf 'Hello world. This is a plain text document.\n' >"$T/a.txt"
printf '{"text": "First JSON document."}\n\n{"text": "Second one, digits 12345.", "id": 7}\n' >"$T/b.jsonl"
"$BIN" data prepare -t "$TOK" --out "$T/d" "$T/a.txt" "$T/b.jsonl" --val-frac 0.25 >"$T/out" 2>&1
check data_prepare_runs "[ \$? -eq 0 ] && grep -q '^3 documents' '$T/out' && cmp -s '$TOK' '$T/d/tokenizer.model'"
# `Hello` = 4521 (GEMMA2.md example); every document is <bos> ... <eos>
check data_prepare_shards "$PY - '$T/d' <<'PY'
import struct, sys
def load(p):
    b = open(p, 'rb').read()
    assert b[:8] == b'G2TOKENS'
    ver, vocab, n, _ = struct.unpack('<IIQQ', b[8:32])
    assert ver == 1 and vocab == 256000 and len(b) == 32 + 4 * n
    return list(struct.unpack('<%dI' % n, b[32:]))
tr, va = load(sys.argv[1] + '/train.bin'), load(sys.argv[1] + '/val.bin')
allt = tr + va
assert allt[0] == 2 and allt[1] == 4521 and allt[-1] == 1, allt[:4]
assert allt.count(2) == 3 and allt.count(1) == 3
assert len(va) == int(0.25 * len(allt)) and len(va) > 0
PY"
printf '{"text": "ok"}\n{"text": 3}\n' >"$T/bad.jsonl"
"$BIN" data prepare -t "$TOK" --out "$T/e" "$T/bad.jsonl" >"$T/e1" 2>&1
check data_bad_jsonl "[ \$? -ne 0 ] && grep -q 'bad.jsonl:2' '$T/e1'"
"$BIN" data prepare -t "$TOK" --out "$T/e" "$T/missing.txt" >"$T/e2" 2>&1
check data_missing_file "[ \$? -ne 0 ] && grep -q 'missing.txt' '$T/e2'"
"$BIN" train --data "$T/d" --vocab 1000 --hidden 16 --layers 1 --heads 1 --kv-heads 1 --head-dim 16 --ffn 16 --steps 1 --seq 4 --out "$T/r" >"$T/e3" 2>&1
check data_vocab_mismatch "[ \$? -ne 0 ] && grep -q 'vocabulary of 256000' '$T/e3'"
# a model with the tokenizer's vocabulary trains on the shards; checkpoints carry the tokenizer
"$BIN" train --data "$T/d" --hidden 8 --layers 1 --heads 1 --kv-heads 1 --head-dim 8 --ffn 8 --steps 2 --batch 1 --seq 4 --out "$T/r2" >"$T/e4" 2>&1
check data_train_checkpoint_has_tokenizer "[ \$? -eq 0 ] && cmp -s '$TOK' '$T/r2/'\$(cat '$T/r2/latest')'/tokenizer.model'"
[ $fails -eq 0 ]
