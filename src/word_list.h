/*
 * word_list.h - "a, b, c" lists built into a fixed buffer: the busy
 * reasons of the settle reply (settle.c) and of xenblkctl list's busy
 * lines (xenblkctl_stats.c) are the same shape in both programs.
 */
#ifndef XENBLKD_WORD_LIST_H
#define XENBLKD_WORD_LIST_H

#include <stddef.h>

/* Append ", " (unless first) and the formatted word to buf[0..n), from
 * *off (0 for an empty list); stops at its end, always terminated. */
void xbd_add_word(char *buf, size_t n, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
