/* plugins/sample/sample.c - a handler plugin for ember's tests (built into
 * build/plugins/sample.so, not installed).
 *
 *   sample.count [N]  "pid P inits I calls C": this runner's pid, how many
 *                     times sample.count's init ran in it, and the calls its
 *                     context has counted, this one included. With N, the
 *                     call first waits (until its deadline) for N calls of
 *                     this runner to have arrived: two calls given 2 end
 *                     only if they meet on the one context the runner's
 *                     workers share.
 *   sample.echo ARG   ARG back: a handler without init or context.
 *   sample.crash [SIG] kills its runner with signal SIG (default 11,
 *                     SIGSEGV): a job that crashes every time it runs.
 * sample.count's teardown appends "fini PID CALLS" to the file
 * $EMBER_SAMPLE_LOG when it is set, for a test to see that it ran. */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <ember/plugin.h>

struct counter {
    atomic_ulong calls;    /* calls started; relaxed: a count, ordering nothing */
    atomic_ulong arrived;  /* calls given N that have arrived; read by the others waiting */
};

/* inits in this process: written by the runner's main thread before its
 * workers start (which orders it before their loads) */
static atomic_uint inits;

static int count_init(void **ctx)
{
    struct counter *c = calloc(1, sizeof *c);
    if (!c) return 12;
    atomic_fetch_add_explicit(&inits, 1, memory_order_relaxed);
    *ctx = c;
    return 0;
}

static void count_fini(void *ctx)
{
    struct counter *c = ctx;
    const char *log = getenv("EMBER_SAMPLE_LOG");
    if (log && c) {
        char line[64];
        int n = snprintf(line, sizeof line, "fini %d %lu\n", (int)getpid(),
                         atomic_load_explicit(&c->calls, memory_order_relaxed));
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            if (write(fd, line, (size_t)n) < 0) {}
            close(fd);
        }
    }
    free(c);
}

/* Wait until N calls have arrived at C, or the job is given up (2). */
static int meet(struct counter *c, unsigned long n, const ember_job *job)
{
    atomic_fetch_add_explicit(&c->arrived, 1, memory_order_relaxed);
    const struct timespec ms = { 0, 1000000 };
    while (atomic_load_explicit(&c->arrived, memory_order_relaxed) < n) {
        if (ember_job_cancelled(job)) return 2;
        nanosleep(&ms, NULL);
    }
    return 0;
}

static int count(void *ctx, const void *args, size_t len, ember_out *out, const ember_job *job)
{
    struct counter *c = ctx;
    if (!c) return 1; /* the context was not handed over */
    unsigned long calls = atomic_fetch_add_explicit(&c->calls, 1, memory_order_relaxed) + 1;
    if (len) {
        char arg[24];
        snprintf(arg, sizeof arg, "%.*s", (int)(len < sizeof arg ? len : sizeof arg - 1),
                 (const char *)args);
        int rc = meet(c, strtoul(arg, NULL, 10), job);
        if (rc) return rc;
    }
    char buf[96];
    int n = snprintf(buf, sizeof buf, "pid %d inits %u calls %lu", (int)getpid(),
                     atomic_load_explicit(&inits, memory_order_relaxed), calls);
    return ember_out_write(out, buf, (size_t)n);
}

static int echo(void *ctx, const void *args, size_t len, ember_out *out, const ember_job *job)
{
    (void)job;
    if (ctx) return 1; /* no init: no context */
    return ember_out_write(out, args, len);
}

static int crash(void *ctx, const void *args, size_t len, ember_out *out, const ember_job *job)
{
    (void)ctx, (void)out, (void)job;
    char arg[8] = "11";
    if (len && len < sizeof arg) {
        memcpy(arg, args, len);
        arg[len] = 0;
    }
    int sig = atoi(arg);
    signal(sig, SIG_DFL);
    raise(sig);
    abort();
}

static const ember_plugin_handler handlers[] = {
    { "sample.count", count, count_init, count_fini, "[N]",
      "count calls in a context made once per runner (N: wait for N calls to meet)" },
    { "sample.echo", echo, NULL, NULL, "ARG", "ARG back" },
    { "sample.crash", crash, NULL, NULL, "[SIG]", "kill the runner with signal SIG (default 11)" },
};

static const ember_plugin plugin = {
    EMBER_PLUGIN_ABI, "sample", "1.0", "handlers for ember's tests",
    handlers, sizeof handlers / sizeof handlers[0],
};

const ember_plugin *EMBER_PLUGIN_ENTRY(void) { return &plugin; }
