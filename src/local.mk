# The daemon: everything but main.c goes into src/libxenblkd.a so that
# the daemon and any in-tree tool link the same objects.
noinst_LIBRARIES += src/libxenblkd.a
src_libxenblkd_a_SOURCES = \
	include/xenblkd/log.h src/log.c \
	include/xenblkd/xenbus.h src/xenbus.c \
	include/xenblkd/backing.h src/backing.c \
	include/xenblkd/device.h src/device_internal.h src/device.c src/host.c \
	include/xenblkd/stats.h src/stats.c
src_libxenblkd_a_CFLAGS = $(AM_CFLAGS) $(XENGNTTAB_CFLAGS) $(XENEVTCHN_CFLAGS) $(XENSTORE_CFLAGS)
# The data plane (owned by its engineer) appends its sources here.
include src/dataplane.mk

sbin_PROGRAMS += src/xenblkd
src_xenblkd_SOURCES = src/main.c
src_xenblkd_CFLAGS = $(AM_CFLAGS) $(XENGNTTAB_CFLAGS) $(XENEVTCHN_CFLAGS) $(XENSTORE_CFLAGS)
src_xenblkd_LDADD = src/libxenblkd.a $(XENGNTTAB_LIBS) $(XENEVTCHN_LIBS) $(XENSTORE_LIBS) $(AIO_LIBS) $(EV_LIBS)
