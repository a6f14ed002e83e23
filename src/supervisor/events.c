/* supervisor/events.c - pool events: the ring every process reads, and
 * the supervisor's log. The application's callbacks (on_grow_start...) are
 * not called here: a thread of the application reads the ring (pool.c),
 * so a callback that blocks holds up nothing of the pool's. The log's
 * lines are lib/log.c's (time or journal priority, level word), each
 * tagged "ember[PID]:" with the supervisor's pid. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "supervisor/sup.h"

int sup_log_level;

/* A line of priority PRIO, written when the log's level is NEED or more. */
static void sup_vlog(int prio, int need, const char *fmt, va_list ap)
{
    if (sup_log_level < need) return;
    char tag[32];
    snprintf(tag, sizeof tag, "ember[%d]: ", (int)getpid());
    ember__log_v(prio, tag, fmt, ap);
}

void sup_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_vlog(level >= 2 ? EMBER_LOG_DEBUG : EMBER_LOG_INFO, level, fmt, ap);
    va_end(ap);
}

void sup_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_vlog(EMBER_LOG_WARNING, 1, fmt, ap);
    va_end(ap);
}

void sup_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_vlog(EMBER_LOG_ERR, 1, fmt, ap);
    va_end(ap);
}

/* Tell waiters (ember_pool_wait_ready, tests) that the pool's state moved. */
void sup_bump_epoch(struct ember__view *v)
{
    atomic_fetch_add(&v->hdr->epoch, 1);
    ember__futex_wake(&v->hdr->epoch, INT_MAX);
}

uint32_t sup_count_serving(struct ember__view *v)
{
    uint32_t n = 0;
    for (uint32_t r = 0; r < v->nrunners; r++) {
        uint32_t st = atomic_load(&v->runners[r].state);
        n += st == EMBER_RUNNER_BOOTING || st == EMBER_RUNNER_READY;
    }
    return n;
}

/* Publish an event in the ring (a seqlock per entry), wake its readers
 * (the epoch futex: ember_stats_wait(), the application's event thread),
 * log it. */
void sup_emit(struct sup *s, uint32_t type, uint32_t r, uint32_t reason, int ok, int count,
                 int status, int sig, const char *msg)
{
    struct ember__view *v = s->v;
    /* a runner's end, by reason: its failed boot, or its shrink (abi.h:
     * runner_ends, ours only: a relaxed load and store) */
    if ((type == EMBER_EV_SHRINK || (type == EMBER_EV_GROW_END && !ok)) && reason < EMBER_WHY_SLOTS)
        ember__count_add(&v->hdr->runner_ends[reason], 1);
    uint64_t seq = atomic_load_explicit(&v->hdr->ev_next, memory_order_relaxed);
    struct ember_event_ent *e = &v->events[seq % EMBER_EVENT_RING];
    atomic_store_explicit(&e->seq, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    e->time_ns = ember__now_ns();
    e->type = type;
    e->runner = r;
    e->runners = sup_count_serving(v);
    e->reason = reason;
    e->ok = ok;
    e->count = count;
    e->status = status;
    e->signal = sig;
    memset(e->msg, 0, sizeof e->msg);
    if (msg) snprintf(e->msg, sizeof e->msg, "%s", msg);
    atomic_store_explicit(&e->seq, seq + 1, memory_order_release);
    atomic_store_explicit(&v->hdr->ev_next, seq + 1, memory_order_release);
    /* ember_stats_wait(), `ember events --follow` and the application's
     * event thread wake up */
    sup_bump_epoch(v);
    static const char *const names[] = { "", "grow start", "grow end", "shrink" };
    if (type == EMBER_EV_GROW_END && !ok)
        sup_warn("pool '%s': runner %u failed to boot (%d in a row; status %d, signal %d%s%s)",
                 v->hdr->name, r, count, status, sig, msg && *msg ? ": " : "", msg ? msg : "");
    else
        sup_log(1, "pool '%s': %s, runner %u (%s), %u runners", v->hdr->name, names[type], r,
                ember_why_name((int)reason), e->runners);
}

/* Runner R's boot failed (REASON: boot_failed or boot_timeout): count it,
 * set the backoff, publish the cause for EMBER_EBOOT, report it. */
void sup_boot_failed(struct sup *s, uint32_t r, uint32_t reason, int status, int sig,
                        const char *msg)
{
    struct ember_shm_header *h = s->v->hdr;
    s->failures++;
    s->retry_at = ember__now_ns() + ember__policy_backoff(s->failures);
    h->boot_fail_status = status;
    h->boot_fail_signal = sig;
    snprintf(h->boot_fail_msg, sizeof h->boot_fail_msg, "%s", msg);
    atomic_store(&h->boot_retry_ns, s->retry_at);
    atomic_fetch_add(&h->boot_failures, 1);
    sup_emit(s, EMBER_EV_GROW_END, r, reason, 0, (int)s->failures, status, sig, msg);
}

void sup_log_refused(struct sup *s)
{
    struct ember_shm_header *h = s->v->hdr;
    /* relaxed: counts for the log; nothing is read through them */
    uint64_t expired = atomic_load_explicit(&h->calls_expired, memory_order_relaxed);
    uint64_t poisoned = atomic_load_explicit(&h->calls_poisoned, memory_order_relaxed);
    if (expired != s->said_expired)
        sup_warn("pool '%s': %llu calls expired in the queue (their deadline passed before a "
                 "runner took them; %llu in all): a larger max or longer deadlines",
                 h->name, (unsigned long long)(expired - s->said_expired),
                 (unsigned long long)expired);
    if (poisoned != s->said_poisoned)
        sup_warn("pool '%s': %llu calls refused as poison (each crashed poison_after runners; "
                 "%llu in all)", h->name, (unsigned long long)(poisoned - s->said_poisoned),
                 (unsigned long long)poisoned);
    s->said_expired = expired;
    s->said_poisoned = poisoned;
}
