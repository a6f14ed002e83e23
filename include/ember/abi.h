/* ember/abi.h - the shared-memory layout of an ember pool, version 9.
 *
 * One POSIX shared-memory segment per pool, "/ember.<uid>.<name>", mode 0600,
 * mapped at any address in every process: everything inside is addressed by
 * byte offsets from the segment base, never by pointers.
 *
 *   header | handlers | runners | workers | callers | slots | run rings
 *   (one per NUMA node used) | free ring | event ring | CPU -> ring map |
 *   page table | payload pages | counts (one block per worker, then the
 *   supervisor's)
 *
 * Every part starts on its own cache line. The header's geometry fields are
 * written once by the creator before the supervisor publishes its pid; an
 * attaching process validates them once and from then on uses its own
 * process-local copy (struct ember__view, detail/view.h), so a process that
 * scribbles over the header later cannot make others index out of bounds.
 * Every index and length read from a slot or ring cell is bounded before use.
 *
 * Synchronization notes (writer -> readers, ordering):
 *   slot.state   caller, runner, supervisor -> all; every transition is a CAS
 *                on the whole word (generation(16) + flags + state), see
 *                detail/slot.h.
 *   ring cells   producers and consumers, CAS only, see detail/ring.h.
 *   nparked,
 *   spin         workers -> callers; seq_cst, the eventcount pairing
 *                described in detail/wake.h.
 *   runner.*     supervisor writes gen/state/exit status, and pid after the
 *                fork; the runner writes its own pid before it takes a call,
 *                state for BOOTING -> READY and READY -> DRAINING, rss.
 *   worker.*     its thread writes park (with the supervisor after its death),
 *                busy, jobs_done, current.
 *   worker.job_pgid  the job's handler stores a group after starting it and
 *                0 before it lets it go (seq_cst); the supervisor zeroes it
 *                before the runner's fork and takes it (exchange with 0)
 *                only once the runner is dead, when nothing else writes it.
 *   caller.pid   the caller claims its entry by CAS 0 -> pid; supervisor
 *                clears it after that process has exited.
 *   done bitmap  whoever finishes a NOTIFY call sets its bit (seq_cst) ->
 *                its owner takes the word with an exchange; see detail/any.h.
 *   slot.flags   the caller before QUEUED (release); the supervisor (retries
 *                left, crashes) only while the slot's runner is dead, before
 *                its CAS to QUEUED or DONE (release) -> the next runner after
 *                its take, the owner after DONE (acquire).
 *   slot.owner   the claimer, after its claim CAS (release) -> whoever
 *                reads the state word first (acquire), then the owner
 *                (acquire): see detail/slot.h, S5.
 *   slot.t_start_ns  the caller writes the time it queues the call before
 *                QUEUED (release) -> the runner reads it after its take
 *                (acquire) for the queue wait, then writes its receipt there.
 *   counts       (struct ember_count_ent) each block has one writer: worker
 *                i's is written by that worker's thread only, the last one
 *                by the supervisor only, each counter with a relaxed load
 *                and a relaxed store (no read-modify-write: nobody else
 *                writes the line) -> readers sum the blocks with relaxed
 *                loads: a snapshot for monitoring, no ordering with calls.
 *                A block outlives its runner (the next runner of that entry
 *                counts on), so every counter only grows.
 *   caller.calls_submitted[EMBER_SUBMIT_COUNTERS]  [k >= 1]: one thread of
 *                the owner, the one its client registered for k (a
 *                relaxed load and a relaxed store: no read-modify-write on
 *                the hot path); [0]: the owner's threads that found no
 *                counter of their own (relaxed fetch_add) -> readers sum
 *                them (relaxed); the entry's next owners count on from them.
 *   runner_ends  the supervisor only (relaxed) -> readers (relaxed).
 */
#ifndef EMBER_ABI_H
#define EMBER_ABI_H

#include <stdint.h>
#include "detail/atomic.h"

