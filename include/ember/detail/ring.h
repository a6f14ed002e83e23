/* ember/detail/ring.h - the bounded MPMC rings that carry slot indices.
 *
 * Callers push a queued slot's entry (index and generation) on their
 * node's run ring and runners pop it; the free ring holds the slots nobody
 * uses. The design and its invariants I1-I3, which survive a process dying
 * at any instruction, are below. */
#ifndef EMBER_DETAIL_RING_H
#define EMBER_DETAIL_RING_H

#include "view.h"

 /* A bounded MPMC ring of 32-bit values (Vyukov's sequence-number ring) made
 * safe against a process dying at any instruction.
 *
 * Each cell is one 64-bit word: (sequence << 32) | value. With 64-bit
 * positions p (head for consumers, tail for producers) and capacity C (a power
 * of two >= 2), the cell p % C holds:
 *     seq == p       free for the producer of position p
 *     seq == p + 1   filled at position p, for the consumer of p
 *     seq == p + C   consumed at p: free for the producer of p + C
 * (sequences compare modulo 2^32; all distances are below C <= 2^17.)
 *
 * Invariants:
 *  I1. A value is published by one CAS of its cell (seq p -> p+1 with the
 *      value) and taken by one CAS (seq p+1 -> p+C). No step needs a second
 *      store by the same process to become visible, so a process killed between
 *      any two instructions leaves every cell in one of the three states above.
 *  I2. head and tail only move forward, by CAS from p to p+1, and only after
 *      the cell of p has been filled (tail) or consumed (head). Anybody who
 *      finds the counter behind its cell advances it ("helping"): a producer or
 *      consumer that dies after its cell CAS delays nobody.
 *  I3. head <= tail + 1 transiently and never by more; a producer finding a
 *      cell still filled from the previous lap (seq == p - C + 1) with tail
 *      unchanged reports the ring full.
 * Ordering: the cell CAS is seq_cst (it is the publication and, for wake-up
 * decisions, the store half of the eventcount in ember__wake_runner); the
 * acquire load of a cell pairs with the CAS that filled it, so the consumer
 * sees everything the producer wrote to the slot before pushing it.
 *
 * Values are hints, not ownership: a slot index taken from a ring is only
 * used after the slot's own state word agrees (see "Slot state machine"), so
 * a duplicate or stale entry left by crash repair is dropped harmlessly.
 */
static inline int ember__ring_push(const struct ember__ring *r, uint32_t v)
{
    for (;;) {
        uint64_t pos = atomic_load_explicit(&r->h->tail, memory_order_acquire);
        EMBER_ATOMIC(uint64_t) *c = &r->cell[pos & r->mask];
        /* The first CAS is blind: a free cell of position pos holds exactly
         * pos << 32 (consumers leave the value 0), so the line is fetched
         * once, for writing, rather than read and then upgraded. */
        uint64_t cv = (uint64_t)(uint32_t)pos << 32;
        uint64_t nv = ((uint64_t)(uint32_t)(pos + 1) << 32) | v;
        int32_t d = 0;
        while (!atomic_compare_exchange_weak_explicit(c, &cv, nv, memory_order_seq_cst,
                                                      memory_order_acquire))
            if ((d = (int32_t)((uint32_t)(cv >> 32) - (uint32_t)pos)) != 0) break;
        if (d == 0) {
            /* the next line of cells, for writing, while it is far from
             * the consumers (they are at least a line behind unless the
             * ring is nearly full): the push that reaches it finds it here
             * instead of waiting for its transfer */
            ember__prefetch_w(&r->cell[(pos + 8) & r->mask]);
            atomic_compare_exchange_strong_explicit(&r->h->tail, &pos, pos + 1,
                                                    memory_order_release, memory_order_relaxed);
            return 0;
        }
        if (d > 0) {
            /* filled (or filled and consumed) at pos: help tail along */
            atomic_compare_exchange_strong_explicit(&r->h->tail, &pos, pos + 1,
                                                    memory_order_release,
                                                    memory_order_relaxed);
        } else if (atomic_load_explicit(&r->h->tail, memory_order_acquire) == pos) {
            return -1; /* previous lap not consumed: full */
        }
    }
}

