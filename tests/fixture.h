/* tests/fixture.h - what the end-to-end tests share: a pool started for
 * one test and a client attached to it; the one loop every wait for a
 * state of the pool is written as, and the waits built on it; counters
 * other processes raise, and waiting for them; the parts of handlers that
 * several tests register (the gate, a cancel awaited, a signal raised).
 * Include after <cmocka.h> and lib/testing.h. */
#ifndef EMBER_TESTS_FIXTURE_H
#define EMBER_TESTS_FIXTURE_H

#include <signal.h>
#include <string.h>
#include <time.h>

struct fixture {
    ember_pool *pool;
    ember_client *c;
    char name[40];     /* the pool's: PREFIX TAG - pid */
    uint64_t cursor;   /* events read so far */
    int h;             /* the handler a test calls most */
};

/* Defaults for a test pool named PREFIX TAG-pid: a small queue, 64 KiB
 * payloads; the test changes what it needs, then fixture_start(). */
static inline void fixture_config(struct fixture *f, struct ember_pool_config *cfg,
                                  const char *prefix, const char *tag)
{
    ember_pool_config_init(cfg);
    snprintf(f->name, sizeof f->name, "%s%s-%d", prefix, tag, (int)getpid());
    cfg->name = f->name;
    cfg->queue_capacity = 64;
    cfg->max_payload = 1 << 16;
    f->cursor = 0;
    f->h = -1;
}

/* Start the pool, attach to it, and wait for READY runners (0: none). */
static inline void fixture_start(struct fixture *f, const struct ember_pool_config *cfg,
                                 unsigned ready)
{
    int rc = ember_pool_start(cfg, &f->pool);
    if (rc) fail_msg("pool start: %s: %s", ember_strerror(rc), ember_last_error());
    if (ready) assert_int_equal(ember_pool_wait_ready(f->pool, ready, 10 * EMBER_SECOND), 0);
    assert_int_equal(ember_attach(f->name, &f->c), 0);
}

static inline void fixture_stop(struct fixture *f)
{
    ember_detach(f->c);
    assert_int_equal(ember_pool_stop(f->pool, EMBER_SECOND), 0);
}

/* ---- what the pool holds now ---- */

/* The slots of C's pool that are FREE. */
static inline uint32_t free_slots(ember_client *c)
{
    struct ember__view *v = ember__client_view(c);
    uint32_t n = 0;
    for (uint32_t i = 0; i < v->nslots; i++)
        n += ember__st(atomic_load(&v->slots[i].state)) == EMBER_SLOT_FREE;
    return n;
}

/* The payload pages of C's pool that have an owner (read under the page
 * lock). */
static inline uint32_t used_pages(ember_client *c)
{
    struct ember__view *v = ember__client_view(c);
    uint32_t n = 0;
    ember__pages_lock(v);
    for (uint32_t i = 0; i < v->npages; i++) n += v->page_owner[i] != 0;
    ember__pages_unlock(v);
    return n;
}

/* ---- waiting for the pool ---- */

/* A bounded wait for a state of a pool, the loop every such wait is
 * written as: take the pool's epoch, look, and only then park until the
 * epoch moves from the one taken, so that a change between the look and
 * the park is not missed (the supervisor bumps it when a runner is ready,
 * a runner or a caller was reaped, an event was published), for at most
 * 5 ms at a time, so that a state reached without a bump (the
 * supervisor's housekeeping, another process's store) is seen all the
 * same:
 *
 *     struct pool_wait w = pool_wait_start(f.c, 5000);
 *     while (!STATE && pool_wait_next(&w)) {}
 *     assert_true(STATE);
 *
 * or `do { look } while (!found && pool_wait_next(&w));` when a look
 * reads something (events, stats). */
struct pool_wait {
    _Atomic uint32_t *epoch;  /* the pool header's */
    uint32_t seen;            /* the epoch taken before the last look */
    uint64_t until;           /* when the wait gives up (ember__now_ns) */
};

/* Begin a wait of at most MS milliseconds for the pool C is attached to. */
static inline struct pool_wait pool_wait_start(ember_client *c, unsigned ms)
{
    _Atomic uint32_t *epoch = &ember__client_view(c)->hdr->epoch;
    return (struct pool_wait){ epoch, atomic_load(epoch), ember__now_ns() + ms * 1000000ull };
}

