/* ember/detail/pages.h - shared pages for payloads beyond a slot's inline bytes.
 *
 * Arguments and results larger than EMBER_INLINE_MAX are written once into
 * a run of pages and read in place. Each page records the slot that owns
 * it, so after a death the next holder of the lock (or the supervisor's
 * sweep) frees every run whose slot no longer refers to it and that no
 * runner may still be about to record (ember__pages_repair_locked). */
#ifndef EMBER_DETAIL_PAGES_H
#define EMBER_DETAIL_PAGES_H

#include "slot.h"
#include <sys/statvfs.h> /* after slot.h: base.h sees the feature macros first */

/* Runs of page_size chunks: page_owner[i] is 0 (free) or slot index + 1 for every chunk of a run;
 * page_len[start] is the run's length. Guarded by a robust process-shared
 * mutex: a holder that dies is detected (EOWNERDEAD) and the next holder
 * repairs the table (ember__pages_repair_locked). */
static inline uint32_t ember__pages_repair_locked(struct ember__view *v);

static inline void ember__pages_lock(struct ember__view *v)
{
    pthread_mutex_t *m = (pthread_mutex_t *)v->hdr->page_lock;
    int r = pthread_mutex_lock(m);
    if (r == EOWNERDEAD) {
        ember__pages_repair_locked(v);
        pthread_mutex_consistent(m);
    }
}
static inline void ember__pages_unlock(struct ember__view *v)
{
    pthread_mutex_unlock((pthread_mutex_t *)v->hdr->page_lock);
}

/* Free every run whose slot no longer refers to it (after a death), except
 * the runs of a slot a runner holds (RUNNING, or ABANDONED by its owner):
 * that runner records a result's new run in res_page only after the
 * allocation has let the lock go (ember_out_reserve), and clears res_page
 * before it gives a run back (run_entry). A repair in that window would
 * free a run being written, and the next allocation would get it while
 * the result is still to be read from it: the caller would read another
 * call's bytes with status 0. If the runner dies in the window, the
 * supervisor frees the runs its slot does not name before it ends the call
 * (ember__pages_drop_unnamed). Returns how many runs were left only
 * because their slot was held (an orphan of an earlier call of that slot
 * may be among them: the supervisor looks again later).
 * The state's load (seq_cst, so acquire) pairs with the runner's take CAS
 * and with its DONE or FREE CAS (acq_rel, seq_cst): a run tagged by a
 * runner was allocated under this lock after its take, so the load sees
 * RUNNING or a later state, and a later one was written after res_page. */
static inline uint32_t ember__pages_repair_locked(struct ember__view *v)
{
    uint32_t left = 0;
    for (uint32_t i = 0; i < v->npages;) {
        uint32_t o = v->page_owner[i];
        if (!o) { i++; continue; }
        uint32_t n = v->page_len[i];
        if (n == 0 || n > v->npages - i || o > v->nslots) { v->page_owner[i] = 0; i++; continue; }
        /* the run is as far as its pages carry its owner: after a stray
         * write to the table, a length may span other runs */
        uint32_t m = 1;
        while (m < n && v->page_owner[i + m] == o) m++;
        struct ember_slot *s = &v->slots[o - 1];
        uint32_t st = ember__st(atomic_load(&s->state));
        bool named = st != EMBER_SLOT_FREE && (s->args_page == i || s->res_page == i);
        bool held = st == EMBER_SLOT_RUNNING || st == EMBER_SLOT_ABANDONED;
        if (!named && held) left++;
        if (!named && !held)
            for (uint32_t k = 0; k < m; k++) v->page_owner[i + k] = 0;
        i += m;
    }
    return left;
}

/* Runner-held slot IDX's runner is dead: free the runs tagged with IDX
 * that the slot does not name (allocated, not recorded yet). Called by the
 * supervisor before it ends the call: while the slot is RUNNING or
 * ABANDONED nobody but its runner allocates for it, and
 * ember__pages_repair_locked leaves its runs alone. */
