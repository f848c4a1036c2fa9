# tests/faults: real fault injection against the production daemon
# (failing and full storage, a guest killed with I/O in flight, attach/
# detach churn, valgrind memcheck).  See tests/faults/README.md.
XBD_FAULT_TESTS = \
	tests/faults/eio.sh \
	tests/faults/fsyncgate.sh \
	tests/faults/fsyncgate-nbd.sh \
	tests/faults/enospc.sh \
	tests/faults/frontend-death.sh \
	tests/faults/drain-stats.sh \
	tests/faults/churn.sh \
	tests/faults/valgrind.sh
TESTS += $(XBD_FAULT_TESTS)
dist_check_SCRIPTS += $(XBD_FAULT_TESTS)
EXTRA_DIST += tests/faults/lib.sh tests/faults/README.md
