/* test_tokenizer.c - the Gemma tokenizer against libsentencepiece's ids
 * (../shared/tokenizer/gemma2_expected.jsonl), through every loader that is available:
 * the .model always; tokenizer.json and a GGUF when tests/generated/ has them
 * (scripts/fetch_tokenizer_json.sh and tests/cli/tokenizer.sh make them). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "gemma2_tokenizer.h"
#include "tokenizer/json_text.h"
#include "harness.h"

static gemma2_tokenizer *g_spm;

typedef struct {
    char *text;
    size_t len;
    int32_t *ids;
    size_t n;
} expected;

static expected *g_exp;
static size_t g_n_exp;

static char *path_in_shared(const char *rel) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", harness_shared_dir(), rel);
    return buf;
}

static int load_expected(void) {
    FILE *f = fopen(path_in_shared("tokenizer/gemma2_expected.jsonl"), "rb");
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    size_t cap_e = 512;
    g_exp = calloc(cap_e, sizeof *g_exp);
    while ((n = getline(&line, &cap, f)) > 0) {
        cJSON *o = cJSON_ParseWithLength(line, (size_t)n);
        if (!o) continue;
        const cJSON *t = cJSON_GetObjectItem(o, "text"), *ids = cJSON_GetObjectItem(o, "ids");
        expected *e = &g_exp[g_n_exp++];
        (void)t;
        /* cJSON strings end at a NUL; the text may hold "\u0000" */
        gemma2_error err;
        if (g2_json_string_field(line, (size_t)n, "text", &e->text, &e->len, &err) || !e->text) return 0;
        e->n = (size_t)cJSON_GetArraySize(ids);
        e->ids = malloc((e->n + 1) * sizeof *e->ids);
        size_t k = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, ids) e->ids[k++] = it->valueint;
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    return 1;
}

static int check_all_expected(const gemma2_tokenizer *t, const char *what) {
    int ok = 0;
    gemma2_token_buf b = {0};
    for (size_t i = 0; i < g_n_exp; i++) {
        b.n = 0;
        gemma2_error err;
        gemma2_status st = gemma2_tokenize(t, g_exp[i].text, g_exp[i].len, NULL, &b, &err);
        int same = st == GEMMA2_OK && b.n == g_exp[i].n && !memcmp(b.ids, g_exp[i].ids, b.n * sizeof *b.ids);
        if (same) ok++;
        else if (i < 2000) {
            fprintf(stderr, "  %s: mismatch for %.60s: got", what, g_exp[i].text);
            for (size_t k = 0; k < b.n && k < 20; k++) fprintf(stderr, " %d", b.ids[k]);
            fprintf(stderr, " / want");
            for (size_t k = 0; k < g_exp[i].n && k < 20; k++) fprintf(stderr, " %d", g_exp[i].ids[k]);
            fprintf(stderr, "\n");
        }
    }
    gemma2_token_buf_free(&b);
    printf("# %s: %d/%zu expected strings match\n", what, ok, g_n_exp);
    return ok;
}

static void test_expected_spm(void) {
    CHECK(g_n_exp == 366, "expected 366 strings, read %zu", g_n_exp);
    CHECK(check_all_expected(g_spm, "tokenizer.model") == (int)g_n_exp);
}

static void test_expected_other_loaders(void) {
    static const char *const files[] = {"tests/generated/tokenizer.json", "tests/generated/vocab.gguf"};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "rb");
        if (!f) {
            printf("skip expected_ids %s: not generated yet (tests/cli/tokenizer.sh makes it)\n", files[i]);
            continue;
        }
        fclose(f);
        gemma2_tokenizer *t;
        gemma2_error err;
        gemma2_status st = gemma2_tokenizer_load(files[i], &t, &err);
        CHECK(st == GEMMA2_OK, "%s: %s", files[i], err.msg);
        if (st) continue;
        CHECK(check_all_expected(t, files[i]) == (int)g_n_exp);
        /* same pieces and types as the .model */
        int diff = 0;
        for (int32_t id = 0; id < gemma2_tokenizer_vocab_size(t); id++) {
            size_t la, lb;
            const char *a = gemma2_tokenizer_piece(t, id, &la), *b = gemma2_tokenizer_piece(g_spm, id, &lb);
            if (la != lb || memcmp(a, b, la) || gemma2_tokenizer_piece_type(t, id) != gemma2_tokenizer_piece_type(g_spm, id)) {
                if (diff++ < 5) fprintf(stderr, "  %s: piece %d \"%.*s\" type %d vs \"%.*s\" type %d\n", files[i], id, (int)la, a,
                                        gemma2_tokenizer_piece_type(t, id), (int)lb, b, gemma2_tokenizer_piece_type(g_spm, id));
            }
        }
        CHECK(diff == 0, "%d pieces differ from the .model", diff);
        gemma2_tokenizer_free(t);
    }
}

