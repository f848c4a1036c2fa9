# tests/frontend: build fragment (see top-level Makefile.am)
