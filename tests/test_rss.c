/* Description: max_rss counts a runner's real resident memory, whatever
 * allocator the program uses and however it links libember (this test is
 * built twice: against libember.a and against libember.so, where the
 * program's malloc is glibc's): a runner that grows past max_rss is
 * recycled (a shrink event with reason max_rss) and the next call runs in a
 * new runner; ember_stats_read() reports a runner's resident bytes. Only the
 * public headers are used. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <ember/pool.h>

#define MIB (1024u * 1024u)

/* what h_hog holds, reachable to the end (volatile: the compiler may not
 * drop a block that is only written) */
static char *volatile kept;

/* Grows the runner by the number of MiB it is given, and keeps it. */
static int h_hog(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)j;
    uint32_t mib = 0;
    if (n == sizeof mib) memcpy(&mib, a, sizeof mib);
    char *p = malloc((size_t)mib * MIB);
    if (!p) return 1;
    memset(p, 0x5a, (size_t)mib * MIB); /* resident, not only reserved */
    kept = p;
    int pid = getpid();
    return ember_out_write(o, &pid, sizeof pid);
}

struct fixture { ember_pool *pool; ember_client *c; char name[40]; };

static void start(struct fixture *f, const char *tag, size_t max_rss)
{
    struct ember_pool_config cfg;
    ember_pool_config_init(&cfg);
    snprintf(f->name, sizeof f->name, "rss%s-%d", tag, (int)getpid());
    cfg.name = f->name;
    cfg.min = cfg.max = 1;
    cfg.max_rss = max_rss;
    int rc = ember_pool_start(&cfg, &f->pool);
    if (rc) fail_msg("pool start: %s: %s", ember_strerror(rc), ember_last_error());
    assert_int_equal(ember_attach(f->name, &f->c), 0);
}

static void stop(struct fixture *f)
{
    ember_detach(f->c);
    assert_int_equal(ember_pool_stop(f->pool, EMBER_SECOND), 0);
}

static int hog(struct fixture *f, uint32_t mib)
{
    ember_result r;
    int rc = ember_call(f->c, ember_handler(f->c, "hog"), &mib, sizeof mib, &r, 10 * EMBER_SECOND);
    if (rc) fail_msg("hog: %s: %s", ember_strerror(rc), ember_last_error());
    int pid;
    memcpy(&pid, r.data, sizeof pid);
    ember_result_release(f->c, &r);
    return pid;
}

/* Wait (at most 10 s) for a shrink event with reason WHY. */
static bool await_shrink(struct fixture *f, int why)
{
    uint64_t cursor = 0;
    for (int rounds = 0; rounds < 50; rounds++) {
        ember_stats st;
        ember_stats_read(f->c, &st, NULL, 0);
        ember_event ev[16];
        int n;
        while ((n = ember_events_read(f->c, &cursor, ev, 16)) > 0)
            for (int i = 0; i < n; i++)
                if (ev[i].type == EMBER_EV_SHRINK && ev[i].reason == why) return true;
        assert_int_equal(ember_stats_wait(f->c, st.epoch, 200 * 1000000ll), 0);
    }
    return false;
}

static void runner_above_max_rss_is_recycled(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "cap", 48 * MIB);
    int first = hog(&f, 96);
    assert_true(await_shrink(&f, EMBER_WHY_MAX_RSS));
    assert_int_equal(ember_pool_wait_ready(f.pool, 1, 10 * EMBER_SECOND), 0);
    int second = hog(&f, 1);
    assert_int_not_equal(first, second);
    stop(&f);
}

static void runner_below_max_rss_stays(void **st)
{
    (void)st;
    struct fixture f;
    start(&f, "ok", 512 * MIB);
    int first = hog(&f, 8);
    /* its resident bytes reach ember_stats (the runner measures about every
     * 200 ms with max_rss set): wait for the report, then it is still the one */
    ember_runner_stats rs = { 0 };
    for (int tries = 0; tries < 100 && rs.rss < 8ull * MIB; tries++) {
        ember_stats s;
        assert_int_equal(ember_stats_read(f.c, &s, &rs, 1), 1);
        if (rs.rss < 8ull * MIB) ember_stats_wait(f.c, s.epoch, 50 * 1000000ll);
    }
    assert_true(rs.rss >= 8ull * MIB);
    assert_true(rs.rss < 512ull * MIB);
    assert_int_equal(rs.pid, first);
    assert_int_equal(hog(&f, 1), first);
    stop(&f);
}

int main(void)
{
    ember_handler_register("hog", h_hog);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runner_above_max_rss_is_recycled),
        cmocka_unit_test(runner_below_max_rss_stays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