static void test_roundtrip(void) {
    gemma2_token_buf b = {0};
    gemma2_text_buf s = {0};
    int ok = 0, n = 0;
    for (size_t i = 0; i < g_n_exp; i++) {
        b.n = 0;
        s.len = 0;
        gemma2_error err;
        CHECK(gemma2_tokenize(g_spm, g_exp[i].text, g_exp[i].len, NULL, &b, &err) == GEMMA2_OK);
        CHECK(gemma2_detokenize(g_spm, b.ids, b.n, &s, &err) == GEMMA2_OK);
        if (strstr(g_exp[i].text, "\xE2\x96\x81")) continue; /* U+2581 decodes to a space, as in SentencePiece */
        n++;
        if (s.len == g_exp[i].len && !memcmp(s.data, g_exp[i].text, s.len)) ok++;
        else fprintf(stderr, "  roundtrip: \"%.60s\" -> \"%.60s\"\n", g_exp[i].text, s.data);
    }
    CHECK(ok == n, "%d of %d round trips", ok, n);
    gemma2_token_buf_free(&b);
    gemma2_text_buf_free(&s);
}

static void encode_str(const gemma2_tokenizer *t, const char *s, size_t len, const gemma2_encode_options *o,
                       gemma2_token_buf *b) {
    gemma2_error err;
    b->n = 0;
    gemma2_status st = gemma2_tokenize(t, s, len, o, b, &err);
    CHECK(st == GEMMA2_OK, "%s", err.msg);
}

static void test_specials(void) {
    gemma2_token_buf b = {0};
    CHECK(gemma2_tokenizer_vocab_size(g_spm) == 256000);
    CHECK(gemma2_tokenizer_bos_id(g_spm) == 2 && gemma2_tokenizer_eos_id(g_spm) == 1);
    CHECK(gemma2_tokenizer_pad_id(g_spm) == 0 && gemma2_tokenizer_unk_id(g_spm) == 3);
    CHECK(gemma2_tokenizer_start_of_turn_id(g_spm) == 106 && gemma2_tokenizer_end_of_turn_id(g_spm) == 107);
    gemma2_encode_options o = gemma2_encode_default_options();
    o.add_bos = 1;
    encode_str(g_spm, "Hello", 5, &o, &b);
    CHECK(b.n == 2 && b.ids[0] == 2 && b.ids[1] == 4521);
    /* control text is text by default, a token with parse_control */
    encode_str(g_spm, "<bos>", 5, NULL, &b);
    CHECK(b.n > 1);
    o.add_bos = 0;
    o.parse_control = 1;
    encode_str(g_spm, "<bos>hi<eos>", 12, &o, &b);
    CHECK(b.n == 3 && b.ids[0] == 2 && b.ids[2] == 1, "n=%zu", b.n);
    /* user-defined pieces are matched either way */
    encode_str(g_spm, "<start_of_turn>user\n", 20, NULL, &b);
    CHECK(b.n == 3 && b.ids[0] == 106 && b.ids[1] == 1645 && b.ids[2] == 108);
    encode_str(g_spm, "", 0, NULL, &b);
    CHECK(b.n == 0);
    gemma2_token_buf_free(&b);
}

static void test_invalid_utf8_and_nul(void) {
    gemma2_token_buf b = {0};
    gemma2_text_buf s = {0};
    gemma2_error err;
    /* a lone continuation byte, a truncated 3-byte char, an overlong, a surrogate, a NUL */
    const char txt[] = "a\x80 b\xE2\x82 c\xC0\xAF d\xED\xA0\x80 e\0f";
    size_t len = sizeof txt - 1;
    encode_str(g_spm, txt, len, NULL, &b);
    CHECK(b.n > 0);
    CHECK(gemma2_detokenize(g_spm, b.ids, b.n, &s, &err) == GEMMA2_OK);
    /* every invalid byte became U+FFFD, as SentencePiece's normalizer does */
    const char want[] = "a\xEF\xBF\xBD b\xEF\xBF\xBD\xEF\xBF\xBD c\xEF\xBF\xBD\xEF\xBF\xBD d\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD e\0f";
    CHECK(s.len == sizeof want - 1 && !memcmp(s.data, want, s.len), "got %zu bytes", s.len);
    gemma2_token_buf_free(&b);
    gemma2_text_buf_free(&s);
}

