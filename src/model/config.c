/* config.c - Gemma 2 hyper-parameters. Field names follow HF's Gemma2Config and llama.cpp's
 * GGUF keys (GEMMA2.md section 3). */
#include "model/config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

int gemma2_layer_is_local(const gemma2_config *c, int l) {
    (void)c;
    return (l % 2) == 0; /* layer 0 is local (sliding window), then they alternate */
}

gemma2_config g2_config_hf_defaults(void) {
    gemma2_config c = {
        .vocab_size = 256000, .hidden_size = 2304, .intermediate_size = 9216, .num_layers = 26,
        .num_heads = 8, .num_kv_heads = 4, .head_dim = 256, .sliding_window = 4096,
        .max_position_embeddings = 8192, .query_pre_attn_scalar = 256, .attn_logit_softcap = 50,
        .final_logit_softcap = 30, .rms_norm_eps = 1e-6f, .rope_theta = 10000,
    };
    return c;
}

int g2_config_preset(const char *name, gemma2_config *out) {
    if (!strncmp(name, "gemma2-", 7)) name += 7;
    gemma2_config c = g2_config_hf_defaults();
    if (!strcmp(name, "2b")) {
        /* the defaults */
    } else if (!strcmp(name, "9b")) {
        c.hidden_size = 3584, c.intermediate_size = 14336, c.num_layers = 42, c.num_heads = 16;
        c.num_kv_heads = 8, c.head_dim = 256, c.query_pre_attn_scalar = 256;
    } else if (!strcmp(name, "27b")) {
        c.hidden_size = 4608, c.intermediate_size = 36864, c.num_layers = 46, c.num_heads = 32;
        c.num_kv_heads = 16, c.head_dim = 128, c.query_pre_attn_scalar = 144;
    } else {
        return 0;
    }
    *out = c;
    return 1;
}

gemma2_status g2_config_validate(const gemma2_config *c, const char *where, gemma2_error *err) {
#define BAD(...) return g2_fail(err, GEMMA2_ERR_MODEL, __VA_ARGS__)
    if (c->vocab_size < 1 || c->vocab_size > (1 << 24)) BAD("%s: vocab_size %d out of range", where, c->vocab_size);
    if (c->hidden_size < 1 || c->hidden_size > 65536) BAD("%s: hidden_size %d out of range", where, c->hidden_size);
    if (c->intermediate_size < 1 || c->intermediate_size > (1 << 20))
        BAD("%s: intermediate_size %d out of range", where, c->intermediate_size);
    if (c->num_layers < 1 || c->num_layers > 1024) BAD("%s: num_hidden_layers %d out of range", where, c->num_layers);
    if (c->num_heads < 1 || c->num_heads > 1024) BAD("%s: num_attention_heads %d out of range", where, c->num_heads);
    if (c->num_kv_heads < 1 || c->num_kv_heads > c->num_heads || c->num_heads % c->num_kv_heads)
        BAD("%s: num_key_value_heads %d must divide num_attention_heads %d", where, c->num_kv_heads, c->num_heads);
    if (c->head_dim < 2 || c->head_dim > 4096 || c->head_dim % 2)
        BAD("%s: head_dim %d must be even and in 2..4096", where, c->head_dim);
    if (c->sliding_window < 1) BAD("%s: sliding_window %d must be positive", where, c->sliding_window);
    if (c->max_position_embeddings < 1 || c->max_position_embeddings > (1 << 20))
        BAD("%s: max_position_embeddings %d out of range", where, c->max_position_embeddings);
    if (!(c->query_pre_attn_scalar > 0) || !isfinite(c->query_pre_attn_scalar))
        BAD("%s: query_pre_attn_scalar %g must be positive", where, c->query_pre_attn_scalar);
    if (!(c->attn_logit_softcap >= 0) || !isfinite(c->attn_logit_softcap))
        BAD("%s: attn_logit_softcapping %g must be >= 0", where, c->attn_logit_softcap);
    if (!(c->final_logit_softcap >= 0) || !isfinite(c->final_logit_softcap))
        BAD("%s: final_logit_softcapping %g must be >= 0", where, c->final_logit_softcap);
    if (!(c->rms_norm_eps > 0) || !(c->rms_norm_eps < 1)) BAD("%s: rms_norm_eps %g out of range", where, c->rms_norm_eps);
    if (!(c->rope_theta > 1) || !isfinite(c->rope_theta)) BAD("%s: rope_theta %g out of range", where, c->rope_theta);
#undef BAD
    return GEMMA2_OK;
}

