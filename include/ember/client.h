/* ember/client.h - header-only client of ember pools, v0.1 (ABI 1).
 *
 * Lets any process put work into a running ember pool through shared memory
 * and get the result back. libc and Linux system calls only.
 *
 * USAGE
 *   In exactly one C file:
 *       #define EMBER_CLIENT_IMPLEMENTATION
 *       #include <ember/client.h>
 *   elsewhere include it plainly. Then:
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
 *   1. error codes (one X-macro list: codes, names, messages)
 *   2. public API
 *   3. implementation: time and futexes, the segment view, rings, pages,
 *      slot state machine, waking runners, attach, calls
 *
 * Every function returns 0 (or a non-negative value where said) or a negative
 * code: -errno from the system, or -EMBER_E... below. ember_strerror() says
 * what happened; ember_last_error() adds the detail of the last failure on
 * this thread (which pool, which handler, which size).
 *
 * A client handle may be used by many threads at once. It must not be used in
 * a child forked after ember_attach(): attach again there.
 */
#ifndef EMBER_CLIENT_H
#define EMBER_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include "abi.h"

#ifndef EMBER_API
#define EMBER_API extern
#endif

/* ---- 1. errors ---------------------------------------------------------- */
#define EMBER_ERRNO_MAP(X)                                                                    \
    X(EINVAL, 1000, "invalid argument: a bad pointer, name, option or handle")                \
    X(ENOPOOL, 1001, "no such pool is running: start it first, or check the name and user")   \
    X(EPOOLDOWN, 1002, "the pool went down (its supervisor stopped or died) before the call ended") \
    X(ETIMEDOUT, 1003, "the call's deadline passed before its result came back")              \
    X(EFULL, 1004, "the pool's queue or payload space stayed full until the deadline")        \
    X(ENOHANDLER, 1005, "the pool has no handler of that name or id")                         \
    X(ETOOBIG, 1006, "the payload is larger than the pool's max_payload")                     \
    X(ECRASHED, 1007, "the runner running the call crashed; the detail is the signal")        \
    X(ERUNNERLOST, 1008, "the runner was lost while running the call (killed for another call)") \
    X(EABI, 1009, "the pool's shared segment has another ABI version: rebuild against the same ember") \
    X(EOWNER, 1010, "the pool's shared segment belongs to another user")                      \
    X(ECORRUPT, 1011, "the pool's shared segment is corrupted or not an ember segment")       \
    X(ESTALE, 1012, "the call handle is stale: that call was already collected")              \
    X(EEXIST, 1013, "a pool of that name is already running")                                 \
    X(EHANDLER, 1014, "the handler returned an error; the detail is its return value")        \
    X(EBOOT, 1015, "the pool could not boot a runner")                                        \
    X(EIMAGE, 1016, "the function is not from the pool's program image")                      \
    X(EAGAIN, 1017, "the call has not finished yet")                                          \
    X(ECALLERS, 1018, "the pool's caller table is full: too many attached processes")        \
    X(ECANCELLED, 1019, "the call was cancelled by its caller")

enum {
#define EMBER__XENUM(name, val, msg) EMBER_##name = val,
    EMBER_ERRNO_MAP(EMBER__XENUM)
#undef EMBER__XENUM
};

/* ---- 2. public API ------------------------------------------------------ */
#define EMBER_TIMEOUT_DEFAULT (-1) /* the pool's configured timeout */
#define EMBER_TIMEOUT_NONE    INT64_MAX

typedef struct ember_client ember_client;

/* A call in flight: index and generation of its slot; stale ones are refused. */
typedef struct ember_call_id { uint32_t idx, gen; } ember_call_id;

/* What a finished call returns. data/len point into shared memory and stay
 * valid until ember_result_release(). */
typedef struct ember_result {
    const void *data;
    size_t      len;
    int         status;    /* 0 or -EMBER_E... (same as the call's return) */
    int         detail;    /* signal (ECRASHED), handler's return (EHANDLER) */
    uint32_t    runner;    /* runner table index that ran it, EMBER_NONE if none */
    int         node;      /* NUMA node of that runner (-1: not placed, or none) */
    uint64_t    start_ns;  /* receipt: when a runner took it, CLOCK_MONOTONIC_COARSE
                              (one tick of resolution); 0: never */
    /* private */
    uint32_t    _idx, _gen;
} ember_result;

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

/* Attach to the running pool NAME of this user. Returns 0, -EMBER_ENOPOOL
 * (none running), -EMBER_EABI, -EMBER_EOWNER, -EMBER_ECORRUPT, -EMBER_ECALLERS
 * or -errno. */
EMBER_API int ember_attach(const char *name, ember_client **out);
/* Detach; waits for nothing. Calls not collected are released. */
EMBER_API void ember_detach(ember_client *c);
/* Handler id for NAME: >= 0, or -EMBER_ENOHANDLER. */
EMBER_API int ember_handler(ember_client *c, const char *name);
/* Run handler H with ARGS and wait for its result, at most TIMEOUT_NS (or
 * EMBER_TIMEOUT_DEFAULT / _NONE) for queueing and running together.
 * Returns 0 with *res filled, or a negative code (res->status has it too).
 * Release *res in every case. */
EMBER_API int ember_call(ember_client *c, int h, const void *args, size_t len,
                         ember_result *res, int64_t timeout_ns);
/* Queue handler H with ARGS and return at once; nobody collects the result.
 * Returns 0 or the submit errors below. */
EMBER_API int ember_cast(ember_client *c, int h, const void *args, size_t len,
                         int64_t timeout_ns);
/* Queue a call and return its id. Returns 0, -EMBER_ENOHANDLER, -EMBER_ETOOBIG,
 * -EMBER_EFULL (no slot or pages until the deadline), -EMBER_EPOOLDOWN. */
EMBER_API int ember_submit(ember_client *c, int h, const void *args, size_t len,
                           int64_t timeout_ns, ember_call_id *id);
/* Link: by default a call, cast or child is linked to the calling process:
 * if that process dies, its queued work never runs and its running work is
 * cancelled (ember_job_cancelled() turns true; a handler still running
 * kill_grace later has its runner killed). EMBER_UNLINKED work runs on and
 * its result is dropped. A process that detaches normally leaves its casts
 * to run; its uncollected calls are cancelled as if it had died. */
#define EMBER_UNLINKED 0x2u
/* ember_call, ember_cast, ember_submit with FLAGS (0 or EMBER_UNLINKED). */
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
/* Wait for a submitted call until its deadline. Same returns as ember_call. */
EMBER_API int ember_wait(ember_client *c, ember_call_id id, ember_result *res);
/* Like ember_wait without waiting: -EMBER_EAGAIN while it is not done. */
EMBER_API int ember_poll(ember_client *c, ember_call_id id, ember_result *res);
/* Give back what a result holds (slot, pages). Safe on any result. */
EMBER_API void ember_result_release(ember_client *c, ember_result *res);
/* Text for a code (negative or positive, ember's or errno's). */
EMBER_API const char *ember_strerror(int err);
/* "EMBER_ETIMEDOUT", "ENOENT"...: the code's name. */
EMBER_API const char *ember_errname(int err);
/* Detail of the last failure on this thread ("" if none). */
EMBER_API const char *ember_last_error(void);
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
 * has exited. Returns 0 or -errno. C is still to be detached. */
EMBER_API int ember_stop(ember_client *c, int64_t shutdown_timeout_ns);
/* Wait until at least N runners are ready: 0, -EMBER_ETIMEDOUT, -EMBER_EPOOLDOWN. */
EMBER_API int ember_wait_ready(ember_client *c, unsigned n, int64_t timeout_ns);
/* "idle", "demand", "boot_failed"...: the name of an EMBER_WHY_* reason. */
EMBER_API const char *ember_why_name(int reason);

#endif /* EMBER_CLIENT_H */

/* ---- 3. implementation --------------------------------------------------
 * EMBER_CLIENT_INTERNALS_ONLY (libember's own files) gives the internal
 * helpers without the public functions, which libember compiles once. */
#if defined(EMBER_CLIENT_IMPLEMENTATION) || defined(EMBER_CLIENT_INTERNALS_ONLY)
#ifndef EMBER_CLIENT_IMPLEMENTED
#define EMBER_CLIENT_IMPLEMENTED
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef EMBER_ASSERT
#include <assert.h>
#define EMBER_ASSERT(x) assert(x)
#endif

/* -- errors -- */
#ifdef EMBER_CLIENT_INTERNALS_ONLY
char *ember__errbuf_ptr(void);
#define ember__errbuf (ember__errbuf_ptr())
#else
static __thread char ember__errbuf_tls[256];
#define ember__errbuf ember__errbuf_tls
EMBER_API char *ember__errbuf_ptr(void);
EMBER_API char *ember__errbuf_ptr(void) { return ember__errbuf_tls; }
#endif
#define EMBER__ERRLEN 256

__attribute__((format(printf, 2, 3)))
static int ember__fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ember__errbuf, EMBER__ERRLEN, fmt, ap);
    va_end(ap);
    return code;
}

#ifndef EMBER_CLIENT_INTERNALS_ONLY
EMBER_API const char *ember_last_error(void) { return ember__errbuf; }

EMBER_API const char *ember_strerror(int err)
{
    if (err < 0) err = -err;
    switch (err) {
    case 0: return "success";
#define EMBER__XSTR(name, val, msg) case EMBER_##name: return msg;
    EMBER_ERRNO_MAP(EMBER__XSTR)
#undef EMBER__XSTR
    default: return strerror(err);
    }
}

EMBER_API const char *ember_errname(int err)
{
    if (err < 0) err = -err;
    switch (err) {
    case 0: return "OK";
#define EMBER__XNAME(name, val, msg) case EMBER_##name: return "EMBER_" #name;
    EMBER_ERRNO_MAP(EMBER__XNAME)
#undef EMBER__XNAME
    default: {
#if defined(_GNU_SOURCE) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
        const char *n = strerrorname_np(err);
        return n ? n : "EUNKNOWN";
#else
        return "ESYSTEM";
#endif
    }
    }
}
#endif

/* -- time, spinning, futexes -- */
static inline uint64_t ember__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC_COARSE: a few ns to read; never ahead of CLOCK_MONOTONIC
 * and behind it by at most one tick (ember__coarse_res_ns()). */
