/* Description: a real pool end to end, on the back-end named by
 * EMBER_BACKEND (meson runs this file once per back-end): calls small and
 * large, many in flight, casts; a runner killed by a signal fails exactly
 * the call it ran (EMBER_ECRASHED with the signal) while queued calls run on
 * its replacement; a killed caller's queued calls never run and its slots
 * and pages come back, also when it died before announcing itself; a
 * caller the supervisor cannot watch yet (no fd left) is not reaped alive,
 * and a runner it cannot watch is a failed boot; a killed supervisor makes
 * waiting callers return EMBER_EPOOLDOWN and runners exit within 1 s; a deadline passing in the
 * queue; a pool stop that drains (new calls refused, queued ones failed,
 * running ones finish while their callers wait, or are killed at the
 * timeout, each with its own message, and the stop counts them); and every
 * bad input with its own error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "lib/testing.h"
#include "fixture.h"

struct shared { _Atomic uint32_t hold, started, marks; };
static struct shared *S;

static int h_block(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)o, (void)j;
    gate_wait(&S->hold, &S->started);
    return 0;
}
static int h_mark(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)o, (void)j;
    bump(&S->marks);
    return 0;
}
static int h_bigout(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)j;
    uint32_t len = 0;
    if (n == sizeof len) memcpy(&len, a, sizeof len);
    unsigned char *p = ember_out_reserve(o, len);
    if (!p) return 1;
    for (uint32_t i = 0; i < len; i++) p[i] = (unsigned char)(i * 7);
    return 0;
}
/* "deaf": ignores SIGTERM, then blocks like "block" */
static int h_deaf(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    signal(SIGTERM, SIG_IGN);
    return h_block(a, n, o, j);
}
/* "fail": writes LEN bytes of 'm' (its argument; 8 without one), its
 * message, then fails with 42 */
static int h_fail(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)j;
    uint32_t len = 8;
    if (n == sizeof len) memcpy(&len, a, sizeof len);
    unsigned char *p = ember_out_reserve(o, len);
    if (p) memset(p, 'm', len);
    return 42;
}

static void start(struct fixture *f, const char *tag, unsigned runners, unsigned conc, unsigned slots)
{
    struct ember_pool_config cfg;
    fixture_config(f, &cfg, "t", tag);
    cfg.min = cfg.max = runners;
    cfg.max_concurrency = conc;
    cfg.queue_capacity = slots;
    cfg.max_payload = 8u << 20;
    atomic_store(&S->hold, 0);
    atomic_store(&S->started, 0);
    atomic_store(&S->marks, 0);
    fixture_start(f, &cfg, runners);
}

static void backend_is_the_one_asked(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "be", 1, 1, 64);
    const char *want = getenv("EMBER_BACKEND");
    assert_string_equal(ember_pool_backend(f.pool), want && *want ? want : "uring");
    fixture_stop(&f);
}

