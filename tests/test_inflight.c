/* Description: many calls in flight, on a real pool (run once per back-end):
 * several clients racing for the few free slots of a small queue never see
 * each other's calls (no EMBER_ESTALE for a live call) and leave every slot
 * free; a claimer killed mid-claim leaves no slot behind; ember_wait_any
 * returns calls in the order they end, ends calls at their deadline, never
 * returns a call ember_wait collected (also in the thread that submitted
 * the calls, which looks at its oldest call first), and with two threads waiting
 * collects every call exactly once; the completion fd is readable exactly
 * when there is something to collect (a result, a deadline, a dead
 * supervisor). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "lib/testing.h"
#include "fixture.h"

struct shared { _Atomic uint32_t open; };
static struct shared *S;

/* "gate": waits until S->open reaches its argument (a uint32_t), or until
 * cancelled; returns the argument */
static int h_gate(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    uint32_t k = 0;
    if (n == sizeof k) memcpy(&k, a, sizeof k);
    while (atomic_load(&S->open) < k && !ember_job_cancelled(j))
        ember__futex_wait(&S->open, atomic_load(&S->open), ember__now_ns() + 10000000ull);
    return ember_out_write(o, &k, sizeof k) ? 1 : 0;
}

static void gate_open(uint32_t k)
{
    atomic_store(&S->open, k);
    ember__futex_wake(&S->open, INT_MAX);
}

static ember_call_id submit_gate(ember_client *c, uint32_t k, int64_t timeout)
{
    ember_call_id id;
    assert_int_equal(ember_submit(c, ember_handler(c, "gate"), &k, sizeof k, timeout, &id), 0);
    return id;
}

/* Start a pool of RUNNERS runners and SLOTS slots (0: the fixture's), its
 * gates closed, and attach to it. */
static void start_pool(struct fixture *f, const char *tag, unsigned runners, unsigned slots)
{
    struct ember_pool_config cfg;
    fixture_config(f, &cfg, "t", tag);
    cfg.min = cfg.max = runners;
    if (slots) cfg.queue_capacity = slots;
    gate_open(0);
    fixture_start(f, &cfg, runners);
}

/* Calls queued in C's pool so far (by every client). */
static uint64_t accepted(ember_client *c)
{
    ember_metrics m;
    assert_true(ember_metrics_read(c, &m, NULL, 0) >= 0);
    return m.calls_accepted;
}

/* -- the claim race: 4 clients, 8 threads, 2 slots ------------------------ */

struct racer {
    ember_client *c;
    unsigned calls;            /* to make */
    unsigned ok, stale, other; /* how they ended */
    int other_rc;
};

static void *race_thread(void *arg)
{
    struct racer *r = arg;
    int h = ember_handler(r->c, "echo");
    for (unsigned k = 0; k < r->calls; k++) {
        char msg[16];
        int n = snprintf(msg, sizeof msg, "%u", k);
        ember_result res;
        /* submit and wait: ember_wait checks that the call is this client's */
        ember_call_id id;
        int rc = ember_submit(r->c, h, msg, (size_t)n, 10 * EMBER_SECOND, &id);
        if (rc == 0) rc = ember_wait(r->c, id, &res);
        else memset(&res, 0, sizeof res);
        if (rc == 0 && (res.len != (size_t)n || memcmp(res.data, msg, (size_t)n) != 0))
            rc = -EMBER_ECORRUPT; /* somebody else's result */
        ember_result_release(r->c, &res);
        if (rc == 0) r->ok++;
        else if (rc == -EMBER_ESTALE) r->stale++;
        else r->other++, r->other_rc = rc;
    }
    return NULL;
}

