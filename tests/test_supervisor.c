/* Description: the supervisor's own failures and ends, on the back-end named
 * by EMBER_BACKEND (meson runs this file once per back-end): a watch of a
 * caller's pidfd that fails (the kernel fails it: the fault hook of
 * lib/testing.h hands the loop a closed descriptor) never reaps that live
 * caller; failing watches of runners never block the supervisor, which
 * still boots, serves, and finds a runner that died unwatched; a
 * supervisor that cannot start says its exit status and what it means; a
 * supervisor SIGKILLed and not reaped (a zombie, its pid and start time
 * kept) is a dead pool at once: attach says EMBER_ENOPOOL and a start of
 * its name works, and the old handle's stop says how its supervisor ended
 * without removing the new pool's name; an event callback that blocks
 * runs in the application and holds up neither growth nor calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "lib/testing.h"
#include "fixture.h"

enum { FAIL_NONE, FAIL_PID, FAIL_ALL_BUT_APP };
struct shared {
    _Atomic uint32_t hold, started;
    _Atomic uint32_t fail_mode, fail_pid, app_pid, fails;
    _Atomic uint32_t cb_hold, cb_entered, cb_pid;
};
static struct shared *S;

static int h_block(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)o, (void)j;
    gate_wait(&S->hold, &S->started);
    return 0;
}

/* The fault hook, run in the supervisor: fails the watches chosen by S. */
static bool fail_watch(pid_t pid)
{
    uint32_t mode = atomic_load(&S->fail_mode);
    bool fail = (mode == FAIL_PID && (uint32_t)pid == atomic_load(&S->fail_pid)) ||
                (mode == FAIL_ALL_BUT_APP && (uint32_t)pid != atomic_load(&S->app_pid));
    if (fail) atomic_fetch_add(&S->fails, 1);
    return fail;
}

static void set_faults(uint32_t mode, uint32_t pid)
{
    atomic_store(&S->fail_pid, pid);
    atomic_store(&S->fail_mode, mode);
    atomic_store(&S->fails, 0);
}

/* Every watch of one attached caller fails, again and again past the
 * housekeeping looks: it is not reaped, and its calls work; once its
 * watches work again and it dies, it is reaped. */
static void failed_caller_watch_is_not_a_death(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    fixture_config(&f, &cfg, "s", "cw");
    cfg.min = cfg.max = 1;
    fixture_start(&f, &cfg, 1);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t child = fork();
    if (child == 0) {
        set_faults(FAIL_PID, (uint32_t)getpid()); /* before the supervisor sees us */
        ember_client *c;
        if (ember_attach(f.name, &c)) _exit(1);
        /* calls until the housekeeping look has come round three times
         * (the first may have begun before the attach) */
        struct ember_shm_header *h = ember__client_view(c)->hdr;
        uint32_t s0 = atomic_load_explicit(&h->sup_scans, memory_order_relaxed);
        uint64_t x = 7, hang = ember__now_ns() + 10 * EMBER_SECOND;
        while (atomic_load_explicit(&h->sup_scans, memory_order_relaxed) - s0 < 3) {
            if (ember__now_ns() > hang) _exit(4);
            ember_result r;
            int rc = ember_call(c, ember_handler(c, "echo"), &x, sizeof x, &r, EMBER_SECOND);
            ember_result_release(c, &r);
            if (rc) _exit(2);
        }
        if (write(pfd[1], "k", 1) != 1) _exit(3);
        for (;;) pause(); /* killed below */
    }
    close(pfd[1]);
    char k = 0;
    assert_int_equal(read(pfd[0], &k, 1), 1); /* all its calls worked */
    assert_true(atomic_load(&S->fails) >= 2);  /* its watch failed, and again after */
    ember_stats s;
    ember_stats_read(f.c, &s, NULL, 0);
    assert_int_equal(s.callers, 2);
    assert_int_equal(s.callers_reaped, 0);
    set_faults(FAIL_NONE, 0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    assert_true(await_reaped(f.c, 0, 10000));
    ember_stats_read(f.c, &s, NULL, 0);
    assert_int_equal(s.callers_reaped, 1);
    assert_int_equal(s.callers, 1);
    close(pfd[0]);
    fixture_stop(&f);
}

/* Every watch of every runner fails: the supervisor does not block on a
 * live runner (it waits for none), boots what a resize asks, serves, and
 * finds a runner killed meanwhile by looking at it. */
static void failed_runner_watches_do_not_block(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    fixture_config(&f, &cfg, "s", "rw");
    cfg.min = 1;
    cfg.max = 3;
    atomic_store(&S->app_pid, (uint32_t)getpid());
    set_faults(FAIL_ALL_BUT_APP, 0);
    fixture_start(&f, &cfg, 1);
    assert_int_equal(ember_pool_resize(f.pool, 3, 3), 0);
    assert_int_equal(ember_pool_wait_ready(f.pool, 3, 10 * EMBER_SECOND), 0);
    assert_true(atomic_load(&S->fails) >= 3);
    uint64_t x = 5;
    ember_result r;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "echo"), &x, sizeof x, &r, 5 * EMBER_SECOND), 0);
    ember_result_release(f.c, &r);
    /* a runner dies while nothing watches it: found, and replaced */
    struct ember__view *v = ember__pool_view(f.pool);
    pid_t victim = (pid_t)atomic_load(&v->runners[0].pid);
    assert_true(victim > 0);
    kill(victim, SIGKILL);
    ember_stats s;
    struct pool_wait w = pool_wait_start(f.c, 10000);
    do ember_stats_read(f.c, &s, NULL, 0);
    while (!(s.runners_died == 1 && s.ready == 3) && pool_wait_next(&w));
    assert_int_equal(s.runners_died, 1);
    assert_int_equal(s.ready, 3);
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "echo"), &x, sizeof x, &r, 5 * EMBER_SECOND), 0);
    ember_result_release(f.c, &r);
    set_faults(FAIL_NONE, 0);
    fixture_stop(&f);
}

