/*
 * stats.c - what was negotiated and what happened, as JSON, for tests and
 * benchmarks (consumed with jq or python).
 */
#include "config.h"

#include <inttypes.h>

#include "bf_internal.h"

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void disk_json(FILE *f, bf_disk *d)
{
    const struct bf_negotiated *n = &d->neg;
    const struct bf_features *b = &d->feat;
    const struct bf_stats *s = &d->st;
    fprintf(f, "    {\n      \"vdev\": %u,\n      \"backend\": ", d->vdev);
    json_str(f, d->be_path);
    fprintf(f, ",\n      \"backend_id\": %u,\n      \"connects\": %" PRIu64 ",\n      \"resizes\": %" PRIu64 ",\n",
            d->be_id, s->connects, s->resizes);
    fprintf(f, "      \"negotiated\": {\"protocol\": ");
    if (n->protocol)
        json_str(f, n->protocol);
    else
        fputs("null", f);
    fprintf(f, ", \"ring_abi\": \"%s\", \"ring_order\": %u, \"ring_pages\": %u, \"ring_entries\": %u, "
            "\"queues\": %u, \"persistent\": %s, \"indirect\": %s, \"max_segments\": %u, "
            "\"sector_size\": %u, \"physical_sector_size\": %u, \"sectors\": %" PRIu64 ", \"info\": %u},\n",
            bf_abi_name(n->abi), n->ring_order, n->ring_pages, n->ring_entries, n->queues,
            n->persistent ? "true" : "false", n->indirect ? "true" : "false", n->max_segs,
            n->sector_size, n->physical_sector_size, n->sectors, n->info);
    fprintf(f, "      \"backend_features\": {\"persistent\": %s, \"max_indirect_segments\": %u, "
            "\"max_ring_page_order\": %u, \"max_queues\": %u, \"flush_cache\": %s, \"barrier\": %s, "
            "\"discard\": %s, \"discard_secure\": %s, \"discard_granularity\": %u, \"discard_alignment\": %u},\n",
            b->persistent ? "true" : "false", b->max_indirect, b->max_ring_order, b->max_queues,
            b->flush ? "true" : "false", b->barrier ? "true" : "false", b->discard ? "true" : "false",
            b->discard_secure ? "true" : "false", b->discard_granularity, b->discard_alignment);
    fprintf(f, "      \"requests\": {\"read\": %" PRIu64 ", \"write\": %" PRIu64 ", \"barrier\": %" PRIu64
            ", \"flush\": %" PRIu64 ", \"discard\": %" PRIu64 ", \"other\": %" PRIu64 ", \"indirect\": %" PRIu64 "},\n",
            s->reqs[BLKIF_OP_READ], s->reqs[BLKIF_OP_WRITE], s->reqs[BLKIF_OP_WRITE_BARRIER],
            s->reqs[BLKIF_OP_FLUSH_DISKCACHE], s->reqs[BLKIF_OP_DISCARD],
            s->reqs[BLKIF_OP_RESERVED_1] + s->reqs[BLKIF_OP_INDIRECT] + s->reqs[7], s->indirect_reqs);
    fprintf(f, "      \"bytes_read\": %" PRIu64 ",\n      \"bytes_written\": %" PRIu64 ",\n",
            s->bytes_read, s->bytes_written);
    fprintf(f, "      \"responses\": {\"okay\": %" PRIu64 ", \"error\": %" PRIu64 ", \"eopnotsupp\": %" PRIu64
            ", \"other\": %" PRIu64 "},\n", s->rsp_okay, s->rsp_error, s->rsp_eopnotsupp, s->rsp_other);
    /* By queue index, as many as the disk negotiated (or ever used). */
    unsigned nq = n->queues < BF_MAX_QUEUES ? n->queues : BF_MAX_QUEUES;
    for (unsigned i = nq; i < BF_MAX_QUEUES; i++)
        if (s->queue_notifications[i])
            nq = i + 1;
    fprintf(f, "      \"queue_notifications\": [");
    for (unsigned i = 0; i < nq; i++)
        fprintf(f, "%s%" PRIu64, i ? ", " : "", s->queue_notifications[i]);
    fprintf(f, "],\n");
    fprintf(f, "      \"errors\": %" PRIu64 ",\n      \"protocol_errors\": %" PRIu64 ",\n"
            "      \"verify_errors\": %" PRIu64 ",\n      \"end_access_failures\": %" PRIu64 ",\n"
            "      \"grants_granted\": %" PRIu64 ",\n      \"notifications\": %" PRIu64 ",\n"
            "      \"workload_us\": %" PRIu64 ",\n"
            "      \"latency_us\": {\"n\": %" PRIu64 ", \"p50\": %" PRIu64 ", \"p99\": %" PRIu64
            ", \"max\": %" PRIu64 "}\n    }",
            s->errors, s->protocol_errors, s->verify_errors, s->end_access_failures,
            s->grants_granted, s->notifications, s->workload_us,
            s->lat_n, s->lat_p50_us, s->lat_p99_us, s->lat_max_us);
}

int bf_stats_json(FILE *f, bf_host *h, bf_disk **disks, unsigned n)
{
    struct xsg_grant_stats gs = { 0, 0, 0, 0, 0, 0 };
    bool have = xsg_grant_stats(h->dom, &gs) == 0;
    fprintf(f, "{\n  \"domid\": %u,\n", h->domid);
    if (have)
        fprintf(f, "  \"grant_stats\": {\"map_calls\": %" PRIu64 ", \"pages_mapped\": %" PRIu64
                ", \"pages_unmapped\": %" PRIu64 ", \"copy_calls\": %" PRIu64 ", \"copy_segs\": %" PRIu64
                ", \"unmap_calls\": %" PRIu64 "},\n",
                gs.map_calls, gs.pages_mapped, gs.pages_unmapped, gs.copy_calls, gs.copy_segs,
                gs.unmap_calls);
    else
        fprintf(f, "  \"grant_stats\": null,\n");
    fprintf(f, "  \"disks\": [\n");
    for (unsigned i = 0; i < n; i++) {
        disk_json(f, disks[i]);
        fputs(i + 1 < n ? ",\n" : "\n", f);
    }
    fprintf(f, "  ]\n}\n");
    return ferror(f) ? -1 : 0;
}
