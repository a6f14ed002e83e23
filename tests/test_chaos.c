/* Description: chaos - runners and caller processes are killed at random
 * while callers keep calls in flight. Every call ends with its result or
 * EMBER_ECRASHED (never a hang, never a wrong result), and when the dust
 * settles every slot and every shared page is free again and the pool still
 * serves. EMBER_CHAOS_KILLS sets the length in kills (default 60, about
 * 2 s: the suite's short version; tools/chaos runs a long one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "lib/testing.h"
#include "fixture.h"

static char g_name[40];
static ember_pool *g_pool;
static ember_client *g_client;
static _Atomic int g_stop;
static _Atomic uint64_t g_ok, g_crashed, g_bad;

/* "work": echoes its arguments after a few microseconds of work */
static int h_work(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)j;
    volatile uint64_t x = 0;
    for (int i = 0; i < 2000; i++) x += (uint64_t)i;
    return ember_out_write(o, a, n);
}

/* The bytes of call K of caller thread T: an 8-byte tag (T << 56 | K) when
 * there is room, then K + i; a wrong result's tag says whose call's bytes
 * came back instead. */
static void fill(unsigned char *buf, size_t len, unsigned t, uint64_t k)
{
    for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(k + i);
    uint64_t tag = (uint64_t)t << 56 | k;
    if (len >= 16) memcpy(buf, &tag, sizeof tag);
}

/* What was wrong with call K of thread T (RC, R; BUF: its LEN bytes), all
 * of it on one line: the status and error, the lengths, the first byte
 * that differs, who ran it, its slot, and where its result lay. */
static void report_bad(ember_client *c, unsigned t, uint64_t k, int rc, const ember_result *r,
                       const unsigned char *buf, size_t len)
{
    struct ember__view *v = ember__client_view(c);
    char where[160] = "";
    size_t diff = (size_t)-1, n = r->len < len ? r->len : len;
    const unsigned char *got = r->data;
    for (size_t i = 0; got && i < n && diff == (size_t)-1; i++)
        if (got[i] != buf[i]) diff = i;
    if (got && r->len >= 16) {
        uint64_t tag;
        memcpy(&tag, got, sizeof tag);
        snprintf(where, sizeof where, "; its first 8 bytes: thread %u call %llu",
                 (unsigned)(tag >> 56), (unsigned long long)(tag & ((1ull << 56) - 1)));
    }
    size_t wl = strlen(where);
    const unsigned char *pages = (const unsigned char *)v->pages;
    if (got && got >= pages && got < pages + (size_t)v->npages * v->page_size) {
        uint32_t pg = (uint32_t)((size_t)(got - pages) / v->page_size);
        ember__pages_lock(v);
        int owner = (int)v->page_owner[pg] - 1;
        ember__pages_unlock(v);
        snprintf(where + wl, sizeof where - wl, "; in page %u, owned now by slot %d", pg, owner);
    } else if (got) {
        snprintf(where + wl, sizeof where - wl, "; inline");
    }
    uint32_t w = r->_idx < v->nslots ? atomic_load(&v->slots[r->_idx].state) : 0;
    fprintf(stderr,
            "call %llu of thread %u: rc %d (%s), status %d, detail %d; %zu bytes back of %zu, "
            "first difference at %lld (0x%02x, want 0x%02x); runner %u node %d; slot %u gen %u "
            "(now gen %u state %u)%s%s%s\n",
            (unsigned long long)k, t, rc, ember_errname(rc), r->status, r->detail, r->len, len,
            diff == (size_t)-1 ? -1ll : (long long)diff, diff == (size_t)-1 ? 0 : got[diff],
            diff == (size_t)-1 ? 0 : buf[diff], r->runner, r->node, r->_idx, r->_gen,
            ember__gen(w), ember__st(w), where, rc ? "; error: " : "", rc ? ember_last_error() : "");
}

static void one_call(ember_client *c, int h, unsigned t, uint64_t k, size_t len, unsigned char *buf)
{
    fill(buf, len, t, k);
    ember_result r;
    int rc = ember_call(c, h, buf, len, &r, 10000000000ll);
    if (rc == 0 && r.len == len && memcmp(r.data, buf, len) == 0) atomic_fetch_add(&g_ok, 1);
    else if (rc == -EMBER_ECRASHED) atomic_fetch_add(&g_crashed, 1);
    else {
        report_bad(c, t, k, rc, &r, buf, len);
        atomic_fetch_add(&g_bad, 1);
    }
    ember_result_release(c, &r);
}

struct caller { ember_client *c; unsigned t; };

static void *caller_thread(void *arg)
{
    ember_client *c = ((struct caller *)arg)->c;
    unsigned t = ((struct caller *)arg)->t;
    int h = ember_handler(c, "work");
    unsigned char *buf = malloc(300000);
    for (uint64_t k = 0; !atomic_load(&g_stop); k++)
        one_call(c, h, t, k, (k % 16 == 0) ? 100000 + k % 1000 : 8 + k % 100, buf);
    free(buf);
    return NULL;
}

