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
 *   bare_ring_calls_per_s  the mechanism alone: a bare ring with slots
 *                       between two spinning processes, 256 in flight, in
 *                       the async rounds (async_vs_bare: the first over it)
 *   bare_ring_batched_calls_per_s  the same, each side publishing its count
 *                       once per batch (async_vs_bare_batched: a stricter
 *                       limit, reported beside the other)
 *   callers_throughput_calls_per_s, callers_p99_us  ("callers": 1 and 16, or
 *                       1, 2, 4, 8, 16, 64 with --full) caller processes on
 *                       one CPU, the one runner on the other, calls one at a
 *                       time; contended_16_throughput_ratio: 16 over 1
 *   fork_wait_p50_us    fork of this process, the child exiting at once, and
 *                       waitpid: the limit of any scale from zero (a runner is
 *                       a fork of the application's image); zero_over_fork:
 *                       scale_from_zero over it, the two sampled alternately
 *                       (one fork + wait before each first call), medians
 *   supervisor_rss_kib, runner_overhead_kib, runner_rss_kib  a pool of 4
 *                       runners at rest: the supervisor's VmRSS, a runner's
 *                       pages of its own outside the pool's segment (smaps
 *                       Private_*), and its VmRSS (medians)
 *   warm_over_spin, cold_over_futex  the calls over their limits
 * --full adds per system (ember, spin, futex, pipe): rtt_p50_us, rtt_p99_us,
 * rtt_p99_9_us and the CDF (rtt_cdf_us, "p"); futex and pipe ping-pong back
 * to back; payloads of the echo handler, 8 B to 16 MiB ("bytes"):
 * payload_rtt_p50_us, _p99_us, payload_gbps (both ways), and memcpy's.
 * Every line says its "system": ember, or the limit it is (spin,
 * futex_cold, bare_ring, fork_wait, memcpy...).
 * The scale-from-zero pools run unpinned, as a first call would, and so does
 * the fork + wait.
 * With two CPUs or more, the two sides of every measurement are pinned to
 * different CPUs ("pinned_apart" in the output): this process and its
 * callers on CPU 0, every thread of the runner on CPU 1 (runner_boot binds
 * the runner before it starts its workers).
 * Output: one JSON object per line: {"metric","value","unit",...}.
 * Each async round's three rates go to stderr.
 *   numa_local_share_percent  (--numa only, on a synthetic 2-node topology,
 *                       HWLOC_SYNTHETIC="node:2 core:1 pu:1", two CPUs or more)
 *                       a caller pinned to each node's CPU makes calls one at a
 *                       time; the share of calls a runner of the caller's own
 *                       node ran (50 is what no placement would give)
 * Usage: ember-bench [--quick | --full] [--rtt | --numa | --zero | --async]
 *   --async only the async rounds and the bare ring: async_throughput_calls_per_s,
 *          async_sweep_calls_per_s, async_fd_calls_per_s, bare_ring_calls_per_s
 *          and async_vs_bare (each round's rates on stderr)
 *   --zero only scale_from_zero_ms, boot_ms, fork_wait_p50_us and
 *          zero_over_fork (each sample's pair on stderr)
 *   --rtt  only the spin baseline and the warm calls: spin_rtt_p50_us,
 *          call_rtt_warm_p50_us, _p99_us and warm_over_spin on stdout, each
 *          round's two medians on stderr */
#include <dirent.h>
#include <limits.h>
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

/* The pools' runner_boot: runs in the runner's only thread before it starts
 * its workers, which inherit the binding, so every thread of the runner
 * (control and workers) is on CPU 1. sched_setaffinity(pid) from outside
 * would bind the main thread alone. */
static int pin_runner_boot(void *arg, char *msg, size_t len)
{
    (void)arg, (void)msg, (void)len;
    pin_to(0, 1);
    return 0;
}

/* One fork of this process whose child exits at once, and its waitpid:
 * the time in ns. */
static uint64_t fork_wait_once(void)
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
        forkw[i] = fork_wait_once();
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
    emit("fork_wait_p50_us", fork50 * 1000.0, "us", extra);
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

/* Ping-pong between this process and a child; N round trips written to
 * LAT. PP_SPIN: both spin on one shared word. PP_FUTEX_COLD: the same word
 * with futex waits, both sides asleep for 2 ms before each round trip.
 * PP_FUTEX: futex waits back to back (each side sleeps until woken).
 * PP_PIPE: one byte each way through two pipes (read blocks). */
enum pp_mode { PP_SPIN, PP_FUTEX_COLD, PP_FUTEX, PP_PIPE };
static void pingpong(long n, enum pp_mode m, uint64_t *lat)
{
    _Atomic uint32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    atomic_store(w, 0);
    bool sleep_mode = m == PP_FUTEX_COLD || m == PP_FUTEX;
    int ab[2], ba[2];
    if (m == PP_PIPE && (pipe(ab) || pipe(ba))) abort();
    pid_t pid = fork();
    if (pid == 0) {
        if (g_pin) pin_to(0, 1);
        char b;
        for (long i = 0; i < n; i++) {
            if (m == PP_PIPE) {
                if (read(ab[0], &b, 1) != 1 || write(ba[1], &b, 1) != 1) _exit(1);
            } else if (sleep_mode) {
                while (atomic_load(w) != 1) ember__futex_wait(w, 0, 0);
                atomic_store(w, 0);
                ember__futex_wake(w, 1);
            } else {
                /* acquire: pairs with the parent's release of 1 */
                while (atomic_load_explicit(w, memory_order_acquire) != 1) ember__cpu_relax();
                /* release: pairs with the parent's acquire of 0 */
                atomic_store_explicit(w, 0, memory_order_release);
            }
        }
        _exit(0);
    }
    char b = 'x';
    for (long i = 0; i < n; i++) {
        if (m == PP_FUTEX_COLD) { /* as for cold calls: both sides long asleep first */
            struct timespec gap = { 0, 2000000 };
            nanosleep(&gap, NULL);
        }
        uint64_t t = ember__now_ns();
        if (m == PP_PIPE) {
            if (write(ab[1], &b, 1) != 1 || read(ba[0], &b, 1) != 1) abort();
        } else if (sleep_mode) {
            atomic_store(w, 1);
            ember__futex_wake(w, 1);
            while (atomic_load(w) != 0) ember__futex_wait(w, 1, 0);
        } else {
            /* release: pairs with the child's acquire of 1 */
            atomic_store_explicit(w, 1, memory_order_release);
            /* acquire: pairs with the child's release of 0 */
            while (atomic_load_explicit(w, memory_order_acquire) != 0) ember__cpu_relax();
        }
        lat[i] = ember__now_ns() - t;
    }
    waitpid(pid, NULL, 0);
    if (m == PP_PIPE) close(ab[0]), close(ab[1]), close(ba[0]), close(ba[1]);
    munmap((void *)w, 4096);
}

/* The mechanism alone: a bare ring with slots between two spinning
 * processes. The caller writes a call's argument into a slot it owns and
 * publishes the slot's index on a submission ring; the runner reads it,
 * writes the result into the slot and publishes the index on a completion
 * ring. Each ring has one writer, each index is published with one release
 * store on a line only its writer writes, and 256 calls are in flight, as in
 * the async benchmark. No crash safety, no deadlines, no waking: the limit
 * of any shared-memory pool on this machine. BATCHED: each side publishes
 * its count once for all the calls it found ready (the runner after running
 * every call it saw, the caller after resubmitting every result it
 * collected), so each count's line crosses once per batch instead of once
 * per call: a stricter limit, which a pool that publishes per call (as
 * ember does, for crash safety) is not held to. Returns calls per second
 * over SPAN ns. */
enum { BARE_N = 256 };
struct bare {
    _Alignas(64) _Atomic uint64_t sub_tail;  /* caller writes: calls published */
    _Alignas(64) _Atomic uint64_t comp_tail; /* runner writes: results published */
    _Alignas(64) _Atomic uint32_t stop;      /* caller writes once */
    _Alignas(64) uint32_t subq[BARE_N];      /* caller writes, runner reads */
    _Alignas(64) uint32_t compq[BARE_N];     /* runner writes, caller reads */
    struct { _Alignas(64) uint64_t arg, res; } slot[BARE_N];
};

static double bare_ring(uint64_t span, bool batched)
{
    struct bare *b = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) return -1;
    memset(b, 0, sizeof *b);
    pid_t pid = fork();
    if (pid == 0) {
        if (g_pin) pin_to(0, 1);
        uint64_t h = 0, ct = 0;
        /* relaxed: only tells the runner to leave; no data rides on it */
        while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
            /* acquire: pairs with the caller's release of sub_tail, so the
             * index and the slot's argument are visible */
            uint64_t t = atomic_load_explicit(&b->sub_tail, memory_order_acquire);
            if (h == t) {
                ember__cpu_relax();
                continue;
            }
            for (; h < t; h++) {
                uint32_t i = b->subq[h % BARE_N];
                b->slot[i].res = b->slot[i].arg + 1;
                b->compq[ct++ % BARE_N] = i;
                /* release: pairs with the caller's acquire of comp_tail
                 * (the result and the index before the count) */
                if (!batched || h + 1 == t) atomic_store_explicit(&b->comp_tail, ct, memory_order_release);
            }
        }
        _exit(0);
    }
    uint64_t st = 0, ch = 0, done = 0, bad = 0;
    for (uint32_t i = 0; i < BARE_N; i++) {
        b->slot[i].arg = i;
        b->subq[st % BARE_N] = i;
        /* release: pairs with the runner's acquire of sub_tail */
        atomic_store_explicit(&b->sub_tail, ++st, memory_order_release);
    }
    uint64_t t0 = ember__now_ns(), t1 = 0;
    while (!t1) {
        /* acquire: pairs with the runner's release of comp_tail */
        uint64_t ct = atomic_load_explicit(&b->comp_tail, memory_order_acquire);
        if (ch == ct) {
            ember__cpu_relax();
            continue;
        }
        for (; ch < ct; ch++) {
            uint32_t i = b->compq[ch % BARE_N];
            bad += b->slot[i].res != b->slot[i].arg + 1;
            if ((++done & 255) == 0 && ember__now_ns() - t0 > span) t1 = ember__now_ns();
            b->slot[i].arg = done;
            b->subq[st++ % BARE_N] = i;
            /* release: pairs with the runner's acquire of sub_tail */
            if (!batched || ch + 1 == ct) atomic_store_explicit(&b->sub_tail, st, memory_order_release);
        }
    }
    atomic_store_explicit(&b->stop, 1, memory_order_relaxed);
    waitpid(pid, NULL, 0);
    munmap(b, sizeof *b);
    return bad ? -1 : (double)done / ((double)(t1 - t0) / 1e9);
}

