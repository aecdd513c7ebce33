#!/usr/bin/env bash
# core_bad_input.sh - broken files and bad requests give a clear message naming the file, tensor
# or field, a non-zero exit status, no crash (the CLI runs under ASan+UBSan) and no output file.
set -u
BIN=${GEMMA2_BIN:?}
SHARED=${GEMMA2_SHARED:?}
PY=${PYTHON:-/usr/bin/python3}
D=tests/generated/bad
rm -rf "$D"
"$PY" tests/cli/make_bad_models.py "$D" "$SHARED" > /dev/null || { echo "FAIL make_bad_models"; exit 1; }

fails=0
# expect NAME PATTERN -- command... : non-zero exit (not a crash), message matching PATTERN, no $D/out.f32
expect() {
    local name=$1 pat=$2
    shift 3
    rm -f "$D/out.f32"
    local msg rc
    msg=$("$@" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -eq 0 ] || [ $rc -ge 128 ] || echo "$msg" | grep -q -E 'Sanitizer|runtime error'; then
        echo "FAIL $name: exit status $rc: $msg"; fails=$((fails + 1)); return
    fi
    if ! echo "$msg" | grep -q -E -e "$pat"; then
        echo "FAIL $name: message '$msg' does not match /$pat/"; fails=$((fails + 1)); return
    fi
    if ls "$D"/out.f32* > /dev/null 2>&1; then
        echo "FAIL $name: output file left behind"; fails=$((fails + 1)); return
    fi
    echo "ok $name"
}
L() { "$BIN" logits -m "$1" --ids "${2:-2,10,20}" -o "$D/out.f32" "${@:3}"; }

expect missing_file 'nonexistent.gguf: cannot open' -- L "$D/nonexistent.gguf"
expect empty_file 'empty.gguf: not a GGUF' -- L "$D/empty.gguf"
expect gguf_bad_magic 'bad_magic.gguf: not a GGUF file' -- L "$D/bad_magic.gguf"
expect gguf_bad_version 'GGUF version 7' -- L "$D/bad_version.gguf"
expect gguf_truncated_header 'truncated_header.gguf: truncated' -- L "$D/truncated_header.gguf"
expect gguf_truncated_data "truncated_data.gguf: tensor '.*'.*past the end" -- L "$D/truncated_data.gguf"
expect gguf_offset_past_end "tensor 'blk.0.attn_q.weight'.*past the end" -- L "$D/offset_past_end.gguf"
expect gguf_unknown_type "tensor 'blk.0.attn_q.weight': unknown tensor type 99" -- L "$D/unknown_type.gguf"
expect gguf_row_not_block "blk.0.attn_q.weight.*not a multiple of the Q4_K block" -- L "$D/q4k_wrong_row.gguf"
expect hf_missing_tensor "tensor 'model.layers.0.self_attn.q_proj.weight' is missing" -- L "$D/hf_missing_tensor"
expect hf_wrong_shape "tensor 'model.layers.0.self_attn.k_proj.weight' has shape \[48, 24\], expected \[24, 48\]" -- L "$D/hf_wrong_shape"
expect hf_bad_dtype "q_proj.weight.*I32" -- L "$D/hf_bad_dtype"
expect hf_bad_config_json 'config.json: not a valid JSON' -- L "$D/hf_bad_config_json"
expect hf_heads_not_divisible 'num_key_value_heads 2 must divide num_attention_heads 3' -- L "$D/hf_heads_not_divisible"
expect hf_not_gemma2 'model_type is "llama"' -- L "$D/hf_not_gemma2"
expect hf_config_wrong_type "field 'hidden_size' has the wrong type" -- L "$D/hf_config_wrong_type"
expect hf_truncated 'model.safetensors: .*(past the end|truncated)' -- L "$D/hf_truncated"
expect hf_header_too_long 'model.safetensors: not a safetensors file or truncated' -- L "$D/hf_header_too_long"
expect hf_header_not_json 'model.safetensors: safetensors header is not a valid JSON' -- L "$D/hf_header_not_json"
expect hf_offset_past_end "tensor 'model.layers.0.self_attn.q_proj.weight': data_offsets end .* past the end" -- L "$D/hf_offset_past_end"
expect hf_no_weights 'no model.safetensors' -- L "$D/hf_no_weights"
expect token_out_of_range 'token id 300 .*out of range.*300' -- L "$D/hf_good" 2,300,5
expect token_out_of_range_gguf 'token id 300 .*out of range' -- L "$D/good.gguf" 2,300,5
expect token_not_a_number "'abc' is not a token id" -- L "$D/hf_good" 2,abc,5
expect negative_token "'-4' is not a token id" -- L "$D/hf_good" 2,-4
expect too_many_tokens '6 tokens do not fit in the context: 0 of 5' -- L "$D/hf_good" 1,2,3,4,5,6 --ctx 5
expect context_over_model 'larger than the model.s 128 positions' -- L "$D/hf_good" 1,2 --ctx 129
expect ids_file_missing 'nope.txt: cannot open' -- "$BIN" logits -m "$D/hf_good" --ids-file "$D/nope.txt" -o "$D/out.f32"
expect bad_option "unknown option '--frobnicate'" -- "$BIN" logits -m "$D/hf_good" --frobnicate
expect bad_ctx_value '--ctx must be a positive integer' -- L "$D/hf_good" 1,2 --ctx -3
expect out_dir_missing 'cannot create' -- "$BIN" logits -m "$D/hf_good" --ids 1,2 -o "$D/no/such/dir/out.f32"
expect info_missing 'cannot open' -- "$BIN" info -m "$D/none.gguf"

# the good files work, and the two formats give the same logits bit for bit
if "$BIN" logits -m "$D/hf_good" --ids 2,10,20,30,40,50,60 -o "$D/a.f32" && \
   "$BIN" logits -m "$D/good.gguf" --ids 2,10,20,30,40,50,60 -o "$D/b.f32" && cmp -s "$D/a.f32" "$D/b.f32"; then
    echo "ok good_files_hf_equals_gguf"
else
    echo "FAIL good_files_hf_equals_gguf"; fails=$((fails + 1))
fi
[ $fails -eq 0 ]
