#!/bin/bash
# Real Xen 4.17 (Debian 12, Linux 6.1), by hand: the io_uring fixed-buffer
# probe of uring-gnt.sh on the older kernel, where io_pin_pages() refuses
# file-backed mappings other than shmem/hugetlbfs (tests/xen/README.md).
XEN_TIER=4.17
source "$top_srcdir/tests/xen/uring-gnt.sh"
