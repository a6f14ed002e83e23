/* supervisor/policy.c - the pool's scaling decisions (see policy.h for the rules). */
#include <string.h>
#include "ember/abi.h"
#include "supervisor/policy.h"

static void due(uint64_t *next, uint64_t t)
{
    if (t < *next) *next = t;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return b == EMBER__NEVER_NS || a > EMBER__NEVER_NS - b ? EMBER__NEVER_NS : a + b;
}

uint64_t ember__policy_backoff(uint32_t failures)
{
    if (failures == 0) return 0;
    if (failures > 20) return EMBER__BACKOFF_MAX_NS;
    uint64_t d = EMBER__BACKOFF_BASE_NS << (failures - 1);
    return d > EMBER__BACKOFF_MAX_NS ? EMBER__BACKOFF_MAX_NS : d;
}

static bool serving(const struct ember__prunner *p)
{
    return (p->state == EMBER_RUNNER_BOOTING || p->state == EMBER_RUNNER_READY) &&
           p->action == EMBER__ACT_NONE;
}

/* Pick the serving runner to drain first: idle ready ones (longest idle
 * first), then booting ones, then the least busy. */
static int drain_rank(const struct ember__prunner *p, uint64_t *key)
{
    if (p->state == EMBER_RUNNER_READY && p->busy == 0) { *key = p->idle_since; return 0; }
    if (p->state == EMBER_RUNNER_BOOTING) { *key = 0; return 1; }
    *key = p->busy;
    return 2;
}

void ember__policy_plan(const struct ember__pin *in, struct ember__prunner *r, uint32_t n,
                        struct ember__pout *out)
{
    memset(out, 0, sizeof *out);
    out->next_due = EMBER__NEVER_NS;
    const uint64_t now = in->now;

    /* kills: boot timeouts and calls past their deadline by kill_grace */
    for (uint32_t i = 0; i < n; i++) {
        struct ember__prunner *p = &r[i];
        p->action = EMBER__ACT_NONE;
        if (p->state == EMBER_RUNNER_BOOTING && in->boot_timeout != EMBER__NEVER_NS) {
            uint64_t t = add_sat(p->booted_at, in->boot_timeout);
            if (now >= t) p->action = EMBER__ACT_KILL_BOOT;
            else due(&out->next_due, t);
        }
        if ((p->state == EMBER_RUNNER_READY || p->state == EMBER_RUNNER_DRAINING) &&
            p->kill_at != EMBER__NEVER_NS) {
            if (now >= p->kill_at) p->action = EMBER__ACT_KILL_DEADLINE;
            else due(&out->next_due, p->kill_at);
        }
    }

    /* processes alive, draining and about to be killed ones too: the
     * processes a pool has never exceed max */
    uint32_t booting = 0, ready = 0, busy = 0, asked = 0, alive = 0;
    for (uint32_t i = 0; i < n; i++) {
        alive += r[i].state != EMBER_RUNNER_EMPTY;
        if (!serving(&r[i])) continue;
        if (r[i].state == EMBER_RUNNER_BOOTING) booting++;
        else ready++, busy += r[i].busy, asked += r[i].asked;
    }
    uint32_t nserve = booting + ready;

    /* above max: drain the excess */
    while (nserve > in->max) {
        int best = -1, best_rank = 3;
        uint64_t best_key = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (!serving(&r[i])) continue;
            uint64_t key;
            int rank = drain_rank(&r[i], &key);
            if (rank < best_rank || (rank == best_rank && key < best_key))
                best = (int)i, best_rank = rank, best_key = key;
        }
        if (best < 0) break;
        r[best].action = EMBER__ACT_DRAIN;
        if (r[best].state == EMBER_RUNNER_BOOTING) booting--;
        else ready--, busy -= r[best].busy, asked -= r[best].asked;
        nserve--;
    }

    /* boots: cover min and the demand, within max */
    uint64_t demand = (uint64_t)busy + in->queued;
    uint64_t need = in->conc ? (demand + in->conc - 1) / in->conc : demand;
    uint32_t floor = in->min_lapsed ? 0 : in->min;
    uint64_t want = need > floor ? need : floor;
    if (want > in->max) want = in->max;
    uint32_t boots = want > nserve ? (uint32_t)(want - nserve) : 0;
    uint32_t room = in->max > alive ? in->max - alive : 0; /* a draining runner's place comes
                                                               back when it has exited */
    if (boots > room) boots = room;
    if (boots && in->failures) {
        if (now < in->retry_at) {
            boots = 0;
            due(&out->next_due, in->retry_at);
        } else {
            boots = booting ? 0 : 1; /* one probe at a time while boots fail */
        }
    }
    out->boots = boots;
    out->boot_reason = nserve < floor ? EMBER_WHY_MIN : EMBER_WHY_DEMAND;
    out->fail_queued = in->failures >= EMBER__BREAKER_FAILURES && ready == 0 && in->queued > 0 &&
                       booting == 0 && boots == 0;

    /* idle shutdown: only when nobody is waiting for a runner */
    if (boots || in->queued) return;
    uint32_t above = nserve > in->min + asked ? nserve - in->min - asked : 0;
    for (;;) {
        int best = -1;
        for (uint32_t i = 0; i < n; i++) {
            struct ember__prunner *p = &r[i];
            if (!serving(p) || p->state != EMBER_RUNNER_READY || p->busy || p->asked) continue;
            if (best < 0 || p->idle_since < r[best].idle_since) best = (int)i;
        }
        if (best < 0) break;
        struct ember__prunner *p = &r[best];
        uint64_t after = above ? in->idle_after : in->min_idle_after;
        uint64_t t = add_sat(p->idle_since, after);
        if (after == EMBER__NEVER_NS || now < t) {
            /* the longest idle is not due: none is */
            if (after != EMBER__NEVER_NS) due(&out->next_due, t);
            if (above && in->min_idle_after != EMBER__NEVER_NS)
                due(&out->next_due, add_sat(p->idle_since, in->min_idle_after));
            break;
        }
        p->action = EMBER__ACT_ASK_IDLE;
        if (above) above--;
        else out->min_lapsed = true;
    }
}
