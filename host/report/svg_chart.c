/* The report's SVG charts (see svg_chart.h). */
#include "report/svg_chart.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define W 640
#define H 280
#define ML 64 /* margins: left, right, top, bottom */
#define MR 16
#define MT 30
#define MB 58

const char *ct_chart_colour(int k) {
    static const char *const pal[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    return k >= 0 && k < 10 ? pal[k] : "#999999";
}

typedef struct range {
    double lo, hi;
} range;

static bool usable(double v, bool log_y) { return isfinite(v) && (!log_y || v > 0); }

/* The data range of every series' finite values. */
static bool data_range(const ct_chart *c, range *x, range *y) {
    bool any = false;
    for (int s = 0; s < c->n_series; s++)
        for (int64_t i = 0; i < c->s[s].n; i++) {
            double a = c->s[s].x[i], b = c->s[s].y[i];
            if (!isfinite(a) || !usable(b, c->log_y)) continue;
            if (c->log_y) b = log10(b);
            if (!any) *x = (range){a, a}, *y = (range){b, b};
            x->lo = fmin(x->lo, a), x->hi = fmax(x->hi, a);
            y->lo = fmin(y->lo, b), y->hi = fmax(y->hi, b);
            any = true;
        }
    if (!any) return false;
    for (int64_t i = 0; i < c->n_marks; i++)
        if (isfinite(c->marks[i].x)) x->lo = fmin(x->lo, c->marks[i].x), x->hi = fmax(x->hi, c->marks[i].x);
    if (x->hi == x->lo) x->lo -= 0.5, x->hi += 0.5;
    double pad = y->hi > y->lo ? 0.05 * (y->hi - y->lo) : fmax(fabs(y->hi) * 0.05, 0.5);
    y->lo -= pad, y->hi += pad;
    return true;
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about 5 ticks. */
static double tick_step(double span) {
    double raw = span / 5, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static double px(const range *r, double v) { return ML + (v - r->lo) / (r->hi - r->lo) * (W - ML - MR); }
static double py(const range *r, double v) { return H - MB - (v - r->lo) / (r->hi - r->lo) * (H - MT - MB); }

static void axes(ct_text *o, const ct_chart *c, const range *x, const range *y) {
    ct_text_printf(o, "<rect x='%d' y='%d' width='%d' height='%d' fill='#fff' stroke='#bbb'/>", ML, MT, W - ML - MR,
                   H - MT - MB);
    double sx = tick_step(x->hi - x->lo);
    for (double v = ceil(x->lo / sx) * sx; v <= x->hi + 1e-9 * sx; v += sx)
        ct_text_printf(o, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#eee'/><text x='%.1f' y='%d' "
                       "text-anchor='middle' class='tick'>%g</text>",
                       px(x, v), MT, px(x, v), H - MB, px(x, v), H - MB + 14, fabs(v) < 1e-12 * sx ? 0 : v);
    double sy = tick_step(y->hi - y->lo);
    for (double v = ceil(y->lo / sy) * sy; v <= y->hi + 1e-9 * sy; v += sy) {
        double shown = c->log_y ? pow(10, v) : (fabs(v) < 1e-12 * sy ? 0 : v);
        ct_text_printf(o, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#eee'/><text x='%d' y='%.1f' "
                       "text-anchor='end' class='tick'>%.4g</text>",
                       ML, py(y, v), W - MR, py(y, v), ML - 4, py(y, v) + 4, shown);
    }
    ct_text_printf(o, "<text x='%d' y='%d' text-anchor='middle' class='label'>", (ML + W - MR) / 2, H - MB + 30);
    ct_text_html(o, c->x_label ? c->x_label : "");
    ct_text_printf(o, "</text><text x='14' y='%d' text-anchor='middle' class='label' transform='rotate(-90 14 %d)'>",
                   (MT + H - MB) / 2, (MT + H - MB) / 2);
    ct_text_html(o, c->y_label ? c->y_label : "");
    ct_text_printf(o, "</text>");
}

/* One series: bucket means when longer than CT_CHART_MAX_POINTS. */
static void series(ct_text *o, const ct_chart *c, int s, const range *x, const range *y) {
    const ct_chart_series *se = &c->s[s];
    int64_t bucket = (se->n + CT_CHART_MAX_POINTS - 1) / CT_CHART_MAX_POINTS, drawn = 0;
    if (bucket < 1) bucket = 1;
    ct_text pts = {0};
    for (int64_t i = 0; i < se->n; i += bucket) {
        double sx = 0, sy = 0;
        int k = 0;
        for (int64_t j = i; j < i + bucket && j < se->n; j++)
            if (isfinite(se->x[j]) && usable(se->y[j], c->log_y)) {
                sx += se->x[j];
                sy += c->log_y ? log10(se->y[j]) : se->y[j];
                k++;
            }
        if (!k) continue;
        ct_text_printf(&pts, "%s%.1f,%.1f", drawn ? " " : "", px(x, sx / k), py(y, sy / k));
        drawn++;
    }
    const char *col = ct_chart_colour(s);
    ct_text_printf(o, "<polyline class='series' data-n='%lld' data-bucket='%lld' data-label='", (long long)drawn,
                   (long long)bucket);
    ct_text_html(o, se->label ? se->label : "");
    ct_text_printf(o, "' fill='none' stroke='%s' stroke-width='1.5' points='%s'/>", col, pts.buf ? pts.buf : "");
    if (se->markers && pts.buf) {
        /* Dots at the same coordinates (the points string is "x,y x,y"). */
        char *save = NULL;
        for (char *p = strtok_r(pts.buf, " ", &save); p; p = strtok_r(NULL, " ", &save)) {
            double a, b;
            if (sscanf(p, "%lf,%lf", &a, &b) == 2)
                ct_text_printf(o, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>", a, b, col);
        }
    }
    ct_text_free(&pts);
}

static void legend(ct_text *o, const ct_chart *c) {
    double at = ML;
    for (int s = 0; s < c->n_series; s++) {
        ct_text_printf(o, "<rect x='%.0f' y='%d' width='10' height='10' fill='%s'/><text x='%.0f' y='%d' class='tick'>",
                       at, H - 16, ct_chart_colour(s), at + 14, H - 7);
        ct_text_html(o, c->s[s].label ? c->s[s].label : "");
        ct_text_printf(o, "</text>");
        at += 24 + 6.5 * (double)strlen(c->s[s].label ? c->s[s].label : "");
    }
}

/* The event markers under the series: a dashed vertical line each, its
 * label as the tooltip. */
static void marks(ct_text *o, const ct_chart *c, const range *x) {
    for (int64_t i = 0; i < c->n_marks; i++) {
        const ct_chart_mark *k = &c->marks[i];
        if (!isfinite(k->x)) continue;
        bool stop = k->kind && strcmp(k->kind, "stop") == 0;
        ct_text_printf(o, "<g class='mark %s' data-x='%g'><line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='%s' "
                       "stroke-width='%s' stroke-dasharray='4 3'/><title>", stop ? "stop" : "watch", k->x, px(x, k->x),
                       MT, px(x, k->x), H - MB, stop ? "#c00" : "#e08a00", stop ? "2" : "1");
        ct_text_html(o, k->label ? k->label : "");
        ct_text_printf(o, "</title></g>");
    }
}

static int64_t finite_marks(const ct_chart *c) {
    int64_t n = 0;
    for (int64_t i = 0; i < c->n_marks; i++) n += isfinite(c->marks[i].x);
    return n;
}

void ct_svg_line_chart(ct_text *o, const ct_chart *c) {
    range x, y;
    bool any = data_range(c, &x, &y);
    ct_text_printf(o, "<svg class='chart' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 %d %d' width='%d' "
                   "height='%d' data-series='%d' data-marks='%lld'><text x='%d' y='18' class='title'>", W, H, W, H,
                   c->n_series, any ? (long long)finite_marks(c) : 0LL, ML);
    ct_text_html(o, c->title ? c->title : "");
    ct_text_printf(o, "</text>");
    if (!any) {
        ct_text_printf(o, "<text x='%d' y='%d' class='label'>no data points</text></svg>", ML, H / 2);
        return;
    }
    axes(o, c, &x, &y);
    marks(o, c, &x);
    for (int s = 0; s < c->n_series; s++) series(o, c, s, &x, &y);
    legend(o, c);
    ct_text_printf(o, "</svg>");
}

void ct_svg_scatter(ct_text *o, const char *title, const float *xs, const float *ys, const int32_t *cls, int64_t n,
                    int classes) {
    range x = {0, 0}, y = {0, 0};
    bool any = false;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(xs[i]) || !isfinite(ys[i])) continue;
        if (!any) x = (range){xs[i], xs[i]}, y = (range){ys[i], ys[i]};
        x.lo = fmin(x.lo, xs[i]), x.hi = fmax(x.hi, xs[i]);
        y.lo = fmin(y.lo, ys[i]), y.hi = fmax(y.hi, ys[i]);
        any = true;
    }
    const int S = 480;
    ct_text_printf(o, "<svg class='chart scatter' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 %d %d' width='%d' "
                   "height='%d'><text x='8' y='18' class='title'>", S + 110, S, S + 110, S);
    ct_text_html(o, title);
    ct_text_printf(o, "</text>");
    if (!any) {
        ct_text_printf(o, "<text x='20' y='%d' class='label'>no data points</text></svg>", S / 2);
        return;
    }
    double span = fmax(x.hi - x.lo, y.hi - y.lo), cx = (x.hi + x.lo) / 2, cy = (y.hi + y.lo) / 2;
    if (span <= 0) span = 1;
    int64_t drawn = 0;
    ct_text body = {0};
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(xs[i]) || !isfinite(ys[i])) continue;
        double a = 20 + (xs[i] - cx + span / 2) / span * (S - 40), b = S - 20 - (ys[i] - cy + span / 2) / span * (S - 50);
        ct_text_printf(&body, "<circle cx='%.1f' cy='%.1f' r='2.2' fill='%s'/>", a, b,
                       ct_chart_colour(cls && cls[i] < classes ? cls[i] : -1));
        drawn++;
    }
    ct_text_printf(o, "<rect x='10' y='26' width='%d' height='%d' fill='#fff' stroke='#bbb'/>", S - 20, S - 36);
    ct_text_printf(o, "<g class='points' data-n='%lld' fill-opacity='0.75'>%s</g>", (long long)drawn,
                   body.buf ? body.buf : "");
    ct_text_free(&body);
    for (int k = 0; k < classes && k < 10; k++)
        ct_text_printf(o, "<rect x='%d' y='%d' width='10' height='10' fill='%s'/><text x='%d' y='%d' class='tick'>class "
                       "%d</text>", S, 40 + 18 * k, ct_chart_colour(k), S + 14, 49 + 18 * k, k);
    ct_text_printf(o, "</svg>");
}
