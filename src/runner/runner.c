/* runner.c - a runner process: max_concurrency job threads taking calls.
 *
 * Forked by the supervisor, so it carries the application's code and
 * handlers. It dies with the supervisor (PR_SET_PDEATHSIG, checked against
 * the race with getppid()), so no runner outlives its pool.
 *
 * Each job thread runs the loop:
 *   take an entry from the run ring -> run it -> again;
 *   when the ring is empty: spin (adaptive budget, only while spinners do not
 *   outnumber CPUs), then park on its own futex word.
 * Counters and crash safety. A thread's state word (ACTIVE, SPINNING, PARKED,
 * WOKEN) and the global counters change in an order chosen so that a thread
 * killed between the two steps leaves the counters on the harmless side,
 * given that the supervisor subtracts the dead thread's state:
 *   the idle spinner count (high half of hdr.spin) may only end up too low
 *   (a producer then wakes a thread it did not need to), never too high
 *   (which would make producers skip a needed wake): state first then
 *   counter when starting to spin, counter first then state when stopping.
 *   nparked may only end up too high (a producer then scans for a parked
 *   thread and finds none): counter first then state when parking, state
 *   first then counter when leaving.
 * Wake chaining: a thread that takes an entry and sees more left wakes one
 * more thread (ember__wake_runner), so a spinner that producers counted on
 * but that got busy loses no wake-up.
 * Nodes: a thread takes from its own node's run ring first; from the other
 * rings only after a wake-up or after spinning EMBER__STEAL_AFTER iterations
 * with nothing of its own (stealing), and it looks at all of them before it
 * parks.
 *
 * The main thread is the runner's control thread: it runs the boot callback,
 * starts the job threads, says READY, then sleeps on runner.ctl and answers
 * the supervisor (idle check, drain), and measures resident memory when
 * max_rss is set. Draining: job threads take no new call, finish the one
 * they run and end; one that was woken for a call it will not take passes
 * the wake-up on; the control thread joins them and exits 0.
 * Job credits (max_jobs, single_use): a thread takes a credit from
 * runner.jobs_left before each take from the ring and gives it back if the
 * ring was empty; the thread that takes the last credit drains the runner at
 * once, so its replacement boots while that last call runs. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include "lib/internal.h"
#include "lib/placement.h"

struct ember_out {
    struct ember__view *v;
    struct ember_slot *s;
    uint32_t idx;
    unsigned char *buf;
    size_t len, cap;
    uint32_t page;
    uint64_t deadline;
    unsigned char inl[EMBER_INLINE_MAX];
};

static struct ember__view *g_view;
static const struct ember_pool_config *g_cfg;
static uint32_t g_runner, g_gen;
static uint32_t g_ring;             /* our node's run ring */
static int32_t g_node;              /* our node's P#, -1 when not placed */
static ember_parent_info g_parent;
static bool g_is_runner;
static _Atomic bool g_draining;     /* this runner takes no new call */
static bool g_limited;              /* jobs_left counts */

const ember_parent_info *ember_parent(void) { return g_is_runner ? &g_parent : NULL; }

bool ember_job_cancelled(const ember_job *job)
{
    uint32_t w = atomic_load_explicit(job->_state, memory_order_relaxed);
    return ember__gen(w) != job->_gen || ember__st(w) != EMBER_SLOT_RUNNING ||
           (w & EMBER_SLOT_CANCEL) || ember__expired(job->deadline_ns);
}

uint64_t ember_job_remaining_ns(const ember_job *job)
{
    uint64_t now = ember__now_ns();
    return now < job->deadline_ns ? job->deadline_ns - now : 0;
}

