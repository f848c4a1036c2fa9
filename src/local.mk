# The daemon.
sbin_PROGRAMS += src/xenblkd
src_xenblkd_SOURCES = src/main.c
src_xenblkd_CFLAGS = $(AM_CFLAGS) $(XENGNTTAB_CFLAGS) $(XENEVTCHN_CFLAGS) $(XENSTORE_CFLAGS)
src_xenblkd_LDADD = $(XENGNTTAB_LIBS) $(XENEVTCHN_LIBS) $(XENSTORE_LIBS) $(AIO_LIBS) $(EV_LIBS)
