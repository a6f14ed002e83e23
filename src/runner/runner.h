/* runner/runner.h - what the runner's files share.
 *
 *   runner.c   the process: binding, the boot callback, the control thread
 *   worker.c   the workers: take a call, run it, spin, park
 *   out.c      what a handler sees: its job, and ember_out for its result
 *   limits.c   what confines it: its memory cgroup, rlimits, no_new_privs
 * One runner process is one of these; ember__self is its identity. */
#ifndef EMBER_RUNNER_RUNNER_H
#define EMBER_RUNNER_RUNNER_H

#include "lib/internal.h"
#include "lib/exits.h"

/* Payload pages pass between this runner's threads through other
 * processes: a result run written by one worker is collected and freed by
 * its caller, and the page allocated again, as a result or as arguments a
 * caller wrote, to another worker. ThreadSanitizer sees only this
 * process's side of that chain and would call the second worker's bytes a
 * race with the first's. Under it, a worker releases the pages region once
 * its handler is done with it and acquires it before a handler runs and
 * after each allocation: the order the other processes provide. */
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define EMBER__PAGES_ACQUIRE(v) __tsan_acquire((v)->pages)
#define EMBER__PAGES_RELEASE(v) __tsan_release((v)->pages)
#else
#define EMBER__PAGES_ACQUIRE(v) ((void)(v))
#define EMBER__PAGES_RELEASE(v) ((void)(v))
#endif

/* Where a handler writes its result: inline bytes first, pages once it
 * outgrows them (out.c). */
struct ember_out {
    struct ember__view *v;
    struct ember_slot *s;
    uint32_t idx;
    unsigned char *buf;
    size_t len, cap;
    uint32_t page;
    uint64_t deadline;
    int err;       /* why the last reserve failed (0: none) */
    /* a reserve found no /dev/shm space (-EMBER_ENOSPC, or the system's
     * failure), and the KiB it wanted: the call fails with it, whatever
     * the handler returns (its result is not whole) */
    int space_err, space_kib;
    unsigned char inl[EMBER_INLINE_MAX];
};

/* This runner (written by its main thread before the workers start). */
struct ember__runner_self {
    struct ember__view *view;
    const struct ember_pool_config *cfg;
    uint32_t runner, gen;
    uint32_t ring;               /* our node's run ring */
    int32_t node;                /* our node's P#, -1 when not placed */
    ember_parent_info parent;
    bool is_runner;
    bool limited;                /* jobs_left counts */
    _Atomic bool draining;       /* this runner takes no new call */
    int cg_fd;                   /* its memory cgroup's cgroup.procs to join, -1: none
                                    (set by the supervisor's fork) */
};
extern struct ember__runner_self ember__self;

/* limits.c: join the runner's memory cgroup, set the pool's rlimits and
 * no_new_privs, in the runner right after its fork. A failure fails the
 * boot: its message in RE, exit status EMBER__EXIT_RUNNER_LIMITS
 * (lib/exits.h). */
void ember__runner_limits(struct ember_runner_ent *re, const struct ember_pool_config *cfg);

/* The request in slot S as a runner took it (its fields read once: handler
 * H, ALEN bytes of arguments at APAGE, EMBER_NONE when inline), checked
 * before a handler sees it, since a caller may have written anything there:
 * 0 with *ARGS its arguments (ALEN bytes inside the slot or the payload
 * pages; NULL when ALEN is 0 and the fields are out of bounds),
 * -EMBER_ENOHANDLER (H names none of the table's NHANDLERS, nor of the
 * segment's) or -EMBER_ECORRUPT (the arguments lie outside the segment).
 * Pure: the fuzz target tests/fuzz/fuzz_runner.c calls it as worker.c does. */
static inline int ember__request_check(struct ember__view *v, struct ember_slot *s, uint32_t h,
                                       uint32_t alen, uint32_t apage, unsigned nhandlers,
                                       const void **args)
{
    *args = ember__payload(v, s, alen, apage);
    if (h >= v->nhandlers || h >= nhandlers) return -EMBER_ENOHANDLER;
    if (!*args && alen) return -EMBER_ECORRUPT;
    return 0;
}

/* worker.c */
struct worker_arg { uint32_t wi; pthread_t th; };
void *ember__worker_main(void *arg);
/* Run the call behind run-ring entry E in worker WE's thread, writing its
 * result through O, if its slot still agrees: the whole of a request's
 * handling, from its take to its DONE (the fuzz target
 * tests/fuzz/fuzz_runner.c calls it with slots of its making). */
void ember__run_entry(struct ember__view *v, uint32_t e, ember_out *o, struct ember_worker_ent *we);
/* Stop taking calls, for REASON; the control thread then ends the runner. */
void ember__drain_self(struct ember__view *v, uint32_t reason);
/* End this runner with STATUS, one of ember's own (lib/exits.h): its
 * meaning goes into the runner's entry, for the event that reports it. */
_Noreturn void ember__runner_exit(int status);

#endif