static void calls_small_large_and_casts(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "calls", 2, 2, 256);
    ember_result r;
    uint64_t x = 0x1122334455667788ull;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "echo"), &x, sizeof x, &r, EMBER_TIMEOUT_DEFAULT), 0);
    assert_int_equal(r.len, sizeof x);
    assert_memory_equal(r.data, &x, sizeof x);
    ember_result_release(f.c, &r);
    /* 1 MiB of arguments through shared pages, echoed back */
    size_t big = 1u << 20;
    unsigned char *buf = malloc(big);
    for (size_t i = 0; i < big; i++) buf[i] = (unsigned char)(i * 13 + 1);
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "echo"), buf, big, &r, EMBER_TIMEOUT_DEFAULT), 0);
    assert_int_equal(r.len, big);
    assert_memory_equal(r.data, buf, big);
    ember_result_release(f.c, &r);
    /* a 5 MiB result grown in place by the handler */
    uint32_t len = 5u << 20;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "bigout"), &len, sizeof len, &r, EMBER_TIMEOUT_DEFAULT), 0);
    assert_int_equal(r.len, len);
    const unsigned char *p = r.data;
    for (uint32_t i = 0; i < len; i += 4093) assert_int_equal(p[i], (unsigned char)(i * 7));
    ember_result_release(f.c, &r);
    assert_int_equal(used_pages(f.c), 0);
    /* a handler's own error, with what it wrote (its message), inline and
     * in pages, the pages back once released */
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "fail"), NULL, 0, &r, EMBER_TIMEOUT_DEFAULT), -EMBER_EHANDLER);
    assert_int_equal(r.detail, 42);
    assert_int_equal(r.len, 8);
    assert_memory_equal(r.data, "mmmmmmmm", 8);
    assert_non_null(strstr(ember_last_error(), "the handler returned 42: mmmmmmmm"));
    ember_result_release(f.c, &r);
    len = 1u << 20;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "fail"), &len, sizeof len, &r, EMBER_TIMEOUT_DEFAULT),
                     -EMBER_EHANDLER);
    assert_int_equal(r.len, len);
    assert_int_equal(((const unsigned char *)r.data)[len - 1], 'm');
    ember_result_release(f.c, &r);
    assert_int_equal(used_pages(f.c), 0);
    /* many in flight from one thread, collected in reverse order */
    ember_call_id ids[200];
    for (uint64_t i = 0; i < 200; i++)
        assert_int_equal(ember_submit(f.c, ember_handler(f.c, "echo"), &i, sizeof i, EMBER_TIMEOUT_DEFAULT, &ids[i]), 0);
    for (int i = 199; i >= 0; i--) {
        assert_int_equal(ember_wait(f.c, ids[i], &r), 0);
        assert_int_equal(*(const uint64_t *)r.data, (uint64_t)i);
        ember_result_release(f.c, &r);
    }
    assert_int_equal(ember_wait(f.c, ids[0], &r), -EMBER_ESTALE);
    /* casts run with nobody waiting */
    for (int i = 0; i < 10; i++) assert_int_equal(ember_cast(f.c, ember_handler(f.c, "mark"), NULL, 0, EMBER_TIMEOUT_DEFAULT), 0);
    assert_true(await_count(&S->marks, 10, 5000));
    free(buf);
    fixture_stop(&f);
}

static void runner_crash_fails_exactly_its_call(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "crash", 1, 1, 64);
    uint32_t pid0 = atomic_load(&ember__client_view(f.c)->runners[0].pid);
    int sig = SIGSEGV;
    ember_call_id crash, q[3];
    assert_int_equal(ember_submit(f.c, ember_handler(f.c, "crash"), &sig, sizeof sig, EMBER_TIMEOUT_DEFAULT, &crash), 0);
    for (uint64_t i = 0; i < 3; i++)
        assert_int_equal(ember_submit(f.c, ember_handler(f.c, "echo"), &i, sizeof i, EMBER_TIMEOUT_DEFAULT, &q[i]), 0);
    ember_result r;
    assert_int_equal(ember_wait(f.c, crash, &r), -EMBER_ECRASHED);
    assert_int_equal(r.detail, SIGSEGV);
    assert_non_null(strstr(ember_last_error(), "killed by SIGSEGV"));
    for (uint64_t i = 0; i < 3; i++) { /* not started: run on the replacement */
        assert_int_equal(ember_wait(f.c, q[i], &r), 0);
        assert_int_equal(*(const uint64_t *)r.data, i);
        ember_result_release(f.c, &r);
    }
    assert_int_not_equal(atomic_load(&ember__client_view(f.c)->runners[0].pid), pid0);
    assert_int_equal(free_slots(f.c), 64);
    fixture_stop(&f);
}

/* With max_concurrency 2, a crash fails both calls the runner was running. */
static void runner_crash_fails_every_call_it_ran(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "crash2", 1, 2, 64);
    ember_call_id blk = gate_occupy(&f, &S->hold, &S->started);
    int sig = SIGKILL;
    ember_result r;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "crash"), &sig, sizeof sig, &r, EMBER_TIMEOUT_DEFAULT), -EMBER_ECRASHED);
    assert_int_equal(r.detail, SIGKILL);
    assert_int_equal(ember_wait(f.c, blk, &r), -EMBER_ECRASHED);
    assert_int_equal(r.detail, SIGKILL);
    gate_release(&S->hold);
    uint64_t x = 3; /* the replacement serves */
    assert_int_equal(ember_call(f.c, 1, &x, sizeof x, &r, EMBER_TIMEOUT_DEFAULT), 0);
    ember_result_release(f.c, &r);
    assert_int_equal(free_slots(f.c), 64);
    fixture_stop(&f);
}

