/* test_model.c - the forward pass against the PyTorch reference fixtures (../shared/torchref,
 * made with Google's gemma_pytorch in float32), and the KV cache: batch vs one token at a
 * time vs pieces, ring buffers shorter than the sequence, rewind, bad token ids, a full context.
 *
 * Tolerances: logits within 2e-4 absolute and the mean loss within 2e-5 (torchref README: an
 * independent float64 forward agrees with the fixtures to 6e-5 and a from-scratch float32 one
 * to 4.6e-5; a wrong convention moves logits by 3e-3 to 15). Batch vs decode vs pieces: the
 * kernels sum in another order for one token than for many, so they agree to float32 rounding
 * (1e-5 absolute on logits of magnitude ~15); the same path twice is bit-identical. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/safetensors.h"
#include "gemma2.h"
#include "harness.h"
#include "kernels/matmul.h"
#include "kernels/repack.h"
#include "util/mapped_file.h"

typedef struct {
    gemma2_model *m;
    g2_safetensors ref;
    const int32_t *ids;  /* [B][T] */
    const float *logits; /* [B][T][V] */
    float loss;
    int B, T, V;
} fixture;

static int load_fixture(const char *name, fixture *f) {
    char dir[512], ref[600];
    snprintf(dir, sizeof dir, "%s/torchref/%s", harness_shared_dir(), name);
    snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
    gemma2_error err;
    memset(f, 0, sizeof *f);
    if (gemma2_model_open(dir, NULL, &f->m, &err)) {
        fprintf(stderr, "  %s\n", err.msg);
        return 0;
    }
    if (g2_safetensors_open(ref, &f->ref, &err)) {
        fprintf(stderr, "  %s\n", err.msg);
        return 0;
    }
    const g2_st_tensor *ids = g2_safetensors_find(&f->ref, "input_ids"), *lg = g2_safetensors_find(&f->ref, "logits"),
                       *loss = g2_safetensors_find(&f->ref, "loss");
    if (!ids || !lg || !loss) return 0;
    f->ids = ids->data, f->logits = lg->data;
    memcpy(&f->loss, loss->data, 4);
    f->B = (int)ids->shape[0], f->T = (int)ids->shape[1], f->V = (int)lg->shape[2];
    return 1;
}

static void free_fixture(fixture *f) {
    gemma2_model_close(f->m);
    g2_safetensors_close(&f->ref);
}

/* Evaluates every row of the fixture (as one batch, or one token at a time) and checks logits
 * and the mean next-token cross-entropy. */
static void check_fixture(const char *name, int decode) {
    fixture f;
    CHECK(load_fixture(name, &f), "fixture %s", name);
    if (!f.m) return;
    gemma2_context *c;
    gemma2_context_options co = gemma2_context_default_options();
    co.n_ctx = f.T;
    gemma2_error err;
    CHECK(gemma2_context_create(f.m, &co, &c, &err) == GEMMA2_OK, "%s", err.msg);
    float *out = malloc(sizeof(float) * (size_t)f.T * f.V);
    double max_diff = 0, loss = 0;
    for (int b = 0; b < f.B; b++) {
        CHECK(gemma2_context_rewind(c, 0, &err) == GEMMA2_OK);
        const int32_t *ids = f.ids + (size_t)b * f.T;
        if (decode) {
            for (int t = 0; t < f.T; t++) CHECK(gemma2_eval(c, ids + t, 1, out + (size_t)t * f.V, &err) == GEMMA2_OK);
        } else {
            CHECK(gemma2_eval(c, ids, f.T, out, &err) == GEMMA2_OK, "%s", err.msg);
        }
        const float *ref = f.logits + (size_t)b * f.T * f.V;
        for (size_t i = 0; i < (size_t)f.T * f.V; i++) max_diff = fmax(max_diff, fabs((double)out[i] - ref[i]));
        for (int t = 0; t + 1 < f.T; t++) {
            const float *row = out + (size_t)t * f.V;
            double mx = -INFINITY, s = 0;
            for (int v = 0; v < f.V; v++) mx = fmax(mx, row[v]);
            for (int v = 0; v < f.V; v++) s += exp(row[v] - mx);
            loss += mx + log(s) - row[ids[t + 1]];
        }
    }
    loss /= (double)f.B * (f.T - 1);
    CHECK(max_diff <= 2e-4, "%s%s: max |logit diff| %.3g", name, decode ? " (decode)" : "", max_diff);
    CHECK_NEAR(loss, f.loss, 2e-5, "%s mean loss", name);
    printf("  %s%s: max |logit diff| %.2e, loss %.7f (ref %.7f)\n", name, decode ? " decode" : "", max_diff, loss,
           f.loss);
    free(out);
    gemma2_context_free(c);
    free_fixture(&f);
}

