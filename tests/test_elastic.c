/* Description: the elastic pool end to end (FLAME.Pool's behaviours), on the
 * back-end named by EMBER_BACKEND: min runners boot at start; growth only
 * when every runner is full, never beyond max (also under 64 concurrent
 * callers); a call queued past its deadline never runs; two calls while the
 * only runner boots are both served by it; a failed boot is reported with its
 * count and retried, and the queued cast then runs; a boot that always fails
 * backs off and fails calls with EMBER_EBOOT and its cause; idle shutdown
 * keeps min, the check callback vetoes it (counted, not timed), min_idle_shutdown_after stops min
 * runners too; single_use and max_jobs replace runners; a call past its
 * deadline gets its runner killed and replaced (others on it: runner lost);
 * resize up and down under load loses no call; a graceful stop lets running
 * calls finish; scale from zero. */
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

/* State shared with supervisors and runners (inherited mapping). */
struct shared {
    _Atomic uint32_t hold, started, ran, boots, boot_fail_first, boot_fail_always,
        boot_sleep_ms, keep, grow_end_cb, shrink_cb, checks;
};
static struct shared *S;

static int h_block(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)o;
    bump(&S->started);
    while (atomic_load(&S->hold) && !ember_job_cancelled(j))
        ember__futex_wait(&S->hold, 1, ember__now_ns() + 10000000ull);
    return 0;
}
static int h_pid(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)j;
    bump(&S->ran);
    int pid = getpid();
    return ember_out_write(o, &pid, sizeof pid);
}
static int h_sleep(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)o, (void)j;
    uint32_t us = 0;
    if (n == sizeof us) memcpy(&us, a, sizeof us);
    bump(&S->started);
    struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
    bump(&S->ran);
    return 0;
}
/* never looks at its cancel flag */
static int h_deaf_spin(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)o, (void)j;
    bump(&S->started);
    for (;;) pause();
    return 0;
}
/* stops when cancelled */
static int h_polite(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)o;
    await_cancel(j);
    bump(&S->ran);
    return 0;
}

static int boot_cb(void *arg, char *msg, size_t len)
{
    (void)arg;
    uint32_t n = atomic_fetch_add(&S->boots, 1);
    uint32_t ms = atomic_load(&S->boot_sleep_ms);
    if (ms) {
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&S->boot_fail_always)) {
        snprintf(msg, len, "model file missing");
        return 3;
    }
    if (n == 0 && atomic_load(&S->boot_fail_first)) {
        snprintf(msg, len, "first boot fails");
        return 2;
    }
    return 0;
}
static bool idle_check(void *arg)
{
    (void)arg;
    bump(&S->checks);
    return !atomic_load(&S->keep);
}
static void on_grow_end(const ember_event *ev, void *arg)
{
    (void)ev, (void)arg;
    bump(&S->grow_end_cb);
}
static void on_shrink(const ember_event *ev, void *arg)
{
    (void)ev, (void)arg;
    bump(&S->shrink_cb);
}

static void config(struct ember_pool_config *cfg, struct fixture *f, const char *tag)
{
    fixture_config(f, cfg, "e", tag);
    cfg->queue_capacity = 256;
    cfg->runner_boot = boot_cb;
    cfg->on_grow_end = on_grow_end;
    cfg->on_shrink = on_shrink;
    memset(S, 0, sizeof *S);
}

static struct ember_shm_header *hdr(struct fixture *f) { return ember__pool_view(f->pool)->hdr; }

static uint32_t serving(struct fixture *f) { return atomic_load(&hdr(f)->nserving); }

static uint32_t live_runners(struct fixture *f)
{
    struct ember__view *v = ember__pool_view(f->pool);
    uint32_t n = 0;
    for (uint32_t r = 0; r < v->nrunners; r++) n += atomic_load(&v->runners[r].pid) != 0;
    return n;
}

/* Wait (up to MS) until the pool has exactly N serving runners and the
 * supervisor has published it. */
