/* runner/runner.c - a runner process: max_concurrency workers taking calls.
 *
 * Forked by the supervisor, so it carries the application's code and
 * handlers. It dies with the supervisor (PR_SET_PDEATHSIG, checked against
 * the race with getppid()), so no runner outlives its pool.
 *
 * The workers (worker.c) take and run calls.
 *
 * The main thread runs the boot callback and the plugin handlers' inits
 * (once per runner), starts the control thread and the other workers, says
 * READY, and becomes worker 0 itself: the first call a runner takes is
 * taken by the thread that said READY, on the CPU it already runs on, with
 * no thread to wake first (a new thread is placed on the idlest CPU, and
 * waking an idle vCPU costs 50-150 us: a third of a scale from zero).
 * The control thread sleeps on runner.ctl and answers the supervisor (idle
 * check, drain), and publishes its resident memory (every 200 ms with
 * max_rss, else every second). Draining: the control thread (or a worker
 * that took the last job credit) sets draining and wakes the parked
 * workers; workers take no new call, finish the one they run and end; one
 * that was woken for a call it will not take passes the wake-up on; the
 * main thread, its own worker loop ended, joins the others, runs the plugin
 * handlers' teardowns and exits 0.
 * Job credits (max_jobs, single_use): see worker.c. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include "runner/runner.h"
#include "lib/placement.h"

struct ember__runner_self ember__self = { .cg_fd = -1 };

/* Bind this process to what the supervisor planned for it (runner.cpuset,
 * runner.node): its CPUs, then its memory policy, while it has one thread,
 * so the workers it starts next inherit both. The memory policy is the
 * thread policy (process-wide membind is not supported on Linux), so memory
 * these threads first touch, shared payload pages included, comes from the
 * node. On a topology that is not this machine (synthetic, in tests) nothing
 * is bound. A binding the kernel refuses leaves the runner unbound, and its
 * entry says so (an empty cpuset). */
static void bind_self(struct ember_runner_ent *re)
{
    const struct ember__placement *pl = ember__plan;
    hwloc_topology_t t = (hwloc_topology_t)ember__topology;
    if (!pl || !t || !pl->bind) return;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    for (unsigned w = 0; w < EMBER_CPUSET_WORDS; w++) hwloc_bitmap_set_ith_ulong(set, w, re->cpuset[w]);
    if (!hwloc_bitmap_iszero(set)) {
        if (hwloc_set_cpubind(t, set, HWLOC_CPUBIND_THREAD) < 0) {
            memset(re->cpuset, 0, sizeof re->cpuset);
        } else if (re->node >= 0) {
            hwloc_bitmap_t ns = hwloc_bitmap_alloc();
            hwloc_bitmap_only(ns, (unsigned)re->node);
            hwloc_set_membind(t, ns, HWLOC_MEMBIND_BIND, HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET);
            hwloc_bitmap_free(ns);
        }
    }
    hwloc_bitmap_free(set);
}

/* Bytes resident in this runner, as the kernel counts them
 * (/proc/self/statm), whatever allocator the program uses and however it
 * links libember. The file stays open: one pread a look. 0: unknown. */
static uint64_t runner_rss(void)
{
    static int fd = -1;
    if (fd < 0 && (fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)) < 0) return 0;
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = 0;
    const char *p = strchr(buf, ' '); /* size, then resident */
    return p ? strtoull(p + 1, NULL, 10) * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static bool runner_idle(struct ember__view *v)
{
    for (uint32_t t = 0; t < v->max_conc; t++)
        if (atomic_load(&v->workers[ember__self.runner * v->max_conc + t].busy)) return false;
    return !ember__any_queued(v, ember__self.ring);
}

/* Hand each plugin handler below N (in the table) its context back, last
 * first: the runner ends, and no worker runs (any more, or yet). */
static void plugins_fini(unsigned n)
{
    for (unsigned i = n; i-- > 0;) {
        struct ember__handler *h = &ember__handlers[i];
        if (h->fini) h->fini(h->ctx);
    }
}

/* Run each plugin handler's init, once in this runner and on this thread:
 * the workers, started after, share the contexts (pthread_create orders
 * these stores before everything the workers do). An init that fails fails
 * the boot as the boot callback does: its message in the runner's entry,
 * its return the exit status, the inits before it undone. */
static void plugins_init(struct ember_runner_ent *re)
{
    for (unsigned i = 0; i < ember__nhandlers; i++) {
        struct ember__handler *h = &ember__handlers[i];
        if (!h->init) continue;
        void *ctx = NULL;
        int rc = h->init(&ctx);
        if (rc) {
            plugins_fini(i);
            char msg[sizeof re->msg + 64]; /* cut to the entry's size below */
            snprintf(msg, sizeof msg, "handler '%s': its init returned %d", h->name, rc);
            memcpy(re->msg, msg, sizeof re->msg - 1);
            re->msg[sizeof re->msg - 1] = 0;
            _exit(rc > 0 && rc < 256 ? rc : 1);
        }
        h->ctx = ctx;
    }
}

