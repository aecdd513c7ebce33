/* progress.c - see progress.h. */
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double g2_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void g2_progress_begin(g2_progress *p, const char *label) {
    p->enabled = isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
    p->start = g2_now();
    p->label = label;
}

void g2_progress_update(g2_progress *p, long done, long total) {
    if (!p->enabled || total <= 0) return;
    enum { WIDTH = 30 };
    int fill = (int)(WIDTH * done / total);
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = 0;
    double el = g2_now() - p->start;
    double left = done > 0 ? el * (double)(total - done) / (double)done : 0;
    fprintf(stderr, "\r%s [%s] %ld/%ld  %.0fs elapsed, ~%.0fs left ", p->label, bar, done, total, el, left);
    fflush(stderr);
}

void g2_progress_end(g2_progress *p) {
    if (!p->enabled) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
}
