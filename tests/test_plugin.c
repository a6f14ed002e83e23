/* Description: handler plugins (plugin.h). ember_plugin_load refuses, each
 * with its own code and a message naming the plugin: a name not in the
 * search path (the message lists where it looked), a missing file, a file
 * dlopen refuses, a shared object without ember_plugin_v1, another
 * EMBER_PLUGIN_ABI, and a handler name already taken (none of that
 * plugin's handlers is registered then). A pool with the sample plugin in
 * its `plugins` option runs its handlers; the init runs once per runner,
 * and its context is the one the runner's two workers share (two calls
 * meet on it); the teardown runs when the pool stops. Loading a file twice
 * is a no-op. A bad entry of `plugins` fails ember_pool_start and no pool
 * runs; a failing init fails the runners' boots, and calls get
 * EMBER_EBOOT with the init's message.
 * Usage: test_plugin SAMPLE.so BAD_ENTRY.so BAD_ABI.so BAD_CLASH.so BAD_INIT.so
 * The cases share the process's handler table, so they run in order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "lib/testing.h"
#include "fixture.h"

static const char *sample, *bad_entry, *bad_abi, *bad_clash, *bad_init;
static char tmpdir[64];

static int h_mine(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)o, (void)j;
    return 0;
}

/* The last error contains WANT. */
static void error_says(const char *want)
{
    if (!strstr(ember_last_error(), want)) fail_msg("'%s' lacks '%s'", ember_last_error(), want);
}

/* The directory of PATH, into BUF. */
static const char *dir_of(const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "%s", path);
    char *s = strrchr(buf, '/');
    if (s) *s = 0;
    return buf;
}

static void bad_plugins_are_refused_with_their_reason(void **st)
{
    (void)st;
    const ember_plugin *p = (const ember_plugin *)&p;
    char dir[4096], path[4200];
    setenv("EMBER_PLUGIN_PATH", dir_of(bad_abi, dir, sizeof dir), 1);

    assert_int_equal(ember_plugin_load("no_such_plugin", &p), -EMBER_ENOENT);
    assert_null(p);
    error_says("plugin 'no_such_plugin': not found (looked in: ");
    error_says(dir);
    snprintf(path, sizeof path, "%s/no_such_plugin.so", dir);
    assert_int_equal(ember_plugin_load(path, NULL), -EMBER_ENOENT);
    error_says(path);

    assert_int_equal(ember_plugin_load(bad_entry, NULL), -EMBER_EINVAL);
    error_says("no ember_plugin_v1 (not an ember plugin)");
    assert_int_equal(ember_plugin_load(bad_abi, NULL), -EMBER_EABI);
    error_says("ABI 2, this ember speaks 1");
    /* by name, through $EMBER_PLUGIN_PATH: the message has the name and the file */
    assert_int_equal(ember_plugin_load("bad_abi", NULL), -EMBER_EABI);
    error_says("plugin 'bad_abi' (");
    error_says(bad_abi);

    snprintf(path, sizeof path, "%s/not_elf.so", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a shared object\n", f);
    fclose(f);
    assert_int_equal(ember_plugin_load(path, NULL), -EMBER_EINVAL);
    error_says("cannot load it");
    assert_int_equal(ember_plugin_load(NULL, NULL), -EMBER_EINVAL);

    /* "bad_clash.ok" comes before the clashing "echo": all or nothing */
    assert_int_equal(ember_plugin_load(bad_clash, NULL), -EMBER_EEXIST);
    error_says("handler 'echo' is already registered");
    assert_int_equal(ember_handler_register("bad_clash.ok", h_mine), 0);
    unsetenv("EMBER_PLUGIN_PATH");
}

static void the_search_path_is_env_then_install_then_beside_the_program(void **st)
{
    (void)st;
    setenv("EMBER_PLUGIN_PATH", "/x/a::/x/b", 1);
    char buf[8192], exe[4096], exedir[4096], want[4200];
    int n = ember_plugin_path(buf, sizeof buf);
    assert_int_equal(n, (int)strlen(buf));
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(k > 0);
    exe[k] = 0;
    snprintf(want, sizeof want, ":%s/plugins", dir_of(exe, exedir, sizeof exedir));
    assert_int_equal(strncmp(buf, "/x/a:/x/b:", 10), 0); /* the empty entry dropped */
    assert_true(strlen(buf) > strlen(want));
    assert_string_equal(buf + strlen(buf) - strlen(want), want);
    assert_non_null(strstr(buf, "/ember/plugins:")); /* the install's, between */
    /* too small a buffer: the length it needs, and its beginning */
    char small[8];
    assert_int_equal(ember_plugin_path(small, sizeof small), n);
    assert_string_equal(small, "/x/a:/x");
    unsetenv("EMBER_PLUGIN_PATH");
}

static void a_pool_runs_plugin_handlers_with_one_init_per_runner(void **st)
{
    (void)st;
    char log[128];
    snprintf(log, sizeof log, "%s/fini.log", tmpdir);
    setenv("EMBER_SAMPLE_LOG", log, 1); /* runners inherit it */
    struct fixture f;
    struct ember_pool_config cfg;
    fixture_config(&f, &cfg, "plugin", "good");
    cfg.min = 1;
    cfg.max = 1;
    cfg.max_concurrency = 2;
    cfg.plugins = sample;
    fixture_start(&f, &cfg, 1);
    int h = ember_handler(f.c, "sample.count");
    assert_true(h >= 0);
    /* two calls that end only when both are in the runner at once, on one context */
    ember_call_id id[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(ember_submit(f.c, h, "2", 1, 10 * EMBER_SECOND, &id[i]), 0);
    int pid = 0;
    unsigned seen = 0;
    for (int i = 0; i < 2; i++) {
        ember_result r;
        assert_int_equal(ember_wait(f.c, id[i], &r), 0);
        char text[96];
        snprintf(text, sizeof text, "%.*s", (int)r.len, (const char *)r.data);
        int p;
        unsigned inits;
        unsigned long calls;
        assert_int_equal(sscanf(text, "pid %d inits %u calls %lu", &p, &inits, &calls), 3);
        assert_int_equal(inits, 1);
        assert_true(calls == 1 || calls == 2);
        seen |= 1u << calls;
        if (pid) assert_int_equal(p, pid);
        pid = p;
        ember_result_release(f.c, &r);
    }
    assert_int_equal(seen, 6u); /* calls 1 and 2 */
    ember_result r;
    assert_int_equal(ember_call(f.c, h, NULL, 0, &r, 10 * EMBER_SECOND), 0);
    char want[96];
    int n = snprintf(want, sizeof want, "pid %d inits 1 calls 3", pid);
    assert_int_equal(r.len, (size_t)n);
    assert_memory_equal(r.data, want, (size_t)n);
    ember_result_release(f.c, &r);
    /* a handler without init: no context */
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "sample.echo"), "hi", 2, &r, 10 * EMBER_SECOND), 0);
    assert_int_equal(r.len, 2);
    assert_memory_equal(r.data, "hi", 2);
    ember_result_release(f.c, &r);
    fixture_stop(&f); /* drains the runner: its teardown runs */
    FILE *lf = fopen(log, "r");
    assert_non_null(lf);
    char line[96] = "";
    assert_non_null(fgets(line, sizeof line, lf));
    fclose(lf);
    snprintf(want, sizeof want, "fini %d 3\n", pid);
    assert_string_equal(line, want);
    unsetenv("EMBER_SAMPLE_LOG");
}