static void test_tiny_a_batch(void) { check_fixture("tiny-a", 0); }
static void test_tiny_a_decode(void) { check_fixture("tiny-a", 1); }
static void test_tiny_b_batch(void) { check_fixture("tiny-b", 0); }
static void test_tiny_b_decode(void) { check_fixture("tiny-b", 1); }

/* Pieces of several sizes (some longer than the window of 5, so the ring wraps inside a piece)
 * give the same logits as one batch; so does a context larger than the sequence. */
static void check_pieces(const char *name) {
    fixture f;
    CHECK(load_fixture(name, &f));
    if (!f.m) return;
    gemma2_error err;
    gemma2_context *whole, *pieces;
    gemma2_context_options co = gemma2_context_default_options();
    co.n_ctx = f.T;
    CHECK(gemma2_context_create(f.m, &co, &whole, &err) == GEMMA2_OK);
    co.n_ctx = 0; /* the model's maximum, 128 */
    CHECK(gemma2_context_create(f.m, &co, &pieces, &err) == GEMMA2_OK);
    float *a = malloc(sizeof(float) * (size_t)f.T * f.V), *b = malloc(sizeof(float) * (size_t)f.T * f.V);
    CHECK(gemma2_eval(whole, f.ids, f.T, a, &err) == GEMMA2_OK);
    const int sizes[] = {1, 7, 2, 6, 3, 5};
    int t = 0;
    for (int i = 0; t < f.T; i = (i + 1) % 6) {
        int k = sizes[i] < f.T - t ? sizes[i] : f.T - t;
        CHECK(gemma2_eval(pieces, f.ids + t, k, b + (size_t)t * f.V, &err) == GEMMA2_OK);
        t += k;
    }
    double md = 0;
    for (size_t i = 0; i < (size_t)f.T * f.V; i++) md = fmax(md, fabs((double)a[i] - b[i]));
    /* 5e-5: the pieces (<= 7 tokens) run the row tiles, the whole batch (>= 16 tokens) the r16
     * kernels on groups packed per call: other fp32 summation orders (measured 1.04e-5 apart;
     * 3.9e-5 is the decode path's distance from PyTorch's logits in test_tiny_b_decode) */
    CHECK(md <= 5e-5, "%s: pieces vs batch %.3g", name, md);
    printf("  %s: pieces vs batch, max |logit diff| %.2e\n", name, md);
    const float *last = gemma2_last_logits(pieces);
    CHECK(last && !memcmp(last, b + (size_t)(f.T - 1) * f.V, sizeof(float) * f.V));
    CHECK(gemma2_context_pos(pieces) == f.T);
    free(a);
    free(b);
    gemma2_context_free(whole);
    gemma2_context_free(pieces);
    free_fixture(&f);
}

/* tiny-b: one kv head, and its window is shorter than the context (the ring); tiny-a: two kv
 * heads, so that a piece reading another head's cached keys or values is caught. */
static void test_pieces_and_ring(void) {
    check_pieces("tiny-b");
    check_pieces("tiny-a");
}

/* Load modes: NULL options map the files; AUTO reads a model this small into memory (READ) and
 * repacks its F32 matrices into the r16 layout (kernels/repack.h): the same products summed in
 * another order, so the logits agree to fp32 rounding (1e-5 of the largest; a wrong column or
 * row in the layout gives differences of order 1). Only where the ISA has r16 kernels (AVX-512,
 * AVX2): with the scalar kernels (GEMMA2_ISA=scalar) the matrices stay plain, since unpacking
 * every group on every product is 25x slower. Each ISA's repacked model gives the mapped
 * model's logits. */
