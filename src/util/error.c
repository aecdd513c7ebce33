/* error.c - status names and error messages. */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>

const char *gemma2_status_name(gemma2_status s) {
    switch (s) {
    case GEMMA2_OK: return "ok";
    case GEMMA2_ERR_IO: return "I/O error";
    case GEMMA2_ERR_FORMAT: return "format error";
    case GEMMA2_ERR_UNSUPPORTED: return "unsupported";
    case GEMMA2_ERR_MODEL: return "model error";
    case GEMMA2_ERR_ARG: return "invalid argument";
    case GEMMA2_ERR_NOMEM: return "out of memory";
    }
    return "unknown error";
}

gemma2_status g2_fail(gemma2_error *err, gemma2_status s, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = s;
    }
    return s;
}
