/* supervisor/supervisor.c - the process that owns a pool.
 *
 * Forked from the application by ember_pool_start(). It boots and stops
 * runners, holds a pidfd for every runner and every attached caller, and
 * repairs the shared state when any of them dies; it never runs user work.
 * One event loop (loop_uring.c, or loop_poll.c where io_uring is refused)
 * reports:
 *   - a runner's pidfd: the runner ended. Calls it held fail (crash: with the
 *     signal; killed for a deadline: that call ETIMEDOUT, the others
 *     ERUNNERLOST); calls it had not started stay queued for the others. An
 *     end before READY is a failed boot (backoff, breaker).
 *   - a caller's pidfd: the caller died. Its queued and finished calls are
 *     freed (never run), its running ones abandoned.
 *   - the application's pidfd, SIGTERM, SIGINT: stop the pool.
 *   - the doorbell: callers attached or detached, a caller asks for growth,
 *     a runner is ready or draining, a resize.
 *   - the loop's timeout: whatever falls due (boot timeouts, deadlines plus
 *     kill_grace, idle shutdowns, backoff expiry) and a check of the caller
 *     table once a second.
 *   - a failed watch (never taken for the fd readable): looked at again,
 *     with checks that cannot block, until it is watched again
 *     (sup_rewatch; every waitid is WNOHANG).
 * It holds the segment's liveness lock (proc.h) until it exits.
 * After every wake-up, sup_evaluate() (evaluate.c) takes a snapshot of the runners and the
 * queue and does what the policy (policy.c) decides. Events handlers only
 * record and repair; booting and stopping runners is decided there alone. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/syscall.h>
#include "supervisor/sup.h"

/* Calls the runners' threads have finished so far. */
static uint64_t calls_done(const struct ember__view *v)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < v->nrunners * v->max_conc; i++)
        n += atomic_load_explicit(&v->workers[i].jobs_done, memory_order_relaxed);
    return n;
}

/* Wait for runner R to end until UNTIL, then kill it; calls that callers
 * queued while it drained (they raced the stop) are failed meanwhile.
 * Only a real exit ends the wait (sup_reap_runner: WNOHANG); one that has
 * not ended EMBER__KILLED_WAIT_NS after its SIGKILL (stuck in the kernel) is
 * left to it, its calls failed by the stop's last look. Returns how many
 * calls it failed. */
#define EMBER__KILLED_WAIT_NS 5000000000ull
static unsigned drain_runner(struct sup *s, uint32_t r, uint64_t until)
{
    struct ember__view *v = s->v;
    struct pollfd p = { .fd = s->runners[r].pidfd, .events = POLLIN };
    uint32_t gen = s->runners[r].gen;
    unsigned failed = 0;
    bool killed = false;
    for (;;) {
        uint64_t now = ember__now_ns();
        /* the heartbeat (abi.h) goes on through a drain: a stop is no hang */
        atomic_store_explicit(&v->hdr->sup_alive_ns, now, memory_order_relaxed);
        int ms = now < until ? (int)((until - now + 999999) / 1000000) : 0; /* never short */
        if (ms > 50) ms = 50;
        if (poll(&p, 1, ms) < 0 && errno != EINTR) { /* cannot wait: look again in a while */
            struct timespec ts = { 0, 10000000 };
            nanosleep(&ts, NULL);
        }
        failed += sup_fail_queued(v, -EMBER_EPOOLDOWN, EMBER_DOWN_QUEUED);
        if (sup_reap_runner(s, r, gen)) break;
        if (ember__now_ns() < until) continue;
        if (killed) {
            sup_warn("runner %u (pid %d) has not ended %llu s after its SIGKILL: left to the kernel",
                     r, (int)s->runners[r].pid, EMBER__KILLED_WAIT_NS / 1000000000ull);
            break;
        }
        sup_kill_runner(s, r, KILL_STOP);
        killed = true;
        until = ember__now_ns() + EMBER__KILLED_WAIT_NS;
    }
    return failed;
}

