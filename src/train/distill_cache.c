/* distill_cache.c - see distill_cache.h for the format. */
#include "train/distill_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/distill.h"
#include "util/error.h"

static void put_le(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void g2_dcache_header_init(g2_dcache_header *h, uint32_t vocab, uint32_t K, uint32_t seq, float temperature,
                           uint64_t seed, uint64_t tok_hash, uint64_t data_hash, uint64_t n_tokens, uint32_t stride) {
    memset(h, 0, sizeof *h);
    h->stride = stride ? stride : 1;
    h->version = 1, h->vocab = vocab, h->K = K, h->seq = seq, h->temperature = temperature, h->seed = seed;
    h->tok_hash = tok_hash, h->data_hash = data_hash, h->n_tokens = n_tokens;
    h->id_bytes = vocab <= (1u << 16) ? 2 : vocab <= (1u << 24) ? 3 : 4;
    h->cnt_bytes = K <= 256 ? 1 : 2;
    const uint64_t all = n_tokens > 1 && seq > 0 ? (n_tokens - 1) / seq : 0;
    h->n_windows = (all + h->stride - 1) / h->stride;
}

uint64_t g2_dcache_data_hash(const int32_t *tokens, size_t n) {
    /* the bytes of the shard file after its header (u32 little-endian ids): hashing the values
     * through put_le makes the hash independent of the host's byte order */
    uint64_t h = G2_FNV_INIT;
    unsigned char b[4096];
    for (size_t i = 0; i < n;) {
        size_t m = 0;
        for (; i < n && m + 4 <= sizeof b; i++, m += 4) put_le(b + m, (uint32_t)tokens[i], 4);
        h = g2_fnv1a(h, b, m);
    }
    return h;
}

uint64_t g2_dcache_file_hash(const char *path) {
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) return 0;
    uint64_t h = G2_FNV_INIT;
    unsigned char b[65536];
    size_t n;
    while ((n = fread(b, 1, sizeof b, f)) > 0) h = g2_fnv1a(h, b, n);
    fclose(f);
    return h;
}

static void header_bytes(const g2_dcache_header *h, unsigned char *p) {
    memset(p, 0, G2_DCACHE_HEADER);
    memcpy(p, G2_DCACHE_MAGIC, 8);
    put_le(p + 8, h->version, 4);
    put_le(p + 12, h->vocab, 4);
    put_le(p + 16, h->K, 4);
    put_le(p + 20, h->seq, 4);
    uint32_t tb;
    memcpy(&tb, &h->temperature, 4);
    put_le(p + 24, tb, 4);
    p[28] = h->id_bytes, p[29] = h->cnt_bytes;
    put_le(p + 32, h->seed, 8);
    put_le(p + 40, h->tok_hash, 8);
    put_le(p + 48, h->data_hash, 8);
    put_le(p + 56, h->n_tokens, 8);
    put_le(p + 64, h->n_windows, 8);
    put_le(p + 72, h->stride, 4);
}

static gemma2_status parse_header(const char *path, const unsigned char *p, size_t n, g2_dcache_header *h,
                                  gemma2_error *err) {
    if (n < G2_DCACHE_HEADER || memcmp(p, G2_DCACHE_MAGIC, 8))
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: not a distillation cache (no G2DCACHE header)", path);
    memset(h, 0, sizeof *h);
    h->version = (uint32_t)get_le(p + 8, 4);
    if (h->version != 1)
        return g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: cache version %u (this build reads 1)", path, h->version);
    h->vocab = (uint32_t)get_le(p + 12, 4), h->K = (uint32_t)get_le(p + 16, 4), h->seq = (uint32_t)get_le(p + 20, 4);
    uint32_t tb = (uint32_t)get_le(p + 24, 4);
    memcpy(&h->temperature, &tb, 4);
    h->id_bytes = p[28], h->cnt_bytes = p[29];
    h->seed = get_le(p + 32, 8), h->tok_hash = get_le(p + 40, 8), h->data_hash = get_le(p + 48, 8);
    h->n_tokens = get_le(p + 56, 8), h->n_windows = get_le(p + 64, 8);
    h->stride = (uint32_t)get_le(p + 72, 4);
    if (!h->stride) h->stride = 1;
    g2_dcache_header want;
    g2_dcache_header_init(&want, h->vocab, h->K, h->seq, h->temperature, h->seed, h->tok_hash, h->data_hash,
                          h->n_tokens, h->stride);
    if (!h->vocab || !h->K || h->K > 65536 || !h->seq || h->id_bytes != want.id_bytes ||
        h->cnt_bytes != want.cnt_bytes || h->n_windows != want.n_windows)
        return g2_fail(err, GEMMA2_ERR_FORMAT,
                       "%s: inconsistent cache header (vocab %u, K %u, seq %u, id bytes %u, count bytes %u, %llu "
                       "windows for %llu tokens)",
                       path, h->vocab, h->K, h->seq, h->id_bytes, h->cnt_bytes, (unsigned long long)h->n_windows,
                       (unsigned long long)h->n_tokens);
    return GEMMA2_OK;
}

