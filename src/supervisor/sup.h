/* supervisor/sup.h - what the supervisor's files share.
 *
 * The supervisor is one process and one thread; these files are its parts:
 *   supervisor.c  setup, the event loop and its dispatch, the stop
 *   runners.c     placing, forking, killing and reaping runners
 *   callers.c     watching attached callers and reclaiming a dead one's work
 *   evaluate.c    the look at the pool after every wake-up: a snapshot for
 *                 the policy (policy.c), and doing what it decides
 *   events.c      the event ring and the log (callbacks run in the application)
 * Event handlers (reaping) only record and repair; booting and stopping
 * runners is decided in evaluate.c alone. */
#ifndef EMBER_SUPERVISOR_SUP_H
#define EMBER_SUPERVISOR_SUP_H

#include "lib/cgroup.h"
#include "lib/internal.h"
#include "lib/exits.h"
#include "lib/placement.h"
#include "supervisor/loop.h"
#include "supervisor/policy.h"

#define EMBER__HOUSEKEEPING_NS 1000000000ull /* 1 s: what no event reports */
#define EMBER__TICK_MIN_NS 10000000ull       /* 10 ms */
#define EMBER__REPAIR_NS 250000000ull        /* the repair look (repair.c) */
#define EMBER__UNSURE_NS 1000000000ull       /* a live name that never turns into a take (runners.c) */
#define EMBER__REPAIR_CONFIRM_NS 50000000ull /* the next one, after a look that found something */
#define EMBER__REPAIR_UNCOLLECTED_NS 2000000000ull /* a call the repair failed, if nobody collects it */
/* while a watch that failed waits to be armed again (or a runner that
 * cannot be watched to be reaped), the loop looks this often */
#define EMBER__REWATCH_NS 100000000ull       /* 100 ms */

enum { TAG_RUNNER = 1, TAG_CALLER = 2, TAG_SIGNAL = 3, TAG_APP = 4 };
#define MKTAG(kind, idx, gen) ((uint64_t)(kind) << 56 | (uint64_t)((gen) & 0xffffffu) << 32 | (idx))

/* why the supervisor killed a runner */
enum { KILL_NONE = 0, KILL_BOOT_TIMEOUT, KILL_OVERDUE, KILL_STOP,
       KILL_UNWATCHED /* no pidfd, or the loop refused it */ };

struct sup_runner {
    int pidfd;
    pid_t pid;
    bool watched;          /* the loop watches its pidfd; else it is looked at each
                              EMBER__REWATCH_NS (sup_rewatch) */
    pid_t unreaped;        /* no pidfd, killed and not reaped yet: its pid (the entry
                              stays taken until it is) */
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
    bool in_cg;            /* it has a memory cgroup leaf (cgroups.c) */
    bool oom;              /* it died of the OOM killer: its calls get EMBER_EOOM */
    uint64_t jobs_base;    /* its workers' jobs_done at its fork */
    bool proven;           /* it has finished a call (the crash-loop breaker) */
};
/* an attached caller as the supervisor watches it; refused: the last try
 * to watch it failed (logged once, tried again each scan) */
struct sup_caller { int pidfd; uint32_t pid, gen; bool watched, refused; };
/* a worker's call that is cancelled (abandoned by a dead linked owner,
 * or ember_cancel()): since when we know, for the kill_grace clock */
struct sup_cancel { uint32_t entry; uint64_t since; };
/* a call a dead runner named while a live runner's worker names it too:
 * which of them took it is not known yet (runners.c, fail_held_calls);
 * WHO is the dead runner as it was at its death */
struct sup_unsure { uint32_t slot, w, r, gen; int sig, status; uint64_t since; struct sup_runner who; };

