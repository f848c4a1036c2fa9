# tests/unit: data plane unit tests.  The C programs link src/libxenblkd.a
# (the daemon's own objects).  test-ring re-executes itself on the
# simulated libxengnttab/libxenevtchn ($top_builddir/tests/sim/lib) inside
# a private XENSIM_DIR it creates and removes.
XBD_UNIT_CFLAGS = $(AM_CFLAGS) -I$(top_srcdir) -I$(top_srcdir)/src -I$(top_srcdir)/tests/unit \
	$(XENGNTTAB_CFLAGS) $(XENEVTCHN_CFLAGS)
XBD_UNIT_LIBS = src/libxenblkd.a $(XENGNTTAB_LIBS) $(XENEVTCHN_LIBS) \
	$(XENSTORE_LIBS) $(AIO_LIBS) $(EV_LIBS)

check_PROGRAMS += tests/unit/test-request
tests_unit_test_request_SOURCES = tests/unit/test-request.c tests/unit/check.h
tests_unit_test_request_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_request_LDADD = $(XBD_UNIT_LIBS)
TESTS += tests/unit/test-request

# A frontend's feature flags parsed as Linux blkback parses them.
check_PROGRAMS += tests/unit/test-linux-flag
tests_unit_test_linux_flag_SOURCES = tests/unit/test-linux-flag.c tests/unit/check.h
tests_unit_test_linux_flag_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_linux_flag_LDADD = $(XBD_UNIT_LIBS)
TESTS += tests/unit/test-linux-flag

# The terms a resumed device keeps (src/backing.c).
check_PROGRAMS += tests/unit/test-backing-terms
tests_unit_test_backing_terms_SOURCES = tests/unit/test-backing-terms.c tests/unit/check.h
tests_unit_test_backing_terms_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_backing_terms_LDADD = $(XBD_UNIT_LIBS)
TESTS += tests/unit/test-backing-terms

check_PROGRAMS += tests/unit/test-aio
tests_unit_test_aio_SOURCES = tests/unit/test-aio.c tests/unit/check.h
tests_unit_test_aio_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_aio_LDADD = $(XBD_UNIT_LIBS)
TESTS += tests/unit/test-aio

# The engine's kernel AIO contexts follow its devices (io_setup, io_submit
# and io_destroy counted by the test's own definitions).
check_PROGRAMS += tests/unit/test-aio-ctx
tests_unit_test_aio_ctx_SOURCES = tests/unit/test-aio-ctx.c tests/unit/check.h \
	tests/unit/engine-test.c tests/unit/engine-test.h
tests_unit_test_aio_ctx_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_aio_ctx_LDADD = $(XBD_UNIT_LIBS)
TESTS += tests/unit/test-aio-ctx

check_PROGRAMS += tests/unit/test-pool
tests_unit_test_pool_SOURCES = tests/unit/test-pool.c tests/unit/check.h
tests_unit_test_pool_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_pool_LDADD = $(XBD_UNIT_LIBS)
TESTS += tests/unit/test-pool

# Tests with a simulated guest in-process (tests/unit/fe.c re-executes
# them on the simulated libraries).
XBD_SIM_UNIT_LIBS = tests/sim/libxensim_guest.a $(XBD_UNIT_LIBS) -ldl
XBD_SIM_UNIT_DEPS = tests/sim/libxensim_guest.a src/libxenblkd.a \
	tests/sim/lib/libxengnttab.so.1 tests/sim/lib/libxenevtchn.so.1

check_PROGRAMS += tests/unit/test-ring
tests_unit_test_ring_SOURCES = tests/unit/test-ring.c tests/unit/fe.c \
	tests/unit/fe.h tests/unit/rig.c tests/unit/rig.h tests/unit/check.h
tests_unit_test_ring_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_ring_LDADD = $(XBD_SIM_UNIT_LIBS)
tests_unit_test_ring_LDFLAGS = $(AM_LDFLAGS) -pthread
tests_unit_test_ring_DEPENDENCIES = $(XBD_SIM_UNIT_DEPS)
TESTS += tests/unit/test-ring

# What a flush or barrier submits, in order (the fake I/O engine of
# tests/hostile shows each I/O before it is performed).
check_PROGRAMS += tests/unit/test-flush-order
tests_unit_test_flush_order_SOURCES = tests/unit/test-flush-order.c \
	tests/hostile/fake-io.c tests/hostile/fake-io.h \
	tests/unit/fe.c tests/unit/fe.h tests/unit/rig.c tests/unit/rig.h \
	tests/unit/check.h
tests_unit_test_flush_order_CFLAGS = $(XBD_HOSTILE_CFLAGS)
tests_unit_test_flush_order_LDADD = $(tests_hostile_test_ring_hostile_LDADD)
tests_unit_test_flush_order_LDFLAGS = $(AM_LDFLAGS) -pthread
tests_unit_test_flush_order_DEPENDENCIES = $(tests_hostile_test_ring_hostile_DEPENDENCIES)
TESTS += tests/unit/test-flush-order

check_PROGRAMS += tests/unit/test-gcache
tests_unit_test_gcache_SOURCES = tests/unit/test-gcache.c tests/unit/fe.c \
	tests/unit/fe.h tests/unit/check.h