static inline uint64_t ember__now_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t ember__coarse_res_ns(void)
{
    static _Atomic uint64_t res;
    uint64_t r = atomic_load_explicit(&res, memory_order_relaxed);
    if (!r) {
        struct timespec ts;
        r = clock_getres(CLOCK_MONOTONIC_COARSE, &ts) == 0
                ? (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec
                : 100000000ull;
        if (r == 0) r = 1;
        atomic_store_explicit(&res, r, memory_order_relaxed);
    }
    return r;
}

/* Has DEADLINE passed? Decided by the coarse clock when it is far enough
 * from the deadline, by the precise one otherwise. */
static inline bool ember__expired_at(uint64_t deadline, uint64_t coarse_now)
{
    if (deadline > coarse_now + 2 * ember__coarse_res_ns()) return false;
    return ember__now_ns() >= deadline;
}
static inline bool ember__expired(uint64_t deadline)
{
    return ember__expired_at(deadline, ember__now_coarse_ns());
}

static inline void ember__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* One step of a spin loop: the first iterations only re-read (the line
 * stays in this core's cache until its writer invalidates it, so re-reading
 * costs nothing and notices the change soonest); later ones pause. */
static inline void ember__spin_step(unsigned i)
{
    if (i > 256) ember__cpu_relax();
    else __asm__ __volatile__("" ::: "memory");
}

/* Wait while *w == val, until the absolute CLOCK_MONOTONIC time abs_ns
 * (0 = no limit). Shared (not private) futex: the word is in shared memory.
 * Returns 0 when woken or the value differed, -ETIMEDOUT, -EINTR. */
static inline int ember__futex_wait(_Atomic uint32_t *w, uint32_t val, uint64_t abs_ns)
{
    struct timespec ts, *tp = NULL;
    if (abs_ns) {
        ts.tv_sec = (time_t)(abs_ns / 1000000000ull);
        ts.tv_nsec = (long)(abs_ns % 1000000000ull);
        tp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_BITSET, val, tp, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    if (r == 0 || errno == EAGAIN) return 0;
    return -errno;
}

static inline void ember__futex_wake(_Atomic uint32_t *w, int n)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* Adaptive spin budget of this thread, in ns: grows when spinning found the
 * result, halves when it had to park anyway. Bounded both ways. */
#define EMBER__SPIN_MIN_NS 2000u
#define EMBER__SPIN_MAX_NS 60000u
static __thread uint32_t ember__spin_budget = 20000u;
/* A caller that had to wake a parked runner expects its result no sooner
 * than one wake-up latency (30-70 us on a VM): it spins across that instead
 * of parking and costing a second wake-up. */
#define EMBER__SPIN_AFTER_WAKE_NS 200000u
/* Iterations a waiter looks for its result before it counts itself among
 * the spinners (about 1-2 us: each one pauses, so that the runner writing
 * the result is not robbed of the slot's line between its stores). */
#define EMBER__SPIN_QUIET 48u
static __thread bool ember__woke_runner __attribute__((unused));

static inline void ember__spin_won(void)
{
    uint32_t b = ember__spin_budget + ember__spin_budget / 8 + 500;
    ember__spin_budget = b > EMBER__SPIN_MAX_NS ? EMBER__SPIN_MAX_NS : b;
}
static inline void ember__spin_lost(void)
{
    uint32_t b = ember__spin_budget / 2;
    ember__spin_budget = b < EMBER__SPIN_MIN_NS ? EMBER__SPIN_MIN_NS : b;
}

/* -- the segment view --------------------------------------------------------
 * Process-local, validated copy of the geometry: after ember__view_init() no
 * index or size is taken from the shared header again. */
struct ember__ring {
    struct ember_ring_hdr *h;
    _Atomic uint64_t *cell;
    uint32_t mask, cap;
};

struct ember__view {
    struct ember_shm_header *hdr;
    char *base;
    size_t size;
    struct ember_handler_ent *handlers;
    struct ember_runner_ent *runners;
    struct ember_worker_ent *workers;
    struct ember_caller_ent *callers;
    struct ember_slot *slots;
    struct ember__ring run[EMBER_MAX_RINGS], free; /* run: one per node, nrings */
    struct ember_event_ent *events;
    uint32_t *page_owner, *page_len;
    char *pages;
    uint32_t nslots, nrunners, max_conc, ncallers, nhandlers, npages, page_size, ncpus;
    uint32_t nrings, ncpu_map;
    const uint16_t *cpu_ring;         /* CPU number -> ring (all < nrings, checked) */
    uint64_t max_payload, default_timeout_ns;
};

static inline size_t ember__ring_bytes(uint32_t cap)
{
    return sizeof(struct ember_ring_hdr) + (size_t)cap * sizeof(uint64_t);
}

static inline bool ember__pow2(uint32_t x) { return x && !(x & (x - 1)); }

/* Check that part [off, off+len) lies inside the segment, cache-aligned. */
static inline bool ember__part_ok(uint64_t off, uint64_t len, uint64_t size)
{
    return off % EMBER_CACHELINE == 0 && off <= size && len <= size - off;
}

/* Validate a mapped segment and fill V. Returns 0, -EMBER_EABI or
 * -EMBER_ECORRUPT (with the reason in ember_last_error()). */
static int ember__view_init(struct ember__view *v, void *base, size_t size)
{
    struct ember_shm_header *h = (struct ember_shm_header *)base;
    memset(v, 0, sizeof *v);
    if (size < sizeof *h || h->magic != EMBER_MAGIC)
        return ember__fail(-EMBER_ECORRUPT, "segment has no ember magic");
    if (h->abi_version != EMBER_ABI_VERSION)
        return ember__fail(-EMBER_EABI, "segment ABI version %u, this client speaks %u",
                           h->abi_version, EMBER_ABI_VERSION);
    if (h->header_size != sizeof *h || h->segment_size != size)
        return ember__fail(-EMBER_ECORRUPT, "segment size %zu does not match its header (%llu)",
                           size, (unsigned long long)h->segment_size);
    if (!ember__pow2(h->nslots) || h->nslots > EMBER_MAX_SLOTS || h->ring_cap != 2 * h->nslots ||
        h->nrunners == 0 || h->nrunners > 4096 || h->max_concurrency == 0 ||
        h->max_concurrency > 1024 || h->ncallers == 0 || h->ncallers > 65536 ||
        h->nhandlers > 4096 || h->page_size < 4096 || h->page_size % 4096 ||
        h->npages > (1u << 24) || h->ncpus == 0 || h->nrings == 0 || h->nrings > EMBER_MAX_RINGS ||
        h->ring_stride < ember__ring_bytes(h->ring_cap) || h->ring_stride > (1ull << 32) ||
        h->ncpu_map > 65536)
        return ember__fail(-EMBER_ECORRUPT, "segment geometry out of range");
    uint64_t nw = (uint64_t)h->nrunners * h->max_concurrency;
    if (!ember__part_ok(h->off_handlers, (uint64_t)h->nhandlers * sizeof(struct ember_handler_ent), size) ||
        !ember__part_ok(h->off_runners, (uint64_t)h->nrunners * sizeof(struct ember_runner_ent), size) ||
        !ember__part_ok(h->off_workers, nw * sizeof(struct ember_worker_ent), size) ||
        !ember__part_ok(h->off_callers, (uint64_t)h->ncallers * sizeof(struct ember_caller_ent), size) ||
        !ember__part_ok(h->off_slots, (uint64_t)h->nslots * sizeof(struct ember_slot), size) ||
        !ember__part_ok(h->off_run_ring, h->ring_stride * h->nrings, size) ||
        h->ring_stride % EMBER_CACHELINE ||
        !ember__part_ok(h->off_cpu_ring, (uint64_t)h->ncpu_map * 2, size) ||
        !ember__part_ok(h->off_free_ring, ember__ring_bytes(h->ring_cap), size) ||
        !ember__part_ok(h->off_events, EMBER_EVENT_RING * sizeof(struct ember_event_ent), size) ||
        !ember__part_ok(h->off_page_owner, (uint64_t)h->npages * 4, size) ||
        !ember__part_ok(h->off_page_len, (uint64_t)h->npages * 4, size) ||
        !ember__part_ok(h->off_pages, (uint64_t)h->npages * h->page_size, size) ||
        h->max_payload > (uint64_t)h->npages * h->page_size || h->max_payload > UINT32_MAX)
        return ember__fail(-EMBER_ECORRUPT, "segment part out of bounds");
    char *b = (char *)base;
    v->hdr = h;
    v->base = b;
    v->size = size;
    v->handlers = (struct ember_handler_ent *)(b + h->off_handlers);
    v->runners = (struct ember_runner_ent *)(b + h->off_runners);
    v->workers = (struct ember_worker_ent *)(b + h->off_workers);
    v->callers = (struct ember_caller_ent *)(b + h->off_callers);
    v->slots = (struct ember_slot *)(b + h->off_slots);
    v->nrings = h->nrings;
    for (uint32_t i = 0; i < v->nrings; i++) {
        v->run[i].h = (struct ember_ring_hdr *)(b + h->off_run_ring + i * h->ring_stride);
        v->run[i].cell = (_Atomic uint64_t *)v->run[i].h->cells_start;
        v->run[i].cap = h->ring_cap;
        v->run[i].mask = h->ring_cap - 1;
    }
    v->free.h = (struct ember_ring_hdr *)(b + h->off_free_ring);
    v->events = (struct ember_event_ent *)(b + h->off_events);
    v->free.cell = (_Atomic uint64_t *)v->free.h->cells_start;
    v->free.cap = h->ring_cap;
    v->free.mask = h->ring_cap - 1;
    v->cpu_ring = (const uint16_t *)(b + h->off_cpu_ring);
    v->ncpu_map = h->ncpu_map;
    for (uint32_t i = 0; i < v->ncpu_map; i++)
        if (v->cpu_ring[i] >= v->nrings)
            return ember__fail(-EMBER_ECORRUPT, "segment CPU map names ring %u of %u",
                               v->cpu_ring[i], v->nrings);
    v->page_owner = (uint32_t *)(b + h->off_page_owner);
    v->page_len = (uint32_t *)(b + h->off_page_len);
    v->pages = b + h->off_pages;
    v->nslots = h->nslots;
    v->nrunners = h->nrunners;
    v->max_conc = h->max_concurrency;
    v->ncallers = h->ncallers;
    v->nhandlers = h->nhandlers;
    v->npages = h->npages;
    v->page_size = h->page_size;
    v->ncpus = h->ncpus;
    v->max_payload = h->max_payload;
    v->default_timeout_ns = h->default_timeout_ns;
    return 0;
}

/* -- Rings -------------------------------------------------------------------
 * A bounded MPMC ring of 32-bit values (Vyukov's sequence-number ring) made
 * safe against a process dying at any instruction.
 *
 * Each cell is one 64-bit word: (sequence << 32) | value. With 64-bit
 * positions p (head for consumers, tail for producers) and capacity C (a power
 * of two >= 2), the cell p % C holds:
 *     seq == p       free for the producer of position p
 *     seq == p + 1   filled at position p, for the consumer of p
 *     seq == p + C   consumed at p: free for the producer of p + C
 * (sequences compare modulo 2^32; all distances are below C <= 2^17.)
 *
 * Invariants:
 *  I1. A value is published by one CAS of its cell (seq p -> p+1 with the
 *      value) and taken by one CAS (seq p+1 -> p+C). No step needs a second
 *      store by the same process to become visible, so a process killed between
 *      any two instructions leaves every cell in one of the three states above.
 *  I2. head and tail only move forward, by CAS from p to p+1, and only after
 *      the cell of p has been filled (tail) or consumed (head). Anybody who
 *      finds the counter behind its cell advances it ("helping"): a producer or
 *      consumer that dies after its cell CAS delays nobody.
 *  I3. head <= tail + 1 transiently and never by more; a producer finding a
 *      cell still filled from the previous lap (seq == p - C + 1) with tail
 *      unchanged reports the ring full.
 * Ordering: the cell CAS is seq_cst (it is the publication and, for wake-up
 * decisions, the store half of the eventcount in ember__wake_runner); the
 * acquire load of a cell pairs with the CAS that filled it, so the consumer
 * sees everything the producer wrote to the slot before pushing it.
 *
 * Values are hints, not ownership: a slot index taken from a ring is only
 * used after the slot's own state word agrees (see "Slot state machine"), so
 * a duplicate or stale entry left by crash repair is dropped harmlessly.
 */
static inline int ember__ring_push(const struct ember__ring *r, uint32_t v)
{
    for (;;) {
        uint64_t pos = atomic_load_explicit(&r->h->tail, memory_order_acquire);
        _Atomic uint64_t *c = &r->cell[pos & r->mask];
        /* The first CAS is blind: a free cell of position pos holds exactly
         * pos << 32 (consumers leave the value 0), so the line is fetched
         * once, for writing, rather than read and then upgraded. */
        uint64_t cv = (uint64_t)(uint32_t)pos << 32;
        uint64_t nv = ((uint64_t)(uint32_t)(pos + 1) << 32) | v;
        int32_t d = 0;
        while (!atomic_compare_exchange_weak_explicit(c, &cv, nv, memory_order_seq_cst,
                                                      memory_order_acquire))
            if ((d = (int32_t)((uint32_t)(cv >> 32) - (uint32_t)pos)) != 0) break;
        if (d == 0) {
            atomic_compare_exchange_strong_explicit(&r->h->tail, &pos, pos + 1,
                                                    memory_order_release, memory_order_relaxed);
            return 0;
        }
        if (d > 0) {
            /* filled (or filled and consumed) at pos: help tail along */
            atomic_compare_exchange_strong_explicit(&r->h->tail, &pos, pos + 1,
                                                    memory_order_release,
                                                    memory_order_relaxed);
        } else if (atomic_load_explicit(&r->h->tail, memory_order_acquire) == pos) {
            return -1; /* previous lap not consumed: full */
        }
    }
}

static inline uint32_t ember__ring_pop(const struct ember__ring *r)
{
    for (;;) {
        uint64_t pos = atomic_load_explicit(&r->h->head, memory_order_acquire);
        _Atomic uint64_t *c = &r->cell[pos & r->mask];
        uint64_t cv = atomic_load_explicit(c, memory_order_acquire);
        int32_t d = (int32_t)((uint32_t)(cv >> 32) - (uint32_t)(pos + 1));
        if (d == 0) {
            uint64_t nv = (uint64_t)(uint32_t)(pos + r->cap) << 32;
            if (atomic_compare_exchange_strong_explicit(c, &cv, nv, memory_order_seq_cst,
                                                        memory_order_relaxed)) {
                atomic_compare_exchange_strong_explicit(&r->h->head, &pos, pos + 1,
                                                        memory_order_release,
                                                        memory_order_relaxed);
                return (uint32_t)cv;
            }
        } else if (d < 0) {
            if (atomic_load_explicit(&r->h->head, memory_order_acquire) == pos)
                return EMBER_NONE; /* not filled yet: empty */
        } else {
            /* consumed at pos: help head along */
            atomic_compare_exchange_strong_explicit(&r->h->head, &pos, pos + 1,
                                                    memory_order_release,
                                                    memory_order_relaxed);
        }
    }
}

/* The value in the cell at head if it is filled, else EMBER_NONE (a hint:
 * somebody may take it first). Cheap enough to spin on. */
static inline uint32_t ember__ring_front(const struct ember__ring *r)
{
    uint64_t pos = atomic_load_explicit(&r->h->head, memory_order_seq_cst);
    uint64_t cv = atomic_load_explicit(&r->cell[pos & r->mask], memory_order_seq_cst);
    return (uint32_t)(cv >> 32) == (uint32_t)(pos + 1) ? (uint32_t)cv : EMBER_NONE;
}

/* True when the cell at head is filled. */
static inline bool ember__ring_nonempty(const struct ember__ring *r)
{
    uint64_t pos = atomic_load_explicit(&r->h->head, memory_order_seq_cst);
    uint64_t cv = atomic_load_explicit(&r->cell[pos & r->mask], memory_order_seq_cst);
    return (uint32_t)(cv >> 32) == (uint32_t)(pos + 1);
}

/* Hint: call FN(value, arg) for up to N values filled behind head, without
 * taking them (they may be gone by the time FN runs). For prefetching. */
static inline void ember__ring_peek(const struct ember__ring *r, unsigned n,
                                    void (*fn)(uint32_t, void *), void *arg)
{
    uint64_t pos = atomic_load_explicit(&r->h->head, memory_order_relaxed);
    for (unsigned k = 0; k < n; k++, pos++) {
        uint64_t cv = atomic_load_explicit(&r->cell[pos & r->mask], memory_order_relaxed);
        if ((uint32_t)(cv >> 32) != (uint32_t)(pos + 1)) return;
        fn((uint32_t)cv, arg);
    }
}

static void ember__ring_init(struct ember_ring_hdr *h, uint32_t cap)
{
    _Atomic uint64_t *cell = (_Atomic uint64_t *)h->cells_start;
    atomic_init(&h->head, 0);
    atomic_init(&h->tail, 0);
    for (uint32_t i = 0; i < cap; i++) atomic_init(&cell[i], (uint64_t)i << 32);
}

/* -- Slot state machine ------------------------------------------------------
 * A slot's state word is gen(16) << 16 | WAITER | state(4). Every transition
 * is one CAS on the whole word, so the generation makes a stale actor's CAS
 * fail, and the word doubles as the owner's futex.
 *
 *   FREE --claim (popper of the free ring; gen+1)--> CLAIMED
 *   CLAIMED --owner: fields written, then release--> QUEUED --push run ring
 *   QUEUED --runner (announced in its worker.current first)--> RUNNING
 *   QUEUED --runner: deadline already passed, status ETIMEDOUT--> DONE
 *   QUEUED --owner (deadline) or supervisor (owner died)--> FREE
 *   RUNNING --runner: result written first--> DONE   (wake if WAITER)
 *   RUNNING --owner: deadline passed, or the supervisor: its linked owner
 *           died--> ABANDONED --runner at end--> FREE
 *   RUNNING --supervisor: runner died, status ECRASHED--> DONE (cast: FREE)
 *   DONE --owner: result released--> FREE
 *   (casts, and ORPHAN calls) RUNNING --runner at end--> FREE
 * Flag bits that ride along (kept by every CAS that keeps the state):
 *   WAITER   set by the owner before it sleeps on the word (S4);
 *   ORPHAN   set by the supervisor on an unlinked call whose owner died: it
 *            still runs, and whoever finishes it frees it instead of DONE;
 *   CANCEL   set by the owner (ember_cancel): a runner that takes it finishes
 *            it at once with ECANCELLED; a running handler sees it; the
 *            supervisor kills a runner that runs it on past kill_grace;
 *   STARTED  (children) set by the runner once it runs the call and has
 *            written slot.runner; wakes the owner like DONE does.
 * Invariants:
 *  S1. Exactly one process can move a slot out of any state: the owner out of
 *      CLAIMED and DONE, the runner named in the slot out of RUNNING and
 *      ABANDONED (or the supervisor once that runner is dead), owner and
 *      runners race out of QUEUED and the CAS picks one.
 *  S2. Whoever moves a slot to FREE returns its pages (read before the CAS)
 *      and pushes idx | gen16 << 16 on the free ring; a claimer sets the
 *      page fields to NONE, so a FREE slot owns nothing.
 *  S3. Fields are written before the CAS that publishes them (release) and
 *      read after the acquire load that sees that state.
 *  S4. WAITER is set by the owner (CAS) before it sleeps on the word; whoever
 *      moves the slot to DONE clears it in the same CAS and wakes if it was
 *      set: no lost wake-up, no wake when nobody sleeps.
 */
static inline uint32_t ember__st(uint32_t w) { return w & EMBER_SLOT_STATE_MASK; }
static inline uint32_t ember__gen(uint32_t w) { return w >> EMBER_SLOT_GEN_SHIFT; }
static inline uint32_t ember__mk(uint32_t gen, uint32_t st)
{
    return (gen << EMBER_SLOT_GEN_SHIFT) | st;
}
static inline uint32_t ember__entry(uint32_t idx, uint32_t gen)
{
    return idx | (gen & 0xffffu) << 16;
}

/* -- pages: runs of page_size chunks for payloads beyond the inline bytes ----
 * page_owner[i] is 0 (free) or slot index + 1 for every chunk of a run;
 * page_len[start] is the run's length. Guarded by a robust process-shared
 * mutex: a holder that dies is detected (EOWNERDEAD) and the next holder
 * repairs the table (ember__pages_repair_locked). */
static void ember__pages_repair_locked(struct ember__view *v);

static void ember__pages_lock(struct ember__view *v)
{
    pthread_mutex_t *m = (pthread_mutex_t *)v->hdr->page_lock;
    int r = pthread_mutex_lock(m);
    if (r == EOWNERDEAD) {
        ember__pages_repair_locked(v);
        pthread_mutex_consistent(m);
    }
}
static void ember__pages_unlock(struct ember__view *v)
{
    pthread_mutex_unlock((pthread_mutex_t *)v->hdr->page_lock);
}

/* Free every run whose slot no longer refers to it (after a death). */
static void ember__pages_repair_locked(struct ember__view *v)
{
    for (uint32_t i = 0; i < v->npages;) {
        uint32_t o = v->page_owner[i];
        if (!o) { i++; continue; }
        uint32_t n = v->page_len[i];
        if (n == 0 || n > v->npages - i || o > v->nslots) { v->page_owner[i] = 0; i++; continue; }
        struct ember_slot *s = &v->slots[o - 1];
        uint32_t st = ember__st(atomic_load(&s->state));
        bool used = st != EMBER_SLOT_FREE && (s->args_page == i || s->res_page == i);
        if (!used)
            for (uint32_t k = 0; k < n; k++) v->page_owner[i + k] = 0;
        i += n;
    }
}

/* Allocate a run for LEN bytes tagged with slot IDX and record its start in
 * *WHERE under the lock. Returns 0 or -1 when no run is free. */
static int ember__pages_alloc(struct ember__view *v, uint32_t idx, uint64_t len, uint32_t *where)
{
    uint32_t n = (uint32_t)((len + v->page_size - 1) / v->page_size);
    if (n == 0 || n > v->npages) return -1;
    ember__pages_lock(v);
    uint32_t start = atomic_load_explicit(&v->hdr->page_hint, memory_order_relaxed);
    if (start >= v->npages) start = 0;
    for (uint32_t pass = 0; pass < 2; pass++) {
        uint32_t i = pass ? 0 : start, end = pass ? start + n : v->npages;
        if (end > v->npages) end = v->npages;
        uint32_t run = 0;
        for (; i < end; i++) {
            if (v->page_owner[i]) { run = 0; continue; }
            if (++run == n) {
                uint32_t s0 = i + 1 - n;
                for (uint32_t k = 0; k < n; k++) v->page_owner[s0 + k] = idx + 1;
                v->page_len[s0] = n;
                *where = s0;
                atomic_store_explicit(&v->hdr->page_hint, s0 + n, memory_order_relaxed);
                ember__pages_unlock(v);
                return 0;
            }
        }
    }
    ember__pages_unlock(v);
    return -1;
}

static void ember__pages_free(struct ember__view *v, uint32_t idx, uint32_t start)
{
    if (start >= v->npages) return;
    ember__pages_lock(v);
    uint32_t n = v->page_len[start];
    if (v->page_owner[start] == idx + 1 && n && n <= v->npages - start) {
        for (uint32_t k = 0; k < n; k++) v->page_owner[start + k] = 0;
        if (start < atomic_load_explicit(&v->hdr->page_hint, memory_order_relaxed))
            atomic_store_explicit(&v->hdr->page_hint, start, memory_order_relaxed);
    }
    ember__pages_unlock(v);
    atomic_fetch_add(&v->hdr->page_seq, 1);
    if (atomic_load(&v->hdr->page_waiters)) ember__futex_wake(&v->hdr->page_seq, INT_MAX);
}

static inline void *ember__page_ptr(struct ember__view *v, uint32_t start)
{
    return v->pages + (size_t)start * v->page_size;
}

/* Bytes of a payload: inline or in a run; NULL if the fields are out of
 * bounds (a scribbled slot). */
static inline const void *ember__payload(struct ember__view *v, struct ember_slot *s,
                                         uint32_t len, uint32_t page)
{
    if (page == EMBER_NONE) return len <= EMBER_INLINE_MAX ? s->data : NULL;
    if (page >= v->npages || len > v->max_payload ||
        (uint64_t)page * v->page_size + len > (uint64_t)v->npages * v->page_size)
        return NULL;
    return ember__page_ptr(v, page);
}

/* Move slot IDX from the observed word W to FREE and give back its pages;
 * PUSH: also put it on the free ring (else its owner keeps it at hand, see
 * ember__slot_recycle). Returns false if the CAS lost (somebody else moved
 * it). */
static bool ember__slot_free_ex(struct ember__view *v, uint32_t idx, uint32_t w, bool push)
{
    struct ember_slot *s = &v->slots[idx];
    uint32_t ap = s->args_page, rp = s->res_page;
    uint32_t gen = ember__gen(w);
    if (!atomic_compare_exchange_strong_explicit(&s->state, &w, ember__mk(gen, EMBER_SLOT_FREE),
                                                 memory_order_seq_cst, memory_order_acquire))
        return false;
    if (ap != EMBER_NONE) ember__pages_free(v, idx, ap);
    if (rp != EMBER_NONE && rp != ap) ember__pages_free(v, idx, rp);
    if (push) ember__ring_push(&v->free, ember__entry(idx, gen));
    /* eventcount: free (seq_cst), then look for waiters; a waiter counts
     * itself, then reads slot_seq, then looks at the ring and at every slot
     * (ember__claim) */
    if (atomic_load_explicit(&v->hdr->slot_waiters, memory_order_seq_cst)) {
        if (!push) ember__ring_push(&v->free, ember__entry(idx, gen));
        atomic_fetch_add_explicit(&v->hdr->slot_seq, 1, memory_order_seq_cst);
        ember__futex_wake(&v->hdr->slot_seq, INT_MAX);
    }
    return true;
}

static bool ember__slot_free(struct ember__view *v, uint32_t idx, uint32_t w)
{
    return ember__slot_free_ex(v, idx, w, true);
}

/* Put a slot kept at hand (entry E) back on the free ring, unless somebody
 * has claimed it meanwhile (then E is stale: dropped, not left to fill the
 * ring). */
static void ember__hot_return(struct ember__view *v, uint32_t e)
{
    uint32_t idx = e & 0xffffu;
    if (e == EMBER_NONE || idx >= v->nslots) return;
    if (atomic_load_explicit(&v->slots[idx].state, memory_order_acquire) ==
        ember__mk(e >> 16, EMBER_SLOT_FREE))
        ember__ring_push(&v->free, e);
}

/* Runner: move the slot of ring entry generation GEN from QUEUED to
 * RUNNING, keeping the flag bits (the owner may set WAITER or CANCEL, the
 * supervisor ORPHAN, at any moment). The first CAS is blind (the expected word is known from the ring
 * entry), so the slot's line is fetched once, for writing. Returns false
 * when the slot is not QUEUED in that generation (expired, reclaimed, taken,
 * or a stale entry); *W is the word seen or written. */
static inline bool ember__slot_take(struct ember_slot *s, uint32_t gen, uint32_t *w)
{
    *w = ember__mk(gen, EMBER_SLOT_QUEUED);
    for (;;) {
        uint32_t rw = ember__mk(gen, EMBER_SLOT_RUNNING) | (*w & EMBER_SLOT_STICKY);
        if (atomic_compare_exchange_weak_explicit(&s->state, w, rw, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            *w = rw;
            return true;
        }
        if (ember__st(*w) != EMBER_SLOT_QUEUED || ember__gen(*w) != gen) return false;
    }
}

/* Move a finished slot to DONE (call) or FREE (cast, orphan) with STATUS; wakes a
 * sleeping owner. W is the RUNNING (or QUEUED) word as last seen or written
 * (a stale one only costs a failed CAS). Returns false
 * if the CAS lost; if the slot turned ABANDONED, frees it. */
static bool ember__slot_finish(struct ember__view *v, uint32_t idx, uint32_t w, int status,
                               int detail)
{
    struct ember_slot *s = &v->slots[idx];
    const uint32_t gen0 = ember__gen(w);
    for (;;) {
        uint32_t st = ember__st(w);
        if (ember__gen(w) != gen0) return false;
        if (st == EMBER_SLOT_ABANDONED) return ember__slot_free(v, idx, w);
        if (st != EMBER_SLOT_RUNNING && st != EMBER_SLOT_QUEUED) return false;
        if ((s->flags & EMBER_CALL_CAST) || (w & EMBER_SLOT_ORPHAN)) {
            if (ember__slot_free(v, idx, w)) return true;
        } else {
            /* cancelled while it ran: a result or a handler's error is
             * reported as the cancel (the CAS below fails if the flag comes
             * after this look, and the loop looks again) */
            bool cancel = (w & EMBER_SLOT_CANCEL) && (status == 0 || status == -EMBER_EHANDLER);
            s->status = cancel ? -EMBER_ECANCELLED : status;
            s->detail = cancel ? 0 : detail;
            uint32_t nw = ember__mk(ember__gen(w), EMBER_SLOT_DONE);
            if (atomic_compare_exchange_strong_explicit(&s->state, &w, nw, memory_order_acq_rel,
                                                        memory_order_acquire)) {
                if (w & EMBER_SLOT_WAITER) ember__futex_wake(&s->state, INT_MAX);
                return true;
            }
            continue; /* w reloaded by the failed CAS */
        }
        w = atomic_load_explicit(&s->state, memory_order_acquire);
    }
}

/* The owner of slot IDX is gone: give the slot up for good. DIED: it died
 * (the supervisor saw its pidfd) rather than detached. Linked work stops:
 * queued calls are freed (never run), running ones abandoned (the handler
 * sees its cancel flag; the supervisor kills a runner that runs on past
 * kill_grace). Unlinked calls run on as orphans, freed by whoever finishes
 * them; so do casts of a caller that detached (a normal exit). Claimed and
 * finished slots are freed. Retries until a CAS lands, since a runner may
 * move the slot between the read and the CAS (a free lost to a runner's take
 * would otherwise leave a DONE slot that nobody releases).
 * GEN is the generation in which the caller saw the slot as that owner's:
 * read the state word first (acquire), then the owner fields, which the
 * claimer wrote before its claim CAS. */
static void ember__slot_disown(struct ember__view *v, uint32_t idx, uint32_t gen, bool died)
{
    struct ember_slot *s = &v->slots[idx];
    uint32_t w = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        if (ember__gen(w) != gen) return; /* claimed anew since: not the old owner's */
        uint32_t st = ember__st(w), fl = s->flags;
        bool runs_on = (fl & EMBER_CALL_UNLINKED) || ((fl & EMBER_CALL_CAST) && !died);
        switch (st) {
        case EMBER_SLOT_QUEUED:
        case EMBER_SLOT_RUNNING:
            if (runs_on && !(w & EMBER_SLOT_CANCEL)) {
                if ((fl & EMBER_CALL_CAST) || (w & EMBER_SLOT_ORPHAN)) return;
                if (atomic_compare_exchange_strong(&s->state, &w, w | EMBER_SLOT_ORPHAN)) return;
                continue; /* w reloaded */
            }
            if (st == EMBER_SLOT_RUNNING) {
                if (atomic_compare_exchange_strong(&s->state, &w,
                                                   ember__mk(ember__gen(w), EMBER_SLOT_ABANDONED)))
                    return;
                continue;
            }
            __attribute__((fallthrough)); /* a queued linked call never runs */
        case EMBER_SLOT_CLAIMED:
        case EMBER_SLOT_DONE:
            if (ember__slot_free(v, idx, w)) return;
            break;
        default: /* FREE or ABANDONED: nothing is ours */
            return;
        }
        w = atomic_load_explicit(&s->state, memory_order_acquire);
    }
}

/* -- waking a runner: the eventcount ----------------------------------------
 * Producer (here): push (seq_cst cell CAS), then load nparked, then
 * the idle spinner count in hdr.spin (seq_cst). A runner thread going to sleep: set its park word
 * PARKED and nparked++ (seq_cst), stop counting itself among the idle spinners, then
 * look at the ring once more before sleeping. In the single total order either
 * the producer sees the parked thread (and wakes one) or the thread's last
 * look sees the pushed entry. A spinner that takes an entry and sees more left
 * wakes the next one (see runner.c), so counting a spinner that is about to
 * get busy loses nothing. The parked thread woken is one of the least-loaded
 * runner with a parked thread; it is claimed by CAS PARKED -> WOKEN, so two
 * producers never spend their wake-ups on the same thread. With several
 * nodes each run ring also counts its node's spinners, changed at the same
 * points as hdr.spin, so the same argument holds per node. */
/* hdr.spin: a runner thread spinning for work counts in both halves, a
 * caller spinning for its result in the low half only (see abi.h) */
#define EMBER_SPIN_IDLE ((1ull << 32) | 1ull)
static inline int32_t ember__spinners(uint64_t w) { return (int32_t)((uint32_t)w - EMBER_SPIN_BIAS); }
static inline int32_t ember__idle_spinners(uint64_t w)
{
    return (int32_t)((uint32_t)(w >> 32) - EMBER_SPIN_BIAS);
}

/* Wake one parked thread of the least-loaded READY runner that has one
 * (of ring RING only, if LOCAL; else that ring's runners first). LOCAL also
 * counts a thread of that ring already woken and not yet running: it looks
 * at its own ring first, so it takes the call (or an earlier one, and then
 * chains a wake-up on, see runner.c). */
static bool ember__wake_one(struct ember__view *v, uint32_t ring, bool local)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        uint32_t best = EMBER_NONE, best_key = UINT32_MAX;
        bool woken = false;
        for (uint32_t r = 0; r < v->nrunners; r++) {
            struct ember_runner_ent *re = &v->runners[r];
            if (atomic_load_explicit(&re->state, memory_order_acquire) != EMBER_RUNNER_READY)
                continue;
            if (local && re->ring != ring) continue;
            uint32_t load = 0;
            bool parked = false;
            for (uint32_t t = 0; t < v->max_conc; t++) {
                struct ember_worker_ent *we = &v->workers[r * v->max_conc + t];
                load += atomic_load_explicit(&we->busy, memory_order_relaxed);
                uint32_t ps = atomic_load_explicit(&we->park, memory_order_seq_cst);
                parked |= ps == EMBER_WORKER_PARKED;
                woken |= ps == EMBER_WORKER_WOKEN;
            }
            uint32_t key = (uint32_t)(re->ring != ring) << 16 | (load & 0xffffu);
            if (parked && key < best_key) best = r, best_key = key;
        }
        if (best == EMBER_NONE) return local && woken;
        for (uint32_t t = 0; t < v->max_conc; t++) {
            _Atomic uint32_t *pw = &v->workers[best * v->max_conc + t].park;
            uint32_t exp = EMBER_WORKER_PARKED;
            if (atomic_compare_exchange_strong(pw, &exp, EMBER_WORKER_WOKEN)) {
                ember__futex_wake(pw, 1);
                return true;
            }
        }
    }
    return false;
}