/* Lowest descriptor number free in this process. */
static int lowest_free_fd(void)
{
    int fd = 0;
    while (fcntl(fd, F_GETFD) >= 0) fd++;
    return fd;
}

/* A supervisor that cannot start (no descriptor left for its liveness
 * lock) is reported with its exit status and what it means. */
static void supervisor_start_failure_says_why(void **st)
{
    (void)st;
    struct ember_pool_config cfg;
    struct fixture f;
    fixture_config(&f, &cfg, "s", "sf");
    cfg.min = 0;
    struct rlimit old, tight;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    /* the application opens and keeps two (the segment, for payload
     * space; its starting lock); the supervisor inherits them, opens its
     * signalfd, then finds no room for its own lock */
    tight = (struct rlimit){ (rlim_t)lowest_free_fd() + 3, old.rlim_max };
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
    ember_pool *p = NULL;
    int rc = ember_pool_start(&cfg, &p);
    char msg[256];
    snprintf(msg, sizeof msg, "%s", ember_last_error());
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, -EMBER_EBOOT);
    assert_null(p);
    assert_non_null(strstr(msg, "did not start: exit status 74 (supervisor: cannot take the "
                                "segment's liveness lock"));
    ember_client *c;
    assert_int_equal(ember_attach(f.name, &c), -EMBER_ENOPOOL); /* nothing left behind */
}

/* Await the end of process PIDFD (bounded): true once it has exited. */
static bool await_exit(int pidfd)
{
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    return poll(&p, 1, 5000) == 1;
}

/* The supervisor is SIGKILLed and this process, its parent, does not reap
 * it: the pool is gone at once for attach, and its name starts again. */
