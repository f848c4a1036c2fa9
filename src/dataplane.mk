# Data plane (rings, request parsing, grant cache, I/O engine).  Included
# by src/local.mk, which declares src/libxenblkd.a.
src_libxenblkd_a_SOURCES += \
	src/blkif_abi.h \
	src/request.h src/request.c \
	src/grant_cache.h src/grant_cache.c \
	src/unmap_worker.h src/unmap_worker.c \
	src/budget.h src/budget.c \
	src/log_limit.h src/log_limit.c \
	src/io_aio.h src/io_aio.c \
	src/io_pool.h src/io_pool.c \
	src/aio_reap.h src/aio_reap.c \
	include/xenblkd/journal.h src/journal.c \
	src/ring.c \
	include/xenblkd/dataplane.h
