/* supervisor/repair.c - self-repair of shared state after stray writes.
 *
 * Any process of the pool's user can map the segment and write anything
 * into it. Deaths are repaired where they are seen (runners.c, callers.c);
 * this is the look for what no death explains: a ring cell whose sequence
 * is impossible for its position, ring counters wildly apart, a slot in an
 * impossible state, a QUEUED or FREE slot in no ring, pages no slot owns.
 * It runs every EMBER__REPAIR_NS, and EMBER__REPAIR_CONFIRM_NS after a look
 * that found something; nothing is changed before the same thing has been
 * seen unchanged at two looks, so an honest operation in flight (a cell
 * filled and its counter not yet moved, a slot QUEUED and not yet pushed)
 * is never "repaired", and every change is a CAS that expects the very
 * word seen twice, so it loses against any honest actor that moved it.
 *
 * Ring cells (ring.h): with head H and tail T, cell i stands for the one
 * position p = i (mod C) in [H, H + C). Honest operations leave its
 * sequence at p (free), p + 1 (filled), p + C (consumed, free for p + C) or
 * p + C + 1 (consumed and filled again), and never at p once the tail has
 * passed p. Any other sequence is impossible; some (one behind the tail)
 * stop every producer or consumer for good, the others are passed by
 * helping but are repaired all the same. The repair is the cell's empty
 * value for the next producer that comes to it: q << 32 with q = i (mod
 * C) in [T, T + C). Counters more than C apart (or head ahead of tail by
 * more than one) are repaired by moving head to tail: the ring is then
 * empty, and its cells are judged against that at the next looks. What a
 * repaired cell held is lost; ring entries are hints, and the slot sweep
 * below pushes every QUEUED slot that is in no run ring.
 *
 * Slots (slot.h): an unknown state, a RUNNING or ABANDONED slot no live
 * runner's worker has announced, a CLAIMED or DONE slot whose owner word
 * names no attached caller: each is impossible. RUNNING ones are finished
 * with EMBER_ECORRUPT (their owner gets that); the others are freed with
 * their generation bumped, so that whoever held the old word fails its
 * next CAS. A slot finished so may have had no caller waiting at all (a
 * stray write that turned a FREE slot RUNNING keeps the owner word of its
 * last call, whose caller lives on): if it is still DONE, uncollected,
 * EMBER__REPAIR_UNCOLLECTED_NS later, it is freed the same way (an owner
 * that comes for it after that is told the call was already collected).
 * A CLAIMED slot is only freed after a second (a claimer may be
 * between its claim CAS and its owner store, S5); a FREE slot in no free
 * ring is pushed only after a second unchanged (a slot a client keeps at
 * hand is FREE and off the ring, and pushing it is harmless but makes a
 * stale entry) and only while the free ring holds fewer than nslots
 * entries, so these pushes can never fill it.
 *
 * Pages: the page table is repaired under its lock at every look
 * (ember__pages_repair_locked: runs no slot names are freed), if the lock
 * is free then: the look never waits for it.
 *
 * Cost: reading every slot's state word and owner, every ring cell and
 * the page table once per look (with the defaults, 4096 slots, two rings of
 * 8192 cells and 4096 pages: well under a millisecond), four times a
 * second; nothing on the call path. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "supervisor/sup.h"

/* what was wrong with a slot at the last look */
enum { SLOT_OK = 0, SLOT_UNKNOWN, SLOT_UNHELD, SLOT_UNOWNED, SLOT_LOST_QUEUED, SLOT_LOST_FREE,
       SLOT_UNCOLLECTED };

/* The detail of a call the repair failed with EMBER_ECORRUPT: tells its
 * DONE slot from one a runner finished with that status. */
#define REPAIR_DETAIL 0x72657072 /* "repr" */

struct cell_mark { uint64_t v; bool bad; };
struct ring_mark { uint64_t head, tail; bool bad; };
struct slot_mark { uint32_t w; uint8_t kind; uint64_t since; };

struct sup_repair {
    struct cell_mark *cells;  /* (nrings + 1) * ring_cap: run rings, then the free ring */
    struct ring_mark rings[EMBER_MAX_RINGS + 1];
    struct slot_mark *slots;
    uint32_t *word;           /* per slot: its state word at this look */
    uint32_t *held;           /* per slot: the entry a live runner's worker announces */
    uint8_t *in;              /* per slot: 1 in a run ring, 2 in the free ring, in its generation */
};