#define EMBER_ABI_VERSION   10u /* 10: caller.calls_submitted, a counter per submitting thread; 9: counts (per worker and the supervisor's), runner_ends, a queued call's t_start_ns */
#define EMBER_SUBMIT_COUNTERS 8u /* per caller entry: see calls_submitted */
#define EMBER_MAGIC         0x4745534d45424d45ull /* "EMBEMSEG" little-endian */
#define EMBER_CACHELINE     64
#define EMBER_NAME_MAX      40   /* pool and handler names, with the NUL */
#define EMBER_SLOT_SIZE     256
#define EMBER_SLOT_HDR      64   /* one cache line: the one caller and runner hand over */
#define EMBER_INLINE_MAX    (EMBER_SLOT_SIZE - EMBER_SLOT_HDR)
#define EMBER_MAX_SLOTS     65536u /* a ring entry carries a 16-bit index */
#define EMBER_NONE          0xffffffffu
#define EMBER_MAX_RINGS     64     /* submission rings: NUMA nodes used by a pool */
#define EMBER_CPUSET_WORDS  16     /* runner cpusets: CPUs 0..1023 */
#define EMBER_SPIN_BIAS     0x80000000u /* zero of each half of hdr.spin */
#define EMBER_HIST_BUCKETS  22   /* histogram buckets: <= 1 ms << i for i < 21, then +Inf */
#define EMBER_CAUSES        40   /* failure counters: one per entry of client.h's error table */
#define EMBER_WHY_SLOTS     16   /* runner_ends: one per EMBER_WHY_* value */

/* pool state (hdr.pool_state) */
enum { EMBER_POOL_STARTING = 1, EMBER_POOL_RUNNING = 2, EMBER_POOL_STOPPING = 3,
       EMBER_POOL_DOWN = 4 };

/* slot states, low 4 bits of slot.state */
enum { EMBER_SLOT_FREE = 0, EMBER_SLOT_CLAIMED = 1, EMBER_SLOT_QUEUED = 2,
       EMBER_SLOT_RUNNING = 3, EMBER_SLOT_DONE = 4, EMBER_SLOT_ABANDONED = 5 };
#define EMBER_SLOT_STATE_MASK 0x0fu
#define EMBER_SLOT_WAITER     0x10u  /* the owner is (about to be) parked on the word */
#define EMBER_SLOT_ORPHAN     0x20u  /* its owner is gone but the call runs on (unlinked):
                                        whoever finishes it frees it */
#define EMBER_SLOT_CANCEL     0x40u  /* the owner cancelled it: not run if still queued, the
                                        handler sees it, the runner is killed after kill_grace */
#define EMBER_SLOT_STARTED    0x80u  /* (child) a runner runs it; slot.runner says which */
#define EMBER_SLOT_STICKY     (EMBER_SLOT_WAITER | EMBER_SLOT_ORPHAN | EMBER_SLOT_CANCEL)
#define EMBER_SLOT_GEN_SHIFT  16     /* bits 16..31: generation, bumped at each claim */

/* slot flags */
#define EMBER_CALL_CAST     0x1u     /* nobody waits: the runner frees the slot */
#define EMBER_UNLINKED      0x2u     /* runs on if its caller dies (else cancelled); a flag
                                        a caller passes (ember_call_flags..., with
                                        EMBER_RETRIES(n) of client.h) */
#define EMBER_CALL_CHILD    0x4u     /* place_child: the owner is told when it starts */
#define EMBER_CALL_NOTIFY   0x8u     /* submitted to be collected by ember_wait_any: whoever
                                        finishes it sets its bit in the owner's done bitmap */
#define EMBER_CALL_FLAGS    0xfu
/* Retries (ember_call_flags with EMBER_RETRIES(n), client.h): bits 4-7 are
 * the retries a call has left, written by the caller before QUEUED and
 * taken down by the supervisor each time it queues the call again after its
 * runner died; bits 8-11 count the runners it crashed (the supervisor, while
 * the dead runner's slot is its own: S1 in detail/slot.h), for poison_after.
 * Both saturate at 15. */
#define EMBER_CALL_RETRY_SHIFT 4
#define EMBER_CALL_RETRY_MASK  0xf0u
#define EMBER_CALL_CRASH_SHIFT 8
#define EMBER_CALL_CRASH_MASK  0xf00u

/* slot.detail of an EMBER_ETIMEDOUT result: where the deadline caught the call */
#define EMBER_TIMEOUT_QUEUED  1      /* still queued: it never ran */
#define EMBER_TIMEOUT_RUNNING 2      /* running: it was cancelled, and its runner is killed
                                        if it does not stop within kill_grace */
