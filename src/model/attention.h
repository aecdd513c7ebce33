/* attention.h - internal: attention of a piece of queries over the KV cache and the piece. */
#ifndef G2_ATTENTION_H
#define G2_ATTENTION_H

#include "model/context.h"

/* Writes c->att [n][heads * head_dim] for the queries c->q of positions p0..p0+n-1 of layer l,
 * over the cache of layer l (positions < p0) and the piece's own keys/values c->k, c->v.
 * Returns non-zero if a kernel could not allocate its scratch. */
int g2_attention(gemma2_context *c, int l, int p0, int n);

#endif
