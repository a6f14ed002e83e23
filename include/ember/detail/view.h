/* ember/detail/view.h - a process's validated view of a pool's segment.
 *
 * ember__view_init() checks a mapped segment once (magic, ABI version,
 * geometry, every part inside the segment and cache-aligned) and copies the
 * geometry into process-local memory: after it no index or size is read
 * from the shared header again, so a process that scribbles over the header
 * cannot make others index out of bounds. */
#ifndef EMBER_DETAIL_VIEW_H
#define EMBER_DETAIL_VIEW_H

#include "error.h"

/* -- the segment view --------------------------------------------------------
 * Process-local, validated copy of the geometry: after ember__view_init() no
 * index or size is taken from the shared header again. */
struct ember__ring {
    struct ember_ring_hdr *h;
    EMBER_ATOMIC(uint64_t) *cell;
    uint32_t mask, cap;
};

struct ember__view {
    struct ember_shm_header *hdr;
    char *base;
    size_t size;
    struct ember_handler_ent *handlers;
    struct ember_runner_ent *runners;
    struct ember_worker_ent *workers;
    struct ember_caller_ent *callers;
    struct ember_slot *slots;
    struct ember__ring run[EMBER_MAX_RINGS], free; /* run: one per node, nrings */
    struct ember_event_ent *events;
    uint32_t *page_owner, *page_len;
    char *pages;
    uint32_t nslots, nrunners, max_conc, ncallers, nhandlers, npages, page_size, ncpus;
    uint32_t nrings, ncpu_map;
    const uint16_t *cpu_ring;         /* CPU number -> ring (all < nrings, checked) */
    uint64_t max_payload, default_timeout_ns;
};

static inline size_t ember__ring_bytes(uint32_t cap)
{
    return sizeof(struct ember_ring_hdr) + (size_t)cap * sizeof(uint64_t);
}

static inline bool ember__pow2(uint32_t x) { return x && !(x & (x - 1)); }

/* Check that part [off, off+len) lies inside the segment, cache-aligned. */
static inline bool ember__part_ok(uint64_t off, uint64_t len, uint64_t size)
{
    return off % EMBER_CACHELINE == 0 && off <= size && len <= size - off;
}

/* Validate a mapped segment and fill V. Returns 0, -EMBER_EABI or
 * -EMBER_ECORRUPT (with the reason in ember_last_error()). */
