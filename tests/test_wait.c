/* Description: the slot state machine and waiting, in one process so TSan
 * sees every access - callers on several threads against workers
 * driving slots through QUEUED/RUNNING/DONE; a caller that parks is woken;
 * a deadline passing while queued frees the slot and the call never runs; a
 * deadline passing while running abandons the slot to its runner, which
 * frees it; a full queue with no time left is EMBER_EFULL; a slot a caller
 * keeps at hand after a release is taken by another caller that needs it;
 * callers spinning in numbers that fill the CPUs leave a worker spinning
 * for work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "lib/testing.h"

static struct ember__view V;
static char g_name[40];
static _Atomic int g_stop, g_ran, g_hold;
static _Atomic uint64_t g_delay_ns;

/* What a worker does with an entry, reduced to the state machine. */
static void *fake_runner(void *arg)
{
    (void)arg;
    while (!atomic_load(&g_stop)) {
        uint32_t e = ember__ring_pop(&V.run[0]);
        if (e == EMBER_NONE) { sched_yield(); continue; }
        uint32_t idx = e & 0xffffu, w;
        struct ember_slot *s = &V.slots[idx];
        if (!ember__slot_take(s, e >> 16, &w)) continue;
        s->runner = 0;
        if (ember__now_ns() >= s->deadline_ns) {
            ember__slot_finish(&V, idx, atomic_load(&s->state), -EMBER_ETIMEDOUT, 0);
            continue;
        }
        atomic_fetch_add(&g_ran, 1);
        uint64_t d = atomic_load(&g_delay_ns);
        if (d) {
            struct timespec ts = { 0, (long)d };
            nanosleep(&ts, NULL);
        }
        while (atomic_load(&g_hold)) sched_yield();
        s->res_len = s->args_len; /* echo, in place */
        ember__slot_finish(&V, idx, atomic_load(&s->state), 0, 0);
    }
    return NULL;
}

static int setup_pool(uint32_t slots)
{
    struct ember_pool_config cfg;
    ember_pool_config_init(&cfg);
    snprintf(g_name, sizeof g_name, "twait-%d", (int)getpid());
    cfg.name = g_name;
    cfg.min = cfg.max = cfg.max_limit = 1;
    cfg.queue_capacity = slots;
    cfg.max_payload = 1 << 16;
    ember__builtin_handlers();
    int rc = ember__segment_create(&cfg, &V);
    if (rc) return rc;
    /* this process plays the supervisor: its liveness lock, on a description
     * of its own (kept open until the process ends) */
    char shm[96];
    ember__shm_name(shm, sizeof shm, g_name);
    int fd = shm_open(shm, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0 || ember__ofd_lock(fd, EMBER__LOCK_SUPERVISOR) < 0) return -EMBER_ESYSTEM;
    V.hdr->sup_start_ticks = ember__proc_start_ticks(getpid());
    atomic_store(&V.hdr->sup_pid, (uint32_t)getpid());
    atomic_store(&V.hdr->pool_state, EMBER_POOL_RUNNING);
    return 0;
}

static void teardown_pool(void)
{
    ember__shm_unlink(g_name);
    munmap(V.base, V.size);
}

static uint32_t free_slots(void)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < V.nslots; i++) n += ember__st(atomic_load(&V.slots[i].state)) == EMBER_SLOT_FREE;
    return n;
}

struct caller_arg { ember_client *c; int h; int bad; };

static void *caller(void *arg)
{
    struct caller_arg *a = arg;
    for (uint64_t i = 0; i < 20000; i++) {
        ember_result r;
        uint64_t x = i * 2654435761u;
        int rc = ember_call(a->c, a->h, &x, sizeof x, &r, EMBER_TIMEOUT_DEFAULT);
        if (rc || r.len != sizeof x || memcmp(r.data, &x, sizeof x)) a->bad++;
        ember_result_release(a->c, &r);
    }
    return NULL;
}

static void many_callers_many_runners(void **st)
{
    (void)st;
    assert_int_equal(setup_pool(64), 0);
    ember_client *c;
    assert_int_equal(ember_attach(g_name, &c), 0);
    atomic_store(&g_stop, 0);
    pthread_t rt[2], ct[3];
    for (int i = 0; i < 2; i++) pthread_create(&rt[i], NULL, fake_runner, NULL);
    struct caller_arg a[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (struct caller_arg){ c, ember_handler(c, "echo"), 0 };
        pthread_create(&ct[i], NULL, caller, &a[i]);
    }
    for (int i = 0; i < 3; i++) pthread_join(ct[i], NULL);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(rt[i], NULL);
    for (int i = 0; i < 3; i++) assert_int_equal(a[i].bad, 0);
    assert_int_equal(free_slots(), 64);
    ember_detach(c);
    teardown_pool();
}

