# tests/xen: the real-Xen test tier (make check-xen).  Each test boots Xen
# + a Debian dom0 under QEMU (TCG) and runs Linux blkfront in PV guests
# against xenblkd, kernel blkback and QEMU qdisk.  Not part of `make check`:
# the tests are slow and need root and the Debian archive.
# Two tiers: 4.17 (Debian 12, Linux 6.1, xenblkd on the vbd kind with
# blkback unloaded) and 4.20 (Debian 13, Linux 6.12, backendtype=tap).
# `make check-xen XENBLKD_XEN_TIERS=4.20` (or the same variable in the
# environment) runs one of them; both by default.
XEN_TESTS_4_17 = \
	tests/xen/backends.sh \
	tests/xen/variants.sh \
	tests/xen/lifecycle.sh \
	tests/xen/restart.sh
XEN_TESTS_4_20 = \
	tests/xen/tap.sh
XEN_TESTS = $(XEN_TESTS_4_17) $(XEN_TESTS_4_20)
XENBLKD_XEN_TIERS ?= 4.17 4.20

# Files copied into the dom0 image or the 9p share at run time.
XEN_TEST_FILES = \
	tests/xen/lib.sh \
	tests/xen/build-image.sh \
	tests/xen/dom0-packages.txt \
	tests/xen/dom0-packages-4.20.txt \
	tests/xen/dom0-init.sh \
	tests/xen/dom0-lib.sh \
	tests/xen/domU-init.sh \
	tests/xen/backends.dom0 \
	tests/xen/variants.dom0 \
	tests/xen/lifecycle.dom0 \
	tests/xen/restart.dom0 \
	tests/xen/tap.dom0 \
	tests/xen/README.md

EXTRA_DIST += $(XEN_TESTS) $(XEN_TEST_FILES)

.PHONY: check-xen
check-xen:
	@tests=; for t in $(XENBLKD_XEN_TIERS); do \
	    case $$t in \
	    4.17) tests="$$tests $(XEN_TESTS_4_17)" ;; \
	    4.20) tests="$$tests $(XEN_TESTS_4_20)" ;; \
	    *) echo "check-xen: unknown tier '$$t' in XENBLKD_XEN_TIERS (known: 4.17 4.20)"; exit 1 ;; \
	    esac; \
	done; \
	echo "check-xen: tiers $(XENBLKD_XEN_TIERS):$$tests"; \
	$(MAKE) $(AM_MAKEFLAGS) check TESTS="$$tests" TEST_SUITE_LOG=tests/xen/test-suite.log

