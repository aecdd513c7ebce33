/* plot.h - the loss plot of `gemma2 train`: an SVG drawn from the run's CSV log. */
#ifndef G2_TRAIN_PLOT_H
#define G2_TRAIN_PLOT_H

/* Reads CSV (step,lr,train_loss,val_loss,...) and writes an SVG with the train and validation
 * loss curves (atomically). Returns 0 on success. */
int g2_train_plot_svg(const char *csv_path, const char *svg_path);

#endif
