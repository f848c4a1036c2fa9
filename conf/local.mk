# Host integration files.
# The hotplug script goes where libxl runs it from: Xen's script directory,
# /etc/xen/scripts whatever our prefix (configure --with-xen-scriptdir).
dist_xenscript_SCRIPTS = conf/block-xenblkd
# /etc/xen/scripts is outside a non-root distcheck prefix.
AM_DISTCHECK_CONFIGURE_FLAGS += --with-xen-scriptdir='$${sysconfdir}/xen/scripts'
EXTRA_DIST += conf/block-xenblkd.md

# The configuration file: installed once, never overwritten (an existing
# one is the administrator's), removed by uninstall only while it is
# still the one we shipped.
EXTRA_DIST += conf/xenblkd.conf
install-data-hook: install-xenblkd-conf
uninstall-hook: uninstall-xenblkd-conf
.PHONY: install-xenblkd-conf uninstall-xenblkd-conf
install-xenblkd-conf:
	@conf='$(DESTDIR)$(sysconfdir)/xenblkd.conf'; \
	if test -e "$$conf"; then \
	  echo "$$conf exists: not overwritten (the new default is $(srcdir)/conf/xenblkd.conf)"; \
	else \
	  $(MKDIR_P) '$(DESTDIR)$(sysconfdir)' && \
	  echo " $(INSTALL_DATA) $(srcdir)/conf/xenblkd.conf '$$conf'" && \
	  $(INSTALL_DATA) '$(srcdir)/conf/xenblkd.conf' "$$conf"; \
	fi
uninstall-xenblkd-conf:
	@conf='$(DESTDIR)$(sysconfdir)/xenblkd.conf'; \
	if test -e "$$conf" && ! cmp -s "$$conf" '$(srcdir)/conf/xenblkd.conf'; then \
	  echo "$$conf was modified: kept"; \
	else \
	  echo " rm -f '$$conf'"; rm -f "$$conf"; \
	fi