/* K caller processes (all on CPU 0, the runner on CPU 1) each make calls
 * of the empty handler one at a time on pool NAME for SPAN ns, starting
 * together. Returns the calls per second of all of them; the latencies of
 * the first CAP / K calls of each go to LAT, their count to *NLAT. */
struct callers_shm {
    _Atomic uint32_t ready, go, failed; /* seq_cst: a handful of handshakes */
    _Atomic uint64_t calls;
    uint64_t t_end;                     /* written before go */
};
static double callers_round(const char *name, int k, uint64_t span, uint64_t *lat, size_t cap,
                            size_t *nlat)
{
    size_t per = cap / (size_t)k;
    size_t shm_len = sizeof(struct callers_shm) + 64 + cap * sizeof(uint64_t) + (size_t)k * sizeof(uint64_t);
    void *m = mmap(NULL, shm_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return -1;
    struct callers_shm *sh = m;
    memset(sh, 0, sizeof *sh);
    uint64_t *shlat = (uint64_t *)((char *)m + sizeof *sh + 64), *shn = shlat + cap;
    pid_t pids[64];
    for (int j = 0; j < k; j++) {
        pids[j] = fork();
        if (pids[j] == 0) {
            ember_client *cc;
            ember_result r;
            if (ember_attach(name, &cc)) {
                atomic_fetch_add(&sh->failed, 1);
                atomic_fetch_add(&sh->ready, 1);
                _exit(1);
            }
            int h = ember_handler(cc, "noop");
            for (int i = 0; i < 200; i++)
                if (ember_call(cc, h, NULL, 0, &r, EMBER_TIMEOUT_DEFAULT) == 0) ember_result_release(cc, &r);
            atomic_fetch_add(&sh->ready, 1);
            while (!atomic_load(&sh->go)) ember__futex_wait(&sh->go, 0, 0);
            uint64_t calls = 0, t_end = sh->t_end, *mine = shlat + (size_t)j * per;
            for (;;) {
                uint64_t t = ember__now_ns();
                if (t >= t_end) break;
                int rc = ember_call(cc, h, NULL, 0, &r, EMBER_TIMEOUT_DEFAULT);
                uint64_t d = ember__now_ns() - t;
                if (rc) {
                    atomic_fetch_add(&sh->failed, 1);
                    break;
                }
                ember_result_release(cc, &r);
                if (calls < per) mine[calls] = d;
                calls++;
            }
            shn[j] = calls < per ? calls : per;
            atomic_fetch_add(&sh->calls, calls);
            ember_detach(cc);
            _exit(0);
        }
    }
    while (atomic_load(&sh->ready) < (uint32_t)k) {
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
    }
    sh->t_end = ember__now_ns() + span;
    atomic_store(&sh->go, 1);
    ember__futex_wake(&sh->go, INT_MAX);
    for (int j = 0; j < k; j++) waitpid(pids[j], NULL, 0);
    double rate = atomic_load(&sh->failed) ? -1 : (double)atomic_load(&sh->calls) / ((double)span / 1e9);
    size_t n = 0;
    for (int j = 0; j < k; j++) {
        memmove(lat + n, shlat + (size_t)j * per, shn[j] * sizeof *lat);
        n += shn[j];
    }
    *nlat = n;
    munmap(m, shm_len);
    return rate;
}

/* Resident kB of PID: the supervisor's VmRSS (status), or with PRIVATE the
 * pages only PID maps outside the pool's segment (smaps: Private_Clean +
 * Private_Dirty of every mapping not in /dev/shm), what a runner costs
 * beyond the pages it shares with the supervisor. */
static long mem_kib(pid_t pid, bool private)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, private ? "smaps" : "status");
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long sum = 0, v;
    bool shm = false;
    while (fgets(line, sizeof line, f)) {
        if (!private) {
            if (sscanf(line, "VmRSS: %ld", &v) == 1) sum = v;
            continue;
        }
        unsigned long a, b2;
        if (sscanf(line, "%lx-%lx ", &a, &b2) == 2 && strchr(line, ':') > strchr(line, ' ')) {
            shm = strstr(line, "/dev/shm/") != NULL;
            continue;
        }
        if (!shm && (sscanf(line, "Private_Clean: %ld", &v) == 1 || sscanf(line, "Private_Dirty: %ld", &v) == 1))
            sum += v;
    }
    fclose(f);
    return sum;
}

