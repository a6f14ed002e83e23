/* tests/fuzz/fuzz_segment.c - the checks ember_attach makes of a pool's
 * segment before it trusts it (ember__view_init, detail/view.h).
 *
 * Feeds: any bytes as a segment. The first byte says how large the segment
 * is: even, the size its own header claims (up to 1 MiB: what a pool's
 * creator wrote, so that a mutated header still describes a segment of
 * its size), odd, the bytes that follow, as they are. The segment is a
 * heap block of exactly that size, the input's bytes at its start, zeros
 * after them (a fresh segment is zeros but for what its creator wrote).
 *
 * Asserts: ember__view_init never reads outside the segment, and returns 0
 * or one of its documented codes with a message. A segment it accepts can
 * be indexed as the view says: every table, ring, map, bitmap and page
 * lies inside the segment (each one's first and last byte is read, which
 * AddressSanitizer checks against the block), the geometry is the one the
 * header holds, and every CPU maps to an existing ring. */
#include <assert.h>
#include "lib/internal.h"

#define SEG_MAX (1u << 20)

/* Read the first and last byte of [P, P+LEN) of the segment V, after
 * asserting that the range lies inside it. */
static void touch(const struct ember__view *v, const void *p, uint64_t len)
{
    const char *c = p;
    assert(c >= v->base && (uint64_t)(c - v->base) <= v->size);
    assert(len <= v->size - (uint64_t)(c - v->base));
    if (!len) return;
    volatile char x = c[0];
    x = c[len - 1];
    (void)x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    if (n < 1) return 0;
    size_t len = n - 1, size = len;
    if (!(data[0] & 1) && len >= sizeof(struct ember_shm_header)) {
        uint64_t claimed;
        memcpy(&claimed, data + 1 + offsetof(struct ember_shm_header, segment_size), sizeof claimed);
        if (claimed <= SEG_MAX) size = (size_t)claimed;
    }
    char *seg = NULL;
    if (posix_memalign((void **)&seg, 64, size ? size : 1)) return 0;
    memcpy(seg, data + 1, len < size ? len : size);
    if (size > len) memset(seg + len, 0, size - len);

    struct ember__view v;
    ember__errbuf_ptr()[0] = 0;
    int rc = ember__view_init(&v, seg, size);
    assert(rc == 0 || rc == -EMBER_ECORRUPT || rc == -EMBER_EABI);
    if (rc) {
        assert(ember_last_error()[0]); /* a failure says why */
        free(seg);
        return 0;
    }
    const struct ember_shm_header *h = (const struct ember_shm_header *)seg;
    assert(v.base == seg && v.size == size && h->segment_size == size);
    assert(v.nslots == h->nslots && ember__pow2(v.nslots) && v.nslots <= EMBER_MAX_SLOTS);
    assert(v.nrunners == h->nrunners && v.max_conc == h->max_concurrency);
    assert(v.ncallers == h->ncallers && v.nhandlers == h->nhandlers && v.npages == h->npages);
    assert(v.nrings >= 1 && v.nrings <= EMBER_MAX_RINGS);
    assert(v.page_size >= 4096 && v.max_payload <= (uint64_t)v.npages * v.page_size);
    touch(&v, v.hdr, sizeof *v.hdr);
    touch(&v, v.handlers, (uint64_t)v.nhandlers * sizeof *v.handlers);
    touch(&v, v.runners, (uint64_t)v.nrunners * sizeof *v.runners);
    touch(&v, v.workers, (uint64_t)v.nrunners * v.max_conc * sizeof *v.workers);
    touch(&v, v.callers, (uint64_t)v.ncallers * sizeof *v.callers);
    touch(&v, v.slots, (uint64_t)v.nslots * sizeof *v.slots);
    for (uint32_t i = 0; i < v.nrings; i++) {
        assert(v.run[i].cap == 2 * v.nslots && v.run[i].mask == v.run[i].cap - 1);
        touch(&v, v.run[i].h, ember__ring_bytes(v.run[i].cap));
        touch(&v, (const void *)&v.run[i].cell[v.run[i].mask], sizeof(uint64_t));
    }
    assert(v.free.cap == 2 * v.nslots);
    touch(&v, v.free.h, ember__ring_bytes(v.free.cap));
    touch(&v, v.events, EMBER_EVENT_RING * sizeof *v.events);
    touch(&v, v.cpu_ring, (uint64_t)v.ncpu_map * 2);
    for (uint32_t i = 0; i < v.ncpu_map; i++) assert(v.cpu_ring[i] < v.nrings);
    touch(&v, v.page_owner, (uint64_t)v.npages * 4);
    touch(&v, v.page_len, (uint64_t)v.npages * 4);
    touch(&v, v.pages, (uint64_t)v.npages * v.page_size);
    assert(v.done_stride >= (v.nslots + 63) / 64 * 8);
    touch(&v, v.done, (uint64_t)v.ncallers * v.done_stride);
    /* the last caller's bitmap holds a bit for the last slot */
    touch(&v, (const void *)&ember__done_bits(&v, v.ncallers - 1)[(v.nslots - 1) / 64], 8);
    /* every alignment the atomics need */
    assert((uintptr_t)v.slots % 8 == 0 && (uintptr_t)v.run[0].cell % 8 == 0 &&
           (uintptr_t)v.page_owner % 4 == 0 && (uintptr_t)v.done % 8 == 0);
    free(seg);
    return 0;
}