void *ember_out_reserve(ember_out *o, size_t n)
{
    if (n > o->v->max_payload - o->len) {
        ember__fail(-EMBER_ETOOBIG, "result of %zu bytes exceeds max_payload %llu", o->len + n,
                    (unsigned long long)o->v->max_payload);
        return NULL;
    }
    if (o->len + n > o->cap) {
        size_t want = o->cap * 2 > o->len + n ? o->cap * 2 : o->len + n;
        if (want > o->v->max_payload) want = o->v->max_payload;
        uint32_t old = o->page, nw;
        for (;;) {
            uint32_t seq = atomic_load(&o->v->hdr->page_seq);
            if (ember__pages_alloc(o->v, o->idx, want, &nw) == 0) break;
            if (ember__now_ns() >= o->deadline) {
                ember__fail(-EMBER_EFULL, "no shared pages for a %zu-byte result", want);
                return NULL;
            }
            atomic_fetch_add(&o->v->hdr->page_waiters, 1);
            ember__futex_wait(&o->v->hdr->page_seq, seq, ember__now_ns() + 100000000ull);
            atomic_fetch_sub(&o->v->hdr->page_waiters, 1);
        }
        unsigned char *nb = (unsigned char *)ember__page_ptr(o->v, nw);
        memcpy(nb, o->buf, o->len);
        o->s->res_page = nw; /* recorded before the old run goes: repair sees one */
        if (old != EMBER_NONE) ember__pages_free(o->v, o->idx, old);
        o->page = nw;
        o->buf = nb;
        o->cap = (size_t)((want + o->v->page_size - 1) / o->v->page_size) * o->v->page_size;
    }
    void *p = o->buf + o->len;
    o->len += n;
    return p;
}

int ember_out_write(ember_out *o, const void *p, size_t n)
{
    if (n == 0) return 0;
    void *d = ember_out_reserve(o, n);
    if (!d) return o->len + n > o->v->max_payload ? -EMBER_ETOOBIG : -EMBER_EFULL;
    memcpy(d, p, n);
    return 0;
}