static bool await_serving(struct fixture *f, uint32_t n, unsigned ms)
{
    struct pool_wait w = pool_wait_start(f->c, ms);
    bool there;
    while (!(there = serving(f) == n && live_runners(f) == n) && pool_wait_next(&w)) {}
    return there;
}

/* Count the events of each type read from the pool since the last call
 * (each must name the pool). */
struct evcount { int grow_start, grow_ok, grow_fail, shrink, last_fail_count; char last_msg[64]; };
static struct evcount read_events(struct fixture *f)
{
    struct evcount n = { 0 };
    ember_event ev[32];
    int k;
    while ((k = ember_events_read(f->c, &f->cursor, ev, 32)) > 0)
        for (int i = 0; i < k; i++) {
            assert_string_equal(ev[i].pool, f->name);
            if (ev[i].type == EMBER_EV_GROW_START) n.grow_start++;
            if (ev[i].type == EMBER_EV_GROW_END && ev[i].ok) n.grow_ok++;
            if (ev[i].type == EMBER_EV_GROW_END && !ev[i].ok) {
                n.grow_fail++;
                n.last_fail_count = ev[i].count;
                memcpy(n.last_msg, ev[i].msg, sizeof n.last_msg);
            }
            if (ev[i].type == EMBER_EV_SHRINK) n.shrink++;
        }
    return n;
}

static void min_at_start_growth_when_full_max_bounds(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&cfg, &f, "grow");
    cfg.min = 1;
    cfg.max = 3;
    fixture_start(&f, &cfg, 0);
    assert_true(await_serving(&f, 1, 5000)); /* min runners boot at start */
    ember_result r;
    /* one call on an idle runner: no growth */
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "pid"), NULL, 0, &r, EMBER_TIMEOUT_DEFAULT), 0);
    ember_result_release(f.c, &r);
    struct evcount e = read_events(&f);
    assert_int_equal(e.grow_start, 1);
    int grown = e.grow_ok; /* its GROW_END may come after its first call */
    /* every runner full: one more each time, up to max */
    /* (the count is published by the supervisor after its fork, so a new
     * runner can take its call before the count says so: awaited) */
    ember_call_id a = gate_occupy(&f, &S->hold, &S->started);
    assert_int_equal(serving(&f), 1);
    ember_call_id b = gate_occupy(&f, &S->hold, &S->started);
    assert_true(await_serving(&f, 2, 5000));
    ember_call_id c = gate_occupy(&f, &S->hold, &S->started);
    assert_true(await_serving(&f, 3, 5000));
    /* beyond max calls queue; with a short timeout one expires there and never runs */
    uint32_t ran = atomic_load(&S->ran);
    int rc = ember_call(f.c, ember_handler(f.c, "pid"), NULL, 0, &r, 150000000ll);
    assert_int_equal(rc, -EMBER_ETIMEDOUT);
    assert_int_equal(r.detail, EMBER_TIMEOUT_QUEUED);
    ember_result_release(f.c, &r);
    assert_int_equal(serving(&f), 3);
    assert_int_equal(live_runners(&f), 3);
    gate_release(&S->hold);
    ember_call_id ids[3] = { a, b, c };
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ember_wait(f.c, ids[i], &r), 0);
        ember_result_release(f.c, &r);
    }
    assert_int_equal(atomic_load(&S->ran), ran); /* the expired call never ran */
    assert_true(await_count(&S->grow_end_cb, 3, 2000));
    e = read_events(&f);
    assert_int_equal(e.grow_start, 2);
    assert_int_equal(grown + e.grow_ok, 3);
    fixture_stop(&f);
}

struct storm { struct fixture *f; _Atomic int errors; _Atomic int done; };
static void *storm_thread(void *arg)
{
    struct storm *s = arg;
    int h = ember_handler(s->f->c, "sleep");
    uint32_t us = 2000;
    for (int i = 0; i < 20; i++) {
        ember_result r;
        if (ember_call(s->f->c, h, &us, sizeof us, &r, 20000000000ll) != 0) atomic_fetch_add(&s->errors, 1);
        ember_result_release(s->f->c, &r);
    }
    atomic_fetch_add(&s->done, 1);
    return NULL;
}

