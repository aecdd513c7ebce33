/* atomic_file.h - write a file so that readers see the old one or the whole new one, never a part:
 * write to PATH.tmp.PID in the same folder, fsync, then rename over PATH. */
#ifndef G2_ATOMIC_FILE_H
#define G2_ATOMIC_FILE_H

#include <stdio.h>

#include "gemma2.h"

typedef struct {
    FILE *fp;
    char *path;
    char *tmp_path;
} g2_atomic_file;

gemma2_status g2_atomic_open(const char *path, g2_atomic_file *af, gemma2_error *err);
/* Flushes, syncs and renames; on failure removes the temporary file. */
gemma2_status g2_atomic_commit(g2_atomic_file *af, gemma2_error *err);
/* Closes and removes the temporary file. */
void g2_atomic_abort(g2_atomic_file *af);

#endif