static void test_load_modes(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/torchref/tiny-a", harness_shared_dir());
    gemma2_model *mm, *ma;
    gemma2_error err;
    CHECK(gemma2_model_open(dir, NULL, &mm, &err) == GEMMA2_OK, "%s", err.msg);
    gemma2_model_options o = gemma2_model_default_options();
    CHECK(o.load_mode == GEMMA2_LOAD_AUTO);
    CHECK(gemma2_model_open(dir, &o, &ma, &err) == GEMMA2_OK, "%s", err.msg);
    gemma2_model_stats sm, sa;
    gemma2_model_get_stats(mm, &sm);
    gemma2_model_get_stats(ma, &sa);
    CHECK(sm.load_mode == GEMMA2_LOAD_MMAP && sa.load_mode == GEMMA2_LOAD_READ, "%d %d", sm.load_mode, sa.load_mode);
    CHECK(sm.n_repacked == 0 && (sa.n_repacked > 0) == g2_r16_kernels_available(), "%d %d", sm.n_repacked, sa.n_repacked);
    const int32_t ids[] = {2, 5, 9, 1, 7};
    gemma2_context *cm, *ca;
    gemma2_context_options co = gemma2_context_default_options();
    co.n_ctx = 8;
    CHECK(gemma2_context_create(mm, &co, &cm, &err) == GEMMA2_OK && gemma2_context_create(ma, &co, &ca, &err) == GEMMA2_OK);
    CHECK(gemma2_eval(cm, ids, 5, NULL, &err) == GEMMA2_OK && gemma2_eval(ca, ids, 5, NULL, &err) == GEMMA2_OK);
    const int V = gemma2_model_config(mm)->vocab_size;
    const float *lm = gemma2_last_logits(cm), *la = gemma2_last_logits(ca);
    float md = 0, mx = 0;
    for (int i = 0; i < V; i++) md = fmaxf(md, fabsf(lm[i] - la[i])), mx = fmaxf(mx, fabsf(lm[i]));
    CHECK(md <= 1e-5f * mx, "mmap vs read: max |diff| %.3g of %.3g", md, mx);
    float *ref = malloc(sizeof(float) * (size_t)V);
    memcpy(ref, lm, sizeof(float) * (size_t)V);
    gemma2_context_free(cm);
    gemma2_context_free(ca);
    gemma2_model_close(mm);
    gemma2_model_close(ma);
    char *saved = getenv("GEMMA2_ISA") ? strdup(getenv("GEMMA2_ISA")) : NULL;
    for (int isa = G2_ISA_SCALAR; isa <= G2_ISA_AVX512; isa++) {
        if (!g2_isa_available((g2_isa)isa)) continue;
        setenv("GEMMA2_ISA", g2_isa_name((g2_isa)isa), 1);
        CHECK(gemma2_model_open(dir, &o, &ma, &err) == GEMMA2_OK, "%s", err.msg);
        gemma2_model_get_stats(ma, &sa);
        CHECK(sa.load_mode == GEMMA2_LOAD_READ && (sa.n_repacked > 0) == (isa >= G2_ISA_AVX2), "%s: %d repacked",
              g2_isa_name((g2_isa)isa), sa.n_repacked);
        CHECK(gemma2_context_create(ma, &co, &ca, &err) == GEMMA2_OK, "%s", err.msg);
        CHECK(gemma2_eval(ca, ids, 5, NULL, &err) == GEMMA2_OK, "%s", err.msg);
        la = gemma2_last_logits(ca);
        md = 0;
        for (int i = 0; i < V; i++) md = fmaxf(md, fabsf(ref[i] - la[i]));
        CHECK(md <= 1e-5f * mx, "%s read vs mmap: max |diff| %.3g of %.3g", g2_isa_name((g2_isa)isa), md, mx);
        gemma2_context_free(ca);
        gemma2_model_close(ma);
    }
    free(ref);
    if (saved) setenv("GEMMA2_ISA", saved, 1);
    else unsetenv("GEMMA2_ISA");
    free(saved);
}

/* g2_mapped_file_to_memory with ranges it must not read (read mode's streamed tensors): every
 * other byte is the file's, the skipped ones are zeros (never read, never written); ranges that
 * cross the 2 MiB pieces the threads read, touch, overlap or lie inside another, at the file's
 * start and end. A 5 MiB + 123 byte file of a byte pattern with no zeros. */
