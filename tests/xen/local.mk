# tests/xen: the real-Xen test tier (make check-xen).  Each test boots Xen
# + a Debian dom0 under QEMU (TCG) and runs Linux blkfront in PV guests
# against xenblkd, kernel blkback and QEMU qdisk.  Not part of `make check`:
# the tests are slow and need root and the Debian archive.
# Two tiers: 4.17 (Debian 12, Linux 6.1, xenblkd on the vbd kind with
# blkback unloaded) and 4.20 (Debian 13, Linux 6.12, backendtype=tap).
# `make check-xen XENBLKD_XEN_TIERS=4.20` (or the same variable in the
# environment) runs one of them; both by default.
# XENBLKD_XEN_TESTS selects tests within the tiers: `all` (the default, by
# hand: every test but the research probes), `ci` (XEN_TESTS_CI below, what
# tests/run-all.sh runs), or names (`tap.sh backends.sh`,
# `tests/xen/tap.sh ...`; a probe runs only when named).
XEN_TESTS_4_17 = \
	tests/xen/backends.sh \
	tests/xen/variants.sh \
	tests/xen/lifecycle.sh \
	tests/xen/restart.sh \
	tests/xen/aggregate.sh \
	tests/xen/uring-gnt-417.sh
XEN_TESTS_4_20 = \
	tests/xen/tap.sh \
	tests/xen/uring-gnt.sh
XEN_TESTS = $(XEN_TESTS_4_17) $(XEN_TESTS_4_20)
# Research probes (tests/xen/README.md): no guest and no xenblkd, a
# question about the dom0 kernel; they prove nothing about xenblkd.
XEN_PROBES = \
	tests/xen/uring-gnt-417.sh \
	tests/xen/uring-gnt.sh
XENBLKD_XEN_TIERS ?= 4.17 4.20
# The real-Xen tests CI runs (tests/run-all.sh: XENBLKD_XEN_TESTS=ci), the
# one list of them.  Both tiers at once do not fit CI's 45 minutes on a
# 2-core machine: tap.sh (4.20) proves on the modern stack what
# variants.sh (max_queues=2, max_ring_page_order=4) and lifecycle.sh (two
# guests, block-attach/detach under I/O, destroy with I/O in flight, no
# mapping left) prove on 4.17, so those two run by hand only
# (tests/xen/README.md, "CI and by hand").  Their boot timeouts (2700 +
# 1800 + 2700 s) only stop a hang on a busy host; run-all.sh's budget
# (at most 3600 s) caps the three together (README, "Timeouts").
XEN_TESTS_CI = \
	tests/xen/backends.sh \
	tests/xen/restart.sh \
	tests/xen/tap.sh
XENBLKD_XEN_TESTS ?= all

# Files copied into the dom0 image or the 9p share at run time.
XEN_TEST_FILES = \
	tests/xen/lib.sh \
	tests/xen/build-image.sh \
	tests/xen/dom0-packages.txt \
	tests/xen/dom0-packages-4.20.txt \
	tests/xen/dom0-packages-profile.txt \
	tests/xen/profile-image.sh \
	tests/xen/dom0-profile.sh \
	tests/xen/dom0-init.sh \
	tests/xen/dom0-lib.sh \
	tests/xen/domU-init.sh \
	tests/xen/backends.dom0 \
	tests/xen/variants.dom0 \
	tests/xen/lifecycle.dom0 \
	tests/xen/restart.dom0 \
	tests/xen/aggregate.dom0 \
	tests/xen/tap.dom0 \
	tests/xen/uring-gnt.dom0 \
	tests/xen/uring-gnt-probe.c \
	tests/xen/README.md

EXTRA_DIST += $(XEN_TESTS) $(XEN_TEST_FILES)

.PHONY: check-xen
check-xen:
	@case '$(XENBLKD_XEN_TESTS)' in \
	all|'') want= ;; \
	ci) want='$(XEN_TESTS_CI)' ;; \
	*) want='$(XENBLKD_XEN_TESTS)' ;; \
	esac; \
	for w in $$want; do \
	    case " $(XEN_TESTS) " in \
	    *" $$w "*|*" tests/xen/$$w "*) ;; \
	    *) echo "check-xen: unknown test '$$w' in XENBLKD_XEN_TESTS (known: all ci $(XEN_TESTS))"; exit 1 ;; \
	    esac; \
	done; \
	tests=; for t in $(XENBLKD_XEN_TIERS); do \
	    case $$t in \
	    4.17) tier='$(XEN_TESTS_4_17)' ;; \
	    4.20) tier='$(XEN_TESTS_4_20)' ;; \
	    *) echo "check-xen: unknown tier '$$t' in XENBLKD_XEN_TIERS (known: 4.17 4.20)"; exit 1 ;; \
	    esac; \
	    for x in $$tier; do \
	        if [ -z "$$want" ]; then \
	            case " $(XEN_PROBES) " in *" $$x "*) continue ;; esac; \
	            tests="$$tests $$x"; continue; \
	        fi; \
	        for w in $$want; do \
	            case $$w in "$$x"|"$${x#tests/xen/}") tests="$$tests $$x"; break ;; esac; \
	        done; \
	    done; \
	done; \
	if [ -z "$$tests" ]; then \
	    echo "check-xen: no test of tiers '$(XENBLKD_XEN_TIERS)' selected by XENBLKD_XEN_TESTS='$(XENBLKD_XEN_TESTS)'"; exit 1; \
	fi; \
	echo "check-xen: tiers $(XENBLKD_XEN_TIERS), tests $(XENBLKD_XEN_TESTS):$$tests"; \
	$(MAKE) $(AM_MAKEFLAGS) check TESTS="$$tests" TEST_SUITE_LOG=tests/xen/test-suite.log

# Host side only (backends.sh's tables), never copied into dom0.
EXTRA_DIST += tests/xen/perf_windows.py tests/xen/perf_profile.py
