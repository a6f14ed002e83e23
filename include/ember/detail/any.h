/* ember/detail/any.h - many calls in flight from one thread: wait for
 * whichever ends first (ember_wait_any), and a file descriptor that an
 * epoll or io_uring event loop can watch (ember_completion_fd).
 *
 * Calls submitted with ember_submit* carry EMBER_CALL_NOTIFY. Whoever moves
 * such a call to DONE (a runner, or the supervisor for a crash or a stop)
 * sets the call's bit in its owner's done bitmap, a bit per slot in shared
 * memory, then wakes the owner if it sleeps (ember__notify_owner, slot.h).
 * The owner takes a bitmap word with one exchange and remembers its bits
 * in a process-local "ready" bitmap; a call is collected by whoever clears
 * its bit in the process-local "mine" bitmap (call.h), so two threads
 * waiting on one client never collect the same call, and a call collected
 * by ember_wait or ember_poll is never returned again.
 *
 * Waiting is the standard loop: look (ready, then the done bitmap, then
 * deadlines), count this thread in done_armed (seq_cst), make done_seq
 * even, look again, then sleep on done_seq, at most 200 ms so that a dead
 * supervisor is noticed. A finisher that sets a bit (seq_cst) and then
 * sees done_armed makes done_seq odd and wakes (the eventcount): one of
 * the two sees the other. Only the first finisher after the sleeper armed
 * makes the system call; the ones that end calls before the woken owner
 * has run see done_seq odd and leave it be (ember__notify_owner, slot.h).
 *
 * Deadlines: every call of the set has its deadline at hand; once the
 * earliest has passed, the waiter ends the calls past theirs as ember_wait
 * would (never run if still queued, cancelled if running) and returns them
 * with EMBER_ETIMEDOUT.
 *
 * The completion fd is an io_uring instance of the client's own (raw system
 * calls: the client needs no liburing) with a FUTEX_WAIT on done_seq, a
 * POLL_ADD on the supervisor's pidfd and, when a call has a deadline, a
 * TIMEOUT at the earliest: it is readable as soon as one of them completes.
 * ember_wait_any reaps those completions and arms them again when it finds
 * nothing more to return, so the fd stays quiet only while nothing can be
 * collected. */
#ifndef EMBER_DETAIL_ANY_H
#define EMBER_DETAIL_ANY_H

#include "call.h"
#include <linux/io_uring.h>

#define EMBER__CQ_FUTEX   1u /* user_data of the three requests */
#define EMBER__CQ_PIDFD   2u
#define EMBER__CQ_TIMEOUT 3u

struct ember__cq {
    int fd;
    void *sq_map, *cq_map;
    size_t sq_len, cq_len;
    struct io_uring_sqe *sqes;
    size_t sqes_len;
    EMBER_ATOMIC(uint32_t) *sq_head, *sq_tail, *cq_head, *cq_tail;
    uint32_t sq_mask, cq_mask, *sq_array;
    struct io_uring_cqe *cqes;
    bool futex_armed, pidfd_armed, timeout_armed;
    uint64_t timeout_at;               /* of the armed TIMEOUT */
    struct __kernel_timespec ts;       /* read by the kernel when it takes the SQE */
    pthread_mutex_t lock;              /* the ring is used by one thread at a time */
};

static inline int ember__any_init(ember_client *c)
{
    size_t words = (c->v.nslots + 63) / 64;
    c->mine = (EMBER_ATOMIC(uint64_t) *)calloc(words, sizeof *c->mine);
    c->ready = (EMBER_ATOMIC(uint64_t) *)calloc(words, sizeof *c->ready);
    c->mine_sum = (EMBER_ATOMIC(uint64_t) *)calloc((words + 63) / 64, sizeof *c->mine_sum);
    c->ready_sum = (EMBER_ATOMIC(uint64_t) *)calloc((words + 63) / 64, sizeof *c->ready_sum);
    c->mine_gen = (EMBER_ATOMIC(uint32_t) *)calloc(c->v.nslots, sizeof *c->mine_gen);
    c->mine_deadline = (uint64_t *)calloc(c->v.nslots, sizeof *c->mine_deadline);
    if (!c->mine || !c->ready || !c->mine_sum || !c->ready_sum || !c->mine_gen || !c->mine_deadline)
        return ember__fail(-EMBER_ENOMEM, "no memory for the client's call bookkeeping");
    return 0;
}