static void run_chaos(bool elastic)
{
    atomic_store(&g_stop, 0);
    atomic_store(&g_ok, 0);
    atomic_store(&g_crashed, 0);
    atomic_store(&g_bad, 0);
    unsigned kills = getenv("EMBER_CHAOS_KILLS") ? (unsigned)atoi(getenv("EMBER_CHAOS_KILLS")) : 60;
    struct ember_pool_config cfg;
    ember_pool_config_init(&cfg);
    snprintf(g_name, sizeof g_name, "tchaos-%d%s", (int)getpid(), elastic ? "-e" : "");
    cfg.name = g_name;
    cfg.min = cfg.max = 2;
    if (elastic) { /* runners grow, idle down and drain while others are killed */
        cfg.min = 1;
        cfg.max = 3;
        cfg.idle_shutdown_after_ns = 30000000ll;
    }
    cfg.max_concurrency = 2;
    cfg.queue_capacity = 256;
    cfg.max_payload = 1 << 20;
    assert_int_equal(ember_pool_start(&cfg, &g_pool), 0);
    assert_int_equal(ember_pool_wait_ready(g_pool, cfg.min, 5000000000ll), 0);
    ember_client *c;
    assert_int_equal(ember_attach(g_name, &c), 0);
    g_client = c;
    pthread_t th[3];
    struct caller ca[3];
    for (unsigned i = 0; i < 3; i++) {
        ca[i] = (struct caller){ c, i };
        pthread_create(&th[i], NULL, caller_thread, &ca[i]);
    }

    /* KILLS kills, a round every 10 to 30 ms: two in three kill a runner
     * that has booted (when one has), one in three a caller process; at
     * most ten rounds a kill */
    unsigned runner_kills = 0, caller_kills = 0, rounds = 0;
    uint64_t began = ember__now_ns();
    unsigned seed = (unsigned)getpid();
    for (; runner_kills + caller_kills < kills && rounds < 10 * kills; rounds++) {
        struct timespec ts = { 0, 10000000 + (long)(rand_r(&seed) % 20000000) };
        nanosleep(&ts, NULL);
        if (rand_r(&seed) % 3) { /* kill a runner */
            /* one that has booted: runners killed while booting are boot
             * failures, and three in a row make the pool fail calls with
             * EMBER_EBOOT until its backoff ends, as it should (the same pid
             * before and after the look at the state: the same runner) */
            struct ember_runner_ent *re = &ember__client_view(c)->runners[rand_r(&seed) % cfg.max];
            uint32_t pid = atomic_load(&re->pid), rs = atomic_load(&re->state);
            bool booted = rs == EMBER_RUNNER_READY || rs == EMBER_RUNNER_DRAINING;
            if (pid && booted && atomic_load(&re->pid) == pid && kill((pid_t)pid, SIGKILL) == 0)
                runner_kills++;
        } else { /* a caller process killed with calls in flight */
            int pfd[2];
            assert_int_equal(pipe(pfd), 0);
            pid_t p = fork();
            if (p == 0) {
                ember_client *cc;
                if (ember_attach(g_name, &cc)) _exit(1);
                int h = ember_handler(cc, "work");
                static unsigned char args[200000];
                ember_call_id id;
                for (int i = 0; i < 8; i++) ember_submit(cc, h, args, i % 2 ? sizeof args : 16, EMBER_TIMEOUT_DEFAULT, &id);
                if (write(pfd[1], "k", 1) != 1) _exit(2); /* calls in flight */
                for (;;) pause();
            }
            close(pfd[1]); /* a child that fails before writing gives EOF, not a hang */
            char k;
            bool ready = read(pfd[0], &k, 1) == 1;
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
            close(pfd[0]);
            if (ready) caller_kills++;
        }
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    fprintf(stderr, "chaos%s %.1f s: %u runner kills, %u caller kills in %u rounds; %llu ok, %llu crashed, "
            "%llu bad\n", elastic ? " (elastic)" : "", (double)(ember__now_ns() - began) / 1e9, runner_kills,
            caller_kills, rounds, (unsigned long long)g_ok, (unsigned long long)g_crashed,
            (unsigned long long)g_bad);
    assert_int_equal(atomic_load(&g_bad), 0);
    assert_int_equal(runner_kills + caller_kills, kills);
    assert_true(atomic_load(&g_ok) > 0);
    assert_true(runner_kills > 0);

    /* settle: the supervisor has reaped every killed caller and runner */
    struct ember__view *v = ember__client_view(c);
    uint32_t slots = 0, pages = 0;
    struct pool_wait w = pool_wait_start(c, 5000);
    do {
        slots = free_slots(c);
        pages = used_pages(c);
    } while ((slots != v->nslots || pages != 0 || atomic_load(&v->hdr->callers_reaped) < caller_kills) &&
             pool_wait_next(&w));
    assert_int_equal(slots, v->nslots);
    assert_int_equal(pages, 0);
    assert_true(atomic_load(&v->hdr->callers_reaped) >= caller_kills);
    /* and it still serves */
    assert_int_equal(ember_pool_wait_ready(g_pool, cfg.min, 5000000000ll), 0);
    ember_result r;
    uint64_t x = 42;
    assert_int_equal(ember_call(c, ember_handler(c, "echo"), &x, sizeof x, &r, EMBER_TIMEOUT_DEFAULT), 0);
    ember_result_release(c, &r);
    ember_detach(c);
    g_client = NULL;
    ember_pool *p = g_pool;
    g_pool = NULL;
    assert_int_equal(ember_pool_stop(p, 1000000000ll), 0);
}

/* A failed run leaves no pool behind (the next test's would not start) */
static int stop_left(void **st)
{
    (void)st;
    if (g_client) ember_detach(g_client);
    if (g_pool) ember_pool_stop(g_pool, 1000000000ll);
    g_client = NULL;
    g_pool = NULL;
    return 0;
}

static void chaos(void **st)
{
    (void)st;
    run_chaos(false);
}

static void chaos_elastic(void **st)
{
    (void)st;
    run_chaos(true);
}

int main(void)
{
    ember_handler_register("work", h_work);
    const struct CMUnitTest tests[] = { cmocka_unit_test_teardown(chaos, stop_left),
                                         cmocka_unit_test_teardown(chaos_elastic, stop_left) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