/* A pool of N runners at rest: the supervisor's resident memory and each
 * runner's own pages (median). Started before this process grows, since the
 * supervisor is forked from it. */
static int memory_figures(int n, long *sup_kib, long *runner_kib, long *runner_rss_kib)
{
    struct ember_pool_config cfg;
    ember_pool_config_init(&cfg);
    char name[40];
    snprintf(name, sizeof name, "benchmem-%d", (int)getpid());
    cfg.name = name;
    cfg.min = cfg.max = (unsigned)n;
    ember_pool *pool;
    ember_client *c;
    if (ember_pool_start(&cfg, &pool)) return -1;
    if (ember_pool_wait_ready(pool, (unsigned)n, 5000000000ll) || ember_attach(name, &c)) {
        ember_pool_stop(pool, 1000000000ll);
        return -1;
    }
    int h = ember_handler(c, "noop");
    for (int i = 0; i < 100; i++) { /* every runner has run calls */
        ember_result r;
        if (ember_call(c, h, NULL, 0, &r, EMBER_TIMEOUT_DEFAULT) == 0) ember_result_release(c, &r);
    }
    struct timespec settle = { 0, 200000000 };
    nanosleep(&settle, NULL);
    *sup_kib = mem_kib(ember_pool_supervisor_pid(pool), false);
    long own[64], rss[64];
    for (int i = 0; i < n && i < 64; i++) {
        pid_t p = (pid_t)atomic_load(&ember__client_view(c)->runners[i].pid);
        own[i] = mem_kib(p, true);
        rss[i] = mem_kib(p, false);
    }
    for (int i = 1; i < n; i++) /* medians */
        for (int j = i; j > 0 && own[j - 1] > own[j]; j--) {
            long t = own[j]; own[j] = own[j - 1], own[j - 1] = t;
            t = rss[j]; rss[j] = rss[j - 1], rss[j - 1] = t;
        }
    *runner_kib = own[n / 2];
    *runner_rss_kib = rss[n / 2];
    ember_detach(c);
    ember_pool_stop(pool, 1000000000ll);
    return *sup_kib < 0 || *runner_kib < 0 ? -1 : 0;
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

static char g_base[160]; /* the fields every line carries */

/* One JSON line of SYSTEM's METRIC; PARAMS: more fields ("\"bytes\":8"), or
 * NULL. */
static void emits(const char *metric, double value, const char *unit, const char *system,
                  const char *params)
{
    char extra[320];
    snprintf(extra, sizeof extra, "\"system\":\"%s\",%s%s%s", system, params ? params : "",
             params ? "," : "", g_base);
    emit(metric, value, unit, extra);
}

/* The latency CDF of SYSTEM's N samples (ns), as quantiles in us: what the
 * report plots. */
static void emit_cdf(const char *system, uint64_t *lat, size_t n)
{
    if (!n) return;
    qsort(lat, n, sizeof *lat, cmp_u64);
    static const double extra_p[] = { 0.995, 0.999, 0.9995, 0.9999 };
    for (int k = 0; k < 54; k++) {
        double p = k < 50 ? 0.01 + 0.02 * k : extra_p[k - 50];
        char par[32];
        snprintf(par, sizeof par, "\"p\":%.4f", p);
        emits("rtt_cdf_us", (double)lat[(size_t)(p * (double)(n - 1))] / 1000.0, "us", system, par);
    }
}

/* p50, p99 and p99.9 of SYSTEM's round trips as PREFIX_p50_us... */
static void emit_pcts(const char *prefix, const char *system, uint64_t *lat, size_t n)
{
    char m[64];
    static const double ps[] = { 0.5, 0.99, 0.999 };
    static const char *const nm[] = { "p50", "p99", "p99_9" };
    for (int k = 0; k < 3; k++) {
        snprintf(m, sizeof m, "%s_%s_us", prefix, nm[k]);
        emits(m, pct(lat, n, ps[k]), "us", system, NULL);
    }
}

/* The async rounds on pool NAME (client C, handler H): the same work
 * collected three ways, and the bare ring, in alternating rounds so that
 * all see the same machine; the medians to *ANY, *SWEEP, *FDT (*HAVE_FD:
 * measured) and *BARE. Returns 0, or -1 on a failure. */
static int async_rounds(ember_client *c, int h, const char *name, bool quick, double *any,
                        double *sweep, double *fdt, double *bare, double *bare_b, bool *have_fd)
{
    const int arounds = quick ? 3 : 5;
    uint64_t aspan = quick ? 150000000ull : 400000000ull;
    double sweep_r[5], any_r[5], fd_r[5], bare_r[5], bare_b_r[5];
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
        struct timespec park = { 0, 20000000 }; /* the runner parked: CPU 1 is the bare ring's */
        nanosleep(&park, NULL);
        bare_r[k] = bare_ring(aspan, false);
        bare_b_r[k] = bare_ring(aspan, true);
        if (sweep_r[k] < 0 || any_r[k] < 0 || fd_r[k] < 0 || bare_r[k] < 0 || bare_b_r[k] < 0) {
            fprintf(stderr, "ember-bench: async round %d: %s\n", k, ember_last_error());
            return -1;
        }
        /* per round, on stderr: the host moves vCPUs between rounds */
        fprintf(stderr, "async round %d sweep %.0f wait_any %.0f fd %.0f bare %.0f bare_batched %.0f\n", k,
                sweep_r[k], any_r[k], fd_r[k], bare_r[k], bare_b_r[k]);
    }
    if (fc) ember_detach(fc);
    *sweep = median(sweep_r, arounds), *any = median(any_r, arounds);
    *fdt = median(fd_r, arounds), *bare = median(bare_r, arounds);
    *bare_b = median(bare_b_r, arounds);
    *have_fd = fc != NULL;
    return 0;
}

