# tests/fuzz: libFuzzer harnesses (README.md there).
#
# make check builds every harness with the normal compiler and the replay
# driver (driver.c), and replays tests/fuzz/corpus/NAME and
# tests/fuzz/regress/NAME through it: a harness that stops building, or a
# seed or former crash that crashes again, fails make check without
# clang.  A build configured with CC=clang --enable-fuzzing links them
# with libFuzzer instead; tests/fuzz/run.sh (make fuzz) does that in a
# build directory of its own and fuzzes each for FUZZ_SECONDS.
XBD_FUZZ_PROGS = tests/fuzz/fuzz-request tests/fuzz/fuzz-xenstore \
	tests/fuzz/fuzz-config tests/fuzz/fuzz-control tests/fuzz/fuzz-gcache tests/fuzz/fuzz-nbd
XBD_FUZZ_CFLAGS = $(AM_CFLAGS) -I$(top_srcdir)/src -I$(top_srcdir)/tests/fuzz \
	$(XENGNTTAB_CFLAGS) $(XENEVTCHN_CFLAGS) $(XENSTORE_CFLAGS) $(JSONC_CFLAGS)
XBD_FUZZ_LIBS = src/libxenblkd.a $(XENGNTTAB_LIBS) $(XENEVTCHN_LIBS) \
	$(XENSTORE_LIBS) $(AIO_LIBS) $(EV_LIBS) $(JSONC_LIBS)

if FUZZING
# Built by make fuzz-harnesses (run.sh), never installed or run by check.
EXTRA_PROGRAMS += $(XBD_FUZZ_PROGS)
XBD_FUZZ_MAIN =
XBD_FUZZ_LINK_FLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
fuzz-harnesses: $(XBD_FUZZ_PROGS)
else
check_PROGRAMS += $(XBD_FUZZ_PROGS)
TESTS += $(XBD_FUZZ_PROGS)
check_LIBRARIES += tests/fuzz/libxbd_fuzz_driver.a
tests_fuzz_libxbd_fuzz_driver_a_SOURCES = tests/fuzz/driver.c tests/fuzz/fuzz.h
tests_fuzz_libxbd_fuzz_driver_a_CFLAGS = $(XBD_FUZZ_CFLAGS) \
	-DXBD_FUZZ_SRCDIR='"$(abs_top_srcdir)"'
XBD_FUZZ_MAIN = tests/fuzz/libxbd_fuzz_driver.a
XBD_FUZZ_LINK_FLAGS = $(AM_LDFLAGS)
fuzz-harnesses:
	@echo "the harnesses link with libFuzzer only in a build configured with CC=clang --enable-fuzzing (tests/fuzz/run.sh makes one)" >&2; exit 1
endif

tests_fuzz_fuzz_request_SOURCES = tests/fuzz/fuzz-request.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_request_CFLAGS = $(XBD_FUZZ_CFLAGS)
tests_fuzz_fuzz_request_LDFLAGS = $(XBD_FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_request_LDADD = $(XBD_FUZZ_MAIN) $(XBD_FUZZ_LIBS)

tests_fuzz_fuzz_xenstore_SOURCES = tests/fuzz/fuzz-xenstore.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_xenstore_CFLAGS = $(XBD_FUZZ_CFLAGS)
tests_fuzz_fuzz_xenstore_LDFLAGS = $(XBD_FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_xenstore_LDADD = $(XBD_FUZZ_MAIN) $(XBD_FUZZ_LIBS)

tests_fuzz_fuzz_config_SOURCES = tests/fuzz/fuzz-config.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_config_CFLAGS = $(XBD_FUZZ_CFLAGS)
tests_fuzz_fuzz_config_LDFLAGS = $(XBD_FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_config_LDADD = $(XBD_FUZZ_MAIN) $(XBD_FUZZ_LIBS)

# The grant device is faked in the harness (its definitions interpose on
# libxengnttab's).
tests_fuzz_fuzz_gcache_SOURCES = tests/fuzz/fuzz-gcache.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_gcache_CFLAGS = $(XBD_FUZZ_CFLAGS)
tests_fuzz_fuzz_gcache_LDFLAGS = $(XBD_FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_gcache_LDADD = $(XBD_FUZZ_MAIN) $(XBD_FUZZ_LIBS)

# control.c itself is compiled into the harness (see the file).
tests_fuzz_fuzz_control_SOURCES = tests/fuzz/fuzz-control.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_control_CFLAGS = $(XBD_FUZZ_CFLAGS)
tests_fuzz_fuzz_control_LDFLAGS = $(XBD_FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_control_LDADD = $(XBD_FUZZ_MAIN) $(XBD_FUZZ_LIBS)

# The store is a memfd opened through xbd_backing_open; src/nbd_conn.c's
# internals are read through its header (see the file).
tests_fuzz_fuzz_nbd_SOURCES = tests/fuzz/fuzz-nbd.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_nbd_CFLAGS = $(XBD_FUZZ_CFLAGS)
tests_fuzz_fuzz_nbd_LDFLAGS = $(XBD_FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_nbd_LDADD = $(XBD_FUZZ_MAIN) $(XBD_FUZZ_LIBS)

# make fuzz: build with clang and libFuzzer in $(abs_top_builddir)/fuzz-build
# and fuzz each harness FUZZ_SECONDS (default 60).
fuzz:
	FUZZ_BUILD='$(abs_top_builddir)/fuzz-build' $(SHELL) $(top_srcdir)/tests/fuzz/run.sh

.PHONY: fuzz fuzz-harnesses
EXTRA_DIST += tests/fuzz/README.md tests/fuzz/run.sh tests/fuzz/coverage.sh tests/fuzz/make-seeds.py \
	tests/fuzz/corpus tests/fuzz/regress
