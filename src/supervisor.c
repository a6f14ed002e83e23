/* supervisor.c - the process that owns a pool.
 *
 * Forked from the application by ember_pool_start(). It forks the runners,
 * holds a pidfd for every runner and every attached caller, and repairs the
 * shared state when any of them dies; it never runs user work. One event
 * loop (loop_uring.c, or loop_poll.c where io_uring is refused) reports:
 *   - a runner's pidfd: the runner died. Its running calls fail with
 *     EMBER_ECRASHED and the signal; calls it had not started stay queued for
 *     the others; a new runner takes its place.
 *   - a caller's pidfd: the caller died. Its queued and finished calls are
 *     freed (never run), its running ones abandoned.
 *   - the application's pidfd, SIGTERM, SIGINT: stop the pool.
 *   - the doorbell: callers attached or detached; open or drop their pidfds.
 *   - once a second (the loop's timeout): the caller table is checked again.
 * Event handlers only record and repair; respawn is decided in one place
 * (reap_runner). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "internal.h"

#define EMBER__HOUSEKEEPING_NS 1000000000ll /* 1 s: what no event reports */

enum { TAG_RUNNER = 1, TAG_CALLER = 2, TAG_SIGNAL = 3, TAG_APP = 4 };
#define MKTAG(kind, idx, gen) ((uint64_t)(kind) << 56 | (uint64_t)((gen) & 0xffffffu) << 32 | (idx))

struct sup_runner { int pidfd; pid_t pid; uint32_t gen; };
struct sup_caller { int pidfd; uint32_t pid, gen; };

struct sup {
    struct ember__view *v;
    const struct ember_loop_ops *ops;
    struct ember_loop *loop;
    int sigfd, app_pidfd;
    pid_t self;
    struct sup_runner *runners;
    struct sup_caller *callers;
    int64_t shutdown_ns;
};

static void sup_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sup_log(const char *fmt, ...)
{
    if (!getenv("EMBER_LOG")) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ember[%d]: ", (int)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Tell waiters (ember_pool_wait_ready, tests) that the pool's state moved. */
static void bump_epoch(struct ember__view *v)
{
    atomic_fetch_add(&v->hdr->epoch, 1);
    ember__futex_wake(&v->hdr->epoch, INT_MAX);
}

static void spawn_runner(struct sup *s, uint32_t r)
{
    struct ember_runner_ent *re = &s->v->runners[r];
    uint32_t gen = atomic_fetch_add(&re->gen, 1) + 1;
    atomic_store(&re->state, EMBER_RUNNER_BOOTING);
    re->started_ns = ember__now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        s->ops->close_in_child(s->loop);
        close(s->sigfd);
        if (s->app_pidfd >= 0) close(s->app_pidfd);
        for (uint32_t i = 0; i < s->v->nrunners; i++)
            if (s->runners[i].pidfd >= 0) close(s->runners[i].pidfd);
        for (uint32_t i = 0; i < s->v->ncallers; i++)
            if (s->callers[i].pidfd >= 0) close(s->callers[i].pidfd);
        ember__runner_main(s->v, r, gen, s->self);
    }
    if (pid < 0) {
        sup_log("fork runner %u: %s", r, strerror(errno));
        atomic_store(&re->state, EMBER_RUNNER_EMPTY);
        return;
    }
    int fd = ember__pidfd_open(pid);
    s->runners[r] = (struct sup_runner){ fd, pid, gen };
    atomic_store(&re->pid, (uint32_t)pid);
    atomic_fetch_add(&s->v->hdr->runners_started, 1);
    if (fd >= 0) s->ops->add_fd(s->loop, fd, MKTAG(TAG_RUNNER, r, gen));
}

/* Re-push every QUEUED slot that is not in the run ring and every FREE slot
 * not in the free ring: a process killed between taking an entry from a
 * ring and moving its slot leaves one such orphan. Duplicates this may make
 * (of entries being moved right now by live processes) are dropped by the
 * slot-state check of whoever pops them. */
