/* ember/client.h - header-only client of ember pools, v0.2 (shared-memory ABI 5).
 *
 * Lets any process put work into a running ember pool through shared memory
 * and get the result back: libc and Linux system calls only, in C11 or C++17
 * and later.
 *
 * USAGE
 *   In exactly one C or C++ file, before any other include:
 *       #define EMBER_CLIENT_IMPLEMENTATION
 *       #include <ember/client.h>
 *   elsewhere include it plainly. (A program that links libember has the
 *   implementation already: it includes the header plainly everywhere.)
 *       ember_client *c;
 *       int rc = ember_attach("mypool", &c);
 *       int h = ember_handler(c, "echo");             // >= 0: handler id
 *       ember_result r;
 *       rc = ember_call(c, h, "hi", 2, &r, EMBER_TIMEOUT_DEFAULT);
 *       if (rc == 0) use(r.data, r.len);
 *       ember_result_release(c, &r);                   // always
 *       ember_detach(c);
 *
 * OPTIONS (define before the include)
 *   EMBER_API        linkage of the functions (default: extern)
 *   EMBER_ASSERT(x)  internal assertions (default: assert)
 *
 * CONTENTS
 *   1. errors: the one table of codes, names and messages
 *   2. calls: attach, call, cast, submit/wait/poll, cancel, children
 *   3. the pool seen from outside: stats snapshot, events, control
 *   4. metrics: counters and latency histograms, per pool and per handler
 *   The implementation is in ember/detail/ (one file per part of the
 *   runtime: clock, wait, view, ring, slot, pages, wake, proc, control,
 *   call, client_impl), included at the end under EMBER_CLIENT_IMPLEMENTATION.
 *
 * ERRORS
 *   Every function returns 0 (or a count where said) on success and a
 *   negative code from the table below on failure: -EMBER_E...; where the
 *   meaning is errno's (EINVAL, ETIMEDOUT, ENOMEM...) the code's value is
 *   errno's, as in libuv, so -EMBER_ETIMEDOUT == -ETIMEDOUT. A failed system
 *   call whose errno has no entry of its own is -EMBER_ESYSTEM. Every
 *   failure also leaves a message on this thread, ember_last_error(), that
 *   names what was wrong (the pool, the handler, the option, the size).
 *
 * A client handle may be used by many threads at once. It must not be used
 * in a child forked after ember_attach(): attach again there.
 */
#if defined(EMBER_CLIENT_IMPLEMENTATION) && !defined(_GNU_SOURCE) && !defined(__cplusplus)
#if !defined(_FEATURES_H)
#define _GNU_SOURCE 1 /* nothing included yet: the implementation's needs (see detail/base.h) */
#endif
#endif
#ifndef EMBER_CLIENT_H
#define EMBER_CLIENT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include "abi.h"

