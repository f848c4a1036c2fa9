# tests/sim: the simulated Xen host (grant tables, event channels, guest
# library).  See tests/sim/CONTRACT.md.

# --- replacement libxengnttab.so.1 / libxenevtchn.so.1 -----------------------
# Built as "programs" linked -shared (the project has no libtool).  Never
# with sanitizers: QEMU and xenstored load them, and the ASan runtime must be
# first in a process.  Per-target LDFLAGS replace AM_LDFLAGS on purpose.
XSIM_LIB_CFLAGS = -std=gnu11 $(WARN_CFLAGS) -fPIC -pthread $(XENGNTTAB_CFLAGS) $(XENEVTCHN_CFLAGS)
XSIM_CORE = tests/sim/xsim.h tests/sim/xsim.c tests/sim/xsim_evtchn.c

noinst_PROGRAMS += tests/sim/lib/libxengnttab.so.1 tests/sim/lib/libxenevtchn.so.1

tests_sim_lib_libxengnttab_so_1_SOURCES = tests/sim/libxengnttab.c $(XSIM_CORE)
tests_sim_lib_libxengnttab_so_1_CFLAGS = $(XSIM_LIB_CFLAGS)
tests_sim_lib_libxengnttab_so_1_LDFLAGS = -shared -fPIC -pthread -Wl,-z,defs \
	-Wl,-soname,libxengnttab.so.1 \
	-Wl,--version-script=$(srcdir)/tests/sim/libxengnttab.map
tests_sim_lib_libxengnttab_so_1_DEPENDENCIES = $(srcdir)/tests/sim/libxengnttab.map

tests_sim_lib_libxenevtchn_so_1_SOURCES = tests/sim/libxenevtchn.c $(XSIM_CORE)
tests_sim_lib_libxenevtchn_so_1_CFLAGS = $(XSIM_LIB_CFLAGS)
tests_sim_lib_libxenevtchn_so_1_LDFLAGS = -shared -fPIC -pthread -Wl,-z,defs \
	-Wl,-soname,libxenevtchn.so.1 \
	-Wl,--version-script=$(srcdir)/tests/sim/libxenevtchn.map
tests_sim_lib_libxenevtchn_so_1_DEPENDENCIES = $(srcdir)/tests/sim/libxenevtchn.map

EXTRA_DIST += tests/sim/libxengnttab.map tests/sim/libxenevtchn.map \
	tests/sim/CONTRACT.md

# --- guest side ----------------------------------------------------------------
check_LIBRARIES += tests/sim/libxensim_guest.a
tests_sim_libxensim_guest_a_SOURCES = tests/sim/guest.c tests/sim/xensim_guest.h $(XSIM_CORE)
tests_sim_libxensim_guest_a_CFLAGS = $(AM_CFLAGS) -pthread

# --- tests -----------------------------------------------------------------
# Each test re-executes itself with LD_LIBRARY_PATH=tests/sim/lib, asserts
# that the simulated libraries were loaded, and works in its own mkdtemp
# XENSIM_DIR.  They link the REAL -lxengnttab -lxenevtchn.
check_LIBRARIES += tests/sim/libsimtest.a
tests_sim_libsimtest_a_SOURCES = tests/sim/simtest.c tests/sim/simtest.h
tests_sim_libsimtest_a_CFLAGS = $(AM_CFLAGS) $(XENGNTTAB_CFLAGS) $(XENEVTCHN_CFLAGS)

XSIM_TEST_LDADD = tests/sim/libsimtest.a tests/sim/libxensim_guest.a \
	$(XENGNTTAB_LIBS) $(XENEVTCHN_LIBS) -lpthread
XSIM_TEST_CFLAGS = $(AM_CFLAGS) $(XENGNTTAB_CFLAGS) $(XENEVTCHN_CFLAGS)
XSIM_TESTS = tests/sim/test-gnttab tests/sim/test-evtchn tests/sim/test-gntcopy \
	tests/sim/test-faults tests/sim/test-tiny-backend
# The simulated libraries must exist when the tests run.
XSIM_TEST_DEPS = tests/sim/lib/libxengnttab.so.1 tests/sim/lib/libxenevtchn.so.1

check_PROGRAMS += $(XSIM_TESTS)
TESTS += $(XSIM_TESTS)

tests_sim_test_gnttab_SOURCES = tests/sim/test-gnttab.c
tests_sim_test_gnttab_CFLAGS = $(XSIM_TEST_CFLAGS)
tests_sim_test_gnttab_LDADD = $(XSIM_TEST_LDADD)
EXTRA_tests_sim_test_gnttab_DEPENDENCIES = $(XSIM_TEST_DEPS)

tests_sim_test_evtchn_SOURCES = tests/sim/test-evtchn.c
tests_sim_test_evtchn_CFLAGS = $(XSIM_TEST_CFLAGS)
tests_sim_test_evtchn_LDADD = $(XSIM_TEST_LDADD)
EXTRA_tests_sim_test_evtchn_DEPENDENCIES = $(XSIM_TEST_DEPS)

tests_sim_test_gntcopy_SOURCES = tests/sim/test-gntcopy.c
tests_sim_test_gntcopy_CFLAGS = $(XSIM_TEST_CFLAGS)
tests_sim_test_gntcopy_LDADD = $(XSIM_TEST_LDADD)
EXTRA_tests_sim_test_gntcopy_DEPENDENCIES = $(XSIM_TEST_DEPS)

tests_sim_test_faults_SOURCES = tests/sim/test-faults.c
tests_sim_test_faults_CFLAGS = $(XSIM_TEST_CFLAGS)
tests_sim_test_faults_LDADD = $(XSIM_TEST_LDADD)
EXTRA_tests_sim_test_faults_DEPENDENCIES = $(XSIM_TEST_DEPS)

tests_sim_test_tiny_backend_SOURCES = tests/sim/test-tiny-backend.c
tests_sim_test_tiny_backend_CFLAGS = $(XSIM_TEST_CFLAGS)
tests_sim_test_tiny_backend_LDADD = $(XSIM_TEST_LDADD)
EXTRA_tests_sim_test_tiny_backend_DEPENDENCIES = $(XSIM_TEST_DEPS)

# Shell access for other components' tests (faults, counters).
check_PROGRAMS += tests/sim/xsim-ctl
tests_sim_xsim_ctl_SOURCES = tests/sim/xsim-ctl.c
tests_sim_xsim_ctl_LDADD = tests/sim/libxensim_guest.a -lpthread
EXTRA_tests_sim_test_faults_DEPENDENCIES += tests/sim/xsim-ctl

TESTS += tests/sim/test-abi.sh
dist_check_SCRIPTS += tests/sim/test-abi.sh
