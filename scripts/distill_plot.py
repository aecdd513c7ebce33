#!/usr/bin/env python3
"""distill_plot.py EXP OUT.svg - one SVG with the loss curves of every run of the distillation
experiment (EXP/runs/*/log.csv, as `gemma2 train` writes them): validation next-token loss (solid,
with dots) and the training objective (faint; for distilled runs that is the cross-entropy against
the teacher's target, which is not comparable with the one-hot loss). Plain SVG, no matplotlib."""
import csv, os, sys

exp, out = sys.argv[1], sys.argv[2]
order = ["teacher", "scratch", "distill-k8", "distill-k32", "distill-k256", "teacher-full", "scratch-all", "teacher-top32"]
colors = ["#000000", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#e377c2", "#8c564b"]
runs = []
for name, col in zip(order, colors):
    p = os.path.join(exp, "runs", name, "log.csv")
    if not os.path.exists(p):
        continue
    tr, va = [], []
    for row in csv.DictReader(open(p)):
        s = int(row["step"])
        tr.append((s, float(row["train_loss"])))
        if row["val_loss"]:
            va.append((s, float(row["val_loss"])))
    runs.append((name, col, tr, va))
W, H, L, R, T, B = 760, 440, 60, 170, 20, 40
xmax = max(max(s for s, _ in tr) for _, _, tr, _ in runs)
ys = [v for _, _, tr, va in runs for _, v in va] + [v for _, _, tr, _ in runs for s, v in tr if s > 20]
ymin, ymax = min(ys) - 0.1, min(max(ys), min(ys) + 4) + 0.1
X = lambda s: L + (W - L - R) * s / xmax
Y = lambda v: T + (H - T - B) * (ymax - min(max(v, ymin), ymax)) / (ymax - ymin)
o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (W, H),
     '<rect width="100%" height="100%" fill="white"/>']
for i in range(6):
    v = ymin + (ymax - ymin) * i / 5
    o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (L, W - R, Y(v), Y(v)))
    o.append('<text x="%d" y="%.1f" text-anchor="end">%.2f</text>' % (L - 5, Y(v) + 4, v))
for i in range(5):
    s = xmax * i / 4
    o.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (X(s), H - B + 16, s))
o.append('<text x="%d" y="%d" text-anchor="middle">step (each model\'s own steps; students share one token budget)</text>' % ((L + W - R) / 2, H - 6))
o.append('<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">loss (nats/token)</text>' % (H / 2, H / 2))
for k, (name, col, tr, va) in enumerate(runs):
    pts = " ".join("%.1f,%.1f" % (X(s), Y(v)) for s, v in tr if s > 5)
    o.append('<polyline fill="none" stroke="%s" stroke-opacity="0.25" points="%s"/>' % (col, pts))
    pts = " ".join("%.1f,%.1f" % (X(s), Y(v)) for s, v in va)
    o.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (col, pts))
    for s, v in va:
        o.append('<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>' % (X(s), Y(v), col))
    last = "%.3f" % va[-1][1] if va else ""
    o.append('<text x="%d" y="%d" fill="%s">%s %s</text>' % (W - R + 10, T + 18 * k + 10, col, name, last))
o.append('<text x="%d" y="%d" fill="#666">solid: validation loss</text>' % (W - R + 10, T + 18 * len(runs) + 20))
o.append('<text x="%d" y="%d" fill="#666">faint: training objective</text>' % (W - R + 10, T + 18 * len(runs) + 36))
o.append("</svg>")
open(out, "w").write("\n".join(o) + "\n")
