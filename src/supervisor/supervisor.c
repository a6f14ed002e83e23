/* supervisor.c - the process that owns a pool.
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
 * After every wake-up, evaluate() takes a snapshot of the runners and the
 * queue and does what the policy (policy.c) decides. Events handlers only
 * record and repair; booting and stopping runners is decided there alone. */
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
#include "lib/internal.h"
#include "supervisor/loop.h"
#include "lib/placement.h"
#include "supervisor/policy.h"

#define EMBER__HOUSEKEEPING_NS 1000000000ull /* 1 s: what no event reports */
#define EMBER__TICK_MIN_NS 10000000ull       /* 10 ms */

enum { TAG_RUNNER = 1, TAG_CALLER = 2, TAG_SIGNAL = 3, TAG_APP = 4 };
#define MKTAG(kind, idx, gen) ((uint64_t)(kind) << 56 | (uint64_t)((gen) & 0xffffffu) << 32 | (idx))

/* why the supervisor killed a runner */
enum { KILL_NONE = 0, KILL_BOOT_TIMEOUT, KILL_OVERDUE, KILL_STOP,
       KILL_UNWATCHED /* no pidfd, or the loop refused it */ };

struct sup_runner {
    int pidfd;
    pid_t pid;
    uint32_t gen;
    uint8_t kill_why;      /* KILL_*: set when we sent SIGKILL */
    int watch_err;         /* KILL_UNWATCHED: why */
    bool overdue_cancel;   /* KILL_OVERDUE for a cancelled call (else a deadline) */
    bool asked;            /* idle check pending */
    bool reported_ready;   /* GROW_END sent */
    uint32_t veto_seen;
    uint32_t boot_reason;
    uint64_t idle_base;    /* idle timer restarted here (ready, veto) */
    int16_t place;         /* placement core: its core (placement.h), else -1 */
};
struct sup_caller { int pidfd; uint32_t pid, gen; bool watched; };
/* a runner thread's call that is cancelled (abandoned by a dead linked owner,
 * or ember_cancel()): since when we know, for the kill_grace clock */
struct sup_cancel { uint32_t entry; uint64_t since; };

struct sup {
    struct ember__view *v;
    const struct ember_pool_config *cfg;
    const struct ember_loop_ops *ops;
    struct ember_loop *loop;
    int sigfd, app_pidfd;
    pid_t self;
    struct sup_runner *runners;
    struct sup_caller *callers;
    struct sup_cancel *cancels;   /* per worker */
    struct ember__prunner *plan;
    uint32_t failures;     /* consecutive failed boots */
    bool min_lapsed;       /* min runners idled down (min_idle_shutdown_after) */
    uint32_t resize_seen;
    uint64_t retry_at;     /* no boot before (backoff) */
    uint64_t next_due;     /* the policy's next deadline */
    uint64_t tick;         /* longest sleep while runners run calls */
    int log;
};

static int g_log;

