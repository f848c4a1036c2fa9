# tests/harness: the simulated Xen host every shell test runs on
# (see tests/harness/README.md).  Build fragment included by Makefile.am.

# LD_PRELOAD shims.  They are loaded into Debian's xenstored and QEMU,
# which are not built with ASan, so they are built without
# $(SANITIZER_CFLAGS) (per-target flags replace AM_CFLAGS/AM_LDFLAGS), and
# linked as shared objects by hand (no libtool in this project).
check_PROGRAMS += tests/harness/xsim-xenstored-shim.so
tests_harness_xsim_xenstored_shim_so_SOURCES = tests/harness/xenstored-shim.c
tests_harness_xsim_xenstored_shim_so_CFLAGS = -std=gnu11 -fPIC $(WARN_CFLAGS)
tests_harness_xsim_xenstored_shim_so_LDFLAGS = -shared -fPIC
tests_harness_xsim_xenstored_shim_so_LDADD = -ldl

# Transactional xenstore batch writer used by env.sh (xsim_add_disk ...).
check_PROGRAMS += tests/harness/xsim-xs
tests_harness_xsim_xs_SOURCES = tests/harness/xsim-xs.c
tests_harness_xsim_xs_CFLAGS = $(AM_CFLAGS) $(XENSTORE_CFLAGS)
tests_harness_xsim_xs_LDADD = $(XENSTORE_LIBS)

# The shell library and helpers sourced/run by tests.
EXTRA_DIST += tests/harness/env.sh tests/harness/shell.sh tests/harness/README.md

TESTS += tests/harness/test-xenstored.sh tests/harness/test-env.sh tests/harness/test-qemu-qdisk.sh tests/harness/test-cleanup.sh tests/harness/test-cleanup-signal.sh tests/harness/test-cleanup-daemon.sh
dist_check_SCRIPTS += tests/harness/test-xenstored.sh tests/harness/test-env.sh tests/harness/test-qemu-qdisk.sh tests/harness/test-cleanup.sh tests/harness/test-cleanup-signal.sh tests/harness/test-cleanup-daemon.sh

check_PROGRAMS += tests/harness/xsim-qemu-shim.so
tests_harness_xsim_qemu_shim_so_SOURCES = tests/harness/qemu-shim.c
tests_harness_xsim_qemu_shim_so_CFLAGS = -std=gnu11 -fPIC $(WARN_CFLAGS)
tests_harness_xsim_qemu_shim_so_LDFLAGS = -shared -fPIC