static void loading_a_file_twice_is_a_no_op(void **st)
{
    (void)st;
    const ember_plugin *a, *b, *c;
    assert_int_equal(ember_plugin_load(sample, &a), 0); /* the pool above loaded it */
    assert_string_equal(a->name, "sample");
    assert_int_equal(a->nhandlers, 3);
    assert_int_equal(a->abi, EMBER_PLUGIN_ABI);
    char dir[4096];
    setenv("EMBER_PLUGIN_PATH", dir_of(sample, dir, sizeof dir), 1);
    assert_int_equal(ember_plugin_load("sample", &b), 0);
    assert_ptr_equal(a, b);
    unsetenv("EMBER_PLUGIN_PATH");
    assert_int_equal(ember_plugin_inspect(sample, &c), 0);
    assert_ptr_equal(a, c);
    assert_int_equal(ember_handler_register("sample.count", h_mine), -EMBER_EEXIST);
    /* inspecting checks as loading does, and registers nothing */
    assert_int_equal(ember_plugin_inspect(bad_abi, &c), -EMBER_EABI);
    assert_null(c);
}

static void a_bad_plugin_option_starts_no_pool(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    fixture_config(&f, &cfg, "plugin", "none");
    char list[8400];
    snprintf(list, sizeof list, "%s,,%s", sample, bad_entry);
    cfg.plugins = list;
    ember_pool *pool;
    assert_int_equal(ember_pool_start(&cfg, &pool), -EMBER_EINVAL);
    error_says("no ember_plugin_v1");
    cfg.plugins = "no_such_plugin";
    assert_int_equal(ember_pool_start(&cfg, &pool), -EMBER_ENOENT);
    ember_client *c;
    assert_int_equal(ember_attach(f.name, &c), -EMBER_ENOPOOL);
}

/* Last: its handler's init fails in every runner of any later pool. */
static void a_failing_init_fails_the_boot(void **st)
{
    (void)st;
    struct fixture f;
    struct ember_pool_config cfg;
    fixture_config(&f, &cfg, "plugin", "init");
    cfg.min = 0;
    cfg.max = 1;
    cfg.plugins = bad_init;
    fixture_start(&f, &cfg, 0);
    ember_result r;
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "bad_init.x"), NULL, 0, &r, 10 * EMBER_SECOND),
                     -EMBER_EBOOT);
    error_says("handler 'bad_init.x': its init returned 7");
    error_says("exit status 7");
    ember_result_release(f.c, &r);
    fixture_stop(&f);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: test_plugin SAMPLE.so BAD_ENTRY.so BAD_ABI.so BAD_CLASH.so BAD_INIT.so\n");
        return 2;
    }
    sample = argv[1], bad_entry = argv[2], bad_abi = argv[3], bad_clash = argv[4], bad_init = argv[5];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ember-plugin-test.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_plugins_are_refused_with_their_reason),
        cmocka_unit_test(the_search_path_is_env_then_install_then_beside_the_program),
        cmocka_unit_test(a_pool_runs_plugin_handlers_with_one_init_per_runner),
        cmocka_unit_test(loading_a_file_twice_is_a_no_op),
        cmocka_unit_test(a_bad_plugin_option_starts_no_pool),
        cmocka_unit_test(a_failing_init_fails_the_boot),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {}
    return rc;
}
