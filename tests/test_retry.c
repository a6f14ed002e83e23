/* Description: retries and quarantine on a real pool, on the back-end named
 * by EMBER_BACKEND (meson runs this file once per back-end): a call
 * submitted with EMBER_RETRIES whose runner is killed while it runs it
 * runs again on another runner and succeeds, its caller waiting
 * throughout; a handler that crashes every runner ends EMBER_EPOISON after
 * poison_after runners and is not run again, whatever its retries; without
 * retries a crash is EMBER_ECRASHED as before, run once; runners that die
 * on their first call again and again trip the breaker (EMBER_EBOOT with
 * the crash loop as cause), and the pool serves again once calls stop
 * crashing; a draining runner holds its place under max: its replacement
 * boots only once it has exited. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <cmocka.h>
#include "lib/testing.h"
#include "fixture.h"
#include "supervisor/policy.h"

/* shared with the runners (MAP_SHARED before the pool forks) */
struct shared {
    _Atomic uint32_t hold, started, runs;
    _Atomic int32_t first_pid; /* the runner that ran "once" first */
    _Atomic int32_t crashed_pid; /* the runner "crash" ran on last */
};
static struct shared *S;

/* "once": the first run blocks (its runner is to be killed), any later run
 * returns its run number */
static int h_once(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)j;
    uint32_t run = atomic_fetch_add(&S->runs, 1) + 1;
    if (run == 1) {
        atomic_store(&S->first_pid, (int32_t)getpid());
        bump(&S->started);
        for (;;) ember__futex_wait(&S->hold, atomic_load(&S->hold), 0);
    }
    return ember_out_write(o, &run, sizeof run);
}
/* "crash": counts its run, then its runner dies of SIGSEGV */
static int h_crash(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)o, (void)j;
    atomic_store(&S->crashed_pid, (int32_t)getpid());
    atomic_fetch_add(&S->runs, 1);
    raise(SIGSEGV);
    return 0;
}
static int h_block(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)o, (void)j;
    gate_wait(&S->hold, &S->started);
    return 0;
}

static void start(struct fixture *f, const char *tag, unsigned min, unsigned max,
                  unsigned poison_after, bool single_use)
{
    struct ember_pool_config cfg;
    fixture_config(f, &cfg, "r", tag);
    cfg.min = min;
    cfg.max = max;
    if (poison_after) cfg.poison_after = poison_after;
    cfg.single_use = single_use;
    atomic_store(&S->hold, 0);
    atomic_store(&S->started, 0);
    atomic_store(&S->runs, 0);
    atomic_store(&S->first_pid, 0);
    atomic_store(&S->crashed_pid, 0);
    fixture_start(f, &cfg, min);
}

static ember_stats stats(struct fixture *f)
{
    ember_stats st;
    assert_true(ember_stats_read(f->c, &st, NULL, 0) >= 0);
    return st;
}

struct caller { struct fixture *f; unsigned flags; int rc; uint32_t run, runner; };

static void *call_once(void *arg)
{
    struct caller *cl = arg;
    ember_result r;
    cl->rc = ember_call_flags(cl->f->c, ember_handler(cl->f->c, "once"), NULL, 0, &r,
                              30 * EMBER_SECOND, cl->flags);
    if (cl->rc == 0 && r.len == sizeof cl->run) memcpy(&cl->run, r.data, sizeof cl->run);
    cl->runner = r.runner;
    ember_result_release(cl->f->c, &r);
    return NULL;
}

/* Kill the runner running "once" while its caller waits in ember_call. */
static void kill_first_runner(struct caller *cl, pthread_t *t)
{
    assert_int_equal(pthread_create(t, NULL, call_once, cl), 0);
    assert_true(await_count(&S->started, 1, 10000));
    pid_t pid = atomic_load(&S->first_pid);
    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(pthread_join(*t, NULL), 0);
}

static void retried_call_survives_its_runner(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "ok", 2, 2, 0, false);
    struct caller cl = { .f = &f, .flags = EMBER_RETRIES(1) };
    pthread_t t;
    kill_first_runner(&cl, &t);
    assert_int_equal(cl.rc, 0);
    assert_int_equal(cl.run, 2); /* ran again, to its end */
    assert_int_equal(atomic_load(&S->runs), 2);
    /* on another runner: not the process that was killed */
    assert_true(cl.runner < ember__client_view(f.c)->nrunners);
    assert_int_not_equal((int32_t)atomic_load(&ember__client_view(f.c)->runners[cl.runner].pid),
                         atomic_load(&S->first_pid));
    ember_stats s = stats(&f);
    assert_int_equal(s.calls_retried, 1);
    assert_int_equal(s.calls_crashed, 0);
    assert_int_equal(s.calls_poisoned, 0);
    fixture_stop(&f);
}

