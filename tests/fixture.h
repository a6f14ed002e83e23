/* tests/fixture.h - what the end-to-end tests share: a pool started for
 * one test and a client attached to it, and waiting for a counter that
 * other processes raise. Include after <cmocka.h> and lib/testing.h. */
#ifndef EMBER_TESTS_FIXTURE_H
#define EMBER_TESTS_FIXTURE_H

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

/* Wait until *W reaches WANT (it only grows; whoever raises it wakes its
 * futex), at most MS milliseconds. */
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

/* A gate for handlers that block: a handler raises *STARTED (and wakes it)
 * when it begins, then waits while *HOLD is set. gate_occupy() submits
 * handler "block" with HOLD set and returns once that call has started;
 * gate_release() lets every blocked handler end. */
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

#endif