static void sup_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sup_log(int level, const char *fmt, ...)
{
    if (g_log < level) return;
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

static uint32_t count_serving(struct ember__view *v)
{
    uint32_t n = 0;
    for (uint32_t r = 0; r < v->nrunners; r++) {
        uint32_t st = atomic_load(&v->runners[r].state);
        n += st == EMBER_RUNNER_BOOTING || st == EMBER_RUNNER_READY;
    }
    return n;
}

/* Publish an event in the ring (a seqlock per entry), call its callback,
 * log it. */
static void emit(struct sup *s, uint32_t type, uint32_t r, uint32_t reason, int ok, int count,
                 int status, int sig, const char *msg)
{
    struct ember__view *v = s->v;
    uint64_t seq = atomic_load_explicit(&v->hdr->ev_next, memory_order_relaxed);
    struct ember_event_ent *e = &v->events[seq % EMBER_EVENT_RING];
    atomic_store_explicit(&e->seq, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    e->time_ns = ember__now_ns();
    e->type = type;
    e->runner = r;
    e->runners = count_serving(v);
    e->reason = reason;
    e->ok = ok;
    e->count = count;
    e->status = status;
    e->signal = sig;
    memset(e->msg, 0, sizeof e->msg);
    if (msg) snprintf(e->msg, sizeof e->msg, "%s", msg);
    atomic_store_explicit(&e->seq, seq + 1, memory_order_release);
    atomic_store_explicit(&v->hdr->ev_next, seq + 1, memory_order_release);
    bump_epoch(v); /* ember_stats_wait() and `ember events --follow` wake up */

    ember_event ev = { .seq = seq, .time_ns = e->time_ns, .type = (int)type, .runner = r,
                       .runners = e->runners, .reason = (int)reason, .ok = ok, .count = count,
                       .status = status, .signal = sig };
    snprintf(ev.pool, sizeof ev.pool, "%s", v->hdr->name);
    memcpy(ev.msg, e->msg, sizeof ev.msg);
    const struct ember_pool_config *c = s->cfg;
    void (*cb)(const ember_event *, void *) =
        type == EMBER_EV_GROW_START ? c->on_grow_start : type == EMBER_EV_GROW_END ? c->on_grow_end
                                                                                  : c->on_shrink;
    if (cb) cb(&ev, c->event_arg);
    static const char *const names[] = { "", "grow start", "grow end", "shrink" };
    if (type == EMBER_EV_GROW_END && !ok)
        sup_log(1, "pool '%s': runner %u failed to boot (%d in a row; status %d, signal %d%s%s)",
                v->hdr->name, r, count, status, sig, msg && *msg ? ": " : "", msg ? msg : "");
    else
        sup_log(1, "pool '%s': %s, runner %u (%s), %u runners", v->hdr->name, names[type], r,
                ember_why_name((int)reason), ev.runners);
}

/* Runner R's boot failed (REASON: boot_failed or boot_timeout): count it,
 * set the backoff, publish the cause for EMBER_EBOOT, report it. */
static void boot_failed(struct sup *s, uint32_t r, uint32_t reason, int status, int sig,
                        const char *msg)
{
    struct ember_shm_header *h = s->v->hdr;
    s->failures++;
    s->retry_at = ember__now_ns() + ember__policy_backoff(s->failures);
    h->boot_fail_status = status;
    h->boot_fail_signal = sig;
    snprintf(h->boot_fail_msg, sizeof h->boot_fail_msg, "%s", msg);
    atomic_store(&h->boot_retry_ns, s->retry_at);
    atomic_fetch_add(&h->boot_failures, 1);
    emit(s, EMBER_EV_GROW_END, r, reason, 0, (int)s->failures, status, sig, msg);
}

/* Where the next runner goes (placement.h): its node (ring) and, with
 * placement core, its core; written into entry RE before its fork. Returns
 * false when no node has room (every core taken by draining runners). */
_Static_assert(sizeof(unsigned long) == sizeof(uint64_t), "cpuset words are hwloc's ulongs");
static bool place_runner(struct sup *s, struct ember_runner_ent *re, const uint32_t *demand,
                         int *place_out)
{
    struct ember__view *v = s->v;
    const struct ember__placement *pl = ember__plan;
    memset(re->cpuset, 0, sizeof re->cpuset);
    re->ring = 0;
    re->node = -1;
    *place_out = -1;
    if (!pl) return true;
    unsigned live[EMBER_MAX_RINGS] = { 0 };
    bool *used = pl->nplaces ? calloc(pl->nplaces, sizeof *used) : NULL;
    for (uint32_t r = 0; r < v->nrunners; r++) {
        struct ember_runner_ent *o = &v->runners[r];
        if (o == re || s->runners[r].pidfd < 0) continue;
        uint32_t st = atomic_load(&o->state);
        if ((st == EMBER_RUNNER_BOOTING || st == EMBER_RUNNER_READY) && o->ring < pl->nnodes)
            live[o->ring]++;
        if (used && s->runners[r].place >= 0) used[s->runners[r].place] = true; /* draining too */
    }
    int place = -1;
    int node = ember__placement_pick(pl, atomic_load(&v->hdr->max), live, demand, used, &place);
    free(used);
    if (node < 0) return false;
    re->ring = (uint32_t)node;
    re->node = pl->node[node].os_index; /* -1 with placement none */
    hwloc_const_bitmap_t set = place >= 0 ? pl->places[place].cpuset
                             : pl->mode == EMBER_PLACEMENT_NONE ? NULL : pl->node[node].cpuset;
    for (unsigned w = 0; set && w < EMBER_CPUSET_WORDS; w++)
        re->cpuset[w] = hwloc_bitmap_to_ith_ulong(set, w);
    *place_out = place;
    return true;
}

static void unwatched_runner(struct sup *s, uint32_t r, pid_t pid, int err);

static int spawn_runner(struct sup *s, uint32_t reason, const uint32_t *demand)
{
    struct ember__view *v = s->v;
    uint32_t r = 0;
    while (r < v->nrunners && (atomic_load(&v->runners[r].state) != EMBER_RUNNER_EMPTY ||
                               s->runners[r].pidfd >= 0))
        r++;
    if (r == v->nrunners) return -1;
    struct ember_runner_ent *re = &v->runners[r];
    int place;
    if (!place_runner(s, re, demand, &place)) return -1;
    uint32_t gen = atomic_fetch_add(&re->gen, 1) + 1;
    atomic_store(&re->ctl, EMBER_CTL_NONE);
    atomic_store(&re->reason, EMBER_WHY_NONE);
    atomic_store(&re->ready_ns, 0);
    atomic_store(&re->rss, 0);
    memset(re->msg, 0, sizeof re->msg);
    re->started_ns = ember__now_ns();
    for (uint32_t t = 0; t < v->max_conc; t++) {
        struct ember_worker_ent *we = &v->workers[r * v->max_conc + t];
        atomic_store(&we->busy, 0);
        atomic_store(&we->current, EMBER_NONE);
    }
    atomic_store(&re->state, EMBER_RUNNER_BOOTING);
    struct sup_runner *sr = &s->runners[r];
    *sr = (struct sup_runner){ .pidfd = -1, .gen = gen, .boot_reason = reason,
                               .veto_seen = atomic_load(&re->veto_seq), .place = (int16_t)place };
    emit(s, EMBER_EV_GROW_START, r, reason, 0, 0, 0, 0, NULL);
    pid_t pid = fork();
    if (pid == 0) {
        s->ops->close_in_child(s->loop);
        close(s->sigfd);
        if (s->app_pidfd >= 0) close(s->app_pidfd);
        for (uint32_t i = 0; i < v->nrunners; i++)
            if (s->runners[i].pidfd >= 0) close(s->runners[i].pidfd);
        for (uint32_t i = 0; i < v->ncallers; i++)
            if (s->callers[i].pidfd >= 0) close(s->callers[i].pidfd);
        ember__runner_main(v, r, gen, s->self, s->cfg);
    }
    if (pid < 0) {
        int e = errno;
        atomic_store(&re->state, EMBER_RUNNER_EMPTY);
        char msg[64];
        snprintf(msg, sizeof msg, "fork: %s", strerror(e));
        boot_failed(s, r, EMBER_WHY_BOOT_FAILED, 0, 0, msg);
        return -1;
    }
    sr->pid = pid;
    atomic_store(&re->pid, (uint32_t)pid);
    atomic_fetch_add(&v->hdr->runners_started, 1);
    sr->pidfd = ember__pidfd_open(pid);
    int rc = sr->pidfd < 0 ? -errno : s->ops->add_fd(s->loop, sr->pidfd, MKTAG(TAG_RUNNER, r, gen));
    if (rc < 0) {
        unwatched_runner(s, r, pid, -rc);
        return -1;
    }
    return 0;
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
    for (uint32_t k = 0; k <= v->nrings; k++) { /* the run rings, then the free ring */
        struct ember__ring *r = k < v->nrings ? &v->run[k] : &v->free;
        uint8_t bit = k < v->nrings ? 1 : 2;
        uint64_t head = atomic_load(&r->h->head), tail = atomic_load(&r->h->tail);
        for (uint64_t p = head; p <= tail + 1 && p < head + r->cap; p++) {
            uint64_t cv = atomic_load(&r->cell[p & r->mask]);
            if ((uint32_t)(cv >> 32) == (uint32_t)(p + 1) && ((uint32_t)cv & 0xffffu) < v->nslots)
                in[(uint32_t)cv & 0xffffu] |= bit;
        }
    }
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint32_t w = atomic_load(&v->slots[i].state);
        if (ember__st(w) == EMBER_SLOT_QUEUED && !(in[i] & 1)) /* any node's runner steals it */
            ember__ring_push(&v->run[0], ember__entry(i, ember__gen(w)));
        if (ember__st(w) == EMBER_SLOT_FREE && !(in[i] & 2))
            ember__ring_push(&v->free, ember__entry(i, ember__gen(w)));
    }
    free(in);
    ember__pages_lock(v);
    ember__pages_repair_locked(v);
    ember__pages_unlock(v);
}

/* Take runner R's dead threads out of the shared counters (see
 * src/runner/worker.c for why the result can only be below the truth). */
static void release_worker_counts(struct ember__view *v, uint32_t r)
{
    struct ember_runner_ent *re = &v->runners[r];
    for (uint32_t t = 0; t < v->max_conc; t++) {
        struct ember_worker_ent *we = &v->workers[r * v->max_conc + t];
        uint32_t ws = atomic_exchange(&we->park, EMBER_WORKER_ACTIVE);
        atomic_store(&we->busy, 0);
        if (ws == EMBER_WORKER_SPINNING) {
            atomic_fetch_sub(&v->hdr->spin, EMBER_SPIN_IDLE);
            if (v->nrings > 1 && re->ring < v->nrings) atomic_fetch_sub(&v->run[re->ring].h->spinners, 1);
        } else if (ws == EMBER_WORKER_PARKED || ws == EMBER_WORKER_WOKEN) {
            atomic_fetch_sub(&v->hdr->nparked, 1);
        }
    }
}

/* The status of a call runner R of generation GEN held when it died
 * (SIG, STATUS), by why the supervisor killed it; *KILLED: that call was
 * the reason (overdue or cancelled). */
static int held_call_code(const struct sup_runner *sr, const struct ember_slot *sl, uint32_t w,
                          uint64_t now, int sig, int status, int *detail, bool *killed)
{
    *killed = false;
    *detail = sig ? sig : -status;
    switch (sr->kill_why) {
    case KILL_OVERDUE: {
        /* the overdue calls are killed; the others were lost with them
         * (an abandoned one is freed: nobody collects it) */
        bool late = now >= sl->deadline_ns;
        bool cancelled = (w & EMBER_SLOT_CANCEL) || ember__st(w) == EMBER_SLOT_ABANDONED;
        *detail = late ? EMBER_TIMEOUT_RUNNING : cancelled ? 1 : 0;
        *killed = late || cancelled;
        return late ? -EMBER_ETIMEDOUT : cancelled ? -EMBER_ECANCELLED : -EMBER_ERUNNERLOST;
    }
    case KILL_STOP:
        *detail = 0;
        return -EMBER_EPOOLDOWN;
    case KILL_UNWATCHED:
        *detail = 0;
        return -EMBER_ERUNNERLOST;
    default:
        return -EMBER_ECRASHED;
    }
}

/* Fail exactly the calls dead runner R held: each of its threads announces
 * the entry it takes in its own line before taking it, and clears it after
 * the result is out. Returns how many failed; *KILLED of them were the
 * reason it was killed. */
static unsigned fail_held_calls(struct sup *s, uint32_t r, uint32_t gen, int sig, int status,
                                unsigned *killed)
{
    struct ember__view *v = s->v;
    uint64_t now = ember__now_ns();
    unsigned failed = 0;
    *killed = 0;
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
        sl->runner = (uint16_t)r;
        sl->runner_gen = (uint16_t)gen;
        int detail;
        bool k;
        int code = held_call_code(&s->runners[r], sl, w, now, sig, status, &detail, &k);
        if (ember__slot_finish(v, i, w, code, detail)) {
            failed++;
            *killed += k;
        }
    }
    for (uint32_t t = 0; t < v->max_conc; t++)
        atomic_store(&v->workers[r * v->max_conc + t].current, EMBER_NONE);
    return failed;
}

