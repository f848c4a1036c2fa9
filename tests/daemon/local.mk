# tests/daemon: the control plane's behaviour, end to end: the real daemon
# against a private xenstored (tests/harness/env.sh) and simulated guests.
check_PROGRAMS += tests/daemon/xbd-guest
tests_daemon_xbd_guest_SOURCES = tests/daemon/xbd-guest.c \
	tests/daemon/sim-guest.c tests/daemon/sim-guest.h
tests_daemon_xbd_guest_CFLAGS = $(AM_CFLAGS) -I$(top_srcdir)/tests/sim
tests_daemon_xbd_guest_LDADD = tests/sim/libxensim_guest.a -lpthread

check_PROGRAMS += tests/daemon/xs-storm
tests_daemon_xs_storm_SOURCES = tests/daemon/xs-storm.c
tests_daemon_xs_storm_CFLAGS = $(AM_CFLAGS) $(XENSTORE_CFLAGS)
tests_daemon_xs_storm_LDADD = $(XENSTORE_LIBS)

check_PROGRAMS += tests/daemon/notify-listen
tests_daemon_notify_listen_SOURCES = tests/daemon/notify-listen.c

XBD_DAEMON_TESTS = \
	tests/daemon/cli.sh \
	tests/daemon/initwait.sh \
	tests/daemon/params.sh \
	tests/daemon/connect.sh \
	tests/daemon/remove.sh \
	tests/daemon/closed-once.sh \
	tests/daemon/detach-unmap.sh \
	tests/daemon/unmap-exit.sh \
	tests/daemon/malformed.sh \
	tests/daemon/multi.sh \
	tests/daemon/sigterm.sh \
	tests/daemon/watch-storm.sh \
	tests/daemon/settle.sh \
	tests/daemon/vbd-kind.sh \
	tests/daemon/blockdev.sh \
	tests/daemon/startup.sh \
	tests/daemon/xentop-stats.sh \
	tests/daemon/crash-held-write.sh \
	tests/daemon/journal-files.sh \
	tests/daemon/journal-enospc.sh \
	tests/daemon/restart-workload.sh \
	tests/daemon/restart-kills.sh \
	tests/daemon/restart-notify-kill.sh \
	tests/daemon/restart-closed.sh \
	tests/daemon/resume-terms.sh \
	tests/daemon/config.sh \
	tests/daemon/config-apply.sh \
	tests/daemon/reload.sh \
	tests/daemon/notify.sh \
	tests/daemon/control-stats.sh \
	tests/daemon/control-access.sh \
	tests/daemon/dir-modes.sh \
	tests/daemon/control-abuse.sh \
	tests/daemon/nbd-export.sh \
	tests/daemon/nbd-restart.sh \
	tests/daemon/nbd-sweep.sh \
	tests/daemon/nbd-drain.sh \
	tests/daemon/nbd-qemu.sh
TESTS += $(XBD_DAEMON_TESTS)
dist_check_SCRIPTS += $(XBD_DAEMON_TESTS)
EXTRA_DIST += tests/daemon/lib.sh tests/daemon/fuse-hold.py tests/daemon/config-lib.sh \
	tests/daemon/ctl.py tests/daemon/ctl-abuse.py tests/daemon/nbd-client.py

# Issue 3's test list (see tests/daemon/README.md): the data path of the
# daemon through the reference frontend, checked on both sides.
# xbd-pattern reads/writes the frontend's data pattern in backing files.
check_PROGRAMS += tests/daemon/xbd-pattern
tests_daemon_xbd_pattern_SOURCES = tests/daemon/xbd-pattern.c tests/daemon/xbd-gens.h
tests_daemon_xbd_pattern_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/frontend \
	-I$(top_srcdir)/tests/sim $(XENSTORE_CFLAGS)
tests_daemon_xbd_pattern_LDADD = $(BLKFRONT_LDADD)
# xbd-fe: frontend-library scenarios xsim-blkfront cannot express.
check_PROGRAMS += tests/daemon/xbd-fe
tests_daemon_xbd_fe_SOURCES = tests/daemon/xbd-fe.c tests/daemon/xbd-gens.h
tests_daemon_xbd_fe_CPPFLAGS = $(tests_daemon_xbd_pattern_CPPFLAGS)
tests_daemon_xbd_fe_LDADD = $(BLKFRONT_LDADD)

XBD_MATRIX_TESTS = \
	tests/daemon/rings.sh \
	tests/daemon/grants.sh \
	tests/daemon/grant-idle.sh \
	tests/daemon/grant-groups.sh \
	tests/daemon/resize.sh \
	tests/daemon/datapath.sh \
	tests/daemon/loopdev.sh \
	tests/daemon/partition.sh \
	tests/daemon/readonly.sh \
	tests/daemon/busy.sh \
	tests/daemon/guests.sh
TESTS += $(XBD_MATRIX_TESTS)
dist_check_SCRIPTS += $(XBD_MATRIX_TESTS)
EXTRA_DIST += tests/daemon/matrix-lib.sh tests/daemon/README.md

# xenblkctl (issue 8, section 2) against the production daemon.
XBC_TESTS = \
	tests/daemon/xenblkctl-attach.sh \
	tests/daemon/xenblkctl-client.sh \
	tests/daemon/xenblkctl-stats.sh \
	tests/daemon/xenblkctl-cli.sh \
	tests/daemon/xenblkctl-shutdown.sh
TESTS += $(XBC_TESTS)
dist_check_SCRIPTS += $(XBC_TESTS)
EXTRA_DIST += tests/daemon/xenblkctl-lib.sh tests/daemon/xenblkctl-fake-daemon.py