_Noreturn void ember__runner_exit(int status)
{
    struct ember_runner_ent *re = &ember__self.view->runners[ember__self.runner];
    const char *m = ember__exit_meaning(status);
    if (!m) m = "runner: failed";
    size_t n = strlen(m) < sizeof re->msg - 1 ? strlen(m) : sizeof re->msg - 1; /* the table's fit */
    memcpy(re->msg, m, n);
    re->msg[n] = 0;
    _exit(status);
}

/* Begin the runner's end: its workers take no new call (the parked ones
 * are woken to see it), finish the one they run and stop; the main thread
 * then ends the process (runner_finish). */
static void drain_begin(struct ember__view *v, struct worker_arg *args)
{
    atomic_store(&ember__self.draining, true);
    for (uint32_t t = 0; t < v->max_conc; t++) { /* wake the parked */
        _Atomic uint32_t *pw = &v->workers[args[t].wi].park;
        uint32_t exp = EMBER_WORKER_PARKED;
        if (atomic_compare_exchange_strong(pw, &exp, EMBER_WORKER_WOKEN)) ember__futex_wake(pw, 1);
    }
}

/* On the main thread, its own worker loop (worker 0) ended: the runner is
 * draining. Join the other workers, hand the plugin handlers their
 * contexts back, exit 0. */
static _Noreturn void runner_finish(struct ember__view *v, struct worker_arg *args)
{
    for (uint32_t t = 1; t < v->max_conc; t++) pthread_join(args[t].th, NULL);
    plugins_fini(ember__nhandlers);
    _exit(EMBER__EXIT_OK);
}

/* Become runner IDX of generation GEN of the pool behind V: die with the
 * supervisor SUP, default fatal signals, our identity and pid published,
 * bound to our node. */
static void runner_setup(struct ember__view *v, uint32_t idx, uint32_t gen, pid_t sup,
                         const struct ember_pool_config *cfg)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != sup) _exit(EMBER__EXIT_OK); /* the supervisor is gone */
    ember__runner_limits(&v->runners[idx], cfg); /* before anything it allocates */
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    /* A crash in a handler must end the runner with that signal, whatever
     * handler the application had installed (and runners inherited). */
    static const int fatal[] = { SIGTERM, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP,
                                 SIGSYS, SIGINT, SIGHUP, SIGPIPE, SIGXCPU, SIGXFSZ };
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) signal(fatal[i], SIG_DFL);
    /* A handler that starts a command waits for it (wait4): an application
     * that ignored SIGCHLD would have its children reaped unseen. */
    signal(SIGCHLD, SIG_DFL);
    struct ember_runner_ent *re = &v->runners[idx];
    ember__self.view = v;
    ember__self.cfg = cfg;
    ember__self.runner = idx;
    ember__self.gen = gen;
    ember__self.is_runner = true;
    ember__self.parent = (ember_parent_info){ v->hdr->name, idx, (int)sup };
    ember__self.ring = re->ring < v->nrings ? re->ring : 0;
    ember__self.node = re->node;
    /* our pid, before we can take a call: the supervisor stores it too, but
     * only once fork() has returned to it, and a child's owner reads it as
     * soon as the call has started */
    atomic_store(&re->pid, (uint32_t)getpid());
    bind_self(re); /* before the boot callback: what it allocates is local too */
}

/* Job credits: max_jobs less up to an eighth, different in each runner, so
 * runners started together are not all recycled together. */
static int64_t job_credits(const struct ember_pool_config *cfg)
{
    if (!cfg->max_jobs) return INT64_MAX;
    uint64_t j = cfg->max_jobs, jitter = j >= 8 ? (uint64_t)getpid() % (j / 8 + 1) : 0;
    ember__self.limited = true;
    return (int64_t)(j - jitter > INT64_MAX ? INT64_MAX : j - jitter);
}

static void *control_main(void *arg);

/* Start the control thread and the workers of runner IDX but the first,
 * which the main thread runs; returns their handles. */