static void never_beyond_max_under_64_callers(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&cfg, &f, "storm");
    cfg.min = 0;
    cfg.max = 3;
    fixture_start(&f, &cfg, 0);
    struct storm s = { .f = &f };
    pthread_t th[64];
    for (int i = 0; i < 64; i++) assert_int_equal(pthread_create(&th[i], NULL, storm_thread, &s), 0);
    for (int i = 0; i < 64; i++) pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&s.errors), 0);
    assert_int_equal(atomic_load(&S->ran), 64 * 20);
    /* the demand grew it to max, and never beyond: every runner that ever
     * existed ran the boot callback, none stopped meanwhile (a stopped one
     * could have been replaced), and no event saw more than max serving */
    assert_int_equal(atomic_load(&S->boots), 3);
    int most = 0, starts = 0, shrinks = 0;
    ember_event ev[32];
    int k;
    while ((k = ember_events_read(f.c, &f.cursor, ev, 32)) > 0)
        for (int i = 0; i < k; i++) {
            if ((int)ev[i].runners > most) most = (int)ev[i].runners;
            starts += ev[i].type == EMBER_EV_GROW_START;
            shrinks += ev[i].type == EMBER_EV_SHRINK;
        }
    assert_int_equal(starts, 3);
    assert_int_equal(shrinks, 0);
    assert_int_equal(most, 3);
    fixture_stop(&f);
}

static void two_calls_while_booting_share_the_runner(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&cfg, &f, "boot2");
    cfg.min = 0;
    cfg.max = 4;
    cfg.max_concurrency = 2;
    fixture_start(&f, &cfg, 0);
    atomic_store(&S->boot_sleep_ms, 200);
    ember_call_id a, b;
    int h = ember_handler(f.c, "pid");
    assert_int_equal(ember_submit(f.c, h, NULL, 0, EMBER_TIMEOUT_DEFAULT, &a), 0);
    assert_int_equal(ember_submit(f.c, h, NULL, 0, EMBER_TIMEOUT_DEFAULT, &b), 0);
    ember_result ra, rb;
    assert_int_equal(ember_wait(f.c, a, &ra), 0);
    assert_int_equal(ember_wait(f.c, b, &rb), 0);
    int pa, pb;
    memcpy(&pa, ra.data, sizeof pa);
    memcpy(&pb, rb.data, sizeof pb);
    assert_int_equal(pa, pb);
    ember_result_release(f.c, &ra);
    ember_result_release(f.c, &rb);
    assert_int_equal(atomic_load(&S->boots), 1);
    assert_int_equal(read_events(&f).grow_start, 1);
    fixture_stop(&f);
}

static void failed_boot_is_retried_and_the_cast_runs(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&cfg, &f, "retry");
    cfg.min = 0;
    cfg.max = 2;
    fixture_start(&f, &cfg, 0);
    atomic_store(&S->boot_fail_first, 1);
    assert_int_equal(ember_cast(f.c, ember_handler(f.c, "pid"), NULL, 0, EMBER_TIMEOUT_DEFAULT), 0);
    assert_true(await_count(&S->ran, 1, 5000));
    assert_int_equal(atomic_load(&S->boots), 2);
    assert_true(await_count(&S->grow_end_cb, 2, 2000)); /* the callbacks ran too */
    struct evcount e = read_events(&f);
    assert_int_equal(e.grow_fail, 1);
    assert_int_equal(e.last_fail_count, 1);
    assert_string_equal(e.last_msg, "first boot fails");
    assert_int_equal(e.grow_ok, 1);
    fixture_stop(&f);
}

