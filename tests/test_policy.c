/* Description: the scaling policy (src/policy.c) on hand-made snapshots:
 * min at start, growth only when every runner is full, never beyond max,
 * booting capacity counted, backoff and one probe at a time, the breaker,
 * idle shutdown above min and of min runners, drains after a resize,
 * draining runners counted against max, kills for boot timeouts and
 * deadlines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "ember/abi.h"
#include "supervisor/policy.h"

#define MS 1000000ull
#define NEVER EMBER__NEVER_NS

static struct ember__pin pin(uint32_t min, uint32_t max, uint32_t conc)
{
    return (struct ember__pin){ .now = 1000 * MS, .min = min, .max = max, .conc = conc,
                                .idle_after = 30000 * MS, .min_idle_after = NEVER,
                                .boot_timeout = 30000 * MS };
}

static struct ember__prunner ready(uint32_t busy, uint64_t idle_since)
{
    return (struct ember__prunner){ .state = EMBER_RUNNER_READY, .busy = busy,
                                    .idle_since = idle_since, .kill_at = NEVER };
}

static struct ember__prunner booting(uint64_t at)
{
    return (struct ember__prunner){ .state = EMBER_RUNNER_BOOTING, .booted_at = at, .kill_at = NEVER };
}

static void min_runners_boot_at_start(void **st)
{
    (void)st;
    struct ember__pin in = pin(3, 8, 1);
    struct ember__prunner r[8] = { 0 };
    struct ember__pout out;
    ember__policy_plan(&in, r, 8, &out);
    assert_int_equal(out.boots, 3);
    assert_int_equal(out.boot_reason, EMBER_WHY_MIN);
    in.min = 0; /* scale to zero: nothing without demand */
    ember__policy_plan(&in, r, 8, &out);
    assert_int_equal(out.boots, 0);
    in.queued = 1; /* first call: one runner */
    ember__policy_plan(&in, r, 8, &out);
    assert_int_equal(out.boots, 1);
    assert_int_equal(out.boot_reason, EMBER_WHY_DEMAND);
}

static void growth_only_when_every_runner_is_full(void **st)
{
    (void)st;
    struct ember__pin in = pin(0, 8, 2);
    struct ember__prunner r[8] = { ready(1, 0), ready(2, 0) };
    struct ember__pout out;
    in.queued = 1; /* room for it on runner 0 */
    ember__policy_plan(&in, r, 8, &out);
    assert_int_equal(out.boots, 0);
    r[0].busy = 2; /* now both are full */
    ember__policy_plan(&in, r, 8, &out);
    assert_int_equal(out.boots, 1);
    in.queued = 5; /* 5 waiting, 2 per runner: 3 more */
    ember__policy_plan(&in, r, 8, &out);
    assert_int_equal(out.boots, 3);
}

static void never_beyond_max(void **st)
{
    (void)st;
    struct ember__pin in = pin(0, 3, 1);
    struct ember__prunner r[8] = { ready(1, 0), booting(900 * MS) };
    struct ember__pout out;
    in.queued = 64;
    ember__policy_plan(&in, r, 8, &out);
    assert_int_equal(out.boots, 1);
    r[2] = booting(999 * MS);
    ember__policy_plan(&in, r, 8, &out);
    assert_int_equal(out.boots, 0);
}

static void booting_runner_counts_as_capacity(void **st)
{
    (void)st;
    /* two calls while the only runner (max_concurrency 2) boots: no second runner */
    struct ember__pin in = pin(0, 4, 2);
    struct ember__prunner r[4] = { booting(999 * MS) };
    struct ember__pout out;
    in.queued = 2;
    ember__policy_plan(&in, r, 4, &out);
    assert_int_equal(out.boots, 0);
    in.queued = 3;
    ember__policy_plan(&in, r, 4, &out);
    assert_int_equal(out.boots, 1);
}

static void backoff_then_one_probe(void **st)
{
    (void)st;
    assert_int_equal(ember__policy_backoff(0), 0);
    assert_int_equal(ember__policy_backoff(1), 100 * MS);
    assert_int_equal(ember__policy_backoff(2), 200 * MS);
    assert_int_equal(ember__policy_backoff(3), 400 * MS);
    assert_int_equal(ember__policy_backoff(40), EMBER__BACKOFF_MAX_NS);
    struct ember__pin in = pin(4, 8, 1);
    struct ember__prunner r[8] = { 0 };
    struct ember__pout out;
    in.failures = 2;
    in.retry_at = in.now + 50 * MS;
    ember__policy_plan(&in, r, 8, &out);
    assert_int_equal(out.boots, 0); /* backing off */
    assert_int_equal(out.next_due, in.retry_at);
    in.now = in.retry_at;
    ember__policy_plan(&in, r, 8, &out);
    assert_int_equal(out.boots, 1); /* four wanted, one probe */
    r[0] = booting(in.now);
    ember__policy_plan(&in, r, 8, &out);
    assert_int_equal(out.boots, 0); /* the probe is still booting */
}