static struct worker_arg *workers_start(struct ember__view *v, uint32_t idx)
{
    struct worker_arg *args = calloc(v->max_conc, sizeof *args);
    if (!args) ember__runner_exit(EMBER__EXIT_RUNNER_NOMEM);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 1u << 20);
    uint64_t now = ember__now_coarse_ns();
    for (uint32_t t = 0; t < v->max_conc; t++) {
        args[t].wi = idx * v->max_conc + t;
        struct ember_worker_ent *we = &v->workers[args[t].wi];
        atomic_store(&we->park, EMBER_WORKER_ACTIVE);
        atomic_store(&we->busy, 0);
        atomic_store(&we->current, EMBER_NONE);
        atomic_store(&we->idle_since, now);
    }
    pthread_t control;
    if (pthread_create(&control, &at, control_main, args) != 0)
        ember__runner_exit(EMBER__EXIT_RUNNER_THREAD);
    pthread_detach(control); /* it ends with the process */
    args[0].th = pthread_self();
    for (uint32_t t = 1; t < v->max_conc; t++)
        if (pthread_create(&args[t].th, &at, ember__worker_main, &args[t]) != 0)
            ember__runner_exit(EMBER__EXIT_RUNNER_THREAD);
    pthread_attr_destroy(&at);
    return args;
}

/* The control thread: answer the supervisor (drain, idle check), publish
 * the resident memory (and recycle above max_rss), notice a dead
 * supervisor. Once the runner drains it only watches the supervisor, while
 * the workers finish. */
static void *control_main(void *arg)
{
    struct worker_arg *args = arg;
    struct ember__view *v = ember__self.view;
    const struct ember_pool_config *cfg = ember__self.cfg;
    struct ember_runner_ent *re = &v->runners[ember__self.runner];
    const pid_t sup = (pid_t)ember__self.parent.supervisor_pid;
    bool drained = false;
    for (;;) {
        uint32_t ctl = atomic_load(&re->ctl);
        if (!drained && (ctl == EMBER_CTL_DRAIN || atomic_load(&ember__self.draining))) {
            drain_begin(v, args);
            drained = true;
        }
        if (drained) { /* the main thread ends the process once its workers are done */
            ember__futex_wait(&re->ctl, ctl, ember__now_ns() + 1000000000ull);
            if (getppid() != sup) _exit(EMBER__EXIT_OK); /* the supervisor is gone */
            continue;
        }
        if (ctl == EMBER_CTL_IDLE_CHECK) {
            bool go = !cfg->idle_shutdown_check || cfg->idle_shutdown_check(cfg->idle_shutdown_arg);
            uint32_t rs = EMBER_RUNNER_READY;
            if (go && runner_idle(v) &&
                atomic_compare_exchange_strong(&re->state, &rs, EMBER_RUNNER_DRAINING)) {
                atomic_store(&re->reason, EMBER_WHY_IDLE);
                drain_begin(v, args);
                drained = true;
                continue;
            }
            atomic_compare_exchange_strong(&re->ctl, &ctl, EMBER_CTL_NONE);
            atomic_fetch_add(&re->veto_seq, 1);
            ember__ring_doorbell(v);
            continue;
        }
        /* a look every second (every 200 ms with max_rss); the first one
         * after the first wait, not while the runner's first calls run */
        ember__futex_wait(&re->ctl, ctl, ember__now_ns() + (cfg->max_rss ? 200000000ull : 1000000000ull));
        if (getppid() != sup) _exit(EMBER__EXIT_OK); /* the supervisor is gone */
        if (atomic_load(&re->ctl) != ctl) continue; /* the supervisor asked: answer first */
        uint64_t rss = runner_rss(); /* for ember_stats, and max_rss */
        atomic_store_explicit(&re->rss, rss, memory_order_relaxed);
        if (cfg->max_rss && rss > cfg->max_rss) ember__drain_self(v, EMBER_WHY_MAX_RSS);
    }
}

_Noreturn void ember__runner_main(struct ember__view *v, uint32_t idx, uint32_t gen, pid_t sup,
                                  const struct ember_pool_config *cfg)
{
    runner_setup(v, idx, gen, sup, cfg);
    struct ember_runner_ent *re = &v->runners[idx];
    if (cfg->runner_boot) {
        char msg[sizeof re->msg] = "";
        int rc = cfg->runner_boot(cfg->runner_boot_arg, msg, sizeof msg);
        if (rc) {
            msg[sizeof msg - 1] = 0;
            memcpy(re->msg, msg, sizeof re->msg - 1);
            re->msg[sizeof re->msg - 1] = 0;
            _exit(rc > 0 && rc < 256 ? rc : 1);
        }
    }
    plugins_init(re);
    atomic_store(&re->jobs_left, job_credits(cfg));
    struct worker_arg *args = workers_start(v, idx);
    atomic_store(&re->ready_ns, ember__now_ns());
    uint32_t st = EMBER_RUNNER_BOOTING;
    if (!atomic_compare_exchange_strong(&re->state, &st, EMBER_RUNNER_READY)) {
        drain_begin(v, args); /* drained while it booted (a resize) */
        runner_finish(v, args);
    }
    atomic_fetch_add(&v->hdr->epoch, 1);
    ember__futex_wake(&v->hdr->epoch, INT_MAX);
    ember__ring_doorbell(v);
    ember__worker_main(&args[0]); /* worker 0: returns once the runner drains */
    runner_finish(v, args);
}