static void dead_caller_queued_calls_never_run(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "dcall", 1, 1, 64);
    ember_call_id blk = gate_occupy(&f, &S->hold, &S->started);
    uint32_t reaped0 = atomic_load(&ember__client_view(f.c)->hdr->callers_reaped);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t child = fork();
    if (child == 0) {
        ember_client *c;
        if (ember_attach(f.name, &c)) _exit(1);
        static unsigned char args[100000];
        for (int i = 0; i < 5; i++) {
            ember_call_id id;
            if (ember_submit(c, ember_handler(c, "mark"), args, sizeof args, EMBER_TIMEOUT_DEFAULT, &id)) _exit(2);
        }
        if (write(pfd[1], "k", 1) != 1) _exit(3);
        pause();
        _exit(0);
    }
    char k;
    assert_int_equal(read(pfd[0], &k, 1), 1);
    assert_true(used_pages(f.c) > 0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    assert_true(await_reaped(f.c, reaped0, 5000));
    gate_release(&S->hold);
    ember_result r;
    assert_int_equal(ember_wait(f.c, blk, &r), 0);
    ember_result_release(f.c, &r);
    uint64_t x = 5; /* the runner has gone past the dead caller's stale entries */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(ember_call(f.c, ember_handler(f.c, "echo"), &x, sizeof x, &r, EMBER_TIMEOUT_DEFAULT), 0);
        ember_result_release(f.c, &r);
    }
    assert_int_equal(atomic_load(&S->marks), 0);
    assert_int_equal(free_slots(f.c), 64);
    assert_int_equal(used_pages(f.c), 0);
    close(pfd[0]);
    close(pfd[1]);
    fixture_stop(&f);
}

/* A caller killed after claiming its caller entry but before ringing the
 * doorbell is found by the supervisor's periodic check, and its entry freed. */
static void caller_dead_before_doorbell_is_reaped(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "nodb", 1, 1, 64);
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0); /* a pid that is certainly dead */
    struct ember_caller_ent *ce = &ember__client_view(f.c)->callers[ember__client_view(f.c)->ncallers - 1];
    uint32_t z = 0;
    assert_true(atomic_compare_exchange_strong(&ce->pid, &z, (uint32_t)child));
    atomic_fetch_add(&ce->gen, 1); /* claimed; no doorbell */
    struct pool_wait w = pool_wait_start(f.c, 3000);
    while (atomic_load(&ce->pid) != 0 && pool_wait_next(&w)) {}
    assert_int_equal(atomic_load(&ce->pid), 0);
    fixture_stop(&f);
}

/* The lowest fd number process PID has free. */
static int lowest_free_fd(pid_t pid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    bool used[1024] = { false };
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) < 1024) used[atoi(e->d_name)] = true;
    closedir(d);
    int fd = 0;
    while (fd < 1024 && used[fd]) fd++;
    return fd;
}

/* A caller the supervisor cannot watch yet (it has no fd left for the
 * caller's pidfd) is not taken for dead: its calls work across the
 * supervisor's periodic scans. Once the supervisor has fds again it
 * watches the caller, and reaps it when it dies. */
