/* chat_template.c - Gemma 2's instruction format (see gemma2_tokenizer.h):
 *
 *   <bos><start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n<start_of_turn>model\n{model}<end_of_turn>\n
 *
 * This is what the Jinja template shipped with Gemma 2 renders: roles "user" and "model"
 * ("assistant" is renamed), a system message prepended to the first user turn (Gemma has no
 * system role), content trimmed of surrounding whitespace as the template's `| trim` does, and the
 * generation prompt "<start_of_turn>model\n". Tokenizing renders the markers as their ids directly,
 * so text inside a message can never forge a turn marker or <bos>. */
#include <ctype.h>
#include <string.h>

#include "tokenizer/vocab.h"
#include "util/error.h"

typedef struct {
    const char *sys; /* system text for the first user turn, or NULL */
    size_t first;    /* first non-system message */
} chat_plan;

static gemma2_status plan(const gemma2_chat_message *msgs, size_t n, chat_plan *p, gemma2_error *err) {
    p->sys = NULL;
    p->first = 0;
    if (n > 0 && msgs[0].role && !strcmp(msgs[0].role, "system")) {
        p->sys = msgs[0].content ? msgs[0].content : "";
        p->first = 1;
    }
    for (size_t i = p->first; i < n; i++) {
        const char *r = msgs[i].role;
        if (!r || !msgs[i].content) return g2_fail(err, GEMMA2_ERR_ARG, "chat message %zu has no role or content", i);
        int is_user = !strcmp(r, "user");
        int is_model = !strcmp(r, "model") || !strcmp(r, "assistant");
        if (!is_user && !is_model) {
            if (!strcmp(r, "system")) return g2_fail(err, GEMMA2_ERR_ARG, "chat message %zu: a system message must come first", i);
            return g2_fail(err, GEMMA2_ERR_ARG, "chat message %zu: unknown role \"%s\" (user, model, system)", i, r);
        }
        if (is_user != ((i - p->first) % 2 == 0))
            return g2_fail(err, GEMMA2_ERR_ARG, "chat message %zu: roles must alternate user/model/user/...", i);
    }
    if (p->sys && p->first == n)
        return g2_fail(err, GEMMA2_ERR_ARG, "a system message needs a user message after it");
    return GEMMA2_OK;
}

static void trimmed(const char *s, const char **b, size_t *len) {
    size_t n = strlen(s);
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    *b = s;
    *len = n;
}

static const char *role_name(const char *r) { return !strcmp(r, "user") ? "user" : "model"; }

/* Emits the conversation through two callbacks: markers (by name) and plain text. */
typedef gemma2_status (*emit_marker)(void *ctx, const char *marker, gemma2_error *err);
typedef gemma2_status (*emit_text)(void *ctx, const char *s, size_t n, gemma2_error *err);

static gemma2_status render(const gemma2_chat_message *msgs, size_t n, int gen, emit_marker mk, emit_text tx,
                            void *ctx, gemma2_error *err) {
    chat_plan p;
    gemma2_status st = plan(msgs, n, &p, err);
    if (st) return st;
#define TRY(x) do { if ((st = (x)) != GEMMA2_OK) return st; } while (0)
    TRY(mk(ctx, "<bos>", err));
    for (size_t i = p.first; i < n; i++) {
        const char *role = role_name(msgs[i].role);
        TRY(mk(ctx, "<start_of_turn>", err));
        TRY(tx(ctx, role, strlen(role), err));
        TRY(tx(ctx, "\n", 1, err));
        const char *b;
        size_t len;
        if (i == p.first && p.sys) {
            trimmed(p.sys, &b, &len);
            TRY(tx(ctx, b, len, err));
            TRY(tx(ctx, "\n\n", 2, err));
        }
        trimmed(msgs[i].content, &b, &len);
        TRY(tx(ctx, b, len, err));
        TRY(mk(ctx, "<end_of_turn>", err));
        TRY(tx(ctx, "\n", 1, err));
    }
    if (gen) {
        TRY(mk(ctx, "<start_of_turn>", err));
        TRY(tx(ctx, "model\n", 6, err));
    }
#undef TRY
    return GEMMA2_OK;
}

static gemma2_status text_marker(void *ctx, const char *m, gemma2_error *err) {
    return g2_textbuf_append(ctx, m, strlen(m), err);
}
static gemma2_status text_text(void *ctx, const char *s, size_t n, gemma2_error *err) {
    return g2_textbuf_append(ctx, s, n, err);
}

gemma2_status gemma2_chat_render(const gemma2_chat_message *msgs, size_t n, int add_generation_prompt,
                                 gemma2_text_buf *out, gemma2_error *err) {
    if (!out || (!msgs && n)) return g2_fail(err, GEMMA2_ERR_ARG, "gemma2_chat_render: NULL argument");
    return render(msgs, n, add_generation_prompt, text_marker, text_text, out, err);
}

typedef struct {
    const gemma2_tokenizer *t;
    gemma2_token_buf *out;
    /* plain text is collected between markers and encoded as one run, as SentencePiece would
     * see it: "user\n" and the message then merge exactly as in the rendered string */
    gemma2_text_buf pending;
} tok_ctx;

static gemma2_status flush_text(tok_ctx *c, gemma2_error *err) {
    if (c->pending.len == 0) return GEMMA2_OK;
    gemma2_status st = gemma2_tokenize(c->t, c->pending.data, c->pending.len, NULL, c->out, err);
    c->pending.len = 0;
    return st;
}

static gemma2_status tok_marker(void *ctx, const char *m, gemma2_error *err) {
    tok_ctx *c = ctx;
    gemma2_status st = flush_text(c, err);
    if (st) return st;
    int32_t id = !strcmp(m, "<bos>") ? c->t->bos : g2_tok_lookup(c->t, m, strlen(m));
    if (id < 0) return g2_fail(err, GEMMA2_ERR_MODEL, "the vocabulary has no %s piece for the chat template", m);
    st = g2_tokbuf_reserve(c->out, 1, err);
    if (st) return st;
    c->out->ids[c->out->n++] = id;
    return GEMMA2_OK;
}

static gemma2_status tok_text(void *ctx, const char *s, size_t n, gemma2_error *err) {
    return g2_textbuf_append(&((tok_ctx *)ctx)->pending, s, n, err);
}

gemma2_status gemma2_chat_tokenize(const gemma2_tokenizer *t, const gemma2_chat_message *msgs, size_t n,
                                   int add_generation_prompt, gemma2_token_buf *out, gemma2_error *err) {
    if (!t || !out || (!msgs && n)) return g2_fail(err, GEMMA2_ERR_ARG, "gemma2_chat_tokenize: NULL argument");
    tok_ctx c = {t, out, {0}};
    gemma2_status st = render(msgs, n, add_generation_prompt, tok_marker, tok_text, &c, err);
    if (!st) st = flush_text(&c, err);
    gemma2_text_buf_free(&c.pending);
    return st;
}
