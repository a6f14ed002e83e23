/* Description: why a runner ended, as its calls report it, and the limits
 * that end it, on the back-end named by EMBER_BACKEND (meson runs this file
 * once per back-end): a handler that exits fails its call with
 * EMBER_ECRASHED and EMBER_CRASH_EXIT + the status, one that raises a
 * signal with the signal (SIGKILL too, which is no OOM kill); each runner
 * has the pool's rlimits and no_new_privs, seen from inside a handler; a
 * handler spinning past runner_rlimit_cpu is killed by SIGXCPU; a limit the
 * kernel refuses fails the boot, naming the option. Run with the argument
 * "cgroup": a runner's memory cgroup (a leaf per runner, removed at the
 * stop, or by the next start when the supervisor was killed; none with
 * runner_cgroup off), and a handler over runner_memory_max
 * fails with EMBER_EOOM; exits 77 saying why when this host has no
 * writable memory cgroup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <cmocka.h>
#include "lib/testing.h"
#include "fixture.h"

static int h_exit(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)o, (void)j;
    int st = 0;
    if (n == sizeof st) memcpy(&st, a, sizeof st);
    exit(st);
}
/* "hog": maps its argument's bytes and touches every page */
static int h_hog(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)o, (void)j;
    size_t len = 0;
    if (n == sizeof len) memcpy(&len, a, sizeof len);
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    for (size_t i = 0; i < len; i += 4096) p[i] = 1;
    munmap(p, len);
    return 0;
}
/* "spin": burns CPU until something stops it */
static int h_spin(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)o, (void)j;
    volatile uint64_t x = 0;
    for (;;) x++;
    return 0;
}

struct limits { uint64_t as[2], cpu[2], nofile[2]; int nnp; };
/* "limits": the runner's rlimits and its NoNewPrivs, as it sees them */
static int h_limits(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)j;
    struct limits l = { .nnp = -1 };
    struct rlimit rl;
    getrlimit(RLIMIT_AS, &rl), l.as[0] = rl.rlim_cur, l.as[1] = rl.rlim_max;
    getrlimit(RLIMIT_CPU, &rl), l.cpu[0] = rl.rlim_cur, l.cpu[1] = rl.rlim_max;
    getrlimit(RLIMIT_NOFILE, &rl), l.nofile[0] = rl.rlim_cur, l.nofile[1] = rl.rlim_max;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "NoNewPrivs:", 11) == 0) l.nnp = atoi(line + 11);
    if (f) fclose(f);
    return ember_out_write(o, &l, sizeof l);
}
/* "cgroup": the runner's /proc/self/cgroup */
static int h_cgroup(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)j;
    char buf[4096];
    FILE *f = fopen("/proc/self/cgroup", "r");
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    return ember_out_write(o, buf, len);
}

static void config(struct fixture *f, struct ember_pool_config *cfg, const char *tag)
{
    fixture_config(f, cfg, "tcrash-", tag);
    cfg->min = 1;
    cfg->max = 1;
}

/* The address-space limit the test sets: 16 GiB, or under AddressSanitizer
 * (whose shadow memory alone reserves terabytes of address space) 128 TiB,
 * all a process has on x86-64. */
#if defined(__SANITIZE_ADDRESS__)
#define AS_LIMIT ((size_t)1 << 47)
#else
#define AS_LIMIT ((size_t)16 << 30)
#endif

/* Call handler NAME with ARG; RES is released; returns the call's code. */
static int call(struct fixture *f, const char *name, const void *arg, size_t len, ember_result *res)
{
    int rc = ember_call(f->c, ember_handler(f->c, name), arg, len, res, 60 * EMBER_SECOND);
    ember_result_release(f->c, res);
    return rc;
}

static void expect_message(const char *want)
{
    if (!strstr(ember_last_error(), want))
        fail_msg("message without \"%s\": %s", want, ember_last_error());
}

static void exit_status_is_the_detail(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&f, &cfg, "exit");
    fixture_start(&f, &cfg, 1);
    ember_result r;
    for (int status = 0; status <= 3; status += 3) {
        assert_int_equal(call(&f, "exit", &status, sizeof status, &r), -EMBER_ECRASHED);
        assert_int_equal(r.detail, EMBER_CRASH_EXIT + status);
        char want[40];
        snprintf(want, sizeof want, "exited with status %d", status);
        expect_message(want);
    }
    fixture_stop(&f);
}

static void signal_is_the_detail(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&f, &cfg, "sig");
    fixture_start(&f, &cfg, 1);
    ember_result r;
    int sig = SIGSEGV;
    assert_int_equal(call(&f, "crash", &sig, sizeof sig, &r), -EMBER_ECRASHED);
    assert_int_equal(r.detail, SIGSEGV);
    expect_message("killed by SIGSEGV");
    /* a SIGKILL that is not the OOM killer's is a crash (the runner has a
     * memory cgroup where this host allows one: it says no OOM kill) */
    sig = SIGKILL;
    assert_int_equal(call(&f, "crash", &sig, sizeof sig, &r), -EMBER_ECRASHED);
    assert_int_equal(r.detail, SIGKILL);
    expect_message("killed by SIGKILL");
    fixture_stop(&f);
}

