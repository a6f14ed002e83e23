/* supervisor/evaluate.c - the supervisor's look at the pool after every
 * wake-up: a snapshot of the runners and the queue for the policy
 * (policy.c), then what it decides: boots, drains, idle checks, kills. */
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

/* Calls waiting in the run rings: entries between head and tail whose slot
 * is still QUEUED in that generation (stale duplicates are not counted),
 * in all and (PER_RING) in each ring. */
static uint32_t count_queued(struct ember__view *v, uint32_t *per_ring)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < v->nrings; i++) {
        struct ember__ring *r = &v->run[i];
        uint64_t head = atomic_load(&r->h->head), tail = atomic_load(&r->h->tail);
        uint32_t k = 0;
        for (uint64_t p = head; p < tail && p < head + r->cap; p++) {
            uint32_t e;
            if (!sup_ring_entry(v, atomic_load(&r->cell[p & r->mask]), p, &e)) continue;
            uint32_t w = atomic_load(&v->slots[e & 0xffffu].state);
            k += ember__st(w) == EMBER_SLOT_QUEUED && ember__gen(w) == (e >> 16);
        }
        per_ring[i] = k;
        n += k;
    }
    return n;
}

/* Finish every queued call with CODE (never run). */
unsigned sup_fail_queued(struct ember__view *v, int code, int detail)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint32_t w = atomic_load(&v->slots[i].state);
        if (ember__st(w) == EMBER_SLOT_QUEUED) n += sup_finish(v, i, w, code, detail);
    }
    return n;
}

static uint64_t add_grace(uint64_t t, int64_t grace)
{
    return t > UINT64_MAX - (uint64_t)grace ? EMBER__NEVER_NS : t + (uint64_t)grace;
}

/* When runner R's busy threads must be killed by: the earliest deadline
 * plus kill_grace (*DEADLINE) and the earliest cancelled call plus
 * kill_grace from when it was first seen cancelled (*CANCEL); counts its
 * busy threads and its latest idle time into P. */
static void runner_kill_times(struct sup *s, uint32_t r, uint64_t now, struct ember__prunner *p,
                              uint64_t *deadline, uint64_t *cancel)
{
    struct ember__view *v = s->v;
    *deadline = *cancel = EMBER__NEVER_NS;
    for (uint32_t t = 0; t < v->max_conc; t++) {
        uint32_t wi = r * v->max_conc + t;
        struct ember_worker_ent *we = &v->workers[wi];
        struct sup_cancel *cn = &s->cancels[wi];
        uint64_t is = atomic_load_explicit(&we->idle_since, memory_order_relaxed);
        if (is > p->idle_since) p->idle_since = is;
        uint32_t e, sw;
        /* a call already done holds nobody: counting it would boot a
         * runner for a demand that is gone */
        if (!sup_worker_running(v, we, &e, &sw)) {
            cn->entry = EMBER_NONE;
            continue;
        }
        p->busy++;
        uint64_t d = atomic_load_explicit(&we->job_deadline, memory_order_relaxed);
        uint64_t k = add_grace(d, s->cfg->kill_grace_ns);
        if (k < *deadline) *deadline = k;
        /* a cancelled call gets kill_grace from when we first see it so */
        if ((sw & EMBER_SLOT_CANCEL) || ember__st(sw) == EMBER_SLOT_ABANDONED) {
            if (cn->entry != e) cn->entry = e, cn->since = now;
            k = add_grace(cn->since, s->cfg->kill_grace_ns);
            if (k < *cancel) *cancel = k;
        } else {
            cn->entry = EMBER_NONE;
        }
    }
}

/* Runner R as the policy sees it (s->plan[r]); reports its readiness
 * (GROW_END) and an idle veto on the way. Returns whether it is READY. */
static bool runner_snapshot(struct sup *s, uint32_t r, uint64_t now, uint64_t cnow)
{
    struct ember_runner_ent *re = &s->v->runners[r];
    struct sup_runner *sr = &s->runners[r];
    struct ember__prunner *p = &s->plan[r];
    uint32_t st = sr->pidfd >= 0 ? atomic_load(&re->state) : EMBER_RUNNER_EMPTY;
    memset(p, 0, sizeof *p);
    p->state = (uint8_t)st;
    p->kill_at = EMBER__NEVER_NS;
    if (st == EMBER_RUNNER_EMPTY) return false;
    if (st != EMBER_RUNNER_BOOTING && !sr->reported_ready && atomic_load(&re->ready_ns)) {
        sr->reported_ready = true;
        sr->idle_base = atomic_load(&re->ready_ns);
        /* boot_broken is recomputed after the plan; a crash loop's breaker
         * waits for a finished call (sup_runner_proven) */
        if (s->early_crashes < EMBER__CRASH_LOOP_RUNNERS) s->failures = 0;
        sup_emit(s, EMBER_EV_GROW_END, r, sr->boot_reason, 1, 0, 0, 0, NULL);
    }
    if (!sr->proven && sup_runner_jobs(s->v, r) != sr->jobs_base) sup_runner_proven(s, r);
    if (sr->asked) {
        uint32_t vs = atomic_load(&re->veto_seq);
        if (st == EMBER_RUNNER_READY && vs != sr->veto_seen) { /* it said stay */
            sr->asked = false;
            sr->veto_seen = vs;
            sr->idle_base = cnow;
            sup_log(2, "runner %u vetoed its idle shutdown", r);
        }
    }
    p->asked = sr->asked;
    p->booted_at = re->started_ns;
    p->idle_since = sr->idle_base;
    uint64_t kill_deadline, kill_cancel;
    runner_kill_times(s, r, now, p, &kill_deadline, &kill_cancel);
    p->kill_at = kill_deadline < kill_cancel ? kill_deadline : kill_cancel;
    if (!sr->kill_why) sr->overdue_cancel = kill_cancel < kill_deadline;
    return st == EMBER_RUNNER_READY;
}

