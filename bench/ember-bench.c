/* ember-bench - what one call costs, against the two mechanisms it is built
 * from, all measured in one run on this machine:
 *   spin_rtt_p50_us     busy-poll ping-pong between two processes (the limit)
 *   futex_rtt_p50_us    futex ping-pong, both sides asleep for 2 ms before each
 *                       round trip (the baseline of any round trip that puts a
 *                       process to sleep; measured like the cold call)
 *   call_rtt_warm_*     ember_call of the empty handler, 1 caller, 1 runner
 *   call_rtt_cold_p50_us the same with both sides parked before each call (2 ms
 *                       idle before each)
 * The spin baseline and the warm calls are measured in alternating rounds
 * (the host may move the vCPUs during a run).
 *   async_throughput_calls_per_s  one caller keeping 256 calls in flight,
 *                       collecting whichever ends first with ember_wait_any
 *                       (median of rounds)
 *   async_sweep_calls_per_s  the same collected with ember_wait on the ids
 *                       in submission order (the path before ember_wait_any)
 *   async_any_over_sweep  the first over the second (same run, alternating
 *                       rounds: 5 of 0.4 s, or 3 of 0.15 s with --quick)
 *   async_fd_calls_per_s  the same driven by poll() on ember_completion_fd,
 *                       then ember_wait_any(c, 0, ...) until -EMBER_EAGAIN
 *                       (absent where io_uring is refused)
 *   idle_cpu_percent    supervisor + runners of an idle pool over 5 s, in
 *                       percent of one core
 *   scale_from_zero_ms  first call on a fresh min-0 pool (no runner yet) until
 *                       its result: growth request, fork, boot, the call
 *   boot_ms             fork to ready of those runners (their table entries)
 *   fork_wait_ms        fork of this process, the child exiting at once, and
 *                       waitpid: the limit of any scale from zero (a runner is
 *                       a fork of the application's image)
 *   zero_over_fork      scale_from_zero_ms over fork_wait_ms; the two are
 *                       sampled alternately (one fork + wait before each first
 *                       call), medians of each
 * The scale-from-zero pools run unpinned, as a first call would, and so does
 * the fork + wait.
 * With two CPUs or more, the two sides of every measurement are pinned to
 * different CPUs ("pinned_apart" in the output).
 * Output: one JSON object per line: {"metric","value","unit",...}.
 * Each async round's three rates go to stderr.
 *   numa_local_share_percent  (--numa only, on a synthetic 2-node topology,
 *                       HWLOC_SYNTHETIC="node:2 core:1 pu:1", two CPUs or more)
 *                       a caller pinned to each node's CPU makes calls one at a
 *                       time; the share of calls a runner of the caller's own
 *                       node ran (50 is what no placement would give)
 * Usage: ember-bench [--quick] [--rtt | --numa | --zero]
 *   --zero only scale_from_zero_ms, boot_ms, fork_wait_ms and
 *          zero_over_fork (each sample's pair on stderr)
 *   --rtt  only the spin baseline and the warm calls: spin_rtt_p50_us,
 *          call_rtt_warm_p50_us, _p99_us and warm_over_spin on stdout, each
 *          round's two medians on stderr */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "lib/testing.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_u64);
    size_t i = (size_t)(p * (double)(n - 1));
    return (double)v[i] / 1000.0;
}

static void emit(const char *metric, double value, const char *unit, const char *extra)
{
    printf("{\"metric\":\"%s\",\"value\":%.4g,\"unit\":\"%s\"%s%s}\n", metric, value, unit,
           extra ? "," : "", extra ? extra : "");
    fflush(stdout);
}

/* With two CPUs or more, every measurement runs with its two sides on
 * different CPUs: this process on CPU 0, its peer (ping-pong child, or the
 * pool's runner) on CPU 1. That is how a pool runs (a runner on its own core),
 * and it keeps the scheduler from putting a woken process on the waker's CPU
 * in some rounds and not in others. */
static bool g_pin;

static void pin_to(pid_t pid, int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    sched_setaffinity(pid, sizeof s, &s);
}

/* One fork of this process whose child exits at once, and its waitpid:
 * the time in ns. */
static uint64_t fork_wait(void)
{
    uint64_t t0 = ember__now_ns();
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(pid, NULL, 0);
    return ember__now_ns() - t0;
}

/* First calls on fresh min-0 pools: N samples of scale-from-zero and boot
 * time, each after a sample of fork + wait (FORKW), in ns. */