static void boot_always_failing_backs_off_with_eboot(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&cfg, &f, "broken");
    cfg.min = 0;
    cfg.max = 4;
    fixture_start(&f, &cfg, 0);
    atomic_store(&S->boot_fail_always, 1);
    ember_result r;
    /* a 60 s deadline: the call must end through the breaker (EMBER_EBOOT),
     * which a deadline expiry (EMBER_ETIMEDOUT) cannot be mistaken for */
    int rc = ember_call(f.c, ember_handler(f.c, "pid"), NULL, 0, &r, 60 * EMBER_SECOND);
    assert_int_equal(rc, -EMBER_EBOOT);
    if (!strstr(ember_last_error(), "model file missing") || !strstr(ember_last_error(), "exit status 3"))
        fail_msg("EBOOT without its cause: %s", ember_last_error());
    ember_result_release(f.c, &r);
    assert_true(atomic_load(&S->boots) >= EMBER__BREAKER_FAILURES);
    /* while the breaker is open, calls fail at submit, before anything is
     * queued, and nothing forks */
    uint32_t boots = atomic_load(&S->boots);
    ember_call_id id;
    assert_int_equal(ember_submit(f.c, ember_handler(f.c, "pid"), NULL, 0, 60 * EMBER_SECOND, &id),
                     -EMBER_EBOOT);
    if (!strstr(ember_last_error(), "model file missing"))
        fail_msg("EBOOT at submit without its cause: %s", ember_last_error());
    assert_int_equal(atomic_load(&S->boots), boots);
    assert_true(boots <= EMBER__BREAKER_FAILURES + 1);
    assert_int_equal(atomic_load(&S->ran), 0);
    fixture_stop(&f);
}

static void idle_shutdown_keeps_min_and_obeys_the_check(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&cfg, &f, "idle");
    cfg.min = 1;
    cfg.max = 3;
    cfg.idle_shutdown_after_ns = 150000000ll;
    cfg.idle_shutdown_check = idle_check;
    fixture_start(&f, &cfg, 0);
    assert_true(await_serving(&f, 1, 5000));
    atomic_store(&S->keep, 1); /* the check says stay */
    ember_call_id ids[3];
    for (int i = 0; i < 3; i++) ids[i] = gate_occupy(&f, &S->hold, &S->started);
    assert_true(await_serving(&f, 3, 5000)); /* published after the fork */
    gate_release(&S->hold);
    ember_result r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ember_wait(f.c, ids[i], &r), 0);
        ember_result_release(f.c, &r);
    }
    /* vetoed: each grown runner is asked, says stay, and is asked again
     * after another idle period; the pool stays at three throughout */
    assert_true(await_count(&S->checks, 4, 5000));
    assert_int_equal(serving(&f), 3);
    assert_int_equal(read_events(&f).shrink, 0);
    atomic_store(&S->keep, 0);
    assert_true(await_serving(&f, 1, 3000)); /* grown runners go, min stays */
    assert_int_equal(await_shrinks(&f, EMBER_WHY_IDLE, 2, 3000), 2);
    assert_true(await_count(&S->shrink_cb, 2, 1000));
    assert_int_equal(serving(&f), 1);
    /* and the one left serves at once: no boot for this call */
    uint32_t boots = atomic_load(&S->boots);
    ember_result r2;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "pid"), NULL, 0, &r2, EMBER_TIMEOUT_DEFAULT), 0);
    ember_result_release(f.c, &r2);
    assert_int_equal(atomic_load(&S->boots), boots);
    assert_int_equal(read_events(&f).grow_start, 0);
    fixture_stop(&f);
}

static void min_idle_shutdown_stops_min_runners(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&cfg, &f, "minidle");
    cfg.min = 2;
    cfg.max = 2;
    cfg.idle_shutdown_after_ns = 100000000ll;
    cfg.min_idle_shutdown_after_ns = 300000000ll;
    fixture_start(&f, &cfg, 0);
    assert_true(await_serving(&f, 2, 5000));
    assert_true(await_serving(&f, 0, 3000));
    /* and the pool still serves: it boots on demand */
    ember_result r;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "pid"), NULL, 0, &r, EMBER_TIMEOUT_DEFAULT), 0);
    ember_result_release(f.c, &r);
    fixture_stop(&f);
}