/* Publish why runner R ended: a failed boot (it never became ready, or
 * could not be watched), or a shrink with its reason. */
static void report_runner_end(struct sup *s, uint32_t r, uint32_t was, uint32_t why, int sig,
                              int status, unsigned failed)
{
    struct sup_runner *sr = &s->runners[r];
    struct ember_runner_ent *re = &s->v->runners[r];
    if (was == EMBER_RUNNER_BOOTING || sr->kill_why == KILL_UNWATCHED) {
        char msg[sizeof re->msg];
        memcpy(msg, re->msg, sizeof msg);
        msg[sizeof msg - 1] = 0;
        if (sr->kill_why == KILL_BOOT_TIMEOUT)
            snprintf(msg, sizeof msg, "not ready after boot_timeout (%lld ms)",
                     (long long)(s->cfg->boot_timeout_ns / 1000000));
        else if (sr->kill_why == KILL_UNWATCHED)
            snprintf(msg, sizeof msg, "the supervisor could not watch it: %s", strerror(sr->watch_err));
        bool timeout = sr->kill_why == KILL_BOOT_TIMEOUT;
        boot_failed(s, r, timeout ? EMBER_WHY_BOOT_TIMEOUT : EMBER_WHY_BOOT_FAILED, status,
                    timeout || sr->kill_why == KILL_UNWATCHED ? 0 : sig, msg);
        return;
    }
    uint32_t reason = sr->kill_why == KILL_OVERDUE ? (sr->overdue_cancel ? EMBER_WHY_CANCEL
                                                                        : EMBER_WHY_DEADLINE)
                    : sr->kill_why == KILL_STOP    ? EMBER_WHY_STOP
                    : was == EMBER_RUNNER_DRAINING && !sig && !status ? why
                                                                       : EMBER_WHY_CRASH;
    emit(s, EMBER_EV_SHRINK, r, reason, 0, 0, status, sig, NULL);
    if (reason == EMBER_WHY_CRASH)
        sup_log(1, "runner %u (pid %d) died: signal %d, status %d; %u calls failed", r,
                (int)sr->pid, sig, status, failed);
}