/* A call was pushed on ring RING: make sure a runner thread will take it.
 * With several nodes, a spinner of the call's node takes it; failing that a
 * parked thread of that node is woken rather than leaving the call to
 * another node's spinner (which steals it only after a few microseconds,
 * see runner.c): the work runs where its caller's memory is. */
static bool ember__wake_runner(struct ember__view *v, uint32_t ring)
{
    if (atomic_load_explicit(&v->hdr->nparked, memory_order_seq_cst) <= 0) return false;
    if (v->nrings > 1) {
        if (atomic_load_explicit(&v->run[ring].h->spinners, memory_order_seq_cst) > 0) return false;
        if (ember__wake_one(v, ring, true)) return true;
    }
    if (ember__idle_spinners(atomic_load_explicit(&v->hdr->spin, memory_order_seq_cst)) > 0)
        return false;
    return ember__wake_one(v, ring, false);
}

/* The run ring of the node this thread runs on (getcpu through rseq or
 * the vDSO: no system call). */
static inline uint32_t ember__my_ring(const struct ember__view *v)
{
    if (v->nrings == 1) return 0;
    int cpu = sched_getcpu();
    if (cpu < 0 || (uint32_t)cpu >= v->ncpu_map) return 0;
    uint32_t r = v->cpu_ring[cpu];
    return r < v->nrings ? r : 0;
}

