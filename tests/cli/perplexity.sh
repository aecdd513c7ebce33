#!/usr/bin/env bash
# perplexity.sh - `gemma2 perplexity` equals exp(mean cross-entropy) computed in Python from
# `gemma2 logits` on the same chunks (llama.cpp's method: chunks of --ctx with <bos> first,
# second half scored; and the --stride windows), with the same error estimate; --save-logits +
# --kl-divergence against the same model give KL 0 and 100 % top-1, against another model the KL
# and top-1 agreement computed in Python; a text file through the model's tokenizer; bad input.
set -u
source tests/cli/gen_lib.inc
D=tests/generated/perplexity
mkdir -p "$D"
M=models/tiny-b
"$PY" -c "import random; r=random.Random(3); print(' '.join(str(r.randrange(300)) for _ in range(150)))" > "$D/ids.txt"

# reference: PPL, its error, and (with a second model) KL / top-1, from `gemma2 logits` per chunk
reference() { # ctx stride model [base-model]
    local ctx=$1 stride=$2 model=$3 basem=${4:-}
    "$PY" - "$D/ids.txt" "$ctx" "$stride" "$D/ref" > "$D/chunks.txt" <<'PYEOF'
import sys
ids = [int(x) for x in open(sys.argv[1]).read().split()]
ctx, stride = int(sys.argv[2]), int(sys.argv[3])
n = (len(ids) - ctx + stride - 1) // stride if stride else len(ids) // ctx
for c in range(n):
    s = c * stride if stride else c * ctx
    ch = ids[s:s + ctx]; ch[0] = 2
    open("%s.%d.ids" % (sys.argv[4], c), "w").write(" ".join(map(str, ch)))
print(n)
PYEOF
    local n c
    n=$(cat "$D/chunks.txt")
    for ((c = 0; c < n; c++)); do
        "$BIN" logits -m "$model" --ids-file "$D/ref.$c.ids" -o "$D/ref.$c.f32" $T1 || return 1
        [ -n "$basem" ] && { "$BIN" logits -m "$basem" --ids-file "$D/ref.$c.ids" -o "$D/refb.$c.f32" $T1 || return 1; }
    done
    "$PY" - "$D" "$n" "$ctx" "$stride" "$basem" <<'PYEOF'
import sys, numpy as np
d, n, ctx, stride, basem = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
first = ctx - stride - 1 if stride else ctx // 2
def lsm(L):
    L = L.astype(np.float64); m = L.max(1, keepdims=True)
    return L - m - np.log(np.exp(L - m).sum(1, keepdims=True))
nll, nllb, kl, same = [], [], [], []
for c in range(n):
    ids = [int(x) for x in open("%s/ref.%d.ids" % (d, c)).read().split()]
    lp = lsm(np.fromfile("%s/ref.%d.f32" % (d, c), dtype=np.float32).reshape(ctx, -1))
    for j in range(first, ctx - 1):
        nll.append(-lp[j, ids[j + 1]])
    if basem:
        lb = lsm(np.fromfile("%s/refb.%d.f32" % (d, c), dtype=np.float32).reshape(ctx, -1))
        for j in range(first, ctx - 1):
            nllb.append(-lb[j, ids[j + 1]])
            kl.append(float((np.exp(lb[j]) * (lb[j] - lp[j])).sum()))
            same.append(float(np.argmax(lb[j]) == np.argmax(lp[j])))
nll = np.array(nll); m = nll.mean(); ppl = np.exp(m)
err = ppl * np.sqrt((np.mean(nll ** 2) - m * m) / (len(nll) - 1))
print("%d %.10g %.10g" % (len(nll), ppl, err), end="")
if basem: print(" %.10g %.10g %.10g" % (np.exp(np.mean(nllb)), np.mean(kl), np.mean(same)), end="")
print()
PYEOF
}

# compare "NAME" "our stdout file" "reference line" [kl]
compare() {
    "$PY" - "$2" "$3" <<'PYEOF'
import sys, re
out = open(sys.argv[1]).read()
ref = [float(x) for x in sys.argv[2].split()]
m = re.search(r"scored (\d+) tokens", out); n = int(m.group(1))
m = re.search(r"Final estimate: PPL = ([\d.]+) \+/- ([\d.]+)", out); ppl, err = float(m.group(1)), float(m.group(2))
assert n == ref[0], (n, ref[0])
assert abs(ppl - ref[1]) <= 1e-4 * ref[1], (ppl, ref[1])
assert abs(err - ref[2]) <= 1e-3 * ref[2] + 1e-5, (err, ref[2])
if len(ref) > 3:
    m = re.search(r"PPL of the saved model = ([\d.]+)", out); pb = float(m.group(1))
    m = re.search(r"Mean KL divergence \(saved \|\| this\) = ([\d.]+)", out); kl = float(m.group(1))
    m = re.search(r"Same top-1 token: ([\d.]+) %", out); same = float(m.group(1)) / 100
    # saved logits are 16-bit: ~5e-4 per logit
    assert abs(pb - ref[3]) <= 2e-3 * ref[3], (pb, ref[3])
    assert abs(kl - ref[4]) <= 2e-3 * ref[4] + 2e-6, (kl, ref[4])
    assert abs(same - ref[5]) <= 1.01 / n, (same, ref[5])
PYEOF
}

