/* tests/fuzz/fuzz_view.h - a pool's segment for the fuzz targets that play
 * one of its processes (fuzz_runner.c, fuzz_supervisor.c).
 *
 * The view is a valid one (the geometry passed ember__view_init's checks:
 * fuzz_segment.c covers those), small, with its numbers taken from the
 * input; what is in its tables comes from the bytes after them, as a
 * process that scribbles over the segment could have left it. Every part
 * ends where a heap block of its own ends (fz_part), so that
 * AddressSanitizer stops any index that runs past its part: in a real
 * segment the parts are neighbours, and such an index would land silently
 * in the next one.
 *
 * The rings' cells are the exception: their sequence numbers are made in
 * the three states a live ring has (free, filled, consumed; detail/ring.h),
 * only the entries in them are the input's. Repairing cells out of
 * sequence is the self-repair's business (issue 16, item 2), and a push
 * onto such a ring can spin for a very long time before it gives up. */
#ifndef EMBER_TESTS_FUZZ_VIEW_H
#define EMBER_TESTS_FUZZ_VIEW_H

#include "lib/internal.h"

/* The input, taken from the front; zeros once it is used up. */
struct fz_in { const uint8_t *p; size_t n; };

static void fz_take(struct fz_in *in, void *to, size_t len)
{
    size_t k = len < in->n ? len : in->n;
    if (k) memcpy(to, in->p, k);
    memset((char *)to + k, 0, len - k);
    in->p += k, in->n -= k;
}
static uint8_t fz_u8(struct fz_in *in) { uint8_t x; fz_take(in, &x, 1); return x; }
static uint32_t fz_u32(struct fz_in *in) { uint32_t x; fz_take(in, &x, 4); return x; }
static uint64_t fz_u64(struct fz_in *in) { uint64_t x; fz_take(in, &x, 8); return x; }

/* The parts' blocks: one per part, of the part's largest size, made once
 * (a fresh block per input would cost more than the input's run). A part
 * is placed at the end of its block, so that it ends exactly where the
 * block does and AddressSanitizer stops an index past its end. */
enum { FZ_HDR, FZ_HANDLERS, FZ_RUNNERS, FZ_WORKERS, FZ_CALLERS, FZ_SLOTS, FZ_RUN0, FZ_FREE = FZ_RUN0 + 2,
       FZ_EVENTS, FZ_OWNER, FZ_LEN, FZ_PAGES, FZ_DONE, FZ_COUNTS, FZ_NPARTS };
#define FZ_MAX_SLOTS 64u
#define FZ_MAX_PAGES 16u

/* Part WHICH of LEN bytes (at most MAX, both multiples of the part's
 * alignment), zeroed unless !ZERO. */
static void *fz_part(int which, size_t len, size_t max, bool zero)
{
    static char *block[FZ_NPARTS];
    if (!block[which] && posix_memalign((void **)&block[which], 64, max)) abort();
    char *p = block[which] + max - len;
    if (zero) memset(p, 0, len);
    return p;
}

/* Ring R of capacity CAP with head and tail from the input and its cells
 * in legal states; the filled cells' entries from the input. */
static void fz_ring(struct fz_in *in, int which, struct ember__ring *r, uint32_t cap)
{
    r->h = fz_part(which, (ember__ring_bytes(cap) + 63) / 64 * 64,
                   (ember__ring_bytes(2 * FZ_MAX_SLOTS) + 63) / 64 * 64, true);
    r->cell = (EMBER_ATOMIC(uint64_t) *)r->h->cells_start;
    r->cap = cap, r->mask = cap - 1;
    uint64_t head = fz_u64(in), tail = head + fz_u8(in) % (cap + 1);
    for (uint64_t p = head; p < head + cap; p++) {
        /* filled at p, or free for p (which a cell consumed at p - cap is too) */
        uint64_t seq = p < tail ? p + 1 : p;
        uint32_t val = p < tail ? fz_u32(in) : 0;
        atomic_init(&r->cell[p & r->mask], (uint64_t)(uint32_t)seq << 32 | val);
    }
    atomic_init(&r->h->head, head);
    atomic_init(&r->h->tail, tail);
}