/* ---- one window's bytes ------------------------------------------------ */

static size_t max_window_bytes(const g2_dcache_header *h) {
    const size_t nmax = h->K < h->vocab ? h->K : h->vocab;
    return (size_t)h->seq * (h->cnt_bytes + nmax * (h->id_bytes + h->cnt_bytes));
}

static int grow(unsigned char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 1;
    unsigned char *p = realloc(*buf, need);
    if (!p) return 0;
    *buf = p, *cap = need;
    return 1;
}

/* Decodes (and checks) one window of `len` bytes. Returns NULL or what is wrong. */
static const char *decode_window(const g2_dcache_header *h, const unsigned char *p, size_t len, int64_t *row,
                                 int32_t *ids, uint32_t *counts, float *w) {
    const int ib = h->id_bytes, cb = h->cnt_bytes;
    size_t at = 0;
    int64_t e = 0;
    const float invk = 1.0f / (float)h->K;
    for (uint32_t t = 0; t < h->seq; t++) {
        if (row) row[t] = e;
        if (at + cb > len) return "it ends inside a position";
        const uint64_t n = get_le(p + at, cb) + 1;
        at += cb;
        if (n > h->K || n > h->vocab) return "a position has more distinct ids than draws";
        if (at + n * (ib + cb) > len) return "it ends inside a position";
        uint64_t sum = 0;
        int64_t prev = -1;
        for (uint64_t i = 0; i < n; i++, e++) {
            const int64_t id = (int64_t)get_le(p + at, ib);
            const uint32_t c = (uint32_t)get_le(p + at + ib, cb) + 1;
            at += ib + cb;
            if (id >= h->vocab) return "an id is outside the vocabulary";
            if (id <= prev) return "ids are not ascending";
            prev = id, sum += c;
            if (ids) ids[e] = (int32_t)id;
            if (counts) counts[e] = c;
            if (w) w[e] = (float)c * invk;
        }
        if (sum != h->K) return "counts do not add up to K";
    }
    if (row) row[h->seq] = e;
    return at == len ? NULL : "it has bytes after its last position";
}

/* ---- writer -------------------------------------------------------------- */

static char *cat(const char *a, const char *b) {
    char *s = malloc(strlen(a) + strlen(b) + 1);
    if (s) strcpy(s, a), strcat(s, b);
    return s;
}

static int same_header(const g2_dcache_header *a, const g2_dcache_header *b) {
    return a->version == b->version && a->vocab == b->vocab && a->K == b->K && a->seq == b->seq &&
           a->temperature == b->temperature && a->seed == b->seed && a->tok_hash == b->tok_hash &&
           a->data_hash == b->data_hash && a->n_tokens == b->n_tokens && a->stride == b->stride;
}

/* Reads the complete windows of an existing partial file (positioned after the header), filling
 * w->off; returns the offset just after the last complete window. */
