/* ember/detail/wait.h - waiting: spinning, then parking on a futex.
 *
 * A waiter looks at its word for a bounded, adaptive budget (spinning costs
 * 0.1-0.3 us a round trip, a wake-up 30-70 us on a VM), then parks on a
 * shared futex. The budget grows when spinning found the result and halves
 * when the waiter had to park anyway. Futexes here are shared (never
 * FUTEX_PRIVATE_FLAG): every word lives in the pool's segment. Every park
 * is bounded by its caller, so a dead peer is noticed. */
#ifndef EMBER_DETAIL_WAIT_H
#define EMBER_DETAIL_WAIT_H

#include "clock.h"

static inline void ember__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* One step of a spin loop: the first iterations only re-read (the line
 * stays in this core's cache until its writer invalidates it, so re-reading
 * costs nothing and notices the change soonest); later ones pause. */
static inline void ember__spin_step(unsigned i)
{
    if (i > 256) ember__cpu_relax();
    else __asm__ __volatile__("" ::: "memory");
}

/* Wait while *w == val, until the absolute CLOCK_MONOTONIC time abs_ns
 * (0 = no limit). Shared (not private) futex: the word is in shared memory.
 * Returns 0 when woken or the value differed, -ETIMEDOUT, -EINTR. */
static inline int ember__futex_wait(EMBER_ATOMIC(uint32_t) *w, uint32_t val, uint64_t abs_ns)
{
    struct timespec ts, *tp = NULL;
    if (abs_ns) {
        ts.tv_sec = (time_t)(abs_ns / 1000000000ull);
        ts.tv_nsec = (long)(abs_ns % 1000000000ull);
        tp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_BITSET, val, tp, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    if (r == 0 || errno == EAGAIN) return 0;
    return -errno;
}

static inline void ember__futex_wake(EMBER_ATOMIC(uint32_t) *w, int n)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* Adaptive spin budget of this thread, in ns: grows when spinning found the
 * result, halves when it had to park anyway. Bounded both ways. */
#define EMBER__SPIN_MIN_NS 2000u
#define EMBER__SPIN_MAX_NS 60000u
static __thread uint32_t ember__spin_budget = 20000u;
/* A caller that had to wake a parked runner expects its result no sooner
 * than one wake-up latency (30-70 us on a VM): it spins across that instead
 * of parking and costing a second wake-up. */
#define EMBER__SPIN_AFTER_WAKE_NS 200000u
/* Iterations a waiter looks for its result before it counts itself among
 * the spinners (about 1-2 us: each one pauses, so that the runner writing
 * the result is not robbed of the slot's line between its stores). */
#define EMBER__SPIN_QUIET 48u

static inline void ember__spin_won(void)
{
    uint32_t b = ember__spin_budget + ember__spin_budget / 8 + 500;
    ember__spin_budget = b > EMBER__SPIN_MAX_NS ? EMBER__SPIN_MAX_NS : b;
}
static inline void ember__spin_lost(void)
{
    uint32_t b = ember__spin_budget / 2;
    ember__spin_budget = b < EMBER__SPIN_MIN_NS ? EMBER__SPIN_MIN_NS : b;
}

#endif /* EMBER_DETAIL_WAIT_H */