/* Is any call waiting in any ring? Ring FIRST is looked at first. */
static inline bool ember__any_queued(const struct ember__view *v, uint32_t first)
{
    if (ember__ring_nonempty(&v->run[first])) return true;
    for (uint32_t i = 0; i < v->nrings; i++)
        if (i != first && ember__ring_nonempty(&v->run[i])) return true;
    return false;
}

/* Tell the supervisor to look at the pool (callers attached or detached,
 * growth wanted, a runner ready or draining, a resize). */
static inline void ember__ring_doorbell(struct ember__view *v)
{
    atomic_fetch_add(&v->hdr->doorbell, 1);
    ember__futex_wake(&v->hdr->doorbell, 1);
}

/* A call was pushed and no runner thread was woken or spinning for it: ask
 * the supervisor to look at the pool's size (it boots a runner if every one
 * is full and there is room below max). One doorbell per request: the flag
 * stays set until the supervisor has looked, and a pool at max asks nothing. */
static inline void ember__ask_growth(struct ember__view *v)
{
    struct ember_shm_header *h = v->hdr;
    if (atomic_load_explicit(&h->at_max, memory_order_relaxed)) return;
    if (ember__idle_spinners(atomic_load_explicit(&h->spin, memory_order_seq_cst)) > 0) return;
    if (atomic_load_explicit(&h->grow_req, memory_order_relaxed)) return;
    if (atomic_exchange(&h->grow_req, 1)) return;
    ember__ring_doorbell(v);
}