static void sweep_orphans(struct ember__view *v)
{
    uint8_t *in = calloc(v->nslots, 1);
    if (!in) return;
    struct { struct ember__ring *r; uint32_t st; uint8_t bit; } rings[2] = {
        { &v->run, EMBER_SLOT_QUEUED, 1 }, { &v->free, EMBER_SLOT_FREE, 2 } };
    for (int k = 0; k < 2; k++) {
        struct ember__ring *r = rings[k].r;
        uint64_t head = atomic_load(&r->h->head), tail = atomic_load(&r->h->tail);
        for (uint64_t p = head; p <= tail + 1 && p < head + r->cap; p++) {
            uint64_t cv = atomic_load(&r->cell[p & r->mask]);
            if ((uint32_t)(cv >> 32) == (uint32_t)(p + 1) && ((uint32_t)cv & 0xffffu) < v->nslots)
                in[(uint32_t)cv & 0xffffu] |= rings[k].bit;
        }
    }
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint32_t w = atomic_load(&v->slots[i].state);
        for (int k = 0; k < 2; k++)
            if (ember__st(w) == rings[k].st && !(in[i] & rings[k].bit))
                ember__ring_push(rings[k].r, ember__entry(i, ember__gen(w)));
    }
    free(in);
    ember__pages_lock(v);
    ember__pages_repair_locked(v);
    ember__pages_unlock(v);
}

static void reap_runner(struct sup *s, uint32_t r, uint32_t gen)
{
    struct sup_runner *sr = &s->runners[r];
    if (sr->gen != gen || sr->pidfd < 0) return;
    struct ember__view *v = s->v;
    struct ember_runner_ent *re = &v->runners[r];
    siginfo_t si = { 0 };
    int sig = 0, status = 0;
    if (waitid((idtype_t)P_PIDFD, (id_t)sr->pidfd, &si, WEXITED) == 0) {
        if (si.si_code == CLD_EXITED) status = si.si_status;
        else sig = si.si_status;
    }
    close(sr->pidfd);
    sr->pidfd = -1;
    atomic_store(&re->state, EMBER_RUNNER_EMPTY);
    atomic_store(&re->pid, 0);
    re->last_exit_signal = sig;
    re->last_exit_status = status;
    atomic_fetch_add(&v->hdr->runners_died, 1);
    /* take the dead threads out of the counters (see runner.c for why the
     * result can only be below the truth) */
    for (uint32_t t = 0; t < v->max_conc; t++) {
        _Atomic uint32_t *pw = &v->workers[r * v->max_conc + t].park;
        uint32_t ws = atomic_exchange(pw, EMBER_WORKER_ACTIVE);
        atomic_store(&v->workers[r * v->max_conc + t].busy, 0);
        if (ws == EMBER_WORKER_SPINNING) {
            atomic_fetch_sub(&v->hdr->idle_spinners, 1);
            atomic_fetch_sub(&v->hdr->spinners, 1);
        } else if (ws == EMBER_WORKER_PARKED || ws == EMBER_WORKER_WOKEN) {
            atomic_fetch_sub(&v->hdr->nparked, 1);
        }
    }
    /* fail exactly the calls it held: each of its threads announces the
     * entry it takes in its own line before taking it, and clears it after
     * the result is out */
    unsigned failed = 0;
    for (uint32_t i = 0; i < v->nslots; i++) {
        struct ember_slot *sl = &v->slots[i];
        uint32_t w = atomic_load_explicit(&sl->state, memory_order_acquire);
        uint32_t st = ember__st(w);
        if (st != EMBER_SLOT_RUNNING && st != EMBER_SLOT_ABANDONED) continue;
        bool held = false;
        for (uint32_t t = 0; !held && t < v->max_conc; t++)
            held = atomic_load(&v->workers[r * v->max_conc + t].current) ==
                   ember__entry(i, ember__gen(w));
        if (!held) continue;
        sl->runner = r;
        sl->runner_gen = gen;
        if (ember__slot_finish(v, i, w, -EMBER_ECRASHED, sig ? sig : -status)) failed++;
    }
    for (uint32_t t = 0; t < v->max_conc; t++)
        atomic_store(&v->workers[r * v->max_conc + t].current, EMBER_NONE);
    atomic_fetch_add(&v->hdr->calls_crashed, failed);
    sup_log("runner %u (pid %d) died: signal %d, status %d; %u calls failed", r, (int)sr->pid,
            sig, status, failed);
    sweep_orphans(v);
    uint32_t ps = atomic_load(&v->hdr->pool_state);
    if (ps == EMBER_POOL_RUNNING || ps == EMBER_POOL_STARTING) spawn_runner(s, r);
    bump_epoch(v);
}