/* slot.detail of an EMBER_EPOOLDOWN result: what the pool's stop did to the call */
#define EMBER_DOWN_QUEUED     1      /* still queued: it never ran */
#define EMBER_DOWN_KILLED     2      /* running past the stop's timeout: its runner was killed */

/* runner states: BOOTING and READY runners serve the pool (count towards
 * max); a DRAINING one takes no new call, finishes what it runs and exits. */
enum { EMBER_RUNNER_EMPTY = 0, EMBER_RUNNER_BOOTING = 1, EMBER_RUNNER_READY = 2,
       EMBER_RUNNER_DRAINING = 3 };

/* runner.ctl: the supervisor's request to a runner (its futex) */
enum { EMBER_CTL_NONE = 0, EMBER_CTL_IDLE_CHECK = 1, EMBER_CTL_DRAIN = 2 };

/* Why a runner started or stopped (events, runner.reason): X(NAME, VALUE,
 * TEXT) makes EMBER_WHY_NAME = VALUE, and ember_why_name() gives TEXT. */
#define EMBER_WHY_TABLE(X)                                                                    \
    X(NONE, 0, "none")                 /* no reason recorded */                               \
    X(MIN, 1, "min")                   /* booted to keep min runners up */                    \
    X(DEMAND, 2, "demand")             /* booted because every runner was full */             \
    X(IDLE, 3, "idle")                 /* stopped after idle_shutdown_after */                \
    X(RESIZE, 4, "resize")             /* drained by a smaller max */                         \
    X(MAX_JOBS, 5, "max_jobs")         /* recycled after max_jobs calls */                    \
    X(MAX_RSS, 6, "max_rss")           /* recycled above max_rss */                           \
    X(SINGLE_USE, 7, "single_use")     /* recycled after its one call */                      \
    X(CRASH, 8, "crash")               /* died on its own */                                  \
    X(DEADLINE, 9, "deadline")         /* killed: a call ran past its deadline and kill_grace */ \
    X(BOOT_FAILED, 10, "boot_failed")  /* its boot failed */                                  \
    X(BOOT_TIMEOUT, 11, "boot_timeout") /* not ready within boot_timeout */                   \
    X(STOP, 12, "stop")                /* the pool stopped */                                 \
    X(CANCEL, 13, "cancelled")         /* killed: a cancelled call ran past kill_grace */
enum {
#define EMBER__XWHY(name, val, text) EMBER_WHY_##name = val,
    EMBER_WHY_TABLE(EMBER__XWHY)
#undef EMBER__XWHY
};

/* Pool event types: X(NAME, VALUE, TEXT) as above; ember_event_name(). */
#define EMBER_EVENT_TABLE(X)                                                                  \
    X(GROW_START, 1, "grow_start")     /* a runner is booting */                              \
    X(GROW_END, 2, "grow_end")         /* it is ready, or its boot failed */                  \
    X(SHRINK, 3, "shrink")             /* a runner is gone */
enum {
#define EMBER__XEV(name, val, text) EMBER_EV_##name = val,
    EMBER_EVENT_TABLE(EMBER__XEV)
#undef EMBER__XEV
};

/* placement of runners (hdr.placement, pool.h's ember_pool_config.placement) */
enum { EMBER_PLACEMENT_NUMA = 0, EMBER_PLACEMENT_CORE = 1, EMBER_PLACEMENT_NONE = 2 };
#define EMBER_EVENT_RING 256      /* entries; a power of two */

/* A worker (one of a runner's max_concurrency threads, with its entry in
 * the worker table) has a state word, also its futex. The global counters nparked and the idle
 * spinner count (hdr.spin) follow these states; the orders of the updates
 * are chosen so that a worker killed between the two errs on the harmless
 * side (see src/runner/worker.c), and the supervisor subtracts a dead
 * worker's state. */
enum { EMBER_WORKER_ACTIVE = 0, EMBER_WORKER_PARKED = 1, EMBER_WORKER_WOKEN = 2,
       EMBER_WORKER_SPINNING = 3 };

