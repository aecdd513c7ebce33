#!/usr/bin/env bash
# generate.sh - `gemma2 generate`: greedy output is the argmax chain of `gemma2 logits` (with and
# without the repetition penalty, replayed in Python), --dump-tokens shows what was evaluated,
# the same seed gives the same text, every sampler option reaches the sampler, bad input fails
# clearly. Small model (tiny-b, no tokenizer: --ids/--output-ids) under the sanitizers; the
# 256k-vocabulary model with the optimised binary.
set -u
source tests/cli/gen_lib.inc
D=tests/generated/generate
mkdir -p "$D"
M=models/tiny-b
PROMPT="2,17,250,45,99,7"

# 1. greedy == argmax chain of `gemma2 logits` (ties: lowest id, as numpy's argmax)
check_chain() { # name, extra generate options, penalty, last_n
    local name=$1 opts=$2 pen=$3 lastn=$4
    # shellcheck disable=SC2086
    if ! "$BIN" generate -m $M --ids "$PROMPT" -n 24 --temp 0 --output-ids --ignore-eos $T1 $opts \
        --dump-tokens "$D/$name.dump" > "$D/$name.out" 2> "$D/$name.err"; then
        bad "$name: generate failed: $(cat "$D/$name.err")"; return
    fi
    "$PY" - "$D/$name" "$PROMPT" > "$D/$name.ids" <<'PYEOF'
import sys
out = open(sys.argv[1] + ".out").read().split()
prompt = sys.argv[2].split(",")
print(" ".join(prompt + out[:-1]))
PYEOF
    "$BIN" logits -m $M --ids-file "$D/$name.ids" -o "$D/$name.f32" $T1 || { bad "$name: logits failed"; return; }
    if "$PY" - "$D/$name" "$PROMPT" "$pen" "$lastn" <<'PYEOF'
import sys, numpy as np
base, prompt, pen, lastn = sys.argv[1], [int(x) for x in sys.argv[2].split(",")], float(sys.argv[3]), int(sys.argv[4])
gen = [int(x) for x in open(base + ".out").read().split()]
ids = [int(x) for x in open(base + ".ids").read().split()]
L = np.fromfile(base + ".f32", dtype=np.float32).reshape(len(ids), -1)
assert len(gen) == 24, len(gen)
seq = list(prompt)
for k, g in enumerate(gen):
    row = L[len(prompt) - 1 + k].astype(np.float32).copy()
    if pen != 1.0:
        for t in set(seq[-lastn:]):
            row[t] = row[t] / np.float32(pen) if row[t] > 0 else row[t] * np.float32(pen)
    want = int(np.argmax(row))
    if want != g:
        print("step %d: generated %d, argmax %d" % (k, g, want)); sys.exit(1)
    seq.append(g)
# --dump-tokens: the prompt as one batch, then each generated id but the last, one at a time
lines = [l.split() for l in open(base + ".dump").read().splitlines()]
assert [int(x) for x in lines[0]] == prompt, lines[0]
assert [int(l[0]) for l in lines[1:]] == gen[:-1] and all(len(l) == 1 for l in lines[1:]), lines[1:]
PYEOF
    then ok "$name"; else bad "$name"; fi
}
check_chain greedy_is_argmax_chain "" 1.0 64
check_chain greedy_with_repeat_penalty "--repeat-penalty 1.5 --repeat-last-n 8" 1.5 8
# The filters cannot remove the most likely id: with them, or with top-k 1 at any temperature, greedy.
"$BIN" generate -m $M --ids "$PROMPT" -n 24 --temp 0 --output-ids --ignore-eos $T1 > "$D/g0.out" 2>/dev/null
for o in "--temp 5 --top-k 1" "--temp 3 --top-p 0.000001 --top-k 0" "--temp 2 --min-p 1 --top-k 0" "--temp 0 --top-k 3 --top-p 0.5 --min-p 0.2"; do
    # shellcheck disable=SC2086
    "$BIN" generate -m $M --ids "$PROMPT" -n 24 --output-ids --ignore-eos $T1 $o --seed 1 > "$D/g1.out" 2>/dev/null
    if cmp -s "$D/g0.out" "$D/g1.out"; then ok "greedy-equivalent: $o"; else bad "greedy-equivalent: $o"; fi
done

# 2. stops at <eos> (1) / <end_of_turn> (107) without printing them, unless --ignore-eos
"$BIN" generate -m $M --ids "$PROMPT" -n 60 --temp 1 --top-k 0 --top-p 1 --min-p 0 --seed 7 --output-ids $T1 \
    > "$D/eos.out" 2> "$D/eos.err"
if "$PY" - "$D/eos.out" "$D/eos.err" <<'PYEOF'
import sys
ids = [int(x) for x in open(sys.argv[1]).read().split()]
err = open(sys.argv[2]).read()
assert 1 not in ids and 107 not in ids, ids
assert len(ids) == 60 or "stop: eos" in err or "stop: end_of_turn" in err, (len(ids), err)
PYEOF
then ok "no <eos>/<end_of_turn> printed; stop reason reported"; else bad "stop at eos"; fi

