/* tests/fuzz/fuzz_supervisor.c - the supervisor reading what the pool's
 * other processes left in shared memory (src/supervisor/): run-ring
 * entries, worker lines, caller table entries, slots, the page table.
 *
 * Feeds: a small segment whose tables hold what the input says
 * (fuzz_view.h: each part a heap block of its own), then a list of steps
 * the supervisor takes on it, in the input's order: the checks of ring
 * entries and worker lines (sup_ring_entry, sup_worker_running), the sweep
 * for orphaned slots after a death (sup_sweep_orphans, which re-pushes
 * entries and repairs the page table), freeing claimed slots that name no
 * owner (sup_free_unowned, at two looks), reaping a dead caller
 * (sup_reap_caller: its queued calls dropped, its running linked calls
 * abandoned), failing every queued call (sup_fail_queued), and the page
 * allocator and the dead runner's page drop on the same tables.
 *
 * Asserts: nothing is read or written outside the segment's parts
 * (AddressSanitizer against each part's block); an accepted ring entry was
 * filled at its position and names an existing slot; a worker line judged
 * running names an existing slot, running or abandoned in the entry's
 * generation; a page run handed out lies inside the table and is tagged
 * with its slot; after sup_fail_queued no call is left queued.
 * No step sleeps, forks or signals: a caller is reaped with no pidfd, and
 * runners are never reaped here (that kills process groups the worker
 * lines name). */
#include <assert.h>
#include "supervisor/sup.h"
#include "fuzz_view.h"

static void check_rings(struct ember__view *v)
{
    for (uint32_t k = 0; k < v->nrings; k++) {
        struct ember__ring *r = &v->run[k];
        uint64_t head = atomic_load(&r->h->head);
        for (uint64_t p = head; p < head + r->cap; p++) {
            uint64_t cv = atomic_load(&r->cell[p & r->mask]);
            uint32_t e;
            if (sup_ring_entry(v, cv, p, &e))
                assert((uint32_t)(cv >> 32) == (uint32_t)(p + 1) && (e & 0xffffu) < v->nslots &&
                       e == (uint32_t)cv);
        }
    }
}

static void check_workers(struct ember__view *v)
{
    for (uint32_t w = 0; w < v->nrunners * v->max_conc; w++) {
        uint32_t e, sw;
        if (!sup_worker_running(v, &v->workers[w], &e, &sw)) continue;
        assert(e != EMBER_NONE && (e & 0xffffu) < v->nslots && atomic_load(&v->workers[w].busy));
        assert(ember__gen(sw) == e >> 16);
        assert(ember__st(sw) == EMBER_SLOT_RUNNING || ember__st(sw) == EMBER_SLOT_ABANDONED);
    }
}

static void pages_step(struct ember__view *v, struct fz_in *in)
{
    uint32_t idx = fz_u8(in) % v->nslots, where = EMBER_NONE;
    uint64_t len = (uint64_t)fz_u8(in) * 1024;
    if (ember__pages_alloc(v, idx, len, &where) == 0) {
        uint32_t np = (uint32_t)((len + v->page_size - 1) / v->page_size);
        assert(where < v->npages && np <= v->npages - where && v->page_len[where] == np);
        for (uint32_t k = 0; k < np; k++) assert(v->page_owner[where + k] == idx + 1);
        memset(ember__page_ptr(v, where), 0xa5, len); /* the run is ours to write */
        if (fz_u8(in) & 1) ember__pages_free(v, idx, where);
    }
    if (fz_u8(in) & 1) ember__pages_free(v, idx, fz_u32(in));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    struct fz_in in = { data, n };
    uint8_t steps[12];
    fz_take(&in, steps, sizeof steps);
    struct ember__view v;
    fz_view_make(&v, &in);
    struct ember_pool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    struct sup s = { .v = &v, .cfg = &cfg, .sigfd = -1, .app_pidfd = -1 };
    s.callers = calloc(v.ncallers, sizeof *s.callers);
    s.unowned = calloc(v.nslots, sizeof *s.unowned);
    s.unowned_until = UINT64_MAX;
    for (uint32_t i = 0; i < v.ncallers; i++) /* as sup_scan_callers found them, unwatched */
        s.callers[i] = (struct sup_caller){ .pidfd = -1, .pid = atomic_load(&v.callers[i].pid),
                                            .gen = atomic_load(&v.callers[i].gen) };
    sup_log_level = 0;
    for (size_t k = 0; k < sizeof steps; k++) {
        switch (steps[k] % 9) {
        case 0: check_rings(&v); break;
        case 1: check_workers(&v); break;
        case 2: sup_sweep_orphans(&s); break;
        case 3: sup_free_unowned(&s); sup_free_unowned(&s); break;
        case 4: {
            uint32_t c = fz_u8(&in) % v.ncallers;
            sup_reap_caller(&s, c, s.callers[c].gen);
            break;
        }
        case 5: {
            int detail = fz_u8(&in);
            sup_fail_queued(&v, -EMBER_EPOOLDOWN, detail);
            for (uint32_t i = 0; i < v.nslots; i++) /* none is left queued */
                assert(ember__st(atomic_load(&v.slots[i].state)) != EMBER_SLOT_QUEUED);
            break;
        }
        case 6: s.pages_left = true; sup_repair_pages(&s); break;
        case 7: pages_step(&v, &in); break;
        case 8: ember__pages_drop_unnamed(&v, fz_u8(&in) % v.nslots); break;
        }
    }
    free(s.callers);
    free(s.unowned);
    fz_view_free(&v);
    return 0;
}
