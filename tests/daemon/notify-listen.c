/*
 * notify-listen - stand in for systemd's notify socket.
 *
 *   notify-listen PATH OUT [CMD]
 *
 * Binds a datagram socket at PATH and appends every datagram received to
 * OUT: its KEY=VALUE lines, then a line "-- <usec>" with the listener's
 * CLOCK_MONOTONIC at receipt (to check MONOTONIC_USEC=) and the sender's
 * pid ("-- <usec> pid=<pid>").  With CMD, the first datagram carrying
 * READY=1 runs CMD (sh -c) before anything else is read: what CMD sees is
 * the state of the world when readiness was announced, give or take what
 * the sender did after sending.  Runs until killed.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static unsigned long long now_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
}

static int has_line(const char *buf, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = buf; p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (!strncmp(p, line, n) && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char buf[4096], cbuf[CMSG_SPACE(sizeof(struct ucred))];
    int fd, one = 1, ran = 0;

    if ((argc != 3 && argc != 4) || strlen(argv[1]) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "usage: notify-listen PATH OUT [CMD]\n");
        return 2;
    }
    strcpy(sa.sun_path, argv[1]);
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
        perror("notify-listen");
        return 1;
    }
    for (;;) {
        struct iovec iov = { buf, sizeof(buf) - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        long pid = -1;
        ssize_t n = recvmsg(fd, &mh, 0);

        if (n < 0)
            continue;
        unsigned long long t = now_usec();
        buf[n] = '\0';
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                struct ucred uc;
                memcpy(&uc, CMSG_DATA(c), sizeof(uc));
                pid = uc.pid;
            }
        }
        if (argc == 4 && !ran && has_line(buf, "READY=1")) {
            ran = 1;
            if (system(argv[3]) != 0)
                fprintf(stderr, "notify-listen: '%s' failed\n", argv[3]);
        }
        FILE *f = fopen(argv[2], "a");
        if (!f) {
            perror(argv[2]);
            return 1;
        }
        fprintf(f, "%s\n-- %llu pid=%ld\n", buf, t, pid);
        fclose(f);
    }
}