/* Runner R (generation GEN) has ended with SIG or STATUS: repair what it
 * held, free its entry, report it. */
static void runner_gone(struct sup *s, uint32_t r, int sig, int status)
{
    struct sup_runner *sr = &s->runners[r];
    struct ember__view *v = s->v;
    struct ember_runner_ent *re = &v->runners[r];
    uint32_t was = atomic_load(&re->state);
    uint32_t why = atomic_load(&re->reason);
    re->last_exit_signal = sig;
    re->last_exit_status = status;
    atomic_fetch_add(&v->hdr->runners_died, 1);
    release_worker_counts(v, r);
    unsigned killed, failed = fail_held_calls(s, r, sr->gen, sig, status, &killed);
    atomic_fetch_add(&v->hdr->calls_crashed, failed - killed);
    atomic_fetch_add(&v->hdr->calls_killed, killed);
    atomic_store(&re->state, EMBER_RUNNER_EMPTY);
    atomic_store(&re->pid, 0);
    sweep_orphans(v);
    report_runner_end(s, r, was, why, sig, status, failed);
    sr->kill_why = KILL_NONE;
    bump_epoch(v);
}

/* Runner R's pidfd fired (or it was killed and is waited for): collect
 * its exit and repair. */
static void reap_runner(struct sup *s, uint32_t r, uint32_t gen)
{
    struct sup_runner *sr = &s->runners[r];
    if (sr->gen != gen || sr->pidfd < 0) return;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int sig = 0, status = 0;
    if (waitid((idtype_t)P_PIDFD, (id_t)sr->pidfd, &si, WEXITED) == 0) {
        if (si.si_code == CLD_EXITED) status = si.si_status;
        else sig = si.si_status;
    }
    s->ops->del_fd(s->loop, sr->pidfd, MKTAG(TAG_RUNNER, r, gen));
    close(sr->pidfd);
    sr->pidfd = -1;
    runner_gone(s, r, sig, status);
}

/* A runner just forked (PID) could not be watched (no pidfd, or the loop
 * refused it, ERR): it is killed, and counted as a failed boot; the calls
 * it may have taken meanwhile are lost (EMBER_ERUNNERLOST). */