/* -- the client ------------------------------------------------------------- */
struct ember_client {
    struct ember__view v;
    /* the slot this caller released last, FREE but kept off the free ring
     * (idx | gen << 16, or EMBER_NONE): the next call takes it back with one
     * CAS, its line still in this CPU's cache; anybody may claim it meanwhile
     * (ember__claim looks at every slot before it waits) */
    _Atomic uint32_t hot;
    int sup_pidfd;
    uint32_t caller_idx, caller_gen;
    char name[EMBER_NAME_MAX];
};

static bool ember__name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= EMBER_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return name[0] != '.';
}

static void ember__shm_name(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "/ember.%u.%s", (unsigned)geteuid(), name);
}

/* Start time of PID in clock ticks since boot (/proc/PID/stat field 22), 0 if
 * it does not exist. Told apart from a reused pid by the supervisor's. */
static uint64_t ember__proc_start_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    int field = 2;
    for (; *p && field < 22; p++)
        if (*p == ' ') field++;
    return strtoull(p, NULL, 10);
}

static int ember__pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static bool ember__pidfd_dead(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, 0) == 1;
}

/* Is the pool's supervisor alive and the pool taking calls? */
static int ember__pool_alive(ember_client *c)
{
    uint32_t ps = atomic_load_explicit(&c->v.hdr->pool_state, memory_order_acquire);
    if (ps != EMBER_POOL_RUNNING && ps != EMBER_POOL_STARTING)
        return ember__fail(-EMBER_EPOOLDOWN, "pool '%s' is stopping or stopped", c->name);
    if (ember__pidfd_dead(c->sup_pidfd))
        return ember__fail(-EMBER_EPOOLDOWN, "the supervisor of pool '%s' died", c->name);
    return 0;
}

/* Runners fail to boot and none is up: EMBER_EBOOT with the cause. */
static int ember__boot_error(ember_client *c, uint32_t failures)
{
    struct ember_shm_header *h = c->v.hdr;
    char msg[sizeof h->boot_fail_msg];
    memcpy(msg, h->boot_fail_msg, sizeof msg);
    msg[sizeof msg - 1] = 0;
    uint64_t retry = atomic_load(&h->boot_retry_ns), now = ember__now_ns();
    char cause[48];
    if (h->boot_fail_signal) snprintf(cause, sizeof cause, "killed by signal %d", h->boot_fail_signal);
    else snprintf(cause, sizeof cause, "exit status %d", h->boot_fail_status);
    return ember__fail(-EMBER_EBOOT,
                       "pool '%s': runners fail to boot (%u in a row; last: %s%s%s); next attempt in %llu ms",
                       c->name, failures, cause, msg[0] ? ": " : "", msg,
                       (unsigned long long)(retry > now ? (retry - now + 999999) / 1000000 : 0));
}

/* Wait until at least N runners are READY (or TIMEOUT_NS passes, negative:
 * no limit): 0, -EMBER_ETIMEDOUT, -EMBER_EPOOLDOWN. */
static int ember__wait_ready(struct ember__view *v, const char *name, int sup_pidfd, unsigned n,
                             int64_t timeout_ns)
{
    uint64_t until = timeout_ns < 0 ? UINT64_MAX : ember__now_ns() + (uint64_t)timeout_ns;
    for (;;) {
        uint32_t ep = atomic_load(&v->hdr->epoch);
        unsigned ready = 0;
        for (uint32_t r = 0; r < v->nrunners; r++)
            ready += atomic_load(&v->runners[r].state) == EMBER_RUNNER_READY;
        if (ready >= n) return 0;
        uint32_t ps = atomic_load(&v->hdr->pool_state);
        if ((ps != EMBER_POOL_RUNNING && ps != EMBER_POOL_STARTING) || ember__pidfd_dead(sup_pidfd))
            return ember__fail(-EMBER_EPOOLDOWN, "pool '%s' is stopping or its supervisor died", name);
        uint64_t now = ember__now_ns();
        if (now >= until)
            return ember__fail(-EMBER_ETIMEDOUT, "pool '%s': %u of %u runners ready", name, ready, n);
        uint64_t t = now + 100000000ull;
        ember__futex_wait(&v->hdr->epoch, ep, t < until ? t : until);
    }
}

/* Ask the supervisor behind SUP_PIDFD to stop, giving running calls
 * SHUTDOWN_TIMEOUT_NS (negative: the pool's own), and wait for it to exit for
 * up to that and 3 s more; one still there then is killed. With a negative
 * timeout the wait has no limit (the supervisor bounds its own stop). */
static int ember__stop_supervisor(struct ember__view *v, const char *name, int sup_pidfd,
                                  int64_t shutdown_timeout_ns)
{
    if (shutdown_timeout_ns >= 0) atomic_store(&v->hdr->stop_timeout_ns, shutdown_timeout_ns);
    if (syscall(SYS_pidfd_send_signal, sup_pidfd, SIGTERM, NULL, 0) < 0 && errno != ESRCH)
        return ember__fail(-errno, "pool '%s': cannot signal its supervisor: %s", name,
                           strerror(errno));
    int64_t ms = shutdown_timeout_ns < 0 ? -1 : shutdown_timeout_ns / 1000000 + 3000;
    struct pollfd p = { .fd = sup_pidfd, .events = POLLIN };
    int rc;
    while ((rc = poll(&p, 1, ms > INT32_MAX ? -1 : (int)ms)) < 0 && errno == EINTR) {}
    if (rc == 0) syscall(SYS_pidfd_send_signal, sup_pidfd, SIGKILL, NULL, 0);
    return 0;
}

/* New bounds for the pool; the supervisor acts on them at its next look. */
static int ember__resize(struct ember__view *v, const char *name, unsigned min, unsigned max)
{
    if (max == 0 || max > v->nrunners)
        return ember__fail(-EMBER_EINVAL, "pool '%s': resize: max %u is not in 1..max_limit (%u)",
                           name, max, v->nrunners);
    if (min > max)
        return ember__fail(-EMBER_EINVAL, "pool '%s': resize: min %u is above max %u", name, min, max);
    atomic_store(&v->hdr->min, min);
    atomic_store(&v->hdr->max, max);
    atomic_fetch_add(&v->hdr->resize_seq, 1);
    ember__ring_doorbell(v);
    return 0;
}

#ifndef EMBER_CLIENT_INTERNALS_ONLY
EMBER_API int ember_attach(const char *name, ember_client **out)
{
    char shm[96];
    if (!out) return ember__fail(-EMBER_EINVAL, "ember_attach: out is NULL");
    *out = NULL;
    if (!ember__name_ok(name))
        return ember__fail(-EMBER_EINVAL, "bad pool name '%s': 1-39 of [A-Za-z0-9_.-]",
                           name ? name : "(null)");
    ember__shm_name(shm, sizeof shm, name);
    int fd = shm_open(shm, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == ENOENT)
            return ember__fail(-EMBER_ENOPOOL, "pool '%s' is not running (no segment %s)", name, shm);
        return ember__fail(-errno, "pool '%s': shm_open %s: %s", name, shm, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return ember__fail(-e, "pool '%s': fstat: %s", name, strerror(e));
    }
    if (st.st_uid != geteuid()) {
        close(fd);
        return ember__fail(-EMBER_EOWNER, "pool '%s': segment %s belongs to uid %u, not %u", name,
                           shm, (unsigned)st.st_uid, (unsigned)geteuid());
    }
    if ((size_t)st.st_size < sizeof(struct ember_shm_header)) {
        close(fd);
        return ember__fail(-EMBER_ECORRUPT, "pool '%s': segment %s is too small (%lld bytes)",
                           name, shm, (long long)st.st_size);
    }
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (base == MAP_FAILED) return ember__fail(-e, "pool '%s': mmap: %s", name, strerror(e));
    ember_client *c = (ember_client *)calloc(1, sizeof *c);
    if (!c) {
        munmap(base, (size_t)st.st_size);
        return -ENOMEM;
    }
    int rc = ember__view_init(&c->v, base, (size_t)st.st_size);
    if (rc < 0) {
        char why[EMBER__ERRLEN];
        memcpy(why, ember__errbuf, sizeof why);
        ember__fail(rc, "pool '%s': %s", name, why);
        goto fail;
    }
    snprintf(c->name, sizeof c->name, "%s", name);
    uint32_t pid = atomic_load_explicit(&c->v.hdr->sup_pid, memory_order_acquire);
    c->sup_pidfd = pid ? ember__pidfd_open((pid_t)pid) : -1;
    atomic_init(&c->hot, EMBER_NONE);
    if (c->sup_pidfd < 0 || ember__proc_start_ticks((pid_t)pid) != c->v.hdr->sup_start_ticks) {
        rc = ember__fail(-EMBER_ENOPOOL, "pool '%s' is not running (its supervisor, pid %u, is gone)",
                         name, pid);
        goto fail;
    }
    /* claim a caller entry; the supervisor learns of it from the doorbell */
    uint32_t me = (uint32_t)getpid();
    c->caller_idx = EMBER_NONE;
    for (uint32_t i = 0; i < c->v.ncallers; i++) {
        uint32_t z = 0;
        if (atomic_compare_exchange_strong(&c->v.callers[i].pid, &z, me)) {
            c->caller_idx = i;
            c->caller_gen = atomic_fetch_add(&c->v.callers[i].gen, 1) + 1;
            break;
        }
    }
    if (c->caller_idx == EMBER_NONE) {
        rc = ember__fail(-EMBER_ECALLERS, "pool '%s': all %u caller entries are taken", name,
                         c->v.ncallers);
        goto fail;
    }
    ember__ring_doorbell(&c->v);
    *out = c;
    return 0;
fail:
    if (c->sup_pidfd > 0) close(c->sup_pidfd);
    munmap(base, (size_t)st.st_size);
    free(c);
    return rc;
}