static void single_use_and_max_jobs_replace_runners(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&cfg, &f, "single");
    cfg.min = 1;
    cfg.max = 2;
    cfg.single_use = true;
    fixture_start(&f, &cfg, 0);
    int pids[6];
    for (int i = 0; i < 6; i++) {
        ember_result r;
        assert_int_equal(ember_call(f.c, ember_handler(f.c, "pid"), NULL, 0, &r, EMBER_TIMEOUT_DEFAULT), 0);
        memcpy(&pids[i], r.data, sizeof pids[i]);
        ember_result_release(f.c, &r);
        for (int k = 0; k < i; k++) assert_int_not_equal(pids[k], pids[i]);
    }
    assert_true(await_serving(&f, 1, 3000)); /* never below min */
    assert_true(await_shrinks(&f, EMBER_WHY_SINGLE_USE, 5, 3000) >= 5);
    fixture_stop(&f);

    config(&cfg, &f, "maxjobs");
    cfg.min = 1;
    cfg.max = 1;
    cfg.max_jobs = 3;
    fixture_start(&f, &cfg, 0);
    int prev = 0, same = 0;
    for (int i = 0; i < 9; i++) {
        ember_result r;
        assert_int_equal(ember_call(f.c, ember_handler(f.c, "pid"), NULL, 0, &r, EMBER_TIMEOUT_DEFAULT), 0);
        int pid;
        memcpy(&pid, r.data, sizeof pid);
        ember_result_release(f.c, &r);
        same = pid == prev ? same + 1 : 1;
        assert_true(same <= 3);
        prev = pid;
    }
    assert_true(await_shrinks(&f, EMBER_WHY_MAX_JOBS, 2, 3000) >= 2);
    fixture_stop(&f);
}

static void past_deadline_runner_is_killed_and_replaced(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&cfg, &f, "kill");
    cfg.min = 1;
    cfg.max = 1;
    cfg.max_concurrency = 2;
    cfg.kill_grace_ns = 100000000ll;
    fixture_start(&f, &cfg, 0);
    assert_true(await_serving(&f, 1, 5000));
    /* a call that honours its cancel flag stops at its deadline: nothing killed */
    ember_result r;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "polite"), NULL, 0, &r, 100000000ll),
                     -EMBER_ETIMEDOUT);
    assert_int_equal(r.detail, EMBER_TIMEOUT_RUNNING);
    ember_result_release(f.c, &r);
    assert_true(await_count(&S->ran, 1, 2000));
    /* one that does not: its runner is killed after kill_grace; the other
     * call on that runner is lost with it */
    ember_call_id other = gate_occupy(&f, &S->hold, &S->started);
    ember_call_id deaf;
    assert_int_equal(ember_submit(f.c, ember_handler(f.c, "deaf_spin"), NULL, 0, 200000000ll, &deaf), 0);
    assert_true(await_count(&S->started, 2, 2000));
    assert_int_equal(ember_wait(f.c, other, &r), -EMBER_ERUNNERLOST);
    ember_result_release(f.c, &r);
    assert_int_equal(ember_wait(f.c, deaf, &r), -EMBER_ETIMEDOUT);
    assert_int_equal(r.detail, EMBER_TIMEOUT_RUNNING);
    ember_result_release(f.c, &r);
    assert_int_equal(await_shrinks(&f, EMBER_WHY_DEADLINE, 1, 3000), 1);
    assert_true(await_serving(&f, 1, 3000)); /* replaced */
    gate_release(&S->hold);
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "pid"), NULL, 0, &r, EMBER_TIMEOUT_DEFAULT), 0);
    ember_result_release(f.c, &r);
    fixture_stop(&f);
}

