# tests/sim: build fragment (see top-level Makefile.am)