EMBER_API void ember_detach(ember_client *c)
{
    if (!c) return;
    /* Give back what this caller still holds (ember__slot_disown): queued
     * calls never run, running ones are cancelled; casts and unlinked calls
     * run on. */
    for (uint32_t i = 0; i < c->v.nslots; i++) {
        struct ember_slot *s = &c->v.slots[i];
        uint32_t w = atomic_load_explicit(&s->state, memory_order_acquire);
        if (ember__st(w) != EMBER_SLOT_FREE && s->owner == c->caller_idx &&
            s->owner_gen == c->caller_gen)
            ember__slot_disown(&c->v, i, ember__gen(w), false);
    }
    ember__hot_return(&c->v, atomic_exchange(&c->hot, EMBER_NONE));
    uint32_t me = (uint32_t)getpid();
    atomic_compare_exchange_strong(&c->v.callers[c->caller_idx].pid, &me, 0);
    ember__ring_doorbell(&c->v);
    close(c->sup_pidfd);
    munmap(c->v.base, c->v.size);
    free(c);
}

EMBER_API int ember_handler(ember_client *c, const char *name)
{
    if (!c || !name) return ember__fail(-EMBER_EINVAL, "ember_handler: NULL argument");
    for (uint32_t i = 0; i < c->v.nhandlers; i++)
        if (strncmp(c->v.handlers[i].name, name, EMBER_NAME_MAX) == 0) return (int)i;
    return ember__fail(-EMBER_ENOHANDLER, "pool '%s' has no handler '%s'", c->name, name);
}

EMBER_API size_t ember_max_payload(const ember_client *c) { return c ? c->v.max_payload : 0; }

static uint64_t ember__deadline(ember_client *c, int64_t timeout_ns)
{
    if (timeout_ns == EMBER_TIMEOUT_DEFAULT) timeout_ns = (int64_t)c->v.default_timeout_ns;
    if (timeout_ns < 0 || timeout_ns == EMBER_TIMEOUT_NONE) return UINT64_MAX;
    /* long timeouts from the coarse clock, rounded late by one tick (never
     * early): the precise clock costs as much as the rest of a warm call */
    if (timeout_ns >= 1000000000ll)
        return ember__now_coarse_ns() + ember__coarse_res_ns() + (uint64_t)timeout_ns;
    return ember__now_ns() + (uint64_t)timeout_ns;
}

/* Claim the FREE slot of entry E (idx | gen << 16) for C: false if it is
 * not FREE in that generation any more (taken, or a stale entry). */
static bool ember__claim_entry(ember_client *c, uint32_t e, uint32_t *idx_out, uint32_t *gen_out)
{
    struct ember__view *v = &c->v;
    uint32_t idx = e & 0xffffu;
    if (idx >= v->nslots) return false; /* scribbled entry */
    struct ember_slot *s = &v->slots[idx];
    uint32_t w = atomic_load_explicit(&s->state, memory_order_acquire);
    if (ember__st(w) != EMBER_SLOT_FREE || ember__gen(w) != (e >> 16))
        return false; /* stale duplicate from crash repair, or taken */
    uint32_t gen = (ember__gen(w) + 1) & 0xffffu;
    s->owner = c->caller_idx;
    s->owner_gen = c->caller_gen;
    if (!atomic_compare_exchange_strong_explicit(&s->state, &w, ember__mk(gen, EMBER_SLOT_CLAIMED),
                                                 memory_order_acq_rel, memory_order_relaxed))
        return false;
    s->args_page = s->res_page = EMBER_NONE;
    s->runner = EMBER_SLOT_NO_RUNNER;
    s->status = s->detail = 0;
    s->t_start_ns = 0;
    s->node = -1;
    *idx_out = idx;
    *gen_out = gen;
    return true;
}

/* A released slot: keep it at hand for the next call (off the free ring)
 * unless somebody waits for slots; the one kept before goes to the ring. */
static void ember__slot_recycle(ember_client *c, uint32_t idx, uint32_t w)
{
    if (!ember__slot_free_ex(&c->v, idx, w, false)) return;
    if (atomic_load_explicit(&c->v.hdr->slot_waiters, memory_order_seq_cst)) return; /* pushed */
    uint32_t old = atomic_exchange_explicit(&c->hot, ember__entry(idx, ember__gen(w)),
                                            memory_order_acq_rel);
    ember__hot_return(&c->v, old);
}

/* Take a free slot, waiting for one until DEADLINE: the one kept at hand,
 * else one from the free ring; before sleeping, any FREE slot at all (the
 * ones other callers keep at hand included). */
static int ember__claim(ember_client *c, uint64_t deadline, uint32_t *idx_out, uint32_t *gen_out)
{
    struct ember__view *v = &c->v;
    uint32_t e = atomic_exchange_explicit(&c->hot, EMBER_NONE, memory_order_acq_rel);
    if (e != EMBER_NONE && ember__claim_entry(c, e, idx_out, gen_out)) return 0;
    bool counted = false;
    uint32_t seq = 0;
    for (;;) {
        while ((e = ember__ring_pop(&v->free)) != EMBER_NONE)
            if (ember__claim_entry(c, e, idx_out, gen_out)) {
                if (counted) atomic_fetch_sub(&v->hdr->slot_waiters, 1);
                return 0;
            }
        if (!counted) { /* announce, then look once more before sleeping */
            atomic_fetch_add_explicit(&v->hdr->slot_waiters, 1, memory_order_seq_cst);
            seq = atomic_load_explicit(&v->hdr->slot_seq, memory_order_seq_cst);
            counted = true;
            continue;
        }
        for (uint32_t i = 0; i < v->nslots; i++) { /* FREE slots kept off the ring */
            uint32_t w = atomic_load_explicit(&v->slots[i].state, memory_order_relaxed);
            if (ember__st(w) == EMBER_SLOT_FREE &&
                ember__claim_entry(c, ember__entry(i, ember__gen(w)), idx_out, gen_out)) {
                atomic_fetch_sub(&v->hdr->slot_waiters, 1);
                return 0;
            }
        }
        uint64_t now = ember__now_ns();
        int rc = now >= deadline
                     ? ember__fail(-EMBER_EFULL, "pool '%s': all %u slots in use until the deadline",
                                   c->name, v->nslots)
                     : ember__pool_alive(c);
        if (rc) {
            atomic_fetch_sub(&v->hdr->slot_waiters, 1);
            return rc;
        }
        uint64_t until = now + 100000000ull;
        ember__futex_wait(&v->hdr->slot_seq, seq, until < deadline ? until : deadline);
        seq = atomic_load_explicit(&v->hdr->slot_seq, memory_order_seq_cst);
    }
}

/* Queue a call: wait for a slot and pages until WAIT_UNTIL; the call's own
 * deadline is DEADLINE. */
static int ember__submit(ember_client *c, int h, const void *args, size_t len,
                         uint64_t wait_until, uint64_t deadline, uint32_t flags, ember_call_id *id)
{
    if (!c) return ember__fail(-EMBER_EINVAL, "client is NULL");
    struct ember__view *v = &c->v;
    if (h < 0 || (uint32_t)h >= v->nhandlers)
        return ember__fail(-EMBER_ENOHANDLER, "pool '%s' has no handler id %d", c->name, h);
    if (len && !args) return ember__fail(-EMBER_EINVAL, "args is NULL with length %zu", len);
    if (len > v->max_payload)
        return ember__fail(-EMBER_ETOOBIG, "payload of %zu bytes exceeds pool '%s' max_payload %llu",
                           len, c->name, (unsigned long long)v->max_payload);
    uint32_t ps = atomic_load_explicit(&v->hdr->pool_state, memory_order_relaxed);
    if (ps != EMBER_POOL_RUNNING && ps != EMBER_POOL_STARTING)
        return ember__fail(-EMBER_EPOOLDOWN, "pool '%s' is stopping or stopped", c->name);
    uint32_t broken = atomic_load_explicit(&v->hdr->boot_broken, memory_order_relaxed);
    if (broken && atomic_load_explicit(&v->hdr->nready, memory_order_relaxed) == 0)
        return ember__boot_error(c, broken);
    uint32_t idx = 0, gen = 0;
    int rc = ember__claim(c, wait_until, &idx, &gen);
    if (rc) return rc;
    struct ember_slot *s = &v->slots[idx];
    s->handler = (uint16_t)h;
    s->flags = (uint16_t)flags;
    s->deadline_ns = deadline;
    s->args_len = (uint32_t)len;
    if (len <= EMBER_INLINE_MAX) {
        if (len) memcpy(s->data, args, len);
    } else {
        for (;;) {
            uint32_t seq = atomic_load(&v->hdr->page_seq);
            if (ember__pages_alloc(v, idx, len, &s->args_page) == 0) break;
            uint64_t now = ember__now_ns();
            if (now >= wait_until || (rc = ember__pool_alive(c)) != 0) {
                ember__slot_free(v, idx, ember__mk(gen, EMBER_SLOT_CLAIMED));
                return rc ? rc : ember__fail(-EMBER_EFULL,
                                             "pool '%s': no shared pages for %zu bytes until the deadline",
                                             c->name, len);
            }
            atomic_fetch_add(&v->hdr->page_waiters, 1);
            uint64_t until = now + 100000000ull;
            ember__futex_wait(&v->hdr->page_seq, seq, until < wait_until ? until : wait_until);
            atomic_fetch_sub(&v->hdr->page_waiters, 1);
        }
        memcpy(ember__page_ptr(v, s->args_page), args, len);
    }
    /* publish: fields before QUEUED (release), QUEUED before the push */
    atomic_store_explicit(&s->state, ember__mk(gen, EMBER_SLOT_QUEUED), memory_order_release);
    uint32_t ring = ember__my_ring(v);
    if (ember__ring_push(&v->run[ring], ember__entry(idx, gen)) < 0) {
        /* cannot happen with ring_cap = 2 * nslots unless repairs left many
         * duplicates; the slot is ours again */
        ember__slot_free(v, idx, ember__mk(gen, EMBER_SLOT_QUEUED));
        return ember__fail(-EMBER_EFULL, "pool '%s': run ring full", c->name);
    }
    ember__woke_runner = ember__wake_runner(v, ring);
    if (!ember__woke_runner) ember__ask_growth(v);
    if (id) id->idx = idx, id->gen = gen;
    return 0;
}