static inline uint32_t ember__ring_pop(const struct ember__ring *r)
{
    for (;;) {
        uint64_t pos = atomic_load_explicit(&r->h->head, memory_order_acquire);
        EMBER_ATOMIC(uint64_t) *c = &r->cell[pos & r->mask];
        uint64_t cv = atomic_load_explicit(c, memory_order_acquire);
        int32_t d = (int32_t)((uint32_t)(cv >> 32) - (uint32_t)(pos + 1));
        if (d == 0) {
            uint64_t nv = (uint64_t)(uint32_t)(pos + r->cap) << 32;
            if (atomic_compare_exchange_strong_explicit(c, &cv, nv, memory_order_seq_cst,
                                                        memory_order_relaxed)) {
                atomic_compare_exchange_strong_explicit(&r->h->head, &pos, pos + 1,
                                                        memory_order_release,
                                                        memory_order_relaxed);
                return (uint32_t)cv;
            }
        } else if (d < 0) {
            if (atomic_load_explicit(&r->h->head, memory_order_acquire) == pos)
                return EMBER_NONE; /* not filled yet: empty */
        } else {
            /* consumed at pos: help head along */
            atomic_compare_exchange_strong_explicit(&r->h->head, &pos, pos + 1,
                                                    memory_order_release,
                                                    memory_order_relaxed);
        }
    }
}

/* The value in the cell at head if it is filled, else EMBER_NONE (a hint:
 * somebody may take it first). Cheap enough to spin on. */
static inline uint32_t ember__ring_front(const struct ember__ring *r)
{
    uint64_t pos = atomic_load_explicit(&r->h->head, memory_order_seq_cst);
    uint64_t cv = atomic_load_explicit(&r->cell[pos & r->mask], memory_order_seq_cst);
    return (uint32_t)(cv >> 32) == (uint32_t)(pos + 1) ? (uint32_t)cv : EMBER_NONE;
}

/* True when the cell at head is filled. */
static inline bool ember__ring_nonempty(const struct ember__ring *r)
{
    uint64_t pos = atomic_load_explicit(&r->h->head, memory_order_seq_cst);
    uint64_t cv = atomic_load_explicit(&r->cell[pos & r->mask], memory_order_seq_cst);
    return (uint32_t)(cv >> 32) == (uint32_t)(pos + 1);
}

/* Hint: call FN(value, arg) for up to N values filled behind head, without
 * taking them (they may be gone by the time FN runs). For prefetching. */
static inline void ember__ring_peek(const struct ember__ring *r, unsigned n,
                                    void (*fn)(uint32_t, void *), void *arg)
{
    uint64_t pos = atomic_load_explicit(&r->h->head, memory_order_relaxed);
    for (unsigned k = 0; k < n; k++, pos++) {
        uint64_t cv = atomic_load_explicit(&r->cell[pos & r->mask], memory_order_relaxed);
        if ((uint32_t)(cv >> 32) != (uint32_t)(pos + 1)) return;
        fn((uint32_t)cv, arg);
    }
}

static inline void ember__ring_init(struct ember_ring_hdr *h, uint32_t cap)
{
    EMBER_ATOMIC(uint64_t) *cell = (EMBER_ATOMIC(uint64_t) *)h->cells_start;
    atomic_store_explicit(&h->head, 0, memory_order_relaxed);
    atomic_store_explicit(&h->tail, 0, memory_order_relaxed);
    for (uint32_t i = 0; i < cap; i++)
        atomic_store_explicit(&cell[i], (uint64_t)i << 32, memory_order_relaxed);
}

#endif /* EMBER_DETAIL_RING_H */