static void claim_race_leaves_no_stale_call(void **st)
{
    (void)st;
    struct fixture f;
    start_pool(&f, "claim", 2, 2);
    /* the race needs a losing claimer's stores to land after the winner's,
     * which takes many rounds on two CPUs: 320,000 calls, about 1.5 s on two
     * idle ones */
    enum { CLIENTS = 4, THREADS = 8, CALLS = 40000 };
    ember_client *c[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) assert_int_equal(ember_attach(f.name, &c[i]), 0);
    uint64_t before = accepted(f.c);
    struct racer r[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        r[i] = (struct racer){ .c = c[i % CLIENTS], .calls = CALLS };
        assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r[i]), 0);
    }
    unsigned ok = 0, stale = 0, other = 0;
    int other_rc = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ok += r[i].ok, stale += r[i].stale, other += r[i].other;
        if (r[i].other) other_rc = r[i].other_rc;
    }
    print_message("%u calls: %u ok, %u stale, %u other failures (%s)\n", THREADS * CALLS, ok, stale,
                  other, other ? ember_errname(other_rc) : "-");
    assert_int_equal(stale, 0);
    assert_int_equal(other, 0);
    /* every call came back with its own result, and the pool queued each once */
    assert_int_equal(ok, THREADS * CALLS);
    assert_int_equal(accepted(f.c) - before, (uint64_t)THREADS * CALLS);
    /* every slot is free again, with all clients still attached */
    assert_int_equal(free_slots(f.c), ember__client_view(f.c)->nslots);
    for (int i = 0; i < CLIENTS; i++) ember_detach(c[i]);
    assert_int_equal(free_slots(f.c), ember__client_view(f.c)->nslots);
    fixture_stop(&f);
}

/* A caller killed between its claim CAS and its owner store leaves a
 * CLAIMED slot that names nobody: the supervisor frees it (two looks a
 * second apart, after the caller's death). */
static void claim_of_a_dead_claimer_is_freed(void **st)
{
    (void)st;
    struct fixture f;
    start_pool(&f, "unowned", 1, 4);
    pid_t pid = fork();
    if (pid == 0) {
        ember_client *c;
        if (ember_attach(f.name, &c)) _exit(1);
        struct ember__view *v = ember__client_view(c);
        uint32_t w = atomic_load(&v->slots[0].state);
        if (ember__st(w) != EMBER_SLOT_FREE) _exit(2);
        /* the claim's CAS, and death before the owner store */
        uint32_t nw = ember__mk((ember__gen(w) + 1) & 0xffffu, EMBER_SLOT_CLAIMED);
        _exit(atomic_compare_exchange_strong(&v->slots[0].state, &w, nw) ? 0 : 3);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct ember__view *v = ember__client_view(f.c);
    assert_int_equal(ember__st(atomic_load(&v->slots[0].state)), EMBER_SLOT_CLAIMED);
    struct pool_wait w = pool_wait_start(f.c, 10000);
    while (ember__st(atomic_load(&v->slots[0].state)) != EMBER_SLOT_FREE && pool_wait_next(&w)) {}
    assert_int_equal(ember__st(atomic_load(&v->slots[0].state)), EMBER_SLOT_FREE);
    assert_int_equal(free_slots(f.c), v->nslots);
    fixture_stop(&f);
}

static void wait_any_returns_calls_as_they_end(void **st)
{
    (void)st;
    struct fixture f;
    start_pool(&f, "any", 3, 0);
    ember_call_id id[4], got;
    ember_result r;
    id[2] = submit_gate(f.c, 2, EMBER_NEVER);
    id[1] = submit_gate(f.c, 1, EMBER_NEVER);
    id[3] = submit_gate(f.c, 3, EMBER_NEVER);
    /* nothing has ended: a look says so, and a short wait too */
    assert_int_equal(ember_wait_any(f.c, 0, &got, &r), -EMBER_EAGAIN);
    assert_int_equal(got.idx, EMBER_NONE);
    for (uint32_t k = 1; k <= 3; k++) {
        gate_open(k);
        assert_int_equal(ember_wait_any(f.c, 10 * EMBER_SECOND, &got, &r), 0);
        assert_int_equal(r.status, 0);
        assert_int_equal(got.idx, id[k].idx);
        assert_int_equal(got.gen, id[k].gen);
        uint32_t v;
        assert_int_equal(r.len, sizeof v);
        memcpy(&v, r.data, sizeof v);
        assert_int_equal(v, k);
        ember_result_release(f.c, &r);
    }
    assert_int_equal(ember_wait_any(f.c, EMBER_NEVER, &got, &r), -EMBER_ENOCALLS);
    /* a call collected by ember_wait is not returned again */
    gate_open(4);
    ember_call_id a = submit_gate(f.c, 4, EMBER_NEVER);
    assert_int_equal(ember_wait(f.c, a, &r), 0);
    ember_result_release(f.c, &r);
    assert_int_equal(ember_wait_any(f.c, 0, &got, &r), -EMBER_ENOCALLS);
    fixture_stop(&f);
}

static void wait_any_ends_calls_at_their_deadline(void **st)
{
    (void)st;
    struct fixture f;
    start_pool(&f, "anydl", 1, 0);
    ember_call_id run = submit_gate(f.c, 9, 300 * 1000000ll);   /* runs, never opened */
    ember_call_id queued = submit_gate(f.c, 9, 200 * 1000000ll); /* never runs: one runner */
    ember_call_id got;
    ember_result r;
    bool seen_run = false, seen_queued = false;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ember_wait_any(f.c, EMBER_NEVER, &got, &r), 0);
        assert_int_equal(r.status, -EMBER_ETIMEDOUT);
        if (got.idx == run.idx) seen_run = true, assert_int_equal(r.detail, EMBER_TIMEOUT_RUNNING);
        if (got.idx == queued.idx) seen_queued = true, assert_int_equal(r.detail, EMBER_TIMEOUT_QUEUED);
        ember_result_release(f.c, &r);
    }
    assert_true(seen_run && seen_queued);
    assert_int_equal(ember_wait_any(f.c, 0, &got, &r), -EMBER_ENOCALLS);
    fixture_stop(&f);
}