static void test_byte_decoding(void) {
    gemma2_text_buf s = {0};
    gemma2_error err;
    /* <0xE2><0x82><0xAC> = "€"; a cut-off sequence gives one U+FFFD per byte */
    int32_t euro[] = {217 + 0xE2, 217 + 0x82, 217 + 0xAC};
    CHECK(gemma2_detokenize(g_spm, euro, 3, &s, &err) == GEMMA2_OK);
    CHECK(!strcmp(s.data, "\xE2\x82\xAC"));
    s.len = 0;
    int32_t cut[] = {217 + 0xE2, 217 + 0x82, 4521, 2, 217 + 0x41};
    CHECK(gemma2_detokenize(g_spm, cut, 5, &s, &err) == GEMMA2_OK);
    CHECK(!strcmp(s.data, "\xEF\xBF\xBD\xEF\xBF\xBDHelloA"), "got %s", s.data);
    s.len = 0;
    int32_t unk[] = {3};
    CHECK(gemma2_detokenize(g_spm, unk, 1, &s, &err) == GEMMA2_OK);
    CHECK(!strcmp(s.data, " \xE2\x81\x87 "));
    int32_t bad[] = {256000};
    CHECK(gemma2_detokenize(g_spm, bad, 1, &s, &err) == GEMMA2_ERR_ARG);
    gemma2_text_buf_free(&s);
}

/* Streaming gives the same text, and no chunk ends inside a UTF-8 character. */
static void test_streaming(void) {
    gemma2_decoder *d;
    gemma2_error err;
    CHECK(gemma2_decoder_create(g_spm, &d, &err) == GEMMA2_OK);
    gemma2_token_buf b = {0};
    gemma2_text_buf whole = {0}, streamed = {0}, chunk = {0};
    int bad_cuts = 0;
    for (size_t i = 0; i < g_n_exp; i++) {
        b.n = whole.len = streamed.len = 0;
        encode_str(g_spm, g_exp[i].text, g_exp[i].len, NULL, &b);
        gemma2_detokenize(g_spm, b.ids, b.n, &whole, &err);
        for (size_t k = 0; k <= b.n; k++) {
            chunk.len = 0;
            if (k < b.n) CHECK(gemma2_decoder_push(d, b.ids[k], &chunk, &err) == GEMMA2_OK);
            else CHECK(gemma2_decoder_flush(d, &chunk, &err) == GEMMA2_OK);
            if (chunk.len) {
                /* the chunk must be valid UTF-8 on its own */
                size_t p = 0;
                while (p < chunk.len) {
                    unsigned char c = (unsigned char)chunk.data[p];
                    size_t l = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
                    if (p + l > chunk.len) bad_cuts++;
                    p += l;
                }
                gemma2_error e2;
                (void)e2;
                size_t old = streamed.len;
                streamed.len = old;
                char *tmp = malloc(streamed.len + chunk.len + 1);
                if (streamed.len) memcpy(tmp, streamed.data, streamed.len);
                memcpy(tmp + streamed.len, chunk.data, chunk.len);
                free(streamed.data);
                streamed.data = tmp;
                streamed.len += chunk.len;
                streamed.cap = streamed.len + 1;
            }
        }
        CHECK(streamed.len == whole.len && !memcmp(streamed.data, whole.data, whole.len), "stream differs for %.40s",
              g_exp[i].text);
    }
    CHECK(bad_cuts == 0);
    gemma2_decoder_free(d);
    gemma2_token_buf_free(&b);
    gemma2_text_buf_free(&whole);
    gemma2_text_buf_free(&streamed);
    gemma2_text_buf_free(&chunk);
}

/* No quadratic case: a megabyte of one character, of spaces, and of digits. */
static void test_long_runs(void) {
    size_t n = 1 << 20;
    char *s = malloc(n);
    const char fill[] = {'a', ' ', '7', '\n'};
    gemma2_token_buf b = {0};
    for (int k = 0; k < 4; k++) {
        memset(s, fill[k], n);
        clock_t c0 = clock();
        encode_str(g_spm, s, n, NULL, &b);
        double sec = (double)(clock() - c0) / CLOCKS_PER_SEC;
        CHECK(b.n > 0 && sec < 10, "%.2f s for 1 MB of '%c'", sec, fill[k]);
        gemma2_text_buf t = {0};
        gemma2_error err;
        CHECK(gemma2_detokenize(g_spm, b.ids, b.n, &t, &err) == GEMMA2_OK);
        if (k == 0 || k == 2 || k == 3) CHECK(t.len == n && !memcmp(t.data, s, n));
        gemma2_text_buf_free(&t);
    }
    /* 40 spaces: 31 first, then the rest, as SentencePiece */
    encode_str(g_spm, s, 0, NULL, &b);
    memset(s, ' ', 40);
    encode_str(g_spm, s, 40, NULL, &b);
    CHECK(b.n == 2 && b.ids[0] == 168 && b.ids[1] == 146, "n=%zu %d %d", b.n, b.n ? b.ids[0] : -1, b.n > 1 ? b.ids[1] : -1);
    free(s);
    gemma2_token_buf_free(&b);
}