static void breaker_fails_queued_calls(void **st)
{
    (void)st;
    struct ember__pin in = pin(0, 2, 1);
    struct ember__prunner r[2] = { 0 };
    struct ember__pout out;
    in.queued = 2;
    in.failures = EMBER__BREAKER_FAILURES;
    in.retry_at = in.now + 400 * MS;
    ember__policy_plan(&in, r, 2, &out);
    assert_true(out.fail_queued);
    in.failures = EMBER__BREAKER_FAILURES - 1; /* not open yet: they wait for the retry */
    ember__policy_plan(&in, r, 2, &out);
    assert_false(out.fail_queued);
    in.failures = EMBER__BREAKER_FAILURES; /* a ready runner will serve them */
    r[0] = ready(1, 0);
    ember__policy_plan(&in, r, 2, &out);
    assert_false(out.fail_queued);
}

static void idle_shutdown_keeps_min(void **st)
{
    (void)st;
    struct ember__pin in = pin(1, 4, 1);
    in.idle_after = 100 * MS;
    struct ember__prunner r[4] = { ready(0, 850 * MS), ready(0, 800 * MS), ready(0, 950 * MS) };
    struct ember__pout out;
    ember__policy_plan(&in, r, 4, &out);
    /* two above min; runners 0 and 1 idle >= 100 ms, the longest idle first */
    assert_int_equal(r[1].action, EMBER__ACT_ASK_IDLE);
    assert_int_equal(r[0].action, EMBER__ACT_ASK_IDLE);
    assert_int_equal(r[2].action, EMBER__ACT_NONE);
    assert_int_equal(out.next_due, NEVER); /* min runners: never */
    /* pending asks are not repeated, and count as going */
    r[0].asked = r[1].asked = true;
    in.now = 2000 * MS;
    ember__policy_plan(&in, r, 4, &out);
    assert_int_equal(r[2].action, EMBER__ACT_NONE);
    /* a veto (asked cleared, idle timer restarted) frees one place above min:
     * the longest idle runner takes it */
    r[1].asked = false;
    r[1].idle_since = 1950 * MS;
    ember__policy_plan(&in, r, 4, &out);
    assert_int_equal(r[2].action, EMBER__ACT_ASK_IDLE);
    assert_int_equal(r[1].action, EMBER__ACT_NONE);
    /* runner 0 stayed too: runner 1 is asked again idle_after after its veto */
    r[0].asked = false;
    r[0].idle_since = 1990 * MS;
    r[2].asked = true;
    ember__policy_plan(&in, r, 4, &out);
    assert_int_equal(r[1].action, EMBER__ACT_NONE);
    assert_int_equal(out.next_due, 2050 * MS);
}

static void min_idle_shutdown(void **st)
{
    (void)st;
    struct ember__pin in = pin(2, 4, 1);
    in.idle_after = 100 * MS;
    in.min_idle_after = 500 * MS;
    struct ember__prunner r[4] = { ready(0, 600 * MS), ready(0, 300 * MS) };
    struct ember__pout out;
    ember__policy_plan(&in, r, 4, &out);
    assert_int_equal(r[1].action, EMBER__ACT_ASK_IDLE); /* idle 700 ms */
    assert_int_equal(r[0].action, EMBER__ACT_NONE);     /* idle 400 ms */
    assert_int_equal(out.next_due, 1100 * MS);
    assert_true(out.min_lapsed);
    /* once it is gone, min is not topped up again while min has lapsed */
    struct ember__prunner r2[4] = { ready(0, 600 * MS) };
    in.min_lapsed = true;
    ember__policy_plan(&in, r2, 4, &out);
    assert_int_equal(out.boots, 0);
    in.min_lapsed = false;
    ember__policy_plan(&in, r2, 4, &out);
    assert_int_equal(out.boots, 1);
    assert_int_equal(out.boot_reason, EMBER_WHY_MIN);
}

static void no_idle_shutdown_while_calls_wait(void **st)
{
    (void)st;
    struct ember__pin in = pin(0, 4, 1);
    in.idle_after = 100 * MS;
    struct ember__prunner r[4] = { ready(0, 0), ready(1, 0) };
    struct ember__pout out;
    in.queued = 1;
    ember__policy_plan(&in, r, 4, &out);
    assert_int_equal(r[0].action, EMBER__ACT_NONE);
    in.queued = 0;
    ember__policy_plan(&in, r, 4, &out);
    assert_int_equal(r[0].action, EMBER__ACT_ASK_IDLE);
    assert_int_equal(r[1].action, EMBER__ACT_NONE); /* busy */
}