struct ember_ring_hdr {
    EMBER_ALIGNAS(EMBER_CACHELINE) EMBER_ATOMIC(uint64_t) head;  /* consumers' position */
    EMBER_ALIGNAS(EMBER_CACHELINE) EMBER_ATOMIC(uint64_t) tail;  /* producers' position */
    /* run rings of a multi-node pool: workers of this node spinning
     * for work (the node's share of the idle spinners of hdr.spin) */
    EMBER_ALIGNAS(EMBER_CACHELINE) EMBER_ATOMIC(int32_t) spinners;
    /* cells follow at the next cache line: EMBER_ATOMIC(uint64_t) cell[cap],
     * each (uint32 sequence << 32) | uint32 value */
    EMBER_ALIGNAS(EMBER_CACHELINE) uint64_t cells_start[];
};

struct ember_shm_header {
    /* line 0-1: geometry, immutable after creation */
    uint64_t magic;
    uint32_t abi_version;
    uint32_t header_size;
    uint64_t segment_size;
    uint32_t nslots, ring_cap;        /* both powers of two, ring_cap = 2*nslots */
    uint32_t nrunners, max_concurrency; /* nrunners: the runner table, the ceiling of max */
    uint32_t ncallers, nhandlers;
    uint32_t page_size, npages;
    uint64_t max_payload;
    uint64_t default_timeout_ns;
    uint32_t ncpus, _pad0;
    uint64_t off_handlers, off_runners, off_workers, off_callers, off_slots,
             off_run_ring, off_free_ring, off_page_owner, off_page_len, off_pages;
    /* run rings: nrings of them, ring i at off_run_ring + i * ring_stride */
    uint32_t nrings, placement;       /* placement: EMBER_PLACEMENT_* of pool.h */
    uint64_t ring_stride;
    uint64_t off_cpu_ring;            /* uint16_t[ncpu_map]: CPU number -> its node's ring */
    uint32_t ncpu_map, _pad1;
    char     name[EMBER_NAME_MAX];
    char     backend[16];             /* the supervisor's event loop: "uring" or "poll" */

    /* supervisor identity; written before pool_state leaves 0 */
    EMBER_ALIGNAS(EMBER_CACHELINE) EMBER_ATOMIC(uint32_t) sup_pid;
    EMBER_ATOMIC(uint32_t) pool_state;
    uint64_t sup_start_ticks;         /* /proc/<pid>/stat field 22, against pid reuse */
    EMBER_ATOMIC(uint32_t) doorbell;        /* supervisor's futex: look at the pool (callers came or
                                         went, growth wanted, a runner ready or draining,
                                         a cancel, a resize) */
    EMBER_ATOMIC(int64_t) stop_timeout_ns;  /* written by ember_pool_stop() before its SIGTERM:
                                         how long runners get before SIGKILL */
    EMBER_ATOMIC(uint32_t) epoch;           /* futex: bumped when a runner is ready, a runner or a
                                         caller was reaped, an event was published */

    /* signed: crash repair may leave them below the truth, never above it
     * where that could cost a wake-up (see src/runner/worker.c) */
    EMBER_ALIGNAS(EMBER_CACHELINE) EMBER_ATOMIC(int32_t) nparked;        /* workers parked */
    /* two counters in one word, so that a worker starting or stopping
     * to spin changes both with one atomic operation: the low half counts
     * every spinner (callers too), the high half the workers spinning
     * for work ("idle spinners"); each half is biased by EMBER_SPIN_BIAS, so
     * a half left below zero by crash repair never borrows from the other */
    EMBER_ALIGNAS(EMBER_CACHELINE) EMBER_ATOMIC(uint64_t) spin;
    EMBER_ALIGNAS(EMBER_CACHELINE) EMBER_ATOMIC(uint32_t) slot_seq;      /* futex: bumped when a slot is freed */
    EMBER_ATOMIC(uint32_t) slot_waiters;
    EMBER_ALIGNAS(EMBER_CACHELINE) EMBER_ATOMIC(uint32_t) page_seq;      /* futex: bumped when pages are freed */
    EMBER_ATOMIC(uint32_t) page_waiters;
    EMBER_ATOMIC(uint32_t) page_hint;
    /* payload pages below it have their /dev/shm space allocated
     * (detail/pages.h, ember__pages_reserve_locked); read and written under
     * page_lock only (in this line's padding: the layout is unchanged) */
    EMBER_ATOMIC(uint32_t) page_reserved;
    EMBER_ALIGNAS(EMBER_CACHELINE) unsigned char page_lock[64];    /* pthread_mutex_t, robust, pshared */