/* Reads an integer field if present. Returns 0 on a present field of the wrong kind. */
static int get_int(const cJSON *root, const char *key, int *dst) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j)) return 1;
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || fabs(j->valuedouble) > 2e9) return 0;
    *dst = (int)j->valuedouble;
    return 1;
}

/* A float field; JSON null means "off" (0) for the soft-caps. */
static int get_float(const cJSON *root, const char *key, float *dst, int null_is_zero) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j) return 1;
    if (cJSON_IsNull(j)) {
        if (null_is_zero) *dst = 0;
        return 1;
    }
    if (!cJSON_IsNumber(j)) return 0;
    *dst = (float)j->valuedouble;
    return 1;
}

gemma2_status g2_config_from_json(const char *path, const char *json, gemma2_config *out, gemma2_error *err) {
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: not a valid JSON object", path);
    }
    gemma2_config c = g2_config_hf_defaults();
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!cJSON_IsString(mt) || strcmp(mt->valuestring, "gemma2") != 0) {
        gemma2_status s = g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: model_type is %s%s%s, expected \"gemma2\"", path,
                                  cJSON_IsString(mt) ? "\"" : "", cJSON_IsString(mt) ? mt->valuestring : "missing",
                                  cJSON_IsString(mt) ? "\"" : "");
        cJSON_Delete(root);
        return s;
    }
    const char *bad = NULL;
    if (!get_int(root, "vocab_size", &c.vocab_size)) bad = "vocab_size";
    else if (!get_int(root, "hidden_size", &c.hidden_size)) bad = "hidden_size";
    else if (!get_int(root, "intermediate_size", &c.intermediate_size)) bad = "intermediate_size";
    else if (!get_int(root, "num_hidden_layers", &c.num_layers)) bad = "num_hidden_layers";
    else if (!get_int(root, "num_attention_heads", &c.num_heads)) bad = "num_attention_heads";
    else if (!get_int(root, "num_key_value_heads", &c.num_kv_heads)) bad = "num_key_value_heads";
    else if (!get_int(root, "head_dim", &c.head_dim)) bad = "head_dim";
    else if (!get_int(root, "sliding_window", &c.sliding_window)) bad = "sliding_window";
    else if (!get_int(root, "max_position_embeddings", &c.max_position_embeddings)) bad = "max_position_embeddings";
    else if (!get_float(root, "query_pre_attn_scalar", &c.query_pre_attn_scalar, 0)) bad = "query_pre_attn_scalar";
    else if (!get_float(root, "attn_logit_softcapping", &c.attn_logit_softcap, 1)) bad = "attn_logit_softcapping";
    else if (!get_float(root, "final_logit_softcapping", &c.final_logit_softcap, 1)) bad = "final_logit_softcapping";
    else if (!get_float(root, "rms_norm_eps", &c.rms_norm_eps, 0)) bad = "rms_norm_eps";
    else if (!get_float(root, "rope_theta", &c.rope_theta, 0)) bad = "rope_theta";
    if (bad) {
        cJSON_Delete(root);
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: field '%s' has the wrong type", path, bad);
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_activation");
    if (!act) act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (cJSON_IsString(act) && strcmp(act->valuestring, "gelu_pytorch_tanh") && strcmp(act->valuestring, "gelu")) {
        gemma2_status s = g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: hidden_activation '%s' (expected gelu_pytorch_tanh)",
                                  path, act->valuestring);
        cJSON_Delete(root);
        return s;
    }
    /* layer_types, when given, must be Gemma 2's alternation: this engine hard-wires it. */
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "layer_types");
    if (cJSON_IsArray(lt)) {
        int n = cJSON_GetArraySize(lt);
        for (int l = 0; l < n; l++) {
            const cJSON *e = cJSON_GetArrayItem(lt, l);
            const char *want = gemma2_layer_is_local(&c, l) ? "sliding_attention" : "full_attention";
            if (!cJSON_IsString(e) || strcmp(e->valuestring, want)) {
                cJSON_Delete(root);
                return g2_fail(err, GEMMA2_ERR_UNSUPPORTED,
                               "%s: layer_types[%d] is not \"%s\" (Gemma 2 alternates local and global layers, "
                               "starting with a local one)",
                               path, l, want);
            }
        }
        if (n != c.num_layers) {
            cJSON_Delete(root);
            return g2_fail(err, GEMMA2_ERR_MODEL, "%s: layer_types has %d entries, num_hidden_layers is %d", path, n,
                           c.num_layers);
        }
    }
    cJSON_Delete(root);
    gemma2_status s = g2_config_validate(&c, path, err);
    if (!s) *out = c;
    return s;
}