static void unlinked_retried_call_survives_too(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "un", 1, 2, 0, false);
    struct caller cl = { .f = &f, .flags = EMBER_UNLINKED | EMBER_RETRIES(3) };
    pthread_t t;
    kill_first_runner(&cl, &t);
    assert_int_equal(cl.rc, 0);
    assert_int_equal(cl.run, 2);
    fixture_stop(&f);
}

static void without_retries_a_crash_is_crashed(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "nr", 1, 2, 0, false);
    struct caller cl = { .f = &f, .flags = 0 };
    pthread_t t;
    kill_first_runner(&cl, &t);
    assert_int_equal(cl.rc, -EMBER_ECRASHED);
    assert_int_equal(atomic_load(&S->runs), 1);
    ember_result r;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "crash"), NULL, 0, &r, 30 * EMBER_SECOND),
                     -EMBER_ECRASHED);
    assert_int_equal(r.detail, SIGSEGV);
    ember_result_release(f.c, &r);
    assert_int_equal(atomic_load(&S->runs), 2);
    ember_stats s = stats(&f);
    assert_int_equal(s.calls_retried, 0);
    fixture_stop(&f);
}

/* The runner and worker line of F's pool that announce entry E, other
 * than runner NOT (-1: none). */
static int worker_naming(struct fixture *f, uint32_t e, int not, uint32_t *wi)
{
    struct ember__view *v = ember__client_view(f->c);
    for (uint32_t r = 0; r < v->nrunners; r++)
        for (uint32_t t = 0; (int)r != not && t < v->max_conc; t++)
            if (atomic_load(&v->workers[r * v->max_conc + t].current) == e) {
                *wi = r * v->max_conc + t;
                return (int)r;
            }
    return -1;
}

/* Wait until the supervisor has reaped N runners in all. */
static void await_runners_died(struct fixture *f, uint64_t n)
{
    struct ember__view *v = ember__client_view(f->c);
    uint64_t until = ember__now_ns() + 10 * EMBER_SECOND;
    while (atomic_load(&v->hdr->runners_died) < n && ember__now_ns() < until)
        ember__futex_wait(&v->hdr->epoch, atomic_load(&v->hdr->epoch), ember__now_ns() + 5000000ull);
    assert_true(atomic_load(&v->hdr->runners_died) >= n);
}

/* A call that runs on runner A while a worker of runner B names it too:
 * B popped a second entry of the call (the sweep after a death pushes
 * one for a QUEUED slot that is between its store and its push) and
 * announced it just before its take, which fails. Which of the two runs
 * the call is then known only from the one that keeps naming it. Sets up
 * that state and returns the call's id, its entry, and A's and B's
 * worker lines. */
static ember_call_id named_twice(struct fixture *f, const char *tag, uint32_t *e, uint32_t *wa,
                                 uint32_t *wb)
{
    start(f, tag, 2, 2, 0, false);
    struct ember__view *v = ember__client_view(f->c);
    ember_call_id id;
    atomic_store(&S->hold, 1);
    assert_int_equal(ember_submit_flags(f->c, ember_handler(f->c, "block"), NULL, 0,
                                        30 * EMBER_SECOND, EMBER_RETRIES(1), &id), 0);
    assert_true(await_count(&S->started, 1, 10000));
    *e = ember__entry(id.idx, id.gen);
    int a = worker_naming(f, *e, -1, wa);
    assert_true(a >= 0);
    uint32_t b = (uint32_t)a ^ 1u;
    assert_true(atomic_load(&v->runners[b].state) == EMBER_RUNNER_READY);
    *wb = b * v->max_conc;
    atomic_store(&v->workers[*wb].current, *e);
    return id;
}

