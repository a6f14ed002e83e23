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

/* Allocate a run for LEN bytes tagged with slot IDX and record its start in
 * *WHERE under the lock. Returns 0 or -1 when no run is free. */
static inline int ember__pages_alloc(struct ember__view *v, uint32_t idx, uint64_t len, uint32_t *where)
{
    uint32_t n = (uint32_t)((len + v->page_size - 1) / v->page_size);
    if (n == 0 || n > v->npages) return -1;
    ember__pages_lock(v);
    uint32_t start = atomic_load_explicit(&v->hdr->page_hint, memory_order_relaxed);
    if (start >= v->npages) start = 0;
    for (uint32_t pass = 0; pass < 2; pass++) {
        uint32_t i = pass ? 0 : start, end = pass ? start + n : v->npages;
        if (end > v->npages) end = v->npages;
        uint32_t run = 0;
        for (; i < end; i++) {
            if (v->page_owner[i]) { run = 0; continue; }
            if (++run == n) {
                uint32_t s0 = i + 1 - n;
                for (uint32_t k = 0; k < n; k++) v->page_owner[s0 + k] = idx + 1;
                v->page_len[s0] = n;
                *where = s0;
                atomic_store_explicit(&v->hdr->page_hint, s0 + n, memory_order_relaxed);
                ember__pages_unlock(v);
                return 0;
            }
        }
    }
    ember__pages_unlock(v);
    return -1;
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