static int gguf_int(const g2_gguf *g, const char *key, int *dst, int required) {
    int64_t v;
    if (!g2_gguf_get_int(g, key, &v)) return !required;
    if (v < 0 || v > 2000000000) return 0;
    *dst = (int)v;
    return 1;
}

gemma2_status g2_config_from_gguf(const g2_gguf *g, gemma2_config *out, gemma2_error *err) {
    const char *path = g->file.path;
    const g2_gguf_kv *arch = g2_gguf_find(g, "general.architecture");
    if (!arch || arch->type != G2_GGUF_STRING)
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: general.architecture is missing", path);
    if (arch->str.len != 6 || memcmp(arch->str.ptr, "gemma2", 6))
        return g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: architecture is '%.*s', expected 'gemma2'", path,
                       (int)(arch->str.len > 64 ? 64 : arch->str.len), arch->str.ptr);
    gemma2_config c = g2_config_hf_defaults();
    int key_len = 0, val_len = 0;
    struct {
        const char *key;
        int *dst;
        int required;
    } ints[] = {
        {"gemma2.embedding_length", &c.hidden_size, 1},
        {"gemma2.block_count", &c.num_layers, 1},
        {"gemma2.feed_forward_length", &c.intermediate_size, 1},
        {"gemma2.attention.head_count", &c.num_heads, 1},
        {"gemma2.attention.head_count_kv", &c.num_kv_heads, 0},
        {"gemma2.attention.key_length", &key_len, 0},
        {"gemma2.attention.value_length", &val_len, 0},
        {"gemma2.attention.sliding_window", &c.sliding_window, 0},
        {"gemma2.context_length", &c.max_position_embeddings, 0},
    };
    c.num_kv_heads = -1;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (!gguf_int(g, ints[i].key, ints[i].dst, ints[i].required))
            return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: metadata %s is missing or invalid", path, ints[i].key);
    if (c.num_kv_heads < 0) c.num_kv_heads = c.num_heads;
    if (c.num_heads < 1) return g2_fail(err, GEMMA2_ERR_MODEL, "%s: gemma2.attention.head_count is 0", path);
    c.head_dim = key_len ? key_len : c.hidden_size / c.num_heads;
    if (val_len && val_len != c.head_dim)
        return g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: value_length %d differs from key_length %d", path, val_len,
                       c.head_dim);
    double f;
    if (g2_gguf_get_float(g, "gemma2.attention.layer_norm_rms_epsilon", &f)) c.rms_norm_eps = (float)f;
    if (g2_gguf_get_float(g, "gemma2.attn_logit_softcapping", &f)) c.attn_logit_softcap = (float)f;
    if (g2_gguf_get_float(g, "gemma2.final_logit_softcapping", &f)) c.final_logit_softcap = (float)f;
    if (g2_gguf_get_float(g, "gemma2.rope.freq_base", &f)) c.rope_theta = (float)f;
    /* GGUF has no query_pre_attn_scalar: llama.cpp uses head_dim, except for the 46-layer 27B,
     * where it uses hidden / heads (144). We follow it so that a GGUF means what llama.cpp runs. */
    c.query_pre_attn_scalar = c.num_layers == 46 ? (float)c.hidden_size / (float)c.num_heads : (float)c.head_dim;
    const g2_gguf_tensor *emb = g2_gguf_find_tensor(g, "token_embd.weight");
    if (!emb) return g2_fail(err, GEMMA2_ERR_MODEL, "%s: tensor token_embd.weight is missing", path);
    if (emb->n_dims != 2 || emb->ne[1] > (1 << 24))
        return g2_fail(err, GEMMA2_ERR_MODEL, "%s: tensor token_embd.weight has a bad shape", path);
    c.vocab_size = (int)emb->ne[1];
    gemma2_status s = g2_config_validate(&c, path, err);
    if (!s) *out = c;
    return s;
}

