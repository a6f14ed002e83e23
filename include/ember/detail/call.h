/* ember/detail/call.h - the client's handle and the call path.
 *
 * A call: claim a free slot (the one this caller released last, kept at
 * hand, else one from the free ring), fill it, publish it QUEUED, push its
 * entry on the caller's node's run ring, make sure a runner will take it
 * (wake.h); then wait on the slot's word (spin, then park, wait.h) until a
 * runner has moved it to DONE, collect the result and release the slot.
 * Every wait is bounded and checks the supervisor's pidfd: a dead pool is a
 * result, never a hang. No system call on the warm path. */
#ifndef EMBER_DETAIL_CALL_H
#define EMBER_DETAIL_CALL_H

#include "control.h"
#include "pages.h"
#include "metrics.h"

/* A thread's calls for ember_wait_any in submission order (ember_client.fifo) */
struct ember__fifo { uint32_t head, tail; uint32_t *ent; };

struct ember_client {
    struct ember__view v;
    /* the slot each submitting thread released last, FREE but kept off the
     * free ring (idx | gen << 16, or EMBER_NONE): hot[k] for the thread of
     * counter k >= 1 (ember__submit_counter), its only user, with plain
     * loads and stores; hot[0] for the threads beyond, by exchange. The
     * next call takes it back with one CAS, its line still in this CPU's
     * cache; anybody may claim it meanwhile (ember__claim looks at every
     * slot before it waits; the supervisor's repair puts a FREE slot that
     * stays off the ring, a thread that ended left it, back on it) */
    EMBER_ATOMIC(uint32_t) hot[EMBER_SUBMIT_COUNTERS];
    int sup_pidfd;
    uint32_t caller_idx, caller_gen;
    char name[EMBER_NAME_MAX];
    /* ember_wait_any's bookkeeping (any.h), process-local: a bit per slot
     * of this client's NOTIFY calls not collected yet ("mine"; whoever
     * clears a bit collects that call), each one's generation and deadline,
     * the bits taken from the shared done bitmap and not yet looked at
     * ("ready"), the earliest deadline among them (a lower bound: it may
     * be an expired or collected call's). How many are in flight is not
     * counted: a look at "mine" says whether there are any, when nothing
     * was found to return, instead of two RMWs on every call. "mine" and
     * "ready" each have a summary, a bit per word that may be non-zero
     * (ember__set_add), so that a look reads the few words in use rather
     * than all of them. */
    EMBER_ATOMIC(uint64_t) *mine, *ready, *mine_sum, *ready_sum;
    EMBER_ATOMIC(uint32_t) *mine_gen;
    uint64_t *mine_deadline;
    EMBER_ATOMIC(uint64_t) next_deadline;
    struct ember__cq *cq;                   /* ember_completion_fd's ring, or NULL */
    /* the threads that count their calls in a counter of their own of the
     * caller entry (calls_submitted[k], k >= 1: a plain load and store, no
     * locked instruction on the submit path): each k's thread, named by the
     * address of its ember__submit_cache (0: k is free); claimed by CAS,
     * never given back (a thread that ended leaves its counter to a thread
     * that reuses its address, or to nobody). SERIAL tells this client
     * from any other that lived at this address, for the threads' caches. */
    uint64_t serial;
    EMBER_ATOMIC(uintptr_t) submit_owner[EMBER_SUBMIT_COUNTERS];
    /* ember_wait_any's first look (any.h, ember__any_fifo): the calls each
     * thread k >= 1 submitted, in the order it submitted them, as ring
     * entries (idx | gen << 16); written and read by that thread only, so
     * plain loads and stores. A hint: whoever clears a call's bit in
     * "mine" collects it, and entries of calls collected otherwise are
     * dropped when they come to the head. ENT is allocated at the thread's
     * first submit (NULL: none, the calls are found through the bitmap, as
     * they are while the ring is full). */
    struct ember__fifo fifo[EMBER_SUBMIT_COUNTERS];
};
#define EMBER__FIFO_CAP 1024u /* entries of a thread's fifo; a power of two */

/* This thread's counter in the client it last submitted through (SERIAL):
 * K, 0 when it has none of its own. */
static __thread struct { uint64_t serial; uint32_t k; } ember__submit_cache;

/* Which of the caller entry's counters this thread counts its calls in. */
static inline uint32_t ember__submit_counter(ember_client *c)
{
    if (ember__submit_cache.serial == c->serial) return ember__submit_cache.k;
    const uintptr_t me = (uintptr_t)&ember__submit_cache;
    uint32_t k = 0;
    for (uint32_t i = 1; i < EMBER_SUBMIT_COUNTERS && !k; i++) {
        /* relaxed: the owner word only names a thread, it publishes no data */
        uintptr_t o = atomic_load_explicit(&c->submit_owner[i], memory_order_relaxed);
        if (o == 0 && atomic_compare_exchange_strong_explicit(&c->submit_owner[i], &o, me,
                                                              memory_order_relaxed, memory_order_relaxed))
            k = i;
        else if (o == me)
            k = i;
    }
    ember__submit_cache.serial = c->serial;
    ember__submit_cache.k = k;
    return k;
}

