# tests/frontend: the reference blkfront (library + CLI), the test client of
# the whole suite.  See tests/frontend/README.md.

check_LIBRARIES += tests/frontend/libblkfront.a
tests_frontend_libblkfront_a_SOURCES = \
	tests/frontend/blkfront.h tests/frontend/bf_internal.h \
	tests/frontend/blkif_abi.h tests/frontend/blkif_abi.c \
	tests/frontend/blkfront.c tests/frontend/xenbus.c tests/frontend/ring.c \
	tests/frontend/workload.c tests/frontend/bench.c tests/frontend/stats.c
tests_frontend_libblkfront_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/sim $(XENSTORE_CFLAGS)

BLKFRONT_LDADD = tests/frontend/libblkfront.a tests/sim/libxensim_guest.a \
	$(XENSTORE_LIBS) -lpthread

check_PROGRAMS += tests/frontend/xsim-blkfront
tests_frontend_xsim_blkfront_SOURCES = tests/frontend/xsim-blkfront.c
tests_frontend_xsim_blkfront_CPPFLAGS = $(tests_frontend_libblkfront_a_CPPFLAGS)
tests_frontend_xsim_blkfront_LDADD = $(BLKFRONT_LDADD)

# Unit test of the three ring layouts (sizes and offsets on the wire).
check_PROGRAMS += tests/frontend/test-abi-layout
TESTS += tests/frontend/test-abi-layout
tests_frontend_test_abi_layout_SOURCES = tests/frontend/test-abi-layout.c
tests_frontend_test_abi_layout_CPPFLAGS = $(tests_frontend_libblkfront_a_CPPFLAGS)
tests_frontend_test_abi_layout_LDADD = $(BLKFRONT_LDADD)

TESTS += tests/frontend/test-cli-usage.sh
dist_check_SCRIPTS += tests/frontend/test-cli-usage.sh
EXTRA_DIST += tests/frontend/README.md

# Negotiation, key by key, against a scripted xenstore-only backend.
TESTS += tests/frontend/test-negotiate.sh
dist_check_SCRIPTS += tests/frontend/test-negotiate.sh tests/frontend/fake-backend.sh

# The data path end to end against xenblkd (skips if it is not built).
TESTS += tests/frontend/test-datapath.sh
dist_check_SCRIPTS += tests/frontend/test-datapath.sh

# A misbehaving backend (duplicate, reordered, wrong-op, bad-id responses,
# rsp_prod overflow, grants kept mapped) to prove the frontend notices.
check_PROGRAMS += tests/frontend/evil-backend
tests_frontend_evil_backend_SOURCES = tests/frontend/evil-backend.c
tests_frontend_evil_backend_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/frontend \
	$(XENSTORE_CFLAGS) $(XENGNTTAB_CFLAGS) $(XENEVTCHN_CFLAGS)
tests_frontend_evil_backend_LDADD = $(XENSTORE_LIBS) $(XENGNTTAB_LIBS) $(XENEVTCHN_LIBS)
TESTS += tests/frontend/test-bad-backend.sh
dist_check_SCRIPTS += tests/frontend/test-bad-backend.sh
