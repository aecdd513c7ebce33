#!/usr/bin/env bash
# tests/cli/train.sh - `gemma2 grads` against torchref, `gemma2 train` end to end: checkpoints in
# the HF layout that the inference side loads, --resume giving the uninterrupted loss curve,
# kill -9 during saves leaving a good checkpoint, and clear errors for bad input.
# Run from the repo root; GEMMA2_BIN = the (sanitized) CLI.
set -u
BIN=${GEMMA2_BIN:-./gemma2}
PY=${PYTHON:-/usr/bin/python3}
SHARED=${GEMMA2_SHARED:-../shared}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

# a shard of N tokens below VOCAB (learnable runs), header vocab HV
mkshard() { # path n vocab header_vocab [truncate_bytes] [bad_token]
    $PY - "$@" <<'PY'
import struct, sys, random
path, n, vocab, hv = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cut = int(sys.argv[5]) if len(sys.argv) > 5 else 0
random.seed(n)
t = []
while len(t) < n:
    s = random.randrange(vocab)
    t += [(s + i) % vocab for i in range(random.randrange(3, 12))]
t = t[:n]
if len(sys.argv) > 6: t[n // 2] = int(sys.argv[6])
b = b"G2TOKENS" + struct.pack("<IIQQ", 1, hv, n, 0) + struct.pack("<%dI" % n, *t)
open(path, "wb").write(b[:len(b) - cut] if cut else b)
PY
}

# ---- grads vs torchref ----
for fx in tiny-a tiny-b; do
    "$BIN" grads -m "$SHARED/torchref/$fx" --batch "$SHARED/torchref/$fx/ref.safetensors" -o "$T/$fx.grads" -t 2 >"$T/g.out" 2>&1
    check "grads_$fx" "$PY - '$T/$fx.grads' '$SHARED/torchref/$fx' <<'PY'
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']; dt = {'F32': np.float32, 'I32': np.int32}[v['dtype']]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(v['shape'])
    return out
ours, ref, rl = load(sys.argv[1]), load(sys.argv[2] + '/grads.safetensors'), load(sys.argv[2] + '/ref.safetensors')
assert abs(ours['loss'][0] - rl['loss'][0]) <= 1e-5 * abs(rl['loss'][0]), (ours['loss'], rl['loss'])
for k, g in ref.items():
    assert np.abs(ours[k] - g).max() <= 1e-4 * np.abs(g).max(), k
PY"
done

# ---- data ----
mkdir -p "$T/data"
mkshard "$T/data/train.bin" 6000 64 64
mkshard "$T/data/val.bin" 1000 64 64
SHAPE="--vocab 64 --hidden 32 --layers 2 --heads 2 --kv-heads 1 --head-dim 16 --ffn 64 --window 8"
RUN="--data $T/data $SHAPE --batch 2 --seq 16 --lr 3e-3 --warmup 2 --eval-every 3 -t 2"

# ---- a run, its checkpoint, and the inference side loading it ----
"$BIN" train $RUN --steps 6 --save-every 3 --out "$T/full" >"$T/full.log" 2>&1
check train_runs "[ \$? -eq 0 ] && [ -f '$T/full/log.csv' ] && [ -f '$T/full/loss.svg' ]"
check train_loss_falls "awk -F, 'NR == 2 { a = \$3 } END { exit !(\$3 < a) }' '$T/full/log.csv'"
CK=$T/full/$(cat "$T/full/latest")
check checkpoint_layout "[ -f '$CK/config.json' ] && [ -f '$CK/model.safetensors' ] && [ -f '$CK/optimizer.safetensors' ] && [ -f '$CK/trainer_state.json' ]"
check checkpoint_hf_names "grep -q 'model.layers.1.post_feedforward_layernorm.weight' '$CK/model.safetensors' && grep -q '\"model_type\":[[:space:]]*\"gemma2\"' '$CK/config.json'"
"$BIN" logits -m "$CK" --ids 1,2,3,4,5 -o "$T/l.f32" >/dev/null 2>&1
check checkpoint_loads_for_inference "[ \$(stat -c %s '$T/l.f32') -eq \$((5 * 64 * 4)) ]"
"$BIN" grads -m "$CK" --batch "$SHARED/torchref/tiny-b/ref.safetensors" -o "$T/x" >"$T/gx.out" 2>&1
check grads_rejects_out_of_vocab_batch "grep -q 'outside the vocabulary' '$T/gx.out'"

# ---- resume gives exactly the uninterrupted curve ----
"$BIN" train $RUN --steps 6 --save-every 3 --stop-at 4 --out "$T/part" >"$T/p1.log" 2>&1
"$BIN" train $RUN --steps 6 --save-every 3 --resume --out "$T/part" >"$T/p2.log" 2>&1
check resume_equals_uninterrupted "diff <(cut -d, -f1-5 '$T/full/log.csv') <(cut -d, -f1-5 '$T/part/log.csv') >/dev/null"
check resume_same_weights "cmp -s '$T/full/step-00000006/model.safetensors' '$T/part/step-00000006/model.safetensors'"

# ---- kill -9 during saves leaves `latest` on a complete checkpoint ----
KSHAPE="--vocab 512 --hidden 128 --layers 1 --heads 2 --kv-heads 1 --head-dim 64 --ffn 128"
mkshard "$T/kdata.bin" 3000 512 512
killed_ok=1 tmp_seen=0
for i in 1 2 3 4 5; do
    RES=""
    [ -f "$T/kill/latest" ] && RES=--resume
    "$BIN" train --data "$T/kdata.bin" $KSHAPE --batch 1 --seq 8 --steps 100000 --save-every 1 --keep 2 -t 1 $RES --out "$T/kill" >/dev/null 2>&1 &
    pid=$!
    sleep "0.$((RANDOM % 9 + 1))"; sleep 0.$i
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    ls "$T/kill" | grep -q '\.tmp\.' && tmp_seen=$((tmp_seen + 1))
    if [ -f "$T/kill/latest" ]; then
        K=$T/kill/$(cat "$T/kill/latest")
        "$BIN" logits -m "$K" --ids 1,2,3 -o "$T/kl.f32" >/dev/null 2>&1 || killed_ok=0
        [ -f "$K/optimizer.safetensors" ] && [ -f "$K/trainer_state.json" ] || killed_ok=0
    fi
done
echo "# kill -9 landed during a save (a .tmp. left behind) in $tmp_seen of 5 tries"
check kill_during_save_keeps_last_good "[ $killed_ok -eq 1 ] && [ -f '$T/kill/latest' ]"
"$BIN" train --data "$T/kdata.bin" $KSHAPE --batch 1 --seq 8 --steps 100000 --stop-at 1 --resume -t 1 --out "$T/kill" >/dev/null 2>&1
check resume_after_kill "[ \$? -eq 0 ]"

# ---- bad input ----
mkshard "$T/trunc.bin" 1000 64 64 7
"$BIN" train --data "$T/trunc.bin" $SHAPE --steps 1 --out "$T/o1" >"$T/e1" 2>&1
check bad_truncated_shard "[ \$? -ne 0 ] && grep -q 'truncated' '$T/e1'"
mkshard "$T/big.bin" 1000 64 0 0 70
"$BIN" train --data "$T/big.bin" $SHAPE --steps 1 --out "$T/o2" >"$T/e2" 2>&1
check bad_token_over_vocab "[ \$? -ne 0 ] && grep -q 'outside the model.s vocabulary of 64' '$T/e2'"
"$BIN" train --data "$T/data" --vocab 256000 --hidden 16384 --layers 200 --heads 64 --kv-heads 8 --head-dim 256 --ffn 65536 --steps 1 --out "$T/o3" >"$T/e3" 2>&1
check bad_model_too_large "[ \$? -ne 0 ] && grep -q 'does not fit in memory' '$T/e3' && grep -q 'GB' '$T/e3'"
"$BIN" train $RUN --hidden 48 --steps 9 --resume --out "$T/full" >"$T/e4" 2>&1
check bad_resume_other_shape "[ \$? -ne 0 ] && grep -q 'another shape' '$T/e4'"
"$BIN" train --data "$T/data" --steps 1 >"$T/e5" 2>&1
check bad_usage_no_out "[ \$? -eq 2 ]"
"$BIN" train $RUN --steps 6 --out "$T/full" >"$T/e6" 2>&1
check bad_fresh_run_over_old_one "[ \$? -ne 0 ] && grep -q 'already holds a run' '$T/e6'"

[ $fails -eq 0 ]