static int scale_from_zero(int n, uint64_t *first, uint64_t *boot, uint64_t *forkw)
{
    for (int i = 0; i < n; i++) {
        forkw[i] = fork_wait();
        struct ember_pool_config cfg;
        ember_pool_config_init(&cfg);
        char name[40];
        snprintf(name, sizeof name, "bench0-%d-%d", (int)getpid(), i);
        cfg.name = name;
        cfg.min = 0;
        cfg.max = 1;
        ember_pool *pool;
        ember_client *c;
        if (ember_pool_start(&cfg, &pool)) return -1;
        if (ember_attach(name, &c)) return -1;
        int h = ember_handler(c, "noop");
        ember_result r;
        uint64_t t0 = ember__now_ns();
        int rc = ember_call(c, h, NULL, 0, &r, EMBER_TIMEOUT_DEFAULT);
        first[i] = ember__now_ns() - t0;
        ember_result_release(c, &r);
        struct ember_runner_ent *re = &ember__client_view(c)->runners[0];
        uint64_t ready = atomic_load(&re->ready_ns);
        boot[i] = ready > re->started_ns ? ready - re->started_ns : 0;
        ember_detach(c);
        ember_pool_stop(pool, 1000000000ll);
        if (rc) return -1;
    }
    return 0;
}

/* Scale from zero against fork + wait, unpinned: N alternating samples of
 * each; emitted as medians (and each pair to stderr when VERBOSE). */
static int zero_vs_fork(int n, const char *extra, bool verbose)
{
    cpu_set_t all;
    CPU_ZERO(&all);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < ncpu && i < CPU_SETSIZE; i++) CPU_SET((int)i, &all);
    sched_setaffinity(0, sizeof all, &all);
    uint64_t zero_lat[50], boot_lat[50], fork_lat[50];
    if (n > 50) n = 50;
    if (scale_from_zero(n, zero_lat, boot_lat, fork_lat)) {
        fprintf(stderr, "ember-bench: scale from zero: %s\n", ember_last_error());
        return 1;
    }
    if (verbose)
        for (int i = 0; i < n; i++)
            fprintf(stderr, "sample %d fork_wait %.3f ms scale_from_zero %.3f ms boot %.3f ms\n", i,
                    (double)fork_lat[i] / 1e6, (double)zero_lat[i] / 1e6, (double)boot_lat[i] / 1e6);
    double zero50 = pct(zero_lat, (size_t)n, 0.5) / 1000.0, boot50 = pct(boot_lat, (size_t)n, 0.5) / 1000.0;
    double fork50 = pct(fork_lat, (size_t)n, 0.5) / 1000.0;
    emit("scale_from_zero_ms", zero50, "ms", extra);
    emit("boot_ms", boot50, "ms", extra);
    emit("fork_wait_ms", fork50, "ms", extra);
    emit("zero_over_fork", zero50 / fork50, "ratio", extra);
    return 0;
}

/* --numa: callers pinned to CPU 0 and CPU 1 (nodes 0 and 1 of the synthetic
 * topology) each make N calls one at a time; how many ran on their node. */