static inline int ember__view_init(struct ember__view *v, void *base, size_t size)
{
    struct ember_shm_header *h = (struct ember_shm_header *)base;
    memset(v, 0, sizeof *v);
    if (size < sizeof *h || h->magic != EMBER_MAGIC)
        return ember__fail(-EMBER_ECORRUPT, "segment has no ember magic");
    if (h->abi_version != EMBER_ABI_VERSION)
        return ember__fail(-EMBER_EABI, "segment ABI version %u, this client speaks %u",
                           h->abi_version, EMBER_ABI_VERSION);
    if (h->header_size != sizeof *h || h->segment_size != size)
        return ember__fail(-EMBER_ECORRUPT, "segment size %zu does not match its header (%llu)",
                           size, (unsigned long long)h->segment_size);
    if (!ember__pow2(h->nslots) || h->nslots > EMBER_MAX_SLOTS || h->ring_cap != 2 * h->nslots ||
        h->nrunners == 0 || h->nrunners > 4096 || h->max_concurrency == 0 ||
        h->max_concurrency > 1024 || h->ncallers == 0 || h->ncallers > 65536 ||
        h->nhandlers > 4096 || h->page_size < 4096 || h->page_size % 4096 ||
        h->npages > (1u << 24) || h->ncpus == 0 || h->nrings == 0 || h->nrings > EMBER_MAX_RINGS ||
        h->ring_stride < ember__ring_bytes(h->ring_cap) || h->ring_stride > (1ull << 32) ||
        h->ncpu_map > 65536)
        return ember__fail(-EMBER_ECORRUPT, "segment geometry out of range");
    uint64_t nw = (uint64_t)h->nrunners * h->max_concurrency;
    if (!ember__part_ok(h->off_handlers, (uint64_t)h->nhandlers * sizeof(struct ember_handler_ent), size) ||
        !ember__part_ok(h->off_runners, (uint64_t)h->nrunners * sizeof(struct ember_runner_ent), size) ||
        !ember__part_ok(h->off_workers, nw * sizeof(struct ember_worker_ent), size) ||
        !ember__part_ok(h->off_callers, (uint64_t)h->ncallers * sizeof(struct ember_caller_ent), size) ||
        !ember__part_ok(h->off_slots, (uint64_t)h->nslots * sizeof(struct ember_slot), size) ||
        !ember__part_ok(h->off_run_ring, h->ring_stride * h->nrings, size) ||
        h->ring_stride % EMBER_CACHELINE ||
        !ember__part_ok(h->off_cpu_ring, (uint64_t)h->ncpu_map * 2, size) ||
        !ember__part_ok(h->off_free_ring, ember__ring_bytes(h->ring_cap), size) ||
        !ember__part_ok(h->off_events, EMBER_EVENT_RING * sizeof(struct ember_event_ent), size) ||
        !ember__part_ok(h->off_page_owner, (uint64_t)h->npages * 4, size) ||
        !ember__part_ok(h->off_page_len, (uint64_t)h->npages * 4, size) ||
        !ember__part_ok(h->off_pages, (uint64_t)h->npages * h->page_size, size) ||
        h->max_payload > (uint64_t)h->npages * h->page_size || h->max_payload > UINT32_MAX)
        return ember__fail(-EMBER_ECORRUPT, "segment part out of bounds");
    char *b = (char *)base;
    v->hdr = h;
    v->base = b;
    v->size = size;
    v->handlers = (struct ember_handler_ent *)(b + h->off_handlers);
    v->runners = (struct ember_runner_ent *)(b + h->off_runners);
    v->workers = (struct ember_worker_ent *)(b + h->off_workers);
    v->callers = (struct ember_caller_ent *)(b + h->off_callers);
    v->slots = (struct ember_slot *)(b + h->off_slots);
    v->nrings = h->nrings;
    for (uint32_t i = 0; i < v->nrings; i++) {
        v->run[i].h = (struct ember_ring_hdr *)(b + h->off_run_ring + i * h->ring_stride);
        v->run[i].cell = (EMBER_ATOMIC(uint64_t) *)v->run[i].h->cells_start;
        v->run[i].cap = h->ring_cap;
        v->run[i].mask = h->ring_cap - 1;
    }
    v->free.h = (struct ember_ring_hdr *)(b + h->off_free_ring);
    v->events = (struct ember_event_ent *)(b + h->off_events);
    v->free.cell = (EMBER_ATOMIC(uint64_t) *)v->free.h->cells_start;
    v->free.cap = h->ring_cap;
    v->free.mask = h->ring_cap - 1;
    v->cpu_ring = (const uint16_t *)(b + h->off_cpu_ring);
    v->ncpu_map = h->ncpu_map;
    for (uint32_t i = 0; i < v->ncpu_map; i++)
        if (v->cpu_ring[i] >= v->nrings)
            return ember__fail(-EMBER_ECORRUPT, "segment CPU map names ring %u of %u",
                               v->cpu_ring[i], v->nrings);
    v->page_owner = (uint32_t *)(b + h->off_page_owner);
    v->page_len = (uint32_t *)(b + h->off_page_len);
    v->pages = b + h->off_pages;
    v->nslots = h->nslots;
    v->nrunners = h->nrunners;
    v->max_conc = h->max_concurrency;
    v->ncallers = h->ncallers;
    v->nhandlers = h->nhandlers;
    v->npages = h->npages;
    v->page_size = h->page_size;
    v->ncpus = h->ncpus;
    v->max_payload = h->max_payload;
    v->default_timeout_ns = h->default_timeout_ns;
    return 0;
}

#endif /* EMBER_DETAIL_VIEW_H */