/* The caller's FLAGS: 0 or EMBER_UNLINKED (the other EMBER_CALL_* bits are
 * ember's own). */
static int ember__bad_flags(unsigned flags)
{
    return flags & ~(unsigned)EMBER_UNLINKED
               ? ember__fail(-EMBER_EINVAL, "unknown call flags 0x%x", flags) : 0;
}

/* Queue a call of KIND (0 or EMBER_CALL_CAST) with the caller's FLAGS; one
 * deadline, TIMEOUT_NS, for waiting for a slot, queueing and running. */
static int ember__submit_t(ember_client *c, int h, const void *args, size_t len,
                           int64_t timeout_ns, unsigned flags, unsigned kind, ember_call_id *id)
{
    if (!c) return ember__fail(-EMBER_EINVAL, "client is NULL");
    int rc = ember__bad_flags(flags);
    if (rc) return rc;
    uint64_t deadline = ember__deadline(c, timeout_ns);
    return ember__submit(c, h, args, len, deadline, deadline, flags | kind, id);
}

EMBER_API int ember_submit_flags(ember_client *c, int h, const void *args, size_t len,
                                 int64_t timeout_ns, unsigned flags, ember_call_id *id)
{
    if (!id) return ember__fail(-EMBER_EINVAL, "ember_submit: id is NULL");
    return ember__submit_t(c, h, args, len, timeout_ns, flags, 0, id);
}

EMBER_API int ember_submit(ember_client *c, int h, const void *args, size_t len,
                           int64_t timeout_ns, ember_call_id *id)
{
    return ember_submit_flags(c, h, args, len, timeout_ns, 0, id);
}

EMBER_API int ember_cast_flags(ember_client *c, int h, const void *args, size_t len,
                               int64_t timeout_ns, unsigned flags)
{
    return ember__submit_t(c, h, args, len, timeout_ns, flags, EMBER_CALL_CAST, NULL);
}

EMBER_API int ember_cast(ember_client *c, int h, const void *args, size_t len, int64_t timeout_ns)
{
    return ember_cast_flags(c, h, args, len, timeout_ns, 0);
}

static void ember__result_clear(ember_result *res)
{
    memset(res, 0, sizeof *res);
    res->runner = EMBER_NONE;
    res->node = -1;
    res->_idx = EMBER_NONE;
}

/* Collect a DONE slot into RES. On error statuses the slot is freed now. */
static int ember__collect(ember_client *c, uint32_t idx, uint32_t w, ember_result *res)
{
    struct ember_slot *s = &c->v.slots[idx];
    res->status = s->status;
    res->detail = s->detail;
    res->runner = s->runner == EMBER_SLOT_NO_RUNNER ? EMBER_NONE : s->runner;
    res->start_ns = s->t_start_ns;
    res->node = s->node;
    if (s->status == 0) {
        const void *p = ember__payload(&c->v, s, s->res_len, s->res_page);
        if (!p) {
            res->status = ember__fail(-EMBER_ECORRUPT, "pool '%s': result fields out of bounds",
                                      c->name);
            ember__slot_free(&c->v, idx, w);
            return res->status;
        }
        res->data = p;
        res->len = s->res_len;
        res->_idx = idx;
        res->_gen = ember__gen(w);
        return 0;
    }
    int st = s->status;
    ember__slot_free(&c->v, idx, w);
    switch (-st) {
    case EMBER_ECRASHED:
        return ember__fail(st, "pool '%s': runner %u crashed (signal %d) during the call", c->name,
                           res->runner, res->detail);
    case EMBER_ETIMEDOUT:
        if (res->detail == EMBER_TIMEOUT_RUNNING)
            return ember__fail(st, "pool '%s': deadline passed while runner %u ran the call; "
                               "the runner was killed", c->name, res->runner);
        return ember__fail(st, "pool '%s': deadline passed while the call was queued; it never ran",
                           c->name);
    case EMBER_ERUNNERLOST:
        return ember__fail(st, "pool '%s': runner %u was killed while it ran the call (another "
                           "call on it ran past its deadline)", c->name, res->runner);
    case EMBER_EBOOT:
        return ember__boot_error(c, (uint32_t)res->detail);
    case EMBER_EPOOLDOWN:
        return ember__fail(st, "pool '%s' stopped before the call ended", c->name);
    case EMBER_EHANDLER:
        return ember__fail(st, "pool '%s': the handler returned %d", c->name, res->detail);
    case EMBER_EIMAGE:
        return ember__fail(st, "pool '%s': the function is not in the pool's program image "
                           "(another program, or the same one started anew); nothing ran", c->name);
    case EMBER_ECANCELLED:
        return ember__fail(st, "pool '%s': the call was cancelled%s", c->name,
                           res->detail ? "; its runner was killed after kill_grace" : "");
    default:
        return ember__fail(st, "pool '%s': call failed (%s, detail %d)", c->name,
                           ember_strerror(st), res->detail);
    }
}

/* Give up on a call at its deadline: never run if still queued. */
static int ember__expire(ember_client *c, uint32_t idx, uint32_t gen, ember_result *res)
{
    struct ember_slot *s = &c->v.slots[idx];
    for (;;) {
        uint32_t w = atomic_load_explicit(&s->state, memory_order_acquire);
        if (ember__gen(w) != gen) return -EMBER_ESTALE;
        switch (ember__st(w)) {
        case EMBER_SLOT_DONE:
            return ember__collect(c, idx, w, res);
        case EMBER_SLOT_QUEUED:
            if (ember__slot_free(&c->v, idx, w)) {
                res->status = -EMBER_ETIMEDOUT;
                res->detail = EMBER_TIMEOUT_QUEUED;
                return ember__fail(-EMBER_ETIMEDOUT,
                                   "pool '%s': deadline passed while the call was queued; it never ran",
                                   c->name);
            }
            break;
        case EMBER_SLOT_RUNNING: {
            uint32_t nw = ember__mk(gen, EMBER_SLOT_ABANDONED);
            if (atomic_compare_exchange_strong(&s->state, &w, nw)) {
                res->status = -EMBER_ETIMEDOUT;
                res->detail = EMBER_TIMEOUT_RUNNING;
                return ember__fail(-EMBER_ETIMEDOUT,
                                   "pool '%s': deadline passed while the call ran; it is cancelled, "
                                   "and its runner killed if it runs on past the kill grace",
                                   c->name);
            }
            break;
        }
        default:
            return -EMBER_ESTALE;
        }
    }
}

/* Is W (slot word) still the call ID? After submission a call's slot is
 * QUEUED, RUNNING or DONE in its generation; any other state (FREE after
 * release, ABANDONED after a deadline) means the id was already collected. */
static inline bool ember__id_live(uint32_t w, ember_call_id id)
{
    uint32_t st = ember__st(w);
    return ember__gen(w) == id.gen &&
           (st == EMBER_SLOT_QUEUED || st == EMBER_SLOT_RUNNING || st == EMBER_SLOT_DONE);
}

/* Check the arguments of ember_wait / ember_poll (WHO): clears RES and
 * reads the call's slot word into *W; 0, or the error (also in res->status
 * once RES is known). */
static int ember__id_check(ember_client *c, ember_call_id id, ember_result *res, uint32_t *w,
                           const char *who)
{
    if (!c || !res || id.idx >= c->v.nslots) return ember__fail(-EMBER_EINVAL, "%s: bad argument", who);
    ember__result_clear(res);
    struct ember_slot *s = &c->v.slots[id.idx];
    *w = atomic_load_explicit(&s->state, memory_order_acquire);
    if (!ember__id_live(*w, id) || s->owner != c->caller_idx)
        return res->status = ember__fail(-EMBER_ESTALE, "stale call id %u/%u", id.idx, id.gen);
    return 0;
}

EMBER_API int ember_poll(ember_client *c, ember_call_id id, ember_result *res)
{
    uint32_t w = 0;
    int rc = ember__id_check(c, id, res, &w, "ember_poll");
    if (rc) return rc;
    struct ember_slot *s = &c->v.slots[id.idx];
    if (ember__st(w) == EMBER_SLOT_DONE) return res->status = ember__collect(c, id.idx, w, res);
    if (ember__now_ns() >= s->deadline_ns) return res->status = ember__expire(c, id.idx, id.gen, res);
    rc = ember__pool_alive(c);
    if (rc) return res->status = rc;
    return -EMBER_EAGAIN;
}

/* Wait for call ID of this client, queued with DEADLINE; W: its slot word
 * as last seen, or 0 when not looked at yet (right after submitting it). */