static struct ember__ring *ring_of(struct ember__view *v, uint32_t k)
{
    return k < v->nrings ? &v->run[k] : &v->free;
}

/* Is SEQ a sequence honest operations can leave in the cell of position P
 * of a ring of capacity CAP whose tail is T? */
static bool cell_ok(uint32_t seq, uint64_t p, uint64_t t, uint32_t cap)
{
    uint32_t d = seq - (uint32_t)p;
    if (d == 0) return p >= t; /* free: the tail has not passed it */
    return d == 1 || d == cap || d == cap + 1;
}

/* Look at ring K: its counters, then (if they stayed still during the look)
 * its cells. Returns how many repairs it made; *SEEN: something was wrong. */
static unsigned look_ring(struct sup_repair *rp, struct ember__view *v, uint32_t k, bool *seen)
{
    struct ember__ring *r = ring_of(v, k);
    struct ring_mark *rm = &rp->rings[k];
    struct cell_mark *cm = &rp->cells[(size_t)k * r->cap];
    uint64_t h = atomic_load_explicit(&r->h->head, memory_order_acquire);
    uint64_t t = atomic_load_explicit(&r->h->tail, memory_order_acquire);
    int64_t fill = (int64_t)(t - h);
    if (fill < -1 || fill > (int64_t)r->cap) {
        *seen = true;
        for (uint32_t i = 0; i < r->cap; i++) cm[i].bad = false;
        if (!rm->bad || rm->head != h || rm->tail != t) {
            *rm = (struct ring_mark){ h, t, true };
            return 0;
        }
        rm->bad = false;
        /* seq_cst, as every counter CAS of ring.h: an honest consumer's
         * CAS of head from h fails after this one */
        return atomic_compare_exchange_strong(&r->h->head, &h, t) ? 1 : 0;
    }
    rm->bad = false;
    unsigned fixed = 0;
    for (uint32_t i = 0; i < r->cap; i++) {
        uint64_t p = h + ((i - (uint32_t)h) & r->mask);
        uint64_t cv = atomic_load_explicit(&r->cell[i], memory_order_acquire);
        if (cell_ok((uint32_t)(cv >> 32), p, t, r->cap)) {
            cm[i].bad = false;
            continue;
        }
        *seen = true;
        /* judged against counters that must not have moved meanwhile */
        if (atomic_load(&r->h->head) != h || atomic_load(&r->h->tail) != t) {
            for (uint32_t j = 0; j < r->cap; j++) cm[j].bad = false;
            return fixed;
        }
        if (!cm[i].bad || cm[i].v != cv) {
            cm[i] = (struct cell_mark){ cv, true };
            continue;
        }
        cm[i].bad = false;
        uint64_t q = p >= t ? p : p + r->cap;
        /* seq_cst like every cell CAS (ring.h); expects the word seen at
         * both looks, so an honest CAS that came first makes it fail */
        if (atomic_compare_exchange_strong(&r->cell[i], &cv, (uint64_t)(uint32_t)q << 32)) fixed++;
    }
    return fixed;
}

/* Mark in RP->in the slots whose entry, in their generation of this look,
 * is in a run ring (1) or the free ring (2). */
static void mark_in_rings(struct sup_repair *rp, struct ember__view *v)
{
    memset(rp->in, 0, v->nslots);
    for (uint32_t k = 0; k <= v->nrings; k++) {
        struct ember__ring *r = ring_of(v, k);
        uint8_t bit = k < v->nrings ? 1 : 2;
        uint64_t h = atomic_load(&r->h->head), t = atomic_load(&r->h->tail);
        for (uint64_t p = h; p <= t && p < h + r->cap; p++) { /* t: filled, tail not moved yet */
            uint64_t cv = atomic_load_explicit(&r->cell[p & r->mask], memory_order_relaxed);
            uint32_t e = (uint32_t)cv, idx = e & 0xffffu;
            if ((uint32_t)(cv >> 32) == (uint32_t)(p + 1) && idx < v->nslots &&
                (e >> 16) == (ember__gen(rp->word[idx]) & 0xffffu))
                rp->in[idx] |= bit;
        }
    }
}

