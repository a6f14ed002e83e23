/* Description: same-image functions (ember_call_fn): a function of the
 * program that started the pool runs in a runner with a copy of its
 * context, and its result comes back; the same call from a program of
 * another image is refused with EMBER_EIMAGE and nothing runs; an address
 * that is not code is refused before anything is queued. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "lib/testing.h"
#include "fixture.h"

static const char *g_foreign; /* path of the foreign program */

static void start(struct fixture *f)
{
    struct ember_pool_config cfg;
    fixture_config(f, &cfg, "fn", "");
    cfg.min = 1;
    cfg.max = 1;
    cfg.queue_capacity = 16;
    fixture_start(f, &cfg, 0);
}

/* sums the context's ints; says which process it ran in */
static int sum_fn(const void *ctx, size_t len, ember_out *out, const ember_job *job)
{
    (void)job;
    long sum = 0;
    const int *v = ctx;
    for (size_t i = 0; i < len / sizeof *v; i++) sum += v[i];
    long ans[2] = { sum, ember_parent() ? (long)getpid() : 0 };
    return ember_out_write(out, ans, sizeof ans);
}

static void same_image_function_runs_in_a_runner(void **st)
{
    (void)st;
    struct fixture f;
    start(&f);
    int ctx[100];
    for (int i = 0; i < 100; i++) ctx[i] = i;
    ember_result r;
    assert_int_equal(ember_call_fn(f.c, sum_fn, ctx, sizeof ctx, &r, EMBER_TIMEOUT_DEFAULT), 0);
    assert_int_equal(r.len, 2 * sizeof(long));
    long ans[2];
    memcpy(ans, r.data, sizeof ans);
    ember_result_release(f.c, &r);
    assert_int_equal(ans[0], 4950);
    struct ember__view *v = ember__pool_view(f.pool);
    assert_int_equal(ans[1], (long)atomic_load(&v->runners[r.runner].pid));
    assert_int_not_equal(ans[1], (long)getpid());
    /* a forked caller shares the image */
    pid_t pid = fork();
    if (pid == 0) {
        ember_client *c;
        ember_result rr;
        if (ember_attach(f.name, &c)) _exit(2);
        int rc = ember_call_fn(c, sum_fn, ctx, 40, &rr, EMBER_TIMEOUT_DEFAULT);
        long a = rc ? -1 : *(const long *)rr.data;
        ember_result_release(c, &rr);
        _exit(a == 45 ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fixture_stop(&f);
}

static void foreign_image_is_refused(void **st)
{
    (void)st;
    struct fixture f;
    start(&f);
    pid_t pid = fork();
    if (pid == 0) {
        execl(g_foreign, g_foreign, f.name, (char *)NULL);
        _exit(3);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* EMBER_EIMAGE */
    /* nothing ran: the runner is the same and the pool serves */
    struct ember__view *v = ember__pool_view(f.pool);
    assert_int_equal(atomic_load(&v->hdr->runners_died), 0);
    ember_result r;
    int x = 7;
    assert_int_equal(ember_call_fn(f.c, sum_fn, &x, sizeof x, &r, EMBER_TIMEOUT_DEFAULT), 0);
    ember_result_release(f.c, &r);
    /* data is not code: refused before anything is queued */
    static int not_code;
    assert_int_equal(ember_call_fn(f.c, (ember_handler_fn)(uintptr_t)&not_code, NULL, 0, &r,
                                   EMBER_TIMEOUT_DEFAULT), -EMBER_EIMAGE);
    ember_result_release(f.c, &r);
    assert_int_equal(ember_call_fn(f.c, NULL, NULL, 0, &r, EMBER_TIMEOUT_DEFAULT), -EMBER_EINVAL);
    ember_result_release(f.c, &r);
    fixture_stop(&f);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FOREIGN-PROGRAM\n", argv[0]);
        return 2;
    }
    g_foreign = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_image_function_runs_in_a_runner),
        cmocka_unit_test(foreign_image_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