static uint64_t scan_partial(g2_dcache_writer *w, FILE *f) {
    const g2_dcache_header *h = &w->h;
    const int ib = h->id_bytes, cb = h->cnt_bytes;
    uint64_t at = G2_DCACHE_HEADER;
    unsigned char b[8];
    w->done = 0;
    w->off[0] = at;
    while (w->done < h->n_windows) {
        size_t len = 0;
        int ok = 1;
        for (uint32_t t = 0; ok && t < h->seq; t++) {
            if (!grow(&w->buf, &w->cap, len + cb) || fread(b, 1, cb, f) != (size_t)cb) {
                ok = 0;
                break;
            }
            memcpy(w->buf + len, b, cb);
            len += cb;
            const size_t n = (size_t)get_le(b, cb) + 1, pb = n * (ib + cb);
            if (!grow(&w->buf, &w->cap, len + pb) || fread(w->buf + len, 1, pb, f) != pb) ok = 0;
            len += pb;
        }
        /* a window that does not decode is where the interrupted write stopped (or damage):
         * everything from it on is written again */
        if (!ok || decode_window(h, w->buf, len, NULL, NULL, NULL, NULL)) break;
        at += len;
        w->off[++w->done] = at;
    }
    return at;
}

gemma2_status g2_dcache_writer_open(const char *path, const g2_dcache_header *h, g2_dcache_writer *w,
                                    gemma2_error *err) {
    memset(w, 0, sizeof *w);
    w->h = *h;
    w->path = strdup(path);
    w->part = cat(path, ".partial");
    w->off = calloc(h->n_windows + 1, sizeof *w->off);
    if (!w->path || !w->part || !w->off || !grow(&w->buf, &w->cap, max_window_bytes(h))) {
        g2_dcache_writer_close(w);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory for the cache writer");
    }
    unsigned char hb[G2_DCACHE_HEADER];
    FILE *f = fopen(w->part, "r+b");
    if (f) {
        g2_dcache_header old;
        gemma2_error e2;
        const size_t n = fread(hb, 1, sizeof hb, f);
        if (n == sizeof hb && parse_header(w->part, hb, n, &old, &e2) == GEMMA2_OK && same_header(&old, h)) {
            const uint64_t end = scan_partial(w, f);
            if (fflush(f) || ftruncate(fileno(f), (off_t)end) || fseeko(f, (off_t)end, SEEK_SET)) {
                fclose(f);
                g2_dcache_writer_close(w);
                return g2_fail(err, GEMMA2_ERR_IO, "%s: cannot cut back to its last complete window: %s", path,
                               strerror(errno));
            }
            w->fp = f;
            return GEMMA2_OK;
        }
        /* another teacher run's leftovers (other K, seed, data...): start over, but say nothing
         * is lost silently: the caller prints w->done == 0 */
        fclose(f);
    }
    w->fp = fopen(w->part, "w+b");
    header_bytes(h, hb);
    if (!w->fp || fwrite(hb, 1, sizeof hb, w->fp) != sizeof hb) {
        g2_dcache_writer_close(w);
        return g2_fail(err, GEMMA2_ERR_IO, "%s.partial: cannot write: %s", path, strerror(errno));
    }
    w->off[0] = G2_DCACHE_HEADER;
    return GEMMA2_OK;
}

gemma2_status g2_dcache_writer_rewind(g2_dcache_writer *w, uint64_t windows, gemma2_error *err) {
    if (windows > w->done) return g2_fail(err, GEMMA2_ERR_ARG, "cannot rewind forwards");
    w->done = windows;
    if (fflush(w->fp) || ftruncate(fileno(w->fp), (off_t)w->off[windows]) ||
        fseeko(w->fp, (off_t)w->off[windows], SEEK_SET))
        return g2_fail(err, GEMMA2_ERR_IO, "%s: %s", w->part, strerror(errno));
    return GEMMA2_OK;
}

gemma2_status g2_dcache_writer_add(g2_dcache_writer *w, const int *n, const int32_t *ids, const uint32_t *counts,
                                   gemma2_error *err) {
    const g2_dcache_header *h = &w->h;
    const int ib = h->id_bytes, cb = h->cnt_bytes;
    if (w->done >= h->n_windows) return g2_fail(err, GEMMA2_ERR_ARG, "%s: all windows already written", w->path);
    size_t at = 0;
    for (uint32_t t = 0; t < h->seq; t++) {
        if (n[t] < 1 || (uint32_t)n[t] > h->K) return g2_fail(err, GEMMA2_ERR_ARG, "bad sample count %d", n[t]);
        put_le(w->buf + at, (uint64_t)n[t] - 1, cb);
        at += cb;
        for (int i = 0; i < n[t]; i++, ids++, counts++) {
            put_le(w->buf + at, (uint64_t)*ids, ib);
            put_le(w->buf + at + ib, (uint64_t)*counts - 1, cb);
            at += ib + cb;
        }
    }
    if (fwrite(w->buf, 1, at, w->fp) != at)
        return g2_fail(err, GEMMA2_ERR_IO, "%s: write failed: %s", w->part, strerror(errno));
    w->off[w->done + 1] = w->off[w->done] + at;
    w->done++;
    return GEMMA2_OK;
}