static void unwatched_runner(struct sup *s, uint32_t r, pid_t pid, int err)
{
    struct sup_runner *sr = &s->runners[r];
    sup_log(1, "runner %u (pid %d) cannot be watched (%s): killed", r, (int)pid, strerror(err));
    sr->kill_why = KILL_UNWATCHED;
    sr->watch_err = err;
    if (sr->pidfd >= 0) {
        syscall(SYS_pidfd_send_signal, sr->pidfd, SIGKILL, NULL, 0);
        reap_runner(s, r, sr->gen);
        return;
    }
    kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    runner_gone(s, r, WIFSIGNALED(st) ? WTERMSIG(st) : 0, WIFEXITED(st) ? WEXITSTATUS(st) : 0);
}

static void reap_caller(struct sup *s, uint32_t i, uint32_t gen)
{
    struct sup_caller *sc = &s->callers[i];
    if (sc->gen != gen) return;
    struct ember__view *v = s->v;
    struct ember_caller_ent *ce = &v->callers[i];
    if (sc->pidfd >= 0) {
        if (sc->watched) s->ops->del_fd(s->loop, sc->pidfd, MKTAG(TAG_CALLER, i, gen));
        close(sc->pidfd);
    }
    sc->pidfd = -1;
    /* queued calls first: a runner freed by a cancelled call must not take
     * the dead caller's next one meanwhile */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t k = 0; k < v->nslots; k++) {
            struct ember_slot *sl = &v->slots[k];
            uint32_t w = atomic_load_explicit(&sl->state, memory_order_acquire);
            if (ember__st(w) != EMBER_SLOT_FREE && (pass || ember__st(w) == EMBER_SLOT_QUEUED) &&
                sl->owner == i && sl->owner_gen == gen)
                ember__slot_disown(v, k, ember__gen(w), true);
        }
    atomic_fetch_sub(&v->hdr->spin, atomic_exchange(&ce->spinning, 0));
    uint32_t pid = sc->pid;
    /* counted only if it died attached (one that detached and then exited
     * before we looked at the table left nothing behind) */
    if (atomic_compare_exchange_strong(&ce->pid, &pid, 0))
        atomic_fetch_add(&v->hdr->callers_reaped, 1);
    sweep_orphans(v);
    sup_log(2, "caller %u (pid %u) gone; its calls reclaimed", i, sc->pid);
    sc->pid = 0;
    bump_epoch(v);
}

/* Doorbell: compare the caller table with what we watch. */
/* Watch caller I's pidfd; one the loop refuses is looked at by the
 * housekeeping scan instead (so its death is seen within a second). */
static void watch_caller(struct sup *s, uint32_t i)
{
    struct sup_caller *sc = &s->callers[i];
    int rc = s->ops->add_fd(s->loop, sc->pidfd, MKTAG(TAG_CALLER, i, sc->gen));
    if (rc < 0 && sc->watched)
        sup_log(1, "caller %u (pid %u): cannot watch its pidfd (%s); polled instead", i, sc->pid,
                strerror(-rc));
    sc->watched = rc == 0;
}

/* Look at the caller table: watch callers that attached, stop watching
 * those that detached, reap those that died unwatched. */
static void scan_callers(struct sup *s)
{
    struct ember__view *v = s->v;
    for (uint32_t i = 0; i < v->ncallers; i++) {
        uint32_t pid = atomic_load(&v->callers[i].pid), gen = atomic_load(&v->callers[i].gen);
        struct sup_caller *sc = &s->callers[i];
        if (pid == sc->pid && gen == sc->gen) {
            if (sc->pidfd >= 0 && !sc->watched) {
                if (ember__pidfd_dead(sc->pidfd)) reap_caller(s, i, gen);
                else watch_caller(s, i);
            }
            continue;
        }
        if (sc->pidfd >= 0) { /* detached (or replaced): stop watching the old one */
            if (sc->watched) s->ops->del_fd(s->loop, sc->pidfd, MKTAG(TAG_CALLER, i, sc->gen));
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
        sc->watched = true; /* so that a refusal is logged once */
        watch_caller(s, i);
    }
}

/* Calls waiting in the run rings: entries between head and tail whose slot
 * is still QUEUED in that generation (stale duplicates are not counted),
 * in all and (PER_RING) in each ring. */
static uint32_t count_queued(struct ember__view *v, uint32_t *per_ring)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < v->nrings; i++) {
        struct ember__ring *r = &v->run[i];
        uint64_t head = atomic_load(&r->h->head), tail = atomic_load(&r->h->tail);
        uint32_t k = 0;
        for (uint64_t p = head; p < tail && p < head + r->cap; p++) {
            uint64_t cv = atomic_load(&r->cell[p & r->mask]);
            if ((uint32_t)(cv >> 32) != (uint32_t)(p + 1)) continue;
            uint32_t e = (uint32_t)cv, idx = e & 0xffffu;
            if (idx >= v->nslots) continue;
            uint32_t w = atomic_load(&v->slots[idx].state);
            k += ember__st(w) == EMBER_SLOT_QUEUED && ember__gen(w) == (e >> 16);
        }
        per_ring[i] = k;
        n += k;
    }
    return n;
}

/* Finish every queued call with CODE (never run). */
static unsigned fail_queued(struct ember__view *v, int code, int detail)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint32_t w = atomic_load(&v->slots[i].state);
        if (ember__st(w) == EMBER_SLOT_QUEUED) n += ember__slot_finish(v, i, w, code, detail);
    }
    return n;
}