/* ember_wait_any in the thread that submits: calls collected otherwise
 * (ember_wait) in between are never returned again, every other call is
 * returned once with its own result, over more calls than a thread's
 * record of its submissions holds, and after a run of calls collected only
 * by ember_wait has filled that record. */
static uint32_t echo_n(const ember_result *r)
{
    uint32_t n = UINT32_MAX;
    if (r->status == 0 && r->len == sizeof n) memcpy(&n, r->data, sizeof n);
    return n;
}

static void wait_any_in_the_submitting_thread_returns_each_call_once(void **st)
{
    (void)st;
    struct fixture f;
    start_pool(&f, "anyown", 2, 0);
    enum { CALLS = 3000, INFLIGHT = 32 };
    int h = ember_handler(f.c, "echo");
    uint8_t *seen = calloc(CALLS, 1);
    ember_call_id id, got;
    ember_result r;
    uint32_t inflight = 0;
    for (uint32_t n = 0; n < CALLS; n++) {
        if (inflight == INFLIGHT) {
            assert_int_equal(ember_wait_any(f.c, 10 * EMBER_SECOND, &got, &r), 0);
            uint32_t m = echo_n(&r);
            assert_true(m < CALLS && m % 5 != 0);
            assert_int_equal(seen[m]++, 0);
            ember_result_release(f.c, &r);
            inflight--;
        }
        assert_int_equal(ember_submit(f.c, h, &n, sizeof n, EMBER_NEVER, &id), 0);
        if (n % 5 == 0) { /* collected at once, by id */
            assert_int_equal(ember_wait(f.c, id, &r), 0);
            assert_int_equal(echo_n(&r), n);
            seen[n]++;
            ember_result_release(f.c, &r);
        } else {
            inflight++;
        }
    }
    while (ember_wait_any(f.c, 10 * EMBER_SECOND, &got, &r) == 0) {
        uint32_t m = echo_n(&r);
        assert_true(m < CALLS && m % 5 != 0);
        assert_int_equal(seen[m]++, 0);
        ember_result_release(f.c, &r);
    }
    for (uint32_t n = 0; n < CALLS; n++) assert_int_equal(seen[n], 1);
    /* 1100 calls collected by id only, then 10 for ember_wait_any */
    for (uint32_t n = 0; n < 1100; n++) {
        assert_int_equal(ember_submit(f.c, h, &n, sizeof n, EMBER_NEVER, &id), 0);
        assert_int_equal(ember_wait(f.c, id, &r), 0);
        ember_result_release(f.c, &r);
    }
    memset(seen, 0, CALLS);
    for (uint32_t n = 0; n < 10; n++)
        assert_int_equal(ember_submit(f.c, h, &n, sizeof n, EMBER_NEVER, &id), 0);
    for (uint32_t n = 0; n < 10; n++) {
        assert_int_equal(ember_wait_any(f.c, 10 * EMBER_SECOND, &got, &r), 0);
        uint32_t m = echo_n(&r);
        assert_true(m < 10);
        assert_int_equal(seen[m]++, 0);
        ember_result_release(f.c, &r);
    }
    assert_int_equal(ember_wait_any(f.c, 0, &got, &r), -EMBER_ENOCALLS);
    free(seen);
    assert_int_equal(free_slots(f.c), ember__client_view(f.c)->nslots);
    fixture_stop(&f);
}

