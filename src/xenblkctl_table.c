/*
 * xenblkctl_table.c - aligned text columns for people.
 *
 * Rows are collected first so that every column is as wide as its widest
 * cell; numbers are right-aligned, text left-aligned, two spaces between
 * columns, no trailing blanks (scripts can split on whitespace).
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "xenblkctl.h"

struct xbc_table {
    unsigned ncols;
    bool *right;
    size_t *width;
    char **cells;              /* nrows * ncols, row-major */
    size_t nrows, cap;
};

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);

    if (!p)
        abort();
    return p;
}

struct xbc_table *xbc_table_new(unsigned ncols, const bool *right)
{
    struct xbc_table *t = xmalloc(sizeof(*t));

    t->ncols = ncols;
    t->right = xmalloc(ncols * sizeof(bool));
    t->width = xmalloc(ncols * sizeof(size_t));
    if (right)
        memcpy(t->right, right, ncols * sizeof(bool));
    return t;
}

void xbc_table_row(struct xbc_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = realloc(t->cells, t->cap * t->ncols * sizeof(char *));
        if (!t->cells)
            abort();
    }
    for (unsigned i = 0; i < t->ncols; i++) {
        char *c = strdup(cells[i] ? cells[i] : "");
        size_t w;

        if (!c)
            abort();
        t->cells[t->nrows * t->ncols + i] = c;
        w = strlen(c);
        if (w > t->width[i])
            t->width[i] = w;
    }
    t->nrows++;
}

void xbc_table_rowf(struct xbc_table *t, ...)
{
    const char **cells = xmalloc(t->ncols * sizeof(char *));
    va_list ap;

    va_start(ap, t);
    for (unsigned i = 0; i < t->ncols; i++)
        cells[i] = va_arg(ap, const char *);
    va_end(ap);
    xbc_table_row(t, cells);
    free(cells);
}

void xbc_table_print(struct xbc_table *t, FILE *f)
{
    for (size_t r = 0; r < t->nrows; r++) {
        for (unsigned i = 0; i < t->ncols; i++) {
            const char *c = t->cells[r * t->ncols + i];
            bool last = i + 1 == t->ncols;
            int w = (int)t->width[i];

            if (i > 0)
                fputs("  ", f);
            if (t->right[i])
                fprintf(f, "%*s", w, c);
            else if (last)
                fputs(c, f);
            else
                fprintf(f, "%-*s", w, c);
            free(t->cells[r * t->ncols + i]);
        }
        fputc('\n', f);
    }
    free(t->cells);
    free(t->width);
    free(t->right);
    free(t);
}
