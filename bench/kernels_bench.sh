#!/bin/sh
# kernels_bench.sh - builds and runs bench/kernels_bench.c (a benchmark, not a test).
#   bench/kernels_bench.sh [THREADS] [REPS] [ROWS COLS | bw]   (run from the repository root)
#   GEMMA2_ISA=avx2 bench/kernels_bench.sh 2       (another instruction set)
#   GEMMA2_BF16_DOT=0 bench/kernels_bench.sh 2     (BF16 with exact fp32 products)
#   KB_TYPE=q8_0 bench/kernels_bench.sh 2 3         (one weight type)
#   KB_CFLAGS=-DG2_ROW_BLOCK_BYTES=262144 bench/kernels_bench.sh 2   (a compile-time variant)
# Compiles only src/kernels (so the rest of the tree need not build) into build/bench/.
set -e
OUT=build/bench; mkdir -p $OUT
FL="-std=c17 -O2 ${KB_CFLAGS:-} -Wall -Wextra -Werror -Wno-unused-parameter -Iinclude -Isrc -fopenmp -D_GNU_SOURCE"
objs=""
for f in src/kernels/*.c; do
  b=$(basename "$f" .c); isa=""
  case $b in
    *_avx2) isa="-mavx2 -mfma -mf16c";;
    *_avx512) isa="-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vnni -mfma -mf16c";;
  esac
  gcc $FL $isa -c "$f" -o $OUT/$b.o; objs="$objs $OUT/$b.o"
done
gcc $FL -mavx2 bench/kernels_bench.c $objs -lm -o $OUT/kernels_bench
exec $OUT/kernels_bench "$@"