static void *load_thread(void *arg)
{
    struct storm *s = arg;
    int h = ember_handler(s->f->c, "sleep");
    uint32_t us = 500;
    while (!atomic_load(&s->done)) {
        ember_result r;
        if (ember_call(s->f->c, h, &us, sizeof us, &r, 20000000000ll) != 0) {
            fprintf(stderr, "call: %s\n", ember_last_error());
            atomic_fetch_add(&s->errors, 1);
        }
        ember_result_release(s->f->c, &r);
    }
    return NULL;
}

static void resize_under_load_loses_nothing(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&cfg, &f, "resize");
    cfg.min = 1;
    cfg.max = 1;
    fixture_start(&f, &cfg, 0);
    struct storm s = { .f = &f };
    pthread_t th[6];
    for (int i = 0; i < 6; i++) assert_int_equal(pthread_create(&th[i], NULL, load_thread, &s), 0);
    assert_int_equal(ember_pool_resize(f.pool, 2, 4), 0);
    assert_true(await_serving(&f, 4, 5000));
    assert_int_equal(ember_pool_resize(f.pool, 1, 1), 0);
    assert_true(await_serving(&f, 1, 5000));
    assert_int_equal(ember_pool_resize(f.pool, 3, 3), 0);
    assert_true(await_serving(&f, 3, 5000));
    atomic_store(&s.done, 1);
    for (int i = 0; i < 6; i++) pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&s.errors), 0);
    assert_true(await_shrinks(&f, EMBER_WHY_RESIZE, 3, 3000) >= 3);
    assert_int_equal(ember_pool_resize(f.pool, 2, 1), -EMBER_EINVAL);
    assert_int_equal(ember_pool_resize(f.pool, 0, 100000), -EMBER_EINVAL);
    fixture_stop(&f);
}

static void graceful_stop_lets_running_calls_finish(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&cfg, &f, "stop");
    cfg.min = 1;
    cfg.max = 1;
    fixture_start(&f, &cfg, 0);
    assert_true(await_serving(&f, 1, 5000));
    ember_call_id running, queued;
    uint32_t us = 300000;
    assert_int_equal(ember_submit(f.c, ember_handler(f.c, "sleep"), &us, sizeof us, EMBER_TIMEOUT_DEFAULT, &running), 0);
    assert_true(await_count(&S->started, 1, 5000)); /* it runs */
    assert_int_equal(ember_submit(f.c, ember_handler(f.c, "pid"), NULL, 0, EMBER_TIMEOUT_DEFAULT, &queued), 0);
    ember_client *c = f.c;
    ember_pool *pool = f.pool;
    assert_int_equal(ember_pool_stop(pool, 5000000000ll), 0);
    ember_result r;
    assert_int_equal(ember_wait(c, running, &r), 0); /* it finished */
    ember_result_release(c, &r);
    assert_int_equal(ember_wait(c, queued, &r), -EMBER_EPOOLDOWN);
    ember_result_release(c, &r);
    assert_int_equal(atomic_load(&S->ran), 1);
    ember_detach(c);
}

int main(void)
{
    S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (S == MAP_FAILED) return 1;
    ember_handler_register("block", h_block);
    ember_handler_register("pid", h_pid);
    ember_handler_register("sleep", h_sleep);
    ember_handler_register("deaf_spin", h_deaf_spin);
    ember_handler_register("polite", h_polite);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(min_at_start_growth_when_full_max_bounds),
        cmocka_unit_test(never_beyond_max_under_64_callers),
        cmocka_unit_test(two_calls_while_booting_share_the_runner),
        cmocka_unit_test(failed_boot_is_retried_and_the_cast_runs),
        cmocka_unit_test(boot_always_failing_backs_off_with_eboot),
        cmocka_unit_test(idle_shutdown_keeps_min_and_obeys_the_check),
        cmocka_unit_test(min_idle_shutdown_stops_min_runners),
        cmocka_unit_test(single_use_and_max_jobs_replace_runners),
        cmocka_unit_test(past_deadline_runner_is_killed_and_replaced),
        cmocka_unit_test(resize_under_load_loses_nothing),
        cmocka_unit_test(graceful_stop_lets_running_calls_finish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
