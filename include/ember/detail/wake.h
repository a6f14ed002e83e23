/* ember/detail/wake.h - making sure a runner takes a queued call.
 *
 * After a push the producer wakes a parked worker only when no
 * thread spins for work (the eventcount below), chooses the least-loaded
 * runner of the call's node, and asks the supervisor for growth when no
 * thread at all will take the call. Also here: the supervisor's doorbell. */
#ifndef EMBER_DETAIL_WAKE_H
#define EMBER_DETAIL_WAKE_H

#include "slot.h"

/* The eventcount. Producer (here): push (seq_cst cell CAS), then load nparked, then
 * the idle spinner count in hdr.spin (seq_cst). A worker going to sleep: set its park word
 * PARKED and nparked++ (seq_cst), stop counting itself among the idle spinners, then
 * look at the ring once more before sleeping. In the single total order either
 * the producer sees the parked thread (and wakes one) or the thread's last
 * look sees the pushed entry. A spinner that takes an entry and sees more left
 * wakes the next one (see src/runner/worker.c), so counting a spinner that is about to
 * get busy loses nothing. The parked thread woken is one of the least-loaded
 * runner with a parked thread; it is claimed by CAS PARKED -> WOKEN, so two
 * producers never spend their wake-ups on the same thread. With several
 * nodes each run ring also counts its node's spinners, changed at the same
 * points as hdr.spin, so the same argument holds per node. */
/* hdr.spin: a worker spinning for work counts in both halves, a
 * caller spinning for its result in the low half only (see abi.h) */
#define EMBER_SPIN_IDLE ((1ull << 32) | 1ull)
static inline int32_t ember__spinners(uint64_t w) { return (int32_t)((uint32_t)w - EMBER_SPIN_BIAS); }
static inline int32_t ember__idle_spinners(uint64_t w)
{
    return (int32_t)((uint32_t)(w >> 32) - EMBER_SPIN_BIAS);
}

/* May a worker with nothing to take spin for work, hdr.spin being W?
 * While spinners do not outnumber CPUs, yes. Beyond that, only if no other
 * worker spins for work: the callers spinning for their results are
 * waiting for a worker, and parking the last one would turn each of their
 * calls into a wake-up, paid by the caller (futex_wake) and by the
 * runner's latency. Callers preempted while they spin stay counted, so
 * callers that share a CPU (more of them than CPUs) fill the count without
 * taking a CPU each; they must not push the workers into parking. */
static inline bool ember__worker_may_spin(uint64_t w, uint32_t ncpus)
{
    return ember__idle_spinners(w) <= 0 || ember__spinners(w) < (int32_t)ncpus;
}

/* Wake one parked thread of the least-loaded READY runner that has one
 * (of ring RING only, if LOCAL; else that ring's runners first). LOCAL also
 * counts a thread of that ring already woken and not yet running: it looks
 * at its own ring first, so it takes the call (or an earlier one, and then
 * chains a wake-up on, see src/runner/worker.c). */
static inline bool ember__wake_one(struct ember__view *v, uint32_t ring, bool local)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        uint32_t best = EMBER_NONE, best_key = UINT32_MAX;
        bool woken = false;
        for (uint32_t r = 0; r < v->nrunners; r++) {
            struct ember_runner_ent *re = &v->runners[r];
            if (atomic_load_explicit(&re->state, memory_order_acquire) != EMBER_RUNNER_READY)
                continue;
            if (local && re->ring != ring) continue;
            uint32_t load = 0;
            bool parked = false;
            for (uint32_t t = 0; t < v->max_conc; t++) {
                struct ember_worker_ent *we = &v->workers[r * v->max_conc + t];
                load += atomic_load_explicit(&we->busy, memory_order_relaxed);
                uint32_t ps = atomic_load_explicit(&we->park, memory_order_seq_cst);
                parked |= ps == EMBER_WORKER_PARKED;
                woken |= ps == EMBER_WORKER_WOKEN;
            }
            uint32_t key = (uint32_t)(re->ring != ring) << 16 | (load & 0xffffu);
            if (parked && key < best_key) best = r, best_key = key;
        }
        if (best == EMBER_NONE) return local && woken;
        for (uint32_t t = 0; t < v->max_conc; t++) {
            EMBER_ATOMIC(uint32_t) *pw = &v->workers[best * v->max_conc + t].park;
            uint32_t exp = EMBER_WORKER_PARKED;
            if (atomic_compare_exchange_strong(pw, &exp, EMBER_WORKER_WOKEN)) {
                ember__futex_wake(pw, 1);
                return true;
            }
        }
    }
    return false;
}

/* A call was pushed on ring RING: make sure a worker will take it.
 * With several nodes, a spinner of the call's node takes it; failing that a
 * parked thread of that node is woken rather than leaving the call to
 * another node's spinner (which steals it only after a few microseconds,
 * see src/runner/worker.c): the work runs where its caller's memory is. */
static inline bool ember__wake_runner(struct ember__view *v, uint32_t ring)
{
    if (atomic_load_explicit(&v->hdr->nparked, memory_order_seq_cst) <= 0) return false;
    if (v->nrings > 1) {
        if (atomic_load_explicit(&v->run[ring].h->spinners, memory_order_seq_cst) > 0) return false;
        if (ember__wake_one(v, ring, true)) return true;
    }
    if (ember__idle_spinners(atomic_load_explicit(&v->hdr->spin, memory_order_seq_cst)) > 0)
        return false;
    return ember__wake_one(v, ring, false);
}

/* The run ring of the node this thread runs on (getcpu through rseq or
 * the vDSO: no system call). */
static inline uint32_t ember__my_ring(const struct ember__view *v)
{
    if (v->nrings == 1) return 0;
    int cpu = sched_getcpu();
    if (cpu < 0 || (uint32_t)cpu >= v->ncpu_map) return 0;
    uint32_t r = v->cpu_ring[cpu];
    return r < v->nrings ? r : 0;
}

/* Is any call waiting in any ring? Ring FIRST is looked at first. */
static inline bool ember__any_queued(const struct ember__view *v, uint32_t first)
{
    if (ember__ring_nonempty(&v->run[first])) return true;
    for (uint32_t i = 0; i < v->nrings; i++)
        if (i != first && ember__ring_nonempty(&v->run[i])) return true;
    return false;
}

/* Tell the supervisor to look at the pool (callers attached or detached,
 * growth wanted, a runner ready or draining, a resize). */
static inline void ember__ring_doorbell(struct ember__view *v)
{
    atomic_fetch_add(&v->hdr->doorbell, 1);
    ember__futex_wake(&v->hdr->doorbell, 1);
}

/* A call was pushed and no worker was woken or spinning for it: ask
 * the supervisor to look at the pool's size (it boots a runner if every one
 * is full and there is room below max). One doorbell per request: the flag
 * stays set until the supervisor has looked, and a pool at max asks nothing. */
static inline void ember__ask_growth(struct ember__view *v)
{
    struct ember_shm_header *h = v->hdr;
    if (atomic_load_explicit(&h->at_max, memory_order_relaxed)) return;
    if (ember__idle_spinners(atomic_load_explicit(&h->spin, memory_order_seq_cst)) > 0) return;
    if (atomic_load_explicit(&h->grow_req, memory_order_relaxed)) return;
    if (atomic_exchange(&h->grow_req, 1)) return;
    ember__ring_doorbell(v);
}

#endif /* EMBER_DETAIL_WAKE_H */
