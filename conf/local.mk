# Host integration files.
# The hotplug script goes where Xen's own scripts live ($sysconfdir/xen/scripts).
xenscriptsdir = $(sysconfdir)/xen/scripts
dist_xenscripts_SCRIPTS = conf/block-xenblkd
