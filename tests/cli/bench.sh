#!/usr/bin/env bash
# bench.sh - `gemma2 bench` (a benchmark tool, so no speed is asserted here): its lines have the
# form of the oracle's llama_bench (`ppN t/s=... min=... max=... reps=R samples=...`, `tgN ...`)
# with min <= median <= max and R samples, the header names the kernels in use (as `gemma2 info`
# does) and the load mode applied, the decode line reports weight traffic; bad options and files
# fail cleanly. --probe-bw adds a bandwidth probe before each decode step.
set -u
source tests/cli/gen_lib.inc
D=tests/generated/bench
mkdir -p "$D"
M=models/default/model.gguf

if "$BIN" bench -m "$M" -p 8 -n 4 -r 2 $T1 > "$D/out.txt" 2> "$D/err.txt"; then
    ok "bench runs"
else
    bad "bench exit status"; cat "$D/err.txt"
fi
# the form of each line and the order of its numbers, checked in Python
if "$PY" - "$D/out.txt" <<'PYEOF'; then ok "bench lines: llama_bench form, min <= t/s <= max, 2 samples, kernels, load mode, GB/s"; else bad "bench lines"; cat "$D/out.txt"; fi
import re, sys
lines = open(sys.argv[1]).read().splitlines()
head = [l for l in lines if l.startswith("# gemma2 ")]
assert len(head) == 1, lines
h = dict(kv.split("=", 1) for kv in head[0].split()[3:] if "=" in kv)
assert re.fullmatch(r"(avx512(\+bf16dot)?|avx2|scalar)", h["kernels"]), h
assert h["load"] in ("read", "mmap") and int(h["model_bytes"]) > 0, h
for name in ("pp8", "tg4"):
    l = [l for l in lines if l.startswith(name + " ")]
    assert len(l) == 1, (name, lines)
    f = dict(kv.split("=", 1) for kv in l[0].split()[1:])
    med, lo, hi = float(f["t/s"]), float(f["min"]), float(f["max"])
    s = [float(x) for x in f["samples"].split(",")]
    assert f["reps"] == "2" and len(s) == 2 and lo <= med <= hi and min(s) == lo and max(s) == hi, l
    assert med > 0 and int(f["peak_rss"]) > 0, l
    if name == "tg4":
        assert float(f["weight_GB/s"]) > 0, l
PYEOF
# GEMMA2_BF16_DOT=0 and GEMMA2_ISA name what runs
k=$(GEMMA2_BF16_DOT=0 GEMMA2_ISA=scalar "$BIN" bench -m "$M" -p 0 -n 1 -r 1 $T1 2> /dev/null | grep -o 'kernels=[^ ]*')
[ "$k" = kernels=scalar ] && ok "bench header: $k under GEMMA2_ISA=scalar" || bad "bench header under GEMMA2_ISA=scalar: '$k'"
# `gemma2 info` names the same kernels as the bench header
ki=$("$BIN" info -m "$M" | sed -n 's/^kernels on this CPU: *//p')
kb=$(grep -o 'kernels=[^ ]*' "$D/out.txt" | cut -d= -f2)
[ -n "$ki" ] && [ "$ki" = "$kb" ] && ok "info: kernels $ki, as bench" || bad "info kernels '$ki' vs bench '$kb'"

expect_fail "bench: no model" "-m MODEL is required" "$BIN" bench -p 8
expect_fail "bench: missing file" "$D/none.gguf" "$BIN" bench -m "$D/none.gguf"
expect_fail "bench: -r 0" "-r must be an integer >= 1" "$BIN" bench -m "$M" -r 0
expect_fail "bench: -p not a number" "-p must be an integer" "$BIN" bench -m "$M" -p x
expect_fail "bench: unknown option" "unknown option '--nope'" "$BIN" bench -m "$M" --nope
# --probe-bw: the decode line adds the probes' GB/s and the steps' traffic against them, each
# median within its range
if "$BIN" bench -m "$M" -p 0 -n 4 -r 2 --probe-bw 8 $T1 > "$D/probe.txt" 2> "$D/err.txt" && "$PY" - "$D/probe.txt" <<'PYEOF'; then ok "bench --probe-bw: probe GB/s and weight/probe ratio, median within range"; else bad "bench --probe-bw"; cat "$D/probe.txt" "$D/err.txt"; fi
import sys
l = [l for l in open(sys.argv[1]).read().splitlines() if l.startswith("tg4 ")]
assert len(l) == 1, l
f = dict(kv.split("=", 1) for kv in l[0].split()[1:])
b, r = float(f["probe_GB/s"]), float(f["weight_per_probe"])
assert 0 < float(f["probe_min"]) <= b <= float(f["probe_max"]), f
assert 0 < float(f["ratio_min"]) <= r <= float(f["ratio_max"]), f
PYEOF
expect_fail "bench: --probe-bw not a number" "--probe-bw must be an integer" "$BIN" bench -m "$M" --probe-bw x
expect_fail "bench: --probe-bw beyond memory" "more than half of the available memory" "$BIN" bench -m "$M" -p 0 -n 1 --probe-bw 1048576
expect_fail "bench: context too small" "the tests need 64 positions" "$BIN" bench -m "$M" -p 64 -n 0 --ctx 16
[ $fails -eq 0 ]