#ifndef EMBER_API
#define EMBER_API extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- 1. errors ------------------------------------------------------------
 * X(NAME, VALUE, MESSAGE): EMBER_NAME is VALUE; ember_strerror() gives the
 * message, ember_errname() "EMBER_NAME". First the codes that mean what
 * errno means (their values are errno's), then ember's own (1000 and up). */
#define EMBER_ERROR_TABLE(X)                                                                       \
    X(EINVAL, EINVAL, "invalid argument: a bad pointer, name, option or handle (ember_last_error() says which)") \
    X(ETIMEDOUT, ETIMEDOUT, "the call's deadline passed before its result came back")              \
    X(EEXIST, EEXIST, "a pool or handler of that name already exists")                             \
    X(EAGAIN, EAGAIN, "the call has not finished yet")                                             \
    X(ECANCELLED, ECANCELED, "the call was cancelled by its caller")                               \
    X(ETOOBIG, EMSGSIZE, "the payload is larger than the pool's max_payload: raise it, or pass a file instead") \
    X(ENOMEM, ENOMEM, "out of memory")                                                             \
    X(EACCES, EACCES, "permission denied")                                                         \
    X(EPERM, EPERM, "operation not permitted")                                                     \
    X(EMFILE, EMFILE, "this process has too many open files: raise its limit (ulimit -n)")         \
    X(ENFILE, ENFILE, "the system has too many open files")                                        \
    X(ENOSPC, ENOSPC, "no space left for the pool's shared segment: /dev/shm is full or too small") \
    X(ENOSYS, ENOSYS, "the kernel lacks a system call ember needs (pidfd_open: Linux 5.3)")        \
    X(ESRCH, ESRCH, "no such process")                                                             \
    X(ENOENT, ENOENT, "no such file: a plugin or file was not found (ember_last_error() says where ember looked)") \
    X(ENOPOOL, 1001, "no such pool is running: start it first, or check the name and user")        \
    X(EPOOLDOWN, 1002, "the pool went down (its supervisor stopped or died) before the call ended") \
    X(EFULL, 1004, "the pool's queue or payload space stayed full until the deadline: raise queue_capacity or payload_space, or the deadline") \
    X(ENOHANDLER, 1005, "the pool has no handler of that name or id")                              \
    X(ECRASHED, 1007, "the runner running the call died: killed by a signal (the detail, 1-64) or exited (the detail is 256 + its exit status)") \
    X(ERUNNERLOST, 1008, "the runner was lost while running the call (killed for another call on it)") \
    X(EABI, 1009, "the pool's shared segment has another ABI version: rebuild against the same ember") \
    X(EOWNER, 1010, "the pool's shared segment belongs to another user")                           \
    X(ECORRUPT, 1011, "the pool's shared segment is corrupted or not an ember segment: stop the pool and start it again") \
    X(ESTALE, 1012, "the call handle is stale: that call was already collected")                   \
    X(EHANDLER, 1014, "the handler returned an error; the detail is its return value")             \
    X(EBOOT, 1015, "the pool could not boot a runner: see its events (ember events) for the cause") \
    X(EIMAGE, 1016, "the function is not from the pool's program image")                           \
    X(ECALLERS, 1018, "the pool's caller table is full: too many attached processes (raise max_callers)") \
    X(ESYSTEM, 1020, "a system call failed; ember_last_error() names it")                         \
    X(ENOCALLS, 1021, "nothing to wait for: none of this client's submitted calls is in flight") \
    X(EPOISON, 1022, "the call crashed as many runners as the pool's poison_after: quarantined, it is not run again; the detail is the last crash's, as ECRASHED's") \
    X(EOOM, 1023, "the kernel's OOM killer killed the runner running the call (its cgroup's memory limit, runner_memory_max, or the machine's memory ran out)")

enum {
#define EMBER__XENUM(name, val, msg) EMBER_##name = val,
    EMBER_ERROR_TABLE(EMBER__XENUM)
#undef EMBER__XENUM
};

/* EMBER_ECRASHED's detail: the runner's end. A signal's number (1-64) when
 * a signal killed it (a handler's SIGSEGV; SIGXCPU, SIGKILL past
 * runner_rlimit_cpu), or EMBER_CRASH_EXIT + its exit status (256-511) when
 * it exited (a handler called exit() or _exit()). EMBER_EOOM's detail is
 * the signal (SIGKILL). */
#define EMBER_CRASH_EXIT 256

/* Text for a code (negative or positive). */
EMBER_API const char *ember_strerror(int err);
/* "EMBER_ETIMEDOUT"...: the code's name ("EMBER_EUNKNOWN" for none of the table). */
EMBER_API const char *ember_errname(int err);
/* What the last failure on this thread was about ("" if none). */
EMBER_API const char *ember_last_error(void);

/* ---- 2. calls ------------------------------------------------------------- */
#define EMBER_TIMEOUT_DEFAULT (-1) /* the pool's configured timeout */
#define EMBER_NEVER           INT64_MAX /* a timeout or duration that never ends */

typedef struct ember_client ember_client;

/* A call in flight: index and generation of its slot; stale ones are refused. */
typedef struct ember_call_id { uint32_t idx, gen; } ember_call_id;

/* What a finished call returns. data/len point into shared memory and stay
 * valid until ember_result_release(): the result, or with -EMBER_EHANDLER
 * what the handler wrote before it failed (its message). */
typedef struct ember_result {
    const void *data;
    size_t      len;
    int         status;    /* 0 or -EMBER_E... (same as the call's return) */
    int         detail;    /* ECRASHED: signal, or EMBER_CRASH_EXIT + exit status;
                              EHANDLER: the handler's return */
    uint32_t    runner;    /* runner table index that ran it, EMBER_NONE if none */
    int         node;      /* NUMA node of that runner (-1: not placed, or none) */
    uint64_t    start_ns;  /* receipt: when a runner took it, CLOCK_MONOTONIC_COARSE
                              (one tick of resolution); 0: never, or unknown (its
                              runner died before it wrote its receipt) */
    /* private */
    uint32_t    _idx, _gen;
} ember_result;

/* Attach to the running pool NAME of this user. Returns 0, -EMBER_ENOPOOL
 * (none running: no segment, or its supervisor has ended, even one its
 * application has not reaped yet), -EMBER_EINVAL (bad name), -EMBER_EABI, -EMBER_EOWNER,
 * -EMBER_ECORRUPT, -EMBER_ECALLERS, or a system failure (-EMBER_EACCES,
 * -EMBER_EMFILE, -EMBER_ENOMEM, -EMBER_ESYSTEM). */
EMBER_API int ember_attach(const char *name, ember_client **out);
/* Detach; waits for nothing. Calls not collected are released. */
EMBER_API void ember_detach(ember_client *c);
/* Handler id for NAME: >= 0, or -EMBER_ENOHANDLER. */
EMBER_API int ember_handler(ember_client *c, const char *name);
/* Run handler H with ARGS and wait for its result, at most TIMEOUT_NS (or
 * EMBER_TIMEOUT_DEFAULT / EMBER_NEVER) for queueing and running together.
 * Returns 0 with *res filled, or a negative code (res->status has it too).
 * Release *res in every case. */
EMBER_API int ember_call(ember_client *c, int h, const void *args, size_t len,
                         ember_result *res, int64_t timeout_ns);
/* Queue handler H with ARGS and return at once; nobody collects the result.
 * Returns 0 or the submit errors below. */
EMBER_API int ember_cast(ember_client *c, int h, const void *args, size_t len,
                         int64_t timeout_ns);
/* Queue a call and return its id. Returns 0, -EMBER_ENOHANDLER, -EMBER_ETOOBIG,
 * -EMBER_EFULL (no slot or pages until the deadline), -EMBER_ENOSPC (/dev/shm
 * has no room for the argument's pages; a result's is the call's status),
 * -EMBER_EPOOLDOWN. */
EMBER_API int ember_submit(ember_client *c, int h, const void *args, size_t len,
                           int64_t timeout_ns, ember_call_id *id);
/* Link: by default a call, cast or child is linked to the calling process:
 * if that process dies, its queued work never runs and its running work is
 * cancelled (ember_job_cancelled() turns true; a handler still running
 * kill_grace later has its runner killed). EMBER_UNLINKED work runs on and
 * its result is dropped. A process that detaches normally leaves its casts
 * to run; its uncollected calls are cancelled as if it had died. */
/* Retries, for idempotent work only: a call submitted with
 * EMBER_RETRIES(N) in its flags (N at most EMBER_RETRIES_MAX) whose runner
 * dies while it runs it (a crash: signal, exit, killed; or lost with another
 * call on it) is queued again and runs on another runner, up to N times,
 * all within its one deadline; its caller keeps waiting. A call whose
 * deadline has passed, that was cancelled, or whose result its runner had
 * begun to write is not run again. Whatever N, a call that has crashed the
 * pool's poison_after runners (pool option, default 2) ends with
 * -EMBER_EPOISON and is not run again; without retries a crash is
 * -EMBER_ECRASHED (or -EMBER_EPOISON with poison_after 1). Children are
 * never retried (ember_place_child refuses it). */
#define EMBER_RETRIES_SHIFT 16
#define EMBER_RETRIES_MAX   15u
#define EMBER_RETRIES(n)    ((unsigned)(n) << EMBER_RETRIES_SHIFT)
/* ember_call, ember_cast, ember_submit with FLAGS (0, EMBER_UNLINKED,
 * EMBER_RETRIES(n), or both or'ed). */
EMBER_API int ember_call_flags(ember_client *c, int h, const void *args, size_t len,
                               ember_result *res, int64_t timeout_ns, unsigned flags);
EMBER_API int ember_cast_flags(ember_client *c, int h, const void *args, size_t len,
                               int64_t timeout_ns, unsigned flags);
EMBER_API int ember_submit_flags(ember_client *c, int h, const void *args, size_t len,
                                 int64_t timeout_ns, unsigned flags, ember_call_id *id);
/* Cancel a submitted call: if it is still queued it never runs; if it runs,
 * its handler sees ember_job_cancelled(), and its runner is killed if it
 * runs on past the pool's kill_grace. Collect it as usual: ember_wait then
 * returns -EMBER_ECANCELLED (or its result, if it had finished before).
 * Returns 0, -EMBER_ESTALE (already collected) or -EMBER_EINVAL. */
EMBER_API int ember_cancel(ember_client *c, ember_call_id id);

/* A child (FLAME's place_child): a long-lived job that holds one of a
 * runner's max_concurrency places until it returns, and keeps that runner
 * from idling down meanwhile. */
typedef struct ember_child {
    ember_call_id id;
    int      pid;      /* the runner process it runs in */
    int      pidfd;    /* a pidfd of that process, or -1; closed by child_wait/stop */
    uint32_t runner;   /* runner table index */
} ember_child;
/* Start handler H as a child and return once it runs, waiting at most
 * TIMEOUT_NS for a runner to take it (the child itself has no deadline).
 * FLAGS: 0 (it is stopped when this process dies) or EMBER_UNLINKED.
 * Returns 0, the submit errors, or -EMBER_ETIMEDOUT (never ran). */
EMBER_API int ember_place_child(ember_client *c, int h, const void *args, size_t len,
                                int64_t timeout_ns, unsigned flags, ember_child *ch);
/* Wait for the child to end; *res as ember_wait's. Release *res. */
EMBER_API int ember_child_wait(ember_client *c, ember_child *ch, ember_result *res);
/* Stop the child (ember_cancel) and wait for it to end: it returns when
 * its handler does, or when its runner is killed kill_grace later
 * (-EMBER_ECANCELLED). Release *res. */
EMBER_API int ember_child_stop(ember_client *c, ember_child *ch, ember_result *res);
/* Wait for a submitted call until its deadline. Same returns as ember_call.
 * A pool that is stopping drains: the wait goes on, and ends with the
 * call's own result if it finishes within the stop's timeout, else
 * -EMBER_EPOOLDOWN (res->detail: EMBER_DOWN_QUEUED, it never ran;
 * EMBER_DOWN_KILLED, its runner was killed at the timeout). A new call to a
 * stopping pool fails at once with -EMBER_EPOOLDOWN. */
EMBER_API int ember_wait(ember_client *c, ember_call_id id, ember_result *res);
/* Like ember_wait without waiting: -EMBER_EAGAIN while it is not done. */
EMBER_API int ember_poll(ember_client *c, ember_call_id id, ember_result *res);
/* Wait up to TIMEOUT_NS (0: just look; negative or EMBER_NEVER: no limit)
 * for whichever of this client's submitted calls (ember_submit*) ends
 * first, and collect it. A call ends with its result, its error, or its
 * deadline (then it is ended as ember_wait ends it). Each call is collected
 * once: by ember_wait_any, or by ember_wait / ember_poll on its id; several
 * threads may wait on one client. Returns 0 with *ID the call and RES its
 * outcome (RES->status: 0 or -EMBER_E..., what ember_wait would return;
 * release RES); or, with no call collected: -EMBER_EAGAIN (none ended in
 * time), -EMBER_ENOCALLS (none in flight), -EMBER_EPOOLDOWN (the pool
 * stopped or its supervisor died: the calls in flight will not end),
 * -EMBER_EINVAL. */
EMBER_API int ember_wait_any(ember_client *c, int64_t timeout_ns, ember_call_id *id,
                             ember_result *res);
/* A file descriptor that becomes readable when ember_wait_any may have a
 * call to return (one ended, a deadline passed, the pool went down), for an
 * epoll, poll or io_uring event loop: when it is readable, call
 * ember_wait_any(c, 0, ...) until it returns -EMBER_EAGAIN, which re-arms
 * it. The client owns the fd (ember_detach closes it). Returns the fd, or
 * -EMBER_ENOSYS where io_uring is refused (then use ember_wait_any). */
EMBER_API int ember_completion_fd(ember_client *c);
/* Give back what a result holds (slot, pages). Safe on any result. */
EMBER_API void ember_result_release(ember_client *c, ember_result *res);

/* ---- 3. the pool seen from outside -------------------------------------- */
/* A snapshot of a pool (ember_stats_read()): a consistent enough picture for
 * monitoring; every field is read once, none is a promise about the next
 * instant. */
typedef struct ember_runner_stats {
    uint32_t index;          /* runner table index (results' runner field) */
    int      pid;
    int      state;          /* EMBER_RUNNER_BOOTING, _READY, _DRAINING */
    int      node;           /* NUMA node P# it is bound to, -1: not placed */
    uint64_t cpus[EMBER_CPUSET_WORDS]; /* CPUs it is bound to, a bit each (all 0: unbound) */
    unsigned busy;           /* calls running on it now */
    unsigned capacity;       /* max_concurrency */
    uint64_t calls;          /* calls it has run */
    uint64_t stolen;         /* ... of them taken from another node's queue */
    uint64_t rss;            /* resident bytes when it last measured (0: not measured) */
    uint64_t uptime_ns;      /* since its fork */
    int      reason;         /* EMBER_WHY_* it boots or drains for */
} ember_runner_stats;

typedef struct ember_stats {
    char     pool[EMBER_NAME_MAX];
    int      state;          /* EMBER_POOL_STARTING, _RUNNING, _STOPPING, _DOWN */
    char     backend[16];    /* the supervisor's event loop: "uring" or "poll" */
    int      supervisor_pid;
    int      placement;      /* EMBER_PLACEMENT_* (pool.h) */
    unsigned nodes;          /* NUMA nodes the pool uses (its queues) */
    unsigned min, max;       /* current bounds */
    unsigned max_limit;      /* the ceiling of max */
    unsigned max_concurrency;
    unsigned serving;        /* runners booting or ready */
    unsigned ready;          /* runners ready */
    unsigned runners;        /* runner processes alive (draining ones too) */
    unsigned queued;         /* calls waiting for a runner */
    unsigned running;        /* calls on a runner now */
    unsigned queue_capacity; /* calls queued or running at once */
    unsigned callers;        /* processes attached */
    uint64_t max_payload;
    /* counters since the pool started */
    uint64_t runners_started, runners_died, boot_failures, callers_reaped;
    uint64_t calls_crashed;  /* failed with EMBER_ECRASHED / _EOOM / _ERUNNERLOST / _EPOISON */
    uint64_t calls_expired;  /* timed out while queued or running */
    uint64_t calls_killed;   /* their runner was killed past kill_grace or the stop's timeout */
    uint64_t calls_boot_failed; /* failed fast with EMBER_EBOOT */
    uint64_t events;         /* events so far: the cursor ember_events_read() reaches */
    uint32_t epoch;          /* changes whenever runners or callers come and go (ember_stats_wait) */
    /* what the pool's stop did, once state is EMBER_POOL_DOWN (ember_stop()
     * has returned); 0 before */
    unsigned stop_finished;  /* running calls that finished while it drained */
    unsigned stop_killed;    /* calls still running at its timeout: killed (EMBER_EPOOLDOWN) */
    unsigned stop_never_ran; /* queued calls it failed (EMBER_EPOOLDOWN) */
    uint64_t calls_retried;  /* queued again after their runner died (EMBER_RETRIES) */
    uint64_t calls_poisoned; /* failed with EMBER_EPOISON (poison_after) */
    /* how long ago the supervisor's event loop last came round: it does at
     * least once a second while it works, so seconds here mean a
     * supervisor that lives but is stuck (0 while it starts) */
    uint64_t supervisor_silent_ns;
} ember_stats;

/* Fill *ST with the pool's state and RUNNERS[0..N) with its live runners
 * (N may be 0). Returns how many runners live (which may exceed N: only N
 * are filled), or -EMBER_EINVAL. */
EMBER_API int ember_stats_read(ember_client *c, ember_stats *st, ember_runner_stats *runners, int n);
/* Wait until the pool's epoch differs from EPOCH (from a snapshot) or an
 * event comes, at most TIMEOUT_NS: 0 (changed or timed out: take a new
 * snapshot), -EMBER_EPOOLDOWN (the pool stopped or its supervisor died; a
 * stop's start changes the epoch). */
EMBER_API int ember_stats_wait(ember_client *c, uint32_t epoch, int64_t timeout_ns);
/* "booting", "ready", "draining", "empty": an EMBER_RUNNER_* state. */
EMBER_API const char *ember_runner_state_name(int state);
/* "starting", "running", "stopping", "down": an EMBER_POOL_* state. */
EMBER_API const char *ember_pool_state_name(int state);
/* "grow_start", "grow_end", "shrink": an EMBER_EV_* type. */
EMBER_API const char *ember_event_name(int type);

/* A pool event (ember_events_read(); the on_grow_start, on_grow_end and
 * on_shrink callbacks of pool.h). */
typedef struct ember_event {
    uint64_t seq;          /* 0, 1, 2... in this pool; a gap means events were lost */
    uint64_t time_ns;      /* CLOCK_MONOTONIC */
    int      type;         /* EMBER_EV_GROW_START, _GROW_END, _SHRINK */
    uint32_t runner;       /* runner table index */
    uint32_t runners;      /* runners serving the pool (booting or ready) after it */
    int      reason;       /* EMBER_WHY_*: see ember_why_name() */
    int      ok;           /* GROW_END: 1 when the runner is up, 0 when its boot failed */
    int      count;        /* failed GROW_END: boot failures in a row */
    int      status, signal; /* failed boot: the runner's exit status or signal */
    char     pool[EMBER_NAME_MAX];
    char     msg[64];      /* failed boot: the runner's message */
} ember_event;

/* The pool's max_payload in bytes. */
EMBER_API size_t ember_max_payload(const ember_client *c);
/* Copy up to N pool events, oldest first, starting at sequence *CURSOR (0 at
 * first; the ring keeps the last EMBER_EVENT_RING), into EV and move *CURSOR
 * past them. Returns how many (0: none new), or -EMBER_EINVAL. */
EMBER_API int ember_events_read(ember_client *c, uint64_t *cursor, ember_event *ev, int n);
/* Pool control from any attached process of the pool's user (the `ember`
 * command uses these). Resize: as ember_pool_resize() (pool.h): 0, or
 * -EMBER_EINVAL (min > max, max 0 or above the pool's max_limit). */
EMBER_API int ember_resize(ember_client *c, unsigned min, unsigned max);
/* Stop the pool gracefully (as ember_pool_stop(), running calls get
 * SHUTDOWN_TIMEOUT_NS; negative: the pool's) and wait until its supervisor
 * has exited (killed if it has not shortly after the timeout); what the stop
 * did is then in ember_stats_read()'s stop_* fields. Returns 0,
 * -EMBER_EINVAL, -EMBER_EPERM / -EMBER_ESYSTEM when the supervisor cannot
 * be signalled, or -EMBER_EPOOLDOWN when it ended without finishing its
 * stop (this stop killed it after the timeout and 3 s, or it was killed or
 * crashed; ember_last_error() says which; calls still running were lost).
 * C is still to be detached. */
EMBER_API int ember_stop(ember_client *c, int64_t shutdown_timeout_ns);
/* Wait until at least N runners are ready: 0, -EMBER_ETIMEDOUT, -EMBER_EPOOLDOWN. */
EMBER_API int ember_wait_ready(ember_client *c, unsigned n, int64_t timeout_ns);
/* "idle", "demand", "boot_failed"...: the name of an EMBER_WHY_* reason. */
EMBER_API const char *ember_why_name(int reason);

/* ---- 4. metrics ------------------------------------------------------------
 * Counters since the pool started, and histograms of how long calls waited
 * in the queue (from their caller's queueing to a runner's take) and ran
 * (from the take to the result), per handler. Runners and the supervisor
 * count as they go, each in counters of its own in the pool's shared
 * memory; ember_metrics_read() sums them, so reading costs the pool
 * nothing and any attached process may read at any rate. Counters only
 * grow while the pool lives (a monitor's rate() needs no reset handling).
 * Durations come from CLOCK_MONOTONIC_COARSE, the clock the calls read
 * anyway (the precise one would cost a warm call a tenth of its time):
 * they are multiples of its tick, coarse_tick_ns (1-10 ms by the kernel's
 * HZ), so a call shorter than a tick counts as 0 or one tick. */

/* A histogram: bucket i counts the durations no longer than
 * ember_histogram_bound_ns(i) and longer than bucket i-1's bound (not
 * cumulative); the last bucket's bound is UINT64_MAX (+Inf). */
typedef struct ember_histogram {
    uint64_t count;                       /* observations: the sum of the buckets */
    uint64_t sum_ns;                      /* their durations, summed */
    uint64_t bucket[EMBER_HIST_BUCKETS];
} ember_histogram;

typedef struct ember_handler_metrics {
    char     name[EMBER_NAME_MAX];
    int      id;                          /* as ember_handler() gives it */
    uint64_t completed;                   /* calls that ended with a result (status 0) */
    uint64_t failed;                      /* calls that ended with an error */
    ember_histogram queue_wait;           /* every call a runner took */
    ember_histogram run_time;             /* every call whose handler ran */
} ember_handler_metrics;

typedef struct ember_metrics {
    uint64_t calls_accepted;              /* queued by callers */
    uint64_t calls_completed;             /* ended with a result */
    uint64_t calls_failed;                /* ended with an error: the sum of failed_by */
    uint64_t failed_by[EMBER_CAUSES];     /* by cause: ember_metrics_cause(i) is the code */
    /* Not counted as ended: queued or running calls their caller gave up
     * (detached or died: never run, or cancelled with nobody to tell). */
    unsigned calls_queued;                /* waiting for a runner now */
    unsigned calls_in_flight;             /* on a runner now */
    /* runners by state now: ready ones are split into idle (no call
     * running) and busy */
    unsigned runners_booting, runners_idle, runners_busy, runners_draining;
    uint64_t runner_boots;                /* runners forked */
    uint64_t boot_failures;               /* of them: boots that failed or timed out */
    uint64_t runner_ends[EMBER_WHY_SLOTS]; /* runners ended, by EMBER_WHY_* reason
                                             (ember_why_name): crash, max_jobs, max_rss,
                                             single_use (recycles), idle, boot_failed... */
    uint64_t supervisor_rss;              /* its resident bytes (/proc), 0: unknown */
    uint64_t runners_rss;                 /* the runners' resident bytes, as each measured */
    uint64_t callers_attached;            /* attaches so far */
    uint64_t callers_reaped;              /* callers that died attached (never a detach) */
    unsigned callers;                     /* attached now */
    unsigned handlers;                    /* the pool's handlers */
    uint64_t coarse_tick_ns;              /* the durations' resolution */
} ember_metrics;

/* Fill *M with the pool's metrics and H[0..N) with its first N handlers'
 * (N may be 0). Returns how many handlers the pool has (which may exceed
 * N), or -EMBER_EINVAL. */
EMBER_API int ember_metrics_read(ember_client *c, ember_metrics *m, ember_handler_metrics *h, int n);
/* The upper bound of histogram bucket I in ns (1 ms << I), or UINT64_MAX
 * for the last bucket (+Inf) and for I out of range. */
EMBER_API uint64_t ember_histogram_bound_ns(int i);
/* The code (-EMBER_E...) counted in failed_by[I], or 0 for an index that
 * names none. */
EMBER_API int ember_metrics_cause(int i);
/* The Q-quantile (0 <= Q <= 1) of the durations in NOW, or of those added
 * since BEFORE (an earlier copy of the same histogram; NULL: since the
 * start), interpolated within its bucket; the last bucket's share is
 * given as its lower bound. Returns 0 with *NS set, or -EMBER_EAGAIN (no
 * observation in that span), -EMBER_EINVAL. */
EMBER_API int ember_histogram_quantile(const ember_histogram *now, const ember_histogram *before,
                                       double q, uint64_t *ns);


#ifdef __cplusplus
}
#endif

#endif /* EMBER_CLIENT_H */

#if defined(EMBER_CLIENT_IMPLEMENTATION) && !defined(EMBER_CLIENT_IMPLEMENTED)
#define EMBER_CLIENT_IMPLEMENTED
#include "detail/client_impl.h"
#endif