static void caller_not_watchable_yet_is_not_reaped(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "nofd", 1, 1, 64);
    pid_t sup = ember_pool_supervisor_pid(f.pool);
    struct rlimit old, tight;
    assert_int_equal(prlimit(sup, RLIMIT_NOFILE, NULL, &old), 0);
    tight = (struct rlimit){ (rlim_t)lowest_free_fd(sup), old.rlim_max };
    assert_int_equal(prlimit(sup, RLIMIT_NOFILE, &tight, NULL), 0);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t child = fork();
    if (child == 0) { /* attached while the supervisor cannot open its pidfd */
        ember_client *c;
        if (ember_attach(f.name, &c)) _exit(1);
        /* calls until the supervisor's periodic scan has come round twice
         * (the first may have begun before the attach) */
        struct ember_shm_header *h = ember__client_view(c)->hdr;
        uint32_t s0 = atomic_load_explicit(&h->sup_scans, memory_order_relaxed);
        uint64_t x = 7, hang = ember__now_ns() + 10 * EMBER_SECOND;
        while (atomic_load_explicit(&h->sup_scans, memory_order_relaxed) - s0 < 2) {
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
    assert_int_equal(read(pfd[0], &k, 1), 1); /* its calls all worked */
    ember_stats s;
    ember_stats_read(f.c, &s, NULL, 0);
    assert_int_equal(s.callers, 2);
    assert_int_equal(s.callers_reaped, 0);
    assert_int_equal(prlimit(sup, RLIMIT_NOFILE, &old, NULL), 0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    assert_true(await_reaped(f.c, 0, 5000));
    ember_stats_read(f.c, &s, NULL, 0);
    assert_int_equal(s.callers_reaped, 1);
    assert_int_equal(s.callers, 1);
    close(pfd[0]);
    fixture_stop(&f);
}

/* A runner the supervisor cannot watch (no fd left for its pidfd) is
 * killed and counted as a failed boot, with the cause in its event; once
 * the supervisor has fds again, the next boot serves the call. */
static void runner_not_watchable_is_a_failed_boot(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    fixture_config(&f, &cfg, "t", "nofdr");
    cfg.min = 0;
    cfg.max = 1;
    fixture_start(&f, &cfg, 0);
    pid_t sup = ember_pool_supervisor_pid(f.pool);
    struct rlimit old, tight;
    assert_int_equal(prlimit(sup, RLIMIT_NOFILE, NULL, &old), 0);
    tight = (struct rlimit){ (rlim_t)lowest_free_fd(sup), old.rlim_max };
    assert_int_equal(prlimit(sup, RLIMIT_NOFILE, &tight, NULL), 0);
    uint64_t x = 3;
    ember_call_id id;
    assert_int_equal(ember_submit(f.c, ember_handler(f.c, "echo"), &x, sizeof x,
                                  10 * EMBER_SECOND, &id), 0);
    /* the first boot's end: failed, and why */
    struct pool_wait w = pool_wait_start(f.c, 5000);
    ember_event ev;
    bool failed = false;
    do {
        while (!failed && ember_events_read(f.c, &f.cursor, &ev, 1) == 1)
            failed = ev.type == EMBER_EV_GROW_END && !ev.ok;
    } while (!failed && pool_wait_next(&w));
    assert_true(failed);
    assert_non_null(strstr(ev.msg, "could not watch"));
    assert_int_equal(prlimit(sup, RLIMIT_NOFILE, &old, NULL), 0);
    ember_result r;
    assert_int_equal(ember_wait(f.c, id, &r), 0); /* a later boot serves it */
    assert_int_equal(r.len, sizeof x);
    ember_result_release(f.c, &r);
    fixture_stop(&f);
}

static void dead_supervisor_is_a_result(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "dsup", 2, 1, 64);
    ember_call_id blk = gate_occupy(&f, &S->hold, &S->started);
    int rfd[2];
    for (int i = 0; i < 2; i++) rfd[i] = ember__pidfd_open((pid_t)atomic_load(&ember__client_view(f.c)->runners[i].pid));
    kill(ember_pool_supervisor_pid(f.pool), SIGKILL);
    uint64_t t0 = ember__now_ns();
    ember_result r;
    assert_int_equal(ember_wait(f.c, blk, &r), -EMBER_EPOOLDOWN);
    assert_true(ember__now_ns() - t0 < 1000000000ull);
    for (int i = 0; i < 2; i++) {
        struct pollfd p = { .fd = rfd[i], .events = POLLIN };
        assert_int_equal(poll(&p, 1, 1000), 1); /* the runner exited */
        close(rfd[i]);
    }
    /* a new call is refused, not hung */
    uint64_t x = 1;
    assert_int_equal(ember_call(f.c, 1, &x, sizeof x, &r, 2000000000ll), -EMBER_EPOOLDOWN);
    gate_release(&S->hold);
    ember_detach(f.c);
    /* the stop reports the supervisor's end: killed, not stopped */
    assert_int_equal(ember_pool_stop(f.pool, 0), -EMBER_EPOOLDOWN);
    assert_non_null(strstr(ember_last_error(), "killed by signal 9"));
    ember_client *c;
    assert_int_equal(ember_attach(f.name, &c), -EMBER_ENOPOOL);
    char shm[96];
    ember__shm_name(shm, sizeof shm, f.name);
    assert_int_equal(shm_open(shm, O_RDONLY, 0), -1); /* stop removed the stale name */
}

static void deadline_in_queue_never_runs(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "dl", 1, 1, 64);
    ember_call_id blk = gate_occupy(&f, &S->hold, &S->started);
    ember_result r;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "mark"), NULL, 0, &r, 50000000), -EMBER_ETIMEDOUT);
    assert_non_null(strstr(ember_last_error(), "queued"));
    gate_release(&S->hold);
    assert_int_equal(ember_wait(f.c, blk, &r), 0);
    ember_result_release(f.c, &r);
    uint64_t x = 1;
    assert_int_equal(ember_call(f.c, 1, &x, sizeof x, &r, EMBER_TIMEOUT_DEFAULT), 0);
    ember_result_release(f.c, &r);
    assert_int_equal(atomic_load(&S->marks), 0);
    fixture_stop(&f);
}