/* Run the call behind ring entry E, if its slot still agrees. */
static void run_entry(struct ember__view *v, uint32_t e, ember_out *o, struct ember_worker_ent *we)
{
    uint32_t idx = e & 0xffffu, gen = e >> 16, w;
    if (idx >= v->nslots) return; /* scribbled entry */
    struct ember_slot *s = &v->slots[idx];
    /* announced in our own line before the take, so that the supervisor can
     * attribute the call to us if we die right after it (see reap_runner) */
    atomic_store_explicit(&we->current, e, memory_order_relaxed);
    /* the start time is read while the slot's line is on its way (a call
     * whose deadline passes between this and the take runs: the coarse
     * clock is that coarse anyway) */
    uint64_t t0 = ember__now_coarse_ns();
    if (!ember__slot_take(s, gen, &w)) { /* the owner gave up, or a stale entry */
        atomic_store_explicit(&we->current, EMBER_NONE, memory_order_relaxed);
        return;
    }
    /* The slot's first line is the one its owner is polling: from the take
     * to the DONE CAS the runner does as little as it can, since each poll
     * of the owner in between takes the line back, and the result's stores
     * then have to fetch it once more. The runner reads the line once, right
     * after the take (the call's fields, in one burst), and writes it again
     * only for the result: its stores in one burst ending with the DONE CAS,
     * which expects the word of the take (a flag set since makes it fail
     * once and retry). Its own bookkeeping waits until after DONE. Who runs
     * the call is known from we->current. Two coarse clock reads a call. */
    const uint64_t deadline = s->deadline_ns;
    const uint32_t h = s->handler, flags = s->flags, alen = s->args_len, apage = s->args_page;
    bool expired = ember__expired_at(deadline, t0);
    if (expired || (w & EMBER_SLOT_CANCEL)) { /* expired or cancelled in the queue: never run */
        s->runner = (uint16_t)g_runner;
        s->runner_gen = (uint16_t)g_gen;
        s->t_start_ns = t0;
        s->node = g_node;
        if (expired) atomic_fetch_add_explicit(&v->hdr->calls_expired, 1, memory_order_relaxed);
        ember__slot_finish(v, idx, w, expired ? -EMBER_ETIMEDOUT : -EMBER_ECANCELLED,
                           expired ? EMBER_TIMEOUT_QUEUED : 0);
        atomic_store_explicit(&we->current, EMBER_NONE, memory_order_relaxed);
        return;
    }
    if (flags & EMBER_CALL_CHILD) { /* tell the owner where it runs */
        s->runner = (uint16_t)g_runner;
        s->runner_gen = (uint16_t)g_gen;
        s->t_start_ns = t0;
        s->node = g_node;
        for (;;) {
            if (ember__gen(w) != gen || ember__st(w) != EMBER_SLOT_RUNNING) break;
            uint32_t nw = (w | EMBER_SLOT_STARTED) & ~EMBER_SLOT_WAITER;
            if (atomic_compare_exchange_weak_explicit(&s->state, &w, nw, memory_order_acq_rel,
                                                      memory_order_acquire)) {
                if (w & EMBER_SLOT_WAITER) ember__futex_wake(&s->state, INT_MAX);
                w = nw;
                break;
            }
        }
    }
    atomic_store_explicit(&we->job_deadline, deadline, memory_order_relaxed);
    atomic_store_explicit(&we->busy, 1, memory_order_release);
    int status = 0, detail = 0;
    uint64_t t1 = 0;
    const void *args = ember__payload(v, s, alen, apage);
    o->v = v, o->s = s, o->idx = idx, o->buf = o->inl, o->len = 0;
    o->cap = EMBER_INLINE_MAX, o->page = EMBER_NONE, o->deadline = deadline;
    if (h >= v->nhandlers || h >= ember__nhandlers) {
        status = -EMBER_ENOHANDLER;
    } else if (!args && alen) {
        status = -EMBER_ECORRUPT;
    } else {
        ember_job job = { deadline, g_runner, g_node, &s->state, gen };
        int rc = ember__handlers[h].fn(args, alen, o, &job);
        __builtin_prefetch(s, 1, 3); /* the line, back for the result */
        if (rc == -EMBER_EIMAGE && h == EMBER__FN_HANDLER) status = rc;
        else if (rc) status = -EMBER_EHANDLER, detail = rc;
        /* one deadline covers queueing and running: a result that comes
         * after it is a timeout, as the caller would have seen it (a call
         * cancelled while it ran ends cancelled: ember__slot_finish sees the
         * flag in the word it replaces) */
        if (ember__expired_at(deadline, t1 = ember__now_coarse_ns()))
            status = -EMBER_ETIMEDOUT, detail = EMBER_TIMEOUT_RUNNING;
    }
    if (status == 0) {
        if (o->page == EMBER_NONE && o->len) memcpy(s->data, o->inl, o->len);
    } else if (o->page != EMBER_NONE) {
        s->res_page = EMBER_NONE;
        ember__pages_free(v, idx, o->page);
    }
    __builtin_prefetch(s, 1, 3);
    if (status == 0) s->res_len = (uint32_t)o->len;
    s->runner = (uint16_t)g_runner;
    s->runner_gen = (uint16_t)g_gen;
    s->t_start_ns = t0;
    s->node = g_node;
    ember__slot_finish(v, idx, w, status, detail);
    atomic_store_explicit(&we->idle_since, t1 ? t1 : ember__now_coarse_ns(), memory_order_relaxed);
    atomic_store_explicit(&we->busy, 0, memory_order_release);
    atomic_store_explicit(&we->jobs_done, atomic_load_explicit(&we->jobs_done, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&we->current, EMBER_NONE, memory_order_relaxed);
}

struct worker_arg { uint32_t wi; pthread_t th; };

/* Spin iterations (about 5 us) a spinning thread leaves another node's calls
 * to that node's own runners before it steals them. */
#define EMBER__STEAL_AFTER 256u

/* Stop taking calls, for REASON; the control thread then ends the runner. */
static void drain_self(struct ember__view *v, uint32_t reason)
{
    struct ember_runner_ent *re = &v->runners[g_runner];
    uint32_t st = EMBER_RUNNER_READY;
    if (atomic_compare_exchange_strong(&re->state, &st, EMBER_RUNNER_DRAINING))
        atomic_store(&re->reason, reason);
    atomic_store(&g_draining, true);
    ember__futex_wake(&re->ctl, 1);
    ember__ring_doorbell(v); /* a replacement can boot now */
}

/* Start fetching, for writing, the slot behind a queued entry: when calls
 * arrive faster than one at a time, their slots' cache misses overlap
 * instead of each stalling the runner in turn. */
static void prefetch_slot(uint32_t e, void *arg)
{
    struct ember__view *v = arg;
    uint32_t idx = e & 0xffffu;
    if (idx < v->nslots) __builtin_prefetch(&v->slots[idx], 1, 3);
}

/* Pop a call: from our node's ring first; from the others (stealing) only
 * when ours is empty and STEAL. *FROM is the ring it came from. */
static uint32_t pop_any(struct ember__view *v, uint32_t *from, bool steal)
{
    uint32_t e = ember__ring_pop(&v->run[g_ring]);
    *from = g_ring;
    for (uint32_t k = 1; steal && e == EMBER_NONE && k < v->nrings; k++) {
        *from = (g_ring + k) % v->nrings;
        e = ember__ring_pop(&v->run[*from]);
    }
    return e;
}

/* Take the next call, if any; with job credits, only while there are some. */
static uint32_t take_next(struct ember__view *v, uint32_t *from, bool steal)
{
    if (!g_limited) return pop_any(v, from, steal);
    if (steal ? !ember__any_queued(v, g_ring) : !ember__ring_nonempty(&v->run[g_ring]))
        return EMBER_NONE;
    _Atomic int64_t *left = &v->runners[g_runner].jobs_left;
    int64_t had = atomic_fetch_sub(left, 1);
    if (had <= 0) {
        atomic_fetch_add(left, 1);
        drain_self(v, g_cfg->single_use ? EMBER_WHY_SINGLE_USE : EMBER_WHY_MAX_JOBS);
        return EMBER_NONE;
    }
    uint32_t e = pop_any(v, from, steal);
    if (e == EMBER_NONE) atomic_fetch_add(left, 1);
    else if (had == 1) drain_self(v, g_cfg->single_use ? EMBER_WHY_SINGLE_USE : EMBER_WHY_MAX_JOBS);
    return e;
}

static void *worker_main(void *arg)
{
    struct ember__view *v = g_view;
    struct ember_shm_header *h = v->hdr;
    uint32_t wi = ((struct worker_arg *)arg)->wi;
    _Atomic uint32_t *ws = &v->workers[wi].park;
    ember_out *o = malloc(sizeof *o);
    if (!o) _exit(72);
    /* steal: another node's calls may be taken (after a wake-up, or after
     * spinning a while without any of our own node's) */
    bool steal = true;
    while (!atomic_load_explicit(&g_draining, memory_order_relaxed)) {
        uint32_t from;
        uint32_t e = take_next(v, &from, steal);
        steal = false;
        if (e != EMBER_NONE) {
            if (from != g_ring)
                atomic_store_explicit(&v->workers[wi].jobs_stolen,
                                      atomic_load_explicit(&v->workers[wi].jobs_stolen,
                                                           memory_order_relaxed) + 1,
                                      memory_order_relaxed);
            if (ember__ring_nonempty(&v->run[from])) {
                ember__wake_runner(v, from);
                ember__ring_peek(&v->run[from], 4, prefetch_slot, v);
            }
            run_entry(v, e, o, &v->workers[wi]);
            continue;
        }
        if (atomic_load_explicit(&g_draining, memory_order_relaxed)) break;
        /* spin while spinners do not outnumber CPUs */
        if (ember__spinners(atomic_load_explicit(&h->spin, memory_order_relaxed)) < (int32_t)v->ncpus) {
            /* state, then both counters in one step (see the top of this file) */
            atomic_store_explicit(ws, EMBER_WORKER_SPINNING, memory_order_release);
            atomic_fetch_add(&h->spin, EMBER_SPIN_IDLE);
            if (v->nrings > 1) atomic_fetch_add(&v->run[g_ring].h->spinners, 1);
            uint64_t stop = ember__now_ns() + ember__spin_budget;
            bool found = false;
            for (unsigned i = 1;; i++) {
                uint32_t front = ember__ring_front(&v->run[g_ring]);
                if (front != EMBER_NONE) { /* its slot's line starts on its way now */
                    prefetch_slot(front, v);
                    found = true;
                    break;
                }
                /* another node's call: leave it to that node's runners for
                 * a few microseconds, then steal it */
                if (v->nrings > 1 && i >= EMBER__STEAL_AFTER && (i & 15) == 0 &&
                    ember__any_queued(v, g_ring)) { found = steal = true; break; }
                ember__spin_step(i);
                if ((i & 255) == 0 && (ember__now_ns() >= stop ||
                                       atomic_load_explicit(&g_draining, memory_order_relaxed)))
                    break;
            }
            if (v->nrings > 1) atomic_fetch_sub(&v->run[g_ring].h->spinners, 1);
            atomic_fetch_sub(&h->spin, EMBER_SPIN_IDLE);
            atomic_store_explicit(ws, EMBER_WORKER_ACTIVE, memory_order_release);
            if (found) {
                ember__spin_won();
                continue;
            }
            ember__spin_lost();
        }
        /* park: announce, look once more, sleep (bounded: belt and braces) */
        atomic_fetch_add(&h->nparked, 1);
        atomic_store(ws, EMBER_WORKER_PARKED);
        if (!ember__any_queued(v, g_ring) && !atomic_load(&g_draining))
            ember__futex_wait(ws, EMBER_WORKER_PARKED, ember__now_ns() + 1000000000ull);
        atomic_store(ws, EMBER_WORKER_ACTIVE);
        atomic_fetch_sub(&h->nparked, 1);
        steal = true; /* woken for a call, or it was there before we slept */
    }
    /* draining: a call we were woken for, or one still queued, goes to
     * another runner, or the supervisor boots one */
    if (ember__any_queued(v, g_ring) && !ember__wake_runner(v, g_ring)) ember__ring_doorbell(v);
    free(o);
    return NULL;
}

/* Bind this process to what the supervisor planned for it (runner.cpuset,
 * runner.node): its CPUs, then its memory policy, while it has one thread,
 * so the job threads it starts next inherit both. The memory policy is the
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
 * links libember. */
static uint64_t runner_rss(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    const char *p = strchr(buf, ' '); /* size, then resident */
    return p ? strtoull(p + 1, NULL, 10) * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static bool runner_idle(struct ember__view *v)
{
    for (uint32_t t = 0; t < v->max_conc; t++)
        if (atomic_load(&v->workers[g_runner * v->max_conc + t].busy)) return false;
    return !ember__any_queued(v, g_ring);
}

/* End the runner: its job threads finish their calls and stop. */
static _Noreturn void drain_and_exit(struct ember__view *v, struct worker_arg *args)
{
    atomic_store(&g_draining, true);
    for (uint32_t t = 0; t < v->max_conc; t++) { /* wake the parked */
        _Atomic uint32_t *pw = &v->workers[args[t].wi].park;
        uint32_t exp = EMBER_WORKER_PARKED;
        if (atomic_compare_exchange_strong(pw, &exp, EMBER_WORKER_WOKEN)) ember__futex_wake(pw, 1);
    }
    for (uint32_t t = 0; t < v->max_conc; t++) pthread_join(args[t].th, NULL);
    _exit(0);
}

_Noreturn void ember__runner_main(struct ember__view *v, uint32_t idx, uint32_t gen, pid_t sup,
                                  const struct ember_pool_config *cfg)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != sup) _exit(0);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    /* A crash in a handler must end the runner with that signal, whatever
     * handler the application had installed (and runners inherited). */
    static const int fatal[] = { SIGTERM, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP,
                                 SIGSYS, SIGINT, SIGHUP, SIGPIPE };
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) signal(fatal[i], SIG_DFL);
    g_view = v;
    g_cfg = cfg;
    g_runner = idx;
    g_gen = gen;
    g_is_runner = true;
    g_parent = (ember_parent_info){ v->hdr->name, idx, (int)sup };
    struct ember_runner_ent *re = &v->runners[idx];
    /* our pid, before we can take a call: the supervisor stores it too, but
     * only once fork() has returned to it, and a child's owner reads it as
     * soon as the call has started */
    atomic_store(&re->pid, (uint32_t)getpid());
    g_ring = re->ring < v->nrings ? re->ring : 0;
    g_node = re->node;
    bind_self(re); /* before the boot callback: what it allocates is local too */
    if (cfg->runner_boot) {
        char msg[sizeof re->msg] = "";
        int rc = cfg->runner_boot(cfg->runner_boot_arg, msg, sizeof msg);
        if (rc) {
            msg[sizeof msg - 1] = 0;
            memcpy(re->msg, msg, sizeof msg);
            _exit(rc > 0 && rc < 256 ? rc : 1);
        }
    }
    /* Job credits: max_jobs less up to an eighth, different in each runner,
     * so runners started together are not all recycled together. */
    int64_t left = INT64_MAX;
    if (cfg->max_jobs) {
        uint64_t j = cfg->max_jobs, jitter = j >= 8 ? (uint64_t)getpid() % (j / 8 + 1) : 0;
        left = (int64_t)(j - jitter > INT64_MAX ? INT64_MAX : j - jitter);
        g_limited = true;
    }
    atomic_store(&re->jobs_left, left);
    struct worker_arg *args = calloc(v->max_conc, sizeof *args);
    if (!args) _exit(72);
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
    for (uint32_t t = 0; t < v->max_conc; t++)
        if (pthread_create(&args[t].th, &at, worker_main, &args[t]) != 0) _exit(73);
    atomic_store(&re->ready_ns, ember__now_ns());
    uint32_t st = EMBER_RUNNER_BOOTING;
    if (!atomic_compare_exchange_strong(&re->state, &st, EMBER_RUNNER_READY))
        drain_and_exit(v, args); /* drained while it booted (a resize) */
    atomic_fetch_add(&v->hdr->epoch, 1);
    ember__futex_wake(&v->hdr->epoch, INT_MAX);
    ember__ring_doorbell(v);

    for (;;) {
        uint32_t ctl = atomic_load(&re->ctl);
        if (ctl == EMBER_CTL_DRAIN || atomic_load(&g_draining)) drain_and_exit(v, args);
        if (ctl == EMBER_CTL_IDLE_CHECK) {
            bool go = !cfg->idle_shutdown_check || cfg->idle_shutdown_check(cfg->idle_shutdown_arg);
            uint32_t rs = EMBER_RUNNER_READY;
            if (go && runner_idle(v) &&
                atomic_compare_exchange_strong(&re->state, &rs, EMBER_RUNNER_DRAINING)) {
                atomic_store(&re->reason, EMBER_WHY_IDLE);
                drain_and_exit(v, args);
            }
            atomic_compare_exchange_strong(&re->ctl, &ctl, EMBER_CTL_NONE);
            atomic_fetch_add(&re->veto_seq, 1);
            ember__ring_doorbell(v);
            continue;
        }
        if (cfg->max_rss) {
            uint64_t rss = runner_rss();
            atomic_store_explicit(&re->rss, rss, memory_order_relaxed);
            if (rss > cfg->max_rss) drain_self(v, EMBER_WHY_MAX_RSS);
        }
        ember__futex_wait(&re->ctl, ctl, ember__now_ns() + (cfg->max_rss ? 200000000ull : 1000000000ull));
        if (getppid() != sup) _exit(0);
    }
}
