#!/usr/bin/env bash
# tests/cli/distill.sh - `gemma2 distill cache` and `gemma2 train --distill/--teacher` end to end
# on a tiny tokenizer, teacher and student: the cache's header and size, resuming a partial cache
# (byte-identical to an uninterrupted one), training from it and from a teacher on the fly, and the
# errors for a cache of other data, another tokenizer, another vocabulary, another --seq and a
# truncated cache. Run from the repo root; GEMMA2_BIN = the (sanitized) CLI.
set -u
BIN=${GEMMA2_BIN:-./gemma2}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
check() { if eval "$2"; then echo "ok $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
TXT=data/pretrain/tiny_shakespeare.txt
if [ ! -f "$TXT" ]; then
    echo "skip distill: no $TXT"
    exit 0
fi
head -c 30000 "$TXT" >"$T/a.txt"
tail -c 20000 "$TXT" >"$T/b.txt"
"$BIN" tokenizer train --vocab-size 320 --out "$T/tok.model" "$T/a.txt" >/dev/null 2>&1
"$BIN" tokenizer train --vocab-size 330 --out "$T/tok2.model" "$T/a.txt" >/dev/null 2>&1
"$BIN" data prepare -t "$T/tok.model" --out "$T/d" "$T/a.txt" >/dev/null 2>&1
"$BIN" data prepare -t "$T/tok.model" --out "$T/e" "$T/b.txt" >/dev/null 2>&1
mkdir -p "$T/d2" && cp "$T/d/train.bin" "$T/d/val.bin" "$T/d2/" && cp "$T/tok2.model" "$T/d2/tokenizer.model"
SHAPE="--hidden 32 --layers 2 --heads 2 --kv-heads 1 --head-dim 16 --ffn 64 --seq 32 --batch 2 -t 2 --eval-batches 1"
"$BIN" train --data "$T/d" --out "$T/teacher" $SHAPE --steps 3 >/dev/null 2>&1
TM="$T/teacher/$(cat "$T/teacher/latest" 2>/dev/null)"
check distill_teacher_trained "[ -f '$TM/model.safetensors' ]"

"$BIN" distill cache -m "$TM" --data "$T/d" --samples 4,16 --seq 32 --seed 3 -t 2 --out "$T/c-k{K}.g2d" >"$T/o1" 2>&1
check distill_cache_runs "[ \$? -eq 0 ] && [ -f '$T/c-k4.g2d' ] && [ -f '$T/c-k16.g2d' ] && ! ls '$T'/*.partial 2>/dev/null"
"$BIN" distill info "$T/c-k16.g2d" >"$T/info" 2>&1
check distill_info "grep -q 'vocab 320, K 16, temperature 1, seed 3' '$T/info' && grep -q 'bytes per position (2-byte ids, 1-byte counts)' '$T/info'"
# the header fields and the footer, read independently of the C code
check distill_cache_layout "python3 - '$T/c-k16.g2d' '$T/d/train.bin' <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
assert b[:8] == b'G2DCACHE' and b[-8:] == b'G2DCEND1'
ver, vocab, K, seq = struct.unpack_from('<IIII', b, 8)
ntok = struct.unpack_from('<Q', open(sys.argv[2], 'rb').read(), 16)[0]
n_tok, nw = struct.unpack_from('<QQ', b, 56)
assert (ver, vocab, K, seq) == (1, 320, 16, 32) and n_tok == ntok and nw == (ntok - 1) // 32
offs = struct.unpack_from('<%dQ' % (nw + 1), b, len(b) - 16 - 8 * (nw + 1))
assert offs[0] == 96 and offs[-1] == len(b) - 16 - 8 * (nw + 1)
# walk window 0: every position's counts add up to K
at = offs[0]
for t in range(seq):
    n = b[at] + 1; at += 1
    s = sum(b[at + 3 * i + 2] + 1 for i in range(n)); at += 3 * n
    assert s == 16, s
assert at == offs[1]
PY"
# an interrupted run (a partial file cut inside a window) continues to the same bytes
size=$(stat -c %s "$T/c-k16.g2d")
head -c $((size / 2)) "$T/c-k16.g2d" >"$T/r.g2d.partial"
"$BIN" distill cache -m "$TM" --data "$T/d" --samples 16 --seq 32 --seed 3 -t 2 --out "$T/r.g2d" >"$T/o2" 2>&1
check distill_cache_resume "grep -q 'continuing' '$T/o2' && cmp -s '$T/r.g2d' '$T/c-k16.g2d'"
"$BIN" distill cache -m "$TM" --data "$T/d" --samples 16 --seq 32 --seed 3 -t 2 --out "$T/r.g2d" >"$T/o3" 2>&1
check distill_cache_refuses_overwrite "[ \$? -ne 0 ] && grep -q 'exists' '$T/o3'"

"$BIN" train --data "$T/d" --out "$T/s1" $SHAPE --steps 2 --distill "$T/c-k16.g2d" --distill-alpha 0.1 >"$T/s1.out" 2>&1
check train_distill_cache "[ \$? -eq 0 ] && [ -f '$T/s1/latest' ]"
"$BIN" train --data "$T/d" --out "$T/s2" $SHAPE --steps 2 --teacher "$TM" >"$T/s2.out" 2>&1
check train_teacher_full "[ \$? -eq 0 ] && [ -f '$T/s2/latest' ]"
"$BIN" train --data "$T/d" --out "$T/s3" $SHAPE --steps 2 --teacher "$TM" --teacher-topk 8 >"$T/s3.out" 2>&1
check train_teacher_topk "[ \$? -eq 0 ] && [ -f '$T/s3/latest' ]"

# bad input: clear errors, nothing trained
"$BIN" train --data "$T/e" --out "$T/x1" $SHAPE --steps 1 --distill "$T/c-k16.g2d" >"$T/x1.out" 2>&1
check distill_other_data "[ \$? -ne 0 ] && grep -q 'made from other training data' '$T/x1.out'"
"$BIN" train --data "$T/d2" --out "$T/x2" $SHAPE --steps 1 --distill "$T/c-k16.g2d" >"$T/x2.out" 2>&1
check distill_other_tokenizer "[ \$? -ne 0 ] && grep -q 'another tokenizer' '$T/x2.out'"
"$BIN" train --data "$T/d" --out "$T/x3" $SHAPE --vocab 400 --steps 1 --distill "$T/c-k16.g2d" >"$T/x3.out" 2>&1
check distill_other_vocab "[ \$? -ne 0 ] && grep -q 'vocabulary of 320; this model has 400' '$T/x3.out'"
"$BIN" train --data "$T/d" --out "$T/x4" $SHAPE --seq 16 --steps 1 --distill "$T/c-k16.g2d" >"$T/x4.out" 2>&1
check distill_other_seq "[ \$? -ne 0 ] && grep -q 'windows of 32 tokens; --seq is 16' '$T/x4.out'"
head -c $((size - 5)) "$T/c-k16.g2d" >"$T/t.g2d"
"$BIN" train --data "$T/d" --out "$T/x5" $SHAPE --steps 1 --distill "$T/t.g2d" >"$T/x5.out" 2>&1
check distill_truncated "[ \$? -ne 0 ] && grep -q 'truncated' '$T/x5.out'"
"$BIN" train --data "$T/d" --out "$T/x6" $SHAPE --steps 1 --distill "$T/nope.g2d" >"$T/x6.out" 2>&1
check distill_missing "[ \$? -ne 0 ] && grep -q 'nope.g2d' '$T/x6.out'"
"$BIN" distill cache -m "$TM" --data "$T/d" --samples 0 --out "$T/z.g2d" >"$T/x7.out" 2>&1
check distill_bad_k "[ \$? -eq 2 ]"
[ $fails -eq 0 ]