tests_unit_test_gcache_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_gcache_LDADD = $(XBD_SIM_UNIT_LIBS)
tests_unit_test_gcache_LDFLAGS = $(AM_LDFLAGS) -pthread
tests_unit_test_gcache_DEPENDENCIES = $(XBD_SIM_UNIT_DEPS)
TESTS += tests/unit/test-gcache

# Linux blkfront's one pool of writable grants for data and list pages
# against the default cache: served from mappings alone in steady state.
check_PROGRAMS += tests/unit/test-blkfront-pool
tests_unit_test_blkfront_pool_SOURCES = tests/unit/test-blkfront-pool.c tests/unit/fe.c \
	tests/unit/fe.h tests/unit/rig.c tests/unit/rig.h tests/unit/check.h
tests_unit_test_blkfront_pool_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_blkfront_pool_LDADD = $(XBD_SIM_UNIT_LIBS)
tests_unit_test_blkfront_pool_LDFLAGS = $(AM_LDFLAGS) -pthread
tests_unit_test_blkfront_pool_DEPENDENCIES = $(XBD_SIM_UNIT_DEPS)
TESTS += tests/unit/test-blkfront-pool

# The data plane through the real daemon and the reference frontend.
XBD_UNIT_SH_TESTS = tests/unit/e2e-dataplane.sh
TESTS += $(XBD_UNIT_SH_TESTS)
dist_check_SCRIPTS += $(XBD_UNIT_SH_TESTS)

# Review: the worker pool held by two devices must not stall a third
# device's reads queued behind its own discard (root: loop mount, freeze).
check_PROGRAMS += tests/unit/test-pool-hol
tests_unit_test_pool_hol_SOURCES = tests/unit/test-pool-hol.c tests/unit/check.h \
	tests/unit/engine-test.c tests/unit/engine-test.h
tests_unit_test_pool_hol_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_pool_hol_LDADD = $(XBD_UNIT_LIBS)
TESTS += tests/unit/test-pool-hol

# Review 2026-12-08: 40 devices whose storage hangs with 2 pool jobs each;
# the pool grows to 64 and a healthy device's discards still complete
# (root: loop mount, freeze).
check_PROGRAMS += tests/unit/test-pool-share
tests_unit_test_pool_share_SOURCES = tests/unit/test-pool-share.c tests/unit/check.h \
	tests/unit/engine-test.c tests/unit/engine-test.h
tests_unit_test_pool_share_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_pool_share_LDADD = $(XBD_UNIT_LIBS)
TESTS += tests/unit/test-pool-share

# Issue 10: a write that would block inside io_submit() (a device out of
# request tags in front of frozen storage) goes to the worker pool with
# RWF_NOWAIT instead of stopping the loop (root: loop devices, freeze).
check_PROGRAMS += tests/unit/test-nowait
tests_unit_test_nowait_SOURCES = tests/unit/test-nowait.c tests/unit/check.h \
	tests/unit/engine-test.c tests/unit/engine-test.h
tests_unit_test_nowait_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_nowait_LDADD = $(XBD_UNIT_LIBS)
tests_unit_test_nowait_LDFLAGS = $(AM_LDFLAGS) -pthread
TESTS += tests/unit/test-nowait

# Review: a journal recovery refuses is left as it was found.
check_PROGRAMS += tests/unit/test-journal-recover
tests_unit_test_journal_recover_SOURCES = tests/unit/test-journal-recover.c tests/unit/check.h
tests_unit_test_journal_recover_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_journal_recover_LDADD = $(XBD_UNIT_LIBS)
TESTS += tests/unit/test-journal-recover

# The start-up sweeps of journals and NBD sockets when xenstore cannot say
# whether a device exists.
check_PROGRAMS += tests/unit/test-sweep
tests_unit_test_sweep_SOURCES = tests/unit/test-sweep.c tests/unit/check.h
tests_unit_test_sweep_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_sweep_LDADD = $(XBD_UNIT_LIBS)
TESTS += tests/unit/test-sweep

# Review: one guest with many disks cannot use up the host-wide log
# bucket for the others.
check_PROGRAMS += tests/unit/test-log-limit
tests_unit_test_log_limit_SOURCES = tests/unit/test-log-limit.c tests/unit/check.h
tests_unit_test_log_limit_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_log_limit_LDADD = $(XBD_UNIT_LIBS)
TESTS += tests/unit/test-log-limit

# Issue 10: a store that refuses RWF_NOWAIT (tmpfs) is served without it.
check_PROGRAMS += tests/unit/test-nowait-refused
tests_unit_test_nowait_refused_SOURCES = tests/unit/test-nowait-refused.c tests/unit/check.h \
	tests/unit/engine-test.c tests/unit/engine-test.h
tests_unit_test_nowait_refused_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_nowait_refused_LDADD = $(XBD_UNIT_LIBS)
TESTS += tests/unit/test-nowait-refused

# The evaluation queue: a kick while a device's rate-limit timer is
# expired but not yet run queues it once and loses no other device.
check_PROGRAMS += tests/unit/test-eval-queue
tests_unit_test_eval_queue_SOURCES = tests/unit/test-eval-queue.c tests/unit/check.h
tests_unit_test_eval_queue_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_eval_queue_LDADD = $(XBD_UNIT_LIBS)
TESTS += tests/unit/test-eval-queue
