/* ember/pool.h - libember: handlers, pools, runners.
 *
 * A program registers named handlers, then starts a pool: ember forks a
 * supervisor from the program, which forks runner processes; runners carry
 * the program's code, so every registered handler can run there. Any process
 * can then call into the pool through <ember/client.h>.
 *
 * Returns: 0 or a negative code -EMBER_E... from client.h's table, with
 * ember_last_error() saying what was wrong.
 */
#ifndef EMBER_POOL_H
#define EMBER_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ember_out ember_out;   /* where a handler writes its result */

/* What a handler knows of the call it runs. Read-only. */
typedef struct ember_job {
    uint64_t deadline_ns;             /* CLOCK_MONOTONIC, absolute */
    uint32_t runner;                  /* runner table index */
    int      node;                    /* NUMA node of the runner */
    const EMBER_ATOMIC(uint32_t) *_state;   /* private */
    uint32_t _gen;                    /* private */
} ember_job;

/* A handler: returns 0 on success; any other value fails the call with
 * EMBER_EHANDLER and that value as the result's detail. */
typedef int (*ember_handler_fn)(const void *args, size_t len, ember_out *out,
                                const ember_job *job);

/* Register FN under NAME (1-39 of [A-Za-z0-9_.-]) before ember_pool_start().
 * A pool has the handlers registered when it started. Returns 0,
 * -EMBER_EINVAL (bad name, NULL fn, table full), -EMBER_EEXIST. */
int ember_handler_register(const char *name, ember_handler_fn fn);

/* Append N bytes to the result. Returns 0, -EMBER_ETOOBIG (over max_payload),
 * -EMBER_EFULL (no shared pages before the deadline) or -EMBER_ENOSPC
 * (/dev/shm has no room for more pages: the call then fails with
 * EMBER_ENOSPC whatever the handler returns, and the runner serves on). */
int ember_out_write(ember_out *out, const void *p, size_t n);
/* Room for N more bytes of result, to fill in place; NULL on the errors of
 * ember_out_write(). */
void *ember_out_reserve(ember_out *out, size_t n);

/* Same-image functions (FLAME.call with an anonymous function, on one host):
 * run FN(CTX copy, CTX_LEN, out, job) in a runner, like a handler. FN must be
 * code of the program that started the pool, loaded before it started: the
 * caller is that program or a fork of it. A caller of any other image
 * (another program, or the same program started anew at other addresses)
 * gets -EMBER_EIMAGE and nothing runs. Returns as ember_call. */
int ember_call_fn(ember_client *c, ember_handler_fn fn, const void *ctx, size_t ctx_len,
                  ember_result *res, int64_t timeout_ns);
/* The same, queued: FLAGS 0 or EMBER_UNLINKED; collect with ember_wait. */
int ember_submit_fn(ember_client *c, ember_handler_fn fn, const void *ctx, size_t ctx_len,
                    int64_t timeout_ns, unsigned flags, ember_call_id *id);

/* Has the caller given up on this job (deadline passed, caller gone)? */
bool ember_job_cancelled(const ember_job *job);
/* Nanoseconds left before the job's deadline (0 when past). */
uint64_t ember_job_remaining_ns(const ember_job *job);
/* The runner's supervisor kills process group PGID with SIGKILL if this
 * runner dies (crash, kill_grace, a stop's timeout) while the job runs; 0
 * clears it. For a handler that starts commands in their own group: set it
 * right after the start, clear it before reaping the group's leader (until
 * then its pid cannot name another group). Call it from the handler while
 * the job runs (any of its threads). Returns 0, or -EMBER_EINVAL (PGID
 * negative, not in a runner, JOB not running here). */
int ember_job_watch_pgid(const ember_job *job, int pgid);

