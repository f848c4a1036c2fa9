# tests/hostile: the hostile-frontend suite.  Everything a guest writes
# into a shared page or its xenstore directory is an attack; these tests
# play the attacker against the real data plane and the real daemon.
XBD_HOSTILE_CFLAGS = $(AM_CFLAGS) -I$(top_srcdir) -I$(top_srcdir)/src \
	-I$(top_srcdir)/tests/unit -I$(top_srcdir)/tests/hostile \
	$(XENGNTTAB_CFLAGS) $(XENEVTCHN_CFLAGS)

# In-process: tests/unit's frontend rig against a real xbd_ring whose I/O
# engine is tests/hostile/fake-io.c (linked in place of src/io_aio.o).
check_PROGRAMS += tests/hostile/test-ring-hostile
tests_hostile_test_ring_hostile_SOURCES = tests/hostile/test-ring-hostile.c \
	tests/hostile/fake-io.c tests/hostile/fake-io.h \
	tests/unit/fe.c tests/unit/fe.h tests/unit/rig.c tests/unit/rig.h \
	tests/unit/check.h
tests_hostile_test_ring_hostile_CFLAGS = $(XBD_HOSTILE_CFLAGS)
tests_hostile_test_ring_hostile_LDADD = tests/sim/libxensim_guest.a src/libxenblkd.a \
	$(XENGNTTAB_LIBS) $(XENEVTCHN_LIBS) $(XENSTORE_LIBS) $(EV_LIBS) -ldl
tests_hostile_test_ring_hostile_LDFLAGS = $(AM_LDFLAGS) -pthread
tests_hostile_test_ring_hostile_DEPENDENCIES = tests/sim/libxensim_guest.a src/libxenblkd.a \
	tests/sim/lib/libxengnttab.so.1 tests/sim/lib/libxenevtchn.so.1
TESTS += tests/hostile/test-ring-hostile

# A backend killed after its N-th response, N = 1..200, and the successors
# that take the ring over from its journal (same rig, ring in a child).
check_PROGRAMS += tests/hostile/test-ring-crash
tests_hostile_test_ring_crash_SOURCES = tests/hostile/test-ring-crash.c \
	tests/hostile/fake-io.c tests/hostile/fake-io.h \
	tests/unit/fe.c tests/unit/fe.h tests/unit/rig.c tests/unit/rig.h \
	tests/unit/check.h
tests_hostile_test_ring_crash_CFLAGS = $(XBD_HOSTILE_CFLAGS)
tests_hostile_test_ring_crash_LDADD = $(tests_hostile_test_ring_hostile_LDADD)
tests_hostile_test_ring_crash_LDFLAGS = $(AM_LDFLAGS) -pthread
tests_hostile_test_ring_crash_DEPENDENCIES = $(tests_hostile_test_ring_hostile_DEPENDENCIES)
TESTS += tests/hostile/test-ring-crash

# A guest that storms its backend with event-channel notifications.
check_PROGRAMS += tests/hostile/storm-guest
tests_hostile_storm_guest_SOURCES = tests/hostile/storm-guest.c \
	tests/daemon/sim-guest.c tests/daemon/sim-guest.h
tests_hostile_storm_guest_CFLAGS = $(AM_CFLAGS) -I$(top_srcdir)/tests/sim \
	-I$(top_srcdir)/tests/daemon
tests_hostile_storm_guest_LDADD = tests/sim/libxensim_guest.a -lpthread

# End to end against the daemon (tests/harness/env.sh).
XBD_HOSTILE_SH_TESTS = \
	tests/hostile/evtchn-storm.sh \
	tests/hostile/frontend-path.sh \
	tests/hostile/state-flap.sh \
	tests/hostile/flap-draining.sh \
	tests/hostile/state-recreate.sh \
	tests/hostile/data-safety.sh \
	tests/hostile/log-flood.sh \
	tests/hostile/budget.sh \
	tests/hostile/fd-budget.sh \
	tests/hostile/xs-storm-neighbour.sh \
	tests/hostile/xs-stopped.sh \
	tests/hostile/xs-read-bound.sh \
	tests/hostile/iso-discard-held.sh \
	tests/hostile/iso-ctx-share.sh \
	tests/hostile/exit-held-pool.sh \
	tests/hostile/iso-nowait-held.sh \
	tests/hostile/iso-nowait-refused.sh \
	tests/hostile/iso-nowait-blockdev.sh \
	tests/hostile/iso-queue-flood.sh \
	tests/hostile/iso-pool-share.sh \
	tests/hostile/iso-discard-latency.sh \
	tests/hostile/ctl-flood-neighbour.sh
TESTS += $(XBD_HOSTILE_SH_TESTS)
dist_check_SCRIPTS += $(XBD_HOSTILE_SH_TESTS)
EXTRA_DIST += tests/hostile/README.md tests/hostile/loop-lib.sh tests/hostile/xs-stall-bench.sh \
	tests/hostile/iso-lib.sh tests/hostile/ctl-flood.py