static void kill_runner(struct sup *s, uint32_t r, uint8_t why)
{
    struct sup_runner *sr = &s->runners[r];
    if (sr->pidfd < 0 || sr->kill_why) return;
    sr->kill_why = why;
    syscall(SYS_pidfd_send_signal, sr->pidfd, SIGKILL, NULL, 0);
}

static void request(struct ember__view *v, uint32_t r, uint32_t ctl)
{
    atomic_store(&v->runners[r].ctl, ctl);
    ember__futex_wake(&v->runners[r].ctl, 1);
}

static uint64_t add_grace(uint64_t t, int64_t grace)
{
    return t > UINT64_MAX - (uint64_t)grace ? EMBER__NEVER_NS : t + (uint64_t)grace;
}

/* Look at the pool and do what the policy says. */
static void evaluate(struct sup *s)
{
    struct ember__view *v = s->v;
    struct ember_shm_header *h = v->hdr;
    const struct ember_pool_config *c = s->cfg;
    atomic_store(&h->grow_req, 0); /* looked at from here on */
    uint64_t now = ember__now_ns(), cnow = ember__now_coarse_ns();
    uint32_t max = atomic_load(&h->max), min = atomic_load(&h->min);
    if (max > v->nrunners) max = v->nrunners;
    if (ember__plan && ember__plan->mode == EMBER_PLACEMENT_CORE && max > ember__plan->nplaces)
        max = ember__plan->nplaces; /* one runner per core */
    if (min > max) min = max;
    uint32_t nready = 0;
    for (uint32_t r = 0; r < v->nrunners; r++) {
        struct ember_runner_ent *re = &v->runners[r];
        struct sup_runner *sr = &s->runners[r];
        struct ember__prunner *p = &s->plan[r];
        uint32_t st = sr->pidfd >= 0 ? atomic_load(&re->state) : EMBER_RUNNER_EMPTY;
        *p = (struct ember__prunner){ .state = (uint8_t)st, .kill_at = EMBER__NEVER_NS };
        if (st == EMBER_RUNNER_EMPTY) continue;
        if (st != EMBER_RUNNER_BOOTING && !sr->reported_ready && atomic_load(&re->ready_ns)) {
            sr->reported_ready = true;
            sr->idle_base = atomic_load(&re->ready_ns);
            s->failures = 0; /* boot_broken is recomputed below */
            emit(s, EMBER_EV_GROW_END, r, sr->boot_reason, 1, 0, 0, 0, NULL);
        }
        if (sr->asked) {
            uint32_t vs = atomic_load(&re->veto_seq);
            if (st == EMBER_RUNNER_READY && vs != sr->veto_seen) { /* it said stay */
                sr->asked = false;
                sr->veto_seen = vs;
                sr->idle_base = cnow;
                sup_log(2, "runner %u vetoed its idle shutdown", r);
            }
        }
        nready += st == EMBER_RUNNER_READY;
        p->asked = sr->asked;
        p->booted_at = re->started_ns;
        p->idle_since = sr->idle_base;
        uint64_t kill_deadline = EMBER__NEVER_NS, kill_cancel = EMBER__NEVER_NS;
        for (uint32_t t = 0; t < v->max_conc; t++) {
            uint32_t wi = r * v->max_conc + t;
            struct ember_worker_ent *we = &v->workers[wi];
            uint64_t is = atomic_load_explicit(&we->idle_since, memory_order_relaxed);
            if (is > p->idle_since) p->idle_since = is;
            if (!atomic_load_explicit(&we->busy, memory_order_acquire)) {
                s->cancels[wi].entry = EMBER_NONE;
                continue;
            }
            p->busy++;
            uint64_t d = atomic_load_explicit(&we->job_deadline, memory_order_relaxed);
            uint64_t k = add_grace(d, c->kill_grace_ns);
            if (k < kill_deadline) kill_deadline = k;
            /* a cancelled call gets kill_grace from when we first see it so */
            uint32_t e = atomic_load_explicit(&we->current, memory_order_relaxed);
            struct sup_cancel *cn = &s->cancels[wi];
            uint32_t sw = (e & 0xffffu) < v->nslots
                              ? atomic_load_explicit(&v->slots[e & 0xffffu].state, memory_order_relaxed) : 0;
            if (e != EMBER_NONE && ember__gen(sw) == e >> 16 &&
                ((sw & EMBER_SLOT_CANCEL) || ember__st(sw) == EMBER_SLOT_ABANDONED)) {
                if (cn->entry != e) cn->entry = e, cn->since = now;
                k = add_grace(cn->since, c->kill_grace_ns);
                if (k < kill_cancel) kill_cancel = k;
            } else {
                cn->entry = EMBER_NONE;
            }
        }
        p->kill_at = kill_deadline < kill_cancel ? kill_deadline : kill_cancel;
        if (!sr->kill_why) sr->overdue_cancel = kill_cancel < kill_deadline;
    }
    uint32_t demand[EMBER_MAX_RINGS];
    uint32_t queued = count_queued(v, demand), rs = atomic_load(&h->resize_seq);
    if (queued || rs != s->resize_seen) s->min_lapsed = false; /* in use again: min holds */
    s->resize_seen = rs;
    struct ember__pin in = {
        .now = now, .min = min, .max = max, .conc = v->max_conc, .queued = queued,
        .min_lapsed = s->min_lapsed,
        .failures = s->failures, .retry_at = s->retry_at,
        .idle_after = (uint64_t)c->idle_shutdown_after_ns,
        .min_idle_after = c->min_idle_shutdown_after_ns == EMBER_NEVER
                              ? EMBER__NEVER_NS : (uint64_t)c->min_idle_shutdown_after_ns,
        .boot_timeout = (uint64_t)c->boot_timeout_ns,
    };
    struct ember__pout out;
    ember__policy_plan(&in, s->plan, v->nrunners, &out);
    s->min_lapsed |= out.min_lapsed;
    for (uint32_t r = 0; r < v->nrunners; r++) {
        uint32_t st;
        switch (s->plan[r].action) {
        case EMBER__ACT_KILL_BOOT:
            sup_log(1, "runner %u not ready after boot_timeout: killed", r);
            kill_runner(s, r, KILL_BOOT_TIMEOUT);
            break;
        case EMBER__ACT_KILL_DEADLINE:
            sup_log(1, "runner %u runs a call %s and kill_grace: killed", r,
                    s->runners[r].overdue_cancel ? "cancelled" : "past its deadline");
            kill_runner(s, r, KILL_OVERDUE);
            break;
        case EMBER__ACT_ASK_IDLE:
            s->runners[r].asked = true;
            request(v, r, EMBER_CTL_IDLE_CHECK);
            break;
        case EMBER__ACT_DRAIN:
            st = EMBER_RUNNER_READY;
            if (atomic_compare_exchange_strong(&v->runners[r].state, &st, EMBER_RUNNER_DRAINING) ||
                (st == EMBER_RUNNER_BOOTING &&
                 atomic_compare_exchange_strong(&v->runners[r].state, &st, EMBER_RUNNER_DRAINING))) {
                atomic_store(&v->runners[r].reason, EMBER_WHY_RESIZE);
                request(v, r, EMBER_CTL_DRAIN);
            }
            break;
        }
    }
    for (uint32_t i = 0; i < out.boots; i++)
        if (spawn_runner(s, out.boot_reason, demand) < 0) break;
    bool broken = s->failures >= EMBER__BREAKER_FAILURES && now < s->retry_at;
    atomic_store(&h->boot_broken, broken ? s->failures : 0);
    if (out.fail_queued) {
        unsigned n = fail_queued(v, -EMBER_EBOOT, (int)s->failures);
        atomic_fetch_add(&h->calls_boot_failed, n);
        if (n) sup_log(1, "%u queued calls failed: runners do not boot", n);
    }
    uint32_t serving = count_serving(v);
    atomic_store(&h->nserving, serving);
    atomic_store(&h->nready, nready);
    atomic_store(&h->at_max, serving >= max);
    s->next_due = out.next_due;
}