/* A caller in ember_wait on its own thread; TID is that thread's, DONE is
 * set once ember_wait has returned (and RC, DETAIL, MSG say how; read them
 * after pthread_join). Both seq_cst: TID is stored before ember_wait sets
 * EMBER_SLOT_WAITER on the call's slot word, so a thread that has seen that
 * bit reads it (await_caller_looks). */
struct waiter {
    ember_client *c; ember_call_id id; int rc, detail; char msg[256];
    _Atomic pid_t tid; _Atomic bool done;
};
static void *wait_thread(void *arg)
{
    struct waiter *w = arg;
    ember_result r;
    atomic_store(&w->tid, gettid());
    w->rc = ember_wait(w->c, w->id, &r);
    w->detail = r.detail;
    snprintf(w->msg, sizeof w->msg, "%s", w->rc ? ember_last_error() : "");
    ember_result_release(w->c, &r);
    atomic_store(&w->done, true);
    return NULL;
}

/* What the stop of the pool C is attached to did. */
static ember_stats stop_report(ember_client *c)
{
    ember_stats s;
    ember_stats_read(c, &s, NULL, 0);
    assert_int_equal(s.state, EMBER_POOL_DOWN);
    return s;
}

static void stop_fails_waiting_calls(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "stop", 1, 1, 64);
    struct waiter w = { .c = f.c, .id = gate_occupy(&f, &S->hold, &S->started) };
    pthread_t th;
    pthread_create(&th, NULL, wait_thread, &w);
    assert_int_equal(ember_pool_stop(f.pool, 200000000ll), 0);
    pthread_join(th, NULL);
    assert_int_equal(w.rc, -EMBER_EPOOLDOWN);
    gate_release(&S->hold);
    ember_detach(f.c);
    ember_client *c;
    assert_int_equal(ember_attach(f.name, &c), -EMBER_ENOPOOL);
}

struct stopper { ember_pool *pool; int64_t timeout; int rc; };
static void *stop_thread(void *arg)
{
    struct stopper *s = arg;
    s->rc = ember_pool_stop(s->pool, s->timeout);
    return NULL;
}

/* Wait until the pool seen by C is in STATE, at most MS milliseconds. */
static bool await_pool_state(ember_client *c, int state, unsigned ms)
{
    struct pool_wait w = pool_wait_start(c, ms);
    ember_stats s;
    do ember_stats_read(c, &s, NULL, 0);
    while (s.state != state && pool_wait_next(&w));
    return s.state == state;
}

/* How many times thread TID of this process has gone to sleep (its
 * voluntary context switches), or -1 once it has ended. */
static long sleeps_of(pid_t tid)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1) break;
    fclose(f);
    return n;
}

/* Wait until caller W, waiting for its call, has woken and looked at the
 * pool at least once from now on, or has stopped waiting (W->done); at most
 * MS milliseconds. The caller parks on its call's slot word (and says so
 * with EMBER_SLOT_WAITER); each time it wakes it looks at the pool, then
 * sleeps again, so two sleeps after it has announced itself have a look
 * between them. A futex wake on the word (a spurious wake-up, which its
 * wait loop allows) makes it look now rather than at its next 200 ms turn. */
static bool await_caller_looks(struct waiter *w, unsigned ms)
{
    _Atomic uint32_t *word = &ember__client_view(w->c)->slots[w->id.idx].state;
    uint64_t until = ember__now_ns() + ms * 1000000ull;
    struct timespec tick = { 0, 1000000 };
    while (!(atomic_load(word) & EMBER_SLOT_WAITER) && !atomic_load(&w->done)) {
        if (ember__now_ns() > until) return false;
        nanosleep(&tick, NULL);
    }
    pid_t tid = atomic_load(&w->tid); /* stored before it called ember_wait */
    long n0 = sleeps_of(tid);
    for (;;) {
        long n = sleeps_of(tid);
        if (atomic_load(&w->done) || n < 0 || n >= n0 + 2) return true;
        if (ember__now_ns() > until) return false;
        ember__futex_wake(word, INT_MAX);
        nanosleep(&tick, NULL);
    }
}