/* Two threads wait on one client while a third keeps up to 32 calls in
 * flight: every call is collected once, by one of them. */
struct collector {
    ember_client *c;
    _Atomic uint32_t *collected, *done;
    uint8_t *seen;
    unsigned dup, bad;
};

static void *collect_thread(void *arg)
{
    struct collector *k = arg;
    for (;;) {
        ember_call_id id;
        ember_result r;
        bool last = atomic_load(k->done); /* read before: no call is submitted after it */
        int rc = ember_wait_any(k->c, 20 * 1000000ll, &id, &r);
        if (rc == -EMBER_ENOCALLS && last) break;
        if (rc == -EMBER_EAGAIN || rc == -EMBER_ENOCALLS) continue;
        uint32_t n = 0;
        if (rc || r.status || r.len != sizeof n) {
            k->bad++;
        } else {
            memcpy(&n, r.data, sizeof n);
            if (k->seen[n]++) k->dup++;
        }
        ember_result_release(k->c, &r);
        bump(k->collected);
    }
    return NULL;
}

static void wait_any_from_two_threads_collects_each_call_once(void **st)
{
    (void)st;
    struct fixture f;
    start_pool(&f, "any2", 2, 0);
    enum { CALLS = 3000, INFLIGHT = 32 };
    uint8_t *seen = calloc(CALLS, 1);
    _Atomic uint32_t collected = 0, done = 0;
    struct collector k[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        k[i] = (struct collector){ f.c, &collected, &done, seen, 0, 0 };
        pthread_create(&th[i], NULL, collect_thread, &k[i]);
    }
    int h = ember_handler(f.c, "echo");
    for (uint32_t n = 0; n < CALLS; n++) {
        if (n >= INFLIGHT) assert_true(await_count(&collected, n - INFLIGHT + 1, 10000));
        ember_call_id id;
        assert_int_equal(ember_submit(f.c, h, &n, sizeof n, EMBER_NEVER, &id), 0);
    }
    atomic_store(&done, 1);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    assert_int_equal(k[0].dup + k[1].dup, 0);
    assert_int_equal(k[0].bad + k[1].bad, 0);
    assert_int_equal(atomic_load(&collected), CALLS);
    for (uint32_t n = 0; n < CALLS; n++) assert_int_equal(seen[n], 1);
    free(seen);
    assert_int_equal(free_slots(f.c), ember__client_view(f.c)->nslots);
    fixture_stop(&f);
}

struct caller_thread {
    ember_client *c;
    int h;
    uint32_t calls, failed;
};

static void *call_thread(void *arg)
{
    struct caller_thread *t = arg;
    for (uint32_t n = 0; n < t->calls; n++) {
        ember_result r;
        if (ember_call(t->c, t->h, &n, sizeof n, &r, EMBER_NEVER) != 0) t->failed++;
        ember_result_release(t->c, &r);
    }
    return NULL;
}

/* More threads share a client than the caller entry has counters of their
 * own: every call is counted once, and a client attached again at the same
 * address counts on in its own entry. */