/* Mark in RP->held the entry each worker of a live runner announces. */
static void mark_held(struct sup *s, struct sup_repair *rp)
{
    struct ember__view *v = s->v;
    for (uint32_t i = 0; i < v->nslots; i++) rp->held[i] = EMBER_NONE;
    for (uint32_t r = 0; r < v->nrunners; r++) {
        if (s->runners[r].pidfd < 0) continue; /* a dead one's calls are failed when it is reaped */
        for (uint32_t t = 0; t < v->max_conc; t++) {
            uint32_t e = atomic_load_explicit(&v->workers[r * v->max_conc + t].current,
                                              memory_order_relaxed);
            if (e != EMBER_NONE && (e & 0xffffu) < v->nslots) rp->held[e & 0xffffu] = e;
        }
    }
}

/* Does slot S of state word W name an attached caller as its owner? The
 * owner's acquire load comes after the state's (S5, slot.h). */
static bool owner_attached(struct ember__view *v, const struct ember_slot *sl, uint32_t w)
{
    uint64_t o = atomic_load_explicit(&sl->owner, memory_order_acquire);
    uint32_t ci = (uint32_t)(o >> 32) & 0xffffu;
    if ((uint32_t)(o >> 48) != (ember__gen(w) & 0xffffu) || ci >= v->ncallers) return false;
    return atomic_load(&v->callers[ci].pid) != 0 && atomic_load(&v->callers[ci].gen) == (uint32_t)o;
}

/* What is wrong with slot I of word W (SLOT_OK: nothing). */
static uint8_t judge_slot(struct sup_repair *rp, struct ember__view *v, uint32_t i, uint32_t w,
                          bool free_room)
{
    const struct ember_slot *sl = &v->slots[i];
    switch (ember__st(w)) {
    case EMBER_SLOT_FREE:
        return !(rp->in[i] & 2) && free_room ? SLOT_LOST_FREE : SLOT_OK;
    case EMBER_SLOT_CLAIMED:
        return owner_attached(v, sl, w) ? SLOT_OK : SLOT_UNOWNED;
    case EMBER_SLOT_DONE:
        if (!owner_attached(v, sl, w)) return SLOT_UNOWNED;
        return sl->status == -EMBER_ECORRUPT && sl->detail == REPAIR_DETAIL ? SLOT_UNCOLLECTED
                                                                            : SLOT_OK;
    case EMBER_SLOT_QUEUED:
        return rp->in[i] & 1 ? SLOT_OK : SLOT_LOST_QUEUED;
    case EMBER_SLOT_RUNNING:
    case EMBER_SLOT_ABANDONED:
        return rp->held[i] == ember__entry(i, ember__gen(w)) ? SLOT_OK : SLOT_UNHELD;
    default:
        return SLOT_UNKNOWN;
    }
}

/* Free slot I of word W with its generation bumped (so whoever holds the
 * old word fails its next CAS), give back its pages, push it on the free
 * ring and wake a claimer that waits, as ember__slot_free does. */
static bool free_bumped(struct ember__view *v, uint32_t i, uint32_t w)
{
    struct ember_slot *sl = &v->slots[i];
    uint32_t ap = sl->args_page, rp = sl->res_page;
    uint32_t gen = (ember__gen(w) + 1) & 0xffffu;
    if (!atomic_compare_exchange_strong(&sl->state, &w, ember__mk(gen, EMBER_SLOT_FREE)))
        return false;
    if (ap != EMBER_NONE) ember__pages_free(v, i, ap);
    if (rp != EMBER_NONE && rp != ap) ember__pages_free(v, i, rp);
    ember__ring_push(&v->free, ember__entry(i, gen));
    if (atomic_load(&v->hdr->slot_waiters)) {
        atomic_fetch_add(&v->hdr->slot_seq, 1);
        ember__futex_wake(&v->hdr->slot_seq, INT_MAX);
    }
    return true;
}

/* Act on slot I, found KIND at two looks with word W. Returns whether it
 * changed anything. */
static bool fix_slot(struct ember__view *v, uint32_t i, uint32_t w, uint8_t kind)
{
    switch (kind) {
    case SLOT_LOST_QUEUED: /* any node's runner steals it */
        return ember__ring_push(&v->run[0], ember__entry(i, ember__gen(w))) == 0;
    case SLOT_LOST_FREE:
        return ember__ring_push(&v->free, ember__entry(i, ember__gen(w))) == 0;
    case SLOT_UNHELD:
        if (ember__st(w) == EMBER_SLOT_RUNNING) /* its owner waits: it gets ECORRUPT */
            return sup_finish(v, i, w, -EMBER_ECORRUPT, REPAIR_DETAIL);
        return free_bumped(v, i, w);
    default:
        return free_bumped(v, i, w);
    }
}

