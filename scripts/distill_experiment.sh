#!/usr/bin/env bash
# distill_experiment.sh - the distillation experiment of docs/distillation.md, end to end:
# tokenizer -> token shards -> teacher -> sampled caches -> students -> perplexity table ->
# the default model. Every stage skips itself when its output exists, and the long ones
# (teacher, cache, students) resume from their own checkpoints / partial files, so rerunning
# the script after an interruption continues where it stopped.
#
#   scripts/distill_experiment.sh            # everything (about 2 h on 2 busy cores)
#   STAGES="tok data" scripts/distill_experiment.sh
#   EXP=/tmp/exp scripts/distill_experiment.sh   # work folder (default build/distill)
#
# Sizes are variables so a quicker (or bigger) run is one environment change away.
set -euo pipefail
cd "$(dirname "$0")/.."
G=${G:-./gemma2}
EXP=${EXP:-build/distill}
NICE=${NICE:-nice -n 10}
THREADS=${THREADS:-2}
STAGES=${STAGES:-"tok data teacher cache students eval default"}

VOCAB=${VOCAB:-4096}
SEQ=${SEQ:-128}
# teacher: 4 layers of 256 (4.1 M parameters, the tied embedding 1.05 M of them)
T_SHAPE=${T_SHAPE:-"--hidden 256 --layers 4 --heads 4 --kv-heads 1 --head-dim 64 --ffn 768 --window 64"}
T_STEPS=${T_STEPS:-800}
T_BATCH=${T_BATCH:-16}
T_LR=${T_LR:-1.5e-3}
# students: one smaller shape, the same token budget for every run
S_SHAPE=${S_SHAPE:-"--hidden 128 --layers 4 --heads 2 --kv-heads 1 --head-dim 64 --ffn 512 --window 64"}
S_STEPS=${S_STEPS:-300}
S_BATCH=${S_BATCH:-16}
S_LR=${S_LR:-3e-3}
KS=${KS:-"8 32 256"}
TOPKS=${TOPKS:-"32"}      # on-the-fly teacher top-K runs (besides the full distribution)
TEMP=${TEMP:-1.0}
# the teacher stores every STRIDE-th window of train.bin: 4,639 windows x 128 = 594k tokens, about
# the students' budget of 300 x 16 x 128 = 614k tokens (a full pass would take 3x longer)
STRIDE=${STRIDE:-3}

DATA_FILES="data/pretrain/tiny_shakespeare.txt data/pretrain/moby_dick.txt data/pretrain/jane_austen_6_novels.txt"
WIKI=${WIKI:-../shared/data/eval/wikitext-2-raw/wiki.test.raw}
[ -f "$WIKI" ] || WIKI=/work/shared/data/eval/wikitext-2-raw/wiki.test.raw

mkdir -p "$EXP"
has() { case " $STAGES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
say() { printf '\n== %s ==\n' "$*" >&2; }

if has tok && [ ! -f "$EXP/tokenizer.model" ]; then
    say "tokenizer: BPE, vocab $VOCAB, on the public-domain texts"
    $NICE $G tokenizer train --vocab-size "$VOCAB" --out "$EXP/tokenizer.model" $DATA_FILES
fi

if has data && [ ! -f "$EXP/data/val.bin" ]; then
    say "token shards (the last 5% - the end of Persuasion - is the validation split)"
    $NICE $G data prepare -t "$EXP/tokenizer.model" --out "$EXP/data" --val-frac 0.05 $DATA_FILES
fi

train() { # name, extra options...
    local name=$1; shift
    local out="$EXP/runs/$name" steps=$1; shift
    if [ -f "$out/latest" ] && grep -q "^$steps," "$out/log.csv" 2>/dev/null; then return 0; fi
    local resume=""
    [ -f "$out/latest" ] && resume=--resume
    mkdir -p "$EXP/runs"
    say "train $name"
    $NICE $G train --data "$EXP/data" --out "$out" --seq "$SEQ" --steps "$steps" -t "$THREADS" \
        --eval-every 50 --eval-batches 4 --save-every 50 --keep 1 --seed 1 $resume "$@"
}

if has teacher; then
    train teacher "$T_STEPS" $T_SHAPE --batch "$T_BATCH" --lr "$T_LR" --warmup 50
fi
TEACHER="$EXP/runs/teacher/$(cat "$EXP/runs/teacher/latest" 2>/dev/null || echo none)"

if has cache; then
    # one teacher pass writes the caches of every K (an interrupted pass continues)
    missing=""
    for K in $KS; do [ -f "$EXP/cache-k$K.g2d" ] || missing="$missing${missing:+,}$K"; done
    if [ -n "$missing" ]; then
        say "sampled teacher caches, K = $missing"
        $NICE $G distill cache -m "$TEACHER" --data "$EXP/data" --samples "$missing" --temperature "$TEMP" \
            --seed 7 --seq "$SEQ" --stride "$STRIDE" -t "$THREADS" --out "$EXP/cache-k{K}.g2d"
    fi
fi

if has students; then
    S="$S_SHAPE --batch $S_BATCH --lr $S_LR --warmup 20"
    # the control: the cache's windows (the same data as the distilled students), one-hot loss
    K0=${KS%% *}
    train scratch "$S_STEPS" $S --distill "$EXP/cache-k$K0.g2d" --distill-alpha 1
    for K in $KS; do train "distill-k$K" "$S_STEPS" $S --distill "$EXP/cache-k$K.g2d"; done
    # on the fly: random windows of all of train.bin (no cache to align to)
    train teacher-full "$S_STEPS" $S --teacher "$TEACHER"
    train scratch-all "$S_STEPS" $S
    for K in $TOPKS; do train "teacher-top$K" "$S_STEPS" $S --teacher "$TEACHER" --teacher-topk "$K"; done
fi

if has eval; then
    say "perplexity table"
    TOKENS_PER_STEP=$((S_BATCH * SEQ)) G=$G THREADS=$THREADS scripts/distill_table.sh "$EXP" "$WIKI" | tee "$EXP/table.md"
    python3 scripts/distill_plot.py "$EXP" "$EXP/loss_curves.svg"
    mkdir -p docs/distillation
    cp "$EXP/table.md" "$EXP/loss_curves.svg" docs/distillation/
    for d in "$EXP"/runs/*/; do n=$(basename "$d"); cp "$d/loss.svg" "docs/distillation/loss-$n.svg"; cp "$d/log.csv" "docs/distillation/log-$n.csv"; done
fi

if has default; then
    say "default model: the student with the lowest validation perplexity, as q8_0 GGUF"
    best=$(awk -F'|' 'NR > 2 { r = $2; v = $5; gsub(/ /, "", r); split(v, a, " "); if (r != "teacher") print a[1], r }' \
           "$EXP/table.md" | sort -g | head -1 | cut -d' ' -f2)
    echo "best student: $best" >&2
    ck="$EXP/runs/$best/$(cat "$EXP/runs/$best/latest")"
    rm -rf models/default.tmp && mkdir -p models/default.tmp
    # the checkpoint carries its tokenizer, so the GGUF holds the vocabulary: one file runs
    $G quantize "$ck" models/default.tmp/model.gguf --type q8_0 -q -t "$THREADS" >&2
    cp "$EXP/tokenizer.model" models/default.tmp/tokenizer.model
    cp "$ck/config.json" models/default.tmp/config.json
    printf 'run: %s\ncheckpoint: %s\n' "$best" "$ck" > models/default.tmp/SOURCE.txt
    cp models/default/README.md models/default.tmp/ 2>/dev/null || true
    rm -rf models/default && mv models/default.tmp models/default
    ls -l models/default >&2
fi
