/* ember/detail/client_impl.h - the client's public functions (client.h).
 *
 * Compiled once: in the file of a program that defines
 * EMBER_CLIENT_IMPLEMENTATION, or in libember (src/lib/client.c). The
 * machinery they use is in call.h and the other detail headers. */
#ifndef EMBER_DETAIL_CLIENT_IMPL_H
#define EMBER_DETAIL_CLIENT_IMPL_H

#include "any.h"

/* Open and map the segment of pool NAME: 0 with *BASE, *SIZE and *FDP set
 * (the segment, kept open: for the liveness check at attach and to reserve
 * payload pages, detail/pages.h), or -EMBER_ENOPOOL, -EMBER_EOWNER,
 * -EMBER_ECORRUPT, a system error. */
static inline int ember__segment_map(const char *name, void **base, size_t *size, int *fdp)
{
    char shm[96];
    ember__shm_name(shm, sizeof shm, name);
    int fd = shm_open(shm, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == ENOENT)
            return ember__fail(-EMBER_ENOPOOL, "pool '%s' is not running (no segment %s)", name, shm);
        char what[160];
        snprintf(what, sizeof what, "pool '%s': shm_open %s", name, shm);
        return ember__sys_fail(errno, what);
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = ember__sys_fail(errno, "ember_attach: fstat of the pool's segment");
    else if (st.st_uid != geteuid())
        rc = ember__fail(-EMBER_EOWNER, "pool '%s': segment %s belongs to uid %u, not %u", name,
                         shm, (unsigned)st.st_uid, (unsigned)geteuid());
    else if (st.st_size == 0) /* being made: ember_pool_start has not sized it yet */
        rc = ember__fail(-EMBER_ENOPOOL, "pool '%s' is not running (its segment is being made)", name);
    else if ((size_t)st.st_size < sizeof(struct ember_shm_header))
        rc = ember__fail(-EMBER_ECORRUPT, "pool '%s': segment %s is too small (%lld bytes)",
                         name, shm, (long long)st.st_size);
    if (rc) {
        close(fd);
        return rc;
    }
    *size = (size_t)st.st_size;
    *base = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (*base == MAP_FAILED) {
        int e = errno;
        close(fd);
        return ember__sys_fail(e, "ember_attach: mmap of the pool's segment");
    }
    *fdp = fd;
    return 0;
}

/* Check that C's pool has a live supervisor (opening its pidfd) and claim
 * a caller entry; the supervisor learns of it from the doorbell. Alive is
 * the supervisor's lock held on the segment FD (proc.h): a supervisor that
 * has exited holds none, reaped or not. The pidfd is opened first, so a
 * lock still held afterwards means the pidfd is the supervisor's. */
static inline int ember__caller_join(ember_client *c, int fd)
{
    uint32_t pid = atomic_load_explicit(&c->v.hdr->sup_pid, memory_order_acquire);
    c->sup_pidfd = pid ? ember__pidfd_open((pid_t)pid) : -1;
    int held = c->sup_pidfd < 0 ? 0 : ember__ofd_locked(fd, EMBER__LOCK_SUPERVISOR, 1);
    if (held < 0) return ember__sys_fail(-held, "ember_attach: F_OFD_GETLK on the pool's segment");
    if (!held && !pid)
        return ember__fail(-EMBER_ENOPOOL, "pool '%s' is not running (its supervisor has not "
                           "started)", c->name);
    if (!held)
        return ember__fail(-EMBER_ENOPOOL, "pool '%s' is not running (its supervisor, pid %u, has "
                           "ended)", c->name, pid);
    uint32_t me = (uint32_t)getpid();
    for (uint32_t i = 0; i < c->v.ncallers; i++) {
        uint32_t z = 0;
        if (atomic_compare_exchange_strong(&c->v.callers[i].pid, &z, me)) {
            c->caller_idx = i;
            c->caller_gen = atomic_fetch_add(&c->v.callers[i].gen, 1) + 1;
            /* the entry's done bitmap may hold bits of its last owner */
            EMBER_ATOMIC(uint64_t) *bits = ember__done_bits(&c->v, i);
            for (uint32_t k = 0; k < (c->v.nslots + 63) / 64; k++)
                atomic_store_explicit(&bits[k], 0, memory_order_relaxed);
            ember__ring_doorbell(&c->v);
            return 0;
        }
    }
    return ember__fail(-EMBER_ECALLERS, "pool '%s': all %u caller entries are taken", c->name,
                       c->v.ncallers);
}

static EMBER_ATOMIC(uint64_t) ember__client_serial; /* the clients this process attached */