int64_t g2_config_param_count(const gemma2_config *c) {
    int64_t d = c->hidden_size, hd = c->head_dim, q = (int64_t)c->num_heads * hd, kv = (int64_t)c->num_kv_heads * hd;
    int64_t per_layer = d * q + 2 * d * kv + q * d + 3 * d * (int64_t)c->intermediate_size + 4 * d;
    return (int64_t)c->vocab_size * d + c->num_layers * per_layer + d;
}

/* A float field printed as its shortest decimal (1e-06, not 9.99999997e-07). */
static double clean(float f) {
    char b[32];
    snprintf(b, sizeof b, "%.7g", f);
    return strtod(b, NULL);
}

char *g2_config_to_json(const gemma2_config *c, const char *torch_dtype) {
    cJSON *r = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(r, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("Gemma2ForCausalLM"));
    cJSON_AddStringToObject(r, "model_type", "gemma2");
    cJSON_AddNumberToObject(r, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(r, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(r, "intermediate_size", c->intermediate_size);
    cJSON_AddNumberToObject(r, "num_hidden_layers", c->num_layers);
    cJSON_AddNumberToObject(r, "num_attention_heads", c->num_heads);
    cJSON_AddNumberToObject(r, "num_key_value_heads", c->num_kv_heads);
    cJSON_AddNumberToObject(r, "head_dim", c->head_dim);
    cJSON_AddStringToObject(r, "hidden_activation", "gelu_pytorch_tanh");
    cJSON_AddStringToObject(r, "hidden_act", "gelu_pytorch_tanh");
    cJSON_AddNumberToObject(r, "max_position_embeddings", c->max_position_embeddings);
    cJSON_AddNumberToObject(r, "rms_norm_eps", clean(c->rms_norm_eps));
    cJSON_AddNumberToObject(r, "rope_theta", clean(c->rope_theta));
    cJSON_AddNumberToObject(r, "query_pre_attn_scalar", clean(c->query_pre_attn_scalar));
    cJSON_AddNumberToObject(r, "sliding_window", c->sliding_window);
    cJSON *lt = cJSON_AddArrayToObject(r, "layer_types");
    for (int l = 0; l < c->num_layers; l++)
        cJSON_AddItemToArray(lt, cJSON_CreateString(gemma2_layer_is_local(c, l) ? "sliding_attention" : "full_attention"));
    cJSON_AddNumberToObject(r, "attn_logit_softcapping", clean(c->attn_logit_softcap));
    cJSON_AddNumberToObject(r, "final_logit_softcapping", clean(c->final_logit_softcap));
    cJSON_AddBoolToObject(r, "tie_word_embeddings", 1);
    cJSON_AddNumberToObject(r, "pad_token_id", 0);
    cJSON_AddNumberToObject(r, "eos_token_id", 1);
    cJSON_AddNumberToObject(r, "bos_token_id", 2);
    cJSON_AddStringToObject(r, "torch_dtype", torch_dtype ? torch_dtype : "float32");
    char *s = cJSON_Print(r);
    cJSON_Delete(r);
    return s;
}
