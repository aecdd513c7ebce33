/* types.h - the weight storage types: block sizes and bytes, as ggml lays them out.
 *
 * A row of `cols` weights of a block type is cols / block_elems blocks of block_bytes each.
 *   F32   1 weight, 4 bytes            BF16/F16  1 weight, 2 bytes
 *   Q8_0  32 weights: fp16 d, 32 x int8 q            w = d * q          (34 bytes, 8.5 bits)
 *   Q4_0  32 weights: fp16 d, 16 bytes of nibbles    w = d * (q - 8)    (18 bytes, 4.5 bits)
 *   Q4_K  256 weights in 8 sub-blocks with 6-bit scales and mins       (144 bytes, 4.5 bits)
 *   Q6_K  256 weights in 16 sub-blocks with 8-bit scales               (210 bytes, 6.56 bits)
 * Other GGUF types are known by size (so a file that holds them still parses) but cannot be
 * computed with; g2_type_supported() says which can. */
#ifndef G2_TYPES_H
#define G2_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* Elements per block and bytes per block; 0, 0 for a type number we do not know. */
int g2_type_block_elems(int type);
size_t g2_type_block_bytes(int type);
/* Bytes of a row of `cols` elements; 0 when cols is not a multiple of the block. */
size_t g2_type_row_bytes(int type, int64_t cols);
/* Can the kernels multiply with this type? */
int g2_type_supported(int type);

#endif
