/*
 * uring-probe.c - system calls per 4 KiB O_DIRECT random read at QD 1, in
 * an epoll loop like xenblkd's: libaio + eventfd (completions reaped from
 * the aio ring in user space, as src/aio_reap.c does) vs io_uring with its
 * fd in epoll (CQEs reaped in user space) vs io_uring submit-and-wait (the
 * loop blocks in io_uring itself).  The measurement behind the io_uring
 * figures of tests/bench/README.md; not built by make (it needs
 * liburing-dev, which xenblkd does not use):
 *   gcc -O2 -o uring-probe uring-probe.c -laio -luring
 *   strace -c -f ./uring-probe aio|uring|uring-wait FILE COUNT
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <libaio.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct aio_ring_hdr { unsigned id, nr, head, tail, magic, compat, incompat, hlen; struct io_event ev[]; };

static int reap_aio(io_context_t ctx)
{
    struct aio_ring_hdr *r = (void *)ctx;
    int n = 0;
    while (__atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) != r->head) {
        r->head = (r->head + 1) % r->nr; n++;
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *mode = argv[1], *path = argv[2];
    long n = atol(argv[3]), size;
    int fd = open(path, O_RDONLY | O_DIRECT), ep = epoll_create1(0);
    void *buf;
    struct epoll_event e = { .events = EPOLLIN }, out;
    unsigned long long seed = 88172645463325252ull;

    size = lseek(fd, 0, SEEK_END) / 4096;
    posix_memalign(&buf, 4096, 4096);
    if (!strcmp(mode, "aio")) {
        io_context_t ctx = 0; int efd = eventfd(0, EFD_NONBLOCK); uint64_t v;
        io_setup(128, &ctx); epoll_ctl(ep, EPOLL_CTL_ADD, efd, &e);
        for (long i = 0; i < n; i++) {
            struct iocb cb, *p = &cb; seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            io_prep_pread(&cb, fd, buf, 4096, (seed % size) * 4096); io_set_eventfd(&cb, efd);
            io_submit(ctx, 1, &p);
            int got = 0;
            while (!got) { epoll_wait(ep, &out, 1, -1); read(efd, &v, 8); got = reap_aio(ctx); }
        }
    } else {
        struct io_uring ring; struct io_uring_cqe *cqe; bool wait = !strcmp(mode, "uring-wait");
        io_uring_queue_init(128, &ring, 0);
        e.data.fd = ring.ring_fd; epoll_ctl(ep, EPOLL_CTL_ADD, ring.ring_fd, &e);
        for (long i = 0; i < n; i++) {
            struct io_uring_sqe *s = io_uring_get_sqe(&ring); seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            io_uring_prep_read(s, fd, buf, 4096, (seed % size) * 4096);
            if (wait) { io_uring_submit_and_wait(&ring, 1); }
            else { io_uring_submit(&ring); }
            for (;;) {
                if (io_uring_peek_cqe(&ring, &cqe) == 0) { io_uring_cqe_seen(&ring, cqe); break; }
                epoll_wait(ep, &out, 1, -1);
            }
        }
    }
    printf("%s: %ld reads\n", mode, n);
    return 0;
}
