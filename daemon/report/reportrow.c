/* reportrow.c: a report row's epochs, the figures drawn from them and the
 * cells both report programs print alike (reporttable.h). */
#include "reporttable.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MB 1e6

void report_row_init(struct report_row *r)
{
    memset(r, 0, sizeof *r);
    r->paper_error_pct = NAN;
}

void report_row_deinit(struct report_row *r)
{
    free(r->ep);
    r->ep = NULL;
    r->n_epochs = 0;
}

int report_row_add_epoch(struct report_row *r, const struct report_epoch *e)
{
    struct report_epoch *p = realloc(r->ep, (size_t)(r->n_epochs + 1) * sizeof *p);
    if (!p)
        return -1;
    r->ep = p;
    r->ep[r->n_epochs++] = *e;
    return 0;
}

double report_error_pct(const struct report_epoch *e)
{
    return 100.0 * (1.0 - e->test_accuracy);
}

int report_best_epoch(const struct report_row *r)
{
    int b = -1;
    for (int k = 0; k < r->n_epochs; k++)
        if (b < 0 || r->ep[k].test_accuracy > r->ep[b].test_accuracy)
            b = k;
    return b;
}

double report_mean_seconds(const struct report_row *r)
{
    double s = 0;
    for (int k = 0; k < r->n_epochs; k++)
        s += r->ep[k].seconds;
    return r->n_epochs ? s / r->n_epochs : NAN;
}

int report_max_epochs(const struct report_row *const *rows, size_t n)
{
    int m = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i]->n_epochs > m)
            m = rows[i]->n_epochs;
    return m;
}

const char *report_mb(char *buf, size_t len, double bytes)
{
    double v = bytes / MB;
    snprintf(buf, len, v >= 100 ? "%.1f" : v >= 0.995 ? "%.2f" : "%.3f", v);
    return buf;
}

const char *report_mb3(char *buf, size_t len, double a, double b, double c)
{
    snprintf(buf, len, "%.2f / %.2f / %.2f", a / MB, b / MB, c / MB);
    return buf;
}

const char *report_curve_cell(char *buf, size_t len, const struct report_row *r, int k)
{
    if (k < r->n_epochs)
        snprintf(buf, len, "%.2f", report_error_pct(&r->ep[k]));
    else if (len)
        buf[0] = '\0';
    return buf;
}