/* Pool options; FLAME.Pool's, on one host. Durations in nanoseconds. */
struct ember_pool_config {
    const char *name;          /* pool name, also the segment's */
    unsigned min;              /* runners always up; 0 scales to zero (default 0) */
    unsigned max;              /* runners at most (default: online CPUs) */
    unsigned max_limit;        /* ceiling of max for ember_pool_resize() (default:
                                  the larger of max and 4 x online CPUs) */
    unsigned max_concurrency;  /* calls per runner at once (default 1) */
    bool     single_use;       /* a runner runs one call, then is replaced */
    int64_t  timeout_ns;       /* a call's default deadline, queueing and running (30 s) */
    int64_t  boot_timeout_ns;  /* fork to ready, or the boot failed (30 s) */
    int64_t  shutdown_timeout_ns; /* how long a stop lets running calls finish (30 s) */
    int64_t  kill_grace_ns;    /* a call past its deadline may run this long after its
                                  cancel flag before its runner is killed (1 s) */
    int64_t  idle_shutdown_after_ns;     /* a runner above min idle this long stops (30 s) */
    int64_t  min_idle_shutdown_after_ns; /* the same for min runners (EMBER_NEVER) */
    /* Asked in the runner before an idle shutdown: false keeps it up (and it
     * is asked again after another idle period). NULL: always true. */
    bool   (*idle_shutdown_check)(void *arg);
    void    *idle_shutdown_arg;
    uint64_t max_jobs;         /* a runner is replaced after this many calls (0: never) */
    size_t   max_rss;          /* ... or once its resident memory exceeds this (0: never) */
    unsigned queue_capacity;   /* calls queued or running at once (default 4096; rounded
                                  up to a power of two) */
    int      log;              /* supervisor log on stderr (ember_log's lines): 0 off,
                                  1 pool events and trouble (deaths, reclaimed callers,
                                  refused calls), 2 debug; EMBER_LOG=0/1/2 in the
                                  environment overrides it */
    /* Runs in each new runner before it takes calls: return 0, or fail the
     * boot with a message written to MSG (it reaches EMBER_EBOOT results and
     * the grow-end event). */
    int    (*runner_boot)(void *arg, char *msg, size_t msglen);
    void    *runner_boot_arg;
    /* Pool events, called in the application that started the pool, on a
     * thread of ember's that ember_pool_start() creates only when one of
     * these is set (all signals blocked on it) and ember_pool_stop() joins
     * after the last event (the stop's own shrinks too). Never in the
     * supervisor: a callback that blocks holds up only the callbacks after
     * it, never growth or calls; one that falls 256 events behind misses
     * the oldest (the event ring's size). A callback must not call
     * ember_pool_stop() on its own pool (-EMBER_EINVAL). The same events
     * are in the pool's event ring for any attached process
     * (ember_events_read()). */
    void   (*on_grow_start)(const ember_event *ev, void *arg);
    void   (*on_grow_end)(const ember_event *ev, void *arg);
    void   (*on_shrink)(const ember_event *ev, void *arg);
    void    *event_arg;
    /* Placement (hwloc): EMBER_PLACEMENT_NUMA (default) spreads runners over
     * NUMA nodes in proportion to their cores, each bound to its node's CPUs
     * and memory; _CORE pins one runner per core (max is capped at the
     * cores); _NONE binds nothing. NODES restricts them to some NUMA nodes
     * ("0,2-3", by P#; NULL: all). Callers queue on their own node's queue,
     * runners take from theirs first and steal from the others when idle. */
    int      placement;
    const char *nodes;
    size_t   max_payload;      /* bytes per argument or result (default 64 MiB) */
    size_t   payload_space;    /* shared bytes for large payloads (default 4 x max_payload) */
    unsigned max_callers;      /* attached processes at once (default 256) */
    /* Handler plugins to load before the supervisor forks (plugin.h):
     * names or paths, comma-separated; NULL: none. */
    const char *plugins;
    /* Limits of each runner, applied right after its fork; a runner over
     * one ends, and its calls fail (see EMBER_ECRASHED and EMBER_EOOM in
     * client.h). 0: no limit. */
    size_t   runner_memory_max;   /* bytes of memory (cgroup memory.max, no swap beyond):
                                     over it the kernel's OOM killer kills it: EMBER_EOOM.
                                     Needs a writable memory cgroup, else the start fails */
    bool     runner_cgroup;       /* a memory cgroup per runner where one can be made, to
                                     tell OOM kills from other deaths (default true) */
    size_t   runner_rlimit_as;    /* bytes of address space (RLIMIT_AS): allocations fail */
    uint64_t runner_rlimit_cpu;   /* CPU seconds in the runner's life (RLIMIT_CPU): SIGXCPU,
                                     SIGKILL a second later */
    uint64_t runner_rlimit_nofile; /* open files (RLIMIT_NOFILE) */
    /* A call that has crashed this many runners ends with EMBER_EPOISON and
     * is not run again, whatever its EMBER_RETRIES (client.h) (default 2,
     * at most 15). */
    unsigned poison_after;
};

