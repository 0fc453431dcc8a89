/* reportmd.c: the report's tables as markdown (reporttable.h). */
#include "reporttable.h"

void report_md_table(FILE *out, int ncols, const char *const *head,
                     const char *const *cells, size_t nrows)
{
    for (size_t r = 0; r <= nrows; r++) {
        const char *const *row = r == 0 ? head : cells + (r - 1) * (size_t)ncols;
        fputc('|', out);
        for (int col = 0; col < ncols; col++) {
            const char *p = row[col] ? row[col] : "-";
            if (*p)
                fputc(' ', out);
            for (; *p; p++)
                fputc(*p == '|' ? '/' : *p == '\n' || *p == '\r' ? ' ' : *p, out);
            fputs(" |", out);
        }
        fputc('\n', out);
        if (r == 0) {
            fputc('|', out);
            for (int col = 0; col < ncols; col++)
                fputs("---|", out);
            fputc('\n', out);
        }
    }
}
