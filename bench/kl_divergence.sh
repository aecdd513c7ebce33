#!/usr/bin/env bash
# bench/kl_divergence.sh - how far each quantized file's predictions move from the BF16 model's,
# ours against llama.cpp's on the same files (issue 6: "KL divergence equal to or below
# llama.cpp's figure for the same file").
#
#   ORACLE_DIR=... bench/kl_divergence.sh [WORKDIR] [N_TOKENS]     (default bench/out, 256)
#
# Text: the first N_TOKENS tokens (<bos> first) of WikiText-2's test set (../shared/data),
# tokenized with Gemma's tokenizer.model. Models: the files of bench/compare_llama.sh (a random
# Gemma 2 of the 2B shape in BF16, and its Q8_0 / Q4_0 / Q4_K_M quantizations by `gemma2
# quantize`, byte-identical to llama_quantize's). Each engine evaluates every file on the same
# ids as one batch (ours: `gemma2 logits`; llama.cpp: the oracle's llama_logits with an f32 KV
# cache like ours); then, per engine, the mean over positions of KL(P_bf16 || P_quant) in nats
# and the share of positions whose most likely token is the same as BF16's. A last line gives
# the same two figures for each engine's BF16 logits against ours with exact products
# (GEMMA2_BF16_DOT=0). Our `gemma2 perplexity --kl-divergence` computes the same quantity over
# the scored half of each chunk; the table uses every position of both engines' logits so that
# they are compared alike.
set -eu
cd "$(dirname "$0")/.."
W=${1:-bench/out}
N=${2:-256}
TYPES=${TYPES:-q8_0 q4_0 q4_k_m}
T=${THREADS:-2}
SHARED=${GEMMA2_SHARED:-../shared}
PY=${PYTHON:-/usr/bin/python3}
LL=${ORACLE_DIR:?set ORACLE_DIR (../shared/oracle/setup.sh)}/bin/llama_logits
D=$W/kl
mkdir -p "$D"
make -s gemma2
for t in bf16 $TYPES; do
    [ -f "$W/g2b-$t.gguf" ] || { echo "missing $W/g2b-$t.gguf: run bench/compare_llama.sh first" >&2; exit 1; }
done
./gemma2 tokenize -t "$SHARED/tokenizer/gemma_tokenizer.model" --file "$SHARED/data/eval/wikitext-2-raw/wiki.test.raw" --bos \
    | tr -d '[]' | tr ',' '\n' | head -n "$N" | tr '\n' ' ' > "$D/ids.txt"
# our BF16 file with exact products too: the reference for the default's bf16-rounded activations
GEMMA2_BF16_DOT=0 ./gemma2 logits -m "$W/g2b-bf16.gguf" --ids-file "$D/ids.txt" -o "$D/ours-bf16-exact.f32" -t "$T"
for t in bf16 $TYPES; do
    ./gemma2 logits -m "$W/g2b-$t.gguf" --ids-file "$D/ids.txt" -o "$D/ours-$t.f32" -t "$T"
    "$LL" "$W/g2b-$t.gguf" "$D/ids.txt" "$D/llama-$t.f32" --threads "$T" --kv-type f32 > /dev/null 2>&1
done
echo "# $(date -u +%F) KL(P_bf16 || P_type), nats, mean over $N positions of WikiText-2 test; top-1: same argmax as BF16"
"$PY" - "$D" $TYPES <<'PY'
import sys
import numpy as np
d, types = sys.argv[1], sys.argv[2:]
V = 256000
def logp(path):
    x = np.fromfile(path, dtype=np.float32).reshape(-1, V).astype(np.float64)
    x -= x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))
print("%-8s %12s %12s %7s %11s %11s" % ("type", "KL ours", "KL llama", "ratio", "top-1 ours", "top-1 llama"))
base = {w: logp("%s/%s-bf16.f32" % (d, w)) for w in ("ours", "llama")}
for t in types:
    r = {}
    for w in ("ours", "llama"):
        lq = logp("%s/%s-%s.f32" % (d, w, t))
        lb = base[w]
        kl = (np.exp(lb) * (lb - lq)).sum(axis=1)
        top = (lb.argmax(axis=1) == lq.argmax(axis=1)).mean()
        r[w] = (kl.mean(), top)
    print("%-8s %12.4g %12.4g %7.3f %10.1f%% %10.1f%%" % (t, r["ours"][0], r["llama"][0], r["ours"][0] / r["llama"][0],
                                                       100 * r["ours"][1], 100 * r["llama"][1]))
# each engine's BF16 logits against ours with exact products (GEMMA2_BF16_DOT=0): what rounding
# the activations of BF16 products to bf16 costs (both engines do by default on AVX512-BF16)
ex = logp("%s/ours-bf16-exact.f32" % d)
kl = {w: (np.exp(ex) * (ex - base[w])).sum(axis=1).mean() for w in base}
top = {w: (ex.argmax(axis=1) == base[w].argmax(axis=1)).mean() for w in base}
print("bf16 vs exact products: KL ours %.3g, llama %.3g; top-1 ours %.1f%%, llama %.1f%%"
      % (kl["ours"], kl["llama"], 100 * top["ours"], 100 * top["llama"]))
PY