/* The pool options that are values (callbacks and the name aside), one
 * row each: X(NAME, FIELD, KIND, DEFAULT, MIN, MAX, DOC). KIND is the
 * field's type (EMBER_OPT_UINT: unsigned, _INT: int, _U64: uint64_t,
 * _SIZE: size_t bytes, _DURATION: int64_t ns, _BOOL: bool, _PLACEMENT: int
 * EMBER_PLACEMENT_*, _STRING: const char *); DEFAULT is what
 * ember_pool_config_init() sets (EMBER_ONLINE_CPUS: the CPUs online), MIN
 * and MAX the range ember_pool_start() accepts (0 for MIN of a size or
 * duration: the option may be 0, meaning what DOC says). The `ember`
 * command takes them as --NAME, and its help lists them from here. */
#define EMBER_POOL_OPTIONS(X)                                                                 \
    X(min, min, EMBER_OPT_UINT, 0, 0, 4096, "runners always up; 0 scales to zero")            \
    X(max, max, EMBER_OPT_UINT, EMBER_ONLINE_CPUS, 1, 4096, "runners at most")                \
    X(max_limit, max_limit, EMBER_OPT_UINT, 0, 0, 4096,                                        \
      "ceiling of max for resizes (0: the larger of max and 4 x CPUs)")                        \
    X(max_concurrency, max_concurrency, EMBER_OPT_UINT, 1, 1, 1024, "calls per runner at once") \
    X(single_use, single_use, EMBER_OPT_BOOL, 0, 0, 1, "a runner runs one call, then is replaced") \
    X(timeout, timeout_ns, EMBER_OPT_DURATION, 30 * EMBER_SECOND, 1, EMBER_NEVER,              \
      "a call's default deadline, queueing and running")                                       \
    X(boot_timeout, boot_timeout_ns, EMBER_OPT_DURATION, 30 * EMBER_SECOND, 1, EMBER_NEVER,    \
      "fork to ready, or the boot failed")                                                     \
    X(shutdown_timeout, shutdown_timeout_ns, EMBER_OPT_DURATION, 30 * EMBER_SECOND, 1,         \
      EMBER_NEVER, "how long a stop lets running calls finish")                                \
    X(kill_grace, kill_grace_ns, EMBER_OPT_DURATION, EMBER_SECOND, 1, EMBER_NEVER,             \
      "a call past its deadline or cancelled runs this long before its runner is killed")      \
    X(idle_shutdown_after, idle_shutdown_after_ns, EMBER_OPT_DURATION, 30 * EMBER_SECOND, 1,   \
      EMBER_NEVER, "a runner above min idle this long stops")                                  \
    X(min_idle_shutdown_after, min_idle_shutdown_after_ns, EMBER_OPT_DURATION, EMBER_NEVER, 1, \
      EMBER_NEVER, "the same for the min runners")                                             \
    X(max_jobs, max_jobs, EMBER_OPT_U64, 0, 0, UINT64_MAX, "a runner is replaced after this many calls (0: never)") \
    X(max_rss, max_rss, EMBER_OPT_SIZE, 0, 0, SIZE_MAX,                                        \
      "... or once its resident memory exceeds this (0: never)")                              \
    X(queue_capacity, queue_capacity, EMBER_OPT_UINT, 4096, 2, 65536,                          \
      "calls queued or running at once (rounded up to a power of two)")                        \
    X(log, log, EMBER_OPT_INT, 0, 0, 2,                                                        \
      "supervisor log on stderr: 0 off, 1 pool events and trouble, 2 debug")                  \
    X(placement, placement, EMBER_OPT_PLACEMENT, EMBER_PLACEMENT_NUMA, 0, 2,                   \
      "numa: runners per NUMA node; core: one pinned per core; none")                         \
    X(nodes, nodes, EMBER_OPT_STRING, 0, 0, 0, "NUMA nodes to use, by P# (\"0,2-3\"; none: all)") \
    X(max_payload, max_payload, EMBER_OPT_SIZE, 64 * EMBER_MIB, EMBER_INLINE_MAX, 2048 * EMBER_MIB, \
      "bytes per argument or result")                                                         \
    X(payload_space, payload_space, EMBER_OPT_SIZE, 0, 0, SIZE_MAX,                            \
      "shared bytes for large payloads (0: 4 x max_payload)")                                  \
    X(max_callers, max_callers, EMBER_OPT_UINT, 256, 1, 65536, "attached processes at once") \
    X(plugins, plugins, EMBER_OPT_STRING, 0, 0, 0,                                              \
      "handler plugins to load, by name or path, comma-separated (ember plugins lists them)") \
    X(runner_memory_max, runner_memory_max, EMBER_OPT_SIZE, 0, 0, SIZE_MAX,                    \
      "memory a runner may use (cgroup memory.max; over it: EMBER_EOOM; 0: no limit)")         \
    X(runner_cgroup, runner_cgroup, EMBER_OPT_BOOL, 1, 0, 1,                                   \
      "a memory cgroup per runner where writable, to tell OOM kills from other deaths")        \
    X(runner_rlimit_as, runner_rlimit_as, EMBER_OPT_SIZE, 0, 0, SIZE_MAX,                      \
      "address space of a runner (RLIMIT_AS; 0: as inherited)")                                \
    X(runner_rlimit_cpu, runner_rlimit_cpu, EMBER_OPT_U64, 0, 0, UINT32_MAX,                   \
      "CPU seconds a runner may use in its life (RLIMIT_CPU: SIGXCPU; 0: no limit)")           \
    X(runner_rlimit_nofile, runner_rlimit_nofile, EMBER_OPT_U64, 0, 0, 1u << 30,               \
      "files a runner may have open (RLIMIT_NOFILE; 0: as inherited)")                         \
    X(poison_after, poison_after, EMBER_OPT_UINT, 2, 1, 15,                                    \
      "a call that crashed this many runners fails with EMBER_EPOISON and is not retried")