static void accepted_counts_every_call_of_many_threads(void **st)
{
    (void)st;
    struct fixture f;
    start_pool(&f, "acc", 2, 0);
    enum { THREADS = EMBER_SUBMIT_COUNTERS + 4, CALLS = 400 };
    uint64_t before = accepted(f.c);
    struct caller_thread t[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        t[i] = (struct caller_thread){ f.c, ember_handler(f.c, "echo"), CALLS, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, call_thread, &t[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].failed, 0);
    }
    assert_int_equal(accepted(f.c) - before, (uint64_t)THREADS * CALLS);
    /* this thread's cache names the first client: a second one must not
     * write the counter the cache names without owning it */
    ember_client *c2;
    assert_int_equal(ember_attach(f.name, &c2), 0);
    struct caller_thread one = { c2, ember_handler(c2, "echo"), CALLS, 0 };
    call_thread(&one);
    assert_int_equal(one.failed, 0);
    assert_int_equal(accepted(f.c) - before, (uint64_t)(THREADS + 1) * CALLS);
    ember_detach(c2);
    fixture_stop(&f);
}

static bool readable(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static void completion_fd_is_readable_when_a_call_ends(void **st)
{
    (void)st;
    struct fixture f;
    start_pool(&f, "anyfd", 2, 0);
    int fd = ember_completion_fd(f.c);
    if (fd == -EMBER_ENOSYS) skip(); /* io_uring refused here */
    assert_true(fd >= 0);
    assert_false(readable(fd, 0)); /* nothing in flight */
    ember_call_id a = submit_gate(f.c, 1, EMBER_NEVER), got;
    ember_result r;
    assert_false(readable(fd, 50));
    gate_open(1);
    assert_true(readable(fd, 10000));
    assert_int_equal(ember_wait_any(f.c, 0, &got, &r), 0);
    assert_int_equal(got.idx, a.idx);
    ember_result_release(f.c, &r);
    assert_int_equal(ember_wait_any(f.c, 0, &got, &r), -EMBER_ENOCALLS);
    /* a call that ends while nobody looks: readable; collected: quiet again */
    a = submit_gate(f.c, 1, EMBER_NEVER);
    assert_true(readable(fd, 10000));
    assert_int_equal(ember_wait_any(f.c, 0, &got, &r), 0);
    ember_result_release(f.c, &r);
    ember_call_id b = submit_gate(f.c, 5, EMBER_NEVER);
    assert_int_equal(ember_wait_any(f.c, 0, &got, &r), -EMBER_EAGAIN); /* re-arms */
    assert_false(readable(fd, 50));
    /* a deadline makes it readable */
    ember_call_id d = submit_gate(f.c, 5, 200 * 1000000ll);
    assert_int_equal(ember_wait_any(f.c, 0, &got, &r), -EMBER_EAGAIN);
    assert_true(readable(fd, 10000));
    assert_int_equal(ember_wait_any(f.c, 0, &got, &r), 0);
    assert_int_equal(got.idx, d.idx);
    assert_int_equal(r.status, -EMBER_ETIMEDOUT);
    ember_result_release(f.c, &r);
    assert_int_equal(ember_wait_any(f.c, 0, &got, &r), -EMBER_EAGAIN);
    /* a dead supervisor makes it readable, and the wait says so */
    kill(ember_pool_supervisor_pid(f.pool), SIGKILL);
    assert_true(readable(fd, 10000));
    assert_int_equal(ember_wait_any(f.c, 0, &got, &r), -EMBER_EPOOLDOWN);
    (void)b;
    ember_detach(f.c);
    ember_pool_stop(f.pool, 0);
}

int main(void)
{
    S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ember_handler_register("gate", h_gate);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wait_any_returns_calls_as_they_end),
        cmocka_unit_test(wait_any_ends_calls_at_their_deadline),
        cmocka_unit_test(wait_any_from_two_threads_collects_each_call_once),
        cmocka_unit_test(wait_any_in_the_submitting_thread_returns_each_call_once),
        cmocka_unit_test(accepted_counts_every_call_of_many_threads),
        cmocka_unit_test(completion_fd_is_readable_when_a_call_ends),
        cmocka_unit_test(claim_race_leaves_no_stale_call),
        cmocka_unit_test(claim_of_a_dead_claimer_is_freed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