static void test_bad_files(void) {
    gemma2_tokenizer *t = NULL;
    gemma2_error err;
    FILE *f = fopen(path_in_shared("tokenizer/gemma_tokenizer.model"), "rb");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc((size_t)n);
    CHECK(fread(data, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    /* truncations at many points: a clean error or (cut between pieces) a smaller valid model */
    size_t cuts[] = {0, 1, 2, 3, 7, 100, 1000, 123457, (size_t)n / 2, (size_t)n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        gemma2_status st = gemma2_tokenizer_load_spm(data, cuts[i], "cut", &t, &err);
        if (st == GEMMA2_OK) gemma2_tokenizer_free(t);
        else CHECK(err.msg[0] != 0);
        t = NULL;
    }
    /* corrupt bytes in the middle */
    uint32_t x = 12345;
    for (int r = 0; r < 20; r++) {
        uint8_t *c = malloc((size_t)n);
        memcpy(c, data, (size_t)n);
        for (int k = 0; k < 50; k++) {
            x = x * 1103515245u + 12345u;
            c[(x >> 4) % (uint32_t)n] = (uint8_t)(x >> 24);
        }
        gemma2_status st = gemma2_tokenizer_load_spm(c, (size_t)n, "corrupt", &t, &err);
        if (st == GEMMA2_OK) {
            gemma2_token_buf b = {0};
            encode_str(t, "Hello, world! 123 \xE4\xB8\xAD", 23, NULL, &b);
            gemma2_token_buf_free(&b);
            gemma2_tokenizer_free(t);
        }
        free(c);
    }
    free(data);
    /* malformed JSON, empty inputs, missing files */
    CHECK(gemma2_tokenizer_load_hf_json("{\"model\": {", 11, "j", &t, &err) == GEMMA2_ERR_FORMAT);
    CHECK(gemma2_tokenizer_load_hf_json("{}", 2, "j", &t, &err) == GEMMA2_ERR_FORMAT);
    CHECK(gemma2_tokenizer_load_hf_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":5},\"merges\":[]}}", 51, "j", &t, &err) ==
          GEMMA2_ERR_FORMAT, "%s", err.msg);
    CHECK(gemma2_tokenizer_load_spm("", 0, "e", &t, &err) == GEMMA2_ERR_FORMAT);
    CHECK(gemma2_tokenizer_load("/nonexistent/x.model", &t, &err) == GEMMA2_ERR_IO);
}

static void test_chat(void) {
    gemma2_chat_message m[] = {{"system", "Be brief."}, {"user", "Hi!"}, {"model", "Hello."}, {"user", "What is 2+2?"}};
    gemma2_text_buf s = {0};
    gemma2_error err;
    CHECK(gemma2_chat_render(m, 4, 1, &s, &err) == GEMMA2_OK);
    CHECK(!strcmp(s.data, "<bos><start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
                          "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n"),
          "%s", s.data);
    gemma2_token_buf b = {0};
    gemma2_chat_message q[] = {{"user", "What is 2+2?"}};
    CHECK(gemma2_chat_tokenize(g_spm, q, 1, 1, &b, &err) == GEMMA2_OK);
    /* the prompt of ../shared/oracle/README.md's llama_generate example */
    int32_t want[] = {2, 106, 1645, 108, 1841, 603, 235248, 235284, 235340, 235284, 235336, 107, 108, 106, 2516, 108};
    CHECK(b.n == 16 && !memcmp(b.ids, want, sizeof want), "n=%zu", b.n);
    /* the same ids as encoding the rendered text with <bos> parsed */
    gemma2_token_buf b2 = {0};
    s.len = 0;
    CHECK(gemma2_chat_render(q, 1, 1, &s, &err) == GEMMA2_OK);
    gemma2_encode_options o = gemma2_encode_default_options();
    o.parse_control = 1;
    encode_str(g_spm, s.data, s.len, &o, &b2);
    CHECK(b2.n == b.n && !memcmp(b2.ids, b.ids, b.n * sizeof *b.ids));
    gemma2_chat_message bad1[] = {{"user", "a"}, {"user", "b"}};
    CHECK(gemma2_chat_render(bad1, 2, 1, &s, &err) == GEMMA2_ERR_ARG);
    gemma2_chat_message bad2[] = {{"user", "a"}, {"system", "b"}};
    CHECK(gemma2_chat_render(bad2, 2, 1, &s, &err) == GEMMA2_ERR_ARG);
    gemma2_chat_message bad3[] = {{"robot", "a"}};
    CHECK(gemma2_chat_render(bad3, 1, 1, &s, &err) == GEMMA2_ERR_ARG);
    gemma2_text_buf_free(&s);
    gemma2_token_buf_free(&b);
    gemma2_token_buf_free(&b2);
}

/* The trainer's model loads, has Gemma's layout, and round-trips text. */
static void test_train_small(void) {
    const char *texts[] = {"the cat sat on the mat", "the dog sat on the log 2024", "  two spaces and\ttab",
                           "the cat and the dog", "<start_of_turn>user hello<end_of_turn>"};
    size_t lens[5];
    for (int i = 0; i < 5; i++) lens[i] = strlen(texts[i]);
    gemma2_train_options o = gemma2_train_default_options();
    o.vocab_size = 300;
    uint8_t *model;
    size_t size;
    gemma2_error err;
    CHECK(gemma2_train_bpe(texts, lens, 5, &o, &model, &size, &err) == GEMMA2_OK, "%s", err.msg);
    gemma2_tokenizer *t;
    CHECK(gemma2_tokenizer_load_spm(model, size, "trained", &t, &err) == GEMMA2_OK, "%s", err.msg);
    free(model);
    CHECK(gemma2_tokenizer_bos_id(t) == 2 && gemma2_tokenizer_eos_id(t) == 1 && gemma2_tokenizer_pad_id(t) == 0 &&
          gemma2_tokenizer_unk_id(t) == 3 && gemma2_tokenizer_start_of_turn_id(t) == 4 && gemma2_tokenizer_end_of_turn_id(t) == 5);
    size_t l;
    const char *p = gemma2_tokenizer_piece(t, 6, &l);
    CHECK(l == 6 && !memcmp(p, "<0x00>", 6) && gemma2_tokenizer_piece_type(t, 6) == GEMMA2_PIECE_BYTE);
    CHECK(gemma2_tokenizer_piece_to_id(t, "\xE2\x96\x81the", 6) > 261, "a learned piece for \"_the\"");
    const char *txt = "the cat sat on the log \xE4\xB8\xAD 99";
    gemma2_token_buf b = {0};
    gemma2_text_buf back = {0};
    encode_str(t, txt, strlen(txt), NULL, &b);
    CHECK(gemma2_detokenize(t, b.ids, b.n, &back, &err) == GEMMA2_OK);
    CHECK(!strcmp(back.data, txt), "got %s", back.data);
    gemma2_token_buf_free(&b);
    gemma2_text_buf_free(&back);
    gemma2_tokenizer_free(t);
    o.vocab_size = 100;
    CHECK(gemma2_train_bpe(texts, lens, 5, &o, &model, &size, &err) == GEMMA2_ERR_ARG);
}

int main(void) {
    gemma2_error err;
    if (!load_expected() || gemma2_tokenizer_load(path_in_shared("tokenizer/gemma_tokenizer.model"), &g_spm, &err)) {
        printf("FAIL setup: cannot read %s (set GEMMA2_SHARED)\n", path_in_shared("tokenizer"));
        return 1;
    }
    printf("# loaded vocabulary: %.1f MB\n", gemma2_tokenizer_memory_bytes(g_spm) / 1e6);
    RUN(test_expected_spm);
    RUN(test_expected_other_loaders);
    RUN(test_roundtrip);
    RUN(test_specials);
    RUN(test_invalid_utf8_and_nul);
    RUN(test_byte_decoding);
    RUN(test_streaming);
    RUN(test_long_runs);
    RUN(test_bad_files);
    RUN(test_chat);
    RUN(test_train_small);
    gemma2_tokenizer_free(g_spm);
    for (size_t i = 0; i < g_n_exp; i++) free(g_exp[i].text), free(g_exp[i].ids);
    free(g_exp);
    HARNESS_END();
}
