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
    char *done;                       /* done bitmaps: caller i's at done + i * done_stride */
    uint32_t done_stride;
    uint32_t count_stride;            /* counts: writer i's block at counts + i * count_stride */
    char *counts;
    uint32_t nslots, nrunners, max_conc, ncallers, nhandlers, npages, page_size, ncpus;
    uint32_t nrings, ncpu_map;
    const uint16_t *cpu_ring;         /* CPU number -> ring (all < nrings, checked) */
    uint64_t max_payload, default_timeout_ns;
    /* the segment's descriptor, to allocate /dev/shm space for payload
     * pages before their first use (detail/pages.h); -1: none, the pages
     * are used as they are */
    int shm_fd;
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

/* The header's geometry, read once into process-local memory: it is
 * checked and used from this copy only, so a process that writes the
 * header meanwhile cannot slip a value in between the check and the use. */
struct ember__geometry {
    uint64_t magic, segment_size, max_payload, default_timeout_ns, ring_stride;
    uint64_t off_handlers, off_runners, off_workers, off_callers, off_slots, off_run_ring,
        off_free_ring, off_page_owner, off_page_len, off_pages, off_cpu_ring, off_events, off_done,
        off_counts;
    uint32_t abi_version, header_size, nslots, ring_cap, nrunners, max_concurrency, ncallers,
        nhandlers, page_size, npages, ncpus, nrings, ncpu_map, done_stride, count_stride;
};

static inline void ember__geometry_read(struct ember__geometry *g,
                                        const volatile struct ember_shm_header *h)
{
    g->magic = h->magic, g->segment_size = h->segment_size, g->max_payload = h->max_payload;
    g->default_timeout_ns = h->default_timeout_ns, g->ring_stride = h->ring_stride;
    g->off_handlers = h->off_handlers, g->off_runners = h->off_runners;
    g->off_workers = h->off_workers, g->off_callers = h->off_callers, g->off_slots = h->off_slots;
    g->off_run_ring = h->off_run_ring, g->off_free_ring = h->off_free_ring;
    g->off_page_owner = h->off_page_owner, g->off_page_len = h->off_page_len;
    g->off_pages = h->off_pages, g->off_cpu_ring = h->off_cpu_ring, g->off_events = h->off_events;
    g->off_done = h->off_done, g->done_stride = h->done_stride;
    g->off_counts = h->off_counts, g->count_stride = h->count_stride;
    g->abi_version = h->abi_version, g->header_size = h->header_size, g->nslots = h->nslots;
    g->ring_cap = h->ring_cap, g->nrunners = h->nrunners, g->max_concurrency = h->max_concurrency;
    g->ncallers = h->ncallers, g->nhandlers = h->nhandlers, g->page_size = h->page_size;
    g->npages = h->npages, g->ncpus = h->ncpus, g->nrings = h->nrings, g->ncpu_map = h->ncpu_map;
}

/* Is G a segment of SIZE bytes this client can use? 0, -EMBER_EABI or
 * -EMBER_ECORRUPT (with the reason in ember_last_error()). */
static inline int ember__geometry_check(const struct ember__geometry *g, size_t size)
{
    if (g->magic != EMBER_MAGIC) return ember__fail(-EMBER_ECORRUPT, "segment has no ember magic");
    if (g->abi_version != EMBER_ABI_VERSION)
        return ember__fail(-EMBER_EABI, "segment ABI version %u, this client speaks %u",
                           g->abi_version, EMBER_ABI_VERSION);
    if (g->header_size != sizeof(struct ember_shm_header) || g->segment_size != size)
        return ember__fail(-EMBER_ECORRUPT, "segment size %zu does not match its header (%llu)",
                           size, (unsigned long long)g->segment_size);
    if (!ember__pow2(g->nslots) || g->nslots > EMBER_MAX_SLOTS || g->ring_cap != 2 * g->nslots ||
        g->nrunners == 0 || g->nrunners > 4096 || g->max_concurrency == 0 ||
        g->max_concurrency > 1024 || g->ncallers == 0 || g->ncallers > 65536 ||
        g->nhandlers > 4096 || g->page_size < 4096 || g->page_size % 4096 ||
        g->npages > (1u << 24) || g->ncpus == 0 || g->nrings == 0 || g->nrings > EMBER_MAX_RINGS ||
        g->ring_stride < ember__ring_bytes(g->ring_cap) || g->ring_stride > (1ull << 32) ||
        g->ring_stride % EMBER_CACHELINE || g->ncpu_map > 65536 ||
        g->done_stride < (g->nslots + 63) / 64 * 8 || g->done_stride % EMBER_CACHELINE ||
        g->done_stride > 65536 / 8 ||
        g->count_stride != sizeof(struct ember_count_ent) + g->nhandlers * sizeof(struct ember_handler_count))
        return ember__fail(-EMBER_ECORRUPT, "segment geometry out of range");
    uint64_t nw = (uint64_t)g->nrunners * g->max_concurrency;
    const struct { uint64_t off, len; } part[] = {
        { g->off_handlers, (uint64_t)g->nhandlers * sizeof(struct ember_handler_ent) },
        { g->off_runners, (uint64_t)g->nrunners * sizeof(struct ember_runner_ent) },
        { g->off_workers, nw * sizeof(struct ember_worker_ent) },
        { g->off_callers, (uint64_t)g->ncallers * sizeof(struct ember_caller_ent) },
        { g->off_slots, (uint64_t)g->nslots * sizeof(struct ember_slot) },
        { g->off_run_ring, g->ring_stride * g->nrings },
        { g->off_cpu_ring, (uint64_t)g->ncpu_map * 2 },
        { g->off_free_ring, ember__ring_bytes(g->ring_cap) },
        { g->off_events, EMBER_EVENT_RING * sizeof(struct ember_event_ent) },
        { g->off_page_owner, (uint64_t)g->npages * 4 },
        { g->off_page_len, (uint64_t)g->npages * 4 },
        { g->off_pages, (uint64_t)g->npages * g->page_size },
        { g->off_done, (uint64_t)g->ncallers * g->done_stride },
        { g->off_counts, (nw + 1) * g->count_stride },
    };
    for (size_t i = 0; i < sizeof part / sizeof part[0]; i++)
        if (!ember__part_ok(part[i].off, part[i].len, size))
            return ember__fail(-EMBER_ECORRUPT, "segment part %zu out of bounds", i);
    if (g->max_payload > (uint64_t)g->npages * g->page_size || g->max_payload > UINT32_MAX)
        return ember__fail(-EMBER_ECORRUPT, "segment max_payload out of bounds");
    return 0;
}

