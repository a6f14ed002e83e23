/* runner/worker.c - a runner's workers.
 *
 * Each worker runs the loop:
 *   take an entry from the run ring -> run it -> again;
 *   when the ring is empty: spin (adaptive budget, only while spinners do not
 *   outnumber CPUs or no other worker spins for work), then park on its own
 *   futex word.
 * Counters and crash safety. A thread's state word (ACTIVE, SPINNING, PARKED,
 * WOKEN) and the global counters change in an order chosen so that a thread
 * killed between the two steps leaves the counters on the harmless side,
 * given that the supervisor subtracts the dead thread's state:
 *   the idle spinner count (high half of hdr.spin) may only end up too low
 *   (a producer then wakes a thread it did not need to), never too high
 *   (which would make producers skip a needed wake): state first then
 *   counter when starting to spin, counter first then state when stopping.
 *   nparked may only end up too high (a producer then scans for a parked
 *   thread and finds none): counter first then state when parking, state
 *   first then counter when leaving.
 * Wake chaining: a thread that takes an entry and sees more left wakes one
 * more thread (ember__wake_runner), so a spinner that producers counted on
 * but that got busy loses no wake-up.
 * Nodes: a thread takes from its own node's run ring first; from the other
 * rings only after a wake-up or after spinning EMBER__STEAL_AFTER iterations
 * with nothing of its own (stealing), and it looks at all of them before it
 * parks.
 * Job credits (max_jobs, single_use): a thread takes a credit from
 * runner.jobs_left before each take from the ring and gives it back if the
 * ring was empty; the thread that takes the last credit drains the runner at
 * once, so its replacement boots while that last call runs. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include "runner/runner.h"

/* Spin iterations (about 5 us) a spinning thread leaves another node's calls
 * to that node's own runners before it steals them. */
#define EMBER__STEAL_AFTER 256u

/* The receipt of a call this runner took at T0: who, where, when. */
static inline void receipt(struct ember_slot *s, uint64_t t0)
{
    s->runner = (uint16_t)ember__self.runner;
    s->runner_gen = (uint16_t)ember__self.gen;
    s->t_start_ns = t0;
    s->node = ember__self.node;
}

/* Count a call worker WI took at T0 (queued at TQ, as its caller wrote;
 * 0 or later than T0: not a time to trust) for handler H, which ended with
 * STATUS at T1 (0: its handler did not run). Its own block only, after
 * the DONE: the caller has its result by then (detail/metrics.h). */
static inline void count_call(struct ember__view *v, uint32_t wi, uint32_t h, int status, uint64_t tq,
                              uint64_t t0, uint64_t t1)
{
    ember__count_end(v, wi, h, status);
    if (h >= v->nhandlers) return;
    struct ember_handler_count *hc = ember__handler_counts(v, wi, h);
    if (tq && tq <= t0) ember__hist_add(hc->wait, &hc->wait_sum_ns, t0 - tq);
    if (t1) ember__hist_add(hc->run, &hc->run_sum_ns, t1 > t0 ? t1 - t0 : 0);
}

/* A child's owner waits until it runs: set STARTED (waking the owner) on
 * the RUNNING word W of generation GEN; returns the word now. */
