/* ember/detail/slot.h - the slot state machine: one request's life.
 *
 * A slot holds one call: its header line (state word, handler, owner,
 * deadline, receipt) and inline bytes. Every move between states is one CAS
 * on the state word, described below with the invariants S1-S4 that make a
 * process's death at any instruction repairable. Payloads beyond the inline
 * bytes live in pages (pages.h); a slot's index travels through the rings
 * (ring.h), which are hints the state word must confirm. */
#ifndef EMBER_DETAIL_SLOT_H
#define EMBER_DETAIL_SLOT_H

#include "view.h"
#include "wait.h"
#include "ring.h"

/* -- Slot state machine ------------------------------------------------------
 * A slot's state word is gen(16) << 16 | WAITER | state(4). Every transition
 * is one CAS on the whole word, so the generation makes a stale actor's CAS
 * fail, and the word doubles as the owner's futex.
 *
 *   FREE --claim (popper of the free ring; gen+1)--> CLAIMED
 *   CLAIMED --owner: fields written, then release--> QUEUED --push run ring
 *   QUEUED --runner (announced in its worker.current first)--> RUNNING
 *   QUEUED --runner: deadline already passed, status ETIMEDOUT--> DONE
 *   QUEUED --owner (deadline) or supervisor (owner died)--> FREE
 *   RUNNING --runner: result written first--> DONE   (wake if WAITER)
 *   RUNNING --owner: deadline passed, or the supervisor: its linked owner
 *           died--> ABANDONED --runner at end--> FREE
 *   RUNNING --supervisor: runner died, status ECRASHED (EPOISON after
 *           poison_after crashes)--> DONE (cast: FREE)
 *   RUNNING --supervisor: runner died, the call has retries left (flags,
 *           abi.h), no receipt written yet--> QUEUED, same generation and
 *           sticky bits (the owner waits on; the next DONE wakes it)
 *   DONE --owner: result released--> FREE
 *   (casts, and ORPHAN calls) RUNNING --runner at end--> FREE
 * Flag bits that ride along (kept by every CAS that keeps the state):
 *   WAITER   set by the owner before it sleeps on the word (S4);
 *   ORPHAN   set by the supervisor on an unlinked call whose owner died: it
 *            still runs, and whoever finishes it frees it instead of DONE;
 *   CANCEL   set by the owner (ember_cancel): a runner that takes it finishes
 *            it at once with ECANCELLED; a running handler sees it; the
 *            supervisor kills a runner that runs it on past kill_grace;
 *   STARTED  (children) set by the runner once it runs the call and has
 *            written slot.runner; wakes the owner like DONE does.
 * Invariants:
 *  S1. Exactly one process can move a slot out of any state: the owner out of
 *      CLAIMED and DONE, the runner named in the slot out of RUNNING and
 *      ABANDONED (or the supervisor once that runner is dead), owner and
 *      runners race out of QUEUED and the CAS picks one.
 *  S2. Whoever moves a slot to FREE returns its pages (read before the CAS)
 *      and pushes idx | gen16 << 16 on the free ring; a claimer sets the
 *      page fields to NONE, so a FREE slot owns nothing.
 *  S3. Fields are written before the CAS that publishes them (release) and
 *      read after the acquire load that sees that state.
 *  S4. WAITER is set by the owner (CAS) before it sleeps on the word; whoever
 *      moves the slot to DONE clears it in the same CAS and wakes if it was
 *      set: no lost wake-up, no wake when nobody sleeps.
 *  S5. The owner word is written by the claimer only after its claim CAS
 *      has won, and carries the slot generation it was written for: it
 *      names the owner of the state word's generation or of none. Two
 *      claimers racing for one slot cannot leave the loser's name on the
 *      winner's call (stores made before a CAS would: the loser's could
 *      land after the winner's). A claimer killed between the CAS and the
 *      store leaves a CLAIMED slot that names nobody; the supervisor frees
 *      it when it finds it so at two looks a second apart (callers.c).
 */