int main(int argc, char **argv)
{
    bool quick = false, rtt_only = false, numa = false, full = false, zero = false, async_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = true;
        else if (strcmp(argv[i], "--full") == 0) full = true;
        else if (strcmp(argv[i], "--rtt") == 0) rtt_only = true;
        else if (strcmp(argv[i], "--numa") == 0) numa = true;
        else if (strcmp(argv[i], "--zero") == 0) zero = true;
        else if (strcmp(argv[i], "--async") == 0) async_only = true;
        else {
            fprintf(stderr, "usage: ember-bench [--quick | --full] [--rtt | --numa | --zero | --async]\n");
            return 2;
        }
    }
    if (quick && full) {
        fprintf(stderr, "ember-bench: --quick and --full exclude each other: choose one\n");
        return 2;
    }
    long n = quick ? 100000 : 1000000;
    long ncold = quick ? 300 : 2000;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    g_pin = ncpu >= 2;
    snprintf(g_base, sizeof g_base, "\"quick\":%s,\"cpus\":%ld,\"pinned_apart\":%s",
             quick ? "true" : "false", ncpu, g_pin ? "true" : "false");
    if (numa) return numa_share(quick ? 5000 : 50000, g_base);
    if (zero) return zero_vs_fork(quick ? 15 : 50, g_base, true);

    /* memory first: the supervisor is forked from this process, still small */
    long sup_kib = -1, runner_kib = -1, runner_rss_kib = -1;
    const int nmem = 4;
    if (!rtt_only && !async_only && memory_figures(nmem, &sup_kib, &runner_kib, &runner_rss_kib))
        fprintf(stderr, "ember-bench: memory figures: %s\n", ember_last_error());

    struct ember_pool_config cfg;
    ember_pool_config_init(&cfg);
    char name[40];
    snprintf(name, sizeof name, "bench-%d", (int)getpid());
    cfg.name = name;
    cfg.min = cfg.max = 1;
    if (g_pin) cfg.runner_boot = pin_runner_boot; /* every runner thread on CPU 1 */
    ember_pool *pool;
    int rc = ember_pool_start(&cfg, &pool);
    if (rc || ember_pool_wait_ready(pool, 1, 5000000000ll)) {
        fprintf(stderr, "ember-bench: pool: %s\n", ember_last_error());
        return 1;
    }
    ember_client *c;
    if (ember_attach(name, &c)) return 1;
    int h = ember_handler(c, "noop");
    if (g_pin) pin_to(0, 0); /* us (and the callers we fork) on CPU 0 */
    ember_result r;
    uint64_t *lat = malloc((size_t)n * sizeof *lat), *spin_lat = malloc((size_t)n * sizeof *lat);
    long nf = quick ? 300 : 2000;
    uint64_t *futex_lat = malloc((size_t)nf * sizeof *lat);
    pingpong(nf, PP_FUTEX_COLD, futex_lat);
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
    if (async_only) {
        double sweep, any, fdt, bare, bare_b;
        bool have_fd;
        if (async_rounds(c, h, name, quick, &any, &sweep, &fdt, &bare, &bare_b, &have_fd)) return 1;
        emits("async_throughput_calls_per_s", any, "calls/s", "ember", NULL);
        emits("async_sweep_calls_per_s", sweep, "calls/s", "ember", NULL);
        if (have_fd) emits("async_fd_calls_per_s", fdt, "calls/s", "ember", NULL);
        emits("bare_ring_calls_per_s", bare, "calls/s", "bare_ring", NULL);
        emits("bare_ring_batched_calls_per_s", bare_b, "calls/s", "bare_ring_batched", NULL);
        emits("async_vs_bare", any / bare, "ratio", "ember", NULL);
        emits("async_vs_bare_batched", any / bare_b, "ratio", "ember", NULL);
        ember_detach(c);
        ember_pool_stop(pool, 1000000000ll);
        return 0;
    }
    for (int k = 0; k < rounds; k++) {
        pingpong(per, PP_SPIN, spin_lat + k * per);
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
    double warm999 = pct(lat, (size_t)n, 0.999);
    if (rtt_only) {
        emits("spin_rtt_p50_us", spin, "us", "spin", NULL);
        emits("call_rtt_warm_p50_us", warm50, "us", "ember", NULL);
        emits("call_rtt_warm_p99_us", warm99, "us", "ember", NULL);
        emits("warm_over_spin", warm50 / spin, "ratio", "ember", NULL);
        ember_detach(c);
        ember_pool_stop(pool, 1000000000ll);
        return 0;
    }
    if (full) {
        emit_cdf("ember", lat, (size_t)n);
        emit_pcts("rtt", "ember", lat, (size_t)n);
        emit_cdf("spin", spin_lat, (size_t)n);
        emit_pcts("rtt", "spin", spin_lat, (size_t)n);
    }

    uint64_t *cold_lat = malloc((size_t)ncold * sizeof *lat);
    for (long i = 0; i < ncold; i++) {
        struct timespec ts = { 0, 2000000 }; /* 2 ms: far past every spin budget */
        nanosleep(&ts, NULL);
        uint64_t t = ember__now_ns();
        rc = ember_call(c, h, NULL, 0, &r, EMBER_TIMEOUT_DEFAULT);
        cold_lat[i] = ember__now_ns() - t;
        ember_result_release(c, &r);
    }
    double cold50 = pct(cold_lat, (size_t)ncold, 0.5);
    double cold99 = pct(cold_lat, (size_t)ncold, 0.99), cold999 = pct(cold_lat, (size_t)ncold, 0.999);

    if (full) { /* the sleeping limits, back to back: futex and pipe ping-pong */
        long npp = 100000;
        pingpong(npp, PP_FUTEX, lat);
        emit_cdf("futex", lat, (size_t)npp);
        emit_pcts("rtt", "futex", lat, (size_t)npp);
        pingpong(npp, PP_PIPE, lat);
        emit_cdf("pipe", lat, (size_t)npp);
        emit_pcts("rtt", "pipe", lat, (size_t)npp);
    }

    double sweep, any, fdt, bare, bare_b;
    bool have_fd;
    if (async_rounds(c, h, name, quick, &any, &sweep, &fdt, &bare, &bare_b, &have_fd)) return 1;

    /* caller processes on CPU 0, the one runner on CPU 1: rounds alternate
     * the counts */
    static const int ks_full[] = { 1, 2, 4, 8, 16, 64 }, ks_quick[] = { 1, 16 };
    const int *ks = full ? ks_full : ks_quick;
    const int nks = full ? 6 : 2, crounds = 3;
    uint64_t cspan = quick ? 100000000ull : 300000000ull;
    const size_t ccap = 100000;
    double crate[6][3], c99[6];
    uint64_t *clat = malloc(ccap * crounds * sizeof *clat);
    size_t cn[6][3];
    uint64_t *clats[6];
    for (int j = 0; j < nks; j++) clats[j] = malloc(ccap * crounds * sizeof *clat);
    for (int k = 0; k < crounds; k++)
        for (int j = 0; j < nks; j++) {
            crate[j][k] = callers_round(name, ks[j], cspan, clats[j] + (size_t)k * ccap, ccap, &cn[j][k]);
            if (crate[j][k] < 0) {
                fprintf(stderr, "ember-bench: %d callers: a call failed\n", ks[j]);
                return 1;
            }
            fprintf(stderr, "callers round %d: %d callers %.0f calls/s\n", k, ks[j], crate[j][k]);
        }
    double cthr[6];
    for (int j = 0; j < nks; j++) {
        size_t m = 0;
        for (int k = 0; k < crounds; k++) {
            memmove(clat + m, clats[j] + (size_t)k * ccap, cn[j][k] * sizeof *clat);
            m += cn[j][k];
        }
        c99[j] = m ? pct(clat, m, 0.99) : 0;
        cthr[j] = median(crate[j], crounds);
        free(clats[j]);
    }
    free(clat);

    /* payloads: the echo handler, argument and result of SIZE bytes; memcpy
     * of both as the machine's limit */
    if (full) {
        int he = ember_handler(c, "echo");
        size_t maxsz = 16u << 20;
        char *buf = malloc(maxsz), *dst = malloc(maxsz);
        memset(buf, 'e', maxsz);
        memset(dst, 0, maxsz);
        for (size_t sz = 8; sz <= maxsz; sz *= 8) {
            long np = sz <= 4096 ? 20000 : sz <= 262144 ? 2000 : sz <= (2u << 20) ? 200 : 40;
            for (long i = 0; i < np / 10 + 1; i++) /* warm up: the payload pages in place */
                if (ember_call(c, he, buf, sz, &r, EMBER_TIMEOUT_DEFAULT) == 0) ember_result_release(c, &r);
            for (long i = 0; i < np; i++) {
                uint64_t t = ember__now_ns();
                rc = ember_call(c, he, buf, sz, &r, EMBER_TIMEOUT_DEFAULT);
                lat[i] = ember__now_ns() - t;
                if (rc || r.len != sz) {
                    fprintf(stderr, "ember-bench: echo of %zu bytes: %s\n", sz, ember_last_error());
                    return 1;
                }
                ember_result_release(c, &r);
            }
            for (long i = 0; i < np; i++) {
                uint64_t t = ember__now_ns();
                memcpy(dst, buf, sz);
                memcpy(buf, dst, sz);
                spin_lat[i] = ember__now_ns() - t;
            }
            char par[48];
            snprintf(par, sizeof par, "\"bytes\":%zu", sz);
            double p50 = pct(lat, (size_t)np, 0.5), m50 = pct(spin_lat, (size_t)np, 0.5);
            emits("payload_rtt_p50_us", p50, "us", "ember", par);
            emits("payload_rtt_p99_us", pct(lat, (size_t)np, 0.99), "us", "ember", par);
            emits("payload_gbps", 2.0 * (double)sz / (p50 * 1000.0), "GB/s", "ember", par);
            emits("payload_rtt_p50_us", m50, "us", "memcpy", par);
            emits("payload_gbps", 2.0 * (double)sz / (m50 * 1000.0), "GB/s", "memcpy", par);
        }
        free(buf);
        free(dst);
    }

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
    free(lat);
    free(spin_lat);
    free(futex_lat);
    free(cold_lat);

    /* scale from zero and fork + wait, unpinned as a first call would be,
     * sampled alternately */
    cpu_set_t all;
    CPU_ZERO(&all);
    for (long i = 0; i < ncpu && i < CPU_SETSIZE; i++) CPU_SET((int)i, &all);
    sched_setaffinity(0, sizeof all, &all);
    uint64_t zero_lat[50], boot_lat[50], fork_lat[50];
    const int nz = quick ? 15 : 50;
    if (scale_from_zero(nz, zero_lat, boot_lat, fork_lat)) {
        fprintf(stderr, "ember-bench: scale from zero: %s\n", ember_last_error());
        return 1;
    }
    double zero50 = pct(zero_lat, (size_t)nz, 0.5) / 1000.0, boot50 = pct(boot_lat, (size_t)nz, 0.5) / 1000.0;
    double fork50 = pct(fork_lat, (size_t)nz, 0.5); /* us */

    emits("spin_rtt_p50_us", spin, "us", "spin", NULL);
    emits("futex_rtt_p50_us", futex, "us", "futex_cold", NULL);
    emits("call_rtt_warm_p50_us", warm50, "us", "ember", NULL);
    emits("call_rtt_warm_p99_us", warm99, "us", "ember", NULL);
    emits("call_rtt_warm_p99_9_us", warm999, "us", "ember", NULL);
    emits("call_rtt_cold_p50_us", cold50, "us", "ember", NULL);
    emits("call_rtt_cold_p99_us", cold99, "us", "ember", NULL);
    emits("call_rtt_cold_p99_9_us", cold999, "us", "ember", NULL);
    emits("async_throughput_calls_per_s", any, "calls/s", "ember", NULL);
    emits("async_sweep_calls_per_s", sweep, "calls/s", "ember", NULL);
    emits("async_any_over_sweep", any / sweep, "ratio", "ember", NULL);
    if (have_fd) emits("async_fd_calls_per_s", fdt, "calls/s", "ember", NULL);
    emits("bare_ring_calls_per_s", bare, "calls/s", "bare_ring", NULL);
    emits("bare_ring_batched_calls_per_s", bare_b, "calls/s", "bare_ring_batched", NULL);
    for (int j = 0; j < nks; j++) {
        char par[48];
        snprintf(par, sizeof par, "\"callers\":%d", ks[j]);
        emits("callers_throughput_calls_per_s", cthr[j], "calls/s", "ember", par);
        emits("callers_p99_us", c99[j], "us", "ember", par);
    }
    emits("idle_cpu_percent", idle, "percent", "ember", NULL);
    emits("scale_from_zero_ms", zero50, "ms", "ember", NULL);
    emits("boot_ms", boot50, "ms", "ember", NULL);
    emits("fork_wait_p50_us", fork50, "us", "fork_wait", NULL);
    if (sup_kib >= 0) {
        char par[32];
        snprintf(par, sizeof par, "\"runners\":%d", nmem);
        emits("supervisor_rss_kib", (double)sup_kib, "KiB", "ember", par);
        emits("runner_overhead_kib", (double)runner_kib, "KiB", "ember", par);
        emits("runner_rss_kib", (double)runner_rss_kib, "KiB", "ember", par);
    }
    /* the acceptance figures: ember over the limit of the same run */
    emits("warm_over_spin", warm50 / spin, "ratio", "ember", NULL);
    emits("cold_over_futex", cold50 / futex, "ratio", "ember", NULL);
    emits("async_vs_bare", any / bare, "ratio", "ember", NULL);
    emits("async_vs_bare_batched", any / bare_b, "ratio", "ember", NULL);
    emits("zero_over_fork", zero50 * 1000.0 / fork50, "ratio", "ember", NULL);
    for (int j = 0; j < nks; j++)
        if (ks[j] == 16) emits("contended_16_throughput_ratio", cthr[j] / cthr[0], "ratio", "ember", NULL);
    ember_detach(c);
    ember_pool_stop(pool, 1000000000ll);
    return 0;
}