struct sup {
    struct ember__view *v;
    const struct ember_pool_config *cfg;
    const struct ember_loop_ops *ops;
    struct ember_loop *loop;
    int sigfd, app_pidfd;
    int lock_fd;           /* the segment, with the supervisor's liveness lock (proc.h) */
    bool sig_watched, app_watched;
    bool rewatch;          /* some watch failed or a runner is unwatched: sup_rewatch() */
    pid_t self;
    struct sup_runner *runners;
    struct sup_caller *callers;
    struct sup_cancel *cancels;   /* per worker */
    struct ember__prunner *plan;
    uint32_t failures;     /* consecutive failed boots */
    uint32_t early_crashes; /* runners in a row that died on a call before finishing
                              any (EMBER__CRASH_LOOP_RUNNERS) */
    bool min_lapsed;       /* min runners idled down (min_idle_shutdown_after) */
    uint32_t resize_seen;
    uint64_t retry_at;     /* no boot before (backoff) */
    uint64_t next_due;     /* the policy's next deadline */
    uint64_t tick;         /* longest sleep while runners run calls */
    uint32_t *unowned;     /* per slot: its CLAIMED word when it named no owner at the
                              last look (S5 in detail/slot.h), else 0 */
    uint64_t unowned_until; /* those looks go on until then: a caller died */
    bool pages_left;        /* the last page repair left runs of held slots */
    struct sup_repair *repair; /* what the repair look saw last (repair.c) */
    struct sup_unsure *unsure; /* calls dead runners named, not decided yet */
    uint32_t nunsure, unsure_cap;
    struct ember__cgroup cg; /* the runners' memory cgroups (version 0: none) */
    char cg_why[160];       /* why there are none */
    bool cg_left, cg_said;  /* leaves to remove at the tick; a failed leaf logged */
    uint64_t said_expired, said_poisoned; /* the counters as the log last told them */
    int cg_spare;           /* the spare leaf's cgroup.procs (lib/cgroup.h), -1: none */
};

/* What the supervisor takes from shared memory, which any process of the
 * pool's user may have written anything into, checked before it is used
 * (pure: the fuzz target tests/fuzz/fuzz_supervisor.c calls them too). */

/* Does run-ring cell CV, at position P, hold an entry filled at P (its
 * sequence is P + 1, detail/ring.h) that names one of V's slots? Then *E
 * is the entry. */
static inline bool sup_ring_entry(const struct ember__view *v, uint64_t cv, uint64_t p, uint32_t *e)
{
    *e = (uint32_t)cv;
    return (uint32_t)(cv >> 32) == (uint32_t)(p + 1) && (*e & 0xffffu) < v->nslots;
}

/* Does worker line WE run a call: busy, with its current entry *E naming
 * one of V's slots that is RUNNING or ABANDONED in that entry's generation?
 * *SW is that slot's word (0 when none was read). A thread's busy flag is
 * cleared after its call's DONE: a call already done (or freed, or its slot
 * reused) holds nobody. */
static inline bool sup_worker_running(const struct ember__view *v, const struct ember_worker_ent *we,
                                      uint32_t *e, uint32_t *sw)
{
    bool busy = atomic_load_explicit(&we->busy, memory_order_acquire);
    *e = atomic_load_explicit(&we->current, memory_order_relaxed);
    *sw = busy && (*e & 0xffffu) < v->nslots
              ? atomic_load_explicit(&v->slots[*e & 0xffffu].state, memory_order_relaxed) : 0;
    return busy && *e != EMBER_NONE && ember__gen(*sw) == *e >> 16 &&
           (ember__st(*sw) == EMBER_SLOT_RUNNING || ember__st(*sw) == EMBER_SLOT_ABANDONED);
}

/* events.c */
/* The log on stderr (lib/log.c's lines). sup_log_level: 0 off, 1 what an
 * operator needs (pool events, deaths, reclaimed callers, refused calls,
 * warnings), 2 debug too; the pool's `log` option, or EMBER_LOG when set. */
extern int sup_log_level;
/* LEVEL 1: an info line; 2: a debug line. */
void sup_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Something went wrong that the pool works around, or work was lost: a
 * warning, or an error, written at level 1 and above. */
void sup_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sup_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Tell waiters (ember_pool_wait_ready, ember_stats_wait) that the pool's state moved. */
void sup_bump_epoch(struct ember__view *v);
/* End call I (word W) with CODE and DETAIL (ember__slot_finish), counting
 * it in the supervisor's block of counts when it ends. */
static inline bool sup_finish(struct ember__view *v, uint32_t i, uint32_t w, int code, int detail)
{
    if (!ember__slot_finish(v, i, w, code, detail)) return false;
    ember__count_end(v, ember__sup_writer(v), v->slots[i].handler, code);
    return true;
}
uint32_t sup_count_serving(struct ember__view *v);
void sup_emit(struct sup *s, uint32_t type, uint32_t r, uint32_t reason, int ok, int count,
              int status, int sig, const char *msg);
