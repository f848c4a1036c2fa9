/*
 * notify-listen - stand in for systemd's notify socket: bind a datagram
 * socket at PATH and append every datagram received to OUT (one per
 * line group), until SIGTERM.
 *   notify-listen PATH OUT
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char buf[4096];
    int fd;

    if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "usage: notify-listen PATH OUT\n");
        return 2;
    }
    strcpy(sa.sun_path, argv[1]);
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("notify-listen");
        return 1;
    }
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
            continue;
        buf[n] = '\0';
        FILE *f = fopen(argv[2], "a");
        if (!f) {
            perror(argv[2]);
            return 1;
        }
        fprintf(f, "%s\n", buf);
        fclose(f);
    }
}
