#!/usr/bin/env bash
# quantize.sh - `gemma2 quantize` against llama.cpp's quantizer (the oracle's llama_quantize):
#   1. from the same F32 GGUF, every type gives the same tensor types (the same mix) and the same
#      bytes as llama.cpp's (our quantizers reproduce ggml's reference quantizers);
#   2. llama.cpp loads and runs what we write; we load what llama.cpp writes, and our logits on
#      such a file are close to llama.cpp's on it (rel_max <= 4e-2; measured 3e-4 (F16) to 1.9e-2
#      (Q4_K_M): both quantize activations to Q8 for the integer types, and a one-step rounding
#      flip of a quantized activation moves a logit by about 1e-2);
#   3. an HF directory quantizes too (same tensors as quantizing its GGUF conversion);
#   4. bad requests: an unknown type, a row length that no block fits (falls back and says so),
#      no output file left on failure.
set -u
BIN=${GEMMA2_RELEASE_BIN:?}
SAN=${GEMMA2_BIN:?}
SHARED=${GEMMA2_SHARED:?}
PY=${PYTHON:-/usr/bin/python3}
O=$SHARED/oracle
D=tests/generated/quantize
mkdir -p "$D"
fails=0
ok() { echo "ok $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
# hidden 256 and ffn 512: every row length is a multiple of the 256-element K blocks
[ -f "$D/m.gguf" ] || "$PY" "$O/make_gguf.py" "$D/m.gguf" --hf-out "$D/m_hf" --seed 5 --vocab 320 --hidden 256 \
    --heads 2 --kv-heads 1 --head-dim 128 --ffn 512 --layers 8 --sliding-window 6 > /dev/null
echo "2 17 300 45 99 7 260 211 13 5 77 150" > "$D/ids.txt"
Q=""
[ -n "${ORACLE_DIR:-}" ] && [ -x "$ORACLE_DIR/bin/llama_quantize" ] && Q=$ORACLE_DIR/bin/llama_quantize

for t in q8_0:Q8_0 q4_0:Q4_0 q4_k_m:Q4_K_M q6_k:Q6_K bf16:BF16 f16:F16; do
    ours=${t%%:*} theirs=${t##*:}
    "$BIN" quantize "$D/m.gguf" "$D/ours-$ours.gguf" --type "$ours" -q || { bad "$ours: quantize"; continue; }
    "$BIN" logits -m "$D/ours-$ours.gguf" --ids-file "$D/ids.txt" -o "$D/ours-$ours.f32" --load-mode mmap || { bad "$ours: our logits"; continue; }
    if [ -z "$Q" ]; then echo "skip $ours: vs llama.cpp: ORACLE_DIR not set up"; continue; fi
    "$Q" "$D/m.gguf" "$D/llama-$ours.gguf" "$theirs" > /dev/null 2>&1 || { bad "$ours: llama_quantize"; continue; }
    if "$PY" tests/cli/gguf_tool.py compare "$D/ours-$ours.gguf" "$D/llama-$ours.gguf" > "$D/cmp-$ours.txt"; then
        ok "$ours: same types and bytes as llama.cpp ($(tail -1 "$D/cmp-$ours.txt"))"
    else
        bad "$ours: tensors differ from llama.cpp's"; head -5 "$D/cmp-$ours.txt"
    fi
    "$ORACLE_DIR/bin/llama_logits" "$D/ours-$ours.gguf" "$D/ids.txt" "$D/llama-on-ours-$ours.f32" > /dev/null 2>&1 \
        && ok "$ours: llama.cpp loads our file" || bad "$ours: llama.cpp cannot load our file"
    "$BIN" logits -m "$D/llama-$ours.gguf" --ids-file "$D/ids.txt" -o "$D/ours-on-llama-$ours.f32" \
        && ok "$ours: we load llama.cpp's file" || bad "$ours: we cannot load llama.cpp's file"
    if "$PY" "$O/compare.py" "$D/ours-$ours.f32" "$D/llama-on-ours-$ours.f32" --vocab 320 --max-rel 4e-2 > "$D/cmpl-$ours.txt"; then
        ok "$ours: our logits vs llama.cpp's on the same file ($(grep -o 'rel_max[^ ]*' "$D/cmpl-$ours.txt"))"
    else
        bad "$ours: logits vs llama.cpp"; cat "$D/cmpl-$ours.txt"
    fi
done

# weights copied into memory (--load-mode read): F16, BF16, Q8_0 and Q4_0 matrices are repacked into
# the r16 layout there (src/kernels/repack.h) and run the r16 kernels, which add in another order
# than the plain AVX-512 kernels but in the scalar path's (integer sums per block, then the
# scale): compared with the scalar path, as one batch and one token at a time, within 1e-5
# relative (fp32 rounding; measured 1.7e-7 to 6.0e-7), except Q4_0 as a batch and Q8_0: there
# one quantized activation rounds the other way after fp32 sums in another order (Q4_0 batch
# 4.3e-3, Q8_0 batch and decode 4.6e-3 and 4.4e-3 (1.9e-3 before its query/key/value products
# took two-term activations); the plain AVX-512 path is 8.5e-3 from the scalar one in Q4_0
# decode), so 4e-2 as for the other quantized comparisons of this file. The inputs are
# fixed, so each is deterministic. BF16 with exact products (GEMMA2_BF16_DOT=0): the default
# vdpbf16ps path rounds the activations (test_kernels: test_bf16_dot_option).
for ty in f16 bf16 q8_0 q4_0; do
    for mode in batch decode; do
        dec=$([ $mode = decode ] && echo --decode || true)
        tol=$([ $ty$mode = q4_0batch ] || [ $ty = q8_0 ] && echo 4e-2 || echo 1e-5)
        GEMMA2_ISA=scalar "$BIN" logits -m "$D/ours-$ty.gguf" --ids-file "$D/ids.txt" -o "$D/sc-$mode-$ty.f32" $dec --load-mode mmap && \
        GEMMA2_BF16_DOT=0 "$SAN" logits -m "$D/ours-$ty.gguf" --ids-file "$D/ids.txt" -o "$D/r16-$mode-$ty.f32" $dec --load-mode read && \
        "$PY" "$O/compare.py" "$D/r16-$mode-$ty.f32" "$D/sc-$mode-$ty.f32" --vocab 320 --max-rel "$tol" > "$D/cmp16-$mode-$ty.txt" && \
            ok "$ty: r16 $mode vs scalar $mode ($(grep -o 'rel_max[^ ]*' "$D/cmp16-$mode-$ty.txt"))" || \
            { bad "$ty: r16 $mode"; cat "$D/cmp16-$mode-$ty.txt"; }
    done
done

# read mode packs BF16 tensors, and F16 ones that hold BF16 values, into 12 bits a weight (r16e)
# as it reads them from the file, where AVX2 is the best instruction set (forced here), and on
# AVX-512, with bf16 activations (AVX512-BF16, the default) and with fp32 ones (avx512x below:
# GEMMA2_BF16_DOT=0): the logits are the
# same bytes as with the 16-bit r16 layout (GEMMA2_BF16_CODES=0, which copies the whole file
# first), as one batch of 20 and one token at a time (r16e's products are r16's, in r16's order).
# bf16-f16.gguf, F16 made from the BF16 file, holds BF16 values and is packed too (on AVX2 with
# F16's products; on AVX-512 it becomes a BF16 model and takes BF16's kernels, so its logits
# are not compared there); ours-f16.gguf, from F32 weights, is not (the load reads its rows again
# and keeps 16 bits): the bytes a decode step reads (`gemma2 bench`'s read_bytes) say which.
echo "2 17 300 45 99 7 260 211 13 5 77 150 3 8 19 250 31 64 128 6" > "$D/ids20.txt"
isas=$(grep -qw avx2 /proc/cpuinfo && echo avx2)
grep -qw avx512_vnni /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && isas="$isas avx512x"
grep -qw avx512_bf16 /proc/cpuinfo && isas="$isas avx512"
if [ -z "$isas" ]; then
    echo "skip r16e streamed: no AVX2"
elif "$BIN" quantize "$D/ours-bf16.gguf" "$D/bf16-f16.gguf" --type f16 -q; then
    for isa in $isas; do
        dot=$([ $isa = avx512x ] && echo 0 || echo 1)
        for f in ours-bf16:packed bf16-f16:packed ours-f16:16-bit; do
            name=${f%%:*} want=${f##*:}
            line=$(GEMMA2_ISA=${isa%x} GEMMA2_BF16_DOT=$dot "$SAN" bench -m "$D/$name.gguf" -p 0 -n 1 -r 1 --no-warmup --load-mode read | grep '^tg1 ')
            rb=$(echo "$line" | grep -o 'read_bytes=[0-9]*' | cut -d= -f2) mb=$(echo "$line" | grep -o 'model_bytes=[0-9]*' | cut -d= -f2)
            got=$([ -n "$rb" ] && [ "$rb" -lt "${mb:-0}" ] && echo packed || echo 16-bit)
            [ "$got" = "$want" ] && ok "$name, $isa: read mode, $got weights (read_bytes $rb of $mb)" \
                || bad "$name, $isa: $got weights, expected $want"
            [ $isa != avx2 ] && [ $name = bf16-f16 ] && continue
            for mode in batch decode; do
                dec=$([ $mode = decode ] && echo --decode || true)
                for codes in 0 1; do
                    GEMMA2_ISA=${isa%x} GEMMA2_BF16_DOT=$dot GEMMA2_BF16_CODES=$codes "$SAN" logits -m "$D/$name.gguf" --ids-file "$D/ids20.txt" \
                        -o "$D/codes$codes-$mode-$name.f32" $dec --load-mode read || bad "$name: logits, codes $codes"
                done
                cmp -s "$D/codes0-$mode-$name.f32" "$D/codes1-$mode-$name.f32" && ok "$name, $isa: $mode, r16e the same bytes as r16" \
                    || bad "$name, $isa: $mode, r16e differs from r16"
            done
        done
    done
else
    bad "quantize BF16 to F16"
fi

# an HF directory gives the same file contents as its GGUF conversion
"$BIN" quantize "$D/m_hf" "$D/hf-q8_0.gguf" --type q8_0 -q && \
    "$PY" tests/cli/gguf_tool.py compare "$D/hf-q8_0.gguf" "$D/ours-q8_0.gguf" > "$D/cmp-hf.txt" \
    && ok "hf dir: same tensors as from the GGUF" || { bad "hf dir quantize"; head -5 "$D/cmp-hf.txt"; }

# an HF directory with Gemma's real tokenizer.model: the GGUF carries its vocabulary, which gives
# the same ids as the .model (the 366 strings of the expected-ids file) and which llama.cpp reads
[ -f "$D/v.gguf" ] || "$PY" "$O/make_gguf.py" "$D/v.gguf" --hf-out "$D/v_hf" --vocab-from "$SHARED/tokenizer/gemma_tokenizer.model" \
    --hidden 64 --heads 2 --kv-heads 1 --head-dim 32 --ffn 64 --layers 2 --dtype bf16 > /dev/null
"$BIN" quantize "$D/v_hf" "$D/v-q8_0.gguf" --type q8_0 -q || bad "quantize HF dir with tokenizer.model"
E=$SHARED/tokenizer/gemma2_expected.jsonl
if "$BIN" tokenize -t "$D/v-q8_0.gguf" --jsonl "$E" > "$D/v-ids-gguf.txt" && \
   "$BIN" tokenize -t "$D/v_hf/tokenizer.model" --jsonl "$E" > "$D/v-ids-model.txt" && cmp -s "$D/v-ids-gguf.txt" "$D/v-ids-model.txt"; then
    ok "hf dir vocabulary written to GGUF: same ids as tokenizer.model ($(wc -l < "$D/v-ids-gguf.txt") strings)"
else
    bad "hf dir vocabulary in GGUF gives other ids"
fi
if [ -n "$Q" ]; then
    got=$("$ORACLE_DIR/bin/llama_tokenize" "$D/v-q8_0.gguf" --text "Hello, world!" 2>/dev/null)
    [ "$got" = "[4521, 235269, 2134, 235341]" ] && ok "llama.cpp tokenizes with our written vocabulary" \
        || bad "llama.cpp on our vocabulary: $got"
fi

# bad requests (sanitized binary)
rm -f "$D/bad.gguf"
msg=$("$SAN" quantize "$D/m.gguf" "$D/bad.gguf" --type q3_x 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$msg" | grep -q "unknown quantization type 'q3_x'" && [ ! -e "$D/bad.gguf" ] \
    && ok "unknown type rejected" || bad "unknown type: rc=$rc $msg"
msg=$("$SAN" quantize "$D/missing.gguf" "$D/bad.gguf" --type q8_0 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$msg" | grep -q "cannot open" && ! ls "$D"/bad.gguf* > /dev/null 2>&1 \
    && ok "missing input: no output file" || bad "missing input: rc=$rc $msg"
msg=$("$SAN" quantize "$SHARED/torchref/tiny-b" "$D/fb.gguf" --type q4_k_m -q 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$msg" | grep -q "row length 48 is not a multiple of the Q4_K block: stored as BF16" \
    && "$SAN" logits -m "$D/fb.gguf" --ids 2,5,9 -o "$D/fb.f32" && ok "row length fallback said and loadable" \
    || bad "row length fallback: rc=$rc $msg"
[ $fails -eq 0 ]