/* A stop drains: once it has begun, a new call fails at submit saying the
 * pool is stopping, a queued call fails at once saying it never ran, and a
 * running call whose caller waits meanwhile finishes with its own result
 * (the stop waits for it). */
static void stop_drains_running_calls(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "drain", 1, 1, 64);
    struct waiter running = { .c = f.c, .id = gate_occupy(&f, &S->hold, &S->started), .rc = 1 };
    struct waiter queued = { .c = f.c, .rc = 1 };
    assert_int_equal(ember_submit(f.c, ember_handler(f.c, "mark"), NULL, 0, EMBER_TIMEOUT_DEFAULT,
                                  &queued.id), 0);
    pthread_t tr, tq, ts;
    pthread_create(&tr, NULL, wait_thread, &running);
    struct stopper s = { f.pool, 30 * EMBER_SECOND, 1 };
    pthread_create(&ts, NULL, stop_thread, &s);
    assert_true(await_pool_state(f.c, EMBER_POOL_STOPPING, 5000));
    /* nothing new starts */
    ember_result r;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "mark"), NULL, 0, &r, EMBER_TIMEOUT_DEFAULT),
                     -EMBER_EPOOLDOWN);
    assert_non_null(strstr(ember_last_error(), "is stopping"));
    /* the queued call fails while the running one still runs */
    pthread_create(&tq, NULL, wait_thread, &queued);
    pthread_join(tq, NULL);
    assert_int_equal(queued.rc, -EMBER_EPOOLDOWN);
    assert_int_equal(queued.detail, EMBER_DOWN_QUEUED);
    assert_non_null(strstr(queued.msg, "never ran"));
    assert_int_equal(atomic_load(&S->marks), 0);
    /* the running call is not given up on: a poll says it runs on... */
    assert_int_equal(ember_poll(f.c, running.id, &r), -EMBER_EAGAIN);
    /* ...and its waiting caller, which looks at the pool each time it
     * wakes, sees it stopping and waits on */
    assert_true(await_caller_looks(&running, 5000));
    assert_false(atomic_load(&running.done)); /* it gave up on a running call */
    /* the running call has the stop's timeout to finish: it does, and its
     * caller, waiting all along, gets its result */
    gate_release(&S->hold);
    pthread_join(tr, NULL);
    assert_int_equal(running.rc, 0);
    pthread_join(ts, NULL);
    assert_int_equal(s.rc, 0);
    ember_stats rep = stop_report(f.c);
    assert_int_equal(rep.stop_finished, 1);
    assert_int_equal(rep.stop_killed, 0);
    assert_int_equal(rep.stop_never_ran, 1);
    ember_detach(f.c);
}

/* A runner that ignores SIGTERM is killed once the stop's timeout has passed,
 * not later; its caller gets EMBER_EPOOLDOWN. */
static void stop_timeout_kills_a_deaf_runner(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "deaf", 1, 1, 64);
    uint32_t before = atomic_load(&S->started);
    atomic_store(&S->hold, 1);
    struct waiter w = { .c = f.c };
    assert_int_equal(ember_submit(f.c, ember_handler(f.c, "deaf"), NULL, 0, EMBER_TIMEOUT_DEFAULT, &w.id), 0);
    assert_true(await_count(&S->started, before + 1, 5000));
    pthread_t th;
    pthread_create(&th, NULL, wait_thread, &w);
    uint64_t t0 = ember__now_ns();
    assert_int_equal(ember_pool_stop(f.pool, 200000000ll), 0);
    uint64_t took = ember__now_ns() - t0;
    pthread_join(th, NULL);
    assert_int_equal(w.rc, -EMBER_EPOOLDOWN);
    assert_true(took >= 200000000ull);  /* it had its grace */
    assert_true(took < 1500000000ull);  /* and no more than that, give or take */
    assert_int_equal(w.detail, EMBER_DOWN_KILLED);
    assert_non_null(strstr(w.msg, "runner was killed"));
    ember_stats rep = stop_report(f.c);
    assert_int_equal(rep.stop_finished, 0);
    assert_int_equal(rep.stop_killed, 1);
    assert_int_equal(rep.stop_never_ran, 0);
    gate_release(&S->hold);
    ember_detach(f.c);
}

