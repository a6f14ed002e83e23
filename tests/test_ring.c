/* Description: the crash-safe MPMC ring - FIFO order, full and empty, wrap
 * past many laps, helping past a producer or consumer that died between its
 * cell CAS and its counter CAS, and every value taken exactly once under
 * concurrent producers and consumers (run under TSan by tools/test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <cmocka.h>
#include "lib/testing.h"

struct ring_mem { struct ember__ring r; void *mem; };

static struct ring_mem make_ring(uint32_t cap)
{
    struct ring_mem m;
    m.mem = aligned_alloc(64, (ember__ring_bytes(cap) + 63) / 64 * 64);
    ember__ring_init((struct ember_ring_hdr *)m.mem, cap);
    m.r.h = m.mem;
    m.r.cell = (_Atomic uint64_t *)m.r.h->cells_start;
    m.r.cap = cap;
    m.r.mask = cap - 1;
    return m;
}

static void fifo_full_empty(void **st)
{
    (void)st;
    struct ring_mem m = make_ring(8);
    assert_int_equal(ember__ring_pop(&m.r), EMBER_NONE);
    assert_false(ember__ring_nonempty(&m.r));
    for (uint32_t i = 0; i < 8; i++) assert_int_equal(ember__ring_push(&m.r, i + 100), 0);
    assert_int_equal(ember__ring_push(&m.r, 999), -1); /* full */
    assert_true(ember__ring_nonempty(&m.r));
    for (uint32_t i = 0; i < 8; i++) assert_int_equal(ember__ring_pop(&m.r), i + 100);
    assert_int_equal(ember__ring_pop(&m.r), EMBER_NONE);
    free(m.mem);
}

static void wraps_many_laps(void **st)
{
    (void)st;
    struct ring_mem m = make_ring(4);
    for (uint32_t i = 0; i < 100000; i++) {
        assert_int_equal(ember__ring_push(&m.r, i), 0);
        assert_int_equal(ember__ring_push(&m.r, i ^ 0x5555), 0);
        assert_int_equal(ember__ring_pop(&m.r), i);
        assert_int_equal(ember__ring_pop(&m.r), i ^ 0x5555);
    }
    assert_int_equal(atomic_load(&m.r.h->head), 200000);
    free(m.mem);
}

/* A producer killed after publishing its cell but before moving tail: the
 * value is there for consumers and the next producer moves tail for it. */
static void helps_past_dead_producer(void **st)
{
    (void)st;
    struct ring_mem m = make_ring(8);
    uint64_t pos = atomic_load(&m.r.h->tail);
    atomic_store(&m.r.cell[pos & m.r.mask], ((uint64_t)(uint32_t)(pos + 1) << 32) | 42u);
    assert_int_equal(ember__ring_push(&m.r, 43), 0);
    assert_int_equal(atomic_load(&m.r.h->tail), 2);
    assert_int_equal(ember__ring_pop(&m.r), 42);
    assert_int_equal(ember__ring_pop(&m.r), 43);
    free(m.mem);
}

/* A consumer killed after taking its cell but before moving head: the next
 * consumer moves head for it and takes the following value. */
static void helps_past_dead_consumer(void **st)
{
    (void)st;
    struct ring_mem m = make_ring(8);
    ember__ring_push(&m.r, 1);
    ember__ring_push(&m.r, 2);
    atomic_store(&m.r.cell[0], (uint64_t)(uint32_t)(0 + 8) << 32); /* taken, head not moved */
    assert_int_equal(ember__ring_pop(&m.r), 2);
    assert_int_equal(atomic_load(&m.r.h->head), 2);
    /* and producers can use the freed cell on the next lap */
    for (uint32_t i = 0; i < 8; i++) assert_int_equal(ember__ring_push(&m.r, 10 + i), 0);
    assert_int_equal(ember__ring_push(&m.r, 99), -1);
    free(m.mem);
}

#define NPROD 3
#define NCONS 3
#define PER 50000
static struct ring_mem g_ring;
static _Atomic uint32_t g_seen[NPROD * PER];
static _Atomic int g_taken;

static void *producer(void *arg)
{
    uint32_t base = (uint32_t)(uintptr_t)arg * PER;
    for (uint32_t i = 0; i < PER; i++)
        while (ember__ring_push(&g_ring.r, base + i) < 0) sched_yield();
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    while (atomic_load(&g_taken) < NPROD * PER) {
        uint32_t v = ember__ring_pop(&g_ring.r);
        if (v == EMBER_NONE) { sched_yield(); continue; }
        atomic_fetch_add(&g_seen[v], 1);
        atomic_fetch_add(&g_taken, 1);
    }
    return NULL;
}

static void mpmc_exactly_once(void **st)
{
    (void)st;
    g_ring = make_ring(64);
    pthread_t p[NPROD], c[NCONS];
    for (int i = 0; i < NCONS; i++) pthread_create(&c[i], NULL, consumer, NULL);
    for (int i = 0; i < NPROD; i++) pthread_create(&p[i], NULL, producer, (void *)(uintptr_t)i);
    for (int i = 0; i < NPROD; i++) pthread_join(p[i], NULL);
    for (int i = 0; i < NCONS; i++) pthread_join(c[i], NULL);
    for (uint32_t i = 0; i < NPROD * PER; i++) assert_int_equal(atomic_load(&g_seen[i]), 1);
    assert_int_equal(ember__ring_pop(&g_ring.r), EMBER_NONE);
    free(g_ring.mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifo_full_empty),
        cmocka_unit_test(wraps_many_laps),
        cmocka_unit_test(helps_past_dead_producer),
        cmocka_unit_test(helps_past_dead_consumer),
        cmocka_unit_test(mpmc_exactly_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
