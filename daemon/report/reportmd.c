/* reportmd.c: the report's tables as markdown (reporttable.h). */
#include "reporttable.h"

void report_md_row(FILE *out, int ncols, const char *const *cells)
{
    fputc('|', out);
    for (int col = 0; col < ncols; col++) {
        const char *p = cells[col] ? cells[col] : "-";
        if (*p)
            fputc(' ', out);
        for (; *p; p++)
            fputc(*p == '|' ? '/' : *p == '\n' || *p == '\r' ? ' ' : *p, out);
        fputs(" |", out);
    }
    fputc('\n', out);
}

void report_md_head(FILE *out, int ncols, const char *const *head)
{
    report_md_row(out, ncols, head);
    fputc('|', out);
    for (int col = 0; col < ncols; col++)
        fputs("---|", out);
    fputc('\n', out);
}

void report_md_table(FILE *out, int ncols, const char *const *head,
                     const char *const *cells, size_t nrows)
{
    report_md_head(out, ncols, head);
    for (size_t r = 0; r < nrows; r++)
        report_md_row(out, ncols, cells + r * (size_t)ncols);
}