/* Do what the plan says of runner R. */
static void runner_act(struct sup *s, uint32_t r)
{
    struct ember__view *v = s->v;
    uint32_t st;
    switch (s->plan[r].action) {
    case EMBER__ACT_KILL_BOOT:
        sup_warn("runner %u not ready after boot_timeout: killed", r);
        sup_kill_runner(s, r, KILL_BOOT_TIMEOUT);
        break;
    case EMBER__ACT_KILL_DEADLINE:
        sup_warn("runner %u runs a call %s and kill_grace: killed", r,
                 s->runners[r].overdue_cancel ? "cancelled" : "past its deadline");
        sup_kill_runner(s, r, KILL_OVERDUE);
        break;
    case EMBER__ACT_ASK_IDLE:
        s->runners[r].asked = true;
        sup_request(v, r, EMBER_CTL_IDLE_CHECK);
        break;
    case EMBER__ACT_DRAIN:
        st = EMBER_RUNNER_READY;
        if (atomic_compare_exchange_strong(&v->runners[r].state, &st, EMBER_RUNNER_DRAINING) ||
            (st == EMBER_RUNNER_BOOTING &&
             atomic_compare_exchange_strong(&v->runners[r].state, &st, EMBER_RUNNER_DRAINING))) {
            atomic_store(&v->runners[r].reason, EMBER_WHY_RESIZE);
            sup_request(v, r, EMBER_CTL_DRAIN);
        }
        break;
    }
}

/* The bounds the policy works with: the header's, within the runner table
 * and, with one runner per core, the cores. */
static void current_bounds(const struct sup *s, uint32_t *min, uint32_t *max)
{
    const struct ember__view *v = s->v;
    *max = atomic_load(&v->hdr->max);
    *min = atomic_load(&v->hdr->min);
    if (*max > v->nrunners) *max = v->nrunners;
    if (ember__plan && ember__plan->mode == EMBER_PLACEMENT_CORE && *max > ember__plan->nplaces)
        *max = ember__plan->nplaces;
    if (*min > *max) *min = *max;
}

/* Look at the pool and do what the policy says. */
void sup_evaluate(struct sup *s)
{
    struct ember__view *v = s->v;
    struct ember_shm_header *h = v->hdr;
    const struct ember_pool_config *c = s->cfg;
    atomic_store(&h->grow_req, 0); /* looked at from here on */
    uint64_t now = ember__now_ns(), cnow = ember__now_coarse_ns();
    uint32_t min, max, nready = 0;
    current_bounds(s, &min, &max);
    for (uint32_t r = 0; r < v->nrunners; r++) nready += runner_snapshot(s, r, now, cnow);
    uint32_t demand[EMBER_MAX_RINGS];
    uint32_t queued = count_queued(v, demand), rs = atomic_load(&h->resize_seq);
    if (queued || rs != s->resize_seen) s->min_lapsed = false; /* in use again: min holds */
    s->resize_seen = rs;
    struct ember__pin in = {
        .now = now, .min = min, .max = max, .conc = v->max_conc, .queued = queued,
        .min_lapsed = s->min_lapsed,
        .failures = s->failures, .retry_at = s->retry_at,
        .idle_after = (uint64_t)c->idle_shutdown_after_ns,
        .min_idle_after = c->min_idle_shutdown_after_ns == EMBER_NEVER
                              ? EMBER__NEVER_NS : (uint64_t)c->min_idle_shutdown_after_ns,
        .boot_timeout = (uint64_t)c->boot_timeout_ns,
    };
    struct ember__pout out;
    ember__policy_plan(&in, s->plan, v->nrunners, &out);
    s->min_lapsed |= out.min_lapsed;
    for (uint32_t r = 0; r < v->nrunners; r++) runner_act(s, r);
    for (uint32_t i = 0; i < out.boots; i++)
        if (sup_spawn_runner(s, out.boot_reason, demand) < 0) break;
    bool broken = s->failures >= EMBER__BREAKER_FAILURES && now < s->retry_at;
    atomic_store(&h->boot_broken, broken ? s->failures : 0);
    if (out.fail_queued) {
        unsigned n = sup_fail_queued(v, -EMBER_EBOOT, (int)s->failures);
        atomic_fetch_add(&h->calls_boot_failed, n);
        if (n) sup_error("%u queued calls failed: runners do not boot", n);
    }
    uint32_t serving = sup_count_serving(v), alive = 0;
    for (uint32_t r = 0; r < v->nrunners; r++)
        alive += atomic_load(&v->runners[r].state) != EMBER_RUNNER_EMPTY;
    atomic_store(&h->nserving, serving);
    atomic_store(&h->nready, nready);
    /* draining runners hold their places too (policy.c): no growth to ask for */
    atomic_store(&h->at_max, alive >= max);
    s->next_due = out.next_due;
}