static void parked_caller_is_woken(void **st)
{
    (void)st;
    assert_int_equal(setup_pool(8), 0);
    ember_client *c;
    assert_int_equal(ember_attach(g_name, &c), 0);
    atomic_store(&g_stop, 0);
    atomic_store(&g_delay_ns, 80000000); /* 80 ms: past any spin budget */
    pthread_t rt;
    pthread_create(&rt, NULL, fake_runner, NULL);
    ember_result r;
    uint32_t x = 7;
    assert_int_equal(ember_call(c, 1, &x, sizeof x, &r, 5000000000ll), 0);
    assert_int_equal(r.len, sizeof x);
    ember_result_release(c, &r);
    atomic_store(&g_delay_ns, 0);
    atomic_store(&g_stop, 1);
    pthread_join(rt, NULL);
    ember_detach(c);
    teardown_pool();
}

static void deadline_in_queue_never_runs(void **st)
{
    (void)st;
    assert_int_equal(setup_pool(8), 0);
    ember_client *c;
    assert_int_equal(ember_attach(g_name, &c), 0);
    atomic_store(&g_ran, 0);
    ember_result r;
    uint32_t x = 1;
    /* no runner: the call stays queued past its 20 ms */
    assert_int_equal(ember_call(c, 1, &x, sizeof x, &r, 20000000), -EMBER_ETIMEDOUT);
    assert_int_equal(r.status, -EMBER_ETIMEDOUT);
    assert_int_equal(free_slots(), 8);
    /* a runner arriving later drops the stale entry without running it */
    atomic_store(&g_stop, 0);
    pthread_t rt;
    pthread_create(&rt, NULL, fake_runner, NULL);
    assert_int_equal(ember_call(c, 1, &x, sizeof x, &r, 5000000000ll), 0);
    ember_result_release(c, &r);
    atomic_store(&g_stop, 1);
    pthread_join(rt, NULL);
    assert_int_equal(atomic_load(&g_ran), 1);
    ember_detach(c);
    teardown_pool();
}

static void deadline_while_running_abandons(void **st)
{
    (void)st;
    assert_int_equal(setup_pool(8), 0);
    ember_client *c;
    assert_int_equal(ember_attach(g_name, &c), 0);
    atomic_store(&g_stop, 0);
    atomic_store(&g_hold, 1);
    atomic_store(&g_ran, 0);
    pthread_t rt;
    pthread_create(&rt, NULL, fake_runner, NULL);
    ember_result r;
    uint32_t x = 1;
    assert_int_equal(ember_call(c, 1, &x, sizeof x, &r, 50000000), -EMBER_ETIMEDOUT);
    assert_int_equal(atomic_load(&g_ran), 1);
    assert_int_equal(free_slots(), 7); /* still the runner's */
    atomic_store(&g_hold, 0);
    atomic_store(&g_stop, 1);
    pthread_join(rt, NULL);
    assert_int_equal(free_slots(), 8); /* the runner freed it */
    ember_detach(c);
    teardown_pool();
}

static void full_queue_no_time_left(void **st)
{
    (void)st;
    assert_int_equal(setup_pool(2), 0);
    ember_client *c;
    assert_int_equal(ember_attach(g_name, &c), 0);
    ember_call_id a, b, d;
    uint32_t x = 1;
    assert_int_equal(ember_submit(c, 1, &x, sizeof x, EMBER_NEVER, &a), 0);
    assert_int_equal(ember_submit(c, 1, &x, sizeof x, EMBER_NEVER, &b), 0);
    assert_int_equal(ember_submit(c, 1, &x, sizeof x, 0, &d), -EMBER_EFULL);
    assert_non_null(strstr(ember_last_error(), "slots"));
    ember_result r;
    assert_int_equal(ember_poll(c, a, &r), -EMBER_EAGAIN);
    ember_detach(c); /* gives both back */
    assert_int_equal(free_slots(), 2);
    teardown_pool();
}

/* A released slot that its caller keeps at hand (off the free ring) is
 * still there for everyone: a second caller that finds the ring empty takes
 * it, and a waiter is woken by a release. */