static void test_to_memory_skips(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/g2_skip_test_%ld", (long)getpid());
    const size_t size = ((size_t)5 << 20) + 123, MiB = (size_t)1 << 20;
    uint8_t *want = malloc(size);
    for (size_t i = 0; i < size; i++) want[i] = (uint8_t)(1 + (i * 2654435761u >> 13) % 255);
    FILE *fp = fopen(path, "wb");
    CHECK(fp && fwrite(want, 1, size, fp) == size && fclose(fp) == 0, "cannot write %s", path);
    const g2_byte_range skip[] = {{0, 100},           {2 * MiB - 10, 20},      {2 * MiB + 10, 5},
                                  {3 * MiB, MiB + 50}, {3 * MiB + 500, 10},    {4 * MiB + 50, 7},
                                  {4 * MiB + 57, 3},   {size - 7, 7}};
    const size_t n = sizeof skip / sizeof skip[0];
    for (size_t k = 0; k < n; k++) memset(want + skip[k].off, 0, skip[k].n);
    g2_mapped_file f;
    gemma2_error err;
    CHECK(g2_map_file(path, &f, &err) == GEMMA2_OK, "%s", err.msg);
    CHECK(g2_mapped_file_to_memory(&f, skip, n, &err) == GEMMA2_OK, "%s", err.msg);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < size; i++)
        if (f.data[i] != want[i] && !bad++) first = i;
    CHECK(bad == 0, "%zu bytes differ, the first at %zu", bad, first);
    g2_unmap_file(&f);
    unlink(path);
    free(want);
}

/* The ring buffer of a local layer holds min(n_ctx, window) positions. */
static void test_kv_bytes(void) {
    gemma2_config c;
    memset(&c, 0, sizeof c);
    c.num_layers = 4, c.num_kv_heads = 2, c.head_dim = 16, c.sliding_window = 8;
    /* 2 local layers x 8 + 2 global x 100 positions, K and V, 32 floats each */
    CHECK(gemma2_kv_cache_bytes(&c, 100) == (size_t)(2 * 8 + 2 * 100) * 2 * 32 * 4);
    CHECK(gemma2_kv_cache_bytes(&c, 4) == (size_t)(4 * 4) * 2 * 32 * 4);
}

/* Rewinding: to 0 always; by a few positions only while the ring still holds what is needed;
 * re-evaluating after a rewind gives the same logits. */
static void test_rewind(void) {
    fixture f;
    CHECK(load_fixture("tiny-b", &f));
    if (!f.m) return;
    gemma2_error err;
    gemma2_context *c;
    gemma2_context_options co = gemma2_context_default_options();
    co.n_ctx = 64;
    CHECK(gemma2_context_create(f.m, &co, &c, &err) == GEMMA2_OK);
    float *a = malloc(sizeof(float) * f.V * 2);
    /* 19 tokens as a batch, then one: the same path is taken again after the rewind, so the
     * logits must be bit-identical */
    CHECK(gemma2_eval(c, f.ids, 19, NULL, &err) == GEMMA2_OK);
    CHECK(gemma2_eval(c, f.ids + 19, 1, NULL, &err) == GEMMA2_OK);
    memcpy(a, gemma2_last_logits(c), sizeof(float) * f.V);
    /* window 5: the ring holds positions 15..19; continuing at 19 needs 15..18: allowed */
    CHECK(gemma2_context_rewind(c, 19, &err) == GEMMA2_OK, "%s", err.msg);
    CHECK(gemma2_last_logits(c) == NULL);
    CHECK(gemma2_eval(c, f.ids + 19, 1, NULL, &err) == GEMMA2_OK);
    CHECK(!memcmp(a, gemma2_last_logits(c), sizeof(float) * f.V), "re-evaluated logits differ");
    /* continuing at 10 needs 6..9, long gone from the ring */
    CHECK(gemma2_context_rewind(c, 10, &err) == GEMMA2_ERR_ARG);
    CHECK(strstr(err.msg, "sliding-window") != NULL, "%s", err.msg);
    CHECK(gemma2_context_rewind(c, 21, &err) == GEMMA2_ERR_ARG);
    CHECK(gemma2_context_rewind(c, 0, &err) == GEMMA2_OK);
    CHECK(gemma2_eval(c, f.ids, 19, NULL, &err) == GEMMA2_OK);
    CHECK(gemma2_eval(c, f.ids + 19, 1, NULL, &err) == GEMMA2_OK);
    CHECK(!memcmp(a, gemma2_last_logits(c), sizeof(float) * f.V), "logits after rewind to 0 differ");
    free(a);
    gemma2_context_free(c);
    free_fixture(&f);
}