static inline uint32_t ember__st(uint32_t w) { return w & EMBER_SLOT_STATE_MASK; }
static inline uint32_t ember__gen(uint32_t w) { return w >> EMBER_SLOT_GEN_SHIFT; }
static inline uint32_t ember__mk(uint32_t gen, uint32_t st)
{
    return (gen << EMBER_SLOT_GEN_SHIFT) | st;
}
/* A ring entry: slot index and the low 16 bits of its generation. */
static inline uint32_t ember__entry(uint32_t idx, uint32_t gen)
{
    return idx | (gen & 0xffffu) << 16;
}

static inline void ember__pages_free(struct ember__view *v, uint32_t idx, uint32_t start);

/* The owner word of a slot of generation SLOT_GEN claimed by caller table
 * entry CALLER of generation CALLER_GEN (S5). */
static inline uint64_t ember__owner_word(uint32_t slot_gen, uint32_t caller, uint32_t caller_gen)
{
    return (uint64_t)(slot_gen & 0xffffu) << 48 | (uint64_t)(caller & 0xffffu) << 32 | caller_gen;
}

/* Is slot S, whose state word was read as W (acquire) just before, the call
 * of caller CALLER in generation CALLER_GEN? The acquire load of the owner
 * pairs with the claimer's release store after its claim CAS. */
static inline bool ember__owned_by(const struct ember_slot *s, uint32_t w, uint32_t caller,
                                   uint32_t caller_gen)
{
    return atomic_load_explicit(&s->owner, memory_order_acquire) ==
           ember__owner_word(ember__gen(w), caller, caller_gen);
}

/* Move slot IDX from the observed word W to FREE and give back its pages;
 * PUSH: also put it on the free ring (else its owner keeps it at hand, see
 * ember__slot_recycle). Returns false if the CAS lost (somebody else moved
 * it). */
static inline bool ember__slot_free_ex(struct ember__view *v, uint32_t idx, uint32_t w, bool push)
{
    struct ember_slot *s = &v->slots[idx];
    uint32_t ap = s->args_page, rp = s->res_page;
    uint32_t gen = ember__gen(w);
    if (!atomic_compare_exchange_strong_explicit(&s->state, &w, ember__mk(gen, EMBER_SLOT_FREE),
                                                 memory_order_seq_cst, memory_order_acquire))
        return false;
    if (ap != EMBER_NONE) ember__pages_free(v, idx, ap);
    if (rp != EMBER_NONE && rp != ap) ember__pages_free(v, idx, rp);
    if (push) ember__ring_push(&v->free, ember__entry(idx, gen));
    /* eventcount: free (seq_cst), then look for waiters; a waiter counts
     * itself, then reads slot_seq, then looks at the ring and at every slot
     * (ember__claim) */
    if (atomic_load_explicit(&v->hdr->slot_waiters, memory_order_seq_cst)) {
        if (!push) ember__ring_push(&v->free, ember__entry(idx, gen));
        atomic_fetch_add_explicit(&v->hdr->slot_seq, 1, memory_order_seq_cst);
        ember__futex_wake(&v->hdr->slot_seq, INT_MAX);
    }
    return true;
}

static inline bool ember__slot_free(struct ember__view *v, uint32_t idx, uint32_t w)
{
    return ember__slot_free_ex(v, idx, w, true);
}

/* Put a slot kept at hand (entry E) back on the free ring, unless somebody
 * has claimed it meanwhile (then E is stale: dropped, not left to fill the
 * ring). */
static inline void ember__hot_return(struct ember__view *v, uint32_t e)
{
    uint32_t idx = e & 0xffffu;
    if (e == EMBER_NONE || idx >= v->nslots) return;
    if (atomic_load_explicit(&v->slots[idx].state, memory_order_acquire) ==
        ember__mk(e >> 16, EMBER_SLOT_FREE))
        ember__ring_push(&v->free, e);
}

/* Runner: move the slot of ring entry generation GEN from QUEUED to
 * RUNNING, keeping the flag bits (the owner may set WAITER or CANCEL, the
 * supervisor ORPHAN, at any moment). The first CAS is blind (the expected word is known from the ring
 * entry), so the slot's line is fetched once, for writing. Returns false
 * when the slot is not QUEUED in that generation (expired, reclaimed, taken,
 * or a stale entry); *W is the word seen or written. */
