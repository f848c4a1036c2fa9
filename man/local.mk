# man: build fragment (see top-level Makefile.am)