    EMBER_ALIGNAS(EMBER_CACHELINE) EMBER_ATOMIC(uint64_t) calls_crashed, calls_expired, runners_started, runners_died,
                     callers_reaped, calls_killed, calls_boot_failed, boot_failures;

    /* growth: a caller that found no worker free sets grow_req and
     * rings the doorbell; the supervisor clears it when it has looked */
    EMBER_ALIGNAS(EMBER_CACHELINE) EMBER_ATOMIC(uint32_t) grow_req;
    /* (in this line's padding) calls the supervisor queued again after
     * their runner died (EMBER_RETRIES), and calls it ended EMBER_EPOISON */
    EMBER_ATOMIC(uint64_t) calls_retried, calls_poisoned;
    /* written by the supervisor only, read by callers on that same path */
    EMBER_ALIGNAS(EMBER_CACHELINE) EMBER_ATOMIC(uint32_t) at_max;   /* serving runners == max: do not ask */
    EMBER_ATOMIC(uint32_t) nready;          /* READY runners */
    EMBER_ATOMIC(uint32_t) nserving;        /* BOOTING + READY runners */
    EMBER_ATOMIC(uint32_t) min, max;        /* current bounds (resizable) */
    EMBER_ATOMIC(uint32_t) boot_broken;     /* consecutive boot failures while calls are failed
                                         fast with EMBER_EBOOT, else 0 */
    int32_t  boot_fail_status, boot_fail_signal;
    EMBER_ATOMIC(uint64_t) boot_retry_ns;   /* CLOCK_MONOTONIC of the next boot attempt */
    char     boot_fail_msg[96];       /* the last failed boot's cause, NUL-terminated */
    EMBER_ATOMIC(uint32_t) resize_seq;      /* bumped by ember_pool_resize() after min/max */
    /* what the stop did (ember_stats' stop_*): written by the supervisor
     * during its stop, before it stores pool_state DOWN; read once the pool
     * is DOWN or its supervisor has exited (in this line's padding: the
     * layout is unchanged) */
    EMBER_ATOMIC(uint32_t) stop_finished;   /* calls that ended on their own while it drained */
    EMBER_ATOMIC(uint32_t) stop_killed;     /* calls still running at its timeout, killed */
    EMBER_ATOMIC(uint32_t) stop_never_ran;  /* queued calls it failed */
    /* the supervisor's heartbeat: CLOCK_MONOTONIC each time its event loop
     * comes round, which is at least once a second while it works; a
     * supervisor that lives but is stuck lets it age (ember_stats'
     * supervisor_silent_ns). Relaxed on both sides: no data rides on it.
     * (In this line's padding: the layout is unchanged.) */
    EMBER_ATOMIC(uint64_t) sup_alive_ns;
    /* housekeeping looks made so far (one a second: callers scanned,
     * unowned slots and pages repaired), written by the supervisor alone,
     * relaxed: a count to await, no data rides on it (in padding too) */
    EMBER_ATOMIC(uint32_t) sup_scans;

    /* event ring: written by the supervisor only; see ember_events_read() */
    EMBER_ALIGNAS(EMBER_CACHELINE) EMBER_ATOMIC(uint64_t) ev_next; /* sequence of the next event */
    uint64_t off_events;
    /* done bitmaps: one per caller entry, done_stride bytes apart, a bit
     * per slot (detail/any.h) */
    uint64_t off_done;
    uint32_t done_stride, _pad2;
    /* counts: nrunners * max_concurrency + 1 blocks (the workers', then
     * the supervisor's), count_stride bytes apart (geometry, immutable) */
    uint64_t off_counts;
    uint32_t count_stride, _pad3;

    /* runners that ended, by EMBER_WHY_* (boot failures, crashes, recycles,
     * idle stops...): written by the supervisor only */
    EMBER_ALIGNAS(EMBER_CACHELINE) EMBER_ATOMIC(uint64_t) runner_ends[EMBER_WHY_SLOTS];
};

/* One event. seq is written last (release) and is the entry's sequence + 1;
 * a reader copies the entry, then checks seq again (a seqlock). */
struct ember_event_ent {
    EMBER_ATOMIC(uint64_t) seq;
    uint64_t time_ns;                 /* CLOCK_MONOTONIC */
    uint32_t type;                    /* EMBER_EV_* */
    uint32_t runner;                  /* runner table index */
    uint32_t runners;                 /* serving runners after the event */
    uint32_t reason;                  /* EMBER_WHY_* */
    int32_t  ok;                      /* GROW_END: 1, or 0 on failure */
    int32_t  count;                   /* GROW_END failure: consecutive failures */
    int32_t  status, signal;          /* a failed boot's exit status or signal */
    char     msg[64];                 /* a failed boot's message */
    uint64_t _pad[2];
};