struct numa_caller { ember_client *c; int cpu; long n, local, served; };
static void *numa_caller(void *p)
{
    struct numa_caller *a = p;
    pin_to(0, a->cpu);
    int h = ember_handler(a->c, "noop");
    for (long i = 0; i < a->n; i++) {
        ember_result r;
        if (ember_call(a->c, h, NULL, 0, &r, EMBER_TIMEOUT_DEFAULT) == 0) {
            a->served++;
            a->local += r.node == a->cpu;
        }
        ember_result_release(a->c, &r);
    }
    return NULL;
}
static int numa_share(long n, const char *extra)
{
    struct ember_pool_config cfg;
    ember_pool_config_init(&cfg);
    char name[40];
    snprintf(name, sizeof name, "benchnuma-%d", (int)getpid());
    cfg.name = name;
    cfg.min = cfg.max = 2;
    ember_pool *pool;
    ember_client *c;
    if (ember_pool_start(&cfg, &pool) || ember_pool_wait_ready(pool, 2, 5000000000ll) ||
        ember_attach(name, &c)) {
        fprintf(stderr, "ember-bench: numa pool: %s\n", ember_last_error());
        return 1;
    }
    if (ember__client_view(c)->nrings != 2) {
        fprintf(stderr, "ember-bench: --numa needs HWLOC_SYNTHETIC=\"node:2 core:1 pu:1\"\n");
        ember_detach(c);
        ember_pool_stop(pool, 1000000000ll);
        return 1;
    }
    struct numa_caller a[2] = { { c, 0, n, 0, 0 }, { c, 1, n, 0, 0 } };
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, numa_caller, &a[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    ember_detach(c);
    ember_pool_stop(pool, 1000000000ll);
    if (a[0].served + a[1].served != 2 * n) return 1;
    emit("numa_local_share_percent", 100.0 * (double)(a[0].local + a[1].local) / (double)(2 * n),
         "percent", extra);
    return 0;
}

/* Ping-pong between this process and a child over one shared word; N
 * round trips written to LAT. */
static void pingpong(long n, bool sleep_mode, uint64_t *lat)
{
    _Atomic uint32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    atomic_store(w, 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (g_pin) pin_to(0, 1);
        for (long i = 0; i < n; i++) {
            if (sleep_mode) {
                while (atomic_load(w) != 1) ember__futex_wait(w, 0, 0);
                atomic_store(w, 0);
                ember__futex_wake(w, 1);
            } else {
                while (atomic_load_explicit(w, memory_order_acquire) != 1) ember__cpu_relax();
                atomic_store_explicit(w, 0, memory_order_release);
            }
        }
        _exit(0);
    }
    for (long i = 0; i < n; i++) {
        if (sleep_mode) { /* as for cold calls: both sides long asleep first */
            struct timespec gap = { 0, 2000000 };
            nanosleep(&gap, NULL);
        }
        uint64_t t = ember__now_ns();
        if (sleep_mode) {
            atomic_store(w, 1);
            ember__futex_wake(w, 1);
            while (atomic_load(w) != 0) ember__futex_wait(w, 1, 0);
        } else {
            atomic_store_explicit(w, 1, memory_order_release);
            while (atomic_load_explicit(w, memory_order_acquire) != 0) ember__cpu_relax();
        }
        lat[i] = ember__now_ns() - t;
    }
    waitpid(pid, NULL, 0);
    munmap((void *)w, 4096);
}

static uint64_t task_cpu_ns(pid_t pid)
{
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return 0;
    uint64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p2[300];
        snprintf(p2, sizeof p2, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(p2, "r");
        if (!f) continue;
        if (fgets(buf, sizeof buf, f)) sum += strtoull(buf, NULL, 10);
        fclose(f);
    }
    closedir(d);
    return sum;
}

/* One round of the async benchmark: one caller keeps WINDOW calls of the
 * empty handler in flight for SPAN ns, submitting a new call for each one it
 * collects; returns the calls collected per second (-1 on a failure). The
 * window is drained after the clock stops. Collected by:
 *   ASYNC_SWEEP  ember_wait on each id in submission order (the path that
 *                was there before ember_wait_any)
 *   ASYNC_ANY    ember_wait_any with no time limit, whichever ends first
 *   ASYNC_FD     poll() on ember_completion_fd FD until readable, then
 *                ember_wait_any(c, 0, ...) until -EMBER_EAGAIN
 * The fd rounds use a client of their own: the fd stays armed after its
 * round (done_armed counted), which would make every finisher of the other
 * rounds' calls wake a futex. */
enum { WINDOW = 256 };
enum async_mode { ASYNC_SWEEP, ASYNC_ANY, ASYNC_FD };

static double async_round(ember_client *c, int h, enum async_mode m, int fd, uint64_t span)
{
    ember_call_id ids[WINDOW], id;
    ember_result r;
    for (int i = 0; i < WINDOW; i++)
        if (ember_submit(c, h, NULL, 0, EMBER_TIMEOUT_DEFAULT, &ids[i])) return -1;
    long done = 0;
    uint64_t t0 = ember__now_ns(), t1 = 0;
    for (int i = 0; !t1;) {
        int got = 1;
        ember_call_id *to = &id; /* where the next call's id goes */
        if (m == ASYNC_SWEEP) {
            if (ember_wait(c, ids[i], &r)) return -1;
            ember_result_release(c, &r);
            to = &ids[i];
            i = (i + 1) % WINDOW;
        } else if (m == ASYNC_ANY) {
            if (ember_wait_any(c, EMBER_NEVER, &id, &r) || r.status) return -1;
            ember_result_release(c, &r);
        } else {
            struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
            if (poll(&p, 1, 10000) != 1) return -1;
            int rc;
            for (got = 0; (rc = ember_wait_any(c, 0, &id, &r)) == 0; got++) {
                if (r.status) return -1;
                ember_result_release(c, &r);
            }
            if (rc != -EMBER_EAGAIN && rc != -EMBER_ENOCALLS) return -1; /* all collected */
        }
        for (int g = 0; g < got && !t1; g++) {
            if ((++done & 255) == 0 && ember__now_ns() - t0 > span) t1 = ember__now_ns();
            else if (ember_submit(c, h, NULL, 0, EMBER_TIMEOUT_DEFAULT, to)) return -1;
        }
    }
    if (m == ASYNC_SWEEP) {
        for (int i = 0; i < WINDOW; i++)
            if (ember_wait(c, ids[i], &r) == 0) ember_result_release(c, &r);
    } else {
        while (ember_wait_any(c, EMBER_NEVER, &id, &r) == 0) ember_result_release(c, &r);
    }
    return (double)done / ((double)(t1 - t0) / 1e9);
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++) /* insertion sort: a handful of rounds */
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    bool quick = false, rtt_only = false, numa = false, zero = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = true;
        else if (strcmp(argv[i], "--rtt") == 0) rtt_only = true;
        else if (strcmp(argv[i], "--numa") == 0) numa = true;
        else if (strcmp(argv[i], "--zero") == 0) zero = true;
        else {
            fprintf(stderr, "usage: ember-bench [--quick] [--rtt | --numa | --zero]\n");
            return 2;
        }
    }
    long n = quick ? 100000 : 1000000;
    long ncold = quick ? 300 : 2000;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    g_pin = ncpu >= 2;
    char extra[160];
    snprintf(extra, sizeof extra, "\"quick\":%s,\"cpus\":%ld,\"pinned_apart\":%s",
             quick ? "true" : "false", ncpu, g_pin ? "true" : "false");
    if (numa) return numa_share(quick ? 5000 : 50000, extra);
    if (zero) return zero_vs_fork(quick ? 15 : 50, extra, true);

    struct ember_pool_config cfg;
    ember_pool_config_init(&cfg);
    char name[40];
    snprintf(name, sizeof name, "bench-%d", (int)getpid());
    cfg.name = name;
    cfg.min = cfg.max = 1;
    ember_pool *pool;
    int rc = ember_pool_start(&cfg, &pool);
    if (rc || ember_pool_wait_ready(pool, 1, 5000000000ll)) {
        fprintf(stderr, "ember-bench: pool: %s\n", ember_last_error());
        return 1;
    }
    ember_client *c;
    if (ember_attach(name, &c)) return 1;
    int h = ember_handler(c, "noop");
    if (g_pin) { /* the runner (one thread: max_concurrency 1) on CPU 1, us on CPU 0 */
        pin_to(0, 0);
        pin_to((pid_t)atomic_load(&ember__client_view(c)->runners[0].pid), 1);
    }
    ember_result r;
    uint64_t *lat = malloc((size_t)n * sizeof *lat), *spin_lat = malloc((size_t)n * sizeof *lat);
    long nf = quick ? 300 : 2000;
    uint64_t *futex_lat = malloc((size_t)nf * sizeof *lat);
    pingpong(nf, true, futex_lat);
    double futex = pct(futex_lat, (size_t)nf, 0.5);
    /* The spin baseline and the warm calls alternate in rounds, so that both
     * see the same machine: on a VM the host may move the vCPUs at any time,
     * and the cost of a cache-line transfer moves with them. */
    const int rounds = 10;
    long per = n / rounds;
    for (long i = 0; i < 10000; i++) { /* warm up */
        ember_call(c, h, NULL, 0, &r, EMBER_TIMEOUT_DEFAULT);
        ember_result_release(c, &r);
    }
    for (int k = 0; k < rounds; k++) {
        pingpong(per, false, spin_lat + k * per);
        for (long i = 0; i < 2000; i++) { /* the runner spins again */
            ember_call(c, h, NULL, 0, &r, EMBER_TIMEOUT_DEFAULT);
            ember_result_release(c, &r);
        }
        for (long i = k * per; i < (k + 1) * per; i++) {
            uint64_t t = ember__now_ns();
            rc = ember_call(c, h, NULL, 0, &r, EMBER_TIMEOUT_DEFAULT);
            lat[i] = ember__now_ns() - t;
            ember_result_release(c, &r);
            if (rc) return 1;
        }
    }
    if (rtt_only) /* per round, on stderr: the host moves vCPUs between rounds */
        for (int k = 0; k < rounds; k++)
            fprintf(stderr, "round %d spin %.3f warm %.3f\n", k, pct(spin_lat + k * per, (size_t)per, 0.5),
                    pct(lat + k * per, (size_t)per, 0.5));
    n = per * rounds;
    double spin = pct(spin_lat, (size_t)n, 0.5);
    double warm50 = pct(lat, (size_t)n, 0.5), warm99 = pct(lat, (size_t)n, 0.99);
    if (rtt_only) {
        emit("spin_rtt_p50_us", spin, "us", extra);
        emit("call_rtt_warm_p50_us", warm50, "us", extra);
        emit("call_rtt_warm_p99_us", warm99, "us", extra);
        emit("warm_over_spin", warm50 / spin, "ratio", extra);
        ember_detach(c);
        ember_pool_stop(pool, 1000000000ll);
        return 0;
    }

    for (long i = 0; i < ncold; i++) {
        struct timespec ts = { 0, 2000000 }; /* 2 ms: far past every spin budget */
        nanosleep(&ts, NULL);
        uint64_t t = ember__now_ns();
        rc = ember_call(c, h, NULL, 0, &r, EMBER_TIMEOUT_DEFAULT);
        lat[i] = ember__now_ns() - t;
        ember_result_release(c, &r);
    }
    double cold50 = pct(lat, (size_t)ncold, 0.5);

    /* async: the same work collected three ways, in alternating rounds so
     * that all see the same machine */
    const int arounds = quick ? 3 : 5;
    uint64_t aspan = quick ? 150000000ull : 400000000ull;
    double sweep_r[5], any_r[5], fd_r[5];
    ember_client *fc = NULL; /* the fd rounds' own client: see async_round */
    int afd = -1;
    if (ember_attach(name, &fc) == 0) {
        afd = ember_completion_fd(fc);
        if (afd < 0) ember_detach(fc), fc = NULL;
    }
    for (int k = 0; k < arounds; k++) {
        sweep_r[k] = async_round(c, h, ASYNC_SWEEP, -1, aspan);
        any_r[k] = async_round(c, h, ASYNC_ANY, -1, aspan);
        fd_r[k] = fc ? async_round(fc, h, ASYNC_FD, afd, aspan) : 0;
        if (sweep_r[k] < 0 || any_r[k] < 0 || fd_r[k] < 0) {
            fprintf(stderr, "ember-bench: async round %d: %s\n", k, ember_last_error());
            return 1;
        }
        /* per round, on stderr: the host moves vCPUs between rounds */
        fprintf(stderr, "async round %d sweep %.0f wait_any %.0f fd %.0f\n", k, sweep_r[k], any_r[k],
                fd_r[k]);
    }
    if (fc) ember_detach(fc);
    double sweep = median(sweep_r, arounds), any = median(any_r, arounds);
    double fdt = median(fd_r, arounds);

    /* idle: let everything park, then count CPU time of supervisor + runners */
    struct timespec settle = { 0, 300000000 };
    nanosleep(&settle, NULL);
    pid_t sup = ember_pool_supervisor_pid(pool);
    pid_t run = (pid_t)atomic_load(&ember__client_view(c)->runners[0].pid);
    uint64_t c0 = task_cpu_ns(sup) + task_cpu_ns(run), w0 = ember__now_ns();
    struct timespec five = { 5, 0 };
    nanosleep(&five, NULL);
    uint64_t c1 = task_cpu_ns(sup) + task_cpu_ns(run), w1 = ember__now_ns();
    double idle = 100.0 * (double)(c1 - c0) / (double)(w1 - w0);

    emit("spin_rtt_p50_us", spin, "us", extra);
    emit("futex_rtt_p50_us", futex, "us", extra);
    emit("call_rtt_warm_p50_us", warm50, "us", extra);
    emit("call_rtt_warm_p99_us", warm99, "us", extra);
    emit("call_rtt_cold_p50_us", cold50, "us", extra);
    emit("async_throughput_calls_per_s", any, "calls/s", extra);
    emit("async_sweep_calls_per_s", sweep, "calls/s", extra);
    emit("async_any_over_sweep", any / sweep, "ratio", extra);
    if (fc) emit("async_fd_calls_per_s", fdt, "calls/s", extra);
    emit("idle_cpu_percent", idle, "percent", extra);
    if (zero_vs_fork(quick ? 15 : 50, extra, false)) return 1; /* scale from zero, unpinned */
    ember_detach(c);
    ember_pool_stop(pool, 1000000000ll);
    free(lat);
    free(spin_lat);
    free(futex_lat);
    return 0;
}