void sup_boot_failed(struct sup *s, uint32_t r, uint32_t reason, int status, int sig, const char *msg);
/* At the housekeeping tick: log the calls refused since the last one
 * (expired in the queue, poisoned), one line per kind, not one per call. */
void sup_log_refused(struct sup *s);

/* runners.c */
/* Watch FD of process PID with TAG (the test hook ember__test_fail_watch
 * may make it fail): the loop's add_fd. */
int sup_add_watch(struct sup *s, int fd, uint64_t tag, pid_t pid);
int sup_spawn_runner(struct sup *s, uint32_t reason, const uint32_t *demand);
/* Collect runner R's exit if it has ended, and repair what it held: true
 * if it had. Never waits (WNOHANG): a runner still running is left as it
 * is, whatever reported it. */
bool sup_reap_runner(struct sup *s, uint32_t r, uint32_t gen);
/* End, as their dead runner's, the calls it named that no live runner's
 * worker names any more (fail_held_calls); at each death and each repair
 * look. */
void sup_settle_unsure(struct sup *s);
/* The loop's watch of runner R (generation GEN) failed: looked at, and
 * watched again, by sup_rewatch_runners(). */
void sup_runner_unwatched(struct sup *s, uint32_t r, uint32_t gen, int err);
/* Look at every runner the loop does not watch: reap those that ended,
 * watch the others again. With ALL, every runner (the loop's wait failed:
 * an exit may have gone unreported). True if some are still unwatched. */
bool sup_rewatch_runners(struct sup *s, bool all);
void sup_kill_runner(struct sup *s, uint32_t r, uint8_t why);
void sup_request(struct ember__view *v, uint32_t r, uint32_t ctl);
void sup_sweep_orphans(struct sup *s);
/* Calls runner R's threads have finished, over all its generations. */
uint64_t sup_runner_jobs(const struct ember__view *v, uint32_t r);
/* Runner R has finished a call: the crash loop, if any, is over. */
void sup_runner_proven(struct sup *s, uint32_t r);
/* Repair the page table again if the last repair left runs of slots that
 * runners held (they may be orphans of those slots' earlier calls). Called
 * about once a second. */
void sup_repair_pages(struct sup *s);

/* cgroups.c: the pool's memory cgroup, made at start where it can be */
void sup_cgroup_open(struct sup *s);
/* Runner R's leaf for its life GEN, before its fork: 0 with *FD its
 * cgroup.procs to join (-1: none), or -1 with MSG when the boot must fail
 * (runner_memory_max asked for and not applicable). */
int sup_cgroup_leaf(struct sup *s, uint32_t r, uint32_t gen, int *fd, char *msg, size_t len);
/* After runner R (life GEN) died: did the OOM killer kill in its leaf?
 * Removes the leaf. */
bool sup_cgroup_end(struct sup *s, uint32_t r, uint32_t gen);
/* Remove leaves left busy before, and make a spare leaf if a boot took
 * it (called about once a second). */
void sup_cgroup_tick(struct sup *s);
void sup_cgroup_close(struct sup *s);

/* callers.c */
void sup_scan_callers(struct sup *s);
/* Free the CLAIMED slots that named no owner at two looks in a row (their
 * claimer died between its claim CAS and its owner store); looks only for a
 * while after a caller died. Called about once a second. */
void sup_free_unowned(struct sup *s);
void sup_reap_caller(struct sup *s, uint32_t i, uint32_t gen);
/* The loop's watch of caller I (generation GEN) failed: it is watched
 * again at the next scan (each doorbell and each second); the caller is
 * only reaped on its pidfd's POLLIN or ESRCH. */
void sup_caller_unwatched(struct sup *s, uint32_t i, uint32_t gen, int err);
/* Reap every watched caller whose pidfd says it ended (poll, no wait): for
 * a failed wait of the loop. */
void sup_check_callers(struct sup *s);

/* repair.c */
/* Look at the rings, slots and page table for what stray writes broke, and
 * repair what was found the same at the look before. Returns when the next
 * look is due, from now. */
uint64_t sup_repair(struct sup *s);

/* evaluate.c */
void sup_evaluate(struct sup *s);
unsigned sup_fail_queued(struct ember__view *v, int code, int detail);

#endif