static void a_runner_that_only_named_a_call_does_not_fail_it(void **st)
{
    (void)st;
    struct fixture f;
    uint32_t e, wa, wb;
    ember_call_id id = named_twice(&f, "t1", &e, &wa, &wb);
    struct ember__view *v = ember__client_view(f.c);
    uint32_t a = wa / v->max_conc, b = wb / v->max_conc;
    uint64_t died = atomic_load(&v->hdr->runners_died);
    assert_int_equal(kill((pid_t)atomic_load(&v->runners[b].pid), SIGKILL), 0);
    await_runners_died(&f, died + 1);
    /* B is gone and A runs the call on: it is neither failed nor queued
     * again for a second run */
    ember_result r;
    assert_int_equal(ember_poll(f.c, id, &r), -EMBER_EAGAIN);
    assert_int_equal(atomic_load(&v->workers[wa].current), e);
    gate_release(&S->hold);
    assert_int_equal(ember_wait(f.c, id, &r), 0);
    assert_int_equal(r.runner, a);
    ember_result_release(f.c, &r);
    assert_int_equal(atomic_load(&S->started), 1);
    ember_stats s = stats(&f);
    assert_int_equal(s.calls_crashed, 0);
    assert_int_equal(s.calls_retried, 0);
    fixture_stop(&f);
}

/* A, which runs the call, dies right after its take, before it says so
 * (busy), while B still names the call: nothing is decided while B may be
 * the one that took it. Returns once A is reaped. */
static void holder_dies_unsaid(struct fixture *f, uint32_t wa)
{
    struct ember__view *v = ember__client_view(f->c);
    uint64_t died = atomic_load(&v->hdr->runners_died);
    atomic_store(&v->workers[wa].busy, 0);
    assert_int_equal(kill((pid_t)atomic_load(&v->runners[wa / v->max_conc].pid), SIGKILL), 0);
    await_runners_died(f, died + 1);
}

static void a_call_named_twice_is_decided_once_the_live_name_goes(void **st)
{
    (void)st;
    struct fixture f;
    uint32_t e, wa, wb;
    ember_call_id id = named_twice(&f, "t2", &e, &wa, &wb);
    struct ember__view *v = ember__client_view(f.c);
    holder_dies_unsaid(&f, wa);
    ember_result r;
    assert_int_equal(ember_poll(f.c, id, &r), -EMBER_EAGAIN);
    assert_int_equal(atomic_load(&S->started), 1);
    /* B's take fails and it lets go of the name: the call was A's, and it
     * is run again (it has a retry left), once */
    atomic_store(&v->workers[wb].current, EMBER_NONE);
    assert_true(await_count(&S->started, 2, 10000));
    gate_release(&S->hold);
    assert_int_equal(ember_wait(f.c, id, &r), 0);
    ember_result_release(f.c, &r);
    assert_int_equal(atomic_load(&S->started), 2);
    ember_stats s = stats(&f);
    assert_int_equal(s.calls_retried, 1);
    assert_int_equal(s.calls_crashed, 0);
    fixture_stop(&f);
}

/* The same with a name that never goes (a stray write into B's line): it
 * never turned into a take, so after a second the call is A's. */
static void a_name_that_never_turns_into_a_take_does_not_hold_a_call(void **st)
{
    (void)st;
    struct fixture f;
    uint32_t e, wa, wb;
    ember_call_id id = named_twice(&f, "t3", &e, &wa, &wb);
    holder_dies_unsaid(&f, wa);
    assert_true(await_count(&S->started, 2, 15000));
    gate_release(&S->hold);
    ember_result r;
    assert_int_equal(ember_wait(f.c, id, &r), 0);
    ember_result_release(f.c, &r);
    assert_int_equal(atomic_load(&S->started), 2);
    assert_int_equal(stats(&f).calls_retried, 1);
    fixture_stop(&f);
}

static void crashing_call_is_poisoned(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "po", 1, 2, 0, false); /* poison_after: the default, 2 */
    ember_result r;
    int h = ember_handler(f.c, "crash");
    assert_int_equal(ember_call_flags(f.c, h, NULL, 0, &r, 30 * EMBER_SECOND, EMBER_RETRIES(5)),
                     -EMBER_EPOISON);
    assert_int_equal(r.detail, SIGSEGV);
    ember_result_release(f.c, &r);
    if (!strstr(ember_last_error(), "crashed 2 runners") || !strstr(ember_last_error(), "killed by SIGSEGV"))
        fail_msg("EPOISON without its cause: %s", ember_last_error());
    ember_stats s = stats(&f);
    assert_int_equal(s.calls_poisoned, 1);
    assert_int_equal(s.calls_retried, 1);
    /* not run again: the pool serves the next call, and the poisoned one
     * ran on exactly two runners */
    uint64_t x = 7;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "echo"), &x, sizeof x, &r, 30 * EMBER_SECOND), 0);
    ember_result_release(f.c, &r);
    assert_int_equal(atomic_load(&S->runs), 2);
    /* a submitted one with ember_wait_any, too */
    ember_call_id id, got;
    assert_int_equal(ember_submit_flags(f.c, h, NULL, 0, 30 * EMBER_SECOND, EMBER_RETRIES(15), &id), 0);
    assert_int_equal(ember_wait_any(f.c, EMBER_NEVER, &got, &r), 0);
    assert_int_equal(got.idx, id.idx);
    assert_int_equal(r.status, -EMBER_EPOISON);
    ember_result_release(f.c, &r);
    assert_int_equal(atomic_load(&S->runs), 4);
    fixture_stop(&f);
}