static void unreaped_dead_supervisor_frees_its_name(void **st)
{
    (void)st;
    struct fixture f, g;
    struct ember_pool_config cfg;
    fixture_config(&f, &cfg, "s", "zombie");
    cfg.min = cfg.max = 1;
    fixture_start(&f, &cfg, 1);
    pid_t sup = ember_pool_supervisor_pid(f.pool);
    int pidfd = ember__pidfd_open(sup);
    assert_true(pidfd >= 0);
    kill(sup, SIGKILL);
    assert_true(await_exit(pidfd));
    /* a zombie: still there with its pid, not reaped */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    assert_int_equal(waitid(P_PID, (id_t)sup, &si, WEXITED | WNOHANG | WNOWAIT), 0);
    assert_int_equal(si.si_pid, sup);
    ember_client *c;
    assert_int_equal(ember_attach(f.name, &c), -EMBER_ENOPOOL);
    assert_non_null(strstr(ember_last_error(), "has ended"));
    /* the same name, at once */
    g = f;
    g.c = NULL;
    fixture_start(&g, &cfg, 1);
    uint64_t x = 9;
    ember_result r;
    assert_int_equal(ember_call(g.c, ember_handler(g.c, "echo"), &x, sizeof x, &r, 5 * EMBER_SECOND), 0);
    ember_result_release(g.c, &r);
    /* the old handle: reaps its supervisor, says how it ended, and leaves
     * the new pool's name alone */
    ember_detach(f.c);
    assert_int_equal(ember_pool_stop(f.pool, 0), -EMBER_EPOOLDOWN);
    assert_non_null(strstr(ember_last_error(), "killed by signal 9"));
    assert_int_equal(ember_attach(g.name, &c), 0);
    ember_detach(c);
    close(pidfd);
    fixture_stop(&g);
    assert_int_equal(ember_attach(g.name, &c), -EMBER_ENOPOOL);
}

/* A runner holds the supervisor's lock description from its fork until
 * its first act closes it: a supervisor killed in between leaves the lock
 * held by a process that is about to let go. This thread is that process:
 * it holds the lock byte on a description of its own and closes it 200 ms
 * later, as a runner that the scheduler left waiting that long would. */
struct late_holder { int fd; };
static void *let_go_late(void *arg)
{
    struct late_holder *lh = arg;
    struct timespec ts = { 0, 200000000 }; /* the forked runner not yet scheduled */
    nanosleep(&ts, NULL);
    close(lh->fd);
    return NULL;
}

/* Pool F (CFG, name tagged TAG, one runner) with its supervisor SIGKILLed
 * and left unreaped, its lock byte held by *LH as a late runner would.
 * Returns a pidfd of the dead supervisor. */
static int dead_pool_lock_held(struct fixture *f, struct ember_pool_config *cfg, const char *tag,
                               struct late_holder *lh)
{
    fixture_config(f, cfg, "s", tag);
    cfg->min = cfg->max = 1;
    fixture_start(f, cfg, 1);
    char shm[96];
    ember__shm_name(shm, sizeof shm, f->name);
    pid_t sup = ember_pool_supervisor_pid(f->pool);
    int pidfd = ember__pidfd_open(sup);
    assert_true(pidfd >= 0);
    kill(sup, SIGKILL);
    assert_true(await_exit(pidfd));
    lh->fd = shm_open(shm, O_RDWR | O_CLOEXEC, 0);
    assert_true(lh->fd >= 0);
    assert_int_equal(ember__ofd_lock(lh->fd, EMBER__LOCK_SUPERVISOR), 0);
    return pidfd;
}

static void dead_supervisors_lock_held_by_a_forked_runner_frees_its_name(void **st)
{
    (void)st;
    struct fixture f, g;
    struct ember_pool_config cfg;
    struct late_holder lh;
    int pidfd = dead_pool_lock_held(&f, &cfg, "fork", &lh);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, let_go_late, &lh), 0);
    /* the same name starts: the lock is no live supervisor's */
    g = f;
    g.c = NULL;
    fixture_start(&g, &cfg, 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    ember_detach(f.c);
    assert_int_equal(ember_pool_stop(f.pool, 0), -EMBER_EPOOLDOWN);
    close(pidfd);
    fixture_stop(&g);
}

/* Two applications start the same name at once over a dead pool's
 * segment whose lock a forked runner still holds: both wait for it to go,
 * and exactly one of them gets the name; the other is told another
 * process started it, and the name is the winner's pool. */
