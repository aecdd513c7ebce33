/* error.h - filling a gemma2_error: every failing library call goes through g2_fail(). */
#ifndef G2_ERROR_H
#define G2_ERROR_H

#include "gemma2.h"

/* Sets err (if not NULL) to status `s` with a printf-style message and returns `s`,
 * so that a failure is one line: `return g2_fail(err, GEMMA2_ERR_IO, "%s: ...", path);` */
gemma2_status g2_fail(gemma2_error *err, gemma2_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
