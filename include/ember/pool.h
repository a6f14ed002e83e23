/* ember/pool.h - libember: handlers, pools, runners.
 *
 * A program registers named handlers, then starts a pool: ember forks a
 * supervisor from the program, which forks runner processes; runners carry
 * the program's code, so every registered handler can run there. Any process
 * can then call into the pool through <ember/client.h>.
 *
 * Returns: 0 or a negative code (-errno or -EMBER_E..., see client.h).
 */
#ifndef EMBER_POOL_H
#define EMBER_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "client.h"

typedef struct ember_out ember_out;   /* where a handler writes its result */

/* What a handler knows of the call it runs. Read-only. */
typedef struct ember_job {
    uint64_t deadline_ns;             /* CLOCK_MONOTONIC, absolute */
    uint32_t runner;                  /* runner table index */
    int      node;                    /* NUMA node of the runner */
    const _Atomic uint32_t *_state;   /* private */
    uint32_t _gen;                    /* private */
} ember_job;

/* A handler: returns 0 on success; any other value fails the call with
 * EMBER_EHANDLER and that value as the result's detail. */
typedef int (*ember_handler_fn)(const void *args, size_t len, ember_out *out,
                                const ember_job *job);

/* Register FN under NAME (1-39 of [A-Za-z0-9_.-]) before ember_pool_start().
 * Returns 0, -EMBER_EINVAL (bad name, NULL fn, after start), -EMBER_EEXIST. */
int ember_handler_register(const char *name, ember_handler_fn fn);

/* Append N bytes to the result. Returns 0, -EMBER_ETOOBIG (over max_payload)
 * or -EMBER_EFULL (no shared pages before the deadline). */
int ember_out_write(ember_out *out, const void *p, size_t n);
/* Room for N more bytes of result, to fill in place; NULL on the errors of
 * ember_out_write(). */
void *ember_out_reserve(ember_out *out, size_t n);

/* Has the caller given up on this job (deadline passed, caller gone)? */
bool ember_job_cancelled(const ember_job *job);
/* Nanoseconds left before the job's deadline (0 when past). */
uint64_t ember_job_remaining_ns(const ember_job *job);

struct ember_pool_config {
    const char *name;          /* pool name, also the segment's */
    unsigned runners;          /* runners kept up (default: online CPUs) */
    unsigned max_concurrency;  /* jobs per runner at once (default 1) */
    unsigned slots;            /* calls in flight, power of two (default 4096) */
    size_t   max_payload;      /* bytes per argument or result (default 64 MiB) */
    size_t   payload_space;    /* shared bytes for large payloads (default 4 x max_payload) */
    unsigned max_callers;      /* attached processes at once (default 256) */
    int64_t  timeout_ns;       /* default call timeout (default 30 s) */
};

/* Fill CFG with the defaults. */
void ember_pool_config_init(struct ember_pool_config *cfg);

typedef struct ember_pool ember_pool;

/* Start a pool: creates its segment, forks the supervisor, which forks the
 * runners. Returns once the supervisor is up (runners boot on their own;
 * calls queue meanwhile). Returns 0, -EMBER_EINVAL (option named in
 * ember_last_error()), -EMBER_EEXIST (a live pool of that name), -errno. */
int ember_pool_start(const struct ember_pool_config *cfg, ember_pool **out);
/* Stop: no new calls; runners get SIGTERM, and SIGKILL after TIMEOUT_NS
 * (negative: 0); every call not finished gets EMBER_EPOOLDOWN; the
 * segment's name is removed. Frees the handle. Returns 0 or -errno. */
int ember_pool_stop(ember_pool *pool, int64_t timeout_ns);
/* Pid of the pool's supervisor. */
int ember_pool_supervisor_pid(const ember_pool *pool);
/* Wait until at least N runners are ready (or TIMEOUT_NS passes): 0 or
 * -EMBER_ETIMEDOUT, -EMBER_EPOOLDOWN. */
int ember_pool_wait_ready(ember_pool *pool, unsigned n, int64_t timeout_ns);

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

#endif