struct ember_handler_ent {
    char     name[EMBER_NAME_MAX];
    uint32_t id;
    uint32_t flags;
    uint64_t _pad[2];
};

struct ember_runner_ent {
    EMBER_ATOMIC(uint32_t) pid;
    EMBER_ATOMIC(uint32_t) gen;
    EMBER_ATOMIC(uint32_t) state;           /* EMBER_RUNNER_*; written by the supervisor, and by the
                                         runner for BOOTING -> READY and READY -> DRAINING */
    uint32_t capacity;                /* = max_concurrency; its load is the sum of its
                                         workers' busy flags */
    int32_t  node;                    /* NUMA node P# it is placed on, -1: not placed */
    EMBER_ATOMIC(uint32_t) ctl;             /* EMBER_CTL_*: supervisor's request (futex) */
    uint64_t started_ns;              /* fork */
    EMBER_ATOMIC(uint64_t) ready_ns;        /* ready to take calls */
    int32_t  last_exit_signal, last_exit_status;
    EMBER_ATOMIC(int64_t) jobs_left;        /* calls it may still take (max_jobs, single_use);
                                         INT64_MAX: no limit */
    EMBER_ATOMIC(uint64_t) rss;             /* bytes resident, as the runner measured it */
    EMBER_ATOMIC(uint32_t) veto_seq;        /* bumped by the runner when its idle check said stay */
    EMBER_ATOMIC(uint32_t) reason;          /* EMBER_WHY_* of its draining */
    char     msg[64];                 /* why its boot failed, from the runner */
    uint32_t ring;                    /* its node's run ring (written before its fork) */
    uint32_t _pad0;
    uint64_t cpuset[EMBER_CPUSET_WORDS]; /* CPUs it is bound to (all zero: unbound) */
    uint64_t _pad[6];
};

struct ember_worker_ent {
    EMBER_ATOMIC(uint32_t) park;            /* EMBER_WORKER_*, futex word */
    uint32_t runner;
    EMBER_ATOMIC(uint32_t) busy;            /* running a job now (its runner's load is the sum) */
    uint32_t _pad0;
    EMBER_ATOMIC(uint64_t) jobs_done;       /* written by this thread only */
    EMBER_ATOMIC(uint32_t) current;         /* ring entry it is taking or running, EMBER_NONE */
    uint32_t _pad1;
    EMBER_ATOMIC(uint64_t) job_deadline;    /* deadline of the call it runs (valid while busy) */
    EMBER_ATOMIC(uint64_t) idle_since;      /* CLOCK_MONOTONIC_COARSE of its last call's end */
    EMBER_ATOMIC(uint64_t) jobs_stolen;     /* calls it took from another node's ring */
    /* a process group the job it runs started (ember_job_watch_pgid), 0:
     * none; the supervisor SIGKILLs it when it reaps this runner dead */
    EMBER_ATOMIC(int32_t) job_pgid;
    uint32_t _pad2;
};

struct ember_caller_ent {
    EMBER_ATOMIC(uint32_t) pid;             /* 0 = free */
    EMBER_ATOMIC(uint32_t) gen;
    EMBER_ATOMIC(uint32_t) spinning;        /* its threads counted in hdr.spin */
    /* ember_wait_any's eventcount (detail/any.h): the caller counts itself
     * in done_armed (seq_cst) and makes done_seq even before it sleeps on
     * it; whoever sets a bit in its done bitmap (seq_cst) and then sees
     * done_armed moves done_seq from even to odd (CAS) and wakes it; odd:
     * already woken (ember__notify_owner, slot.h) */
    EMBER_ATOMIC(uint32_t) done_armed;
    EMBER_ATOMIC(uint32_t) done_seq;
    uint32_t _pad1;
    uint64_t _pad[5];
    /* calls queued through this entry, by all its owners so far, their sum:
     * a counter per submitting thread ([0]: the threads beyond), on a line
     * of their own, which runners (reading done_armed above) never touch */
    EMBER_ALIGNAS(EMBER_CACHELINE) EMBER_ATOMIC(uint64_t) calls_submitted[EMBER_SUBMIT_COUNTERS];
};

