/* mapped_file.c - mmap of model files, and reading small text files. */
#define _POSIX_C_SOURCE 200809L
#include "util/mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"

gemma2_status g2_map_file(const char *path, g2_mapped_file *out, gemma2_error *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return g2_fail(err, GEMMA2_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return g2_fail(err, GEMMA2_ERR_IO, "%s: not a regular file", path);
    }
    out->size = (size_t)st.st_size;
    if (out->size > 0) {
        void *p = mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return g2_fail(err, GEMMA2_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        }
        out->data = p;
    }
    close(fd);
    out->path = strdup(path);
    if (!out->path) {
        g2_unmap_file(out);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", path);
    }
    return GEMMA2_OK;
}

void g2_unmap_file(g2_mapped_file *f) {
    if (!f) return;
    if (f->data) munmap((void *)f->data, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

gemma2_status g2_read_file(const char *path, char **out, size_t *size, gemma2_error *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return g2_fail(err, GEMMA2_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(fp);
            return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", path);
        }
        n += fread(buf + n, 1, cap - n - 1, fp);
        if (n < cap - 1) break;
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb) free(buf);
        buf = nb;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return g2_fail(err, GEMMA2_ERR_IO, "%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    if (size) *size = n;
    return GEMMA2_OK;
}
