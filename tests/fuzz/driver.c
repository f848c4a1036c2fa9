/*
 * driver.c - a main() for the fuzz harnesses when they are built by the
 * normal compiler (make check): replay inputs through
 * LLVMFuzzerTestOneInput.  A harness that no longer builds, crashes on
 * a seed or on a former crash's input (tests/fuzz/regress) fails make
 * check without clang.
 *
 * Arguments: files or directories (every regular file in them).  Without
 * arguments: $top_srcdir/tests/fuzz/corpus/NAME and
 * $top_srcdir/tests/fuzz/regress/NAME, NAME being the program's name
 * without "fuzz-" (fuzz-request: request); the corpus must not be empty.
 */
#include "config.h"

#include <dirent.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;

    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (cap - len < 4096) {
            uint8_t *n = realloc(buf, cap ? 2 * cap : 65536);
            if (!n)
                abort();
            buf = n;
            cap = cap ? 2 * cap : 65536;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        if (!got)
            break;
        len += got;
    }
    fclose(f);
    /* An exact-size copy, as libFuzzer passes it: ASan then sees a read
     * one past the input. */
    uint8_t *data = malloc(len ? len : 1);
    if (!data)
        abort();
    memcpy(data, buf, len);
    free(buf);
    /* Named first: if it crashes, the log says which input did. */
    fprintf(stderr, "replaying %s (%zu bytes)\n", path, len);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

/* Replay path (a file, or the files of a directory); the count, or -1. */
static long replay(const char *path, int missing_ok)
{
    struct stat st;
    struct dirent **ents;
    long n = 0;
    int k;

    if (stat(path, &st) < 0) {
        if (missing_ok && errno == ENOENT)
            return 0;
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path) < 0 ? -1 : 1;
    k = scandir(path, &ents, NULL, alphasort);
    if (k < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < k; i++) {
        char p[4096];

        snprintf(p, sizeof(p), "%s/%s", path, ents[i]->d_name);
        if (ents[i]->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            if (n >= 0 && replay_file(p) == 0)
                n++;
            else
                n = -1;
        }
        free(ents[i]);
    }
    free(ents);
    return n;
}

int main(int argc, char **argv)
{
    long total = 0;

    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            long n = replay(argv[i], 0);
            if (n < 0)
                return 1;
            total += n;
        }
    } else {
        const char *top = getenv("top_srcdir");
        const char *name = strrchr(argv[0], '/');
        char corpus[4096], regress[4096];
        long c, r;

        name = name ? name + 1 : argv[0];
        if (!strncmp(name, "fuzz-", 5))
            name += 5;

        if (!top)
            top = XBD_FUZZ_SRCDIR;
        snprintf(corpus, sizeof(corpus), "%s/tests/fuzz/corpus/%s", top, name);
        snprintf(regress, sizeof(regress), "%s/tests/fuzz/regress/%s", top, name);
        c = replay(corpus, 0);
        r = replay(regress, 1);
        if (c < 0 || r < 0)
            return 1;
        if (c == 0) {
            fprintf(stderr, "%s: no seed inputs\n", corpus);
            return 1;
        }
        printf("%s: %ld seed and %ld regression inputs replayed\n", name, c, r);
        total = c + r;
    }
    printf("%ld inputs replayed, no crash\n", total);
    return 0;
}