static inline bool ember__slot_take(struct ember_slot *s, uint32_t gen, uint32_t *w)
{
    *w = ember__mk(gen, EMBER_SLOT_QUEUED);
    for (;;) {
        uint32_t rw = ember__mk(gen, EMBER_SLOT_RUNNING) | (*w & EMBER_SLOT_STICKY);
        if (atomic_compare_exchange_weak_explicit(&s->state, w, rw, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            *w = rw;
            return true;
        }
        if (ember__st(*w) != EMBER_SLOT_QUEUED || ember__gen(*w) != gen) return false;
    }
}

/* A caller's done_seq is even while its sleepers may not have been woken,
 * odd once a finisher has woken them: one wake-up per sleep, not one per
 * call that ends before the woken owner has run. A thread about to sleep
 * makes it even again and sleeps on that value (a failed CAS reloads it:
 * even means another sleeper did it). Seq_cst: in the single order with
 * the finishers' CAS, a finisher that saw it odd, or lost its CAS, comes
 * before this store, so its bit is seen by the look that follows it. */
static inline uint32_t ember__done_seq_arm(struct ember_caller_ent *ce)
{
    uint32_t s = atomic_load_explicit(&ce->done_seq, memory_order_seq_cst);
    for (;;) {
        if (!(s & 1)) return s;
        if (atomic_compare_exchange_weak_explicit(&ce->done_seq, &s, s + 1, memory_order_seq_cst,
                                                  memory_order_seq_cst))
            return s + 1;
    }
}

/* Tell the owner of NOTIFY call IDX, now DONE, that it is: its bit in the
 * owner's done bitmap, then a wake-up if the owner sleeps (ember_wait_any,
 * detail/any.h). The fetch_or (seq_cst) and the load of done_armed
 * (seq_cst) pair with the owner's increment of done_armed and its look at
 * the bitmap: one of the two sees the other. Only the finisher that moves
 * done_seq from even to odd wakes (seq_cst CAS, pairs with
 * ember__done_seq_arm): a later one finds it odd, or loses the CAS to the
 * one that wakes; a sleeper that armed after that look sees the bit. */
static inline void ember__notify_owner(struct ember__view *v, const struct ember_slot *s, uint32_t idx)
{
    uint32_t caller = (uint32_t)(atomic_load_explicit(&s->owner, memory_order_acquire) >> 32) & 0xffffu;
    if (caller >= v->ncallers) return; /* scribbled */
    EMBER_ATOMIC(uint64_t) *bits = ember__done_bits(v, caller);
    atomic_fetch_or_explicit(&bits[idx / 64], 1ull << (idx % 64), memory_order_seq_cst);
    struct ember_caller_ent *ce = &v->callers[caller];
    if (atomic_load_explicit(&ce->done_armed, memory_order_seq_cst)) {
        uint32_t seq = atomic_load_explicit(&ce->done_seq, memory_order_seq_cst);
        if (!(seq & 1) && atomic_compare_exchange_strong_explicit(&ce->done_seq, &seq, seq + 1,
                                                                  memory_order_seq_cst,
                                                                  memory_order_seq_cst))
            ember__futex_wake(&ce->done_seq, INT_MAX);
    }
}

/* Move a finished slot to DONE (call) or FREE (cast, orphan) with STATUS; wakes a
 * sleeping owner. W is the RUNNING (or QUEUED) word as last seen or written
 * (a stale one only costs a failed CAS). Returns false
 * if the CAS lost; if the slot turned ABANDONED, frees it. *ENDED (if not
 * NULL): the status the call ended with (a cancel may replace STATUS). */
static inline bool ember__slot_finish_ex(struct ember__view *v, uint32_t idx, uint32_t w, int status,
                                         int detail, int *ended)
{
    if (ended) *ended = status;
    struct ember_slot *s = &v->slots[idx];
    const uint32_t gen0 = ember__gen(w);
    for (;;) {
        uint32_t st = ember__st(w);
        if (ember__gen(w) != gen0) return false;
        if (st == EMBER_SLOT_ABANDONED) return ember__slot_free(v, idx, w);
        if (st != EMBER_SLOT_RUNNING && st != EMBER_SLOT_QUEUED) return false;
        if ((s->flags & EMBER_CALL_CAST) || (w & EMBER_SLOT_ORPHAN)) {
            if (ember__slot_free(v, idx, w)) return true;
        } else {
            /* cancelled while it ran: a result or a handler's error is
             * reported as the cancel (the CAS below fails if the flag comes
             * after this look, and the loop looks again) */
            bool cancel = (w & EMBER_SLOT_CANCEL) && (status == 0 || status == -EMBER_EHANDLER);
            s->status = cancel ? -EMBER_ECANCELLED : status;
            if (ended) *ended = cancel ? -EMBER_ECANCELLED : status;
            s->detail = cancel ? 0 : detail;
            uint32_t nw = ember__mk(ember__gen(w), EMBER_SLOT_DONE);
            if (atomic_compare_exchange_strong_explicit(&s->state, &w, nw, memory_order_acq_rel,
                                                        memory_order_acquire)) {
                if (w & EMBER_SLOT_WAITER) ember__futex_wake(&s->state, INT_MAX);
                if (s->flags & EMBER_CALL_NOTIFY) ember__notify_owner(v, s, idx);
                return true;
            }
            continue; /* w reloaded by the failed CAS */
        }
        w = atomic_load_explicit(&s->state, memory_order_acquire);
    }
}

static inline bool ember__slot_finish(struct ember__view *v, uint32_t idx, uint32_t w, int status,
                                      int detail)
{
    return ember__slot_finish_ex(v, idx, w, status, detail, NULL);
}

/* The owner of slot IDX is gone: give the slot up for good. DIED: it died
 * (the supervisor saw its pidfd) rather than detached. Linked work stops:
 * queued calls are freed (never run), running ones abandoned (the handler
 * sees its cancel flag; the supervisor kills a runner that runs on past
 * kill_grace). Unlinked calls run on as orphans, freed by whoever finishes
 * them; so do casts of a caller that detached (a normal exit). Claimed and
 * finished slots are freed. Retries until a CAS lands, since a runner may
 * move the slot between the read and the CAS (a free lost to a runner's take
 * would otherwise leave a DONE slot that nobody releases).
 * GEN is the generation in which the caller saw the slot as that owner's
 * (ember__owned_by: the state word first, then the owner word, S5). */
static inline void ember__slot_disown(struct ember__view *v, uint32_t idx, uint32_t gen, bool died)
{
    struct ember_slot *s = &v->slots[idx];
    uint32_t w = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        if (ember__gen(w) != gen) return; /* claimed anew since: not the old owner's */
        uint32_t st = ember__st(w), fl = s->flags;
        bool runs_on = (fl & EMBER_UNLINKED) || ((fl & EMBER_CALL_CAST) && !died);
        switch (st) {
        case EMBER_SLOT_QUEUED:
        case EMBER_SLOT_RUNNING:
            if (runs_on && !(w & EMBER_SLOT_CANCEL)) {
                if ((fl & EMBER_CALL_CAST) || (w & EMBER_SLOT_ORPHAN)) return;
                if (atomic_compare_exchange_strong(&s->state, &w, w | EMBER_SLOT_ORPHAN)) return;
                continue; /* w reloaded */
            }
            if (st == EMBER_SLOT_RUNNING) {
                if (atomic_compare_exchange_strong(&s->state, &w,
                                                   ember__mk(ember__gen(w), EMBER_SLOT_ABANDONED)))
                    return;
                continue;
            }
            __attribute__((fallthrough)); /* a queued linked call never runs */
        case EMBER_SLOT_CLAIMED:
        case EMBER_SLOT_DONE:
            if (ember__slot_free(v, idx, w)) return;
            break;
        default: /* FREE or ABANDONED: nothing is ours */
            return;
        }
        w = atomic_load_explicit(&s->state, memory_order_acquire);
    }
}

#include "pages.h" /* ember__pages_free */

#endif /* EMBER_DETAIL_SLOT_H */