static void retries_end_before_poison_after(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "p3", 1, 2, 3, false);
    ember_result r;
    /* one retry, poison_after 3: two runners crashed, then ECRASHED */
    assert_int_equal(ember_call_flags(f.c, ember_handler(f.c, "crash"), NULL, 0, &r,
                                      30 * EMBER_SECOND, EMBER_RETRIES(1)), -EMBER_ECRASHED);
    ember_result_release(f.c, &r);
    assert_int_equal(atomic_load(&S->runs), 2);
    /* out of range, and children are never retried */
    assert_int_equal(ember_call_flags(f.c, ember_handler(f.c, "echo"), NULL, 0, &r, EMBER_TIMEOUT_DEFAULT,
                                      EMBER_RETRIES(16)), -EMBER_EINVAL);
    assert_non_null(strstr(ember_last_error(), "at most 15"));
    ember_result_release(f.c, &r);
    ember_child ch;
    assert_int_equal(ember_place_child(f.c, ember_handler(f.c, "echo"), NULL, 0, EMBER_TIMEOUT_DEFAULT,
                                       EMBER_RETRIES(1), &ch), -EMBER_EINVAL);
    fixture_stop(&f);
}

/* Wait (bounded) until a READY runner other than the one "crash" killed
 * last is up: its replacement, ready (the pool's ready count lags behind
 * a death until the supervisor's next look). */
static void await_replacement_ready(struct fixture *f)
{
    int32_t dead = atomic_load(&S->crashed_pid);
    struct pool_wait w = pool_wait_start(f->c, 10000);
    do {
        ember_stats st;
        ember_runner_stats rs[4];
        int n = ember_stats_read(f->c, &st, rs, 4);
        for (int i = 0; i < n && i < 4; i++)
            if (rs[i].state == EMBER_RUNNER_READY && rs[i].pid != dead) return;
    } while (pool_wait_next(&w));
    fail_msg("no ready runner after the crash");
}

/* Wait for the pool's epoch to move from E (bounded), return the new one. */
static uint32_t next_epoch(struct fixture *f, uint32_t e)
{
    ember_stats_wait(f->c, e, EMBER_SECOND);
    return stats(f).epoch;
}

static void crash_loop_trips_the_breaker(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "cl", 1, 1, 0, false);
    ember_result r;
    int crash = ember_handler(f.c, "crash"), echo = ember_handler(f.c, "echo");
    for (unsigned i = 0; i < EMBER__CRASH_LOOP_RUNNERS; i++) {
        /* on a READY runner: a runner that dies before it says READY (its
         * workers start first) is a failed boot, counted as such */
        await_replacement_ready(&f);
        assert_int_equal(ember_call(f.c, crash, NULL, 0, &r, 30 * EMBER_SECOND), -EMBER_ECRASHED);
        ember_result_release(f.c, &r);
    }
    /* the breaker is open: calls fail with EMBER_EBOOT and the cause. A
     * probe boots when the backoff ends; if it comes before a call, that
     * call crashes it and the breaker opens again, for longer (as a
     * failed boot if the probe was not READY yet). */
    bool eboot = false, probed = false;
    for (int i = 0; i < 8 && !eboot; i++) {
        int rc = ember_call(f.c, crash, NULL, 0, &r, 30 * EMBER_SECOND);
        ember_result_release(f.c, &r);
        if (rc == -EMBER_EBOOT) {
            eboot = true;
            if ((!probed && !strstr(ember_last_error(), "crash loop")) ||
                !strstr(ember_last_error(), "killed by SIGSEGV"))
                fail_msg("EBOOT without the crash loop as its cause: %s", ember_last_error());
        } else {
            assert_int_equal(rc, -EMBER_ECRASHED);
            probed = true;
        }
    }
    assert_true(eboot);
    /* calls that do not crash: refused while the breaker is open, then the
     * probe serves them, and the breaker closes */
    uint32_t epoch = stats(&f).epoch;
    uint64_t x = 42;
    int rc;
    for (int i = 0; i < 200; i++) {
        rc = ember_call(f.c, echo, &x, sizeof x, &r, 30 * EMBER_SECOND);
        ember_result_release(f.c, &r);
        if (rc != -EMBER_EBOOT) break;
        epoch = next_epoch(&f, epoch);
    }
    assert_int_equal(rc, 0);
    /* closed: one crash on a fresh runner is one crash, and the next call runs */
    assert_int_equal(ember_call(f.c, crash, NULL, 0, &r, 30 * EMBER_SECOND), -EMBER_ECRASHED);
    ember_result_release(f.c, &r);
    rc = ember_call(f.c, echo, &x, sizeof x, &r, 30 * EMBER_SECOND);
    ember_result_release(f.c, &r);
    if (rc) fail_msg("after the breaker closed, a call failed: %s", ember_last_error());
    fixture_stop(&f);
}

