/*
 * test-linux-flag.c - xbd_parse_linux_flag(): a frontend's feature flag
 * read the way Linux blkback reads it (xenbus_read_unsigned(..., 0), i.e.
 * sscanf "%u" into an unsigned int, 0 when nothing converts).
 */
#include "config.h"

#include <stdbool.h>

#include "check.h"
#include "xenblkd/xenbus.h"

int main(void)
{
    static const struct { const char *s; bool want; } cases[] = {
        { "1", true }, { "0", false }, { "2", true }, { "255", true },
        { "4294967295", true },
        { "4294967296", false },        /* wraps to 0 as an unsigned int */
        { "4294967297", true },
        { "99999999999999999999999", true },
        { "", false }, { "garbage", false }, { "yes", false }, { "true", false },
        { "-1", false }, { "+1", false },    /* %u takes no sign in the kernel */
        { " 7", true }, { "\t\n3", true }, { "9x", true }, { "0x10", false },
        { "00", false }, { "01", true }, { " ", false },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = xbd_parse_linux_flag(cases[i].s);
        if (got != cases[i].want)
            fprintf(stderr, "'%s': got %d, want %d\n", cases[i].s, got, cases[i].want);
        CHECK(got == cases[i].want);
    }
    return check_result("test-linux-flag");
}
