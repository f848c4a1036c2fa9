# Data plane (rings, request parsing, grant cache, I/O engine).  Included
# by src/local.mk, which declares src/libxenblkd.a.
src_libxenblkd_a_SOURCES += \
	src/blkif_abi.h \
	src/request.h src/request.c \
	src/grant_cache.h src/grant_cache.c \
	src/io_aio.h src/io_aio.c \
	include/xenblkd/journal.h src/journal.c \
	src/ring.c \
	include/xenblkd/dataplane.h