/* Make the supervisor look at the pool once more from the start: it clears
 * grow_req when an evaluation begins (evaluate.c), and it evaluates one at
 * a time, so after two such rounds one whole evaluation has seen what was
 * true before the first. */
static void await_two_evaluations(struct fixture *f)
{
    struct ember__view *v = ember__client_view(f->c);
    for (int k = 0; k < 2; k++) {
        atomic_store(&v->hdr->grow_req, 1);
        ember__ring_doorbell(v);
        struct pool_wait w = pool_wait_start(f->c, 10000);
        while (atomic_load(&v->hdr->grow_req) && pool_wait_next(&w)) {}
        assert_int_equal(atomic_load(&v->hdr->grow_req), 0);
    }
}

static void draining_runner_holds_its_place(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "dr", 1, 1, 0, true); /* single_use: a runner drains as it takes its call */
    ember_stats s0 = stats(&f);
    assert_int_equal(s0.runners_started, 1);
    atomic_store(&S->hold, 1);
    ember_call_id a, b;
    assert_int_equal(ember_submit(f.c, ember_handler(f.c, "block"), NULL, 0, 30 * EMBER_SECOND, &a), 0);
    assert_true(await_count(&S->started, 1, 10000));
    uint64_t x = 5;
    assert_int_equal(ember_submit(f.c, ember_handler(f.c, "echo"), &x, sizeof x, 30 * EMBER_SECOND, &b), 0);
    /* the only runner drains and runs "block"; "echo" waits for a runner:
     * its replacement may not boot while the draining one is alive */
    await_two_evaluations(&f);
    ember_stats s = stats(&f);
    assert_int_equal(s.runners_started, 1);
    assert_int_equal(s.runners, 1);
    assert_int_equal(s.queued, 1);
    gate_release(&S->hold);
    ember_result r;
    assert_int_equal(ember_wait(f.c, a, &r), 0);
    ember_result_release(f.c, &r);
    assert_int_equal(ember_wait(f.c, b, &r), 0);
    ember_result_release(f.c, &r);
    /* and the events say so: the first runner shrank before the second
     * started growing */
    ember_event ev[32];
    uint64_t cur = 0;
    int n = ember_events_read(f.c, &cur, ev, 32);
    int shrink = -1, grow2 = -1, grows = 0;
    for (int i = 0; i < n; i++) {
        if (ev[i].type == EMBER_EV_SHRINK && shrink < 0) shrink = i;
        if (ev[i].type == EMBER_EV_GROW_START && ++grows == 2) grow2 = i;
    }
    assert_true(shrink >= 0 && grow2 >= 0);
    assert_true(shrink < grow2);
    fixture_stop(&f);
}

int main(void)
{
    S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ember_handler_register("once", h_once);
    ember_handler_register("crash", h_crash);
    ember_handler_register("block", h_block);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(retried_call_survives_its_runner),
        cmocka_unit_test(unlinked_retried_call_survives_too),
        cmocka_unit_test(without_retries_a_crash_is_crashed),
        cmocka_unit_test(a_runner_that_only_named_a_call_does_not_fail_it),
        cmocka_unit_test(a_call_named_twice_is_decided_once_the_live_name_goes),
        cmocka_unit_test(a_name_that_never_turns_into_a_take_does_not_hold_a_call),
        cmocka_unit_test(crashing_call_is_poisoned),
        cmocka_unit_test(retries_end_before_poison_after),
        cmocka_unit_test(crash_loop_trips_the_breaker),
        cmocka_unit_test(draining_runner_holds_its_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
