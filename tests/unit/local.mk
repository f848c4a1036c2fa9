# tests/unit: data plane unit tests.  The C programs link src/libxenblkd.a
# (the daemon's own objects); the .sh wrappers give each one a private
# simulated host (XENSIM_DIR) and the simulated libxengnttab/libxenevtchn.
XBD_UNIT_CFLAGS = $(AM_CFLAGS) -I$(top_srcdir)/src -I$(top_srcdir)/tests/unit \
	$(XENGNTTAB_CFLAGS) $(XENEVTCHN_CFLAGS)
XBD_UNIT_LIBS = src/libxenblkd.a $(XENGNTTAB_LIBS) $(XENEVTCHN_LIBS) \
	$(XENSTORE_LIBS) $(AIO_LIBS) $(EV_LIBS)

check_PROGRAMS += tests/unit/test-request
tests_unit_test_request_SOURCES = tests/unit/test-request.c tests/unit/check.h
tests_unit_test_request_CFLAGS = $(XBD_UNIT_CFLAGS)
tests_unit_test_request_LDADD = $(XBD_UNIT_LIBS)
TESTS += tests/unit/test-request