/* Caller entry I's done bitmap (detail/any.h). */
static inline EMBER_ATOMIC(uint64_t) *ember__done_bits(const struct ember__view *v, uint32_t i)
{
    return (EMBER_ATOMIC(uint64_t) *)(v->done + (size_t)i * v->done_stride);
}

static inline void ember__ring_view(struct ember__ring *r, char *at, uint32_t cap)
{
    r->h = (struct ember_ring_hdr *)at;
    r->cell = (EMBER_ATOMIC(uint64_t) *)r->h->cells_start;
    r->cap = cap;
    r->mask = cap - 1;
}

/* Validate a mapped segment and fill V. Returns 0, -EMBER_EABI or
 * -EMBER_ECORRUPT (with the reason in ember_last_error()). */
static inline int ember__view_init(struct ember__view *v, void *base, size_t size)
{
    struct ember__geometry g;
    memset(v, 0, sizeof *v);
    v->shm_fd = -1;
    if (size < sizeof(struct ember_shm_header))
        return ember__fail(-EMBER_ECORRUPT, "segment smaller than an ember header");
    ember__geometry_read(&g, (const volatile struct ember_shm_header *)base);
    int rc = ember__geometry_check(&g, size);
    if (rc) return rc;
    char *b = (char *)base;
    v->hdr = (struct ember_shm_header *)base;
    v->base = b;
    v->size = size;
    v->handlers = (struct ember_handler_ent *)(b + g.off_handlers);
    v->runners = (struct ember_runner_ent *)(b + g.off_runners);
    v->workers = (struct ember_worker_ent *)(b + g.off_workers);
    v->callers = (struct ember_caller_ent *)(b + g.off_callers);
    v->slots = (struct ember_slot *)(b + g.off_slots);
    v->nrings = g.nrings;
    for (uint32_t i = 0; i < v->nrings; i++)
        ember__ring_view(&v->run[i], b + g.off_run_ring + i * g.ring_stride, g.ring_cap);
    ember__ring_view(&v->free, b + g.off_free_ring, g.ring_cap);
    v->events = (struct ember_event_ent *)(b + g.off_events);
    v->cpu_ring = (const uint16_t *)(b + g.off_cpu_ring);
    v->ncpu_map = g.ncpu_map;
    for (uint32_t i = 0; i < v->ncpu_map; i++)
        if (v->cpu_ring[i] >= v->nrings)
            return ember__fail(-EMBER_ECORRUPT, "segment CPU map names ring %u of %u",
                               v->cpu_ring[i], v->nrings);
    v->page_owner = (uint32_t *)(b + g.off_page_owner);
    v->page_len = (uint32_t *)(b + g.off_page_len);
    v->pages = b + g.off_pages;
    v->done = b + g.off_done;
    v->done_stride = g.done_stride;
    v->counts = b + g.off_counts;
    v->count_stride = g.count_stride;
    v->nslots = g.nslots;
    v->nrunners = g.nrunners;
    v->max_conc = g.max_concurrency;
    v->ncallers = g.ncallers;
    v->nhandlers = g.nhandlers;
    v->npages = g.npages;
    v->page_size = g.page_size;
    v->ncpus = g.ncpus;
    v->max_payload = g.max_payload;
    v->default_timeout_ns = g.default_timeout_ns;
    return 0;
}

#endif /* EMBER_DETAIL_VIEW_H */