static void test_bad_tokens_and_full_context(void) {
    fixture f;
    CHECK(load_fixture("tiny-b", &f));
    if (!f.m) return;
    gemma2_error err;
    gemma2_context *c;
    gemma2_context_options co = gemma2_context_default_options();
    co.n_ctx = 8;
    CHECK(gemma2_context_create(f.m, &co, &c, &err) == GEMMA2_OK);
    int32_t bad[3] = {2, 300, 5}; /* vocab is 300 */
    CHECK(gemma2_eval(c, bad, 3, NULL, &err) == GEMMA2_ERR_ARG);
    CHECK(strstr(err.msg, "300") && strstr(err.msg, "out of range"), "%s", err.msg);
    bad[1] = -1;
    CHECK(gemma2_eval(c, bad, 3, NULL, &err) == GEMMA2_ERR_ARG);
    CHECK(gemma2_context_pos(c) == 0, "a failed eval must not move the context");
    CHECK(gemma2_eval(c, f.ids, 9, NULL, &err) == GEMMA2_ERR_ARG);
    CHECK(strstr(err.msg, "do not fit") != NULL, "%s", err.msg);
    CHECK(gemma2_eval(c, f.ids, 8, NULL, &err) == GEMMA2_OK);
    CHECK(gemma2_eval(c, f.ids, 1, NULL, &err) == GEMMA2_ERR_ARG);
    CHECK(gemma2_eval(c, f.ids, 0, NULL, &err) == GEMMA2_ERR_ARG);
    gemma2_context_free(c);
    co.n_ctx = 1000; /* more than max_position_embeddings (128) */
    CHECK(gemma2_context_create(f.m, &co, &c, &err) == GEMMA2_ERR_ARG);
    free_fixture(&f);
}

/* K and V stored as F16 / BF16: each value rounded once. Decoding one token at a time (so that
 * every key but the current one comes from the cache), tiny-a's logits (magnitude 18, attention
 * scores up to 31 by design) move by 3.2e-2 with F16 (11 significant bits) and 1.8e-1 with BF16
 * (8 bits); the tolerances are twice that. An unsupported type is refused. */
static void test_kv_types(void) {
    fixture f;
    CHECK(load_fixture("tiny-a", &f));
    if (!f.m) return;
    const int types[2] = {GEMMA2_TYPE_F16, GEMMA2_TYPE_BF16};
    const double tol[2] = {6e-2, 4e-1};
    float *out = malloc(sizeof(float) * (size_t)f.T * f.V);
    gemma2_error err;
    for (int k = 0; k < 2; k++) {
        gemma2_context_options co = gemma2_context_default_options();
        co.n_ctx = f.T;
        co.kv_type = types[k];
        gemma2_context *c;
        CHECK(gemma2_context_create(f.m, &co, &c, &err) == GEMMA2_OK, "%s", err.msg);
        if (!c) continue;
        CHECK(gemma2_context_kv_bytes(c) == gemma2_kv_cache_bytes(gemma2_model_config(f.m), f.T) / 2);
        for (int t = 0; t < f.T; t++) CHECK(gemma2_eval(c, f.ids + t, 1, out + (size_t)t * f.V, &err) == GEMMA2_OK);
        double md = 0;
        for (size_t i = 0; i < (size_t)f.T * f.V; i++) md = fmax(md, fabs((double)out[i] - f.logits[i]));
        CHECK(md <= tol[k], "%s KV: max |logit diff| %.3g", gemma2_type_name(types[k]), md);
        CHECK(md > 0, "%s KV changed nothing: is it used?", gemma2_type_name(types[k]));
        printf("  tiny-a, %s KV cache, decode: max |logit diff| %.2e\n", gemma2_type_name(types[k]), md);
        gemma2_context_free(c);
    }
    gemma2_context_options co = gemma2_context_default_options();
    co.kv_type = GEMMA2_TYPE_Q8_0;
    gemma2_context *c = NULL;
    CHECK(gemma2_context_create(f.m, &co, &c, &err) == GEMMA2_ERR_ARG && c == NULL);
    free(out);
    free_fixture(&f);
}

int main(void) {
    RUN(test_tiny_a_batch);
    RUN(test_tiny_a_decode);
    RUN(test_tiny_b_batch);
    RUN(test_tiny_b_decode);
    RUN(test_pieces_and_ring);
    RUN(test_kv_bytes);
    RUN(test_load_modes);
    RUN(test_to_memory_skips);
    RUN(test_rewind);
    RUN(test_bad_tokens_and_full_context);
    RUN(test_kv_types);
    HARNESS_END();
}
