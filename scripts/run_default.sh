#!/usr/bin/env bash
# run_default.sh - `make run`: the main job on the model the repository carries: the distilled
# default model (models/default/model.gguf, q8_0, tokenizer inside; docs/model_card.md), which
# scripts/distill_experiment.sh produced. Prints the model's facts, then continues a prompt.
#   PROMPT="..." N=100 make run
set -eu
cd "$(dirname "$0")/.."
M=models/default/model.gguf
./gemma2 info -m "$M"
echo
./gemma2 generate -m "$M" -p "${PROMPT:-It is a truth universally acknowledged, that}" -n "${N:-80}" \
    --temp 0.8 --top-k 40 --repeat-penalty 1.1 --seed "${SEED:-1}" --threads 2 --echo