/* Stop: no new calls; queued calls get EMBER_EPOOLDOWN; runners are drained
 * (running calls finish) for up to the stop's timeout, then killed, and the
 * calls they still ran get EMBER_EPOOLDOWN; the segment's name is removed. */
static _Noreturn void sup_stop(struct sup *s)
{
    struct ember__view *v = s->v;
    atomic_store(&v->hdr->pool_state, EMBER_POOL_STOPPING);
    for (uint32_t r = 0; r < v->nrunners; r++) {
        if (s->runners[r].pidfd < 0) continue;
        atomic_store(&v->runners[r].state, EMBER_RUNNER_DRAINING);
        atomic_store(&v->runners[r].reason, EMBER_WHY_STOP);
        request(v, r, EMBER_CTL_DRAIN);
    }
    fail_queued(v, -EMBER_EPOOLDOWN, 0);
    int64_t grace = atomic_load(&v->hdr->stop_timeout_ns);
    if (grace < 0 || grace > 3600ll * 1000000000ll) grace = s->cfg->shutdown_timeout_ns; /* unset or absurd */
    uint64_t until = ember__now_ns() + (uint64_t)grace;
    for (uint32_t r = 0; r < v->nrunners; r++) {
        if (s->runners[r].pidfd < 0) continue;
        struct pollfd p = { .fd = s->runners[r].pidfd, .events = POLLIN };
        for (;;) { /* calls may still be queued by callers that raced the stop */
            uint64_t now = ember__now_ns();
            int ms = now < until ? (int)((until - now + 999999) / 1000000) : 0; /* never short */
            if (ms > 50) ms = 50;
            int rc = poll(&p, 1, ms);
            fail_queued(v, -EMBER_EPOOLDOWN, 0);
            if (rc != 0) break;
            if (ember__now_ns() >= until) {
                kill_runner(s, r, KILL_STOP);
                break;
            }
        }
        reap_runner(s, r, s->runners[r].gen);
    }
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint32_t w = atomic_load(&v->slots[i].state), st = ember__st(w);
        if (st == EMBER_SLOT_QUEUED || st == EMBER_SLOT_RUNNING || st == EMBER_SLOT_ABANDONED)
            ember__slot_finish(v, i, w, -EMBER_EPOOLDOWN, 0);
    }
    ember__shm_unlink(v->hdr->name);
    atomic_store(&v->hdr->pool_state, EMBER_POOL_DOWN);
    ember__futex_wake(&v->hdr->pool_state, INT_MAX);
    sup_log(1, "pool '%s' stopped", v->hdr->name);
    _exit(0);
}

