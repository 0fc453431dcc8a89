/* htmlreport.c: `mtctl report --html FILE`: the compare table, the
 * report's summary table and the pictures (one inline SVG, so that cairo's
 * glyph and clip ids cannot clash between pictures) in one HTML page with
 * its style inside. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "compare.h"
#include "htmlreport.h"
#include "plot.h"

static const char page_style[] =
    "body{font-family:'DejaVu Sans',Arial,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 0.5em 0;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right;white-space:nowrap}"
    "th{background:#f0f0f0}td.l,th.l{text-align:left}"
    "pre{font-size:0.85em;color:#555}svg{max-width:100%;height:auto}";

/* s with &, <, > and " escaped. */
static void html_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*s, out);
        }
    }
}

/* t as an HTML table; a column t->right does not mark 'r' is left-aligned. */
static void html_table(FILE *out, const struct table *t)
{
    fputs("<table>\n<tr>", out);
    for (int c = 0; c < t->ncols; c++) {
        fputs(t->right && t->right[c] == 'r' ? "<th>" : "<th class=\"l\">", out);
        html_text(out, t->head[c]);
        fputs("</th>", out);
    }
    fputs("</tr>\n", out);
    for (size_t r = 0; r < t->nrows; r++) {
        fputs("<tr>", out);
        for (int c = 0; c < t->ncols; c++) {
            fputs(t->right && t->right[c] == 'r' ? "<td>" : "<td class=\"l\">", out);
            html_text(out, t->cells[r * (size_t)t->ncols + (size_t)c]);
            fputs("</td>", out);
        }
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);
}

static void html_note(FILE *out, const char *note)
{
    fputs("<pre>", out);
    html_text(out, note);
    fputs("</pre>\n", out);
}

static int write_page(FILE *out, const struct job_fig *f, size_t n, const struct table *summary,
                      const char *note, struct mt_err *err)
{
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %z", localtime(&now));
    fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                 "<title>memtrain: jobs side by side</title>\n<style>%s</style>\n</head>\n"
                 "<body>\n<h1>memtrain: jobs side by side</h1>\n<p>Jobs", page_style);
    for (size_t i = 0; i < n; i++)
        if (f[i].show)
            fprintf(out, " %llu", (unsigned long long)f[i].id);
    fprintf(out, "; written by mtctl report --html at %s.</p>\n", when);

    struct table t;
    compare_table(f, n, 0, &t);
    fputs("<h2>Accuracy against memory</h2>\n", out);
    html_table(out, &t);
    html_note(out, compare_note);
    int oom = t.oom;
    table_free(&t);

    fputs("<h2>The reproduction report's figures</h2>\n", out);
    html_table(out, summary);
    html_note(out, note);
    if (oom || summary->oom)
        return mt_err_set(err, MT_E_NOMEM, "out of memory formatting the tables");

    fputs("<h2>Pictures</h2>\n<figure>\n", out);
    struct plot_counts k;
    int rc = plot_write_svg(out, PLOT_ALL, f, n, &k, err);
    plot_release();
    if (rc)
        return rc;
    fputs("<figcaption>Top: test accuracy after each epoch. Middle: memory by category, the "
          "plan (P) beside the measured peaks (M). Bottom: best test accuracy against peak "
          "memory, the Pareto front filled and joined.</figcaption>\n</figure>\n"
          "</body>\n</html>\n", out);
    return 0;
}

int htmlreport_write(const char *path, const struct job_fig *f, size_t n,
                     const struct table *summary, const char *note, struct mt_err *err)
{
    FILE *out = fopen(path, "w");
    if (!out)
        return mt_err_set(err, MT_E_IO, "%s: %s", path, strerror(errno));
    int rc = write_page(out, f, n, summary, note, err);
    if (!rc && ferror(out))
        rc = mt_err_set(err, MT_E_IO, "%s: write error", path);
    if (fclose(out) != 0 && !rc)
        rc = mt_err_set(err, MT_E_IO, "%s: %s", path, strerror(errno));
    else if (rc && !strstr(err->msg, path)) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        mt_err_set(err, rc, "%s: %s", path, msg);
    }
    return rc;
}
