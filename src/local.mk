# The daemon: everything but main.c goes into src/libxenblkd.a so that
# the daemon and any in-tree tool link the same objects.
noinst_LIBRARIES += src/libxenblkd.a
src_libxenblkd_a_SOURCES = \
	include/xenblkd/log.h src/log.c \
	include/xenblkd/xenbus.h src/xenbus.c \
	src/xenstore_parse.h src/xenstore_parse.c \
	include/xenblkd/backing.h src/backing.c src/dio_align.h src/dio_align.c \
	include/xenblkd/device.h src/device_internal.h src/device.c src/host.c \
	src/xs_worker.h src/xs_worker.c src/dev_snapshot.h src/dev_snapshot.c \
	src/eval_queue.h src/eval_queue.c src/loop_stats.h src/loop_stats.c \
	include/xenblkd/control.h src/control.c src/control_cmd.h src/control_cmd.c \
	src/settle.h src/settle.c src/word_list.h src/word_list.c \
	src/mkdir_mode.h src/mkdir_mode.c \
	include/xenblkd/stats.h src/stats.c \
	src/nbd_proto.h src/nbd_server.h src/nbd_conn.h src/nbd_export.c src/nbd_conn.c \
	src/nbd_conn_internal.h src/nbd_handshake.c src/nbd_sweep.c \
	include/xenblkd/config.h src/config.c \
	include/xenblkd/daemon.h src/reload.c \
	include/xenblkd/sd_notify.h src/sd_notify.c \
	include/xenblkd/service.h src/service.c
# The default configuration file: $(sysconfdir)/xenblkd.conf.
src_libxenblkd_a_CPPFLAGS = $(AM_CPPFLAGS) -DXBD_SYSCONFDIR='"$(sysconfdir)"'
src_libxenblkd_a_CFLAGS = $(AM_CFLAGS) $(XENGNTTAB_CFLAGS) $(XENEVTCHN_CFLAGS) $(XENSTORE_CFLAGS) $(JSONC_CFLAGS)
# The data plane (owned by its engineer) appends its sources here.
include src/dataplane.mk

sbin_PROGRAMS += src/xenblkd
src_xenblkd_SOURCES = src/main.c
src_xenblkd_CFLAGS = $(AM_CFLAGS) $(XENGNTTAB_CFLAGS) $(XENEVTCHN_CFLAGS) $(XENSTORE_CFLAGS)
src_xenblkd_LDADD = src/libxenblkd.a $(XENGNTTAB_LIBS) $(XENEVTCHN_LIBS) $(XENSTORE_LIBS) $(AIO_LIBS) $(EV_LIBS) $(JSONC_LIBS)

# xenblkctl: the control client, its own program (json-c for the control
# protocol, libxenstore for attach/detach); nothing of the daemon.
sbin_PROGRAMS += src/xenblkctl
src_xenblkctl_SOURCES = src/xenblkctl.c src/xenblkctl.h \
	src/xenblkctl_client.c src/xenblkctl_table.c src/xenblkctl_hist.c \
	src/xenblkctl_stats.c src/xenblkctl_prom.c src/xenblkctl_xs.c \
	src/word_list.h src/word_list.c
src_xenblkctl_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(XENSTORE_CFLAGS)
src_xenblkctl_LDADD = $(JSONC_LIBS) $(XENSTORE_LIBS) -lm