static void reap_caller(struct sup *s, uint32_t i, uint32_t gen)
{
    struct sup_caller *sc = &s->callers[i];
    if (sc->gen != gen) return;
    struct ember__view *v = s->v;
    struct ember_caller_ent *ce = &v->callers[i];
    if (sc->pidfd >= 0) {
        s->ops->del_fd(s->loop, sc->pidfd, MKTAG(TAG_CALLER, i, gen));
        close(sc->pidfd);
    }
    sc->pidfd = -1;
    for (uint32_t k = 0; k < v->nslots; k++) {
        struct ember_slot *sl = &v->slots[k];
        uint32_t w = atomic_load_explicit(&sl->state, memory_order_acquire);
        if (ember__st(w) != EMBER_SLOT_FREE && sl->owner == i && sl->owner_gen == gen)
            ember__slot_disown(v, k, ember__gen(w));
    }
    atomic_fetch_sub(&v->hdr->spinners, (int32_t)atomic_exchange(&ce->spinning, 0));
    uint32_t pid = sc->pid;
    atomic_compare_exchange_strong(&ce->pid, &pid, 0);
    atomic_fetch_add(&v->hdr->callers_reaped, 1);
    sweep_orphans(v);
    sup_log("caller %u (pid %u) gone; its calls reclaimed", i, sc->pid);
    sc->pid = 0;
    bump_epoch(v);
}

/* Doorbell: compare the caller table with what we watch. */
static void scan_callers(struct sup *s)
{
    struct ember__view *v = s->v;
    for (uint32_t i = 0; i < v->ncallers; i++) {
        uint32_t pid = atomic_load(&v->callers[i].pid), gen = atomic_load(&v->callers[i].gen);
        struct sup_caller *sc = &s->callers[i];
        if (pid == sc->pid && gen == sc->gen) continue;
        if (sc->pidfd >= 0) { /* detached (or replaced): stop watching the old one */
            s->ops->del_fd(s->loop, sc->pidfd, MKTAG(TAG_CALLER, i, sc->gen));
            close(sc->pidfd);
            sc->pidfd = -1;
        }
        sc->pid = pid;
        sc->gen = gen;
        if (!pid) continue;
        sc->pidfd = ember__pidfd_open((pid_t)pid);
        if (sc->pidfd < 0) { /* died before we looked */
            reap_caller(s, i, gen);
            continue;
        }
        s->ops->add_fd(s->loop, sc->pidfd, MKTAG(TAG_CALLER, i, gen));
    }
}

/* Stop: no new calls; runners are asked to stop, then killed; every call not
 * finished gets EMBER_EPOOLDOWN; the segment's name is removed. */
static _Noreturn void sup_stop(struct sup *s)
{
    struct ember__view *v = s->v;
    atomic_store(&v->hdr->pool_state, EMBER_POOL_STOPPING);
    for (uint32_t r = 0; r < v->nrunners; r++)
        if (s->runners[r].pidfd >= 0) syscall(SYS_pidfd_send_signal, s->runners[r].pidfd, SIGTERM, NULL, 0);
    int64_t grace = atomic_load(&v->hdr->stop_timeout_ns);
    if (grace < 0 || grace > 3600ll * 1000000000ll) grace = s->shutdown_ns; /* unset or absurd */
    uint64_t until = ember__now_ns() + (uint64_t)grace;
    for (uint32_t r = 0; r < v->nrunners; r++) {
        if (s->runners[r].pidfd < 0) continue;
        struct pollfd p = { .fd = s->runners[r].pidfd, .events = POLLIN };
        uint64_t now = ember__now_ns();
        int ms = now < until ? (int)((until - now + 999999) / 1000000) : 0; /* never short */
        if (poll(&p, 1, ms) == 0) syscall(SYS_pidfd_send_signal, s->runners[r].pidfd, SIGKILL, NULL, 0);
        waitid((idtype_t)P_PIDFD, (id_t)s->runners[r].pidfd, &(siginfo_t){ 0 }, WEXITED);
        close(s->runners[r].pidfd);
        s->runners[r].pidfd = -1;
        atomic_store(&v->runners[r].state, EMBER_RUNNER_EMPTY);
    }
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint32_t w = atomic_load(&v->slots[i].state), st = ember__st(w);
        if (st == EMBER_SLOT_QUEUED || st == EMBER_SLOT_RUNNING || st == EMBER_SLOT_ABANDONED)
            ember__slot_finish(v, i, w, -EMBER_EPOOLDOWN, 0);
    }
    ember__shm_unlink(v->hdr->name);
    atomic_store(&v->hdr->pool_state, EMBER_POOL_DOWN);
    ember__futex_wake(&v->hdr->pool_state, INT_MAX);
    sup_log("pool '%s' stopped", v->hdr->name);
    _exit(0);
}

