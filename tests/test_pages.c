/* Description: the page table's repair after a death, as a runner sees it.
 * A runner whose result outgrows the inline bytes allocates a run of pages
 * for it and records the run in its slot only afterwards (ember_out_reserve);
 * a repair in between (the supervisor's sweep after any death, or the next
 * holder of the page lock after a holder died) must not free that run: the
 * next allocation would get it while the result is written into it, and
 * the caller would read another call's bytes with status 0. Here a handler
 * stops in that window while the test makes the pool repair, for a call
 * its runner holds (RUNNING), one whose caller died (ABANDONED), and after
 * a lock holder's death or another runner's; each repair still frees an
 * orphaned run, a run the supervisor had to leave goes at its next look,
 * and a runner that dies in the window leaks nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "lib/testing.h"
#include "runner/runner.h" /* struct ember_out: the handler plays the runner's part */
#include "fixture.h"

/* Shared with the runners (mapped before the pool forks them). */
struct shared { _Atomic uint32_t hold, started, ended, kept, idx, runner; };
static struct shared *S;

/* "window": a run for a 100000-byte result, tagged with the call's slot and
 * not recorded in it, as ember_out_reserve has it between its allocation
 * and its store; then it waits while S->hold is set, and reports whether
 * the run is still its own (returning 0, or 2 if a repair freed it) and
 * gives it back. */
static int h_window(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n;
    struct ember__view *v = o->v;
    uint32_t run;
    if (ember__pages_alloc(v, o->idx, 100000, &run)) return 1;
    atomic_store(&S->idx, o->idx);
    atomic_store(&S->runner, j->runner);
    gate_wait(&S->hold, &S->started);
    ember__pages_lock(v);
    bool kept = v->page_owner[run] == o->idx + 1;
    ember__pages_unlock(v);
    if (kept) ember__pages_free(v, o->idx, run);
    atomic_fetch_add(&S->kept, kept);
    bump(&S->ended);
    return kept ? 0 : 2;
}

/* "die": dies in that window (the run is tagged with the slot, the slot
 * does not name it) */
static int h_die(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)j;
    uint32_t run;
    if (ember__pages_alloc(o->v, o->idx, 100000, &run)) return 1;
    raise(SIGKILL);
    return 0;
}

static void start(struct fixture *f, const char *tag, unsigned runners)
{
    struct ember_pool_config cfg;
    fixture_config(f, &cfg, "tpg", tag);
    cfg.min = cfg.max = runners;
    cfg.max_concurrency = 1;
    cfg.max_payload = 1 << 20;
    atomic_store(&S->hold, 1);
    atomic_store(&S->started, 0);
    atomic_store(&S->ended, 0);
    atomic_store(&S->kept, 0);
    fixture_start(f, &cfg, runners);
}

/* A run tagged with a FREE slot other than the window's: what a process
 * killed between moving its slot to FREE and giving back its pages leaves,
 * and what every repair must free. Returns its start. */
static uint32_t orphan_run(struct ember__view *v)
{
    uint32_t i = 0;
    while (i < v->nslots && (i == atomic_load(&S->idx) ||
                             ember__st(atomic_load(&v->slots[i].state)) != EMBER_SLOT_FREE))
        i++;
    assert_true(i < v->nslots);
    uint32_t run = EMBER_NONE;
    assert_int_equal(ember__pages_alloc(v, i, 1000, &run), 0);
    return run;
}

static bool run_is_free(struct ember__view *v, uint32_t run)
{
    ember__pages_lock(v);
    bool free = v->page_owner[run] == 0;
    ember__pages_unlock(v);
    return free;
}

/* A process dies holding the page lock; the next holder (this one) finds
 * the lock's owner dead and repairs the table. */
static void repair_after_a_holders_death(struct ember__view *v)
{
    pid_t p = fork();
    if (p == 0) {
        pthread_mutex_lock((pthread_mutex_t *)v->hdr->page_lock);
        _exit(0);
    }
    assert_true(p > 0);
    int st;
    assert_int_equal(waitpid(p, &st, 0), p);
    assert_true(WIFEXITED(st));
    ember__pages_lock(v);
    ember__pages_unlock(v);
}

/* Wait (up to 5 s) for a SHRINK event of runner R: its death repaired. */
static bool await_shrink_of(struct fixture *f, uint32_t r)
{
    struct pool_wait w = pool_wait_start(f->c, 5000);
    do {
        ember_event ev;
        while (ember_events_read(f->c, &f->cursor, &ev, 1) == 1)
            if (ev.type == EMBER_EV_SHRINK && ev.runner == r) return true;
    } while (pool_wait_next(&w));
    return false;
}

