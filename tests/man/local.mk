# tests/man: every manual page is clean under mandoc -T lint.
TESTS += tests/man/lint.sh
dist_check_SCRIPTS += tests/man/lint.sh