enum { EMBER_OPT_UINT, EMBER_OPT_INT, EMBER_OPT_U64, EMBER_OPT_SIZE, EMBER_OPT_DURATION,
       EMBER_OPT_BOOL, EMBER_OPT_PLACEMENT, EMBER_OPT_STRING };
#define EMBER_SECOND 1000000000ll
#define EMBER_MIB    (1024ull * 1024ull)
#define EMBER_ONLINE_CPUS ember_online_cpus()
/* CPUs online (at least 1). */
unsigned ember_online_cpus(void);

/* Fill CFG with the defaults. */
void ember_pool_config_init(struct ember_pool_config *cfg);

typedef struct ember_pool ember_pool;

/* Start a pool: creates its segment, forks the supervisor, which boots the
 * min runners. Returns once the supervisor is up (runners boot on their own;
 * calls queue meanwhile). A pool of that name whose supervisor has ended
 * (reaped or not) is replaced. Returns 0, -EMBER_EINVAL (option named in
 * ember_last_error()), -EMBER_EEXIST (a live pool of that name),
 * -EMBER_EBOOT (the supervisor did not start: ember_last_error() gives its
 * exit status and what it means, from the table of src/lib/exits.h and
 * docs/ARCHITECTURE.md, or its signal), or a system failure
 * (-EMBER_ENOSPC for /dev/shm, -EMBER_EMFILE..., -EMBER_ESYSTEM); with
 * cfg->plugins, also ember_plugin_load()'s failures (plugin.h), the pool not
 * started (the plugins loaded before the failing one stay loaded). */