_Noreturn void ember__supervisor_main(struct ember__view *v, pid_t app,
                                      const struct ember_pool_config *cfg)
{
    struct sup s = { .v = v, .cfg = cfg, .self = getpid(), .app_pidfd = -1 };
    const char *env = getenv("EMBER_LOG");
    g_log = cfg->log;
    if (env && atoi(env) > g_log) g_log = atoi(env);
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
    s.plan = calloc(v->nrunners, sizeof *s.plan);
    s.cancels = calloc((size_t)v->nrunners * v->max_conc, sizeof *s.cancels);
    if (s.sigfd < 0 || !s.runners || !s.callers || !s.plan || !s.cancels) _exit(70);
    for (uint32_t i = 0; i < v->nrunners; i++) s.runners[i].pidfd = -1;
    for (uint32_t i = 0; i < v->nrunners * v->max_conc; i++) s.cancels[i].entry = EMBER_NONE;
    for (uint32_t i = 0; i < v->ncallers; i++) s.callers[i].pidfd = -1;
    s.tick = EMBER__HOUSEKEEPING_NS;
    if ((uint64_t)cfg->kill_grace_ns < s.tick) s.tick = (uint64_t)cfg->kill_grace_ns;
    if ((uint64_t)cfg->idle_shutdown_after_ns < s.tick) s.tick = (uint64_t)cfg->idle_shutdown_after_ns;
    if ((uint64_t)cfg->min_idle_shutdown_after_ns < s.tick)
        s.tick = (uint64_t)cfg->min_idle_shutdown_after_ns;
    if (s.tick < EMBER__TICK_MIN_NS) s.tick = EMBER__TICK_MIN_NS;

    const char *want = getenv("EMBER_BACKEND");
    int rc = -1;
    if (!want || strcmp(want, "poll") != 0) {
        s.ops = &ember__loop_uring;
        rc = s.ops->init(&s.loop, &v->hdr->doorbell);
        if (rc < 0) sup_log(1, "io_uring back-end unavailable (%s); using poll", strerror(-rc));
    }
    if (rc < 0) {
        s.ops = &ember__loop_poll;
        if (s.ops->init(&s.loop, &v->hdr->doorbell) < 0) _exit(71);
    }
    snprintf(v->hdr->backend, sizeof v->hdr->backend, "%s", s.ops->name);
    if (s.ops->add_fd(s.loop, s.sigfd, MKTAG(TAG_SIGNAL, 0, 0)) < 0) _exit(72);
    if (app > 0) { /* the application's death stops the pool: a pool it cannot watch is none */
        s.app_pidfd = ember__pidfd_open(app);
        if (s.app_pidfd < 0 || s.ops->add_fd(s.loop, s.app_pidfd, MKTAG(TAG_APP, 0, 0)) < 0) _exit(73);
    }
    v->hdr->sup_start_ticks = ember__proc_start_ticks(s.self);
    atomic_store_explicit(&v->hdr->sup_pid, (uint32_t)s.self, memory_order_release);
    evaluate(&s); /* boots the min runners */
    atomic_store_explicit(&v->hdr->pool_state, EMBER_POOL_RUNNING, memory_order_release);
    ember__futex_wake(&v->hdr->pool_state, INT_MAX);
    scan_callers(&s);

    struct ember_loop_ev ev[64];
    uint64_t next_scan = ember__now_ns() + EMBER__HOUSEKEEPING_NS;
    for (;;) {
        uint64_t now = ember__now_ns();
        uint64_t wake = next_scan;
        if (s.next_due < wake) wake = s.next_due;
        /* a call that starts now has its deadline plus kill_grace no sooner
         * than one tick away, and a runner that turns idle now is due no
         * sooner either: sleeping a tick at most while runners are up misses
         * neither */
        if (atomic_load(&v->hdr->nserving) && now + s.tick < wake) wake = now + s.tick;
        int n = s.ops->wait(s.loop, wake > now ? (int64_t)(wake - now) : 0, ev, 64);
        if (n < 0) {
            sup_log(1, "event loop: %s", strerror(-n));
            sup_stop(&s);
        }
        if (ember__now_ns() >= next_scan) {
            /* a caller killed between claiming its entry and ringing the
             * doorbell is found here (its pid no longer exists) */
            scan_callers(&s);
            next_scan = ember__now_ns() + EMBER__HOUSEKEEPING_NS;
        }
        for (int i = 0; i < n; i++) {
            if (ev[i].kind == EMBER__LOOP_DOORBELL) {
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
                    sup_log(1, "signal %u: stopping", si.ssi_signo);
                    sup_stop(&s);
                }
                if (s.ops->add_fd(s.loop, s.sigfd, MKTAG(TAG_SIGNAL, 0, 0)) < 0) {
                    sup_log(1, "cannot watch the signalfd again: stopping");
                    sup_stop(&s);
                }
                break;
            }
            case TAG_APP:
                sup_log(1, "application exited: stopping");
                sup_stop(&s);
            }
        }
        evaluate(&s);
    }
}
