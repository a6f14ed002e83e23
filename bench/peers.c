/* peers - the empty call as a program without ember makes it, timed one
 * call at a time like ember-bench's warm call; bench/run --full runs it.
 *   fork         fork per call: the child runs the empty function, writes
 *                its 8-byte result to a pipe and exits; the caller reads
 *                the result and reaps the child
 *   posix_spawn  posix_spawn of /bin/true per call, and waitpid
 *   prefork      a classic pipe-based prefork pool: 2 workers forked once,
 *                blocked in read() on one shared request pipe; a call is an
 *                8-byte request, the worker that took it writes an 8-byte
 *                reply on the shared reply pipe
 * With two CPUs or more the caller is on CPU 0 and the prefork workers on
 * CPU 1; a process started per call stays on its parent's CPU (posix_spawn
 * has no way to move it before it runs; fork's child is treated the same).
 * The three alternate in rounds. Output: one JSON line per figure,
 * rtt_p50_us, rtt_p99_us, rtt_p99_9_us and the CDF (rtt_cdf_us, "p") per
 * system, as ember-bench --full writes them.
 * Usage: peers [--quick] */
#include <sched.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

extern char **environ;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void pin_to(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    sched_setaffinity(0, sizeof s, &s);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool g_pin, g_quick;

static void emit(const char *metric, double value, const char *system, const char *params)
{
    printf("{\"metric\":\"%s\",\"value\":%.4g,\"unit\":\"us\",\"system\":\"%s\",%s%s\"quick\":%s,"
           "\"pinned_apart\":%s}\n",
           metric, value, system, params ? params : "", params ? "," : "", g_quick ? "true" : "false",
           g_pin ? "true" : "false");
}

static double q(const uint64_t *v, size_t n, double p)
{
    return (double)v[(size_t)(p * (double)(n - 1))] / 1000.0;
}

static void report(const char *system, uint64_t *lat, size_t n)
{
    qsort(lat, n, sizeof *lat, cmp_u64);
    emit("rtt_p50_us", q(lat, n, 0.5), system, NULL);
    emit("rtt_p99_us", q(lat, n, 0.99), system, NULL);
    emit("rtt_p99_9_us", q(lat, n, 0.999), system, NULL);
    static const double extra_p[] = { 0.995, 0.999, 0.9995, 0.9999 };
    for (int k = 0; k < 54; k++) {
        double p = k < 50 ? 0.01 + 0.02 * k : extra_p[k - 50];
        char par[32];
        snprintf(par, sizeof par, "\"p\":%.4f", p);
        emit("rtt_cdf_us", q(lat, n, p), system, par);
    }
}

static uint64_t empty_function(uint64_t x) { return x + 1; }

static int fork_call(uint64_t arg, uint64_t *res)
{
    int p[2];
    if (pipe(p)) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        uint64_t r = empty_function(arg);
        _exit(write(p[1], &r, sizeof r) == sizeof r ? 0 : 1);
    }
    close(p[1]);
    ssize_t got = read(p[0], res, sizeof *res);
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    return got == sizeof *res && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int spawn_call(void)
{
    char *argv[] = { "true", NULL };
    pid_t pid;
    if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) != 0) return -1;
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int req[2], rep[2];

static int prefork_call(uint64_t arg, uint64_t *res)
{
    if (write(req[1], &arg, sizeof arg) != sizeof arg) return -1;
    return read(rep[0], res, sizeof *res) == sizeof *res ? 0 : -1;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) g_quick = true;
        else {
            fprintf(stderr, "usage: peers [--quick]\n");
            return 2;
        }
    }
    g_pin = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
    if (g_pin) pin_to(0);
    if (pipe(req) || pipe(rep)) return 1;
    enum { WORKERS = 2 };
    pid_t workers[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        workers[w] = fork();
        if (workers[w] == 0) { /* a worker: take a request, answer it, until EOF */
            if (g_pin) pin_to(1);
            close(req[1]), close(rep[0]);
            uint64_t a;
            while (read(req[0], &a, sizeof a) == sizeof a) {
                uint64_t r = empty_function(a);
                if (write(rep[1], &r, sizeof r) != sizeof r) _exit(1);
            }
            _exit(0);
        }
    }
    close(req[0]), close(rep[1]);
    const int rounds = 5;
    const long nfork = g_quick ? 50 : 400, nspawn = g_quick ? 50 : 400, npre = g_quick ? 2000 : 20000;
    uint64_t *lf = malloc(sizeof *lf * (size_t)(rounds * nfork));
    uint64_t *ls = malloc(sizeof *ls * (size_t)(rounds * nspawn));
    uint64_t *lp = malloc(sizeof *lp * (size_t)(rounds * npre));
    uint64_t r;
    for (long i = 0; i < 1000; i++) /* warm up */
        if (prefork_call((uint64_t)i, &r)) return 1;
    for (int i = 0; i < 20; i++)
        if (fork_call(1, &r) || spawn_call()) return 1;
    for (int k = 0; k < rounds; k++) {
        for (long i = 0; i < nfork; i++) {
            uint64_t t = now_ns();
            if (fork_call((uint64_t)i, &r) || r != (uint64_t)i + 1) {
                fprintf(stderr, "peers: fork per call failed\n");
                return 1;
            }
            lf[k * nfork + i] = now_ns() - t;
        }
        for (long i = 0; i < nspawn; i++) {
            uint64_t t = now_ns();
            if (spawn_call()) {
                fprintf(stderr, "peers: posix_spawn of /bin/true failed\n");
                return 1;
            }
            ls[k * nspawn + i] = now_ns() - t;
        }
        for (long i = 0; i < npre; i++) {
            uint64_t t = now_ns();
            if (prefork_call((uint64_t)i, &r) || r != (uint64_t)i + 1) {
                fprintf(stderr, "peers: prefork call failed\n");
                return 1;
            }
            lp[k * npre + i] = now_ns() - t;
        }
    }
    close(req[1]); /* the workers see EOF and leave */
    for (int w = 0; w < WORKERS; w++) waitpid(workers[w], NULL, 0);
    report("fork", lf, (size_t)(rounds * nfork));
    report("posix_spawn", ls, (size_t)(rounds * nspawn));
    report("prefork", lp, (size_t)(rounds * npre));
    return 0;
}
