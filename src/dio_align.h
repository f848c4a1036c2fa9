/*
 * dio_align.h - the alignment O_DIRECT needs on a regular file (bytes).
 */
#ifndef XENBLKD_DIO_ALIGN_H
#define XENBLKD_DIO_ALIGN_H

/* The offset and length granularity O_DIRECT I/O on fd (a regular file on
 * the filesystem of device dev_major:dev_minor, its st_dev) must respect:
 * what statx(STATX_DIOALIGN) reports, else the logical block size of the
 * filesystem's block device, else 512.  Never less than 512. */
unsigned xbd_dio_align(int fd, unsigned dev_major, unsigned dev_minor);

#endif
