# tests/systemd: the unit file, and xenblkd under a real systemd as PID 1.
XBD_SYSTEMD_TESTS = tests/systemd/verify.sh tests/systemd/nspawn.sh
TESTS += $(XBD_SYSTEMD_TESTS)
dist_check_SCRIPTS += $(XBD_SYSTEMD_TESTS)
EXTRA_DIST += tests/systemd/nspawn-driver.sh
