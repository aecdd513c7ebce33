#!/usr/bin/env bash
# generate_oracle.sh - end to end against llama.cpp: a random tiny Gemma 2 with Gemma's real
# vocabulary (make_gguf.py --vocab-from, as GGUF and as an HF directory with tokenizer.model), and
# text prompts: our prompt ids (tokenizer + <bos> + chat template) equal llama_generate's, and our
# greedy continuation equals its greedy continuation, from both formats; the streamed text equals
# llama.cpp's detokenization where the ids agree.
#
# Known differences (../shared/oracle/README.md): llama.cpp also stops on id 213 `</s>`, which a
# Gemma 2 engine does not, so we compare up to its stop; and these random models have near-ties
# (top-2 gaps of 1e-3 and less) that any rounding difference can flip, so a first difference is
# accepted only where our top-2 gap at that step is below 0.01 (llama.cpp-vs-exact logit
# differences on these models are 1.6e-3..7.6e-3), and reported.
set -u
source tests/cli/gen_lib.inc
if [ -z "$LLAMA_GEN" ]; then skip "generate vs llama.cpp: ORACLE_DIR not set up (run ../shared/oracle/setup.sh)"; exit 0; fi
D=tests/generated/generate_oracle
vocab_model "$D" || { bad "make_gguf --vocab-from"; exit 1; }
N=24
i=0
while IFS= read -r prompt; do
    [ -z "$prompt" ] && continue
    i=$((i + 1))
    chat="" llchat=""
    case "$prompt" in "CHAT:"*) prompt=${prompt#CHAT:}; chat="--chat"; llchat="--chat" ;; esac
    # shellcheck disable=SC2086
    "$LLAMA_GEN" "$D/v.gguf" "$prompt" --n $N $llchat --threads 1 > "$D/l$i.txt" 2> "$D/l$i.err" || { bad "prompt $i: llama_generate"; continue; }
    for fmt in gguf hf; do
        m=$D/v.gguf; [ $fmt = hf ] && m=$D/v_hf
        # shellcheck disable=SC2086
        "$REL" generate -m "$m" -p "$prompt" $chat -n $N --temp 0 $T1 --dump-tokens "$D/o$i.$fmt.dump" > "$D/o$i.$fmt.txt" 2> "$D/o$i.$fmt.err" \
            || { bad "prompt $i ($fmt): generate: $(cat "$D/o$i.$fmt.err")"; continue; }
        # our generated ids: every evaluated single id after the prompt, and the last from the text run
        # is not evaluated, so ask for ids too
        # shellcheck disable=SC2086
        "$REL" generate -m "$m" -p "$prompt" $chat -n $N --temp 0 $T1 --output-ids > "$D/o$i.$fmt.ids" 2>/dev/null
        # the logits along our chain, for the near-tie check
        "$PY" -c "
import sys
p = open('$D/o$i.$fmt.dump').read().split('\n')[0].split()
g = open('$D/o$i.$fmt.ids').read().split()
print(' '.join(p + g))" > "$D/o$i.$fmt.seq"
        "$REL" logits -m "$m" --ids-file "$D/o$i.$fmt.seq" -o "$D/o$i.$fmt.f32" $T1 > /dev/null 2>&1
        res=$("$PY" - "$D/l$i.txt" "$D/o$i.$fmt" <<'PYEOF'
import sys, json, numpy as np
lp, lg, ltext = open(sys.argv[1]).read().split("\n")[:3]
lp = [int(x) for x in lp.split()]; lg = [int(x) for x in lg.split()]
base = sys.argv[2]
op = [int(x) for x in open(base + ".dump").read().split("\n")[0].split()]
og = [int(x) for x in open(base + ".ids").read().split()]
text = open(base + ".txt", encoding="utf-8", errors="replace").read()
if text.endswith("\n"): text = text[:-1]
if op != lp:
    print("FAIL prompt ids differ: ours %s llama.cpp %s" % (op, lp)); sys.exit()
# llama.cpp's list ends with its stop id if it stopped; 213 is a stop only there
stop = lg[-1] if lg and lg[-1] in (1, 107, 213) and len(lg) <= 24 else None
lcmp = lg[:-1] if stop is not None else lg
if stop in (1, 107):
    ok_len = len(og) == len(lcmp)
else:
    ok_len = len(og) >= len(lcmp)
first = next((k for k in range(min(len(og), len(lcmp))) if og[k] != lcmp[k]), None)
if first is None and ok_len:
    note = " (llama.cpp stopped on 213; ours continues)" if stop == 213 else ""
    tnote = ""
    if stop != 213 and all(t > 107 and t != 213 for t in og):
        if text != json.loads(ltext): print("FAIL text differs: %r vs %r" % (text, json.loads(ltext))); sys.exit()
        tnote = ", same text"
    print("ok %d ids equal%s%s" % (len(lcmp), tnote, note)); sys.exit()
if first is None:
    print("FAIL lengths differ: ours %d, llama.cpp %d (stop %s)" % (len(og), len(lg), stop)); sys.exit()
L = np.fromfile(base + ".f32", dtype=np.float32).reshape(len(op) + len(og), -1)
row = np.sort(L[len(op) - 1 + first])[::-1]
gap = float(row[0] - row[1])
if gap < 0.01:
    print("ok equal up to a near-tie at step %d (top-2 gap %.2g)" % (first, gap))
else:
    print("FAIL differ at step %d: ours %d llama.cpp %d, top-2 gap %.3g" % (first, og[first], lcmp[first], gap))
PYEOF
)
        case "$res" in ok*) ok "prompt $i ($fmt${chat:+, chat}): ${res#ok }" ;; *) bad "prompt $i ($fmt${chat:+, chat}): ${res#FAIL }" ;; esac
    done
done <<'PROMPTS'
The capital of France is
日本の首都は東京です。
Numbers: 1 2 3 4 5 6 7 8 9 10 11 12
def fibonacci(n):
CHAT:What is 2+2?
CHAT:  Tell me a story about a dragon.  
PROMPTS
[ $fails -eq 0 ]
