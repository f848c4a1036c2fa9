/* engine-test.c - what the I/O engine's unit tests share (engine-test.h). */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine-test.h"

void op_done(struct xbd_aio *a, long res)
{
    struct op *o = (struct op *)a;

    o->res = res;
    o->calls++;
}

void wake_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

int sh(const char *tmpl, const char *arg, char *out, size_t outlen)
{
    char cmd[1024];
    size_t n = 0, alen = strlen(arg);
    FILE *f;

    for (const char *p = tmpl; *p && n + alen + 1 < sizeof(cmd); p++) {
        if (*p == '@') {
            memcpy(cmd + n, arg, alen);
            n += alen;
        } else {
            cmd[n++] = *p;
        }
    }
    cmd[n] = '\0';
    if (!out)
        return system(cmd);
    f = popen(cmd, "r");
    if (!f)
        return -1;
    if (!fgets(out, (int)outlen, f))
        out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    return pclose(f);
}

int held_fs_setup(char *dir, int *held, int *mnt, int *plain)
{
    char path[256];

    *held = *mnt = *plain = -1;
    if (geteuid() != 0 || !mkdtemp(dir))
        return 77;
    if (sh("truncate -s 64M @/img && mkfs.ext4 -q -F @/img && mkdir @/mnt", dir, NULL, 0) ||
        sh("mount -o loop @/img @/mnt", dir, NULL, 0)) {
        sh("rm -rf @", dir, NULL, 0);
        return 77;
    }
    snprintf(path, sizeof(path), "%s/mnt/held", dir);
    *held = open(path, O_RDWR | O_CREAT, 0600);
    snprintf(path, sizeof(path), "%s/mnt", dir);
    *mnt = open(path, O_RDONLY | O_DIRECTORY);
    snprintf(path, sizeof(path), "%s/plain", dir);
    *plain = open(path, O_RDWR | O_CREAT, 0600);
    if (*held >= 0 && ftruncate(*held, 1 << 30) < 0) {
        close(*held);
        *held = -1;
    }
    if (*plain >= 0 && ftruncate(*plain, 1 << 20) < 0) {
        close(*plain);
        *plain = -1;
    }
    return 0;
}

void held_fs_done(const char *dir)
{
    sh("umount @/mnt", dir, NULL, 0);
    sh("rm -rf @", dir, NULL, 0);
}
