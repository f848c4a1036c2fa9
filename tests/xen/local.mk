# tests/xen: build fragment (see top-level Makefile.am)