/* Stop: a drain. No new calls (callers see STOPPING at submit); queued
 * calls get EMBER_EPOOLDOWN (EMBER_DOWN_QUEUED) at once; running calls have
 * the stop's timeout to finish, their callers waiting for them meanwhile;
 * the runners still running calls then are killed, and those calls get
 * EMBER_EPOOLDOWN (EMBER_DOWN_KILLED). What it did goes to the header's
 * stop_* counters, before the pool is DOWN; the segment's name is removed. */
static _Noreturn void sup_stop(struct sup *s)
{
    struct ember__view *v = s->v;
    struct ember_shm_header *h = v->hdr;
    atomic_store(&h->pool_state, EMBER_POOL_STOPPING);
    sup_bump_epoch(v); /* ember_stats_wait()ers see the state */
    uint64_t done0 = calls_done(v), killed0 = atomic_load(&h->calls_killed);
    for (uint32_t r = 0; r < v->nrunners; r++) {
        if (s->runners[r].pidfd < 0) continue;
        atomic_store(&v->runners[r].state, EMBER_RUNNER_DRAINING);
        atomic_store(&v->runners[r].reason, EMBER_WHY_STOP);
        sup_request(v, r, EMBER_CTL_DRAIN);
    }
    unsigned never_ran = sup_fail_queued(v, -EMBER_EPOOLDOWN, EMBER_DOWN_QUEUED);
    int64_t grace = atomic_load(&h->stop_timeout_ns);
    if (grace < 0 || grace > 3600ll * 1000000000ll) grace = s->cfg->shutdown_timeout_ns; /* unset or absurd */
    uint64_t until = ember__now_ns() + (uint64_t)grace;
    for (uint32_t r = 0; r < v->nrunners; r++)
        if (s->runners[r].pidfd >= 0) never_ran += drain_runner(s, r, until);
    /* no runner is left: what is still queued never ran; a call still
     * running had a runner that was lost uncounted */
    unsigned lost = 0;
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint32_t w = atomic_load(&v->slots[i].state), st = ember__st(w);
        if (st == EMBER_SLOT_ABANDONED) {
            sup_finish(v, i, w, -EMBER_EPOOLDOWN, 0); /* freed: nobody collects it */
        } else if (st == EMBER_SLOT_QUEUED) {
            never_ran += sup_finish(v, i, w, -EMBER_EPOOLDOWN, EMBER_DOWN_QUEUED);
        } else if (st == EMBER_SLOT_RUNNING) {
            lost += sup_finish(v, i, w, -EMBER_EPOOLDOWN, EMBER_DOWN_KILLED);
        }
    }
    uint64_t finished = calls_done(v) - done0;
    uint64_t killed = atomic_load(&h->calls_killed) - killed0 + lost;
    atomic_store(&h->stop_finished, (uint32_t)finished);
    atomic_store(&h->stop_killed, (uint32_t)killed);
    atomic_store(&h->stop_never_ran, never_ran);
    sup_cgroup_close(s);
    ember__shm_unlink(h->name);
    /* release: the stop_* counters before DOWN (ember_stats_read's acquire) */
    atomic_store_explicit(&h->pool_state, EMBER_POOL_DOWN, memory_order_release);
    ember__futex_wake(&h->pool_state, INT_MAX);
    sup_log(1, "pool '%s' stopped: %llu running calls finished, %llu killed, %u queued never ran",
            h->name, (unsigned long long)finished, (unsigned long long)killed, never_ran);
    _exit(EMBER__EXIT_OK);
}

/* The supervisor's own state for pool V: tables, signals, the longest
 * sleep while runners run calls. Exits EMBER__EXIT_SUP_NOMEM when it
 * cannot be made. */