static int ember__wait(ember_client *c, ember_call_id id, uint64_t deadline, uint32_t w,
                       ember_result *res)
{
    struct ember__view *v = &c->v;
    struct ember_slot *s = &v->slots[id.idx];
    /* A warm call's result arrives within a few hundred ns: look for it for
     * a few dozen pauses before counting this thread as a spinner, so that
     * the shared counter's line does not travel on every call. Each look
     * comes after a pause: a look right after the push would find nothing,
     * and would take the slot's line from a runner that has just taken it. */
    if (ember__st(w) != EMBER_SLOT_DONE && !ember__woke_runner)
        for (unsigned i = 0; i < EMBER__SPIN_QUIET; i++) {
            ember__cpu_relax();
            w = atomic_load_explicit(&s->state, memory_order_acquire);
            if (ember__st(w) == EMBER_SLOT_DONE) break;
        }
    else if (w == 0)
        w = atomic_load_explicit(&s->state, memory_order_acquire);
    /* then spin, while spinners do not outnumber CPUs */
    _Atomic uint32_t *mine = &v->callers[c->caller_idx].spinning;
    if (ember__st(w) != EMBER_SLOT_DONE) atomic_fetch_add_explicit(mine, 1, memory_order_relaxed);
    if (ember__st(w) != EMBER_SLOT_DONE &&
        ember__spinners(atomic_fetch_add_explicit(&v->hdr->spin, 1, memory_order_relaxed)) <
            (int32_t)v->ncpus) {
        bool woke = ember__woke_runner;
        uint32_t budget = woke && ember__spin_budget < EMBER__SPIN_AFTER_WAKE_NS
                              ? EMBER__SPIN_AFTER_WAKE_NS : ember__spin_budget;
        uint64_t stop = 0;
        for (unsigned i = 1;; i++) {
            w = atomic_load_explicit(&s->state, memory_order_acquire);
            if (ember__st(w) == EMBER_SLOT_DONE) break;
            /* after a wake-up the runner may have been placed on this very CPU:
             * yield to it rather than keep it off the CPU */
            if (woke) sched_yield();
            else ember__spin_step(i);
            if ((i & 255) == 0 || (woke && (i & 7) == 0)) { /* the clock costs as much as a cache miss: rarely */
                uint64_t now = ember__now_ns();
                if (!stop) stop = now + budget;
                else if (now >= stop) break;
            }
        }
        atomic_fetch_sub_explicit(&v->hdr->spin, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(mine, 1, memory_order_relaxed);
        if (!woke) { /* a wake-up's latency says nothing about the handler's */
            if (ember__st(w) == EMBER_SLOT_DONE) ember__spin_won(); else ember__spin_lost();
        }
    } else if (ember__st(w) != EMBER_SLOT_DONE) {
        atomic_fetch_sub_explicit(&v->hdr->spin, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(mine, 1, memory_order_relaxed);
    }
    /* park: the standard loop - check, announce (WAITER), re-check, sleep */
    while (ember__st(w) != EMBER_SLOT_DONE) {
        if (!ember__id_live(w, id)) return res->status = -EMBER_ESTALE;
        if ((w & EMBER_SLOT_CANCEL) && ember__st(w) == EMBER_SLOT_QUEUED) {
            if (!ember__slot_free(v, id.idx, w)) { /* a runner took it first */
                w = atomic_load_explicit(&s->state, memory_order_acquire);
                continue;
            }
            return res->status = ember__fail(-EMBER_ECANCELLED, "pool '%s': the call was "
                                             "cancelled while queued; it never ran", c->name);
        }
        uint64_t now = ember__now_ns();
        if (now >= deadline) return res->status = ember__expire(c, id.idx, id.gen, res);
        if (!(w & EMBER_SLOT_WAITER)) {
            if (!atomic_compare_exchange_strong(&s->state, &w, w | EMBER_SLOT_WAITER)) continue;
            w |= EMBER_SLOT_WAITER;
        }
        /* bounded sleep: a dead supervisor is noticed within 200 ms */
        uint64_t until = now + 200000000ull;
        ember__futex_wait(&s->state, w, until < deadline ? until : deadline);
        w = atomic_load_explicit(&s->state, memory_order_acquire);
        if (ember__st(w) != EMBER_SLOT_DONE) {
            int rc = ember__pool_alive(c);
            if (rc) return res->status = rc;
        }
    }
    return res->status = ember__collect(c, id.idx, w, res);
}

EMBER_API int ember_wait(ember_client *c, ember_call_id id, ember_result *res)
{
    uint32_t w = 0;
    int rc = ember__id_check(c, id, res, &w, "ember_wait");
    if (rc) return rc;
    return ember__wait(c, id, c->v.slots[id.idx].deadline_ns, w, res);
}

EMBER_API int ember_call_flags(ember_client *c, int h, const void *args, size_t len,
                               ember_result *res, int64_t timeout_ns, unsigned flags)
{
    ember_call_id id;
    if (!res) return ember__fail(-EMBER_EINVAL, "ember_call: res is NULL");
    ember__woke_runner = false;
    ember__result_clear(res);
    if (!c) return res->status = ember__fail(-EMBER_EINVAL, "client is NULL");
    int rc = ember__bad_flags(flags);
    if (rc) return res->status = rc;
    uint64_t deadline = ember__deadline(c, timeout_ns);
    rc = ember__submit(c, h, args, len, deadline, deadline, flags, &id);
    if (rc) return res->status = rc;
    return ember__wait(c, id, deadline, 0, res); /* the id is ours: no checks */
}

EMBER_API int ember_call(ember_client *c, int h, const void *args, size_t len, ember_result *res,
                         int64_t timeout_ns)
{
    return ember_call_flags(c, h, args, len, res, timeout_ns, 0);
}

EMBER_API int ember_cancel(ember_client *c, ember_call_id id)
{
    if (!c || id.idx >= c->v.nslots) return ember__fail(-EMBER_EINVAL, "ember_cancel: bad argument");
    struct ember_slot *s = &c->v.slots[id.idx];
    uint32_t w = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        if (!ember__id_live(w, id) || s->owner != c->caller_idx)
            return ember__fail(-EMBER_ESTALE, "stale call id %u/%u", id.idx, id.gen);
        if (ember__st(w) == EMBER_SLOT_DONE || (w & EMBER_SLOT_CANCEL)) return 0;
        if (atomic_compare_exchange_strong(&s->state, &w, w | EMBER_SLOT_CANCEL)) break;
    }
    /* the supervisor starts the kill_grace clock when it looks */
    if (ember__st(w) == EMBER_SLOT_RUNNING) ember__ring_doorbell(&c->v);
    return 0;
}

EMBER_API int ember_place_child(ember_client *c, int h, const void *args, size_t len,
                                int64_t timeout_ns, unsigned flags, ember_child *ch)
{
    if (!c || !ch) return ember__fail(-EMBER_EINVAL, "ember_place_child: bad argument");
    memset(ch, 0, sizeof *ch);
    ch->pidfd = -1;
    ch->runner = EMBER_NONE;
    int rc = ember__bad_flags(flags);
    if (rc) return rc;
    struct ember__view *v = &c->v;
    uint64_t start_by = ember__deadline(c, timeout_ns);
    ember_call_id id;
    rc = ember__submit(c, h, args, len, start_by, UINT64_MAX, flags | EMBER_CALL_CHILD, &id);
    if (rc) return rc;
    struct ember_slot *s = &v->slots[id.idx];
    uint32_t w = atomic_load_explicit(&s->state, memory_order_acquire);
    /* wait until a runner runs it (STARTED) or it is already over (DONE) */
    for (;;) {
        if (ember__gen(w) != id.gen) return ember__fail(-EMBER_ECORRUPT, "child slot reused");
        uint32_t st = ember__st(w);
        if (st == EMBER_SLOT_DONE || (st == EMBER_SLOT_RUNNING && (w & EMBER_SLOT_STARTED))) break;
        uint64_t now = ember__now_ns();
        if (now >= start_by && st == EMBER_SLOT_QUEUED) {
            if (ember__slot_free(v, id.idx, w))
                return ember__fail(-EMBER_ETIMEDOUT, "pool '%s': no runner took the child "
                                   "before the timeout; it never ran", c->name);
            w = atomic_load_explicit(&s->state, memory_order_acquire);
            continue;
        }
        if (!(w & EMBER_SLOT_WAITER)) {
            if (!atomic_compare_exchange_strong(&s->state, &w, w | EMBER_SLOT_WAITER)) continue;
            w |= EMBER_SLOT_WAITER;
        }
        uint64_t until = now + 200000000ull;
        if (st == EMBER_SLOT_QUEUED && start_by < until) until = start_by;
        ember__futex_wait(&s->state, w, until);
        w = atomic_load_explicit(&s->state, memory_order_acquire);
        if (ember__st(w) != EMBER_SLOT_DONE && !(w & EMBER_SLOT_STARTED) &&
            (rc = ember__pool_alive(c)) != 0) {
            ember__slot_disown(v, id.idx, id.gen, false);
            return rc;
        }
    }
    ch->id = id;
    ch->runner = s->runner == EMBER_SLOT_NO_RUNNER ? EMBER_NONE : s->runner;
    if (ch->runner < v->nrunners) {
        struct ember_runner_ent *re = &v->runners[ch->runner];
        uint32_t pid = atomic_load(&re->pid);
        if ((uint16_t)atomic_load(&re->gen) == s->runner_gen && pid) {
            ch->pid = (int)pid;
            ch->pidfd = ember__pidfd_open((pid_t)pid);
        }
    }
    return 0;
}

EMBER_API int ember_child_wait(ember_client *c, ember_child *ch, ember_result *res)
{
    if (!c || !ch || !res) return ember__fail(-EMBER_EINVAL, "ember_child_wait: bad argument");
    int rc = ember_wait(c, ch->id, res);
    if (ch->pidfd >= 0) close(ch->pidfd);
    ch->pidfd = -1;
    return rc;
}

EMBER_API int ember_child_stop(ember_client *c, ember_child *ch, ember_result *res)
{
    if (!c || !ch || !res) return ember__fail(-EMBER_EINVAL, "ember_child_stop: bad argument");
    int rc = ember_cancel(c, ch->id);
    if (rc) {
        ember__result_clear(res);
        return res->status = rc;
    }
    return ember_child_wait(c, ch, res);
}

EMBER_API void ember_result_release(ember_client *c, ember_result *res)
{
    if (!c || !res || res->_idx == EMBER_NONE || res->_idx >= c->v.nslots) return;
    uint32_t w = atomic_load_explicit(&c->v.slots[res->_idx].state, memory_order_acquire);
    if (ember__gen(w) == res->_gen && ember__st(w) == EMBER_SLOT_DONE)
        ember__slot_recycle(c, res->_idx, w);
    res->_idx = EMBER_NONE;
    res->data = NULL;
}

EMBER_API int ember_events_read(ember_client *c, uint64_t *cursor, ember_event *ev, int n)
{
    if (!c || !cursor || (n > 0 && !ev) || n < 0)
        return ember__fail(-EMBER_EINVAL, "ember_events_read: bad argument");
    uint64_t next = atomic_load_explicit(&c->v.hdr->ev_next, memory_order_acquire);
    uint64_t cur = *cursor;
    if (cur > next) cur = next; /* a cursor from another pool's life */
    if (next - cur > EMBER_EVENT_RING) cur = next - EMBER_EVENT_RING;
    int k = 0;
    for (; k < n && cur < next; cur++) {
        struct ember_event_ent *e = &c->v.events[cur % EMBER_EVENT_RING];
        if (atomic_load_explicit(&e->seq, memory_order_acquire) != cur + 1) continue; /* overwritten */
        ember_event *o = &ev[k];
        memset(o, 0, sizeof *o);
        o->seq = cur;
        o->time_ns = e->time_ns;
        o->type = (int)e->type;
        o->runner = e->runner;
        o->runners = e->runners;
        o->reason = (int)e->reason;
        o->ok = e->ok;
        o->count = e->count;
        o->status = e->status;
        o->signal = e->signal;
        memcpy(o->msg, e->msg, sizeof o->msg);
        o->msg[sizeof o->msg - 1] = 0;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&e->seq, memory_order_relaxed) != cur + 1) continue; /* torn */
        snprintf(o->pool, sizeof o->pool, "%s", c->name);
        k++;
    }
    *cursor = cur;
    return k;
}

EMBER_API int ember_resize(ember_client *c, unsigned min, unsigned max)
{
    if (!c) return ember__fail(-EMBER_EINVAL, "ember_resize: client is NULL");
    return ember__resize(&c->v, c->name, min, max);
}

EMBER_API int ember_stop(ember_client *c, int64_t shutdown_timeout_ns)
{
    if (!c) return ember__fail(-EMBER_EINVAL, "ember_stop: client is NULL");
    return ember__stop_supervisor(&c->v, c->name, c->sup_pidfd, shutdown_timeout_ns);
}

EMBER_API int ember_wait_ready(ember_client *c, unsigned n, int64_t timeout_ns)
{
    if (!c) return ember__fail(-EMBER_EINVAL, "ember_wait_ready: client is NULL");
    return ember__wait_ready(&c->v, c->name, c->sup_pidfd, n, timeout_ns);
}

EMBER_API const char *ember_why_name(int reason)
{
    static const char *const names[] = { "none", "min", "demand", "idle", "resize", "max_jobs",
                                         "max_rss", "single_use", "crash", "deadline",
                                         "boot_failed", "boot_timeout", "stop", "cancelled" };
    return reason >= 0 && reason < (int)(sizeof names / sizeof names[0]) ? names[reason] : "unknown";
}

#endif /* !EMBER_CLIENT_INTERNALS_ONLY */
#pragma GCC diagnostic pop
#endif /* EMBER_CLIENT_IMPLEMENTED */
#endif /* EMBER_CLIENT_IMPLEMENTATION || EMBER_CLIENT_INTERNALS_ONLY */