EMBER_API int ember_attach(const char *name, ember_client **out)
{
    if (!out) return ember__fail(-EMBER_EINVAL, "ember_attach: out is NULL");
    *out = NULL;
    if (!ember__name_ok(name))
        return ember__fail(-EMBER_EINVAL, "bad pool name '%s': 1-39 of [A-Za-z0-9_.-]",
                           name ? name : "(null)");
    void *base = NULL;
    size_t size = 0;
    int fd = -1;
    int rc = ember__segment_map(name, &base, &size, &fd);
    if (rc) return rc;
    ember_client *c = (ember_client *)calloc(1, sizeof *c);
    if (!c) {
        munmap(base, size);
        close(fd);
        return ember__fail(-EMBER_ENOMEM, "ember_attach: no memory for the client");
    }
    c->sup_pidfd = -1;
    c->caller_idx = EMBER_NONE;
    /* relaxed: only tells clients of this process apart (ember__submit_counter) */
    c->serial = atomic_fetch_add_explicit(&ember__client_serial, 1, memory_order_relaxed) + 1;
    atomic_store_explicit(&c->next_deadline, UINT64_MAX, memory_order_relaxed);
    for (uint32_t k = 0; k < EMBER_SUBMIT_COUNTERS; k++)
        atomic_store_explicit(&c->hot[k], EMBER_NONE, memory_order_relaxed);
    snprintf(c->name, sizeof c->name, "%s", name);
    /* A segment still being made (its header zero or half written, no
     * pool_state yet) is a pool not yet running, not a corrupted one:
     * ember_pool_start stores pool_state (seq_cst) only after the whole
     * header; this acquire pairs with that store. */
    struct ember_shm_header *h0 = (struct ember_shm_header *)base;
    if (atomic_load_explicit(&h0->pool_state, memory_order_acquire) == 0 &&
        (h0->magic == 0 || h0->magic == EMBER_MAGIC) &&
        (h0->abi_version == 0 || h0->abi_version == EMBER_ABI_VERSION))
        rc = ember__fail(-EMBER_ENOPOOL, "not running yet (its segment is being made)");
    else
        rc = ember__view_init(&c->v, base, size);
    c->v.shm_fd = fd;
    if (rc == 0) rc = ember__any_init(c);
    if (rc < 0) {
        char why[EMBER__ERRLEN];
        memcpy(why, ember__errbuf, sizeof why);
        ember__fail(rc, "pool '%s': %s", name, why);
    } else {
        rc = ember__caller_join(c, fd);
    }
    if (rc) {
        if (c->sup_pidfd >= 0) close(c->sup_pidfd);
        munmap(base, size);
        close(fd);
        ember__any_fini(c);
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

EMBER_API void ember_detach(ember_client *c)
{
    if (!c) return;
    /* Give back what this caller still holds (ember__slot_disown): queued
     * calls never run, running ones are cancelled; casts and unlinked calls
     * run on. */
    for (uint32_t i = 0; i < c->v.nslots; i++) {
        struct ember_slot *s = &c->v.slots[i];
        uint32_t w = atomic_load_explicit(&s->state, memory_order_acquire);
        if (ember__st(w) != EMBER_SLOT_FREE && ember__owned_by(s, w, c->caller_idx, c->caller_gen))
            ember__slot_disown(&c->v, i, ember__gen(w), false);
    }
    for (uint32_t k = 0; k < EMBER_SUBMIT_COUNTERS; k++) /* no thread uses C any more */
        ember__hot_return(&c->v, atomic_exchange(&c->hot[k], EMBER_NONE));
    ember__any_fini(c); /* while the caller entry is still ours */
    uint32_t me = (uint32_t)getpid();
    atomic_compare_exchange_strong(&c->v.callers[c->caller_idx].pid, &me, 0);
    ember__ring_doorbell(&c->v);
    close(c->sup_pidfd);
    munmap(c->v.base, c->v.size);
    close(c->v.shm_fd);
    free(c);
}

EMBER_API int ember_handler(ember_client *c, const char *name)
{
    if (!c || !name) return ember__fail(-EMBER_EINVAL, "ember_handler: NULL argument");
    for (uint32_t i = 0; i < c->v.nhandlers; i++)
        if (strncmp(c->v.handlers[i].name, name, EMBER_NAME_MAX) == 0) return (int)i;
    return ember__fail(-EMBER_ENOHANDLER, "pool '%s' has no handler '%s'", c->name, name);
}

EMBER_API size_t ember_max_payload(const ember_client *c) { return c ? c->v.max_payload : 0; }


EMBER_API int ember_submit_flags(ember_client *c, int h, const void *args, size_t len,
                                 int64_t timeout_ns, unsigned flags, ember_call_id *id)
{
    if (!id) return ember__fail(-EMBER_EINVAL, "ember_submit: id is NULL");
    if (c && !c->mine) return ember__fail(-EMBER_ENOMEM, "pool '%s': no memory for ember_wait_any's "
                                          "bookkeeping", c->name);
    return ember__submit_t(c, h, args, len, timeout_ns, flags, EMBER_CALL_NOTIFY, id, NULL, NULL);
}

EMBER_API int ember_submit(ember_client *c, int h, const void *args, size_t len,
                           int64_t timeout_ns, ember_call_id *id)
{
    return ember_submit_flags(c, h, args, len, timeout_ns, 0, id);
}

EMBER_API int ember_cast_flags(ember_client *c, int h, const void *args, size_t len,
                               int64_t timeout_ns, unsigned flags)
{
    return ember__submit_t(c, h, args, len, timeout_ns, flags, EMBER_CALL_CAST, NULL, NULL, NULL);
}

EMBER_API int ember_cast(ember_client *c, int h, const void *args, size_t len, int64_t timeout_ns)
{
    return ember_cast_flags(c, h, args, len, timeout_ns, 0);
}

EMBER_API int ember_poll(ember_client *c, ember_call_id id, ember_result *res)
{
    uint32_t w = 0;
    int rc = ember__id_check(c, id, res, &w, "ember_poll");
    if (rc) return rc;
    struct ember_slot *s = &c->v.slots[id.idx];
    if (ember__st(w) == EMBER_SLOT_DONE || ember__now_ns() >= s->deadline_ns) {
        ember__any_untrack(c, id.idx, id.gen);
        if (ember__st(w) == EMBER_SLOT_DONE) return res->status = ember__collect(c, id.idx, w, res);
        return res->status = ember__expire(c, id.idx, id.gen, res);
    }
    rc = ember__pool_gone(c);
    if (rc) {
        w = atomic_load_explicit(&s->state, memory_order_acquire); /* ended before the DOWN? */
        if (ember__st(w) == EMBER_SLOT_DONE && ember__gen(w) == id.gen) {
            ember__any_untrack(c, id.idx, id.gen);
            return res->status = ember__collect(c, id.idx, w, res);
        }
        return res->status = rc;
    }
    return EMBER__FAIL_TEXT(-EMBER_EAGAIN, "ember_poll: the call has not finished yet");
}

EMBER_API int ember_wait_any(ember_client *c, int64_t timeout_ns, ember_call_id *id,
                             ember_result *res)
{
    if (!c || !id || !res) return ember__fail(-EMBER_EINVAL, "ember_wait_any: NULL argument");
    ember__result_clear(res);
    id->idx = EMBER_NONE, id->gen = 0;
    struct ember__view *v = &c->v;
    struct ember_caller_ent *ce = &v->callers[c->caller_idx];
    uint64_t until = timeout_ns < 0 || timeout_ns == EMBER_NEVER ? UINT64_MAX
                                                                   : ember__now_ns() + (uint64_t)timeout_ns;
    int rc = 0;
    if (c->cq) { /* what made the fd readable is being looked at now */
        pthread_mutex_lock(&c->cq->lock);
        ember__cq_reap(c, c->cq);
        pthread_mutex_unlock(&c->cq->lock);
    }
    bool spun = false, all = false; /* ALL: the next look harvests every word */
    for (;;) {
        if (ember__any_look(c, all, id, res, &rc)) return 0;
        all = false;
        bool none = ember__any_none(c);
        uint64_t now = ember__now_ns();
        if (none || now >= until) {
            if (c->cq) { /* nothing to return: the fd is quiet from here on, so arm it again */
                pthread_mutex_lock(&c->cq->lock);
                bool look = ember__cq_arm(c, c->cq);
                pthread_mutex_unlock(&c->cq->lock);
                if (look) { all = true; continue; }
            }
            if (none) return EMBER__FAIL_TEXT(-EMBER_ENOCALLS, "ember_wait_any: no call in flight");
            if ((rc = ember__pool_gone(c)) != 0) return rc;
            return EMBER__FAIL_TEXT(-EMBER_EAGAIN, "ember_wait_any: no call ended in time");
        }
        EMBER_ATOMIC(uint64_t) *bits = ember__done_bits(v, c->caller_idx);
        const uint32_t words = (v->nslots + 63) / 64;
        if (!spun) { /* spin a while (not when spinners outnumber CPUs), then park */
            spun = true;
            atomic_fetch_add_explicit(&ce->spinning, 1, memory_order_relaxed);
            if (ember__spinners(atomic_fetch_add_explicit(&v->hdr->spin, 1, memory_order_relaxed)) <
                (int32_t)v->ncpus) {
                uint64_t stop = now + ember__spin_budget;
                bool found = false;
                for (unsigned i = 1; !found; i++) { /* the words of calls of ours (see harvest) */
                    for (uint32_t j = 0; j < (words + 63) / 64 && !found; j++)
                        for (uint64_t m = atomic_load_explicit(&c->mine_sum[j], memory_order_relaxed);
                             m && !found; m &= m - 1)
                            found = atomic_load_explicit(&bits[j * 64 + (uint32_t)__builtin_ctzll(m)],
                                                         memory_order_relaxed) != 0;
                    ember__spin_step(i);
                    if ((i & 63) == 0 && ember__now_ns() >= (stop < until ? stop : until)) break;
                }
                if (found) ember__spin_won(); else ember__spin_lost();
            }
            atomic_fetch_sub_explicit(&v->hdr->spin, 1, memory_order_relaxed);
            atomic_fetch_sub_explicit(&ce->spinning, 1, memory_order_relaxed);
            continue;
        }
        /* park: count this thread in done_armed, arm the sequence (even), look
         * once more, sleep (at most 200 ms: a dead supervisor is noticed) */
        atomic_fetch_add_explicit(&ce->done_armed, 1, memory_order_seq_cst);
        uint32_t seq = ember__done_seq_arm(ce);
        bool found = false;
        for (uint32_t k = 0; k < words && !found; k++)
            found = atomic_load_explicit(&bits[k], memory_order_seq_cst) != 0;
        if (!found) {
            uint64_t t = now + 200000000ull, next = atomic_load(&c->next_deadline);
            if (next < t) t = next;
            if (until < t) t = until;
            if (t > now) ember__futex_wait(&ce->done_seq, seq, t);
        }
        atomic_fetch_sub_explicit(&ce->done_armed, 1, memory_order_seq_cst);
        all = found;
        if (!found && (rc = ember__pool_gone(c)) != 0) {
            if (ember__any_look(c, true, id, res, &rc)) return 0; /* ended before the pool went down */
            return rc;
        }
    }
}

EMBER_API int ember_completion_fd(ember_client *c)
{
    if (!c) return ember__fail(-EMBER_EINVAL, "ember_completion_fd: client is NULL");
    int rc = 0;
    pthread_mutex_t *lk = NULL;
    if (!c->cq && (rc = ember__cq_open(c)) != 0) return rc;
    lk = &c->cq->lock;
    pthread_mutex_lock(lk);
    if (ember__cq_arm(c, c->cq)) /* something to collect already: readable now */
        ember__cq_submit(c->cq, IORING_OP_NOP, -1, 0, 0, 0, 0, 0);
    pthread_mutex_unlock(lk);
    return c->cq->fd;
}

EMBER_API int ember_wait(ember_client *c, ember_call_id id, ember_result *res)
{
    uint32_t w = 0;
    int rc = ember__id_check(c, id, res, &w, "ember_wait");
    if (rc) return rc;
    rc = ember__wait(c, id, c->v.slots[id.idx].deadline_ns, w, false, res);
    if (rc != -EMBER_EPOOLDOWN && rc != -EMBER_ESTALE) ember__any_untrack(c, id.idx, id.gen); /* collected */
    return rc;
}

EMBER_API int ember_call_flags(ember_client *c, int h, const void *args, size_t len,
                               ember_result *res, int64_t timeout_ns, unsigned flags)
{
    ember_call_id id;
    if (!res) return ember__fail(-EMBER_EINVAL, "ember_call: res is NULL");
    ember__result_clear(res);
    uint64_t deadline = 0;
    bool woke = false;
    int rc = ember__submit_t(c, h, args, len, timeout_ns, flags, 0, &id, &deadline, &woke);
    if (rc) return res->status = rc;
    return ember__wait(c, id, deadline, 0, woke, res); /* the id is ours: no checks */
}

EMBER_API int ember_call(ember_client *c, int h, const void *args, size_t len, ember_result *res,
                         int64_t timeout_ns)
{
    return ember_call_flags(c, h, args, len, res, timeout_ns, 0);
}

EMBER_API int ember_cancel(ember_client *c, ember_call_id id)
{
    if (!c || id.idx >= c->v.nslots) return ember__fail(-EMBER_EINVAL, "ember_cancel: bad argument");
    struct ember_slot *s = &c->v.slots[id.idx];
    uint32_t w = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        if (!ember__id_live(w, id) || !ember__owned_by(s, w, c->caller_idx, c->caller_gen))
            return ember__stale(c, id.idx, id.gen);
        if (ember__st(w) == EMBER_SLOT_DONE || (w & EMBER_SLOT_CANCEL)) return 0;
        if (atomic_compare_exchange_strong(&s->state, &w, w | EMBER_SLOT_CANCEL)) break;
    }
    /* the supervisor starts the kill_grace clock when it looks */
    if (ember__st(w) == EMBER_SLOT_RUNNING) ember__ring_doorbell(&c->v);
    return 0;
}

EMBER_API int ember_place_child(ember_client *c, int h, const void *args, size_t len,
                                int64_t timeout_ns, unsigned flags, ember_child *ch)
{
    if (!c || !ch) return ember__fail(-EMBER_EINVAL, "ember_place_child: bad argument");
    memset(ch, 0, sizeof *ch);
    ch->pidfd = -1;
    ch->runner = EMBER_NONE;
    int rc = ember__bad_flags(flags);
    if (rc) return rc;
    if (flags >> EMBER_RETRIES_SHIFT)
        return ember__fail(-EMBER_EINVAL, "ember_place_child: a child is never retried "
                           "(EMBER_RETRIES is for calls and casts)");
    struct ember__view *v = &c->v;
    uint64_t start_by = ember__deadline(c, timeout_ns);
    ember_call_id id;
    rc = ember__submit(c, h, args, len, start_by, UINT64_MAX, 0, ember__slot_flags(flags) | EMBER_CALL_CHILD,
                       &id, NULL);
    if (rc) return rc;
    struct ember_slot *s = &v->slots[id.idx];
    uint32_t w = atomic_load_explicit(&s->state, memory_order_acquire);
    /* wait until a runner runs it (STARTED) or it is already over (DONE) */
    for (;;) {
        if (ember__gen(w) != id.gen) return ember__fail(-EMBER_ECORRUPT, "child slot reused");
        uint32_t st = ember__st(w);
        if (st == EMBER_SLOT_DONE || (st == EMBER_SLOT_RUNNING && (w & EMBER_SLOT_STARTED))) break;
        uint64_t now = ember__now_ns();
        if (now >= start_by && st == EMBER_SLOT_QUEUED) {
            if (ember__slot_free(v, id.idx, w))
                return ember__fail(-EMBER_ETIMEDOUT, "pool '%s': no runner took the child "
                                   "before the timeout; it never ran", c->name);
            w = atomic_load_explicit(&s->state, memory_order_acquire);
            continue;
        }
        if (!(w & EMBER_SLOT_WAITER)) {
            if (!atomic_compare_exchange_strong(&s->state, &w, w | EMBER_SLOT_WAITER)) continue;
            w |= EMBER_SLOT_WAITER;
        }
        uint64_t until = now + 200000000ull;
        if (st == EMBER_SLOT_QUEUED && start_by < until) until = start_by;
        ember__futex_wait(&s->state, w, until);
        w = atomic_load_explicit(&s->state, memory_order_acquire);
        if (ember__st(w) != EMBER_SLOT_DONE && !(w & EMBER_SLOT_STARTED) &&
            (rc = ember__pool_gone(c)) != 0) {
            ember__slot_disown(v, id.idx, id.gen, false);
            return rc;
        }
    }
    ch->id = id;
    ch->runner = s->runner == EMBER_SLOT_NO_RUNNER ? EMBER_NONE : s->runner;
    if (ch->runner < v->nrunners) {
        struct ember_runner_ent *re = &v->runners[ch->runner];
        uint32_t pid = atomic_load(&re->pid);
        if ((uint16_t)atomic_load(&re->gen) == s->runner_gen && pid) {
            ch->pid = (int)pid;
            ch->pidfd = ember__pidfd_open((pid_t)pid);
        }
    }
    return 0;
}

EMBER_API int ember_child_wait(ember_client *c, ember_child *ch, ember_result *res)
{
    if (!c || !ch || !res) return ember__fail(-EMBER_EINVAL, "ember_child_wait: bad argument");
    int rc = ember_wait(c, ch->id, res);
    if (ch->pidfd >= 0) close(ch->pidfd);
    ch->pidfd = -1;
    return rc;
}

EMBER_API int ember_child_stop(ember_client *c, ember_child *ch, ember_result *res)
{
    if (!c || !ch || !res) return ember__fail(-EMBER_EINVAL, "ember_child_stop: bad argument");
    int rc = ember_cancel(c, ch->id);
    if (rc) {
        ember__result_clear(res);
        return res->status = rc;
    }
    return ember_child_wait(c, ch, res);
}

EMBER_API void ember_result_release(ember_client *c, ember_result *res)
{
    if (!c || !res || res->_idx == EMBER_NONE || res->_idx >= c->v.nslots) return;
    uint32_t w = atomic_load_explicit(&c->v.slots[res->_idx].state, memory_order_acquire);
    if (ember__gen(w) == res->_gen && ember__st(w) == EMBER_SLOT_DONE)
        ember__slot_recycle(c, res->_idx, w);
    res->_idx = EMBER_NONE;
    res->data = NULL;
}

EMBER_API int ember_events_read(ember_client *c, uint64_t *cursor, ember_event *ev, int n)
{
    if (!c || !cursor || (n > 0 && !ev) || n < 0)
        return ember__fail(-EMBER_EINVAL, "ember_events_read: bad argument");
    return ember__events_copy(&c->v, c->name, cursor, ev, n);
}

EMBER_API int ember_resize(ember_client *c, unsigned min, unsigned max)
{
    if (!c) return ember__fail(-EMBER_EINVAL, "ember_resize: client is NULL");
    return ember__resize(&c->v, c->name, min, max);
}

EMBER_API int ember_stop(ember_client *c, int64_t shutdown_timeout_ns)
{
    if (!c) return ember__fail(-EMBER_EINVAL, "ember_stop: client is NULL");
    bool killed;
    int rc = ember__stop_supervisor(&c->v, c->name, c->sup_pidfd, shutdown_timeout_ns, &killed);
    if (rc) return rc;
    /* acquire: pairs with the supervisor's release of DOWN (its stop_* counters) */
    if (atomic_load_explicit(&c->v.hdr->pool_state, memory_order_acquire) == EMBER_POOL_DOWN)
        return 0;
    if (killed)
        return ember__fail(-EMBER_EPOOLDOWN, "pool '%s': its supervisor did not end its stop within "
                           "the timeout and 3 s, and was killed; calls still running were lost",
                           c->name);
    return ember__fail(-EMBER_EPOOLDOWN, "pool '%s': its supervisor ended without finishing its "
                       "stop (killed by a signal or crashed; the application that started the pool "
                       "has its exit status); calls still running were lost", c->name);
}

EMBER_API int ember_wait_ready(ember_client *c, unsigned n, int64_t timeout_ns)
{
    if (!c) return ember__fail(-EMBER_EINVAL, "ember_wait_ready: client is NULL");
    return ember__wait_ready(&c->v, c->name, c->sup_pidfd, n, timeout_ns);
}

EMBER_API const char *ember_why_name(int reason)
{
    switch (reason) {
#define EMBER__XWHYNAME(name, val, text) case val: return text;
        EMBER_WHY_TABLE(EMBER__XWHYNAME)
#undef EMBER__XWHYNAME
    default: return "unknown";
    }
}

EMBER_API const char *ember_event_name(int type)
{
    switch (type) {
#define EMBER__XEVNAME(name, val, text) case val: return text;
        EMBER_EVENT_TABLE(EMBER__XEVNAME)
#undef EMBER__XEVNAME
    default: return "unknown";
    }
}

EMBER_API const char *ember_runner_state_name(int state)
{
    switch (state) {
    case EMBER_RUNNER_BOOTING: return "booting";
    case EMBER_RUNNER_READY: return "ready";
    case EMBER_RUNNER_DRAINING: return "draining";
    default: return "empty";
    }
}

EMBER_API const char *ember_pool_state_name(int state)
{
    switch (state) {
    case EMBER_POOL_STARTING: return "starting";
    case EMBER_POOL_RUNNING: return "running";
    case EMBER_POOL_STOPPING: return "stopping";
    case EMBER_POOL_DOWN: return "down";
    default: return "unknown";
    }
}

EMBER_API const char *ember_last_error(void) { return ember__errbuf; }

EMBER_API const char *ember_strerror(int err)
{
    if (err < 0) err = -err;
    switch (err) {
    case 0: return "success";
#define EMBER__XSTR(name, val, msg) case val: return msg;
        EMBER_ERROR_TABLE(EMBER__XSTR)
#undef EMBER__XSTR
    default: return "unknown error (not one of ember's codes)";
    }
}

EMBER_API const char *ember_errname(int err)
{
    if (err < 0) err = -err;
    switch (err) {
    case 0: return "OK";
#define EMBER__XNAME(name, val, msg) case val: return "EMBER_" #name;
        EMBER_ERROR_TABLE(EMBER__XNAME)
#undef EMBER__XNAME
    default: return "EMBER_EUNKNOWN";
    }
}

/* One runner's entry R of view V as the snapshot's RS; false if no process
 * lives there. */
static inline bool ember__runner_snapshot(const struct ember__view *v, uint32_t r, uint64_t now,
                                          ember_runner_stats *rs)
{
    struct ember_runner_ent *re = &v->runners[r];
    uint32_t pid = atomic_load(&re->pid), st = atomic_load(&re->state);
    if (!pid || st == EMBER_RUNNER_EMPTY) return false;
    if (!rs) return true;
    memset(rs, 0, sizeof *rs);
    rs->index = r;
    rs->pid = (int)pid;
    rs->state = (int)st;
    rs->node = re->node;
    memcpy(rs->cpus, re->cpuset, sizeof rs->cpus);
    rs->capacity = v->max_conc;
    for (uint32_t t = 0; t < v->max_conc; t++) {
        struct ember_worker_ent *we = &v->workers[r * v->max_conc + t];
        rs->busy += atomic_load_explicit(&we->busy, memory_order_relaxed) != 0;
        rs->calls += atomic_load_explicit(&we->jobs_done, memory_order_relaxed);
        rs->stolen += atomic_load_explicit(&we->jobs_stolen, memory_order_relaxed);
    }
    rs->rss = atomic_load_explicit(&re->rss, memory_order_relaxed);
    rs->uptime_ns = re->started_ns && now > re->started_ns ? now - re->started_ns : 0;
    rs->reason = (int)atomic_load_explicit(&re->reason, memory_order_relaxed);
    return true;
}

EMBER_API int ember_stats_read(ember_client *c, ember_stats *st, ember_runner_stats *runners, int n)
{
    if (!c || !st || n < 0 || (n > 0 && !runners))
        return ember__fail(-EMBER_EINVAL, "ember_stats_read: bad argument");
    const struct ember__view *v = &c->v;
    struct ember_shm_header *h = v->hdr;
    memset(st, 0, sizeof *st);
    st->epoch = atomic_load(&h->epoch);
    snprintf(st->pool, sizeof st->pool, "%s", c->name);
    st->state = (int)atomic_load_explicit(&h->pool_state, memory_order_acquire);
    memcpy(st->backend, h->backend, sizeof st->backend);
    st->backend[sizeof st->backend - 1] = 0;
    st->supervisor_pid = (int)atomic_load(&h->sup_pid);
    st->placement = (int)h->placement;
    st->nodes = v->nrings;
    st->min = atomic_load(&h->min);
    st->max = atomic_load(&h->max);
    st->max_limit = v->nrunners;
    st->max_concurrency = v->max_conc;
    st->serving = atomic_load(&h->nserving);
    st->ready = atomic_load(&h->nready);
    st->queue_capacity = v->nslots;
    st->max_payload = v->max_payload;
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint32_t s = ember__st(atomic_load_explicit(&v->slots[i].state, memory_order_relaxed));
        st->queued += s == EMBER_SLOT_QUEUED;
        st->running += s == EMBER_SLOT_RUNNING || s == EMBER_SLOT_ABANDONED;
    }
    for (uint32_t i = 0; i < v->ncallers; i++)
        st->callers += atomic_load_explicit(&v->callers[i].pid, memory_order_relaxed) != 0;
    st->runners_started = atomic_load(&h->runners_started);
    st->runners_died = atomic_load(&h->runners_died);
    st->boot_failures = atomic_load(&h->boot_failures);
    st->callers_reaped = atomic_load(&h->callers_reaped);
    st->calls_crashed = atomic_load(&h->calls_crashed);
    st->calls_expired = atomic_load(&h->calls_expired);
    st->calls_killed = atomic_load(&h->calls_killed);
    st->calls_boot_failed = atomic_load(&h->calls_boot_failed);
    st->calls_retried = atomic_load(&h->calls_retried);
    st->calls_poisoned = atomic_load(&h->calls_poisoned);
    st->events = atomic_load(&h->ev_next);
    if (st->state == EMBER_POOL_DOWN) { /* the acquire above pairs with the supervisor's release */
        st->stop_finished = atomic_load_explicit(&h->stop_finished, memory_order_relaxed);
        st->stop_killed = atomic_load_explicit(&h->stop_killed, memory_order_relaxed);
        st->stop_never_ran = atomic_load_explicit(&h->stop_never_ran, memory_order_relaxed);
    }
    uint64_t now = ember__now_ns();
    /* relaxed: pairs with nothing, the supervisor's relaxed heartbeat */
    uint64_t alive = atomic_load_explicit(&h->sup_alive_ns, memory_order_relaxed);
    st->supervisor_silent_ns = alive && now > alive ? now - alive : 0;
    int k = 0;
    for (uint32_t r = 0; r < v->nrunners; r++)
        if (ember__runner_snapshot(v, r, now, k < n ? &runners[k] : NULL)) k++;
    st->runners = (unsigned)k;
    return k;
}