gemma2_status g2_dcache_writer_finish(g2_dcache_writer *w, gemma2_error *err) {
    if (w->done != w->h.n_windows)
        return g2_fail(err, GEMMA2_ERR_ARG, "%s: %llu of %llu windows written", w->part, (unsigned long long)w->done,
                       (unsigned long long)w->h.n_windows);
    unsigned char b[8];
    int ok = 1;
    for (uint64_t j = 0; ok && j <= w->h.n_windows; j++) put_le(b, w->off[j], 8), ok = fwrite(b, 1, 8, w->fp) == 8;
    put_le(b, w->h.n_windows, 8);
    ok = ok && fwrite(b, 1, 8, w->fp) == 8 && fwrite(G2_DCACHE_END, 1, 8, w->fp) == 8;
    /* the data reaches the disk before the name does: a crash leaves the partial or the whole */
    ok = ok && fflush(w->fp) == 0 && fsync(fileno(w->fp)) == 0;
    ok = ok && fclose(w->fp) == 0;
    w->fp = NULL;
    if (!ok || rename(w->part, w->path))
        return g2_fail(err, GEMMA2_ERR_IO, "%s: cannot finish: %s", w->path, strerror(errno));
    return GEMMA2_OK;
}

void g2_dcache_writer_close(g2_dcache_writer *w) {
    if (w->fp) fclose(w->fp);
    free(w->path), free(w->part), free(w->off), free(w->buf);
    memset(w, 0, sizeof *w);
}

/* ---- reader -------------------------------------------------------------- */

static int pread_all(int fd, void *buf, size_t n, uint64_t at) {
    unsigned char *p = buf;
    while (n > 0) {
        const ssize_t r = pread(fd, p, n, (off_t)at);
        if (r <= 0) return 0;
        p += r, n -= (size_t)r, at += (uint64_t)r;
    }
    return 1;
}

gemma2_status g2_dcache_open(const char *path, g2_dcache *c, gemma2_error *err) {
    memset(c, 0, sizeof *c);
    c->fd = open(path, O_RDONLY);
    if (c->fd < 0) {
        struct stat sb;
        char *part = cat(path, ".partial");
        const int has_part = part && stat(part, &sb) == 0;
        free(part);
        return g2_fail(err, GEMMA2_ERR_IO, "%s: %s%s", path, strerror(errno),
                       has_part ? " (an unfinished CACHE.partial exists: rerun `gemma2 distill cache` to finish it)"
                                : "");
    }
    c->path = strdup(path);
    struct stat sb;
    unsigned char hb[G2_DCACHE_HEADER], tail[16];
    gemma2_status st;
    if (!c->path || fstat(c->fd, &sb)) {
        st = g2_fail(err, GEMMA2_ERR_IO, "%s: cannot stat", path);
        goto fail;
    }
    const uint64_t size = (uint64_t)sb.st_size;
    if (!pread_all(c->fd, hb, sizeof hb, 0)) {
        st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: truncated: %llu bytes, shorter than the %d-byte header", path,
                     (unsigned long long)size, G2_DCACHE_HEADER);
        goto fail;
    }
    if ((st = parse_header(path, hb, sizeof hb, &c->h, err))) goto fail;
    const uint64_t nw = c->h.n_windows, foot = 8 * (nw + 1) + 16;
    if (size < G2_DCACHE_HEADER + foot || !pread_all(c->fd, tail, 16, size - 16) ||
        memcmp(tail + 8, G2_DCACHE_END, 8) || get_le(tail, 8) != nw) {
        st = g2_fail(err, GEMMA2_ERR_FORMAT,
                     "%s: truncated or unfinished: %llu bytes and no footer for its %llu windows (a cache is complete "
                     "only when `gemma2 distill cache` ends; rerun it to finish)",
                     path, (unsigned long long)size, (unsigned long long)nw);
        goto fail;
    }
    c->off = malloc((nw + 1) * sizeof *c->off);
    unsigned char *ob = malloc((nw + 1) * 8);
    if (!c->off || !ob || !pread_all(c->fd, ob, (nw + 1) * 8, size - foot)) {
        free(ob);
        st = g2_fail(err, GEMMA2_ERR_IO, "%s: cannot read the window offsets", path);
        goto fail;
    }
    for (uint64_t j = 0; j <= nw; j++) c->off[j] = get_le(ob + 8 * j, 8);
    free(ob);
    const size_t maxw = max_window_bytes(&c->h);
    for (uint64_t j = 0; j <= nw; j++) {
        const int bad = j == 0 ? c->off[0] != G2_DCACHE_HEADER
                               : c->off[j] <= c->off[j - 1] || c->off[j] - c->off[j - 1] > maxw;
        if (bad || (j == nw && c->off[j] != size - foot)) {
            st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: corrupt window offset table (window %llu)", path,
                         (unsigned long long)j);
            goto fail;
        }
    }
    if (!grow(&c->buf, &c->cap, maxw)) {
        st = g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
        goto fail;
    }
    return GEMMA2_OK;