_Noreturn void ember__supervisor_main(struct ember__view *v, pid_t app, int64_t shutdown_ns)
{
    struct sup s = { .v = v, .self = getpid(), .shutdown_ns = shutdown_ns, .app_pidfd = -1 };
    setpgid(0, 0); /* terminal signals go to the application, not to the pool */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    s.sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    s.runners = calloc(v->nrunners, sizeof *s.runners);
    s.callers = calloc(v->ncallers, sizeof *s.callers);
    if (s.sigfd < 0 || !s.runners || !s.callers) _exit(70);
    for (uint32_t i = 0; i < v->nrunners; i++) s.runners[i].pidfd = -1;
    for (uint32_t i = 0; i < v->ncallers; i++) s.callers[i].pidfd = -1;

    const char *want = getenv("EMBER_BACKEND");
    int rc = -1;
    if (!want || strcmp(want, "poll") != 0) {
        s.ops = &ember__loop_uring;
        rc = s.ops->init(&s.loop, &v->hdr->doorbell);
        if (rc < 0) sup_log("io_uring back-end unavailable (%s); using poll", strerror(-rc));
    }
    if (rc < 0) {
        s.ops = &ember__loop_poll;
        if (s.ops->init(&s.loop, &v->hdr->doorbell) < 0) _exit(71);
    }
    snprintf(v->hdr->backend, sizeof v->hdr->backend, "%s", s.ops->name);
    s.ops->add_fd(s.loop, s.sigfd, MKTAG(TAG_SIGNAL, 0, 0));
    if (app > 0) {
        s.app_pidfd = ember__pidfd_open(app);
        if (s.app_pidfd >= 0) s.ops->add_fd(s.loop, s.app_pidfd, MKTAG(TAG_APP, 0, 0));
    }
    v->hdr->sup_start_ticks = ember__proc_start_ticks(s.self);
    atomic_store_explicit(&v->hdr->sup_pid, (uint32_t)s.self, memory_order_release);
    for (uint32_t r = 0; r < v->nrunners; r++) spawn_runner(&s, r);
    atomic_store_explicit(&v->hdr->pool_state, EMBER_POOL_RUNNING, memory_order_release);
    ember__futex_wake(&v->hdr->pool_state, INT_MAX);
    scan_callers(&s);

    struct ember_loop_ev ev[64];
    uint64_t next_scan = ember__now_ns() + EMBER__HOUSEKEEPING_NS;
    for (;;) {
        uint64_t now = ember__now_ns();
        int n = s.ops->wait(s.loop, now < next_scan ? (int64_t)(next_scan - now) : 0, ev, 64);
        if (n < 0) {
            sup_log("event loop: %s", strerror(-n));
            sup_stop(&s);
        }
        if (ember__now_ns() >= next_scan) {
            /* a caller killed between claiming its entry and ringing the
             * doorbell is found here (its pid no longer exists) */
            scan_callers(&s);
            next_scan = ember__now_ns() + EMBER__HOUSEKEEPING_NS;
        }
        for (int i = 0; i < n; i++) {
            if (ev[i].kind == EMBER_EV_DOORBELL) {
                scan_callers(&s);
                continue;
            }
            uint64_t tag = ev[i].tag;
            uint32_t kind = (uint32_t)(tag >> 56), idx = (uint32_t)tag;
            uint32_t gen = (uint32_t)(tag >> 32) & 0xffffffu;
            switch (kind) {
            case TAG_RUNNER:
                if (idx < v->nrunners && (s.runners[idx].gen & 0xffffffu) == gen)
                    reap_runner(&s, idx, s.runners[idx].gen);
                break;
            case TAG_CALLER:
                if (idx < v->ncallers && (s.callers[idx].gen & 0xffffffu) == gen)
                    reap_caller(&s, idx, s.callers[idx].gen);
                break;
            case TAG_SIGNAL: {
                struct signalfd_siginfo si;
                while (read(s.sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
                    sup_log("signal %u: stopping", si.ssi_signo);
                    sup_stop(&s);
                }
                s.ops->add_fd(s.loop, s.sigfd, MKTAG(TAG_SIGNAL, 0, 0));
                break;
            }
            case TAG_APP:
                sup_log("application exited: stopping");
                sup_stop(&s);
            }
        }
    }
}