static void handlers_see_the_limits(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&f, &cfg, "lim");
    cfg.runner_rlimit_as = AS_LIMIT;
    cfg.runner_rlimit_cpu = 100;
    cfg.runner_rlimit_nofile = 100;
    fixture_start(&f, &cfg, 1);
    ember_result r;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "limits"), NULL, 0, &r, 60 * EMBER_SECOND), 0);
    assert_int_equal(r.len, sizeof(struct limits));
    struct limits l;
    memcpy(&l, r.data, sizeof l);
    ember_result_release(f.c, &r);
    assert_int_equal(l.as[0], (uint64_t)AS_LIMIT);
    assert_int_equal(l.as[1], (uint64_t)AS_LIMIT);
    assert_int_equal(l.cpu[0], 100);
    assert_int_equal(l.cpu[1], 101); /* SIGKILL a second after SIGXCPU */
    assert_int_equal(l.nofile[0], 100);
    assert_int_equal(l.nofile[1], 100);
    assert_int_equal(l.nnp, 1);
    fixture_stop(&f);
    /* without limits: what the runner inherited, and no_new_privs all the same */
    config(&f, &cfg, "nolim");
    fixture_start(&f, &cfg, 1);
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "limits"), NULL, 0, &r, 60 * EMBER_SECOND), 0);
    memcpy(&l, r.data, sizeof l);
    ember_result_release(f.c, &r);
    struct rlimit own;
    getrlimit(RLIMIT_NOFILE, &own);
    assert_int_equal(l.nofile[0], own.rlim_cur);
    assert_int_equal(l.cpu[0], (uint64_t)RLIM_INFINITY);
    assert_int_equal(l.nnp, 1);
    fixture_stop(&f);
}

static void cpu_limit_kills_a_spinning_handler(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&f, &cfg, "cpu");
    cfg.runner_rlimit_cpu = 1;
    fixture_start(&f, &cfg, 1);
    ember_result r;
    assert_int_equal(call(&f, "spin", NULL, 0, &r), -EMBER_ECRASHED);
    assert_int_equal(r.detail, SIGXCPU);
    expect_message("killed by SIGXCPU");
    fixture_stop(&f);
}

static void refused_limit_fails_the_boot(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&f, &cfg, "badlim");
    cfg.min = 0;
    cfg.runner_rlimit_nofile = 1u << 30; /* above the kernel's nr_open, root or not */
    fixture_start(&f, &cfg, 0);
    ember_result r;
    assert_int_equal(call(&f, "limits", NULL, 0, &r), -EMBER_EBOOT);
    expect_message("runner_rlimit_nofile");
    fixture_stop(&f);
}

/* ---- with a memory cgroup ---- */

/* The directory of the cgroup named on the line of CGROUPS (a
 * /proc/PID/cgroup) that holds "/ember.", into DIR; false if none. */
static bool ember_cgroup_dir(const char *cgroups, char *dir, size_t len)
{
    const char *p = strstr(cgroups, "/ember.");
    if (!p) return false;
    const char *start = p;
    while (start > cgroups && start[-1] != ':') start--;
    char rel[400];
    snprintf(rel, sizeof rel, "%.*s", (int)strcspn(start, "\n"), start);
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[1024];
    bool found = false;
    while (!found && f && fgets(line, sizeof line, f)) {
        char point[512];
        const char *dash = strstr(line, " - ");
        if (!dash || (strncmp(dash, " - cgroup ", 10) != 0 && strncmp(dash, " - cgroup2 ", 11) != 0) ||
            sscanf(line, "%*s %*s %*s %*s %511s", point) != 1)
            continue;
        snprintf(dir, len, "%s%s", point, rel);
        found = access(dir, F_OK) == 0;
    }
    if (f) fclose(f);
    return found;
}

/* Start a pool with runner_memory_max, or end the test program with 77
 * (skipped) saying why this host cannot. */
static void start_or_skip(struct fixture *f, struct ember_pool_config *cfg)
{
    ember_pool *p;
    int rc = ember_pool_start(cfg, &p);
    if (rc == -EMBER_EINVAL && strstr(ember_last_error(), "runner_memory_max")) {
        printf("skipped: this host has no writable memory cgroup: %s\n", ember_last_error());
        exit(77);
    }
    if (rc) fail_msg("pool start: %s: %s", ember_strerror(rc), ember_last_error());
    f->pool = p;
    assert_int_equal(ember_pool_wait_ready(f->pool, 1, 10 * EMBER_SECOND), 0);
    assert_int_equal(ember_attach(f->name, &f->c), 0);
}