static inline uint32_t announce_child(struct ember_slot *s, uint32_t gen, uint32_t w)
{
    for (;;) {
        if (ember__gen(w) != gen || ember__st(w) != EMBER_SLOT_RUNNING) return w;
        uint32_t nw = (w | EMBER_SLOT_STARTED) & ~EMBER_SLOT_WAITER;
        if (atomic_compare_exchange_weak_explicit(&s->state, &w, nw, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            if (w & EMBER_SLOT_WAITER) ember__futex_wake(&s->state, INT_MAX);
            return nw;
        }
    }
}

/* Run handler H of slot IDX with its arguments into O; the call's status,
 * its *DETAIL, and in *T1 the coarse time it ended (0: it did not run). */
static inline int call_handler(struct ember__view *v, uint32_t idx, ember_out *o, uint32_t h,
                               uint32_t alen, uint32_t apage, uint64_t deadline, uint32_t gen,
                               int *detail, uint64_t *t1)
{
    struct ember_slot *s = &v->slots[idx];
    const void *args;
    o->v = v, o->s = s, o->idx = idx, o->buf = o->inl, o->len = 0;
    o->cap = EMBER_INLINE_MAX, o->page = EMBER_NONE, o->deadline = deadline;
    o->err = o->space_err = o->space_kib = 0;
    *detail = 0;
    *t1 = 0;
    int bad = ember__request_check(v, s, h, alen, apage, ember__nhandlers, &args);
    if (bad) return bad;
    ember_job job = { deadline, ember__self.runner, ember__self.node, &s->state, gen };
    const struct ember__handler *hd = &ember__handlers[h];
    EMBER__PAGES_ACQUIRE(v);
    int rc = hd->pfn ? hd->pfn(hd->ctx, args, alen, o, &job) : hd->fn(args, alen, o, &job);
    EMBER__PAGES_RELEASE(v);
    ember__prefetch_w(s); /* the line, back for the result */
    int status = 0;
    if (rc == -EMBER_EIMAGE && h == EMBER__FN_HANDLER) status = rc;
    else if (rc) status = -EMBER_EHANDLER, *detail = rc;
    if (o->space_err) status = o->space_err, *detail = o->space_kib; /* not the runner's fault */
    /* one deadline covers queueing and running: a result that comes after
     * it is a timeout, as the caller would have seen it (a call cancelled
     * while it ran ends cancelled: ember__slot_finish sees the flag in the
     * word it replaces) */
    if (ember__expired_at(deadline, *t1 = ember__now_coarse_ns()))
        status = -EMBER_ETIMEDOUT, *detail = EMBER_TIMEOUT_RUNNING;
    return status;
}

/* Run the call behind ring entry E, if its slot still agrees (runner.h). */
void ember__run_entry(struct ember__view *v, uint32_t e, ember_out *o, struct ember_worker_ent *we)
{
    uint32_t idx = e & 0xffffu, gen = e >> 16, w;
    if (idx >= v->nslots) return; /* scribbled entry */
    struct ember_slot *s = &v->slots[idx];
    /* announced in our own line before the take, so that the supervisor can
     * attribute the call to us if we die right after it (see
     * src/supervisor/runners.c) */
    /* release: after this thread's busy = 0 of its last call, so that the
     * supervisor, which reads the name and then busy (acquire, runners.c
     * named_live), never takes that old busy for the take of E */
    atomic_store_explicit(&we->current, e, memory_order_release);
    /* the start time is read while the slot's line is on its way (a call
     * whose deadline passes between this and the take runs: the coarse
     * clock is that coarse anyway) */
    uint64_t t0 = ember__now_coarse_ns();
    if (!ember__slot_take(s, gen, &w)) { /* the owner gave up, or a stale entry */
        atomic_store_explicit(&we->current, EMBER_NONE, memory_order_relaxed);
        return;
    }
    /* The slot's first line is the one its owner is polling: from the take
     * to the DONE CAS the runner does as little as it can, since each poll
     * of the owner in between takes the line back, and the result's stores
     * then have to fetch it once more. The runner reads the line once, right
     * after the take (the call's fields, in one burst), and writes it again
     * only for the result: its stores in one burst ending with the DONE CAS,
     * which expects the word of the take (a flag set since makes it fail
     * once and retry). Its own bookkeeping waits until after DONE. Who runs
     * the call is known from we->current. Two coarse clock reads a call. */
    const uint64_t deadline = s->deadline_ns, tq = s->t_start_ns;
    const uint32_t h = s->handler, flags = s->flags, alen = s->args_len, apage = s->args_page;
    const uint32_t wi = (uint32_t)(we - v->workers);
    bool expired = ember__expired_at(deadline, t0);
    if (expired || (w & EMBER_SLOT_CANCEL)) { /* expired or cancelled in the queue: never run */
        receipt(s, t0);
        if (expired) atomic_fetch_add_explicit(&v->hdr->calls_expired, 1, memory_order_relaxed);
        int st = expired ? -EMBER_ETIMEDOUT : -EMBER_ECANCELLED;
        if (ember__slot_finish(v, idx, w, st, expired ? EMBER_TIMEOUT_QUEUED : 0))
            count_call(v, wi, h, st, tq, t0, 0);
        /* release: the supervisor that sees the name gone sees DONE too */
        atomic_store_explicit(&we->current, EMBER_NONE, memory_order_release);
        return;
    }
    if (flags & EMBER_CALL_CHILD) { /* tell the owner where it runs */
        receipt(s, t0);
        w = announce_child(s, gen, w);
    }
    atomic_store_explicit(&we->job_deadline, deadline, memory_order_relaxed);
    atomic_store_explicit(&we->busy, 1, memory_order_release);
    int detail;
    uint64_t t1;
    int status = call_handler(v, idx, o, h, alen, apage, deadline, gen, &detail, &t1);
    /* the receipt before the result's bytes: once the inline ones are
     * written the arguments are gone, and the supervisor does not run again
     * (EMBER_RETRIES) a call whose runner died after its receipt; the
     * compiler barrier keeps that order for the instant of a SIGKILL (the
     * supervisor reads the slot after reaping this process) */
    receipt(s, t0);
    atomic_signal_fence(memory_order_seq_cst);
    /* a handler that fails keeps what it wrote: its message for the caller */
    bool keep = status == 0 || status == -EMBER_EHANDLER;
    if (keep) {
        if (o->page == EMBER_NONE && o->len) memcpy(s->data, o->inl, o->len);
        /* an inline result says so itself: the caller reads res_page, which
         * only its claim set to NONE, and a stray write may have changed
         * since (it would read another call's pages) */
        if (o->page == EMBER_NONE) s->res_page = EMBER_NONE;
    } else if (o->page != EMBER_NONE) {
        s->res_page = EMBER_NONE;
        ember__pages_free(v, idx, o->page);
    }
    ember__prefetch_w(s);
    if (keep) s->res_len = (uint32_t)o->len;
    int ended; /* a call cancelled while it ran ends cancelled */
    if (ember__slot_finish_ex(v, idx, w, status, detail, &ended)) count_call(v, wi, h, ended, tq, t0, t1);
    atomic_store_explicit(&we->idle_since, t1 ? t1 : ember__now_coarse_ns(), memory_order_relaxed);
    atomic_store_explicit(&we->busy, 0, memory_order_release);
    atomic_store_explicit(&we->jobs_done, atomic_load_explicit(&we->jobs_done, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    /* release: after DONE and busy = 0; pairs with the supervisor's acquire
     * of the name (runners.c named_live): a name seen gone means the call's
     * end is seen too */
    atomic_store_explicit(&we->current, EMBER_NONE, memory_order_release);
}

/* Stop taking calls, for REASON; the control thread then ends the runner. */
void ember__drain_self(struct ember__view *v, uint32_t reason)
{
    struct ember_runner_ent *re = &v->runners[ember__self.runner];
    /* from READY, or from BOOTING: a worker may take its runner's last
     * credit before the control thread has said READY (which then fails,
     * and the runner ends as drained, with this reason) */
    uint32_t st = EMBER_RUNNER_READY;
    if (atomic_compare_exchange_strong(&re->state, &st, EMBER_RUNNER_DRAINING) ||
        (st == EMBER_RUNNER_BOOTING &&
         atomic_compare_exchange_strong(&re->state, &st, EMBER_RUNNER_DRAINING)))
        atomic_store(&re->reason, reason);
    atomic_store(&ember__self.draining, true);
    ember__futex_wake(&re->ctl, 1);
    ember__ring_doorbell(v); /* a replacement can boot now */
}

/* Start fetching, for writing, the slot behind a queued entry: when calls
 * arrive faster than one at a time, their slots' cache misses overlap
 * instead of each stalling the runner in turn. */
static void prefetch_slot(uint32_t e, void *arg)
{
    struct ember__view *v = arg;
    uint32_t idx = e & 0xffffu;
    if (idx < v->nslots) ember__prefetch_w(&v->slots[idx]);
}

/* Pop a call: from our node's ring first; from the others (stealing) only
 * when ours is empty and STEAL. *FROM is the ring it came from. */
static uint32_t pop_any(struct ember__view *v, uint32_t *from, bool steal)
{
    uint32_t e = ember__ring_pop(&v->run[ember__self.ring]);
    *from = ember__self.ring;
    for (uint32_t k = 1; steal && e == EMBER_NONE && k < v->nrings; k++) {
        *from = (ember__self.ring + k) % v->nrings;
        e = ember__ring_pop(&v->run[*from]);
    }
    return e;
}

/* Take the next call, if any; with job credits, only while there are some. */
static uint32_t take_next(struct ember__view *v, uint32_t *from, bool steal)
{
    if (!ember__self.limited) return pop_any(v, from, steal);
    if (steal ? !ember__any_queued(v, ember__self.ring) : !ember__ring_nonempty(&v->run[ember__self.ring]))
        return EMBER_NONE;
    _Atomic int64_t *left = &v->runners[ember__self.runner].jobs_left;
    int64_t had = atomic_fetch_sub(left, 1);
    if (had <= 0) {
        atomic_fetch_add(left, 1);
        ember__drain_self(v, ember__self.cfg->single_use ? EMBER_WHY_SINGLE_USE : EMBER_WHY_MAX_JOBS);
        return EMBER_NONE;
    }
    uint32_t e = pop_any(v, from, steal);
    if (e == EMBER_NONE) atomic_fetch_add(left, 1);
    else if (had == 1) ember__drain_self(v, ember__self.cfg->single_use ? EMBER_WHY_SINGLE_USE : EMBER_WHY_MAX_JOBS);
    return e;
}

/* Spin for work with thread state word WS: true when a call is there to
 * take (*STEAL: it is another node's). The state, then both counters in one
 * step when starting; the counters, then the state when stopping. */
static bool spin_for_work(struct ember__view *v, EMBER_ATOMIC(uint32_t) *ws, bool *steal)
{
    struct ember_shm_header *h = v->hdr;
    const uint32_t ring = ember__self.ring;
    atomic_store_explicit(ws, EMBER_WORKER_SPINNING, memory_order_release);
    atomic_fetch_add(&h->spin, EMBER_SPIN_IDLE);
    if (v->nrings > 1) atomic_fetch_add(&v->run[ring].h->spinners, 1);
    uint64_t stop = ember__now_ns() + ember__spin_budget;
    bool found = false;
    for (unsigned i = 1;; i++) {
        uint32_t front = ember__ring_front(&v->run[ring]);
        if (front != EMBER_NONE) { /* its slot's line starts on its way now */
            prefetch_slot(front, v);
            found = true;
            break;
        }
        /* another node's call: leave it to that node's runners for a few
         * microseconds, then steal it */
        if (v->nrings > 1 && i >= EMBER__STEAL_AFTER && (i & 15) == 0 && ember__any_queued(v, ring)) {
            found = *steal = true;
            break;
        }
        ember__spin_step(i);
        if ((i & 255) == 0 && (ember__now_ns() >= stop ||
                               atomic_load_explicit(&ember__self.draining, memory_order_relaxed)))
            break;
    }
    if (v->nrings > 1) atomic_fetch_sub(&v->run[ring].h->spinners, 1);
    atomic_fetch_sub(&h->spin, EMBER_SPIN_IDLE);
    atomic_store_explicit(ws, EMBER_WORKER_ACTIVE, memory_order_release);
    if (found) ember__spin_won();
    else ember__spin_lost();
    return found;
}

/* Park on WS: announce (nparked first), look once more, sleep (bounded:
 * belt and braces), leave (state first). */
static void park(struct ember__view *v, EMBER_ATOMIC(uint32_t) *ws)
{
    struct ember_shm_header *h = v->hdr;
    atomic_fetch_add(&h->nparked, 1);
    atomic_store(ws, EMBER_WORKER_PARKED);
    if (!ember__any_queued(v, ember__self.ring) && !atomic_load(&ember__self.draining))
        ember__futex_wait(ws, EMBER_WORKER_PARKED, ember__now_ns() + 1000000000ull);
    atomic_store(ws, EMBER_WORKER_ACTIVE);
    atomic_fetch_sub(&h->nparked, 1);
}

void *ember__worker_main(void *arg)
{
    struct ember__view *v = ember__self.view;
    struct ember_shm_header *h = v->hdr;
    uint32_t wi = ((struct worker_arg *)arg)->wi;
    _Atomic uint32_t *ws = &v->workers[wi].park;
    ember_out *o = malloc(sizeof *o);
    if (!o) ember__runner_exit(EMBER__EXIT_RUNNER_NOMEM);
    /* steal: another node's calls may be taken (after a wake-up, or after
     * spinning a while without any of our own node's) */
    bool steal = true;
    while (!atomic_load_explicit(&ember__self.draining, memory_order_relaxed)) {
        uint32_t from;
        uint32_t e = take_next(v, &from, steal);
        steal = false;
        if (e != EMBER_NONE) {
            if (from != ember__self.ring)
                atomic_store_explicit(&v->workers[wi].jobs_stolen,
                                      atomic_load_explicit(&v->workers[wi].jobs_stolen,
                                                           memory_order_relaxed) + 1,
                                      memory_order_relaxed);
            if (ember__ring_nonempty(&v->run[from])) {
                ember__wake_runner(v, from);
                ember__ring_peek(&v->run[from], 4, prefetch_slot, v);
            }
            ember__run_entry(v, e, o, &v->workers[wi]);
            continue;
        }
        if (atomic_load_explicit(&ember__self.draining, memory_order_relaxed)) break;
        /* spin (while spinners do not outnumber CPUs, or nobody else
         * spins for work: ember__worker_may_spin), then park */
        if (ember__worker_may_spin(atomic_load_explicit(&h->spin, memory_order_relaxed), v->ncpus) &&
            spin_for_work(v, ws, &steal))
            continue;
        park(v, ws);
        steal = true; /* woken for a call, or it was there before we slept */
    }
    /* draining: a call we were woken for, or one still queued, goes to
     * another runner, or the supervisor boots one */
    if (ember__any_queued(v, ember__self.ring) && !ember__wake_runner(v, ember__self.ring)) ember__ring_doorbell(v);
    free(o);
    return NULL;
}
