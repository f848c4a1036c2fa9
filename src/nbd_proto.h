/*
 * nbd_proto.h - the NBD wire constants xenblkd's local-attach server uses
 * (newstyle fixed handshake, simple replies), as the protocol document of
 * the NBD project defines them (doc/proto.md).  Every field on the wire is
 * big-endian.  Xen's public headers have nothing for NBD, hence this file.
 */
#ifndef XENBLKD_NBD_PROTO_H
#define XENBLKD_NBD_PROTO_H

/* Handshake: server greeting, "NBDMAGIC" then "IHAVEOPT". */
#define NBD_MAGIC               0x4e42444d41474943ull
#define NBD_IHAVEOPT            0x49484156454f5054ull
#define NBD_OPT_REPLY_MAGIC     0x0003e889045565a9ull

/* Handshake flags (server, 16 bits) and client flags (32 bits). */
#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES      (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE NBD_FLAG_FIXED_NEWSTYLE
#define NBD_FLAG_C_NO_ZEROES    NBD_FLAG_NO_ZEROES

/* Options. */
#define NBD_OPT_EXPORT_NAME     1u
#define NBD_OPT_ABORT           2u
#define NBD_OPT_LIST            3u
#define NBD_OPT_INFO            6u
#define NBD_OPT_GO              7u

/* Option replies. */
#define NBD_REP_ACK             1u
#define NBD_REP_SERVER          2u
#define NBD_REP_INFO            3u
#define NBD_REP_FLAG_ERROR      (1u << 31)
#define NBD_REP_ERR_UNSUP       (NBD_REP_FLAG_ERROR | 1u)
#define NBD_REP_ERR_POLICY      (NBD_REP_FLAG_ERROR | 2u)
#define NBD_REP_ERR_INVALID     (NBD_REP_FLAG_ERROR | 3u)
#define NBD_REP_ERR_UNKNOWN     (NBD_REP_FLAG_ERROR | 6u)

/* Information types of NBD_OPT_INFO / NBD_OPT_GO. */
#define NBD_INFO_EXPORT         0u
#define NBD_INFO_BLOCK_SIZE     3u

/* Transmission flags (16 bits). */
#define NBD_FLAG_HAS_FLAGS      (1u << 0)
#define NBD_FLAG_READ_ONLY      (1u << 1)
#define NBD_FLAG_SEND_FLUSH     (1u << 2)
#define NBD_FLAG_SEND_FUA       (1u << 3)
#define NBD_FLAG_SEND_TRIM      (1u << 5)

/* Transmission: requests and simple replies. */
#define NBD_REQUEST_MAGIC       0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC  0x67446698u
#define NBD_REQUEST_SIZE        28u     /* magic, flags, type, cookie, offset, length */
#define NBD_SIMPLE_REPLY_SIZE   16u     /* magic, error, cookie */

#define NBD_CMD_READ            0u
#define NBD_CMD_WRITE           1u
#define NBD_CMD_DISC            2u
#define NBD_CMD_FLUSH           3u
#define NBD_CMD_TRIM            4u

#define NBD_CMD_FLAG_FUA        (1u << 0)

/* Error values of replies (not the host's errno values). */
#define NBD_EPERM               1u
#define NBD_EIO                 5u
#define NBD_ENOMEM              12u
#define NBD_EINVAL              22u
#define NBD_ENOSPC              28u
#define NBD_EOVERFLOW           75u
#define NBD_ENOTSUP             95u
#define NBD_ESHUTDOWN           108u

/* A client may send payloads up to 32 MiB whatever the server advertised
 * (proto.md: not to be treated as an attack below that). */
#define NBD_MAX_TOLERATED_PAYLOAD (32u << 20)

#endif
