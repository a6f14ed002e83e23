/* Description: link semantics, cancellation and children (FLAME's link
 * option and place_child), on the back-end named by EMBER_BACKEND: when a
 * caller process dies, its linked work stops (queued work never runs, a
 * running handler sees its cancel flag, one that ignores it has its runner
 * killed after kill_grace while the other calls on it are lost) and its
 * unlinked work runs on; ember_cancel stops queued and running calls; a
 * caller that detaches leaves its casts to run; a child holds a runner's
 * place, keeps that runner from idling down, returns its runner's pid and
 * pidfd, stops on request or with its caller, unless unlinked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "lib/testing.h"
#include "fixture.h"

#define NJOBS 16
/* State shared with the pool's processes and forked callers. */
struct shared {
    _Atomic uint32_t started[NJOBS], ended[NJOBS], cancelled[NJOBS];
    _Atomic uint32_t nstarted, hold, submitted; /* submitted: a forked caller is done */
};
static struct shared *S;

enum { POLITE = 0, HOLD = 1, MARK = 2, DEAF = 3 };
struct job { uint32_t id, mode; };

/* POLITE runs until cancelled; HOLD until S->hold drops (noting a cancel it
 * saw); MARK returns at once; DEAF never returns and ignores its flag. */
static int h_work(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)o;
    struct job jb;
    if (n != sizeof jb) return 1;
    memcpy(&jb, a, sizeof jb);
    if (jb.id >= NJOBS) return 1;
    bump(&S->started[jb.id]);
    bump(&S->nstarted);
    switch (jb.mode) {
    case POLITE:
        await_cancel(j);
        bump(&S->cancelled[jb.id]);
        break;
    case HOLD:
        while (atomic_load(&S->hold)) ember__futex_wait(&S->hold, 1, ember__now_ns() + 10000000ull);
        if (ember_job_cancelled(j)) bump(&S->cancelled[jb.id]);
        break;
    case DEAF:
        for (;;) pause();
    }
    bump(&S->ended[jb.id]);
    return 0;
}

static void start(struct fixture *f, const char *tag, unsigned min, unsigned max, unsigned conc,
                  int64_t idle_ns)
{
    struct ember_pool_config cfg;
    fixture_config(f, &cfg, "l", tag);
    cfg.min = min;
    cfg.max = max;
    cfg.max_concurrency = conc;
    cfg.kill_grace_ns = 150000000ll;
    if (idle_ns) cfg.idle_shutdown_after_ns = idle_ns;
    memset(S, 0, sizeof *S);
    fixture_start(f, &cfg, 0);
    f->h = ember_handler(f->c, "work");
    assert_true(f->h >= 0);
}

static struct ember_shm_header *hdr(struct fixture *f) { return ember__pool_view(f->pool)->hdr; }

static int cast(ember_client *c, int h, uint32_t id, uint32_t mode, unsigned flags)
{
    struct job jb = { id, mode };
    return ember_cast_flags(c, h, &jb, sizeof jb, EMBER_TIMEOUT_DEFAULT, flags);
}

/* Fork a caller that attaches, runs BODY, then waits to be killed. */
static pid_t caller(struct fixture *f, void (*body)(ember_client *c, int h))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ember_client *c;
        if (ember_attach(f->name, &c)) _exit(2);
        body(c, ember_handler(c, "work"));
        bump(&S->submitted);
        for (;;) pause();
    }
    return pid;
}

static void kill_caller(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void body_mixed(ember_client *c, int h)
{
    /* two places: 0 (linked) and 1 (unlinked) run, 2 (linked) and 3
     * (unlinked) wait in the queue behind them */
    if (cast(c, h, 0, POLITE, 0) || cast(c, h, 1, HOLD, EMBER_UNLINKED) ||
        cast(c, h, 2, MARK, 0) || cast(c, h, 3, MARK, EMBER_UNLINKED))
        _exit(3);
}

static void caller_death_stops_linked_work_and_spares_unlinked(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "mix", 1, 1, 2, 0);
    atomic_store(&S->hold, 1);
    pid_t pid = caller(&f, body_mixed);
    assert_true(await_count(&S->submitted, 1, 5000));
    assert_true(await_count(&S->nstarted, 2, 5000)); /* 0 and 1 run */
    kill_caller(pid);
    /* the linked running handler sees its cancel flag and returns */
    assert_true(await_count(&S->ended[0], 1, 3000));
    assert_int_equal(atomic_load(&S->cancelled[0]), 1);
    /* the unlinked one runs on, uncancelled, and after it the queued
     * unlinked cast runs; the queued linked one never does */
    atomic_store(&S->hold, 0);
    ember__futex_wake(&S->hold, INT_MAX);
    assert_true(await_count(&S->ended[1], 1, 3000));
    assert_int_equal(atomic_load(&S->cancelled[1]), 0);
    assert_true(await_count(&S->ended[3], 1, 3000));
    /* a call of ours after it has passed through the same FIFO queue */
    ember_result r;
    struct job jb = { 4, MARK };
    assert_int_equal(ember_call(f.c, f.h, &jb, sizeof jb, &r, EMBER_TIMEOUT_DEFAULT), 0);
    ember_result_release(f.c, &r);
    assert_int_equal(atomic_load(&S->started[2]), 0);
    /* nobody was killed: the linked handler cooperated */
    assert_int_equal(await_shrinks(&f, EMBER_WHY_CANCEL, 1, 0), 0);
    assert_int_equal(atomic_load(&hdr(&f)->runners_died), 0);
    fixture_stop(&f);
}

