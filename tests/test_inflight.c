/* Description: many calls in flight, on a real pool (run once per back-end):
 * several clients racing for the few free slots of a small queue never see
 * each other's calls (no EMBER_ESTALE for a live call) and leave every slot
 * free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "lib/testing.h"
#include "fixture.h"

static uint32_t free_slots(ember_client *c)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < ember__client_view(c)->nslots; i++)
        n += ember__st(atomic_load(&ember__client_view(c)->slots[i].state)) == EMBER_SLOT_FREE;
    return n;
}

/* -- the claim race: 4 clients, 8 threads, 2 slots ------------------------ */

struct racer {
    ember_client *c;
    _Atomic uint32_t *stop;
    unsigned calls, stale, other;
    int other_rc;
};

static void *race_thread(void *arg)
{
    struct racer *r = arg;
    int h = ember_handler(r->c, "echo");
    while (!atomic_load(r->stop)) {
        char msg[16];
        int n = snprintf(msg, sizeof msg, "%u", r->calls);
        ember_result res;
        /* submit and wait: ember_wait checks that the call is this client's */
        ember_call_id id;
        int rc = ember_submit(r->c, h, msg, (size_t)n, 10 * EMBER_SECOND, &id);
        if (rc == 0) rc = ember_wait(r->c, id, &res);
        else memset(&res, 0, sizeof res);
        if (rc == 0 && (res.len != (size_t)n || memcmp(res.data, msg, (size_t)n) != 0))
            rc = -EMBER_ECORRUPT; /* somebody else's result */
        ember_result_release(r->c, &res);
        if (rc == -EMBER_ESTALE) r->stale++;
        else if (rc) r->other++, r->other_rc = rc;
        r->calls++;
    }
    return NULL;
}

static void claim_race_leaves_no_stale_call(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    fixture_config(&f, &cfg, "t", "claim");
    cfg.min = cfg.max = 2;
    cfg.queue_capacity = 2;
    fixture_start(&f, &cfg, 2);
    enum { CLIENTS = 4, THREADS = 8 };
    ember_client *c[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) assert_int_equal(ember_attach(f.name, &c[i]), 0);
    _Atomic uint32_t stop = 0;
    struct racer r[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        r[i] = (struct racer){ .c = c[i % CLIENTS], .stop = &stop };
        assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r[i]), 0);
    }
    /* a few seconds of contention: the race needs a losing claimer's stores
     * to land after the winner's, which takes many rounds on two CPUs */
    struct timespec ts = { 3, 0 };
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    unsigned calls = 0, stale = 0, other = 0;
    int other_rc = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        calls += r[i].calls, stale += r[i].stale, other += r[i].other;
        if (r[i].other) other_rc = r[i].other_rc;
    }
    print_message("%u calls, %u stale, %u other failures (%s)\n", calls, stale, other,
                  other ? ember_errname(other_rc) : "-");
    assert_true(calls > 1000);
    assert_int_equal(stale, 0);
    assert_int_equal(other, 0);
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
    struct ember_pool_config cfg;
    fixture_config(&f, &cfg, "t", "unowned");
    cfg.min = cfg.max = 1;
    cfg.queue_capacity = 4;
    fixture_start(&f, &cfg, 1);
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
    uint64_t until = ember__now_ns() + 10 * EMBER_SECOND;
    while (ember__st(atomic_load(&v->slots[0].state)) != EMBER_SLOT_FREE && ember__now_ns() < until)
        ember__futex_wait(&v->hdr->epoch, atomic_load(&v->hdr->epoch), ember__now_ns() + 50000000ull);
    assert_int_equal(ember__st(atomic_load(&v->slots[0].state)), EMBER_SLOT_FREE);
    assert_int_equal(free_slots(f.c), v->nslots);
    fixture_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(claim_race_leaves_no_stale_call),
        cmocka_unit_test(claim_of_a_dead_claimer_is_freed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