static uint64_t slot_min_age(uint8_t kind)
{
    /* a claimer between its claim CAS and its owner store, a client's slot
     * kept at hand: a second, as callers.c waits for the former */
    if (kind == SLOT_UNCOLLECTED) return EMBER__REPAIR_UNCOLLECTED_NS;
    return kind == SLOT_UNOWNED || kind == SLOT_LOST_FREE ? EMBER__HOUSEKEEPING_NS : 0;
}

/* Look at every slot (after the rings). Returns how many repairs it made;
 * *SEEN: something was wrong. */
static unsigned look_slots(struct sup *s, struct sup_repair *rp, bool *seen)
{
    struct ember__view *v = s->v;
    uint64_t now = ember__now_ns();
    for (uint32_t i = 0; i < v->nslots; i++)
        rp->word[i] = atomic_load_explicit(&v->slots[i].state, memory_order_acquire);
    mark_in_rings(rp, v);
    mark_held(s, rp);
    uint64_t fh = atomic_load(&v->free.h->head), ft = atomic_load(&v->free.h->tail);
    bool free_room = (int64_t)(ft - fh) >= 0 && ft - fh < v->nslots;
    unsigned fixed = 0;
    for (uint32_t i = 0; i < v->nslots; i++) {
        struct slot_mark *m = &rp->slots[i];
        uint32_t w = rp->word[i];
        uint8_t kind = judge_slot(rp, v, i, w, free_room);
        if (kind == SLOT_OK) {
            m->kind = SLOT_OK;
            continue;
        }
        *seen = true;
        if (m->kind != kind || m->w != w) { /* first sighting */
            *m = (struct slot_mark){ w, kind, now };
            continue;
        }
        if (now - m->since < slot_min_age(kind)) continue;
        m->kind = SLOT_OK;
        /* the word of both looks, once more: it may have moved since this look began */
        if (atomic_load(&v->slots[i].state) == w) fixed += fix_slot(v, i, w, kind);
    }
    return fixed;
}

uint64_t sup_repair(struct sup *s)
{
    struct ember__view *v = s->v;
    struct sup_repair *rp = s->repair;
    if (!rp) {
        rp = s->repair = calloc(1, sizeof *rp);
        if (rp) {
            rp->cells = calloc((size_t)(v->nrings + 1) * v->free.cap, sizeof *rp->cells);
            rp->slots = calloc(v->nslots, sizeof *rp->slots);
            rp->word = calloc(v->nslots, sizeof *rp->word);
            rp->held = calloc(v->nslots, sizeof *rp->held);
            rp->in = calloc(v->nslots, 1);
        }
        if (!rp || !rp->cells || !rp->slots || !rp->word || !rp->held || !rp->in) {
            sup_warn("no memory for the repair look's state: shared state is not checked");
            return EMBER__NEVER_NS;
        }
    }
    /* first the calls dead runners named: a RUNNING slot nobody names any
     * more is one of theirs, not a stray write's */
    sup_settle_unsure(s);
    bool seen = false;
    unsigned cells = 0, slots;
    for (uint32_t k = 0; k <= v->nrings; k++) cells += look_ring(rp, v, k, &seen);
    slots = look_slots(s, rp, &seen);
    /* the page table, if its lock is free now: the look never waits for it
     * (a lock word a stray write left "held" would hang it, and with it the
     * supervisor; it is tried again at the next look) */
    pthread_mutex_t *m = (pthread_mutex_t *)v->hdr->page_lock;
    int lr = pthread_mutex_trylock(m);
    uint32_t pages_before = 0, pages_after = 0;
    if (lr == 0 || lr == EOWNERDEAD) {
        for (uint32_t i = 0; i < v->npages; i++) pages_before += v->page_owner[i] != 0;
        ember__pages_repair_locked(v);
        for (uint32_t i = 0; i < v->npages; i++) pages_after += v->page_owner[i] != 0;
        if (lr == EOWNERDEAD) pthread_mutex_consistent(m);
        ember__pages_unlock(v);
    }
    if (pages_after < pages_before) { /* allocators waiting for pages may go on */
        atomic_fetch_add(&v->hdr->page_seq, 1);
        if (atomic_load(&v->hdr->page_waiters)) ember__futex_wake(&v->hdr->page_seq, INT_MAX);
    }
    if (cells || slots)
        sup_warn("shared state repaired: %u ring cells or counters, %u slots (a stray write "
                 "to the pool's segment?)", cells, slots);
    return seen ? EMBER__REPAIR_CONFIRM_NS : EMBER__REPAIR_NS;
}