/* After a look that did not find the state: park until the epoch moves
 * from the one W took or 5 ms pass, then take it for the next look.
 * Returns false, at once, when the wait's time is up. */
static inline bool pool_wait_next(struct pool_wait *w)
{
    uint64_t now = ember__now_ns();
    if (now > w->until) return false;
    ember__futex_wait(w->epoch, w->seen, now + 5000000ull);
    w->seen = atomic_load(w->epoch);
    return true;
}

/* Wait until the pool C is attached to has reaped more than N callers,
 * at most MS milliseconds; whether it has. */
static inline bool await_reaped(ember_client *c, uint64_t n, unsigned ms)
{
    struct ember_shm_header *h = ember__client_view(c)->hdr;
    struct pool_wait w = pool_wait_start(c, ms);
    bool more;
    while (!(more = atomic_load(&h->callers_reaped) > n) && pool_wait_next(&w)) {}
    return more;
}

/* Read F's events (from F->cursor on; each must name F's pool) until WANT
 * shrink events of REASON have come, at most MS milliseconds (0: those
 * there now); how many came. */
static inline int await_shrinks(struct fixture *f, int reason, int want, unsigned ms)
{
    struct pool_wait w = pool_wait_start(f->c, ms);
    int n = 0;
    do {
        ember_event ev[16];
        int k;
        while ((k = ember_events_read(f->c, &f->cursor, ev, 16)) > 0)
            for (int i = 0; i < k; i++) {
                assert_string_equal(ev[i].pool, f->name);
                n += ev[i].type == EMBER_EV_SHRINK && ev[i].reason == reason;
            }
    } while (n < want && pool_wait_next(&w));
    return n;
}

/* ---- counters other processes raise ---- */

/* Raise *W by one and wake whoever awaits it (await_count). */
static inline void bump(_Atomic uint32_t *w)
{
    atomic_fetch_add(w, 1);
    ember__futex_wake(w, INT_MAX);
}

/* Wait until *W reaches WANT (it only grows; whoever raises it wakes its
 * futex: bump), at most MS milliseconds; whether it has. */
static inline bool await_count(_Atomic uint32_t *w, uint32_t want, unsigned ms)
{
    uint64_t until = ember__now_ns() + ms * 1000000ull;
    for (;;) {
        uint32_t v = atomic_load(w);
        if (v >= want) return true;
        if (ember__now_ns() > until) return false;
        ember__futex_wait(w, v, ember__now_ns() + 5000000ull);
    }
}

/* ---- parts of handlers ---- */

/* A gate for handlers that block: gate_wait(), in a handler, raises
 * *STARTED when it begins, then waits while *HOLD is set. gate_occupy()
 * submits handler "block" (one that calls gate_wait) with HOLD set and
 * returns once that call has started; gate_release() lets every blocked
 * handler end. */
static inline void gate_wait(_Atomic uint32_t *hold, _Atomic uint32_t *started)
{
    bump(started);
    while (atomic_load(hold)) ember__futex_wait(hold, 1, 0);
}

static inline ember_call_id gate_occupy(struct fixture *f, _Atomic uint32_t *hold,
                                        _Atomic uint32_t *started)
{
    ember_call_id id;
    uint32_t before = atomic_load(started);
    atomic_store(hold, 1);
    assert_int_equal(ember_submit(f->c, ember_handler(f->c, "block"), NULL, 0,
                                  EMBER_TIMEOUT_DEFAULT, &id), 0);
    assert_true(await_count(started, before + 1, 5000));
    return id;
}

static inline void gate_release(_Atomic uint32_t *hold)
{
    atomic_store(hold, 0);
    ember__futex_wake(hold, INT_MAX);
}

/* Return once job J is cancelled, looking every millisecond: the body of
 * a handler that runs until it is asked to stop. */
static inline void await_cancel(const ember_job *j)
{
    struct timespec ms = { 0, 1000000 };
    while (!ember_job_cancelled(j)) nanosleep(&ms, NULL);
}

/* A handler that raises the signal its argument names (an int): its runner
 * dies of it. The tests register it as "crash". */
static inline int h_raise(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)o, (void)j;
    int sig = 0;
    if (n == sizeof sig) memcpy(&sig, a, sizeof sig);
    raise(sig);
    return 0;
}

#endif