# 3. the same seed gives the same ids; another seed other ids; stats on stderr
samp="--temp 1.2 --top-k 0 --top-p 1 --min-p 0 --output-ids --ignore-eos -n 40"
# shellcheck disable=SC2086
"$BIN" generate -m $M --ids "$PROMPT" $samp --seed 42 $T1 > "$D/s1.out" 2> "$D/s1.err"
# shellcheck disable=SC2086
"$BIN" generate -m $M --ids "$PROMPT" $samp --seed 42 $T1 > "$D/s2.out" 2>/dev/null
# shellcheck disable=SC2086
"$BIN" generate -m $M --ids "$PROMPT" $samp --seed 43 $T1 > "$D/s3.out" 2>/dev/null
if cmp -s "$D/s1.out" "$D/s2.out" && ! cmp -s "$D/s1.out" "$D/s3.out"; then ok "same seed same ids, other seed other ids"
else bad "seeded sampling not reproducible"; fi
if grep -q "prompt: 6 tokens" "$D/s1.err" && grep -q "generated: 40 tokens" "$D/s1.err" && grep -q "tok/s" "$D/s1.err" \
    && grep -q "seed: 42" "$D/s1.err"; then ok "stats on stderr"; else bad "stats: $(cat "$D/s1.err")"; fi
# --echo prints the prompt first; <bos> is added when --ids lacks it
"$BIN" generate -m $M --ids "17,250" -n 3 --temp 0 --output-ids --echo --ignore-eos $T1 --dump-tokens "$D/echo.dump" > "$D/echo.out" 2>/dev/null
if [ "$(head -c 9 "$D/echo.out")" = "2 17 250 " ] && [ "$(head -1 "$D/echo.dump")" = "2 17 250" ]; then ok "--echo and <bos> first"
else bad "--echo: $(cat "$D/echo.out") / $(head -1 "$D/echo.dump")"; fi

# 4. text streaming on the real vocabulary: the streamed text (incremental, UTF-8-safe decoder)
#    equals `gemma2 detokenize` of the same ids, and is valid UTF-8; --chat puts the template first
if vocab_model tests/generated/vocab_model; then
    VM=tests/generated/vocab_model/v.gguf
    hot="--temp 3 --top-k 0 --top-p 1 --min-p 0 --seed 11 -n 200 --ignore-eos $T1"
    # shellcheck disable=SC2086
    "$REL" generate -m $VM -p "日本の首都は" $hot > "$D/u.txt" 2>/dev/null
    # shellcheck disable=SC2086
    "$REL" generate -m $VM -p "日本の首都は" $hot --output-ids > "$D/u.ids" 2>/dev/null
    "$REL" detokenize -t $VM --file "$D/u.ids" > "$D/u.detok" 2>/dev/null
    if "$PY" -c "
import sys
a = open('$D/u.txt', 'rb').read(); b = open('$D/u.detok', 'rb').read()
a.decode('utf-8')
assert a.rstrip(b'\n') == b.rstrip(b'\n'), (a[:80], b[:80])"; then ok "streamed text == detokenize of the ids, valid UTF-8"
    else bad "streamed text differs from detokenize"; fi
    printf '  Hi  ' | "$REL" generate -m $VM -f - --chat -n 1 --temp 0 $T1 --dump-tokens "$D/chat.dump" > /dev/null 2>&1
    if [ "$(head -1 "$D/chat.dump")" = "2 106 1645 108 2151 107 108 106 2516 108" ]; then ok "--chat, prompt from stdin: template ids, content trimmed"
    else bad "--chat ids: $(head -1 "$D/chat.dump")"; fi
else
    bad "make_gguf --vocab-from"
fi

# 5. bad input
expect_fail "missing model" "no-such-model" "$BIN" generate -m "$D/no-such-model" -p hi
expect_fail "unreadable prompt file" "no-such-file" "$BIN" generate -m $M -f "$D/no-such-file"
expect_fail "prompt longer than --ctx names both numbers" "6 tokens.*context of 4" "$BIN" generate -m $M --ids "$PROMPT" --ctx 4 --output-ids
"$PY" -c "print(','.join(['2'] + ['5'] * 200))" > "$D/long.ids"
expect_fail "prompt longer than the model's context" "201 tokens.*model's context of 128" "$BIN" generate -m $M --ids "$(cat "$D/long.ids")" --output-ids
expect_fail "negative temperature" "temperature must be >= 0" "$BIN" generate -m $M --ids 2 --temp -0.5
expect_fail "top-p 0" "top-p must be in \(0, 1\]" "$BIN" generate -m $M --ids 2 --top-p 0
expect_fail "top-p 1.5" "top-p must be in \(0, 1\]" "$BIN" generate -m $M --ids 2 --top-p 1.5
expect_fail "min-p 2" "min-p must be in" "$BIN" generate -m $M --ids 2 --min-p 2
expect_fail "top-k not a number" "--top-k needs an integer" "$BIN" generate -m $M --ids 2 --top-k x
expect_fail "unknown option" "unknown option" "$BIN" generate -m $M --ids 2 --bogus
expect_fail "token id outside the vocabulary" "outside the model's vocabulary" "$BIN" generate -m $M --ids 2,300 --output-ids
expect_fail "no tokenizer for text" "-t FILE" "$BIN" generate -m $M -p "hello"
# --help lists every option with its default
h=$("$BIN" generate --help)
miss=""
for o in -m -p -f --ids -n --chat --echo --ctx -t --output-ids --ignore-eos --dump-tokens --threads \
    --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n --seed; do
    echo "$h" | grep -q -e "^  $o\b\|^  [-a-z]*, $o\b\|^  $o " || miss="$miss $o"
done
for o in -n --ctx --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n --seed --threads; do
    echo "$h" | grep -e "$o " | grep -q "default" || miss="$miss $o(default)"
done
if [ -z "$miss" ]; then ok "--help lists the options with defaults"; else bad "--help misses:$miss"; fi
[ $fails -eq 0 ]