static void body_deaf(ember_client *c, int h)
{
    if (cast(c, h, 0, DEAF, 0)) _exit(3);
}

static void deaf_linked_work_has_its_runner_killed(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "deaf", 1, 1, 2, 0);
    atomic_store(&S->hold, 1);
    ember_call_id other;
    struct job jb = { 1, HOLD };
    assert_int_equal(ember_submit(f.c, f.h, &jb, sizeof jb, EMBER_TIMEOUT_DEFAULT, &other), 0);
    assert_true(await_count(&S->started[1], 1, 5000));
    pid_t pid = caller(&f, body_deaf);
    assert_true(await_count(&S->submitted, 1, 5000));
    assert_true(await_count(&S->started[0], 1, 5000));
    uint64_t t0 = ember__now_ns();
    kill_caller(pid);
    /* kill_grace (150 ms) after the caller's death the runner is killed:
     * our call on it is lost with it, and the runner is replaced */
    ember_result r;
    assert_int_equal(ember_wait(f.c, other, &r), -EMBER_ERUNNERLOST);
    ember_result_release(f.c, &r);
    uint64_t waited = ember__now_ns() - t0;
    assert_true(waited >= 150000000ull);
    assert_int_equal(await_shrinks(&f, EMBER_WHY_CANCEL, 1, 3000), 1);
    jb = (struct job){ 2, MARK };
    assert_int_equal(ember_call(f.c, f.h, &jb, sizeof jb, &r, EMBER_TIMEOUT_DEFAULT), 0);
    ember_result_release(f.c, &r);
    fixture_stop(&f);
}

static void cancel_stops_queued_and_running_calls(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "cancel", 1, 1, 1, 0);
    struct job run = { 0, POLITE }, queued = { 1, MARK }, deaf = { 2, DEAF };
    ember_call_id a, b, d;
    assert_int_equal(ember_submit(f.c, f.h, &run, sizeof run, EMBER_TIMEOUT_DEFAULT, &a), 0);
    assert_true(await_count(&S->started[0], 1, 5000));
    assert_int_equal(ember_submit(f.c, f.h, &queued, sizeof queued, EMBER_TIMEOUT_DEFAULT, &b), 0);
    ember_result r;
    assert_int_equal(ember_cancel(f.c, b), 0);
    assert_int_equal(ember_wait(f.c, b, &r), -EMBER_ECANCELLED);
    ember_result_release(f.c, &r);
    assert_int_equal(ember_cancel(f.c, a), 0);
    assert_int_equal(ember_wait(f.c, a, &r), -EMBER_ECANCELLED);
    assert_int_equal(r.detail, 0); /* it stopped by itself */
    ember_result_release(f.c, &r);
    assert_int_equal(ember_cancel(f.c, a), -EMBER_ESTALE);
    assert_int_equal(atomic_load(&S->started[1]), 0);
    /* a handler that ignores its flag: its runner is killed after kill_grace */
    assert_int_equal(ember_submit(f.c, f.h, &deaf, sizeof deaf, EMBER_TIMEOUT_DEFAULT, &d), 0);
    assert_true(await_count(&S->started[2], 1, 5000));
    assert_int_equal(ember_cancel(f.c, d), 0);
    assert_int_equal(ember_wait(f.c, d, &r), -EMBER_ECANCELLED);
    assert_int_equal(r.detail, 1);
    ember_result_release(f.c, &r);
    assert_int_equal(await_shrinks(&f, EMBER_WHY_CANCEL, 1, 3000), 1);
    assert_int_equal(ember_submit_flags(f.c, f.h, &run, sizeof run, -1, 0x100, &a), -EMBER_EINVAL);
    fixture_stop(&f);
}

static void detach_leaves_casts_to_run(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "detach", 1, 1, 1, 0);
    atomic_store(&S->hold, 1);
    ember_client *c;
    assert_int_equal(ember_attach(f.name, &c), 0);
    assert_int_equal(cast(c, f.h, 0, HOLD, 0), 0);
    assert_int_equal(cast(c, f.h, 1, MARK, 0), 0);
    assert_true(await_count(&S->started[0], 1, 5000));
    ember_detach(c); /* a normal exit: its casts are not cancelled */
    atomic_store(&S->hold, 0);
    ember__futex_wake(&S->hold, INT_MAX);
    assert_true(await_count(&S->ended[1], 1, 3000));
    assert_int_equal(atomic_load(&S->cancelled[0]), 0);
    fixture_stop(&f);
}

