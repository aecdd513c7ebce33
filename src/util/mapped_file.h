/* mapped_file.h - a whole file memory-mapped read-only (weights are used in place). */
#ifndef G2_MAPPED_FILE_H
#define G2_MAPPED_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "gemma2.h"

typedef struct {
    const uint8_t *data; /* NULL for an empty file */
    size_t size;
    char *path; /* owned copy, for error messages */
} g2_mapped_file;

typedef struct {
    size_t off, n; /* bytes [off, off + n) of a file */
} g2_byte_range;

gemma2_status g2_map_file(const char *path, g2_mapped_file *out, gemma2_error *err);
void g2_unmap_file(g2_mapped_file *f);

/* Replaces the file mapping with a private copy in anonymous memory at the same address, on
 * transparent huge pages where the kernel grants them: pointers into the file stay valid, the
 * pages can no longer be dropped by the page cache, and 2 MiB pages cut TLB misses when every
 * weight is streamed once per token. Files under 2 MiB are left mapped.
 * The bytes inside the n_skip ranges (sorted by offset) are not read: they stay untouched zeros,
 * taking no memory, for the caller to fill (weights packed as they are read, model.c). */
gemma2_status g2_mapped_file_to_memory(g2_mapped_file *f, const g2_byte_range *skip, size_t n_skip,
                                       gemma2_error *err);

/* pread of exactly n bytes at file offset off: 0, or -1 on an error or end of file. */
int g2_pread_all(int fd, void *dst, size_t n, size_t off);

/* Makes the mapping writable (1) or read-only again (0), for repacking weights in place after
 * g2_mapped_file_to_memory (a file left mapped is MAP_PRIVATE: writes go to private copies of
 * its pages, never to the file). Returns 0, or -1 when mprotect refuses. */
int g2_mapped_file_set_writable(g2_mapped_file *f, int writable);

/* Gives the whole pages inside [p, p + n), bytes of the mapping that are no longer used, back to
 * the system (MADV_DONTNEED): the RSS drops by them, and they read as zeros (or as the file) if
 * read again. */
void g2_mapped_file_release(const void *p, size_t n);

/* MemAvailable of /proc/meminfo in bytes (free memory plus what the kernel can reclaim, the page
 * cache among it); 0 when unknown. */
size_t g2_mem_available(void);

/* Reads a whole (small) file into a NUL-terminated malloc'd buffer. */
gemma2_status g2_read_file(const char *path, char **out, size_t *size, gemma2_error *err);

#endif