/* Count a call queued by this thread in the caller entry (relaxed: only
 * summed by readers, abi.h). */
static inline void ember__count_submit(ember_client *c)
{
    EMBER_ATOMIC(uint64_t) *n = &c->v.callers[c->caller_idx].calls_submitted[ember__submit_counter(c)];
    if (n == &c->v.callers[c->caller_idx].calls_submitted[0])
        atomic_fetch_add_explicit(n, 1, memory_order_relaxed); /* shared by the threads beyond */
    else /* this thread is the counter's only writer */
        atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* Note call IDX of generation GEN, just tracked for ember_wait_any, in
 * this thread's fifo (none for the threads beyond the seventh). */
static inline void ember__fifo_push(ember_client *c, uint32_t idx, uint32_t gen)
{
    uint32_t k = ember__submit_counter(c);
    if (k == 0) return;
    struct ember__fifo *f = &c->fifo[k];
    if (!f->ent && !(f->ent = (uint32_t *)malloc(EMBER__FIFO_CAP * sizeof *f->ent))) return;
    if (f->tail - f->head == EMBER__FIFO_CAP) return; /* full: found through the bitmap */
    f->ent[f->tail++ & (EMBER__FIFO_CAP - 1)] = ember__entry(idx, gen);
}

/* The two-level bit sets (mine, ready): a word's summary bit is set when
 * the word turns non-zero and cleared when it turns zero; the summary may
 * name an empty word (a scan reads it for nothing), never leaves out a
 * word that has a bit once the add that set it has returned. All seq_cst:
 * a take that empties word K clears its summary bit, then looks at the
 * word again and sets the bit back if an add came meanwhile; in the single
 * order, an add whose summary store came before that clear made the word
 * non-zero before it, so the look sees its bit. A take returns whether
 * the bit was there (this thread cleared it). */
static inline void ember__set_add(EMBER_ATOMIC(uint64_t) *w, EMBER_ATOMIC(uint64_t) *sum, uint32_t k,
                                  uint64_t bits)
{
    if (!atomic_fetch_or_explicit(&w[k], bits, memory_order_seq_cst))
        atomic_fetch_or_explicit(&sum[k / 64], 1ull << (k % 64), memory_order_seq_cst);
}

static inline bool ember__set_take(EMBER_ATOMIC(uint64_t) *w, EMBER_ATOMIC(uint64_t) *sum, uint32_t k,
                                   uint64_t bit)
{
    uint64_t old = atomic_fetch_and_explicit(&w[k], ~bit, memory_order_seq_cst);
    if (old == bit) {
        uint64_t s = 1ull << (k % 64);
        atomic_fetch_and_explicit(&sum[k / 64], ~s, memory_order_seq_cst);
        if (atomic_load_explicit(&w[k], memory_order_seq_cst))
            atomic_fetch_or_explicit(&sum[k / 64], s, memory_order_seq_cst);
    }
    return (old & bit) != 0;
}

/* Call IDX of generation GEN with DEADLINE becomes one of ember_wait_any's,
 * before it is published: the generation and deadline are stored before
 * the bit (seq_cst, so release; pairs with the collector's clear). */
static inline void ember__any_track(ember_client *c, uint32_t idx, uint32_t gen, uint64_t deadline)
{
    atomic_store_explicit(&c->mine_gen[idx], gen, memory_order_relaxed);
    c->mine_deadline[idx] = deadline;
    ember__set_add(c->mine, c->mine_sum, idx / 64, 1ull << (idx % 64));
    uint64_t d = atomic_load_explicit(&c->next_deadline, memory_order_relaxed);
    while (deadline < d && !atomic_compare_exchange_weak_explicit(&c->next_deadline, &d, deadline,
                                                                  memory_order_relaxed,
                                                                  memory_order_relaxed)) {}
}

/* Take call IDX of generation GEN out of ember_wait_any's set: true if this
 * thread cleared its bit (and so collects it), false if it was not there
 * (or the slot is tracked for another of this client's calls). The clear
 * (seq_cst, so acquire) pairs with ember__any_track's store of the bit. */
static inline bool ember__any_untrack(ember_client *c, uint32_t idx, uint32_t gen)
{
    if (!c->mine || atomic_load_explicit(&c->mine_gen[idx], memory_order_relaxed) != gen) return false;
    return ember__set_take(c->mine, c->mine_sum, idx / 64, 1ull << (idx % 64));
}


/* The failure of a new call in pool state PS (neither STARTING nor RUNNING). */
static inline int ember__pool_refuses(ember_client *c, uint32_t ps)
{
    if (ps == EMBER_POOL_STOPPING)
        return ember__fail(-EMBER_EPOOLDOWN, "pool '%s' is stopping: it takes no new calls "
                           "(calls already running may finish)", c->name);
    return ember__fail(-EMBER_EPOOLDOWN, "pool '%s' is stopped: start it again to make calls",
                       c->name);
}

/* Is the pool's supervisor alive and the pool taking new calls? */
static inline int ember__pool_alive(ember_client *c)
{
    uint32_t ps = atomic_load_explicit(&c->v.hdr->pool_state, memory_order_acquire);
    if (ps != EMBER_POOL_RUNNING && ps != EMBER_POOL_STARTING) return ember__pool_refuses(c, ps);
    if (ember__pidfd_dead(c->sup_pidfd))
        return ember__fail(-EMBER_EPOOLDOWN, "the supervisor of pool '%s' died", c->name);
    return 0;
}

/* Is the pool gone, for a call already submitted? A stopping pool is not:
 * its supervisor drains it and ends every call it holds (with the call's
 * own result, or EMBER_EPOOLDOWN and why) before it is DOWN, so a caller
 * waits for that like for any result. */
static inline int ember__pool_gone(ember_client *c)
{
    uint32_t ps = atomic_load_explicit(&c->v.hdr->pool_state, memory_order_acquire);
    if (ps == EMBER_POOL_DOWN)
        return ember__fail(-EMBER_EPOOLDOWN, "pool '%s' stopped before the call ended", c->name);
    if (ember__pidfd_dead(c->sup_pidfd))
        return ember__fail(-EMBER_EPOOLDOWN, "the supervisor of pool '%s' died before the call "
                           "ended", c->name);
    return 0;
}

/* How a runner ended, from EMBER_ECRASHED's (or EMBER_EOOM's) DETAIL, into
 * BUF: "killed by SIGSEGV", "exited with status 3". */
static inline const char *ember__crash_text(int detail, char *buf, size_t len)
{
    static const char *const names[] = {
        "0", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
        "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
        "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
        "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS" };
    if (detail >= EMBER_CRASH_EXIT && detail < EMBER_CRASH_EXIT + 256)
        snprintf(buf, len, "exited with status %d", detail - EMBER_CRASH_EXIT);
    else if (detail > 0 && detail < (int)(sizeof names / sizeof names[0]))
        snprintf(buf, len, "killed by %s", names[detail]);
    else if (detail > 0 && detail <= 64)
        snprintf(buf, len, "killed by signal %d", detail);
    else
        snprintf(buf, len, "ended (%d)", detail);
    return buf;
}

/* Runners fail to boot and none is up: EMBER_EBOOT with the cause. */
static inline int ember__boot_error(ember_client *c, uint32_t failures)
{
    struct ember_shm_header *h = c->v.hdr;
    char msg[sizeof h->boot_fail_msg];
    memcpy(msg, h->boot_fail_msg, sizeof msg);
    msg[sizeof msg - 1] = 0;
    uint64_t retry = atomic_load(&h->boot_retry_ns), now = ember__now_ns();
    char cause[48];
    if (h->boot_fail_signal) ember__crash_text(h->boot_fail_signal, cause, sizeof cause);
    else snprintf(cause, sizeof cause, "exit status %d", h->boot_fail_status);
    return ember__fail(-EMBER_EBOOT,
                       "pool '%s': runners fail to boot (%u in a row; last: %s%s%s); next attempt in %llu ms",
                       c->name, failures, cause, msg[0] ? ": " : "", msg,
                       (unsigned long long)(retry > now ? (retry - now + 999999) / 1000000 : 0));
}

/* The absolute deadline of a call given TIMEOUT_NS (EMBER_TIMEOUT_DEFAULT:
 * the pool's; negative or EMBER_NEVER: none). */
/* The deadline TIMEOUT_NS from now; *COARSE (if not NULL): the coarse
 * clock's reading it was computed from, 0 when it read no coarse clock. */
static inline uint64_t ember__deadline_c(ember_client *c, int64_t timeout_ns, uint64_t *coarse)
{
    if (coarse) *coarse = 0;
    if (timeout_ns == EMBER_TIMEOUT_DEFAULT) timeout_ns = (int64_t)c->v.default_timeout_ns;
    if (timeout_ns < 0 || timeout_ns == EMBER_NEVER) return UINT64_MAX;
    /* long timeouts from the coarse clock, rounded late by one tick (never
     * early): the precise clock costs as much as the rest of a warm call */
    if (timeout_ns >= 1000000000ll) {
        uint64_t now = ember__now_coarse_ns();
        if (coarse) *coarse = now;
        return now + ember__coarse_res_ns() + (uint64_t)timeout_ns;
    }
    return ember__now_ns() + (uint64_t)timeout_ns;
}

static inline uint64_t ember__deadline(ember_client *c, int64_t timeout_ns)
{
    return ember__deadline_c(c, timeout_ns, NULL);
}

/* Claim the FREE slot of entry E (idx | gen << 16) for C: false if it is
 * not FREE in that generation any more (taken, or a stale entry). */
static inline bool ember__claim_entry(ember_client *c, uint32_t e, uint32_t *idx_out, uint32_t *gen_out)
{
    struct ember__view *v = &c->v;
    uint32_t idx = e & 0xffffu;
    if (idx >= v->nslots) return false; /* scribbled entry */
    struct ember_slot *s = &v->slots[idx];
    uint32_t w = atomic_load_explicit(&s->state, memory_order_acquire);
    if (ember__st(w) != EMBER_SLOT_FREE || ember__gen(w) != (e >> 16))
        return false; /* stale duplicate from crash repair, or taken */
    uint32_t gen = (ember__gen(w) + 1) & 0xffffu;
    if (!atomic_compare_exchange_strong_explicit(&s->state, &w, ember__mk(gen, EMBER_SLOT_CLAIMED),
                                                 memory_order_acq_rel, memory_order_relaxed))
        return false;
    /* ours: name the owner now, never before the CAS (S5); release pairs
     * with the acquire in ember__owned_by */
    atomic_store_explicit(&s->owner, ember__owner_word(gen, c->caller_idx, c->caller_gen),
                          memory_order_release);
    s->args_page = s->res_page = EMBER_NONE;
    s->runner = EMBER_SLOT_NO_RUNNER;
    s->status = s->detail = 0;
    s->t_start_ns = 0;
    s->node = -1;
    *idx_out = idx;
    *gen_out = gen;
    return true;
}

/* Put E in this thread's slot kept at hand and return the one it held.
 * Thread k >= 1 is the only one to use hot[k]: a relaxed load and store,
 * no locked instruction (the slot's own state word, claimed by CAS, is
 * what hands the slot over, S1); the threads beyond share hot[0] by
 * exchange (acq_rel, as before: it pairs with the other threads'). */
static inline uint32_t ember__hot_swap(ember_client *c, uint32_t e)
{
    uint32_t k = ember__submit_counter(c);
    if (k == 0) return atomic_exchange_explicit(&c->hot[0], e, memory_order_acq_rel);
    uint32_t old = atomic_load_explicit(&c->hot[k], memory_order_relaxed);
    atomic_store_explicit(&c->hot[k], e, memory_order_relaxed);
    return old;
}

/* A released slot: keep it at hand for the next call (off the free ring)
 * unless somebody waits for slots; the one kept before goes to the ring. */
static inline void ember__slot_recycle(ember_client *c, uint32_t idx, uint32_t w)
{
    if (!ember__slot_free_ex(&c->v, idx, w, false)) return;
    if (atomic_load_explicit(&c->v.hdr->slot_waiters, memory_order_seq_cst)) return; /* pushed */
    ember__hot_return(&c->v, ember__hot_swap(c, ember__entry(idx, ember__gen(w))));
}

/* Take a free slot, waiting for one until DEADLINE: the one kept at hand,
 * else one from the free ring; before sleeping, any FREE slot at all (the
 * ones other callers keep at hand included). */
static inline int ember__claim(ember_client *c, uint64_t deadline, uint32_t *idx_out, uint32_t *gen_out)
{
    struct ember__view *v = &c->v;
    uint32_t e = ember__hot_swap(c, EMBER_NONE);
    if (e != EMBER_NONE && ember__claim_entry(c, e, idx_out, gen_out)) return 0;
    bool counted = false;
    uint32_t seq = 0;
    for (;;) {
        while ((e = ember__ring_pop(&v->free)) != EMBER_NONE)
            if (ember__claim_entry(c, e, idx_out, gen_out)) {
                if (counted) atomic_fetch_sub(&v->hdr->slot_waiters, 1);
                return 0;
            }
        if (!counted) { /* announce, then look once more before sleeping */
            atomic_fetch_add_explicit(&v->hdr->slot_waiters, 1, memory_order_seq_cst);
            seq = atomic_load_explicit(&v->hdr->slot_seq, memory_order_seq_cst);
            counted = true;
            continue;
        }
        for (uint32_t i = 0; i < v->nslots; i++) { /* FREE slots kept off the ring */
            uint32_t w = atomic_load_explicit(&v->slots[i].state, memory_order_relaxed);
            if (ember__st(w) == EMBER_SLOT_FREE &&
                ember__claim_entry(c, ember__entry(i, ember__gen(w)), idx_out, gen_out)) {
                atomic_fetch_sub(&v->hdr->slot_waiters, 1);
                return 0;
            }
        }
        uint64_t now = ember__now_ns();
        int rc = now >= deadline
                     ? ember__fail(-EMBER_EFULL, "pool '%s': all %u slots in use until the deadline",
                                   c->name, v->nslots)
                     : ember__pool_alive(c);
        if (rc) {
            atomic_fetch_sub(&v->hdr->slot_waiters, 1);
            return rc;
        }
        uint64_t until = now + 100000000ull;
        ember__futex_wait(&v->hdr->slot_seq, seq, until < deadline ? until : deadline);
        seq = atomic_load_explicit(&v->hdr->slot_seq, memory_order_seq_cst);
    }
}

/* Queue a call: wait for a slot and pages until WAIT_UNTIL; the call's own
 * deadline is DEADLINE. QUEUED_AT: the coarse clock's reading of now, if
 * the caller has one (0: read it here). */
static inline int ember__submit(ember_client *c, int h, const void *args, size_t len,
                                uint64_t wait_until, uint64_t deadline, uint64_t queued_at,
                                uint32_t flags, ember_call_id *id, bool *woke)
{
    if (!c) return ember__fail(-EMBER_EINVAL, "client is NULL");
    struct ember__view *v = &c->v;
    if (h < 0 || (uint32_t)h >= v->nhandlers)
        return ember__fail(-EMBER_ENOHANDLER, "pool '%s' has no handler id %d", c->name, h);
    if (len && !args) return ember__fail(-EMBER_EINVAL, "args is NULL with length %zu", len);
    if (len > v->max_payload)
        return ember__fail(-EMBER_ETOOBIG, "payload of %zu bytes exceeds pool '%s' max_payload %llu",
                           len, c->name, (unsigned long long)v->max_payload);
    uint32_t ps = atomic_load_explicit(&v->hdr->pool_state, memory_order_relaxed);
    if (ps != EMBER_POOL_RUNNING && ps != EMBER_POOL_STARTING) return ember__pool_refuses(c, ps);
    uint32_t broken = atomic_load_explicit(&v->hdr->boot_broken, memory_order_relaxed);
    if (broken && atomic_load_explicit(&v->hdr->nready, memory_order_relaxed) == 0)
        return ember__boot_error(c, broken);
    uint32_t idx = 0, gen = 0;
    int rc = ember__claim(c, wait_until, &idx, &gen);
    if (rc) return rc;
    struct ember_slot *s = &v->slots[idx];
    s->handler = (uint16_t)h;
    s->flags = (uint16_t)flags;
    s->deadline_ns = deadline;
    s->args_len = (uint32_t)len;
    if (len <= EMBER_INLINE_MAX) {
        if (len) memcpy(s->data, args, len);
    } else {
        for (;;) {
            uint32_t seq = atomic_load(&v->hdr->page_seq);
            int got = ember__pages_alloc(v, idx, len, &s->args_page);
            if (got == 0) break;
            if (got != -EMBER_EFULL) { /* /dev/shm is full: waiting would not help */
                ember__slot_free(v, idx, ember__mk(gen, EMBER_SLOT_CLAIMED));
                return got;
            }
            uint64_t now = ember__now_ns();
            if (now >= wait_until || (rc = ember__pool_alive(c)) != 0) {
                ember__slot_free(v, idx, ember__mk(gen, EMBER_SLOT_CLAIMED));
                return rc ? rc : ember__fail(-EMBER_EFULL,
                                             "pool '%s': no shared pages for %zu bytes until the deadline",
                                             c->name, len);
            }
            atomic_fetch_add(&v->hdr->page_waiters, 1);
            uint64_t until = now + 100000000ull;
            ember__futex_wait(&v->hdr->page_seq, seq, until < wait_until ? until : wait_until);
            atomic_fetch_sub(&v->hdr->page_waiters, 1);
        }
        memcpy(ember__page_ptr(v, s->args_page), args, len);
    }
    if (flags & EMBER_CALL_NOTIFY) ember__any_track(c, idx, gen, deadline);
    /* the queue wait starts now (the runner's take ends it: abi.h,
     * slot.t_start_ns), by the coarse clock the deadline was read from
     * when it was (QUEUED_AT), else read here; counted in our entry's own
     * line */
    s->t_start_ns = queued_at ? queued_at : ember__now_coarse_ns();
    ember__count_submit(c);
    /* publish: fields before QUEUED (release), QUEUED before the push */
    atomic_store_explicit(&s->state, ember__mk(gen, EMBER_SLOT_QUEUED), memory_order_release);
    uint32_t ring = ember__my_ring(v);
    bool w = false;
    if (ember__ring_push(&v->run[ring], ember__entry(idx, gen)) == 0) {
        w = ember__wake_runner(v, ring);
        if (!w) ember__ask_growth(v);
    }
    /* else the ring is broken: with ring_cap = 2 * nslots it cannot be full
     * of live entries, so a stray write has left a cell it cannot pass.
     * The call stays QUEUED: the supervisor's repair look mends the ring
     * and pushes every QUEUED slot that is in no run ring (repair.c), and
     * the call's deadline bounds the wait meanwhile. */
    if (flags & EMBER_CALL_NOTIFY) ember__fifo_push(c, idx, gen); /* after the push: a hint */
    if (woke) *woke = w;
    if (id) id->idx = idx, id->gen = gen;
    return 0;
}

/* The caller's FLAGS: EMBER_UNLINKED, EMBER_RETRIES(n) (client.h; the
 * EMBER_CALL_* bits are ember's own). */
static inline int ember__bad_flags(unsigned flags)
{
    unsigned retries = flags >> EMBER_RETRIES_SHIFT;
    if (retries > EMBER_RETRIES_MAX)
        return ember__fail(-EMBER_EINVAL, "EMBER_RETRIES(%u): a call is retried at most %u times",
                           retries, EMBER_RETRIES_MAX);
    return flags & ~(unsigned)EMBER_UNLINKED & ~EMBER_RETRIES(EMBER_RETRIES_MAX)
               ? ember__fail(-EMBER_EINVAL, "unknown call flags 0x%x", flags) : 0;
}

/* The slot's flag bits (abi.h) for the caller's FLAGS, once checked: the
 * retries go to the retries-left bits. */
static inline uint32_t ember__slot_flags(unsigned flags)
{
    return (flags & EMBER_UNLINKED) | (flags >> EMBER_RETRIES_SHIFT) << EMBER_CALL_RETRY_SHIFT;
}

/* Queue a call of KIND (0 or EMBER_CALL_CAST) with the caller's FLAGS; one
 * deadline, TIMEOUT_NS, for waiting for a slot, queueing and running. The
 * deadline goes to *DEADLINE, and whether a parked runner was woken for it
 * to *WOKE (either may be NULL). */
static inline int ember__submit_t(ember_client *c, int h, const void *args, size_t len,
                                  int64_t timeout_ns, unsigned flags, unsigned kind,
                                  ember_call_id *id, uint64_t *deadline, bool *woke)
{
    if (!c) return ember__fail(-EMBER_EINVAL, "client is NULL");
    int rc = ember__bad_flags(flags);
    if (rc) return rc;
    uint64_t now = 0, d = ember__deadline_c(c, timeout_ns, &now);
    if (deadline) *deadline = d;
    return ember__submit(c, h, args, len, d, d, now, ember__slot_flags(flags) | kind, id, woke);
}

static inline void ember__result_clear(ember_result *res)
{
    memset(res, 0, sizeof *res);
    res->runner = EMBER_NONE;
    res->node = -1;
    res->_idx = EMBER_NONE;
}

/* Is ST a status a slot may end with: 0, or a negated code of the error
 * table? A slot's status is shared memory: a stray write may have put
 * anything there, and a caller must never see a value outside the table. */
static inline bool ember__status_ok(int st)
{
    switch (-st) {
    case 0:
#define EMBER__XOK(name, val, msg) case val:
        EMBER_ERROR_TABLE(EMBER__XOK)
#undef EMBER__XOK
        return true;
    default:
        return false;
    }
}


/* Collect a DONE slot into RES. On error statuses the slot is freed now. */
static inline int ember__collect(ember_client *c, uint32_t idx, uint32_t w, ember_result *res)
{
    struct ember_slot *s = &c->v.slots[idx];
    int st0 = s->status; /* read once: it is checked and used from this copy */
    if (!ember__status_ok(st0)) {
        ember__slot_free(&c->v, idx, w);
        return res->status = ember__fail(-EMBER_ECORRUPT, "pool '%s': the slot's status was "
                                         "corrupt (%d, not one of ember's codes): the call's "
                                         "result is lost", c->name, st0);
    }
    res->status = st0;
    res->detail = s->detail;
    res->runner = s->runner == EMBER_SLOT_NO_RUNNER ? EMBER_NONE : s->runner;
    /* a receipt only where a runner wrote one (before, the field held the
     * time the call was queued) */
    res->start_ns = s->runner == EMBER_SLOT_NO_RUNNER ? 0 : s->t_start_ns;
    res->node = s->node;
    if (st0 == 0 || st0 == -EMBER_EHANDLER) { /* a failed handler's message too */
        uint32_t rlen = s->res_len, rpage = s->res_page; /* read once, checked, used */
        const void *p = ember__payload(&c->v, s, rlen, rpage);
        if (!p) {
            res->status = ember__fail(-EMBER_ECORRUPT, "pool '%s': result fields out of bounds",
                                      c->name);
            ember__slot_free(&c->v, idx, w);
            return res->status;
        }
        res->data = p;
        res->len = rlen;
        res->_idx = idx;
        res->_gen = ember__gen(w);
        if (st0 == 0) return 0;
        const char *m = (const char *)p;
        int ml = (int)(res->len > 200 ? 200 : res->len);
        while (ml > 0 && m[ml - 1] == '\n') ml--;
        return ember__fail(-EMBER_EHANDLER, "pool '%s': the handler returned %d%s%.*s", c->name, res->detail,
                           ml ? ": " : "", ml, m);
    }
    int st = st0;
    unsigned crashes = (s->flags & EMBER_CALL_CRASH_MASK) >> EMBER_CALL_CRASH_SHIFT; /* before the free */
    ember__slot_free(&c->v, idx, w);
    switch (-st) {
    case EMBER_ECRASHED: {
        char how[48];
        return ember__fail(st, "pool '%s': runner %u died during the call: %s", c->name,
                           res->runner, ember__crash_text(res->detail, how, sizeof how));
    }
    case EMBER_EOOM:
        return ember__fail(st, "pool '%s': the kernel's OOM killer killed runner %u during the call "
                           "(over runner_memory_max, or the machine ran out of memory)", c->name,
                           res->runner);
    case EMBER_ETIMEDOUT:
        if (res->detail == EMBER_TIMEOUT_RUNNING)
            return ember__fail(st, "pool '%s': deadline passed while runner %u ran the call; "
                               "the runner was killed", c->name, res->runner);
        return ember__fail(st, "pool '%s': deadline passed while the call was queued; it never ran",
                           c->name);
    case EMBER_EPOISON: {
        char how[48];
        return ember__fail(st, "pool '%s': the call crashed %u runners, the pool's poison_after "
                           "(the last %s): quarantined, it is not run again", c->name, crashes,
                           ember__crash_text(res->detail, how, sizeof how));
    }
    case EMBER_ERUNNERLOST:
        return ember__fail(st, "pool '%s': runner %u was killed while it ran the call (another "
                           "call on it ran past its deadline)", c->name, res->runner);
    case EMBER_EBOOT:
        return ember__boot_error(c, (uint32_t)res->detail);
    case EMBER_EPOOLDOWN:
        if (res->detail == EMBER_DOWN_QUEUED)
            return ember__fail(st, "pool '%s' was stopped while the call was queued; it never ran",
                               c->name);
        if (res->detail == EMBER_DOWN_KILLED)
            return ember__fail(st, "pool '%s' was stopped and the call still ran at the end of the "
                               "shutdown timeout: its runner was killed (give the stop a longer "
                               "--shutdown_timeout to let such calls finish)", c->name);
        return ember__fail(st, "pool '%s' stopped before the call ended", c->name);
    case EMBER_EHANDLER:
        return ember__fail(st, "pool '%s': the handler returned %d", c->name, res->detail);
    case EMBER_ENOSPC:
        return ember__fail(st, "pool '%s': /dev/shm had no room for the call's %.1f MiB result: "
                           "free some of it, or start the pool with a smaller payload_space",
                           c->name, res->detail / 1024.0);
    case EMBER_EIMAGE:
        return ember__fail(st, "pool '%s': the function is not in the pool's program image "
                           "(another program, or the same one started anew); nothing ran", c->name);
    case EMBER_ECANCELLED:
        return ember__fail(st, "pool '%s': the call was cancelled%s", c->name,
                           res->detail ? "; its runner was killed after kill_grace" : "");
    case EMBER_ECORRUPT: /* failed by the supervisor's repair (src/supervisor/repair.c) */
        return ember__fail(st, "pool '%s': the call's slot was found in an impossible state (a "
                           "stray write to the pool's shared memory?) and the call was failed; "
                           "it may or may not have run", c->name);
    default:
        return ember__fail(st, "pool '%s': call failed (%s, detail %d)", c->name,
                           ember_strerror(st), res->detail);
    }
}

/* The failure of a call id whose call was already collected. */
static inline int ember__stale(const ember_client *c, uint32_t idx, uint32_t gen)
{
    return ember__fail(-EMBER_ESTALE, "pool '%s': call %u.%u was already collected", c->name, idx,
                       gen);
}

/* Give up on a call at its deadline: never run if still queued. */
static inline int ember__expire(ember_client *c, uint32_t idx, uint32_t gen, ember_result *res)
{
    struct ember_slot *s = &c->v.slots[idx];
    for (;;) {
        uint32_t w = atomic_load_explicit(&s->state, memory_order_acquire);
        if (ember__gen(w) != gen) return ember__stale(c, idx, gen);
        switch (ember__st(w)) {
        case EMBER_SLOT_DONE:
            return ember__collect(c, idx, w, res);
        case EMBER_SLOT_QUEUED:
            if (ember__slot_free(&c->v, idx, w)) {
                res->status = -EMBER_ETIMEDOUT;
                res->detail = EMBER_TIMEOUT_QUEUED;
                return ember__fail(-EMBER_ETIMEDOUT,
                                   "pool '%s': deadline passed while the call was queued; it never ran",
                                   c->name);
            }
            break;
        case EMBER_SLOT_RUNNING: {
            uint32_t nw = ember__mk(gen, EMBER_SLOT_ABANDONED);
            if (atomic_compare_exchange_strong(&s->state, &w, nw)) {
                res->status = -EMBER_ETIMEDOUT;
                res->detail = EMBER_TIMEOUT_RUNNING;
                return ember__fail(-EMBER_ETIMEDOUT,
                                   "pool '%s': deadline passed while the call ran; it is cancelled, "
                                   "and its runner killed if it runs on past the kill grace",
                                   c->name);
            }
            break;
        }
        default:
            return ember__stale(c, idx, gen);
        }
    }
}

/* Is W (slot word) still the call ID? After submission a call's slot is
 * QUEUED, RUNNING or DONE in its generation; any other state (FREE after
 * release, ABANDONED after a deadline) means the id was already collected. */
static inline bool ember__id_live(uint32_t w, ember_call_id id)
{
    uint32_t st = ember__st(w);
    return ember__gen(w) == id.gen &&
           (st == EMBER_SLOT_QUEUED || st == EMBER_SLOT_RUNNING || st == EMBER_SLOT_DONE);
}

/* Check the arguments of ember_wait / ember_poll (WHO): clears RES and
 * reads the call's slot word into *W; 0, or the error (also in res->status
 * once RES is known). */
static inline int ember__id_check(ember_client *c, ember_call_id id, ember_result *res, uint32_t *w,
                           const char *who)
{
    if (!c || !res || id.idx >= c->v.nslots) return ember__fail(-EMBER_EINVAL, "%s: bad argument", who);
    ember__result_clear(res);
    struct ember_slot *s = &c->v.slots[id.idx];
    *w = atomic_load_explicit(&s->state, memory_order_acquire);
    if (!ember__id_live(*w, id) || !ember__owned_by(s, *w, c->caller_idx, c->caller_gen))
        return res->status = ember__stale(c, id.idx, id.gen);
    return 0;
}

/* Wait for call ID of this client, queued with DEADLINE; W: its slot word
 * as last seen, or 0 when not looked at yet (right after submitting it);
 * WOKE: submitting it woke a parked runner (so the result is a wake-up's
 * latency away, not a warm call's). */
static inline int ember__wait(ember_client *c, ember_call_id id, uint64_t deadline, uint32_t w,
                              bool woke, ember_result *res)
{
    struct ember__view *v = &c->v;
    struct ember_slot *s = &v->slots[id.idx];
    /* A warm call's result arrives within a few hundred ns: look for it for
     * a few dozen pauses before counting this thread as a spinner, so that
     * the shared counter's line does not travel on every call. Each look
     * comes after a pause: a look right after the push would find nothing,
     * and would take the slot's line from a runner that has just taken it. */
    if (ember__st(w) != EMBER_SLOT_DONE && !woke)
        for (unsigned i = 0; i < EMBER__SPIN_QUIET; i++) {
            ember__cpu_relax();
            w = atomic_load_explicit(&s->state, memory_order_acquire);
            if (ember__st(w) == EMBER_SLOT_DONE) break;
        }
    else if (w == 0)
        w = atomic_load_explicit(&s->state, memory_order_acquire);
    /* then spin, while spinners do not outnumber CPUs */
    EMBER_ATOMIC(uint32_t) *mine = &v->callers[c->caller_idx].spinning;
    if (ember__st(w) != EMBER_SLOT_DONE) atomic_fetch_add_explicit(mine, 1, memory_order_relaxed);
    if (ember__st(w) != EMBER_SLOT_DONE &&
        ember__spinners(atomic_fetch_add_explicit(&v->hdr->spin, 1, memory_order_relaxed)) <
            (int32_t)v->ncpus) {
        uint32_t budget = woke && ember__spin_budget < EMBER__SPIN_AFTER_WAKE_NS
                              ? EMBER__SPIN_AFTER_WAKE_NS : ember__spin_budget;
        uint64_t stop = 0;
        for (unsigned i = 1;; i++) {
            w = atomic_load_explicit(&s->state, memory_order_acquire);
            if (ember__st(w) == EMBER_SLOT_DONE) break;
            /* after a wake-up the runner may have been placed on this very CPU:
             * yield to it rather than keep it off the CPU */
            if (woke) sched_yield();
            else ember__spin_step(i);
            if ((i & 255) == 0 || (woke && (i & 7) == 0)) { /* the clock costs as much as a cache miss: rarely */
                uint64_t now = ember__now_ns();
                if (!stop) stop = now + budget;
                else if (now >= stop) break;
            }
        }
        atomic_fetch_sub_explicit(&v->hdr->spin, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(mine, 1, memory_order_relaxed);
        if (!woke) { /* a wake-up's latency says nothing about the handler's */
            if (ember__st(w) == EMBER_SLOT_DONE) ember__spin_won(); else ember__spin_lost();
        }
    } else if (ember__st(w) != EMBER_SLOT_DONE) {
        atomic_fetch_sub_explicit(&v->hdr->spin, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(mine, 1, memory_order_relaxed);
    }
    /* park: the standard loop - check, announce (WAITER), re-check, sleep */
    while (ember__st(w) != EMBER_SLOT_DONE) {
        if (!ember__id_live(w, id)) return res->status = ember__stale(c, id.idx, id.gen);
        if ((w & EMBER_SLOT_CANCEL) && ember__st(w) == EMBER_SLOT_QUEUED) {
            if (!ember__slot_free(v, id.idx, w)) { /* a runner took it first */
                w = atomic_load_explicit(&s->state, memory_order_acquire);
                continue;
            }
            return res->status = ember__fail(-EMBER_ECANCELLED, "pool '%s': the call was "
                                             "cancelled while queued; it never ran", c->name);
        }
        uint64_t now = ember__now_ns();
        if (now >= deadline) return res->status = ember__expire(c, id.idx, id.gen, res);
        if (!(w & EMBER_SLOT_WAITER)) {
            if (!atomic_compare_exchange_strong(&s->state, &w, w | EMBER_SLOT_WAITER)) continue;
            w |= EMBER_SLOT_WAITER;
        }
        /* bounded sleep: a dead supervisor is noticed within 200 ms */
        uint64_t until = now + 200000000ull;
        ember__futex_wait(&s->state, w, until < deadline ? until : deadline);
        w = atomic_load_explicit(&s->state, memory_order_acquire);
        if (ember__st(w) != EMBER_SLOT_DONE) {
            int rc = ember__pool_gone(c);
            /* the supervisor ends every call before the pool is DOWN: look
             * at the slot once more (acquire: after the DOWN) */
            if (rc) w = atomic_load_explicit(&s->state, memory_order_acquire);
            if (rc && ember__st(w) != EMBER_SLOT_DONE) return res->status = rc;
        }
    }
    return res->status = ember__collect(c, id.idx, w, res);
}

#endif /* EMBER_DETAIL_CALL_H */