int ember_pool_start(const struct ember_pool_config *cfg, ember_pool **out);
/* Graceful stop, a drain: no new calls (they get EMBER_EPOOLDOWN at
 * submit), queued calls get EMBER_EPOOLDOWN (detail EMBER_DOWN_QUEUED),
 * running calls may finish within SHUTDOWN_TIMEOUT_NS (negative: the pool's
 * shutdown_timeout) and their callers, who keep waiting, get their results;
 * then the runners still running calls are killed and those calls get
 * EMBER_EPOOLDOWN (EMBER_DOWN_KILLED). Returns when all that is done (the
 * supervisor reaped, the event thread joined). The segment's name is
 * removed and the handle freed (whatever happens, but for the EINVALs).
 * Returns 0 when the supervisor ended its stop cleanly (exit status 0);
 * -EMBER_EPOOLDOWN when it did not: killed by a signal (by this stop, past
 * the timeout and 3 s, or before it: ember_last_error() says which), or an
 * exit status other than 0 (with its meaning); -EMBER_EINVAL for a NULL
 * pool or a call from the pool's own event callback (nothing done). */
int ember_pool_stop(ember_pool *pool, int64_t shutdown_timeout_ns);
/* Change min and max at run time. Growing boots runners as min or demand
 * needs; shrinking drains runners (idle ones first), never killing a call.
 * Returns 0 or -EMBER_EINVAL (min > max, max 0, max above max_limit). */
int ember_pool_resize(ember_pool *pool, unsigned min, unsigned max);
/* Pid of the pool's supervisor. */
int ember_pool_supervisor_pid(const ember_pool *pool);
/* Wait until at least N runners are ready (or TIMEOUT_NS passes): 0 or
 * -EMBER_ETIMEDOUT, -EMBER_EPOOLDOWN. */
int ember_pool_wait_ready(ember_pool *pool, unsigned n, int64_t timeout_ns);

/* The log's priorities (syslog's numbers), most urgent first. */
enum { EMBER_LOG_ERR = 3, EMBER_LOG_WARNING = 4, EMBER_LOG_NOTICE = 5, EMBER_LOG_INFO = 6,
       EMBER_LOG_DEBUG = 7 };
/* Write one line on stderr the way a pool's supervisor writes its log:
 * "2026-12-05T23:52:20.123+00:00 info MESSAGE" (the time in UTC, to the
 * millisecond; the level word of PRIO, one of EMBER_LOG_*), or, when
 * stderr is systemd's journal (JOURNAL_STREAM names it), "<6>info MESSAGE":
 * the journal stamps the time and takes the priority from the prefix. One
 * write(2) per line, so lines of processes sharing stderr never mix; a
 * message longer than about 1000 bytes is cut. Keeps errno. */
void ember_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Inside a runner: who we are; NULL in any other process. */
typedef struct ember_parent_info {
    const char *pool;
    uint32_t runner;
    int supervisor_pid;
} ember_parent_info;
const ember_parent_info *ember_parent(void);

/* Supervisor back-ends: "uring" (default) or "poll" (chosen when io_uring
 * cannot be set up, or forced with EMBER_BACKEND=poll). Name of the one a
 * pool's supervisor runs, as it reported it. */
const char *ember_pool_backend(const ember_pool *pool);

#ifdef __cplusplus
}
#endif

#endif
