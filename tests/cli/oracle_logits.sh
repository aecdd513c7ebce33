#!/usr/bin/env bash
# oracle_logits.sh - our logits on random Gemma 2 models of several shapes, written by the
# oracle's make_gguf.py both as GGUF and as a Hugging Face directory (same weights), against
#   1. each other: the two formats must give bit-identical logits (same weights, same code path),
#      and one token at a time (--decode) agrees with one batch to float32 rounding (1e-5: the
#      kernels sum in another order for one token than for a batch);
#   2. the oracle's float64 reference (ref_gemma2.py, HF semantics), with exact products
#      (GEMMA2_BF16_DOT=0): rel_max <= 1e-5 for all dtypes (our activations are fp32 and the
#      reference reads the same bf16/f16 weights exactly; float32 rounding gives 2e-7 to 7e-6
#      here, growing with depth (46 layers: 6.6e-6); one wrong convention gives 0.1 to 1.5);
#   3. the default, which is the same except for BF16 weights on AVX512-BF16 CPUs: there the
#      activations are rounded to bf16 for vdpbf16ps, as llama.cpp does, and the logits must be
#      within llama.cpp's tolerance below of the float64 reference (measured 4.2e-3), and decode
#      within 1e-5 of batch as in 1.;
#   4. llama.cpp (llama_logits, when ORACLE_DIR has it) against our default, within the oracle
#      README's measured llama.cpp-vs-exact figures with a 2x margin: F32 5e-4, F16 1e-3, BF16
#      7e-3, the 46-layer model 8e-3 (llama.cpp rounds GELU through an fp16 table and F16/BF16
#      matmul inputs).
# rel_max = max|a-b| / max|b| over all positions and the whole vocabulary (compare.py).
set -u
BIN=${GEMMA2_BIN:?}
SHARED=${GEMMA2_SHARED:?}
PY=${PYTHON:-/usr/bin/python3}
O=$SHARED/oracle
D=tests/generated/oracle
mkdir -p "$D"
fails=0
ok() { echo "ok $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }

LLAMA=""
if [ -n "${ORACLE_DIR:-}" ] && [ -x "$ORACLE_DIR/bin/llama_logits" ]; then LLAMA=$ORACLE_DIR/bin/llama_logits; fi

# name | make_gguf options | n tokens | llama.cpp tolerance
while IFS='|' read -r name opts ntok ltol; do
    [ -z "$name" ] && continue
    m=$D/$name
    if [ ! -f "$m.gguf" ]; then
        # shellcheck disable=SC2086
        "$PY" "$O/make_gguf.py" "$m.gguf" --hf-out "$m.hf" $opts > "$m.make.log" 2>&1 || { bad "$name: make_gguf"; cat "$m.make.log"; continue; }
    fi
    vocab=$("$PY" -c "import json;print(json.load(open('$m.hf/config.json'))['vocab_size'])")
    "$PY" -c "import random; r=random.Random(7); print(' '.join(['2']+[str(r.randrange($vocab)) for _ in range($ntok-1)]))" > "$m.ids"
    GEMMA2_BF16_DOT=0 "$BIN" logits -m "$m.gguf" --ids-file "$m.ids" -o "$m.gguf.f32" || { bad "$name: logits gguf"; continue; }
    GEMMA2_BF16_DOT=0 "$BIN" logits -m "$m.hf" --ids-file "$m.ids" -o "$m.hf.f32" || { bad "$name: logits hf"; continue; }
    GEMMA2_BF16_DOT=0 "$BIN" logits -m "$m.gguf" --ids-file "$m.ids" -o "$m.dec.f32" --decode || { bad "$name: logits --decode"; continue; }
    "$BIN" logits -m "$m.gguf" --ids-file "$m.ids" -o "$m.def.f32" || { bad "$name: logits (default)"; continue; }
    if cmp -s "$m.gguf.f32" "$m.hf.f32"; then ok "$name: gguf == hf bitwise"; else bad "$name: gguf and hf logits differ"; fi
    if "$PY" "$O/compare.py" "$m.dec.f32" "$m.gguf.f32" --vocab "$vocab" --max-rel 1e-5 --min-argmax 1 > "$m.cmp_dec.txt"; then
        ok "$name: decode == batch"; else bad "$name: decode vs batch"; cat "$m.cmp_dec.txt"; fi
    [ -f "$m.ref.npy" ] || "$PY" "$O/ref_gemma2.py" "$m.hf" "$m.ids" "$m.ref.npy" > /dev/null 2>&1
    if "$PY" "$O/compare.py" "$m.hf.f32" "$m.ref.npy" --max-rel 1e-5 --min-argmax 1 > "$m.cmp_ref.txt"; then
        ok "$name: vs float64 reference ($(grep -o 'rel_max[^ ]*' "$m.cmp_ref.txt" | head -1))"
    else
        bad "$name: vs float64 reference"; cat "$m.cmp_ref.txt"
    fi
    if cmp -s "$m.def.f32" "$m.gguf.f32"; then
        ok "$name: default == exact products"
    else
        if "$PY" "$O/compare.py" "$m.def.f32" "$m.ref.npy" --max-rel "$ltol" --min-argmax 0.95 > "$m.cmp_defref.txt"; then
            ok "$name: default (bf16 activations) vs float64 reference ($(grep -o 'rel_max[^ ]*' "$m.cmp_defref.txt" | head -1), tolerance $ltol)"
        else
            bad "$name: default vs float64 reference"; cat "$m.cmp_defref.txt"
        fi
        "$BIN" logits -m "$m.gguf" --ids-file "$m.ids" -o "$m.defdec.f32" --decode || { bad "$name: logits --decode (default)"; continue; }
        if "$PY" "$O/compare.py" "$m.defdec.f32" "$m.def.f32" --vocab "$vocab" --max-rel 1e-5 --min-argmax 1 > "$m.cmp_defdec.txt"; then
            ok "$name: default decode == batch"; else bad "$name: default decode vs batch"; cat "$m.cmp_defdec.txt"; fi
    fi
    if [ -n "$LLAMA" ]; then
        "$LLAMA" "$m.gguf" "$m.ids" "$m.llama.f32" > /dev/null 2>&1 || { bad "$name: llama_logits failed"; continue; }
        if "$PY" "$O/compare.py" "$m.def.f32" "$m.llama.f32" --vocab "$vocab" --max-rel "$ltol" --min-argmax 0.95 > "$m.cmp_llama.txt"; then
            ok "$name: vs llama.cpp ($(grep -o 'rel_max[^ ]*' "$m.cmp_llama.txt" | head -1), tolerance $ltol)"
        else
            bad "$name: vs llama.cpp"; cat "$m.cmp_llama.txt"
        fi
    else
        echo "skip $name: vs llama.cpp: ORACLE_DIR not set up (run ../shared/oracle/setup.sh)"
    fi
done <<'MODELS'
tiny_f32_w8|--seed 0 --sliding-window 8|40|5e-4
hd32_kv1_w5|--seed 1 --hidden 64 --heads 4 --kv-heads 1 --head-dim 32 --layers 3 --ffn 96 --sliding-window 5|24|5e-4
l46_hd32|--seed 2 --vocab 300 --hidden 32 --heads 2 --kv-heads 1 --head-dim 32 --ffn 64 --layers 46 --sliding-window 6|16|8e-3
tiny_bf16_w8|--seed 3 --dtype bf16 --sliding-window 8|40|7e-3
tiny_f16_w8|--seed 4 --dtype f16 --sliding-window 8|40|1e-3
MODELS
[ $fails -eq 0 ]
