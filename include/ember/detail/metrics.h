/* ember/detail/metrics.h - the pool's counts (abi.h's counts part).
 *
 * Each runner worker thread keeps its own block of counters, and the
 * supervisor one more (the last): calls ended, by handler and by cause, and
 * the histograms of queue wait and run time. A block has one writer, so a
 * count is a relaxed load and a relaxed store on lines nobody else writes:
 * no locked instruction and no line that bounces between writers on the
 * call path. Readers (ember_metrics_read) sum the blocks. */
#ifndef EMBER_DETAIL_METRICS_H
#define EMBER_DETAIL_METRICS_H

#include "view.h"

/* The place of each code in client.h's error table: a failure's cause
 * index in ember_count_ent.failed; EMBER_CAUSES - 1 counts a status of
 * none of them (not written by ember itself). */
enum {
#define EMBER__XORD(name, val, msg) EMBER__CAUSE_##name,
    EMBER_ERROR_TABLE(EMBER__XORD)
#undef EMBER__XORD
    EMBER__NCAUSES
};
EMBER_STATIC_ASSERT(EMBER__NCAUSES < EMBER_CAUSES, "the error table outgrew the failure counters");

static inline unsigned ember__cause_index(int status)
{
    switch (-status) {
#define EMBER__XCASE(name, val, msg) case val: return EMBER__CAUSE_##name;
        EMBER_ERROR_TABLE(EMBER__XCASE)
#undef EMBER__XCASE
    default: return EMBER_CAUSES - 1;
    }
}

/* The writer index of the supervisor's block (the workers' are their
 * worker table indexes). */
static inline uint32_t ember__sup_writer(const struct ember__view *v)
{
    return v->nrunners * v->max_conc;
}

static inline struct ember_count_ent *ember__counts(const struct ember__view *v, uint32_t writer)
{
    return (struct ember_count_ent *)(v->counts + (size_t)writer * v->count_stride);
}

/* Writer WRITER's counts of handler H (H < v->nhandlers). */
static inline struct ember_handler_count *ember__handler_counts(const struct ember__view *v,
                                                                uint32_t writer, uint32_t h)
{
    return (struct ember_handler_count *)(v->counts + (size_t)writer * v->count_stride +
                                          sizeof(struct ember_count_ent)) + h;
}

/* Add N to a counter of the calling writer's own block: it is the only
 * writer, so no read-modify-write is needed; relaxed, since readers only
 * sum (abi.h: counts). */
static inline void ember__count_add(EMBER_ATOMIC(uint64_t) *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

/* The histogram bucket of a duration of NS nanoseconds: the smallest i with
 * NS <= 1 ms << i, or the last one (abi.h: ember_handler_count). */
static inline unsigned ember__hist_bucket(uint64_t ns)
{
    uint64_t ms = (ns + 999999) / 1000000; /* rounded up */
    unsigned i = ms <= 1 ? 0 : 64u - (unsigned)__builtin_clzll(ms - 1);
    return i < EMBER_HIST_BUCKETS - 1 ? i : EMBER_HIST_BUCKETS - 1;
}

/* Record in WRITER's block one observation of NS in histogram H (its
 * bucket array) and its sum. */
static inline void ember__hist_add(EMBER_ATOMIC(uint64_t) *h, EMBER_ATOMIC(uint64_t) *sum, uint64_t ns)
{
    ember__count_add(&h[ember__hist_bucket(ns)], 1);
    ember__count_add(sum, ns);
}

/* WRITER ended a call of handler H (any value: counted per handler only
 * when it names one) with STATUS. */
static inline void ember__count_end(const struct ember__view *v, uint32_t writer, uint32_t h, int status)
{
    if (status) ember__count_add(&ember__counts(v, writer)->failed[ember__cause_index(status)], 1);
    if (h >= v->nhandlers) return;
    struct ember_handler_count *hc = ember__handler_counts(v, writer, h);
    ember__count_add(status ? &hc->failed : &hc->completed, 1);
}

#endif /* EMBER_DETAIL_METRICS_H */