EMBER_API int ember_stats_wait(ember_client *c, uint32_t epoch, int64_t timeout_ns)
{
    if (!c) return ember__fail(-EMBER_EINVAL, "ember_stats_wait: client is NULL");
    uint64_t now = ember__now_ns();
    uint64_t until = timeout_ns < 0 || timeout_ns == EMBER_NEVER ? UINT64_MAX : now + (uint64_t)timeout_ns;
    for (;;) {
        if (atomic_load(&c->v.hdr->epoch) != epoch) return 0;
        int rc = ember__pool_gone(c);
        if (rc) return rc;
        now = ember__now_ns();
        if (now >= until) return 0;
        uint64_t t = now + 200000000ull; /* bounded: a dead supervisor is noticed */
        ember__futex_wait(&c->v.hdr->epoch, epoch, t < until ? t : until);
    }
}

/* ---- metrics (client.h, part 4; the counts: detail/metrics.h) ---- */

/* Resident bytes of process PID from /proc/PID/statm, 0 if unknown. */
static inline uint64_t ember__proc_rss(pid_t pid)
{
    char path[40];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    unsigned long long size = 0, resident = 0;
    int got = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return got == 2 && page > 0 ? resident * (uint64_t)page : 0;
}

EMBER_API int ember_metrics_read(ember_client *c, ember_metrics *m, ember_handler_metrics *hm, int n)
{
    if (!c || !m || n < 0 || (n > 0 && !hm))
        return ember__fail(-EMBER_EINVAL, "ember_metrics_read: bad argument");
    const struct ember__view *v = &c->v;
    struct ember_shm_header *h = v->hdr;
    memset(m, 0, sizeof *m);
    int nh = (int)v->nhandlers;
    if (n > nh) n = nh;
    if (n) memset(hm, 0, (size_t)n * sizeof *hm);
    for (int i = 0; i < n; i++) {
        memcpy(hm[i].name, v->handlers[i].name, EMBER_NAME_MAX);
        hm[i].name[EMBER_NAME_MAX - 1] = 0;
        hm[i].id = i;
    }
    /* the blocks of every worker and the supervisor's (relaxed: abi.h) */
    const uint32_t writers = ember__sup_writer(v) + 1;
    for (uint32_t w = 0; w < writers; w++) {
        const struct ember_count_ent *ce = ember__counts(v, w);
        for (int k = 0; k < EMBER_CAUSES; k++)
            m->failed_by[k] += atomic_load_explicit(&ce->failed[k], memory_order_relaxed);
        for (uint32_t i = 0; i < v->nhandlers; i++) {
            const struct ember_handler_count *hc = ember__handler_counts(v, w, i);
            uint64_t done = atomic_load_explicit(&hc->completed, memory_order_relaxed);
            m->calls_completed += done;
            if ((int)i >= n) continue;
            hm[i].completed += done;
            hm[i].failed += atomic_load_explicit(&hc->failed, memory_order_relaxed);
            hm[i].queue_wait.sum_ns += atomic_load_explicit(&hc->wait_sum_ns, memory_order_relaxed);
            hm[i].run_time.sum_ns += atomic_load_explicit(&hc->run_sum_ns, memory_order_relaxed);
            for (int b = 0; b < EMBER_HIST_BUCKETS; b++) {
                uint64_t wb = atomic_load_explicit(&hc->wait[b], memory_order_relaxed);
                uint64_t rb = atomic_load_explicit(&hc->run[b], memory_order_relaxed);
                hm[i].queue_wait.bucket[b] += wb, hm[i].queue_wait.count += wb;
                hm[i].run_time.bucket[b] += rb, hm[i].run_time.count += rb;
            }
        }
    }
    for (int k = 0; k < EMBER_CAUSES; k++) m->calls_failed += m->failed_by[k];
    for (uint32_t i = 0; i < v->ncallers; i++) {
        const struct ember_caller_ent *ce = &v->callers[i];
        for (uint32_t k = 0; k < EMBER_SUBMIT_COUNTERS; k++)
            m->calls_accepted += atomic_load_explicit(&ce->calls_submitted[k], memory_order_relaxed);
        m->callers_attached += atomic_load_explicit(&ce->gen, memory_order_relaxed);
        m->callers += atomic_load_explicit(&ce->pid, memory_order_relaxed) != 0;
    }
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint32_t st = ember__st(atomic_load_explicit(&v->slots[i].state, memory_order_relaxed));
        m->calls_queued += st == EMBER_SLOT_QUEUED;
        m->calls_in_flight += st == EMBER_SLOT_RUNNING || st == EMBER_SLOT_ABANDONED;
    }
    for (uint32_t r = 0; r < v->nrunners; r++) {
        const struct ember_runner_ent *re = &v->runners[r];
        uint32_t st = atomic_load_explicit(&re->state, memory_order_relaxed);
        if (!atomic_load_explicit(&re->pid, memory_order_relaxed) || st == EMBER_RUNNER_EMPTY) continue;
        unsigned busy = 0;
        for (uint32_t t = 0; t < v->max_conc; t++)
            busy += atomic_load_explicit(&v->workers[r * v->max_conc + t].busy, memory_order_relaxed) != 0;
        m->runners_booting += st == EMBER_RUNNER_BOOTING;
        m->runners_idle += st == EMBER_RUNNER_READY && !busy;
        m->runners_busy += st == EMBER_RUNNER_READY && busy;
        m->runners_draining += st == EMBER_RUNNER_DRAINING;
        m->runners_rss += atomic_load_explicit(&re->rss, memory_order_relaxed);
    }
    m->runner_boots = atomic_load_explicit(&h->runners_started, memory_order_relaxed);
    m->boot_failures = atomic_load_explicit(&h->boot_failures, memory_order_relaxed);
    for (int k = 0; k < EMBER_WHY_SLOTS; k++)
        m->runner_ends[k] = atomic_load_explicit(&h->runner_ends[k], memory_order_relaxed);
    m->callers_reaped = atomic_load_explicit(&h->callers_reaped, memory_order_relaxed);
    uint32_t sup = atomic_load_explicit(&h->sup_pid, memory_order_relaxed);
    m->supervisor_rss = sup ? ember__proc_rss((pid_t)sup) : 0;
    m->handlers = v->nhandlers;
    m->coarse_tick_ns = ember__coarse_res_ns();
    return nh;
}

