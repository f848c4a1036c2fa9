# tests/xen: the real-Xen test tier (make check-xen).  Each test boots Xen
# 4.17 + a Debian dom0 under QEMU (TCG) and runs Linux blkfront in PV guests
# against xenblkd, kernel blkback and QEMU qdisk.  Not part of `make check`:
# the tests are slow and need root and the Debian archive.
XEN_TESTS = \
	tests/xen/backends.sh \
	tests/xen/variants.sh \
	tests/xen/lifecycle.sh \
	tests/xen/restart.sh

# Files copied into the dom0 image or the 9p share at run time.
XEN_TEST_FILES = \
	tests/xen/lib.sh \
	tests/xen/build-image.sh \
	tests/xen/dom0-packages.txt \
	tests/xen/dom0-init.sh \
	tests/xen/dom0-lib.sh \
	tests/xen/domU-init.sh \
	tests/xen/backends.dom0 \
	tests/xen/variants.dom0 \
	tests/xen/lifecycle.dom0 \
	tests/xen/restart.dom0 \
	tests/xen/README.md

EXTRA_DIST += $(XEN_TESTS) $(XEN_TEST_FILES)

.PHONY: check-xen
check-xen:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(XEN_TESTS)' TEST_SUITE_LOG=tests/xen/test-suite.log

