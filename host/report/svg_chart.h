/* SVG charts for the report, drawn from the run's numbers: line charts
 * (loss, learning rate, views/s, data stall, evaluation metrics) and a
 * scatter plot coloured by class (the embedding map). Static SVG, no
 * script: every <polyline> / scatter <g> carries data-n, the number of
 * points it draws, so a test can check a chart against its data; the
 * <svg> carries data-marks, the number of markers drawn. */
#ifndef CONTRAST_HOST_REPORT_SVG_CHART_H
#define CONTRAST_HOST_REPORT_SVG_CHART_H

#include <stdbool.h>
#include <stdint.h>

#include "report/text_buf.h"

#define CT_CHART_MAX_SERIES 12
/* Longer series are drawn as this many bucket means. */
#define CT_CHART_MAX_POINTS 1200

typedef struct ct_chart_series {
    const char *label;
    const double *x, *y; /* n values each; non-finite points are skipped */
    int64_t n;
    bool markers;        /* a dot per point (short series: evaluations) */
} ct_chart_series;

/* A vertical marker at x: an event on the x axis (a watch warning, a
 * stop). Drawn as <g class='mark KIND' data-x='X'> holding a dashed line
 * and a <title> (the browser's tooltip) with the label. */
typedef struct ct_chart_mark {
    double x;
    const char *kind;  /* "watch" (orange) or "stop" (red): the CSS class */
    const char *label;
} ct_chart_mark;

typedef struct ct_chart {
    const char *title, *x_label, *y_label;
    bool log_y;          /* logarithmic y axis (positive values only) */
    int n_series;
    ct_chart_series s[CT_CHART_MAX_SERIES];
    const ct_chart_mark *marks; /* n_marks of them, may be NULL; the x range covers them */
    int64_t n_marks;
} ct_chart;

/* Append the line chart as an inline <svg> element. A chart without one
 * finite point says so in place of the plot. */
void ct_svg_line_chart(ct_text *out, const ct_chart *c);

/* Append a scatter plot of n points (x[i], y[i]) coloured by cls[i]
 * (0..classes-1; others grey), with a legend naming the classes. */
void ct_svg_scatter(ct_text *out, const char *title, const float *x, const float *y, const int32_t *cls,
                    int64_t n, int classes);

/* The colour of class / series k (a fixed palette of 10, then grey). */
const char *ct_chart_colour(int k);

#endif
