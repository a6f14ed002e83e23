/* supervisor/policy.h - the pool's scaling decisions, as pure functions.
 *
 * The supervisor takes a snapshot of its runners and of the queue, asks
 * ember__policy_plan() what to do, and does it. No process, clock or shared
 * memory in here, so every rule is unit-tested directly (tests/test_policy.c).
 *
 * The rules (FLAME.Pool's, on one host):
 *  - serving runners (booting + ready) stay within [min, max];
 *  - demand is calls running on serving runners plus calls queued; when it
 *    exceeds what serving runners can hold (max_concurrency each, booting
 *    ones included: they will take calls when up), boot enough runners to
 *    cover it, never beyond max;
 *  - after a failed boot, no boot before the backoff expires, and while boots
 *    are failing at most one at a time (no fork storm);
 *  - a ready runner idle for idle_after above min is asked to stop (its check
 *    callback may veto), the longest idle first; min runners only after
 *    min_idle_after, and then min lapses: the pool is not topped up to min
 *    again until calls come (the supervisor clears min_lapsed on demand);
 *  - above max (after a resize), runners are drained: idle ones first, then the
 *    least busy; a draining runner finishes its calls and is never killed;
 *  - runner processes never exceed max: a draining runner (or one being
 *    killed) still holds its place, and its replacement boots once it has
 *    exited;
 *  - a runner still booting after boot_timeout is killed; a runner whose call
 *    is past its deadline by kill_grace is killed.
 */
#ifndef EMBER_POLICY_H
#define EMBER_POLICY_H

#include <stdbool.h>
#include <stdint.h>

/* An instant (CLOCK_MONOTONIC ns, unsigned) that never comes: what a
 * duration of EMBER_NEVER (client.h) adds up to. */
#define EMBER__NEVER_NS UINT64_MAX

/* boot backoff: base << (failures - 1), capped; the breaker opens (calls are
 * failed fast with EMBER_EBOOT) after this many failures in a row */
#define EMBER__BACKOFF_BASE_NS   100000000ull   /* 100 ms */
#define EMBER__BACKOFF_MAX_NS  10000000000ull   /* 10 s */
#define EMBER__BREAKER_FAILURES  3u
/* the crash-loop breaker: this many runners in a row that were up and died
 * while running a call before they had finished any trip the breaker as
 * failed boots do (runners.c). Above 2 x the default poison_after, so that
 * two poisoned calls retried at once do not trip it alone; low enough that a
 * handler that kills every runner costs a few forks, not a storm. */
#define EMBER__CRASH_LOOP_RUNNERS 5u

enum { EMBER__ACT_NONE = 0, EMBER__ACT_ASK_IDLE, EMBER__ACT_DRAIN, EMBER__ACT_KILL_BOOT,
       EMBER__ACT_KILL_DEADLINE };

struct ember__prunner {
    uint8_t  state;        /* EMBER_RUNNER_* (EMPTY entries are skipped) */
    bool     asked;        /* an idle check is pending: do not ask again */
    uint32_t busy;         /* calls it runs now */
    uint64_t idle_since;   /* end of its last call (or when it became ready) */
    uint64_t booted_at;    /* fork time (BOOTING) */
    uint64_t kill_at;      /* earliest deadline + kill_grace of its calls, NEVER if none */
    uint8_t  action;       /* out: EMBER__ACT_* */
};

struct ember__pin {
    uint64_t now;
    uint32_t min, max, conc;
    uint32_t queued;                /* calls waiting in the queue */
    bool     min_lapsed;            /* min runners idled down: do not boot for min */
    uint32_t failures;              /* consecutive failed boots */
    uint64_t retry_at;              /* no boot before this (backoff) */
    uint64_t idle_after, min_idle_after, boot_timeout; /* NEVER_NS: never */
};

struct ember__pout {
    uint32_t boots;                 /* runners to boot now */
    uint32_t boot_reason;           /* EMBER_WHY_MIN or _DEMAND */
    bool     fail_queued;           /* breaker open, nobody to serve: fail queued calls */
    bool     min_lapsed;            /* a min runner was asked to stop for idleness */
    uint64_t next_due;              /* when something may fall due without an event */
};

/* Backoff after FAILURES consecutive failed boots (0 for none). */
uint64_t ember__policy_backoff(uint32_t failures);

/* Decide. R[0..n) are the runner table's entries; their .action is set. */
void ember__policy_plan(const struct ember__pin *in, struct ember__prunner *r, uint32_t n,
                        struct ember__pout *out);

#endif
