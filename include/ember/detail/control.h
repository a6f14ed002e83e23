/* ember/detail/control.h - pool control shared by the client and libember:
 * waiting for ready runners, stopping the supervisor, resizing. */
#ifndef EMBER_DETAIL_CONTROL_H
#define EMBER_DETAIL_CONTROL_H

#include "proc.h"
#include "wake.h"

/* Wait until at least N runners are READY (or TIMEOUT_NS passes, negative:
 * no limit): 0, -EMBER_ETIMEDOUT, -EMBER_EPOOLDOWN. */
static inline int ember__wait_ready(struct ember__view *v, const char *name, int sup_pidfd, unsigned n,
                             int64_t timeout_ns)
{
    uint64_t until = timeout_ns < 0 ? UINT64_MAX : ember__now_ns() + (uint64_t)timeout_ns;
    for (;;) {
        uint32_t ep = atomic_load(&v->hdr->epoch);
        unsigned ready = 0;
        for (uint32_t r = 0; r < v->nrunners; r++)
            ready += atomic_load(&v->runners[r].state) == EMBER_RUNNER_READY;
        if (ready >= n) return 0;
        uint32_t ps = atomic_load(&v->hdr->pool_state);
        if ((ps != EMBER_POOL_RUNNING && ps != EMBER_POOL_STARTING) || ember__pidfd_dead(sup_pidfd))
            return ember__fail(-EMBER_EPOOLDOWN, "pool '%s' is stopping or its supervisor died", name);
        uint64_t now = ember__now_ns();
        if (now >= until)
            return ember__fail(-EMBER_ETIMEDOUT, "pool '%s': %u of %u runners ready", name, ready, n);
        uint64_t t = now + 100000000ull;
        ember__futex_wait(&v->hdr->epoch, ep, t < until ? t : until);
    }
}

/* Ask the supervisor behind SUP_PIDFD to stop, giving running calls
 * SHUTDOWN_TIMEOUT_NS (negative: the pool's own), and wait for it to exit for
 * up to that and 3 s more; one still there then is killed (*KILLED, if not
 * NULL, says so). With a negative timeout the wait has no limit (the
 * supervisor bounds its own stop). */
static inline int ember__stop_supervisor(struct ember__view *v, const char *name, int sup_pidfd,
                                  int64_t shutdown_timeout_ns, bool *killed)
{
    if (killed) *killed = false;
    if (shutdown_timeout_ns >= 0) atomic_store(&v->hdr->stop_timeout_ns, shutdown_timeout_ns);
    if (ember__pidfd_signal(sup_pidfd, SIGTERM) < 0 && errno != ESRCH)
    {
        char what[96];
        snprintf(what, sizeof what, "pool '%s': cannot signal its supervisor", name);
        return ember__sys_fail(errno, what);
    }
    int64_t ms = shutdown_timeout_ns < 0 ? -1 : shutdown_timeout_ns / 1000000 + 3000;
    struct pollfd p;
    p.fd = sup_pidfd;
    p.events = POLLIN;
    p.revents = 0;
    int rc;
    while ((rc = poll(&p, 1, ms > INT32_MAX ? -1 : (int)ms)) < 0 && errno == EINTR) {}
    if (rc == 0 && ember__pidfd_signal(sup_pidfd, SIGKILL) == 0 && killed)
        *killed = true;
    return 0;
}

/* Copy up to N events of V's ring from *CURSOR on into EV (ember_events_read,
 * and the application's event thread in libember): how many, *CURSOR moved
 * past them (and past those overwritten before they were read). */
static inline int ember__events_copy(struct ember__view *v, const char *name, uint64_t *cursor,
                                     ember_event *ev, int n)
{
    uint64_t next = atomic_load_explicit(&v->hdr->ev_next, memory_order_acquire);
    uint64_t cur = *cursor;
    if (cur > next) cur = next; /* a cursor from another pool's life */
    if (next - cur > EMBER_EVENT_RING) cur = next - EMBER_EVENT_RING;
    int k = 0;
    for (; k < n && cur < next; cur++) {
        struct ember_event_ent *e = &v->events[cur % EMBER_EVENT_RING];
        if (atomic_load_explicit(&e->seq, memory_order_acquire) != cur + 1) continue; /* overwritten */
        ember_event *o = &ev[k];
        memset(o, 0, sizeof *o);
        o->seq = cur;
        o->time_ns = e->time_ns;
        o->type = (int)e->type;
        o->runner = e->runner;
        o->runners = e->runners;
        o->reason = (int)e->reason;
        o->ok = e->ok;
        o->count = e->count;
        o->status = e->status;
        o->signal = e->signal;
        memcpy(o->msg, e->msg, sizeof o->msg);
        o->msg[sizeof o->msg - 1] = 0;
#if defined(__SANITIZE_THREAD__)
        /* TSan knows no fences: a release RMW of +0 orders the copy's reads
         * before the second look just as well (pairs with the writer's
         * release fence and seq store, src/supervisor/events.c) */
        if (atomic_fetch_add_explicit(&e->seq, 0, memory_order_acq_rel) != cur + 1) continue; /* torn */
#else
        /* the copy's reads before the second look at seq (pairs with the
         * writer's release fence and seq store, src/supervisor/events.c) */
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&e->seq, memory_order_relaxed) != cur + 1) continue; /* torn */
#endif
        snprintf(o->pool, sizeof o->pool, "%s", name);
        k++;
    }
    *cursor = cur;
    return k;
}

/* New bounds for the pool; the supervisor acts on them at its next look. */
static inline int ember__resize(struct ember__view *v, const char *name, unsigned min, unsigned max)
{
    if (max == 0 || max > v->nrunners)
        return ember__fail(-EMBER_EINVAL, "pool '%s': resize: max %u is not in 1..max_limit (%u)",
                           name, max, v->nrunners);
    if (min > max)
        return ember__fail(-EMBER_EINVAL, "pool '%s': resize: min %u is above max %u", name, min, max);
    atomic_store(&v->hdr->min, min);
    atomic_store(&v->hdr->max, max);
    atomic_fetch_add(&v->hdr->resize_seq, 1);
    ember__ring_doorbell(v);
    return 0;
}

#endif /* EMBER_DETAIL_CONTROL_H */
