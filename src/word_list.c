/*
 * word_list.c - comma-separated word lists (see word_list.h).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "word_list.h"

void xbd_add_word(char *buf, size_t n, size_t *off, const char *fmt, ...)
{
    va_list ap;
    int r;

    if (*off && *off + 2 < n) {
        memcpy(buf + *off, ", ", 3);
        *off += 2;
    }
    va_start(ap, fmt);
    r = vsnprintf(buf + *off, n - *off, fmt, ap);
    va_end(ap);
    if (r > 0)
        *off = (size_t)r < n - *off ? *off + (size_t)r : n - 1;
}