static void write_fake_segment(const char *name, uint64_t magic, uint32_t abi, uid_t owner)
{
    char shm[96];
    ember__shm_name(shm, sizeof shm, name);
    int fd = shm_open(shm, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    struct ember_shm_header h = { 0 };
    h.magic = magic;
    h.abi_version = abi;
    h.header_size = sizeof h;
    h.segment_size = 1 << 20;
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    assert_int_equal(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    if (owner != getuid()) assert_int_equal(fchown(fd, owner, (gid_t)-1), 0);
    close(fd);
}

static void set_max_zero(struct ember_pool_config *c) { c->max = 0; }
static void set_min_above_max(struct ember_pool_config *c) { c->min = 3, c->max = 2; }
static void set_conc_zero(struct ember_pool_config *c) { c->max_concurrency = 0; }
static void set_queue_one(struct ember_pool_config *c) { c->queue_capacity = 1; }
static void set_timeout_zero(struct ember_pool_config *c) { c->timeout_ns = 0; }
static void set_boot_timeout_zero(struct ember_pool_config *c) { c->boot_timeout_ns = 0; }
static void set_shutdown_timeout_zero(struct ember_pool_config *c) { c->shutdown_timeout_ns = 0; }
static void set_idle_zero(struct ember_pool_config *c) { c->idle_shutdown_after_ns = 0; }
static void set_grace_negative(struct ember_pool_config *c) { c->kill_grace_ns = -1; }
static void set_limit_below_max(struct ember_pool_config *c) { c->max = 4, c->max_limit = 2; }

/* EXPR fails with CODE and leaves a message saying why. */
#define FAILS(code, expr)                                                                      \
    do {                                                                                       \
        ember__errbuf_ptr()[0] = 0;                                                            \
        assert_int_equal((expr), (code));                                                      \
        if (!ember_last_error()[0]) fail_msg("%s: no ember_last_error()", #expr);              \
    } while (0)

static void bad_inputs_each_have_their_error(void **st)
{
    (void)st;
    ember_client *c;
    char name[40];
    snprintf(name, sizeof name, "nope-%d", (int)getpid());
    FAILS(-EMBER_ENOPOOL, ember_attach(name, &c));
    assert_non_null(strstr(ember_last_error(), name));
    FAILS(-EMBER_EINVAL, ember_attach("../etc", &c));
    write_fake_segment(name, EMBER_MAGIC, EMBER_ABI_VERSION + 1, getuid());
    FAILS(-EMBER_EABI, ember_attach(name, &c));
    write_fake_segment(name, 0x1234, EMBER_ABI_VERSION, getuid());
    FAILS(-EMBER_ECORRUPT, ember_attach(name, &c));
    /* a segment a start is still making (its header without pool_state
     * yet, or not even sized) is a pool not yet running */
    write_fake_segment(name, EMBER_MAGIC, EMBER_ABI_VERSION, getuid());
    FAILS(-EMBER_ENOPOOL, ember_attach(name, &c));
    {
        char shm[96];
        ember__shm_name(shm, sizeof shm, name);
        int fd = shm_open(shm, O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 0), 0);
        close(fd);
        FAILS(-EMBER_ENOPOOL, ember_attach(name, &c));
    }
    if (getuid() == 0) {
        write_fake_segment(name, EMBER_MAGIC, EMBER_ABI_VERSION, 12345);
        FAILS(-EMBER_EOWNER, ember_attach(name, &c));
        assert_non_null(strstr(ember_last_error(), "12345"));
    }
    ember__shm_unlink(name);

    struct ember_pool_config cfg;
    ember_pool_config_init(&cfg);
    ember_pool *p;
    cfg.name = "ok";
    /* each invalid option is refused, and the message names it */
    static const struct { const char *opt; void (*set)(struct ember_pool_config *); } bad[] = {
        { "option max:", set_max_zero },
        { "option min:", set_min_above_max },
        { "option max_concurrency:", set_conc_zero },
        { "option queue_capacity:", set_queue_one },
        { "option timeout:", set_timeout_zero },
        { "option boot_timeout:", set_boot_timeout_zero },
        { "option shutdown_timeout:", set_shutdown_timeout_zero },
        { "option idle_shutdown_after:", set_idle_zero },
        { "option kill_grace:", set_grace_negative },
        { "option max_limit:", set_limit_below_max },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct ember_pool_config b = cfg;
        bad[i].set(&b);
        FAILS(-EMBER_EINVAL, ember_pool_start(&b, &p));
        if (!strstr(ember_last_error(), bad[i].opt))
            fail_msg("'%s' does not name %s", ember_last_error(), bad[i].opt);
    }
    cfg.min = cfg.max = 1;

    struct fixture f;
    start(&f, "bad", 1, 1, 2);
    cfg.name = f.name;
    cfg.queue_capacity = 64;
    FAILS(-EMBER_EEXIST, ember_pool_start(&cfg, &p));
    FAILS(-EMBER_ENOHANDLER, ember_handler(f.c, "no-such"));
    assert_non_null(strstr(ember_last_error(), "no-such"));
    ember_result r;
    FAILS(-EMBER_ENOHANDLER, ember_call(f.c, 999, NULL, 0, &r, EMBER_TIMEOUT_DEFAULT));
    size_t too = ember_max_payload(f.c) + 1;
    void *big = calloc(1, too);
    FAILS(-EMBER_ETOOBIG, ember_call(f.c, 1, big, too, &r, EMBER_TIMEOUT_DEFAULT));
    free(big);
    /* full queue with no time left: both slots held by blocked calls */
    atomic_store(&S->hold, 1);
    ember_call_id a, b;
    assert_int_equal(ember_submit(f.c, ember_handler(f.c, "block"), NULL, 0, EMBER_TIMEOUT_DEFAULT, &a), 0);
    assert_int_equal(ember_submit(f.c, ember_handler(f.c, "block"), NULL, 0, EMBER_TIMEOUT_DEFAULT, &b), 0);
    FAILS(-EMBER_EFULL, ember_call(f.c, 1, NULL, 0, &r, 0));
    FAILS(-EMBER_EAGAIN, ember_poll(f.c, a, &r)); /* held: not done */
    gate_release(&S->hold);
    assert_int_equal(ember_wait(f.c, a, &r), 0);
    ember_result_release(f.c, &r);
    assert_int_equal(ember_wait(f.c, b, &r), 0);
    ember_result_release(f.c, &r);
    /* a collected call's id is stale for every call that takes one */
    FAILS(-EMBER_ESTALE, ember_wait(f.c, a, &r));
    FAILS(-EMBER_ESTALE, ember_poll(f.c, b, &r));
    FAILS(-EMBER_ESTALE, ember_cancel(f.c, a));
    FAILS(-EMBER_EINVAL, ember_submit_flags(f.c, 1, NULL, 0, EMBER_TIMEOUT_DEFAULT, 0x80, &a));
    FAILS(-EMBER_EINVAL, ember_resize(f.c, 2, 1));
    /* every code has its own name and text */
    assert_string_equal(ember_errname(-EMBER_EFULL), "EMBER_EFULL");
    assert_string_not_equal(ember_strerror(-EMBER_EFULL), ember_strerror(-EMBER_ETIMEDOUT));
    fixture_stop(&f);
}

int main(void)
{
    S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ember_handler_register("block", h_block);
    ember_handler_register("mark", h_mark);
    ember_handler_register("crash", h_raise);
    ember_handler_register("bigout", h_bigout);
    ember_handler_register("fail", h_fail);
    ember_handler_register("deaf", h_deaf);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backend_is_the_one_asked),
        cmocka_unit_test(calls_small_large_and_casts),
        cmocka_unit_test(runner_crash_fails_exactly_its_call),
        cmocka_unit_test(runner_crash_fails_every_call_it_ran),
        cmocka_unit_test(dead_caller_queued_calls_never_run),
        cmocka_unit_test(caller_dead_before_doorbell_is_reaped),
        cmocka_unit_test(caller_not_watchable_yet_is_not_reaped),
        cmocka_unit_test(runner_not_watchable_is_a_failed_boot),
        cmocka_unit_test(dead_supervisor_is_a_result),
        cmocka_unit_test(deadline_in_queue_never_runs),
        cmocka_unit_test(stop_fails_waiting_calls),
        cmocka_unit_test(stop_drains_running_calls),
        cmocka_unit_test(stop_timeout_kills_a_deaf_runner),
        cmocka_unit_test(bad_inputs_each_have_their_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
