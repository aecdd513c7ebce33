/* plot.c - SVG loss curves from the training CSV (see train_plot.h). */
#include "train/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemma2.h"
#include "util/atomic_file.h"

typedef struct {
    double *x, *y;
    int n, cap;
} series;

static void push(series *s, double x, double y) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->x = realloc(s->x, sizeof(double) * (size_t)s->cap);
        s->y = realloc(s->y, sizeof(double) * (size_t)s->cap);
    }
    s->x[s->n] = x, s->y[s->n] = y, s->n++;
}

static void polyline(FILE *f, const series *s, const char *color, double x0, double x1, double y0, double y1) {
    if (!s->n) return;
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
    for (int i = 0; i < s->n; i++)
        fprintf(f, "%.1f,%.1f ", 60 + 560 * (s->x[i] - x0) / (x1 - x0 > 0 ? x1 - x0 : 1),
                370 - 340 * (s->y[i] - y0) / (y1 - y0 > 0 ? y1 - y0 : 1));
    fprintf(f, "\"/>\n");
}

int g2_train_plot_svg(const char *csv_path, const char *svg_path) {
    FILE *in = fopen(csv_path, "r");
    if (!in) return 1;
    series tr = {0}, va = {0};
    char line[512];
    while (fgets(line, sizeof line, in)) {
        double step, lr, tl, vl;
        char vs[64] = "";
        if (sscanf(line, "%lf,%lf,%lf,%63[^,]", &step, &lr, &tl, vs) < 3) continue; /* header */
        push(&tr, step, tl);
        if (vs[0] && sscanf(vs, "%lf", &vl) == 1) push(&va, step, vl);
    }
    fclose(in);
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    const series *all[2] = {&tr, &va};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < all[k]->n; i++) {
            x0 = fmin(x0, all[k]->x[i]), x1 = fmax(x1, all[k]->x[i]);
            if (isfinite(all[k]->y[i])) y0 = fmin(y0, all[k]->y[i]), y1 = fmax(y1, all[k]->y[i]);
        }
    g2_atomic_file af;
    int rc = 1;
    if (tr.n && !g2_atomic_open(svg_path, &af, NULL)) {
        FILE *f = af.fp;
        fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"420\" font-family=\"sans-serif\" "
                   "font-size=\"12\">\n<rect width=\"640\" height=\"420\" fill=\"white\"/>\n"
                   "<line x1=\"60\" y1=\"370\" x2=\"620\" y2=\"370\" stroke=\"black\"/>\n"
                   "<line x1=\"60\" y1=\"30\" x2=\"60\" y2=\"370\" stroke=\"black\"/>\n");
        fprintf(f, "<text x=\"60\" y=\"390\">step %.0f</text><text x=\"620\" y=\"390\" text-anchor=\"end\">%.0f</text>\n",
                x0, x1);
        fprintf(f, "<text x=\"55\" y=\"374\" text-anchor=\"end\">%.3g</text><text x=\"55\" y=\"34\" "
                   "text-anchor=\"end\">%.3g</text>\n", y0, y1);
        fprintf(f, "<text x=\"340\" y=\"20\" text-anchor=\"middle\">loss (blue: train, orange: validation)</text>\n");
        polyline(f, &tr, "#1f77b4", x0, x1, y0, y1);
        polyline(f, &va, "#ff7f0e", x0, x1, y0, y1);
        fprintf(f, "</svg>\n");
        rc = g2_atomic_commit(&af, NULL) ? 1 : 0;
    }
    free(tr.x), free(tr.y), free(va.x), free(va.y);
    return rc;
}