static void two_starts_over_a_dead_pool_make_one_pool(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    struct late_holder lh;
    int pidfd = dead_pool_lock_held(&f, &cfg, "two", &lh);
    /* two starters, each a process of its own that reports its start's
     * result and its supervisor's pid, then keeps its pool until told */
    int res[2], go[2];
    assert_int_equal(pipe(res), 0);
    assert_int_equal(pipe(go), 0);
    pid_t kid[2];
    for (int k = 0; k < 2; k++) {
        kid[k] = fork();
        if (kid[k] == 0) {
            close(res[0]), close(go[1]);
            close(lh.fd); /* the holder's description is the thread's alone */
            ember_pool *p = NULL;
            int rc = ember_pool_start(&cfg, &p);
            int32_t msg[2] = { rc, rc ? 0 : (int32_t)ember_pool_supervisor_pid(p) };
            if (write(res[1], msg, sizeof msg) != (ssize_t)sizeof msg) _exit(3);
            char c;
            if (read(go[0], &c, 1) < 0) _exit(3);
            if (!rc) ember_pool_stop(p, EMBER_SECOND);
            _exit(0);
        }
    }
    close(res[1]), close(go[0]);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, let_go_late, &lh), 0);
    int32_t got[2][2];
    for (int k = 0; k < 2; k++) assert_int_equal(read(res[0], got[k], sizeof got[k]), (ssize_t)sizeof got[k]);
    assert_int_equal(pthread_join(t, NULL), 0);
    int wins = (got[0][0] == 0) + (got[1][0] == 0);
    int loser = got[0][0] == 0 ? 1 : 0, winner = 1 - loser;
    print_message("starts: %s, %s\n", ember_errname(got[0][0]), ember_errname(got[1][0]));
    assert_int_equal(wins, 1);
    assert_int_equal(got[loser][0], -EMBER_EEXIST);
    /* the name is the winner's pool */
    ember_client *c;
    assert_int_equal(ember_attach(f.name, &c), 0);
    ember_stats s;
    assert_true(ember_stats_read(c, &s, NULL, 0) >= 0);
    assert_int_equal(s.supervisor_pid, got[winner][1]);
    ember_detach(c);
    close(go[1]);
    for (int k = 0; k < 2; k++) {
        int ws;
        assert_int_equal(waitpid(kid[k], &ws, 0), kid[k]);
        assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    }
    close(res[0]);
    ember_detach(f.c);
    assert_int_equal(ember_pool_stop(f.pool, 0), -EMBER_EPOOLDOWN);
    close(pidfd);
}

static void on_grow_start_blocks(const ember_event *ev, void *arg)
{
    (void)ev, (void)arg;
    atomic_store(&S->cb_pid, (uint32_t)getpid());
    bump(&S->cb_entered);
    while (atomic_load(&S->cb_hold)) ember__futex_wait(&S->cb_hold, 1, 0);
}

/* The first grow-start callback blocks until released: the pool still
 * boots a runner for a call, then another for a second call, and serves
 * both; the callback runs in this process. */
static void blocked_callback_holds_up_nothing(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    fixture_config(&f, &cfg, "s", "cb");
    cfg.min = 0;
    cfg.max = 2;
    cfg.on_grow_start = on_grow_start_blocks;
    atomic_store(&S->cb_hold, 1);
    atomic_store(&S->cb_entered, 0);
    fixture_start(&f, &cfg, 0);
    ember_call_id blk = gate_occupy(&f, &S->hold, &S->started); /* boots runner 1 */
    assert_true(await_count(&S->cb_entered, 1, 5000));          /* and the callback blocks */
    uint64_t x = 11;
    ember_result r;
    /* runner 1 is busy: this call boots runner 2 while the callback still blocks */
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "echo"), &x, sizeof x, &r, 10 * EMBER_SECOND), 0);
    ember_result_release(f.c, &r);
    assert_int_equal(atomic_load(&S->cb_entered), 1);
    assert_int_equal(atomic_load(&S->cb_pid), (uint32_t)getpid());
    gate_release(&S->hold);
    assert_int_equal(ember_wait(f.c, blk, &r), 0);
    ember_result_release(f.c, &r);
    /* released: the second grow start is delivered too */
    atomic_store(&S->cb_hold, 0);
    ember__futex_wake(&S->cb_hold, INT_MAX);
    assert_true(await_count(&S->cb_entered, 2, 5000));
    fixture_stop(&f);
}

int main(void)
{
    S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ember_handler_register("block", h_block);
    ember__test_fail_watch = fail_watch;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(failed_caller_watch_is_not_a_death),
        cmocka_unit_test(failed_runner_watches_do_not_block),
        cmocka_unit_test(supervisor_start_failure_says_why),
        cmocka_unit_test(unreaped_dead_supervisor_frees_its_name),
        cmocka_unit_test(dead_supervisors_lock_held_by_a_forked_runner_frees_its_name),
        cmocka_unit_test(two_starts_over_a_dead_pool_make_one_pool),
        cmocka_unit_test(blocked_callback_holds_up_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
