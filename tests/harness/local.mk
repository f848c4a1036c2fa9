# tests/harness: build fragment (see top-level Makefile.am)