fail:
    g2_dcache_close(c);
    return st;
}

void g2_dcache_close(g2_dcache *c) {
    if (c->fd > 0) close(c->fd);
    free(c->path), free(c->off), free(c->buf);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

gemma2_status g2_dcache_check(const g2_dcache *c, uint32_t vocab, uint64_t tok_hash, uint64_t data_hash,
                              uint64_t n_tokens, uint32_t seq, gemma2_error *err) {
    const g2_dcache_header *h = &c->h;
    if (h->vocab != vocab)
        return g2_fail(err, GEMMA2_ERR_ARG, "%s was made by a teacher with a vocabulary of %u; this model has %u",
                       c->path, h->vocab, vocab);
    if (h->tok_hash && tok_hash && h->tok_hash != tok_hash)
        return g2_fail(err, GEMMA2_ERR_ARG,
                       "%s was made with another tokenizer (tokenizer hash %016llx; this data's tokenizer: %016llx)",
                       c->path, (unsigned long long)h->tok_hash, (unsigned long long)tok_hash);
    if (h->data_hash != data_hash || h->n_tokens != n_tokens)
        return g2_fail(err, GEMMA2_ERR_ARG,
                       "%s was made from other training data (%llu tokens, data hash %016llx; this train.bin: %llu "
                       "tokens, %016llx)",
                       c->path, (unsigned long long)h->n_tokens, (unsigned long long)h->data_hash,
                       (unsigned long long)n_tokens, (unsigned long long)data_hash);
    if (h->seq != seq)
        return g2_fail(err, GEMMA2_ERR_ARG, "%s holds windows of %u tokens; --seq is %u (they must be equal)",
                       c->path, h->seq, seq);
    return GEMMA2_OK;
}

gemma2_status g2_dcache_read(g2_dcache *c, uint64_t j, int64_t *row, int32_t *ids, uint32_t *counts, float *w,
                             gemma2_error *err) {
    if (j >= c->h.n_windows)
        return g2_fail(err, GEMMA2_ERR_ARG, "%s: window %llu of %llu", c->path, (unsigned long long)j,
                       (unsigned long long)c->h.n_windows);
    const size_t len = (size_t)(c->off[j + 1] - c->off[j]);
    if (!pread_all(c->fd, c->buf, len, c->off[j]))
        return g2_fail(err, GEMMA2_ERR_IO, "%s: cannot read window %llu", c->path, (unsigned long long)j);
    const char *why = decode_window(&c->h, c->buf, len, row, ids, counts, w);
    if (why)
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: window %llu is corrupt (%s)", c->path, (unsigned long long)j,
                       why);
    return GEMMA2_OK;
}
