# tests/bench: `make bench` (fio, xenblkd and QEMU qdisk measured on the
# same files; never part of make check) and the instruction counter of the
# hot path.  make check only runs smoke.sh: the bench in its quickest mode,
# checking that the JSON and Markdown it writes are well formed (no timing
# is ever asserted).  See tests/bench/README.md.
check_PROGRAMS += tests/bench/ring-insns
tests_bench_ring_insns_SOURCES = tests/bench/ring-insns.c \
	tests/hostile/fake-io.c tests/hostile/fake-io.h \
	tests/unit/fe.c tests/unit/fe.h tests/unit/rig.c tests/unit/rig.h \
	tests/unit/check.h
tests_bench_ring_insns_CFLAGS = $(XBD_HOSTILE_CFLAGS)
tests_bench_ring_insns_LDADD = $(tests_hostile_test_ring_hostile_LDADD)
tests_bench_ring_insns_LDFLAGS = $(AM_LDFLAGS) -pthread
tests_bench_ring_insns_DEPENDENCIES = $(tests_hostile_test_ring_hostile_DEPENDENCIES)

# Responses published once per completion batch, and at stop (ring.c).
check_PROGRAMS += tests/bench/test-publish-batch
tests_bench_test_publish_batch_SOURCES = tests/bench/test-publish-batch.c \
	tests/hostile/fake-io.c tests/hostile/fake-io.h \
	tests/unit/fe.c tests/unit/fe.h tests/unit/rig.c tests/unit/rig.h \
	tests/unit/check.h
tests_bench_test_publish_batch_CFLAGS = $(XBD_HOSTILE_CFLAGS)
tests_bench_test_publish_batch_LDADD = $(tests_hostile_test_ring_hostile_LDADD)
tests_bench_test_publish_batch_LDFLAGS = $(AM_LDFLAGS) -pthread
tests_bench_test_publish_batch_DEPENDENCIES = $(tests_hostile_test_ring_hostile_DEPENDENCIES)
TESTS += tests/bench/test-publish-batch

TESTS += tests/bench/smoke.sh
dist_check_SCRIPTS += tests/bench/smoke.sh tests/bench/bench.sh tests/bench/insns.sh
EXTRA_DIST += tests/bench/benchlib.py tests/bench/README.md tests/bench/uring-probe.c \
	tests/bench/results/results.md tests/bench/results/results-short.md \
	tests/bench/results/results.json tests/bench/results/iops-disk.png \
	tests/bench/results/iops-tmpfs.png \
	tests/bench/results/xen-4.17-same-guest.md \
	tests/bench/results/xen-4.17-two-guests.md \
	tests/bench/results/guests-qd1-2026-12-06.md

# make bench [BENCH_SECONDS=S] [BENCH_QUICK=1] [BENCH_OUT=DIR] ...: see
# tests/bench/README.md.  Builds what the bench runs first.
.PHONY: bench bench-insns
bench: all
	$(MAKE) $(AM_MAKEFLAGS) check TESTS=
	$(AM_TESTS_ENVIRONMENT) $(SHELL) $(top_srcdir)/tests/bench/bench.sh
	$(AM_TESTS_ENVIRONMENT) $(SHELL) $(top_srcdir)/tests/bench/insns.sh
bench-insns: all
	$(MAKE) $(AM_MAKEFLAGS) check TESTS=
	$(AM_TESTS_ENVIRONMENT) $(SHELL) $(top_srcdir)/tests/bench/insns.sh

# Grant-copy calls per request on the copy path and past the persistent
# cache (ring.c copy_bounced, fetch_indirect).
check_PROGRAMS += tests/bench/test-copy-batch
tests_bench_test_copy_batch_SOURCES = tests/bench/test-copy-batch.c \
	tests/unit/fe.c tests/unit/fe.h tests/unit/rig.c tests/unit/rig.h \
	tests/unit/check.h
tests_bench_test_copy_batch_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_bench_test_copy_batch_LDADD = $(XBD_SIM_UNIT_LIBS)
tests_bench_test_copy_batch_LDFLAGS = $(AM_LDFLAGS) -pthread
tests_bench_test_copy_batch_DEPENDENCIES = $(XBD_SIM_UNIT_DEPS)
TESTS += tests/bench/test-copy-batch

# Clock reads per request with the loop's clock (ring.c ring_now_ns,
# loop_stats.h): none but the loop's own per iteration.
check_PROGRAMS += tests/bench/test-clock-reads
tests_bench_test_clock_reads_SOURCES = tests/bench/test-clock-reads.c \
	tests/unit/fe.c tests/unit/fe.h tests/unit/rig.c tests/unit/rig.h \
	tests/unit/check.h
tests_bench_test_clock_reads_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_bench_test_clock_reads_LDADD = $(XBD_SIM_UNIT_LIBS)
tests_bench_test_clock_reads_LDFLAGS = $(AM_LDFLAGS) -pthread -Wl,--wrap=clock_gettime
tests_bench_test_clock_reads_DEPENDENCIES = $(XBD_SIM_UNIT_DEPS)
TESTS += tests/bench/test-clock-reads
