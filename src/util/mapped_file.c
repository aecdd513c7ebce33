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

#define HUGE_PAGE ((size_t)2 << 20)

/* Reserves `size` bytes of address space starting on a 2 MiB boundary (so that the range can
 * later hold transparent huge pages); MAP_FAILED on failure. */
static void *reserve_aligned(size_t size) {
    uint8_t *r = mmap(NULL, size + HUGE_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) return MAP_FAILED;
    uint8_t *a = (uint8_t *)(((uintptr_t)r + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (a > r) munmap(r, (size_t)(a - r));
    size_t tail = (size_t)(r + size + HUGE_PAGE - (a + size));
    if (tail) munmap(a + size, tail);
    return a;
}

/* The file mapped read-only at a 2 MiB-aligned address (see g2_mapped_file_to_memory). */
static void *map_aligned(int fd, size_t size) {
    void *a = reserve_aligned(size);
    if (a == MAP_FAILED) return MAP_FAILED;
    void *p = mmap(a, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) munmap(a, size);
    return p;
}

int g2_pread_all(int fd, void *dst, size_t n, size_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (uint8_t *)dst + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Reads the file's bytes [off, end) into a + off, except those inside the skip ranges (sorted by
 * offset; they may overlap or nest, so the ranges are walked from the first: a model's few
 * hundred against thousands of 2 MiB pieces). 0 or -1. */
static int read_except(int fd, uint8_t *a, size_t off, size_t end, const g2_byte_range *skip, size_t n_skip) {
    for (size_t i = 0; off < end;) {
        while (i < n_skip && skip[i].off + skip[i].n <= off) i++;
        const int in_range = i < n_skip && skip[i].off < end;
        const size_t gap_end = !in_range ? end : skip[i].off > off ? skip[i].off : off;
        if (gap_end > off && g2_pread_all(fd, a + off, gap_end - off, off)) return -1;
        off = gap_end;
        if (in_range) {
            const size_t e = skip[i].off + skip[i].n < end ? skip[i].off + skip[i].n : end;
            if (e > off) off = e;
            i++;
        }
    }
    return 0;
}

gemma2_status g2_mapped_file_to_memory(g2_mapped_file *f, const g2_byte_range *skip, size_t n_skip,
                                       gemma2_error *err) {
    if (!f->data || f->size < HUGE_PAGE) return GEMMA2_OK; /* small files: not worth it */
    uint8_t *a = reserve_aligned(f->size);
    if (a == MAP_FAILED) return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: cannot reserve %zu bytes", f->path, f->size);
    if (mmap(a, f->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
        munmap(a, f->size);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory for %zu bytes", f->path, f->size);
    }
    madvise(a, f->size, MADV_HUGEPAGE); /* a hint: without huge pages it still works */
    /* read with pread rather than copying from the mapping, so that the file's pages are never
     * mapped into this process (they would count in its RSS next to the copy); in parallel,
     * since the first touch of anonymous memory is what costs */
    int fd = open(f->path, O_RDONLY);
    if (fd < 0) {
        munmap(a, f->size);
        return g2_fail(err, GEMMA2_ERR_IO, "%s: cannot open: %s", f->path, strerror(errno));
    }
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad)
    for (size_t off = 0; off < f->size; off += HUGE_PAGE)
        bad |= read_except(fd, a, off, f->size - off < HUGE_PAGE ? f->size : off + HUGE_PAGE, skip, n_skip) != 0;
    close(fd);
    if (bad) {
        munmap(a, f->size);
        return g2_fail(err, GEMMA2_ERR_IO, "%s: read failed (file changed or truncated?)", f->path);
    }
    mprotect(a, f->size, PROT_READ);
    /* move the copy over the file mapping: every pointer into the file stays valid */
    if (mremap(a, f->size, f->size, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)f->data) == MAP_FAILED) {
        munmap(a, f->size);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: cannot move the weights into memory: %s", f->path, strerror(errno));
    }
    return GEMMA2_OK;
}

int g2_mapped_file_set_writable(g2_mapped_file *f, int writable) {
    if (!f->data) return 0;
    return mprotect((void *)f->data, f->size, writable ? PROT_READ | PROT_WRITE : PROT_READ) ? -1 : 0;
}

void g2_mapped_file_release(const void *p, size_t n) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)p + n) & ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED); /* a hint: nothing breaks if refused */
}

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
        void *p = map_aligned(fd, out->size);
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

size_t g2_mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return (size_t)kb * 1024;
}
