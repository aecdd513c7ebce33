/* atomic_file.c - temporary file + fsync + rename. */
#define _POSIX_C_SOURCE 200809L
#include "util/atomic_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"

gemma2_status g2_atomic_open(const char *path, g2_atomic_file *af, gemma2_error *err) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->path = strdup(path);
    af->tmp_path = malloc(n);
    if (!af->path || !af->tmp_path) {
        g2_atomic_abort(af);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    }
    snprintf(af->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        gemma2_status s = g2_fail(err, GEMMA2_ERR_IO, "%s: cannot create: %s", af->tmp_path, strerror(errno));
        g2_atomic_abort(af);
        return s;
    }
    return GEMMA2_OK;
}

gemma2_status g2_atomic_commit(g2_atomic_file *af, gemma2_error *err) {
    int ok = fflush(af->fp) == 0 && fsync(fileno(af->fp)) == 0;
    ok = (fclose(af->fp) == 0) && ok;
    af->fp = NULL;
    if (ok && rename(af->tmp_path, af->path) == 0) {
        free(af->path);
        free(af->tmp_path);
        memset(af, 0, sizeof *af);
        return GEMMA2_OK;
    }
    gemma2_status s = g2_fail(err, GEMMA2_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
    g2_atomic_abort(af);
    return s;
}

void g2_atomic_abort(g2_atomic_file *af) {
    if (af->fp) fclose(af->fp);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}