static void resize_down_drains_idle_first(void **st)
{
    (void)st;
    struct ember__pin in = pin(0, 1, 1);
    struct ember__prunner r[4] = { ready(1, 0), ready(0, 900 * MS), ready(1, 0), booting(990 * MS) };
    struct ember__pout out;
    ember__policy_plan(&in, r, 4, &out);
    assert_int_equal(r[1].action, EMBER__ACT_DRAIN); /* idle */
    assert_int_equal(r[3].action, EMBER__ACT_DRAIN); /* booting */
    assert_true((r[0].action == EMBER__ACT_DRAIN) != (r[2].action == EMBER__ACT_DRAIN));
    assert_int_equal(out.boots, 0);
    /* and a draining runner is never killed for it, nor counted */
    r[1].state = EMBER_RUNNER_DRAINING;
    r[3].state = EMBER_RUNNER_EMPTY;
    r[2].state = EMBER_RUNNER_DRAINING;
    ember__policy_plan(&in, r, 4, &out);
    assert_int_equal(r[0].action, EMBER__ACT_NONE);
    assert_int_equal(r[1].action, EMBER__ACT_NONE);
}

/* A draining runner is a process until it exits: it holds its place under
 * max, and the boot that replaces it waits for its exit; so does one being
 * killed. */
static void draining_runners_count_against_max(void **st)
{
    (void)st;
    struct ember__pin in = pin(0, 2, 1);
    struct ember__prunner r[4] = { ready(1, 0), ready(1, 0) };
    r[1].state = EMBER_RUNNER_DRAINING; /* recycled (max_jobs) while it runs its last call */
    struct ember__pout out;
    in.queued = 3;
    ember__policy_plan(&in, r, 4, &out);
    assert_int_equal(out.boots, 0); /* 2 processes already: max */
    r[1].state = EMBER_RUNNER_EMPTY; /* it exited */
    ember__policy_plan(&in, r, 4, &out);
    assert_int_equal(out.boots, 1);
    /* with room for one of the two runners wanted */
    in.max = 3;
    r[1].state = EMBER_RUNNER_DRAINING;
    ember__policy_plan(&in, r, 4, &out);
    assert_int_equal(out.boots, 1);
    /* min too waits for a draining runner's exit */
    in = pin(2, 2, 1);
    struct ember__prunner m[4] = { ready(0, 0) };
    m[1] = ready(0, 0);
    m[1].state = EMBER_RUNNER_DRAINING;
    ember__policy_plan(&in, m, 4, &out);
    assert_int_equal(out.boots, 0);
    /* and one being killed for its boot timeout holds its place until reaped */
    in = pin(1, 1, 1);
    in.boot_timeout = 100 * MS;
    struct ember__prunner k[2] = { booting(0) };
    ember__policy_plan(&in, k, 2, &out);
    assert_int_equal(k[0].action, EMBER__ACT_KILL_BOOT);
    assert_int_equal(out.boots, 0);
    k[0].state = EMBER_RUNNER_EMPTY;
    ember__policy_plan(&in, k, 2, &out);
    assert_int_equal(out.boots, 1);
}

static void kills(void **st)
{
    (void)st;
    struct ember__pin in = pin(1, 4, 1);
    in.boot_timeout = 200 * MS;
    struct ember__prunner r[4] = { booting(700 * MS), booting(900 * MS), ready(1, 0), ready(1, 0) };
    r[2].kill_at = 1000 * MS;
    r[3].kill_at = 1300 * MS;
    struct ember__pout out;
    ember__policy_plan(&in, r, 4, &out);
    assert_int_equal(r[0].action, EMBER__ACT_KILL_BOOT);
    assert_int_equal(r[1].action, EMBER__ACT_NONE);
    assert_int_equal(r[2].action, EMBER__ACT_KILL_DEADLINE);
    assert_int_equal(r[3].action, EMBER__ACT_NONE);
    assert_int_equal(out.next_due, 1100 * MS); /* runner 1's boot timeout */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(min_runners_boot_at_start),
        cmocka_unit_test(growth_only_when_every_runner_is_full),
        cmocka_unit_test(never_beyond_max),
        cmocka_unit_test(booting_runner_counts_as_capacity),
        cmocka_unit_test(backoff_then_one_probe),
        cmocka_unit_test(breaker_fails_queued_calls),
        cmocka_unit_test(idle_shutdown_keeps_min),
        cmocka_unit_test(min_idle_shutdown),
        cmocka_unit_test(no_idle_shutdown_while_calls_wait),
        cmocka_unit_test(resize_down_drains_idle_first),
        cmocka_unit_test(draining_runners_count_against_max),
        cmocka_unit_test(kills),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