static bool pidfd_exits_within(int pidfd, int ms)
{
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    return poll(&p, 1, ms) == 1;
}

static void child_holds_a_place_and_keeps_its_runner(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "child", 0, 1, 1, 30000000ll); /* grown runners idle down after 30 ms */
    ember_child ch;
    struct job jb = { 0, POLITE };
    assert_int_equal(ember_place_child(f.c, f.h, &jb, sizeof jb, 5000000000ll, 0, &ch), 0);
    assert_true(await_count(&S->started[0], 1, 3000));
    struct ember__view *v = ember__pool_view(f.pool);
    assert_true(ch.runner < v->nrunners);
    assert_int_equal(ch.pid, (int)atomic_load(&v->runners[ch.runner].pid));
    assert_true(ch.pidfd >= 0);
    /* it holds the only place: a call with a short timeout waits in vain */
    ember_result r;
    struct job mk = { 1, MARK };
    assert_int_equal(ember_call(f.c, f.h, &mk, sizeof mk, &r, 50000000ll), -EMBER_ETIMEDOUT);
    assert_int_equal(r.detail, EMBER_TIMEOUT_QUEUED);
    ember_result_release(f.c, &r);
    /* and its runner outlives many idle periods */
    assert_false(pidfd_exits_within(ch.pidfd, 300));
    int pidfd = dup(ch.pidfd);
    assert_int_equal(ember_child_stop(f.c, &ch, &r), -EMBER_ECANCELLED);
    ember_result_release(f.c, &r);
    assert_int_equal(atomic_load(&S->cancelled[0]), 1);
    assert_int_equal(ch.pidfd, -1);
    /* once it has ended, the runner idles down */
    assert_true(pidfd_exits_within(pidfd, 3000));
    close(pidfd);
    assert_int_equal(await_shrinks(&f, EMBER_WHY_IDLE, 1, 3000), 1);
    /* a child that ends by itself */
    mk.id = 2;
    assert_int_equal(ember_place_child(f.c, f.h, &mk, sizeof mk, 5000000000ll, 0, &ch), 0);
    assert_int_equal(ember_child_wait(f.c, &ch, &r), 0);
    ember_result_release(f.c, &r);
    fixture_stop(&f);
}

static void body_children(ember_client *c, int h)
{
    ember_child a, b;
    struct job ja = { 0, POLITE }, jb = { 1, POLITE };
    if (ember_place_child(c, h, &ja, sizeof ja, 5000000000ll, 0, &a) ||
        ember_place_child(c, h, &jb, sizeof jb, 5000000000ll, EMBER_UNLINKED, &b))
        _exit(3);
}

static void child_stops_with_its_caller_unless_unlinked(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "chdie", 1, 1, 2, 0);
    pid_t pid = caller(&f, body_children);
    assert_true(await_count(&S->submitted, 1, 5000));
    assert_true(await_count(&S->nstarted, 2, 5000));
    kill_caller(pid);
    assert_true(await_count(&S->cancelled[0], 1, 3000)); /* linked: stopped */
    assert_true(await_reaped(f.c, 0, 3000)); /* the death is handled */
    assert_int_equal(atomic_load(&hdr(&f)->callers_reaped), 1);
    /* the unlinked child still runs, not cancelled: an orphan */
    struct ember__view *v = ember__pool_view(f.pool);
    unsigned orphans = 0, others = 0;
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint32_t w = atomic_load(&v->slots[i].state);
        /* the linked child's slot is abandoned until its runner frees it */
        if (ember__st(w) == EMBER_SLOT_FREE || ember__st(w) == EMBER_SLOT_ABANDONED) continue;
        if (ember__st(w) == EMBER_SLOT_RUNNING && (w & EMBER_SLOT_ORPHAN) &&
            !(w & EMBER_SLOT_CANCEL))
            orphans++;
        else
            others++;
    }
    assert_int_equal(orphans, 1);
    assert_int_equal(others, 0);
    assert_int_equal(atomic_load(&S->cancelled[1]), 0);
    assert_int_equal(atomic_load(&S->ended[1]), 0);
    fixture_stop(&f); /* its runner is killed after the shutdown timeout */
}

int main(void)
{
    S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (S == MAP_FAILED) return 1;
    ember_handler_register("work", h_work);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(caller_death_stops_linked_work_and_spares_unlinked),
        cmocka_unit_test(deaf_linked_work_has_its_runner_killed),
        cmocka_unit_test(cancel_stops_queued_and_running_calls),
        cmocka_unit_test(detach_leaves_casts_to_run),
        cmocka_unit_test(child_holds_a_place_and_keeps_its_runner),
        cmocka_unit_test(child_stops_with_its_caller_unless_unlinked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
