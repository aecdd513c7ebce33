/* types.c - block geometry of the ggml/GGUF tensor types. */
#include "kernels/types.h"

#include "gemma2.h"

static const struct {
    const char *name;
    int elems;
    int bytes;
    int supported;
} k_types[GEMMA2_TYPE_COUNT] = {
    [0] = {"F32", 1, 4, 1},      [1] = {"F16", 1, 2, 1},      [2] = {"Q4_0", 32, 18, 1},
    [3] = {"Q4_1", 32, 20, 0},   [6] = {"Q5_0", 32, 22, 0},   [7] = {"Q5_1", 32, 24, 0},
    [8] = {"Q8_0", 32, 34, 1},   [9] = {"Q8_1", 32, 36, 0},   [10] = {"Q2_K", 256, 84, 0},
    [11] = {"Q3_K", 256, 110, 0}, [12] = {"Q4_K", 256, 144, 1}, [13] = {"Q5_K", 256, 176, 0},
    [14] = {"Q6_K", 256, 210, 1}, [15] = {"Q8_K", 256, 292, 0}, [24] = {"I8", 1, 1, 0},
    [25] = {"I16", 1, 2, 0},     [26] = {"I32", 1, 4, 0},     [27] = {"I64", 1, 8, 0},
    [28] = {"F64", 1, 8, 0},     [30] = {"BF16", 1, 2, 1},
};

static int known(int type) { return type >= 0 && type < GEMMA2_TYPE_COUNT && k_types[type].elems > 0; }

const char *gemma2_type_name(int type) { return known(type) ? k_types[type].name : "?"; }
int g2_type_block_elems(int type) { return known(type) ? k_types[type].elems : 0; }
size_t g2_type_block_bytes(int type) { return known(type) ? (size_t)k_types[type].bytes : 0; }
int g2_type_supported(int type) { return known(type) && k_types[type].supported; }

size_t g2_type_row_bytes(int type, int64_t cols) {
    if (!known(type) || cols < 0 || cols % k_types[type].elems) return 0;
    return (size_t)(cols / k_types[type].elems) * (size_t)k_types[type].bytes;
}