# 1. non-overlapping chunks, second half scored
ref=$(reference 32 0 $M) || { bad "reference logits"; exit 1; }
"$BIN" perplexity -m $M --ids-file "$D/ids.txt" --ctx 32 $T1 > "$D/p1.out" 2> "$D/p1.err"
if compare x "$D/p1.out" "$ref" 2> "$D/cmp1.txt"; then ok "PPL == exp(mean CE) from gemma2 logits, error estimate ($ref)"
else bad "PPL: $(cat "$D/p1.out") vs $ref: $(cat "$D/cmp1.txt")"; fi
grep -q $'\r' "$D/p1.err" && bad "progress bar written to a pipe" || ok "no progress bar when not a terminal"
if command -v script > /dev/null; then
    script -qec "$BIN perplexity -m $M --ids-file $D/ids.txt --ctx 16 $T1" /dev/null > "$D/tty.out" 2>&1
    if grep -q $'\r' "$D/tty.out" && grep -q "perplexity \[#" "$D/tty.out" && grep -q "Final estimate" "$D/tty.out"
    then ok "progress bar on a terminal"; else bad "no progress bar under a pseudo-terminal: $(head -c 300 "$D/tty.out")"; fi
else
    skip "progress bar on a terminal: no script(1)"
fi
# 2. --stride
ref=$(reference 32 8 $M) || { bad "reference logits (stride)"; exit 1; }
"$BIN" perplexity -m $M --ids-file "$D/ids.txt" --ctx 32 --stride 8 $T1 > "$D/p2.out" 2>/dev/null
if compare x "$D/p2.out" "$ref" 2> "$D/cmp2.txt"; then ok "--stride 8 == reference ($ref)"
else bad "--stride: $(cat "$D/p2.out") vs $ref: $(cat "$D/cmp2.txt")"; fi
# 3. --save-logits and --kl-divergence: same model, then another model (same vocabulary)
"$BIN" perplexity -m $M --ids-file "$D/ids.txt" --ctx 32 $T1 --save-logits "$D/base.ppl" > /dev/null 2>&1
"$BIN" perplexity -m $M --kl-divergence "$D/base.ppl" $T1 > "$D/self.out" 2>&1
if grep -q "Mean KL divergence (saved || this) = 0.00000" "$D/self.out" && grep -q "Same top-1 token: 100.000 %" "$D/self.out"
then ok "KL against its own saved logits: 0, top-1 100 %"; else bad "self KL: $(cat "$D/self.out")"; fi
[ -f "$D/other.gguf" ] || "$PY" "$O/make_gguf.py" "$D/other.gguf" --vocab 300 --seed 5 --hidden 32 --heads 2 --kv-heads 1 \
    --head-dim 16 --ffn 64 --layers 2 > /dev/null 2>&1
"$BIN" perplexity -m "$D/other.gguf" --kl-divergence "$D/base.ppl" $T1 > "$D/kl.out" 2>/dev/null
ref=$(reference 32 0 "$D/other.gguf" $M) || { bad "reference logits (kl)"; exit 1; }
if compare x "$D/kl.out" "$ref" 2> "$D/cmp3.txt"; then ok "KL divergence and top-1 vs another model == reference ($ref)"
else bad "KL: $(cat "$D/kl.out") vs $ref: $(cat "$D/cmp3.txt")"; fi
# --chunks: a file saved with fewer chunks is compared on those
"$BIN" perplexity -m $M --ids-file "$D/ids.txt" --ctx 32 --chunks 2 $T1 --save-logits "$D/two.ppl" > "$D/two.out" 2>&1
"$BIN" perplexity -m $M --kl-divergence "$D/two.ppl" $T1 > "$D/two_kl.out" 2>&1
if grep -q "scored 30 tokens in 2 chunks" "$D/two.out" && grep -q "scored 30 tokens in 2 chunks" "$D/two_kl.out" \
    && [ "$(grep Final "$D/two.out")" = "$(grep Final "$D/two_kl.out")" ]; then ok "--chunks 2, saved and compared"
else bad "--chunks: $(cat "$D/two.out" "$D/two_kl.out")"; fi
# 4. a text through the model's own tokenizer (GGUF vocabulary and HF directory's tokenizer.model)
if vocab_model tests/generated/vocab_model; then
    VM=tests/generated/vocab_model
    "$PY" -c "
import random; r = random.Random(1)
w = 'the of and a to in is you that it he was for on are as with his they I at be this have from'.split()
print(' '.join(r.choice(w) for _ in range(300)))" > "$D/text.txt"
    "$REL" perplexity -m $VM/v.gguf -f "$D/text.txt" --ctx 64 $T1 > "$D/t1.out" 2>/dev/null
    "$REL" perplexity -m $VM/v_hf -f "$D/text.txt" --ctx 64 $T1 > "$D/t2.out" 2>/dev/null
    if grep -q "Final estimate" "$D/t1.out" && [ "$(grep Final "$D/t1.out")" = "$(grep Final "$D/t2.out")" ]
    then ok "text file, GGUF vocabulary == HF tokenizer.model: $(grep Final "$D/t1.out")"; else bad "text: $(cat "$D/t1.out" "$D/t2.out")"; fi