static inline void ember__cq_close(struct ember__cq *q)
{
    if (q->sq_map && q->sq_map != MAP_FAILED) munmap(q->sq_map, q->sq_len);
    if (q->cq_map && q->cq_map != MAP_FAILED && q->cq_map != q->sq_map) munmap(q->cq_map, q->cq_len);
    if (q->sqes && (void *)q->sqes != MAP_FAILED) munmap(q->sqes, q->sqes_len);
    if (q->fd >= 0) close(q->fd);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

static inline void ember__any_fini(ember_client *c)
{
    if (c->cq) {
        if (c->cq->futex_armed)
            atomic_fetch_sub_explicit(&c->v.callers[c->caller_idx].done_armed, 1, memory_order_seq_cst);
        ember__cq_close(c->cq);
    }
    for (uint32_t k = 0; k < EMBER_SUBMIT_COUNTERS; k++) free(c->fifo[k].ent);
    free((void *)c->mine);
    free((void *)c->ready);
    free((void *)c->mine_sum);
    free((void *)c->ready_sum);
    free((void *)c->mine_gen);
    free(c->mine_deadline);
}

/* -- collecting ------------------------------------------------------------ */

/* Collect call IDX if its bit named a finished call of this client: 1
 * with *ID, *RES, *RC, or 0 (a bit left by a call ember_wait collected, or
 * of a slot whose new call has not finished: not one to return). */
static inline int ember__any_take(ember_client *c, uint32_t idx, ember_call_id *id, ember_result *res,
                                  int *rc)
{
    uint32_t gen = atomic_load_explicit(&c->mine_gen[idx], memory_order_relaxed);
    uint32_t w = atomic_load_explicit(&c->v.slots[idx].state, memory_order_acquire);
    if (ember__gen(w) != gen || ember__st(w) != EMBER_SLOT_DONE) return 0;
    if (!ember__any_untrack(c, idx, gen)) return 0;
    id->idx = idx, id->gen = gen;
    *rc = res->status = ember__collect(c, idx, w, res);
    return 1;
}

/* One call collected from READY (bits harvested before, by any thread):
 * 1, or 0 when none of them names a finished call of this client. Only the
 * words READY's summary names are read. Taking a bit decides which thread
 * looks at that call. */
static inline int ember__any_collect_ready(ember_client *c, ember_call_id *id, ember_result *res,
                                           int *rc)
{
    for (uint32_t j = 0; j < ((c->v.nslots + 63) / 64 + 63) / 64; j++) {
        uint64_t m = atomic_load_explicit(&c->ready_sum[j], memory_order_relaxed);
        for (; m; m &= m - 1) {
            uint32_t k = j * 64 + (uint32_t)__builtin_ctzll(m);
            uint64_t b;
            while ((b = atomic_load_explicit(&c->ready[k], memory_order_relaxed)) != 0) {
                uint64_t bit = b & -b;
                if (!ember__set_take(c->ready, c->ready_sum, k, bit)) continue; /* another thread's */
                if (ember__any_take(c, k * 64 + (uint32_t)__builtin_ctzll(bit), id, res, rc)) return 1;
            }
        }
    }
    return 0;
}

/* Take word K of the shared done bitmap BITS if it has bits, collecting
 * the first call they name at once and keeping the others in READY: 1
 * with a collected call, else 0 (the bits taken, if any, are in READY).
 * The exchange (seq_cst) pairs with the finisher's fetch_or. */
static inline int ember__any_harvest_word(ember_client *c, EMBER_ATOMIC(uint64_t) *bits, uint32_t k,
                                          ember_call_id *id, ember_result *res, int *rc)
{
    if (!atomic_load_explicit(&bits[k], memory_order_relaxed)) return 0;
    uint64_t b = atomic_exchange_explicit(&bits[k], 0, memory_order_seq_cst);
    if (!b) return 0;
    /* the finished slots' lines, for writing, all on their way at once:
     * each is read (collect), then written (its release), and fetching
     * them one by one would stall on each in turn */
    for (uint64_t m = b; m; m &= m - 1)
        ember__prefetch_w(&c->v.slots[k * 64 + (uint32_t)__builtin_ctzll(m)]);
    uint64_t bit = b & -b; /* this one is ours alone: no RMW on READY for it */
    if (b != bit) ember__set_add(c->ready, c->ready_sum, k, b & ~bit);
    return ember__any_take(c, k * 64 + (uint32_t)__builtin_ctzll(bit), id, res, rc);
}

/* Take the shared done bitmap's bits: 1 with a collected call, else 0.
 * ALL: every word; otherwise only the words where this client has calls
 * not collected (MINE's summary), so that a look reads a few words, and
 * the lines a runner is writing for other callers' slots are left alone.
 * A bit left in another word (a call ember_wait collected, its slot now
 * idle) is taken by the next full harvest, which the waiter does when its
 * full look (before it sleeps) finds one; so is a call another thread is
 * tracking right now. */
static inline int ember__any_harvest(ember_client *c, bool all, ember_call_id *id, ember_result *res,
                                     int *rc)
{
    EMBER_ATOMIC(uint64_t) *bits = ember__done_bits(&c->v, c->caller_idx);
    const uint32_t words = (c->v.nslots + 63) / 64;
    if (all) {
        for (uint32_t k = 0; k < words; k++)
            if (ember__any_harvest_word(c, bits, k, id, res, rc)) return 1;
        return 0;
    }
    for (uint32_t j = 0; j < (words + 63) / 64; j++)
        for (uint64_t m = atomic_load_explicit(&c->mine_sum[j], memory_order_relaxed); m; m &= m - 1)
            if (ember__any_harvest_word(c, bits, j * 64 + (uint32_t)__builtin_ctzll(m), id, res, rc))
                return 1;
    return 0;
}

/* Has this client no call for ember_wait_any (none submitted and not
 * collected)? The words MINE's summary names first (one of them is
 * non-zero while calls are in flight), then every word: the summary may
 * lag behind an add in progress. Relaxed: a call tracked by another thread
 * meanwhile is as if submitted after this look. */
static inline bool ember__any_none(ember_client *c)
{
    const uint32_t words = (c->v.nslots + 63) / 64;
    for (uint32_t j = 0; j < (words + 63) / 64; j++)
        for (uint64_t m = atomic_load_explicit(&c->mine_sum[j], memory_order_relaxed); m; m &= m - 1)
            if (atomic_load_explicit(&c->mine[j * 64 + (uint32_t)__builtin_ctzll(m)], memory_order_relaxed))
                return false;
    for (uint32_t k = 0; k < words; k++)
        if (atomic_load_explicit(&c->mine[k], memory_order_relaxed)) return false;
    return true;
}

/* End one call of the set whose deadline has passed by NOW, as ember_wait
 * would: 1 with *ID, *RES, *RC, or 0 (and the earliest deadline left is
 * stored as next_deadline). */
static inline int ember__any_expire(ember_client *c, uint64_t now, ember_call_id *id,
                                    ember_result *res, int *rc)
{
    uint64_t next = UINT64_MAX;
    atomic_store_explicit(&c->next_deadline, UINT64_MAX, memory_order_relaxed);
    for (uint32_t k = 0; k < (c->v.nslots + 63) / 64; k++) {
        uint64_t b = atomic_load_explicit(&c->mine[k], memory_order_acquire);
        while (b) {
            uint32_t idx = k * 64 + (uint32_t)__builtin_ctzll(b);
            b &= b - 1;
            uint64_t d = c->mine_deadline[idx];
            if (d > now) {
                if (d < next) next = d;
                continue;
            }
            uint32_t gen = atomic_load_explicit(&c->mine_gen[idx], memory_order_relaxed);
            if (!ember__any_untrack(c, idx, gen)) continue;
            id->idx = idx, id->gen = gen;
            *rc = res->status = ember__expire(c, idx, gen, res);
            /* the calls not looked at yet keep next_deadline a lower bound */
            atomic_store_explicit(&c->next_deadline, now, memory_order_relaxed);
            return 1;
        }
    }
    /* a call tracked meanwhile may have lowered it: keep the lower */
    uint64_t d = atomic_load_explicit(&c->next_deadline, memory_order_relaxed);
    while (next < d && !atomic_compare_exchange_weak_explicit(&c->next_deadline, &d, next,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed)) {}
    return 0;
}

/* The first look of a thread that submits its calls through this client
 * (it has a fifo, call.h): the oldest call it submitted and has not seen
 * collected, if it has ended. 1 with a collected call, else 0. Calls end
 * mostly in the order they were queued, so the oldest is the one most
 * likely to have ended, and it is found without the done bitmap: the
 * runners' fetch_or on a word of that bitmap then lands on a line this
 * caller does not take from them on every call, and no bit goes through
 * READY. The bits those calls leave in the done bitmap are taken by a
 * later harvest, which finds them stale (ember__any_take). Entries of
 * calls collected otherwise (ember_wait, another thread, a deadline) are
 * dropped as they come to the head; so is a call whose slot is in
 * another generation or state than a running call's, left to the other
 * looks. */
static inline int ember__any_fifo(ember_client *c, ember_call_id *id, ember_result *res, int *rc)
{
    if (ember__submit_cache.serial != c->serial || ember__submit_cache.k == 0) return 0;
    struct ember__fifo *f = &c->fifo[ember__submit_cache.k];
    while (f->head != f->tail) {
        uint32_t e = f->ent[f->head & (EMBER__FIFO_CAP - 1)];
        uint32_t idx = e & 0xffffu, gen = e >> 16;
        /* relaxed: this thread's own bookkeeping; the bit is taken below by
         * ember__any_untrack, which decides */
        if (atomic_load_explicit(&c->mine_gen[idx], memory_order_relaxed) != gen ||
            !(atomic_load_explicit(&c->mine[idx / 64], memory_order_relaxed) & (1ull << (idx % 64)))) {
            f->head++; /* collected otherwise */
            continue;
        }
        /* acquire: pairs with the finisher's CAS to DONE, as in ember__any_take */
        uint32_t w = atomic_load_explicit(&c->v.slots[idx].state, memory_order_acquire);
        uint32_t st = ember__st(w);
        if (ember__gen(w) == gen && (st == EMBER_SLOT_QUEUED || st == EMBER_SLOT_RUNNING))
            return 0; /* not ended yet */
        f->head++;
        if (ember__gen(w) != gen || st != EMBER_SLOT_DONE || !ember__any_untrack(c, idx, gen))
            continue;
        /* the next oldest call's line, for writing, while this one is
         * collected: it is likely to have ended too, and is then read and
         * released (written) by the next look */
        if (f->head != f->tail)
            ember__prefetch_w(&c->v.slots[f->ent[f->head & (EMBER__FIFO_CAP - 1)] & 0xffffu]);
        id->idx = idx, id->gen = gen;
        *rc = res->status = ember__collect(c, idx, w, res);
        return 1;
    }
    return 0;
}

/* One look: 1 with a collected call, else 0. What was harvested before
 * comes first: the shared bitmap is read only when none of it is left, so
 * that one exchange hands over every call that ended meanwhile. ALL: harvest
 * every word (see ember__any_harvest). */
static inline int ember__any_look(ember_client *c, bool all, ember_call_id *id, ember_result *res,
                                  int *rc)
{
    if (ember__any_fifo(c, id, res, rc) || ember__any_collect_ready(c, id, res, rc) ||
        ember__any_harvest(c, all, id, res, rc) ||
        ember__any_collect_ready(c, id, res, rc))
        return 1;
    uint64_t now = ember__now_ns();
    if (now >= atomic_load_explicit(&c->next_deadline, memory_order_relaxed) &&
        ember__any_expire(c, now, id, res, rc))
        return 1;
    return 0;
}

/* -- the completion fd ------------------------------------------------------ */

static inline int ember__cq_open(ember_client *c)
{
    struct ember__cq *q = (struct ember__cq *)calloc(1, sizeof *q);
    if (!q) return ember__fail(-EMBER_ENOMEM, "ember_completion_fd: no memory");
    q->fd = -1;
    pthread_mutex_init(&q->lock, NULL);
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    q->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
    if (q->fd < 0) {
        int e = errno;
        ember__cq_close(q);
        return ember__fail(e == ENOSYS || e == EPERM ? -EMBER_ENOSYS : -EMBER_ESYSTEM,
                           "ember_completion_fd: io_uring_setup: %s (io_uring refused here, e.g. "
                           "kernel.io_uring_disabled or a container's filter: use ember_wait_any)",
                           strerror(e));
    }
    int fl = fcntl(q->fd, F_GETFD);
    if (fl >= 0) fcntl(q->fd, F_SETFD, fl | FD_CLOEXEC);
    q->sq_len = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
    q->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        if (q->cq_len > q->sq_len) q->sq_len = q->cq_len;
        q->cq_len = q->sq_len;
    }
    q->sq_map = mmap(NULL, q->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, q->fd,
                     IORING_OFF_SQ_RING);
    q->cq_map = (p.features & IORING_FEAT_SINGLE_MMAP)
                    ? q->sq_map
                    : mmap(NULL, q->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                           q->fd, IORING_OFF_CQ_RING);
    q->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
    q->sqes = (struct io_uring_sqe *)mmap(NULL, q->sqes_len, PROT_READ | PROT_WRITE,
                                          MAP_SHARED | MAP_POPULATE, q->fd, IORING_OFF_SQES);
    if (q->sq_map == MAP_FAILED || q->cq_map == MAP_FAILED || (void *)q->sqes == MAP_FAILED) {
        int e = errno;
        ember__cq_close(q);
        return ember__sys_fail(e, "ember_completion_fd: mmap of the io_uring");
    }
    char *sq = (char *)q->sq_map, *cq = (char *)q->cq_map;
    q->sq_head = (EMBER_ATOMIC(uint32_t) *)(sq + p.sq_off.head);
    q->sq_tail = (EMBER_ATOMIC(uint32_t) *)(sq + p.sq_off.tail);
    q->sq_mask = *(uint32_t *)(sq + p.sq_off.ring_mask);
    q->sq_array = (uint32_t *)(sq + p.sq_off.array);
    q->cq_head = (EMBER_ATOMIC(uint32_t) *)(cq + p.cq_off.head);
    q->cq_tail = (EMBER_ATOMIC(uint32_t) *)(cq + p.cq_off.tail);
    q->cq_mask = *(uint32_t *)(cq + p.cq_off.ring_mask);
    q->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    c->cq = q;
    return 0;
}