static void sup_init(struct sup *s, struct ember__view *v, const struct ember_pool_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->v = v;
    s->cfg = cfg;
    s->self = getpid();
    s->app_pidfd = -1;
    s->lock_fd = -1;
    s->cg_spare = -1;
    const char *env = getenv("EMBER_LOG");
    /* EMBER_LOG, where set to a level, is the operator's word over the
     * pool's option (EMBER_LOG=0 silences a daemon) */
    sup_log_level = env && env[0] >= '0' && env[0] <= '9' ? atoi(env) : cfg->log;
    setpgid(0, 0); /* terminal signals go to the application, not to the pool */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    /* runners are reaped by waitid: an application that ignored SIGCHLD
     * would have them reaped unseen */
    signal(SIGCHLD, SIG_DFL);
    s->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    s->runners = calloc(v->nrunners, sizeof *s->runners);
    s->callers = calloc(v->ncallers, sizeof *s->callers);
    s->plan = calloc(v->nrunners, sizeof *s->plan);
    s->cancels = calloc((size_t)v->nrunners * v->max_conc, sizeof *s->cancels);
    s->unowned = calloc(v->nslots, sizeof *s->unowned);
    if (s->sigfd < 0 || !s->runners || !s->callers || !s->plan || !s->cancels || !s->unowned)
        _exit(EMBER__EXIT_SUP_NOMEM);
    for (uint32_t i = 0; i < v->nrunners; i++) s->runners[i].pidfd = -1;
    for (uint32_t i = 0; i < v->nrunners * v->max_conc; i++) s->cancels[i].entry = EMBER_NONE;
    for (uint32_t i = 0; i < v->ncallers; i++) s->callers[i].pidfd = -1;
    /* a call that starts now has its deadline plus kill_grace no sooner than
     * one tick away, and a runner that turns idle now is due no sooner
     * either: sleeping a tick at most while runners are up misses neither */
    s->tick = EMBER__HOUSEKEEPING_NS;
    if ((uint64_t)cfg->kill_grace_ns < s->tick) s->tick = (uint64_t)cfg->kill_grace_ns;
    if ((uint64_t)cfg->idle_shutdown_after_ns < s->tick) s->tick = (uint64_t)cfg->idle_shutdown_after_ns;
    if ((uint64_t)cfg->min_idle_shutdown_after_ns < s->tick)
        s->tick = (uint64_t)cfg->min_idle_shutdown_after_ns;
    if (s->tick < EMBER__TICK_MIN_NS) s->tick = EMBER__TICK_MIN_NS;
}

/* The event loop: io_uring unless refused or EMBER_BACKEND=poll; it
 * watches the signalfd and the application APP. Exits EMBER__EXIT_SUP_LOOP,
 * _SIGNALS or _APP (lib/exits.h) when it cannot. */
static void sup_loop_open(struct sup *s, pid_t app)
{
    struct ember__view *v = s->v;
    const char *want = getenv("EMBER_BACKEND");
    int rc = -1;
    if (!want || strcmp(want, "poll") != 0) {
        s->ops = &ember__loop_uring;
        rc = s->ops->init(&s->loop, &v->hdr->doorbell);
        if (rc < 0) sup_warn("io_uring back-end unavailable (%s); using poll", strerror(-rc));
    }
    if (rc < 0) {
        s->ops = &ember__loop_poll;
        if (s->ops->init(&s->loop, &v->hdr->doorbell) < 0) _exit(EMBER__EXIT_SUP_LOOP);
    }
    snprintf(v->hdr->backend, sizeof v->hdr->backend, "%s", s->ops->name);
    if (s->ops->add_fd(s->loop, s->sigfd, MKTAG(TAG_SIGNAL, 0, 0)) < 0) _exit(EMBER__EXIT_SUP_SIGNALS);
    s->sig_watched = true;
    if (app > 0) { /* the application's death stops the pool: a pool it cannot watch is none */
        s->app_pidfd = ember__pidfd_open(app);
        if (s->app_pidfd < 0 || s->ops->add_fd(s->loop, s->app_pidfd, MKTAG(TAG_APP, 0, 0)) < 0)
            _exit(EMBER__EXIT_SUP_APP);
        s->app_watched = true;
    }
}

/* Take the liveness lock (proc.h) on a description of the segment of our
 * own: the application's SEG_FD is the same file (checked), and the
 * application keeps its copy until we serve. Exits EMBER__EXIT_SUP_LOCK
 * when it cannot. */
