# systemd: the service unit.  @sbindir@ is substituted at make time, fully
# expanded (configure would leave ${exec_prefix} in it).
systemd/xenblkd.service: systemd/xenblkd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' $(srcdir)/systemd/xenblkd.service.in > $@.tmp && \
	mv $@.tmp $@
EXTRA_DIST += systemd/xenblkd.service.in
CLEANFILES += systemd/xenblkd.service
# Built for make check too (tests/systemd verifies it).
noinst_DATA = systemd/xenblkd.service
if HAVE_SYSTEMDUNITDIR
systemdsystemunit_DATA = systemd/xenblkd.service
endif
# The pkg-config default (/lib/systemd/system) is outside any non-root
# distcheck prefix.
AM_DISTCHECK_CONFIGURE_FLAGS += --with-systemdsystemunitdir='$${prefix}/lib/systemd/system'