static inline void ember__pages_drop_unnamed(struct ember__view *v, uint32_t idx)
{
    const struct ember_slot *s = &v->slots[idx];
    ember__pages_lock(v);
    for (uint32_t i = 0; i < v->npages;) {
        uint32_t n = v->page_len[i];
        if (v->page_owner[i] != idx + 1 || n == 0 || n > v->npages - i) { i++; continue; }
        if (s->args_page != i && s->res_page != i)
            for (uint32_t k = 0; k < n; k++) v->page_owner[i + k] = 0;
        i += n;
    }
    ember__pages_unlock(v);
}

/* Payload pages are used only once /dev/shm has allocated their space: the
 * segment is sparse (its fixed parts are allocated when it is made, the
 * payload pages are not), and a page of it tmpfs cannot back kills whoever
 * touches it with SIGBUS. Pages below hdr->page_reserved are allocated; a
 * run that ends beyond it first has the pages from there to its end, and
 * EMBER__RESERVE_AHEAD more when there are (so that small runs do not each
 * cost a system call), allocated with posix_fallocate on the segment's
 * descriptor. The mark only grows: tmpfs keeps a page once it has it. */
#define EMBER__RESERVE_AHEAD 32u /* pages, 2 MiB of 64 KiB pages */

/* The reserved mark, bounded (a scribbled one is taken as 0: allocating
 * again costs only time). Under the page lock, which orders every access
 * to the mark (relaxed loads and stores: nothing else is published by it). */
static inline uint32_t ember__pages_reserved_locked(const struct ember__view *v)
{
    uint32_t hw = atomic_load_explicit(&v->hdr->page_reserved, memory_order_relaxed);
    return hw <= v->npages ? hw : 0;
}

/* Allocate /dev/shm space for payload pages FROM..TO-1. 0, or the error
 * (posix_fallocate's error number). */
static inline int ember__pages_fallocate(const struct ember__view *v, uint32_t from, uint32_t to)
{
    off_t at = (off_t)(v->pages - v->base) + (off_t)from * v->page_size;
    int e;
    do e = posix_fallocate(v->shm_fd, at, (off_t)(to - from) * v->page_size);
    while (e == EINTR);
    return e;
}

/* Make sure the pages below END have their space (see above), for a
 * payload of LEN bytes (for the message). Under the page lock. Returns 0,
 * or -EMBER_ENOSPC (/dev/shm is full: nothing was allocated, tmpfs undoes
 * its part) or another system failure, with the message. */
static inline int ember__pages_reserve_locked(struct ember__view *v, uint32_t end, uint64_t len)
{
    uint32_t hw = ember__pages_reserved_locked(v);
    if (end <= hw || v->shm_fd < 0) return 0;
    uint32_t to = end - hw < EMBER__RESERVE_AHEAD ? hw + EMBER__RESERVE_AHEAD : end;
    if (to > v->npages) to = v->npages;
    int e = ember__pages_fallocate(v, hw, to);
    if (e == ENOSPC && to > end) e = ember__pages_fallocate(v, hw, to = end);
    if (e == 0) {
        atomic_store_explicit(&v->hdr->page_reserved, to, memory_order_relaxed);
        return 0;
    }
    unsigned long long need = (unsigned long long)(end - hw) * v->page_size;
    if (e != ENOSPC) {
        char what[120];
        snprintf(what, sizeof what, "pool '%.39s': posix_fallocate of %llu bytes of payload pages",
                 v->hdr->name, need);
        return ember__sys_fail(e, what);
    }
    struct statvfs fs;
    unsigned long long mib = 1024 * 1024, avail = 0, total = 0;
    if (fstatvfs(v->shm_fd, &fs) == 0)
        avail = (unsigned long long)fs.f_bavail * fs.f_frsize,
        total = (unsigned long long)fs.f_blocks * fs.f_frsize;
    return ember__fail(-EMBER_ENOSPC, "pool '%.39s': /dev/shm has %llu MiB free of %llu MiB, and "
                       "the pages of a %.1f MiB payload need %llu MiB more: free some of it, or "
                       "start the pool with a smaller payload_space", v->hdr->name, avail / mib,
                       total / mib, (double)len / (double)mib, (need + mib - 1) / mib);
}