static void held_run_survives_a_lock_holders_death(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "held", 1);
    struct ember__view *v = ember__client_view(f.c);
    ember_call_id id;
    assert_int_equal(ember_submit(f.c, ember_handler(f.c, "window"), NULL, 0, EMBER_TIMEOUT_DEFAULT, &id), 0);
    assert_true(await_count(&S->started, 1, 5000));
    uint32_t orphan = orphan_run(v);
    repair_after_a_holders_death(v);
    assert_true(run_is_free(v, orphan)); /* the repair ran */
    gate_release(&S->hold);
    ember_result r;
    int rc = ember_wait(f.c, id, &r);
    if (rc) fail_msg("the held call's run was freed by the repair: %s", ember_last_error());
    ember_result_release(f.c, &r);
    assert_int_equal(used_pages(f.c), 0);
    fixture_stop(&f);
}

/* ... and after the supervisor's sweep, which looks again later at the
 * runs it left: one tagged with the held slot that is not the runner's
 * (an earlier call's, whose freer died) goes once the call has ended */
static void held_run_survives_the_sweep_after_a_runners_death(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "sweep", 2);
    struct ember__view *v = ember__client_view(f.c);
    ember_call_id id;
    assert_int_equal(ember_submit(f.c, ember_handler(f.c, "window"), NULL, 0, EMBER_TIMEOUT_DEFAULT, &id), 0);
    assert_true(await_count(&S->started, 1, 5000));
    uint32_t orphan = orphan_run(v), earlier = EMBER_NONE;
    assert_int_equal(ember__pages_alloc(v, atomic_load(&S->idx), 1000, &earlier), 0);
    uint32_t other = 1 - atomic_load(&S->runner);
    uint32_t pid = atomic_load(&v->runners[other].pid);
    assert_true(pid != 0);
    assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
    assert_true(await_shrink_of(&f, other));
    assert_true(run_is_free(v, orphan)); /* the sweep ran */
    assert_false(run_is_free(v, earlier));
    gate_release(&S->hold);
    ember_result r;
    int rc = ember_wait(f.c, id, &r);
    if (rc) fail_msg("the held call's run was freed by the sweep: %s", ember_last_error());
    ember_result_release(f.c, &r);
    /* the supervisor's next housekeeping tick (1 s) frees the earlier one */
    struct pool_wait w = pool_wait_start(f.c, 5000);
    while (!run_is_free(v, earlier) && pool_wait_next(&w)) {}
    assert_true(run_is_free(v, earlier));
    assert_int_equal(used_pages(f.c), 0);
    fixture_stop(&f);
}

static void abandoned_run_survives_repair(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "aband", 1);
    struct ember__view *v = ember__client_view(f.c);
    uint64_t reaped = atomic_load(&v->hdr->callers_reaped);
    pid_t child = fork();
    if (child == 0) { /* a caller that dies while its call runs */
        ember_client *c;
        ember_call_id id;
        if (ember_attach(f.name, &c) || ember_submit(c, ember_handler(c, "window"), NULL, 0,
                                                     EMBER_TIMEOUT_DEFAULT, &id))
            _exit(1);
        pause();
        _exit(0);
    }
    assert_true(child > 0);
    assert_true(await_count(&S->started, 1, 5000));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    assert_true(await_reaped(f.c, reaped, 5000)); /* reaped: its call disowned */
    uint32_t w = atomic_load(&v->slots[atomic_load(&S->idx)].state);
    assert_int_equal(ember__st(w), EMBER_SLOT_ABANDONED);
    uint32_t orphan = orphan_run(v);
    repair_after_a_holders_death(v);
    assert_true(run_is_free(v, orphan));
    gate_release(&S->hold);
    assert_true(await_count(&S->ended, 1, 5000));
    assert_int_equal(atomic_load(&S->kept), 1);
    assert_int_equal(used_pages(f.c), 0);
    fixture_stop(&f);
}

static void dead_runners_unrecorded_run_is_freed(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "die", 1);
    ember_result r;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "die"), NULL, 0, &r, EMBER_TIMEOUT_DEFAULT),
                     -EMBER_ECRASHED);
    ember_result_release(f.c, &r);
    /* freed by the time the call ended crashed (the supervisor frees it
     * before it ends the call) */
    assert_int_equal(used_pages(f.c), 0);
    fixture_stop(&f);
}

int main(void)
{
    S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (S == MAP_FAILED) return 1;
    S->idx = UINT32_MAX;
    ember_handler_register("window", h_window);
    ember_handler_register("die", h_die);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(held_run_survives_a_lock_holders_death),
        cmocka_unit_test(held_run_survives_the_sweep_after_a_runners_death),
        cmocka_unit_test(abandoned_run_survives_repair),
        cmocka_unit_test(dead_runners_unrecorded_run_is_freed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