static void slots_kept_at_hand_are_shared(void **st)
{
    (void)st;
    assert_int_equal(setup_pool(2), 0);
    atomic_store(&g_stop, 0);
    pthread_t rt;
    pthread_create(&rt, NULL, fake_runner, NULL);
    ember_client *a, *b;
    assert_int_equal(ember_attach(g_name, &a), 0);
    assert_int_equal(ember_attach(g_name, &b), 0);
    uint32_t x = 7;
    ember_result r;
    /* A runs two calls: it ends holding one released slot at hand */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ember_call(a, 1, &x, sizeof x, &r, EMBER_TIMEOUT_DEFAULT), 0);
        ember_result_release(a, &r);
    }
    assert_int_not_equal(ember__client_hot(a), EMBER_NONE);
    /* B takes both slots, the one at A's hand included, without waiting */
    atomic_store(&g_hold, 1);
    ember_call_id i1, i2, i3;
    assert_int_equal(ember_submit(b, 1, &x, sizeof x, EMBER_NEVER, &i1), 0);
    assert_int_equal(ember_submit(b, 1, &x, sizeof x, EMBER_NEVER, &i2), 0);
    assert_int_equal(free_slots(), 0);
    /* A now has none: its call waits, and gets a slot when B releases one */
    atomic_store(&g_hold, 0);
    assert_int_equal(ember_wait(b, i1, &r), 0);
    ember_result_release(b, &r);
    assert_int_equal(ember_submit(a, 1, &x, sizeof x, 2000000000ll, &i3), 0);
    assert_int_equal(ember_wait(a, i3, &r), 0);
    ember_result_release(a, &r);
    assert_int_equal(ember_wait(b, i2, &r), 0);
    ember_result_release(b, &r);
    ember_detach(a);
    ember_detach(b);
    atomic_store(&g_stop, 1);
    pthread_join(rt, NULL);
    assert_int_equal(free_slots(), 2);
    /* and every free slot is back on the free ring */
    uint32_t n = 0, e;
    while ((e = ember__ring_pop(&V.free)) != EMBER_NONE) n++;
    assert_int_equal(n, 2);
    teardown_pool();
}

/* hdr.spin with CALLERS callers spinning for results and IDLE workers
 * spinning for work. */
static uint64_t spin_word(uint32_t callers, uint32_t idle)
{
    return (uint64_t)(EMBER_SPIN_BIAS + idle) << 32 | (EMBER_SPIN_BIAS + callers + idle);
}

/* Callers spinning in numbers that fill the CPUs (more callers than CPUs,
 * some counted while preempted) never push the last worker spinning for
 * work into parking: each of their calls would then need a wake-up. A
 * second worker still spins only while spinners do not outnumber CPUs. */
static void worker_spins_while_callers_fill_cpus(void **st)
{
    (void)st;
    const uint32_t ncpus = 2;
    assert_true(ember__worker_may_spin(spin_word(0, 0), ncpus));
    assert_true(ember__worker_may_spin(spin_word(1, 0), ncpus));
    assert_true(ember__worker_may_spin(spin_word(2, 0), ncpus));  /* callers fill both CPUs */
    assert_true(ember__worker_may_spin(spin_word(16, 0), ncpus)); /* 16 callers on one CPU */
    assert_true(ember__worker_may_spin(spin_word(0, 1), ncpus));  /* room for a second worker */
    assert_false(ember__worker_may_spin(spin_word(1, 1), ncpus)); /* one spins already, CPUs full */
    assert_false(ember__worker_may_spin(spin_word(16, 1), ncpus));
    assert_false(ember__worker_may_spin(spin_word(0, 2), ncpus));
    /* a count left below zero by crash repair counts as nobody */
    uint64_t low = (uint64_t)(EMBER_SPIN_BIAS - 1) << 32 | (EMBER_SPIN_BIAS + 3);
    assert_true(ember__worker_may_spin(low, ncpus));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_callers_many_runners),
        cmocka_unit_test(parked_caller_is_woken),
        cmocka_unit_test(deadline_in_queue_never_runs),
        cmocka_unit_test(deadline_while_running_abandons),
        cmocka_unit_test(full_queue_no_time_left),
        cmocka_unit_test(slots_kept_at_hand_are_shared),
        cmocka_unit_test(worker_spins_while_callers_fill_cpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