static void sup_lock(struct sup *s, int seg_fd)
{
    char shm[96];
    ember__shm_name(shm, sizeof shm, s->v->hdr->name);
    struct stat a, b;
    s->lock_fd = shm_open(shm, O_RDWR | O_CLOEXEC, 0);
    if (s->lock_fd < 0 || fstat(s->lock_fd, &a) < 0 || fstat(seg_fd, &b) < 0 ||
        a.st_dev != b.st_dev || a.st_ino != b.st_ino ||
        ember__ofd_lock(s->lock_fd, EMBER__LOCK_SUPERVISOR) < 0)
        _exit(EMBER__EXIT_SUP_LOCK);
    close(seg_fd);
}

/* Drain the signalfd: a stop signal stops the pool. */
static void sup_read_signals(struct sup *s)
{
    struct signalfd_siginfo si;
    while (read(s->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        sup_log(1, "signal %u: stopping", si.ssi_signo);
        sup_stop(s);
    }
}

/* Look at what the loop does not watch (a watch failed, or a runner could
 * not be watched), with checks that cannot block, and watch it again;
 * with ALL (the loop's wait failed), at everything it watches too. */
static void sup_rewatch(struct sup *s, bool all)
{
    if (!s->sig_watched || all) sup_read_signals(s);
    if (!s->sig_watched)
        s->sig_watched = s->ops->add_fd(s->loop, s->sigfd, MKTAG(TAG_SIGNAL, 0, 0)) == 0;
    if (s->app_pidfd >= 0 && (!s->app_watched || all) && ember__pidfd_dead(s->app_pidfd)) {
        sup_log(1, "application exited: stopping");
        sup_stop(s);
    }
    if (s->app_pidfd >= 0 && !s->app_watched)
        s->app_watched = s->ops->add_fd(s->loop, s->app_pidfd, MKTAG(TAG_APP, 0, 0)) == 0;
    if (all) sup_check_callers(s);
    bool runners_left = sup_rewatch_runners(s, all);
    s->rewatch = runners_left || !s->sig_watched || (s->app_pidfd >= 0 && !s->app_watched);
}

/* A watch of the loop failed (ERR): the fd says nothing; look again later. */
static void sup_watch_failed(struct sup *s, uint32_t kind, uint32_t idx, uint32_t gen, int err)
{
    switch (kind) {
    case TAG_RUNNER:
        if (idx < s->v->nrunners) sup_runner_unwatched(s, idx, gen, err);
        return;
    case TAG_CALLER:
        if (idx < s->v->ncallers) sup_caller_unwatched(s, idx, gen, err);
        return;
    case TAG_SIGNAL:
        s->sig_watched = false;
        break;
    case TAG_APP:
        s->app_watched = false;
        break;
    }
    s->rewatch = true;
    sup_warn("the watch of the %s failed (%s); looked at again within %llu ms",
             kind == TAG_SIGNAL ? "signalfd" : "application", strerror(err),
             (unsigned long long)(EMBER__REWATCH_NS / 1000000));
}

/* One event from the loop. */
static void sup_dispatch(struct sup *s, const struct ember_loop_ev *ev)
{
    struct ember__view *v = s->v;
    if (ev->kind == EMBER__LOOP_DOORBELL) {
        sup_scan_callers(s);
        return;
    }
    uint32_t kind = (uint32_t)(ev->tag >> 56), idx = (uint32_t)ev->tag;
    uint32_t gen = (uint32_t)(ev->tag >> 32) & 0xffffffu;
    /* the tag's generation, widened to the entry's when they agree */
    if (kind == TAG_RUNNER && idx < v->nrunners && (s->runners[idx].gen & 0xffffffu) == gen)
        gen = s->runners[idx].gen;
    else if (kind == TAG_CALLER && idx < v->ncallers && (s->callers[idx].gen & 0xffffffu) == gen)
        gen = s->callers[idx].gen;
    else if (kind == TAG_RUNNER || kind == TAG_CALLER)
        return; /* an older process's watch */
    if (ev->kind == EMBER__LOOP_FD_FAILED) {
        sup_watch_failed(s, kind, idx, gen, ev->err);
        return;
    }
    switch (kind) {
    case TAG_RUNNER:
        /* readable: it ended, and waitid (WNOHANG) says so; should it not,
         * it is looked at again rather than waited for */
        if (!sup_reap_runner(s, idx, gen)) sup_runner_unwatched(s, idx, gen, EAGAIN);
        break;
    case TAG_CALLER:
        sup_reap_caller(s, idx, gen);
        break;
    case TAG_SIGNAL:
        sup_read_signals(s);
        s->sig_watched = s->ops->add_fd(s->loop, s->sigfd, MKTAG(TAG_SIGNAL, 0, 0)) == 0;
        s->rewatch |= !s->sig_watched;
        break;
    case TAG_APP:
        sup_log(1, "application exited: stopping");
        sup_stop(s);
    }
}

_Noreturn void ember__supervisor_main(struct ember__view *v, pid_t app,
                                      const struct ember_pool_config *cfg, int seg_fd)
{
    struct sup s;
    sup_init(&s, v, cfg);
    sup_lock(&s, seg_fd); /* before the pid is published: attach checks the lock */
    sup_loop_open(&s, app);
    sup_cgroup_open(&s);
    v->hdr->sup_start_ticks = ember__proc_start_ticks(s.self);
    atomic_store_explicit(&v->hdr->sup_pid, (uint32_t)s.self, memory_order_release);
    sup_evaluate(&s); /* boots the min runners */
    atomic_store_explicit(&v->hdr->pool_state, EMBER_POOL_RUNNING, memory_order_release);
    ember__futex_wake(&v->hdr->pool_state, INT_MAX);
    sup_scan_callers(&s);

    struct ember_loop_ev ev[64];
    uint64_t next_scan = ember__now_ns() + EMBER__HOUSEKEEPING_NS;
    uint64_t next_repair = ember__now_ns() + EMBER__REPAIR_NS;
    for (;;) {
        uint64_t now = ember__now_ns();
        /* the heartbeat (abi.h): relaxed, no data rides on it */
        atomic_store_explicit(&v->hdr->sup_alive_ns, now, memory_order_relaxed);
        uint64_t wake = next_scan < s.next_due ? next_scan : s.next_due;
        if (next_repair < wake) wake = next_repair;
        if (atomic_load(&v->hdr->nserving) && now + s.tick < wake) wake = now + s.tick;
        if (s.rewatch && now + EMBER__REWATCH_NS < wake) wake = now + EMBER__REWATCH_NS;
        int n = s.ops->wait(s.loop, wake > now ? (int64_t)(wake - now) : 0, ev, 64);
        if (n < 0) {
            /* what it watches may have fired unseen: look at all of it, without
             * waiting; a wait that fails at once does not spin */
            sup_warn("event loop: %s; looking at every process instead", strerror(-n));
            struct timespec ts = { 0, (long)EMBER__TICK_MIN_NS };
            nanosleep(&ts, NULL);
            sup_rewatch(&s, true);
            sup_scan_callers(&s);
            n = 0;
        } else if (s.rewatch) {
            sup_rewatch(&s, false);
        }
        if (ember__now_ns() >= next_scan) {
            /* a caller killed between claiming its entry and ringing the
             * doorbell is found here (its pid no longer exists) */
            sup_scan_callers(&s);
            sup_free_unowned(&s);
            sup_repair_pages(&s);
            sup_cgroup_tick(&s);
            sup_log_refused(&s);
            next_scan = ember__now_ns() + EMBER__HOUSEKEEPING_NS;
            /* relaxed, its only writer: a count (abi.h) */
            atomic_store_explicit(&v->hdr->sup_scans,
                                  atomic_load_explicit(&v->hdr->sup_scans, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
        }
        if (ember__now_ns() >= next_repair) { /* stray writes (repair.c) */
            uint64_t after = sup_repair(&s);
            next_repair = after == EMBER__NEVER_NS ? after : ember__now_ns() + after;
        }
        for (int i = 0; i < n; i++) sup_dispatch(&s, &ev[i]);
        sup_evaluate(&s);
    }
}