/* Queue one request and submit it; 0 or -errno. The kernel reads the SQE
 * after the tail's release store. */
static inline int ember__cq_submit(struct ember__cq *q, uint8_t op, int fd, uint64_t addr,
                                   uint64_t off, uint32_t len, uint32_t flags, uint64_t tag)
{
    uint32_t tail = atomic_load_explicit(q->sq_tail, memory_order_relaxed);
    uint32_t i = tail & q->sq_mask;
    struct io_uring_sqe *e = &q->sqes[i];
    memset(e, 0, sizeof *e);
    e->opcode = op;
    e->fd = fd;
    e->addr = addr;
    e->off = off;
    e->len = len;
    e->rw_flags = (int)flags; /* poll32_events, timeout_flags: the same union */
    e->user_data = tag;
    if (op == 51) e->addr3 = 0xffffffffull; /* FUTEX_WAIT: the bitmask */
    q->sq_array[i] = i;
    atomic_store_explicit(q->sq_tail, tail + 1, memory_order_release);
    if (syscall(__NR_io_uring_enter, q->fd, 1, 0, 0, NULL, 0) < 0) return -errno;
    return 0;
}

/* Reap the completions (the fd stops being readable) and note which
 * requests are no longer armed. The acquire on the tail pairs with the
 * kernel's release when it posts; the release on the head hands the
 * entries back. */