/* Fill V (see the file's header); free it with fz_view_free. */
static void fz_view_make(struct ember__view *v, struct fz_in *in)
{
    uint8_t g[8];
    fz_take(in, g, sizeof g);
    memset(v, 0, sizeof *v);
    v->nslots = 1u << (g[0] % 7); /* 1 .. FZ_MAX_SLOTS */
    v->nrunners = 1 + g[1] % 4;
    v->max_conc = 1 + g[2] % 4;
    v->ncallers = 1 + g[3] % 8;
    v->npages = g[4] % (FZ_MAX_PAGES + 1);
    v->page_size = 4096;
    v->nrings = 1 + g[5] % 2;
    v->nhandlers = g[6] % 8;
    v->max_payload = (uint64_t)v->npages * v->page_size >> (g[7] % 4);
    v->ncpus = 1;
    v->done_stride = (v->nslots + 63) / 64 * 8;
    v->done_stride = (v->done_stride + 63) / 64 * 64;
    v->hdr = fz_part(FZ_HDR, sizeof *v->hdr, sizeof *v->hdr, true);
    v->base = (char *)v->hdr;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init((pthread_mutex_t *)v->hdr->page_lock, &ma);
    pthread_mutexattr_destroy(&ma);
    atomic_init(&v->hdr->page_hint, fz_u32(in));
    atomic_init(&v->hdr->slot_waiters, fz_u8(in) & 1);
    atomic_init(&v->hdr->spin, ((uint64_t)EMBER_SPIN_BIAS << 32) | EMBER_SPIN_BIAS);
    v->handlers = fz_part(FZ_HANDLERS, v->nhandlers * sizeof *v->handlers, 8 * sizeof *v->handlers, true);
    v->runners = fz_part(FZ_RUNNERS, v->nrunners * sizeof *v->runners, 4 * sizeof *v->runners, true);
    for (uint32_t r = 0; r < v->nrunners; r++) {
        struct ember_runner_ent *re = &v->runners[r];
        atomic_init(&re->state, fz_u8(in));
        atomic_init(&re->gen, fz_u32(in));
        re->ring = fz_u8(in);
        fz_take(in, re->msg, sizeof re->msg / 4); /* the rest zero: it may lack its NUL anyway */
    }
    size_t nw = (size_t)v->nrunners * v->max_conc;
    v->workers = fz_part(FZ_WORKERS, nw * sizeof *v->workers, 16 * sizeof *v->workers, true);
    for (size_t w = 0; w < nw; w++) {
        struct ember_worker_ent *we = &v->workers[w];
        atomic_init(&we->park, fz_u8(in) % 5);
        atomic_init(&we->busy, fz_u8(in) & 1);
        atomic_init(&we->current, fz_u32(in));
        atomic_init(&we->job_deadline, fz_u64(in));
    }
    v->callers = fz_part(FZ_CALLERS, v->ncallers * sizeof *v->callers, 8 * sizeof *v->callers, true);
    for (uint32_t c = 0; c < v->ncallers; c++) {
        atomic_init(&v->callers[c].pid, fz_u32(in));
        atomic_init(&v->callers[c].gen, fz_u32(in));
        atomic_init(&v->callers[c].spinning, fz_u8(in));
        atomic_init(&v->callers[c].done_armed, fz_u8(in) & 1);
        atomic_init(&v->callers[c].done_seq, fz_u8(in));
    }
    /* the slots' header lines and a few inline bytes (the rest as it was) */
    v->slots = fz_part(FZ_SLOTS, v->nslots * sizeof *v->slots, FZ_MAX_SLOTS * sizeof *v->slots, false);
    for (uint32_t i = 0; i < v->nslots; i++)
        fz_take(in, &v->slots[i], EMBER_SLOT_HDR + 8);
    for (uint32_t i = 0; i < v->nrings; i++) fz_ring(in, FZ_RUN0 + (int)i, &v->run[i], 2 * v->nslots);
    fz_ring(in, FZ_FREE, &v->free, 2 * v->nslots);
    v->events = fz_part(FZ_EVENTS, EMBER_EVENT_RING * sizeof *v->events, EMBER_EVENT_RING * sizeof *v->events, false);
    static const uint16_t cpu_ring0[1];
    v->cpu_ring = cpu_ring0;
    v->ncpu_map = 1;
    v->page_owner = fz_part(FZ_OWNER, (size_t)v->npages * 4, FZ_MAX_PAGES * 4, false);
    v->page_len = fz_part(FZ_LEN, (size_t)v->npages * 4, FZ_MAX_PAGES * 4, false);
    fz_take(in, v->page_owner, (size_t)v->npages * 4);
    fz_take(in, v->page_len, (size_t)v->npages * 4);
    /* small owners and lengths, so that they name slots and fit now and then */
    for (uint32_t i = 0; i < v->npages; i++) {
        if (v->page_owner[i] & 0x80000000u) v->page_owner[i] %= v->nslots + 2;
        if (v->page_len[i] & 0x80000000u) v->page_len[i] %= v->npages + 2;
    }
    v->pages = fz_part(FZ_PAGES, (size_t)v->npages * v->page_size, FZ_MAX_PAGES * 4096, false); /* as it was */
    v->done = fz_part(FZ_DONE, (size_t)v->ncallers * v->done_stride, 8 * 64, true);
    /* the counts: every worker's block and the supervisor's (nothing from the input) */
    v->count_stride = (uint32_t)(sizeof(struct ember_count_ent) + v->nhandlers * sizeof(struct ember_handler_count));
    v->counts = fz_part(FZ_COUNTS, (nw + 1) * v->count_stride,
                        17 * (sizeof(struct ember_count_ent) + 8 * sizeof(struct ember_handler_count)), true);
}

static void fz_view_free(struct ember__view *v)
{
    pthread_mutex_destroy((pthread_mutex_t *)v->hdr->page_lock);
}

#endif
