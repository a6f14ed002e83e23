/* ember/detail/clock.h - the clocks of deadlines and receipts.
 *
 * Every deadline is an absolute CLOCK_MONOTONIC time in nanoseconds. The
 * coarse clock (CLOCK_MONOTONIC_COARSE, a few ns to read) is never ahead of
 * the precise one and behind it by at most one tick; it decides whether a
 * deadline has passed only when the deadline is far from it, so no deadline
 * is ever declared passed early. Part of the header-only client. */
#ifndef EMBER_DETAIL_CLOCK_H
#define EMBER_DETAIL_CLOCK_H

#include "base.h"

/* -- time, spinning, futexes -- */
static inline uint64_t ember__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC_COARSE: a few ns to read; never ahead of CLOCK_MONOTONIC
 * and behind it by at most one tick (ember__coarse_res_ns()). */
static inline uint64_t ember__now_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t ember__coarse_res_ns(void)
{
    static EMBER_ATOMIC(uint64_t) res;
    uint64_t r = atomic_load_explicit(&res, memory_order_relaxed);
    if (!r) {
        struct timespec ts;
        r = clock_getres(CLOCK_MONOTONIC_COARSE, &ts) == 0
                ? (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec
                : 100000000ull;
        if (r == 0) r = 1;
        atomic_store_explicit(&res, r, memory_order_relaxed);
    }
    return r;
}

/* Has DEADLINE passed? Decided by the coarse clock when it is far enough
 * from the deadline, by the precise one otherwise. */
static inline bool ember__expired_at(uint64_t deadline, uint64_t coarse_now)
{
    if (deadline > coarse_now + 2 * ember__coarse_res_ns()) return false;
    return ember__now_ns() >= deadline;
}
static inline bool ember__expired(uint64_t deadline)
{
    return ember__expired_at(deadline, ember__now_coarse_ns());
}

#endif /* EMBER_DETAIL_CLOCK_H */