else
    bad "make_gguf --vocab-from"
fi
# 4b. against llama.cpp: its tokenizer gives the same ids for the text (with <bos>), and the
#     perplexity from llama_logits on the same chunks agrees with ours (logits differ by ~1e-3)
if [ -n "$LLAMA_TOK" ] && [ -f "$D/t1.out" ]; then
    VM=tests/generated/vocab_model
    "$REL" perplexity -m $VM/v.gguf -f "$D/text.txt" --ctx 64 $T1 --save-logits "$D/t.ppl" > /dev/null 2>&1
    "$PY" -c "import json; print(json.dumps({'text': open('$D/text.txt').read()}))" > "$D/text.jsonl"
    "$LLAMA_TOK" $VM/v.gguf --jsonl "$D/text.jsonl" --bos > "$D/llama_ids.json" 2>/dev/null
    if "$PY" - "$D" "$ORACLE_DIR/bin/llama_logits" "$VM/v.gguf" > "$D/vs_llama.txt" 2>&1 <<'PYEOF'
import sys, json, struct, subprocess, re, numpy as np
d, ll, model = sys.argv[1:4]
raw = open(d + "/t.ppl", "rb").read()
vocab, ctx, stride, chunks, rows, ntok = struct.unpack("<6I", raw[12:36])
ours = list(struct.unpack("<%di" % ntok, raw[36:36 + 4 * ntok]))
theirs = json.loads(open(d + "/llama_ids.json").read().splitlines()[0])
assert ours == theirs, "token ids differ from llama.cpp's"
nll = []
for c in range(chunks):
    ch = ours[c * ctx:(c + 1) * ctx]; ch[0] = 2
    open(d + "/ll.ids", "w").write(" ".join(map(str, ch)))
    subprocess.run([ll, model, d + "/ll.ids", d + "/ll.f32", "--threads", "1"], check=True, capture_output=True)
    L = np.fromfile(d + "/ll.f32", dtype=np.float32).reshape(ctx, -1).astype(np.float64)
    for j in range(ctx // 2, ctx - 1):
        r = L[j]; m = r.max()
        nll.append(m + np.log(np.exp(r - m).sum()) - r[ch[j + 1]])
ppl = float(np.exp(np.mean(nll)))
got = float(re.search(r"PPL = ([\d.]+)", open(d + "/t1.out").read()).group(1))
print("ours %.4f llama.cpp %.4f" % (got, ppl))
assert abs(got - ppl) <= 2e-3 * ppl
PYEOF
    then ok "text perplexity == llama.cpp's tokens and logits on the same chunks ($(cat "$D/vs_llama.txt"))"
    else bad "perplexity vs llama.cpp: $(cat "$D/vs_llama.txt")"; fi
else
    skip "perplexity vs llama.cpp: ORACLE_DIR not set up"
fi
# 5. bad input
expect_fail "perplexity: missing model" "no-such" "$BIN" perplexity -m "$D/no-such" --ids-file "$D/ids.txt"
expect_fail "perplexity: unreadable text file" "cannot read the text.*no-such-file" "$BIN" perplexity -m $M -f "$D/no-such-file"
echo "2 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23" > "$D/short.txt"
expect_fail "perplexity: text shorter than a chunk names both numbers" "20 tokens, fewer than one chunk of 32" \
    "$BIN" perplexity -m $M --ids-file "$D/short.txt" --ctx 32
expect_fail "perplexity: --ctx above the model's" "--ctx 100 is larger than the model's context of 128|larger than the model" \
    "$BIN" perplexity -m $M --ids-file "$D/ids.txt" --ctx 200
expect_fail "perplexity: stride >= ctx" "--stride 32 must be smaller than --ctx 32" "$BIN" perplexity -m $M --ids-file "$D/ids.txt" --ctx 32 --stride 32
expect_fail "perplexity: not a saved-logits file" "not a file written by" "$BIN" perplexity -m $M --kl-divergence "$D/ids.txt"
expect_fail "perplexity: saved logits of another vocabulary" "logits over 300 ids but the model has 256000" \
    "$REL" perplexity -m tests/generated/vocab_model/v.gguf --kl-divergence "$D/base.ppl" $T1
h=$("$BIN" perplexity --help)
miss=""
for o in -m -f --ids-file --ctx --stride --chunks --save-logits --kl-divergence -t --threads; do
    echo "$h" | grep -q -e "$o" || miss="$miss $o"
done
for o in --ctx --stride --chunks --threads; do echo "$h" | grep -A1 -e "^  $o" | grep -q default || miss="$miss $o(default)"; done
[ -z "$miss" ] && ok "perplexity --help lists the options with defaults" || bad "perplexity --help misses:$miss"
[ $fails -eq 0 ]