EMBER_API uint64_t ember_histogram_bound_ns(int i)
{
    if (i < 0 || i >= EMBER_HIST_BUCKETS - 1) return UINT64_MAX;
    return 1000000ull << i;
}

EMBER_API int ember_metrics_cause(int i)
{
    switch (i) {
#define EMBER__XCAUSE(name, val, msg) case EMBER__CAUSE_##name: return -EMBER_##name;
        EMBER_ERROR_TABLE(EMBER__XCAUSE)
#undef EMBER__XCAUSE
    default: return 0;
    }
}

EMBER_API int ember_histogram_quantile(const ember_histogram *now, const ember_histogram *before,
                                       double q, uint64_t *ns)
{
    if (!now || !ns || !(q >= 0 && q <= 1))
        return ember__fail(-EMBER_EINVAL, "ember_histogram_quantile: bad argument");
    uint64_t b[EMBER_HIST_BUCKETS], total = 0;
    for (int i = 0; i < EMBER_HIST_BUCKETS; i++) {
        uint64_t was = before ? before->bucket[i] : 0;
        b[i] = now->bucket[i] > was ? now->bucket[i] - was : 0;
        total += b[i];
    }
    if (!total) return -EMBER_EAGAIN;
    /* the rank-th observation, 1-based, and its bucket */
    double rank = q * (double)total;
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < EMBER_HIST_BUCKETS; i++) {
        if (!b[i] || (double)(seen + b[i]) < rank) {
            seen += b[i];
            continue;
        }
        uint64_t lo = i ? ember_histogram_bound_ns(i - 1) : 0, hi = ember_histogram_bound_ns(i);
        if (hi == UINT64_MAX) *ns = lo;
        else *ns = lo + (uint64_t)((double)(hi - lo) * ((rank - (double)seen) / (double)b[i]));
        return 0;
    }
    *ns = ember_histogram_bound_ns(EMBER_HIST_BUCKETS - 2);
    return 0;
}

#endif /* EMBER_DETAIL_CLIENT_IMPL_H */