static inline void ember__cq_reap(ember_client *c, struct ember__cq *q)
{
    uint32_t head = atomic_load_explicit(q->cq_head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(q->cq_tail, memory_order_acquire);
    for (; head != tail; head++) {
        uint64_t tag = q->cqes[head & q->cq_mask].user_data;
        if (tag == EMBER__CQ_FUTEX && q->futex_armed) {
            q->futex_armed = false;
            atomic_fetch_sub_explicit(&c->v.callers[c->caller_idx].done_armed, 1, memory_order_seq_cst);
        } else if (tag == EMBER__CQ_PIDFD) {
            q->pidfd_armed = false;
        } else if (tag == EMBER__CQ_TIMEOUT) {
            q->timeout_armed = false;
        }
    }
    atomic_store_explicit(q->cq_head, head, memory_order_release);
}

/* Arm what is not armed: the futex wait on done_seq (counted in
 * done_armed first: the eventcount), the supervisor's pidfd, a timeout at
 * the earliest deadline. Returns true if, once armed, a done bit is
 * already there (the caller looks again instead of going to sleep). */
static inline bool ember__cq_arm(ember_client *c, struct ember__cq *q)
{
    struct ember_caller_ent *ce = &c->v.callers[c->caller_idx];
    bool look = false;
    if (!q->futex_armed) {
        atomic_fetch_add_explicit(&ce->done_armed, 1, memory_order_seq_cst);
        uint32_t seq = ember__done_seq_arm(ce);
        if (ember__cq_submit(q, 51, 0x02 /* FUTEX2_SIZE_U32 */, (uint64_t)(uintptr_t)&ce->done_seq,
                             seq, 0, 0, EMBER__CQ_FUTEX) == 0)
            q->futex_armed = true;
        else
            atomic_fetch_sub_explicit(&ce->done_armed, 1, memory_order_seq_cst);
        EMBER_ATOMIC(uint64_t) *bits = ember__done_bits(&c->v, c->caller_idx);
        for (uint32_t k = 0; k < (c->v.nslots + 63) / 64 && !look; k++)
            look = atomic_load_explicit(&bits[k], memory_order_seq_cst) != 0;
    }
    if (!q->pidfd_armed &&
        ember__cq_submit(q, IORING_OP_POLL_ADD, c->sup_pidfd, 0, 0, 0, POLLIN, EMBER__CQ_PIDFD) == 0)
        q->pidfd_armed = true;
    uint64_t next = atomic_load_explicit(&c->next_deadline, memory_order_relaxed);
    if (next != UINT64_MAX && (!q->timeout_armed || next < q->timeout_at)) {
        q->ts.tv_sec = (long long)(next / 1000000000ull);
        q->ts.tv_nsec = (long long)(next % 1000000000ull);
        if (ember__cq_submit(q, IORING_OP_TIMEOUT, -1, (uint64_t)(uintptr_t)&q->ts, 0, 1,
                             IORING_TIMEOUT_ABS, EMBER__CQ_TIMEOUT) == 0)
            q->timeout_armed = true, q->timeout_at = next;
    }
    return look;
}

#endif /* EMBER_DETAIL_ANY_H */