/* A slot's header is its first cache line, and everything a call hands
 * over between caller and runner is in it; the inline bytes follow. */
struct ember_slot {
    EMBER_ATOMIC(uint32_t) state;           /* gen << 16 | flag bits | state */
    uint16_t handler;                 /* < 4096 */
    uint16_t flags;                   /* EMBER_CALL_* */
    /* who owns the call: slot generation(16) << 48 | caller index(16) << 32
     * | caller generation(32) (ember__owner_word). Written by the claimer
     * only after its claim CAS won (a loser never writes it), read after the
     * state word: it names the owner only if its slot generation is the
     * state word's */
    EMBER_ATOMIC(uint64_t) owner;
    uint16_t runner, runner_gen;      /* who ran it (EMBER_SLOT_NO_RUNNER: none), and the low
                                         16 bits of that runner's generation: written with the
                                         result (while it runs, worker.current tells) */
    int32_t  status;                  /* 0 or -EMBER_E... */
    int32_t  detail;                  /* signal, exit status or handler's return */
    int32_t  node;                    /* receipt: the runner's NUMA node (-1: not placed) */
    uint32_t args_len, args_page;     /* page = EMBER_NONE when inline */
    uint32_t res_len, res_page;
    uint64_t deadline_ns;             /* CLOCK_MONOTONIC, absolute */
    uint64_t t_start_ns;              /* until a runner takes it: when it was queued; then the
                                         receipt: when the runner took it (both
                                         CLOCK_MONOTONIC_COARSE); valid as a receipt only
                                         where runner is not EMBER_SLOT_NO_RUNNER, 0 where the
                                         supervisor ended the call for its dead runner */
    unsigned char data[EMBER_INLINE_MAX];
};
#define EMBER_SLOT_NO_RUNNER 0xffffu

/* Counts of the calls one writer ended, for handler h of the pool. The
 * histograms count calls by duration: bucket i (i < EMBER_HIST_BUCKETS - 1)
 * holds the durations in (1 ms << (i-1), 1 ms << i] (bucket 0: [0, 1 ms]),
 * the last one the longer; not cumulative. Durations are differences of
 * CLOCK_MONOTONIC_COARSE readings (a multiple of its tick). wait: from the
 * caller's queueing to a runner's take, every call a runner took; run: from
 * the take to the result, every call whose handler ran. */
struct ember_handler_count {
    EMBER_ATOMIC(uint64_t) completed;     /* ended with status 0 */
    EMBER_ATOMIC(uint64_t) failed;        /* ended with an error */
    EMBER_ATOMIC(uint64_t) wait_sum_ns, run_sum_ns;
    EMBER_ATOMIC(uint64_t) wait[EMBER_HIST_BUCKETS];
    EMBER_ATOMIC(uint64_t) run[EMBER_HIST_BUCKETS];
};

/* One writer's block of the counts part: calls it failed by cause (index:
 * the code's place in client.h's error table); one ember_handler_count per
 * handler of the pool follows it (count_stride covers both). */
struct ember_count_ent {
    EMBER_ATOMIC(uint64_t) failed[EMBER_CAUSES];
};

EMBER_STATIC_ASSERT(sizeof(struct ember_slot) == EMBER_SLOT_SIZE, "slot size");
EMBER_STATIC_ASSERT(__builtin_offsetof(struct ember_slot, data) == EMBER_SLOT_HDR, "slot header");
EMBER_STATIC_ASSERT(sizeof(struct ember_runner_ent) == 320, "runner entry");
EMBER_STATIC_ASSERT(sizeof(struct ember_event_ent) == 128, "event entry");
EMBER_STATIC_ASSERT(sizeof(struct ember_worker_ent) == 64, "worker entry");
EMBER_STATIC_ASSERT(sizeof(struct ember_caller_ent) == 128, "caller entry");
EMBER_STATIC_ASSERT(sizeof(struct ember_handler_ent) == 64, "handler entry");
EMBER_STATIC_ASSERT(sizeof(struct ember_handler_count) % EMBER_CACHELINE == 0, "handler counts");
EMBER_STATIC_ASSERT(sizeof(struct ember_count_ent) % EMBER_CACHELINE == 0, "count block");

#endif