static void a_cgroup_per_runner_removed_at_stop(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&f, &cfg, "cg");
    cfg.runner_memory_max = 256 << 20;
    start_or_skip(&f, &cfg);
    ember_result r;
    char dir[1024], leaf[1024], pool[1024];
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "cgroup"), NULL, 0, &r, 60 * EMBER_SECOND), 0);
    char *text = strndup(r.data, r.len);
    ember_result_release(f.c, &r);
    if (!ember_cgroup_dir(text, leaf, sizeof leaf)) fail_msg("no ember cgroup in:\n%s", text);
    char want[128];
    snprintf(want, sizeof want, "/ember.%u.%s.%d/0.", (unsigned)getuid(), f.name,
             ember_pool_supervisor_pid(f.pool));
    if (!strstr(text, want)) fail_msg("no %s in:\n%s", want, text);
    free(text);
    snprintf(pool, sizeof pool, "%s", leaf);
    *strrchr(pool, '/') = 0;
    /* a crash removes its leaf; the replacement gets its own */
    int sig = SIGSEGV;
    assert_int_equal(call(&f, "crash", &sig, sizeof sig, &r), -EMBER_ECRASHED);
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "cgroup"), NULL, 0, &r, 60 * EMBER_SECOND), 0);
    text = strndup(r.data, r.len);
    ember_result_release(f.c, &r);
    assert_true(ember_cgroup_dir(text, dir, sizeof dir));
    free(text);
    assert_string_not_equal(dir, leaf);
    assert_int_not_equal(access(leaf, F_OK), 0);
    assert_int_equal(access(dir, F_OK), 0);
    fixture_stop(&f);
    assert_int_not_equal(access(dir, F_OK), 0);
    assert_int_not_equal(access(pool, F_OK), 0);
    /* runner_cgroup off (and no runner_memory_max): none */
    config(&f, &cfg, "nocg");
    cfg.runner_cgroup = false;
    fixture_start(&f, &cfg, 1);
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "cgroup"), NULL, 0, &r, 60 * EMBER_SECOND), 0);
    assert_null(memmem(r.data, r.len, "/ember.", 7));
    ember_result_release(f.c, &r);
    fixture_stop(&f);
}

/* The cgroup a killed supervisor left is removed by the next pool's start. */
static void killed_supervisors_cgroup_is_swept(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&f, &cfg, "cgk");
    cfg.runner_memory_max = 256 << 20;
    start_or_skip(&f, &cfg);
    ember_result r;
    char leaf[1024];
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "cgroup"), NULL, 0, &r, 60 * EMBER_SECOND), 0);
    char *text = strndup(r.data, r.len);
    ember_result_release(f.c, &r);
    assert_true(ember_cgroup_dir(text, leaf, sizeof leaf));
    free(text);
    char procs[1100];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", leaf);
    *strrchr(leaf, '/') = 0; /* the pool's */
    kill(ember_pool_supervisor_pid(f.pool), SIGKILL);
    ember_detach(f.c);
    /* reaps it, and says it did not end cleanly; its runner dies with it
     * (PDEATHSIG): await that */
    assert_int_equal(ember_pool_stop(f.pool, EMBER_SECOND), -EMBER_EPOOLDOWN);
    bool empty = false;
    for (int i = 0; i < 500 && !empty; i++) {
        FILE *pf = fopen(procs, "r");
        char pid[32];
        empty = pf && !fgets(pid, sizeof pid, pf);
        if (pf) fclose(pf);
        if (!empty) usleep(10000);
    }
    assert_true(empty);
    assert_int_equal(access(leaf, F_OK), 0); /* nobody removed it */
    config(&f, &cfg, "cgk2");
    cfg.runner_memory_max = 256 << 20;
    start_or_skip(&f, &cfg);
    assert_int_not_equal(access(leaf, F_OK), 0);
    fixture_stop(&f);
}

static void over_memory_max_is_eoom(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    config(&f, &cfg, "oom");
    cfg.runner_memory_max = 64 << 20;
    start_or_skip(&f, &cfg);
    ember_result r;
    size_t small = 16 << 20, big = 512 << 20;
    assert_int_equal(call(&f, "hog", &small, sizeof small, &r), 0); /* under it: runs */
    assert_int_equal(call(&f, "hog", &big, sizeof big, &r), -EMBER_EOOM);
    assert_int_equal(r.detail, SIGKILL);
    expect_message("OOM killer");
    assert_string_equal(ember_errname(-EMBER_EOOM), "EMBER_EOOM");
    /* its replacement serves */
    assert_int_equal(call(&f, "hog", &small, sizeof small, &r), 0);
    fixture_stop(&f);
}

int main(int argc, char **argv)
{
    ember_handler_register("exit", h_exit);
    ember_handler_register("crash", h_raise);
    ember_handler_register("hog", h_hog);
    ember_handler_register("spin", h_spin);
    ember_handler_register("limits", h_limits);
    ember_handler_register("cgroup", h_cgroup);
    if (argc > 1 && strcmp(argv[1], "cgroup") == 0) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(a_cgroup_per_runner_removed_at_stop),
            cmocka_unit_test(killed_supervisors_cgroup_is_swept),
            cmocka_unit_test(over_memory_max_is_eoom),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exit_status_is_the_detail),
        cmocka_unit_test(signal_is_the_detail),
        cmocka_unit_test(handlers_see_the_limits),
        cmocka_unit_test(cpu_limit_kills_a_spinning_handler),
        cmocka_unit_test(refused_limit_fails_the_boot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
