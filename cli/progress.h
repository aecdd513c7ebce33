/* progress.h - a one-line progress bar on stderr, shown only when both stdout and stderr are
 * terminals: a pipe or a log file never gets carriage-return noise. */
#ifndef G2_CLI_PROGRESS_H
#define G2_CLI_PROGRESS_H

typedef struct {
    int enabled;
    double start; /* seconds, monotonic */
    const char *label;
} g2_progress;

/* Monotonic clock in seconds. */
double g2_now(void);

void g2_progress_begin(g2_progress *p, const char *label);
/* Redraws the bar: done of total, elapsed time and an estimate of what is left. */
void g2_progress_update(g2_progress *p, long done, long total);
/* Clears the line. */
void g2_progress_end(g2_progress *p);

#endif