/* The first free run of N pages among the first LIMIT, looked for from the
 * hint on, then from the start: 0 with its start in *AT, or -1. Under the
 * page lock. */
static inline int ember__pages_find_locked(struct ember__view *v, uint32_t n, uint32_t limit,
                                           uint32_t *at)
{
    uint32_t start = atomic_load_explicit(&v->hdr->page_hint, memory_order_relaxed);
    if (start >= limit) start = 0;
    for (uint32_t pass = 0; pass < 2; pass++) {
        uint32_t i = pass ? 0 : start, end = pass ? start + n : limit;
        if (end > limit) end = limit;
        uint32_t run = 0;
        for (; i < end; i++) {
            if (v->page_owner[i]) { run = 0; continue; }
            if (++run == n) {
                *at = i + 1 - n;
                return 0;
            }
        }
    }
    return -1;
}

/* Allocate a run for LEN bytes tagged with slot IDX and record its start in
 * *WHERE under the lock: a run among the pages with space when /dev/shm has
 * no more (ember__pages_reserve_locked). Returns 0, -EMBER_EFULL when no run
 * is free (no message: the caller waits, and says it at its deadline), or
 * -EMBER_ENOSPC (/dev/shm full, no free run with space; with the message). */
static inline int ember__pages_alloc(struct ember__view *v, uint32_t idx, uint64_t len, uint32_t *where)
{
    uint32_t n = (uint32_t)((len + v->page_size - 1) / v->page_size);
    if (n == 0 || n > v->npages) return -EMBER_EFULL;
    ember__pages_lock(v);
    uint32_t s0 = 0;
    int rc = ember__pages_find_locked(v, n, v->npages, &s0) ? -EMBER_EFULL : 0;
    if (rc == 0 && (rc = ember__pages_reserve_locked(v, s0 + n, len)) != 0 &&
        ember__pages_find_locked(v, n, ember__pages_reserved_locked(v), &s0) == 0)
        rc = 0;
    if (rc == 0) {
        for (uint32_t k = 0; k < n; k++) v->page_owner[s0 + k] = idx + 1;
        v->page_len[s0] = n;
        *where = s0;
        atomic_store_explicit(&v->hdr->page_hint, s0 + n, memory_order_relaxed);
    }
    ember__pages_unlock(v);
    return rc;
}

static inline void ember__pages_free(struct ember__view *v, uint32_t idx, uint32_t start)
{
    if (start >= v->npages) return;
    ember__pages_lock(v);
    uint32_t n = v->page_len[start];
    if (v->page_owner[start] == idx + 1 && n && n <= v->npages - start) {
        /* only pages that are this slot's: a stray write to the length
         * must not free other runs */
        for (uint32_t k = 0; k < n && v->page_owner[start + k] == idx + 1; k++)
            v->page_owner[start + k] = 0;
        if (start < atomic_load_explicit(&v->hdr->page_hint, memory_order_relaxed))
            atomic_store_explicit(&v->hdr->page_hint, start, memory_order_relaxed);
    }
    ember__pages_unlock(v);
    atomic_fetch_add(&v->hdr->page_seq, 1);
    if (atomic_load(&v->hdr->page_waiters)) ember__futex_wake(&v->hdr->page_seq, INT_MAX);
}

static inline void *ember__page_ptr(struct ember__view *v, uint32_t start)
{
    return v->pages + (size_t)start * v->page_size;
}

/* Bytes of a payload: inline or in a run; NULL if the fields are out of
 * bounds (a scribbled slot). */
static inline const void *ember__payload(struct ember__view *v, struct ember_slot *s,
                                         uint32_t len, uint32_t page)
{
    if (page == EMBER_NONE) return len <= EMBER_INLINE_MAX ? s->data : NULL;
    if (page >= v->npages || len > v->max_payload ||
        (uint64_t)page * v->page_size + len > (uint64_t)v->npages * v->page_size)
        return NULL;
    return ember__page_ptr(v, page);
}

#endif /* EMBER_DETAIL_PAGES_H */
