/* lib/internal.h - what libember's parts (lib, supervisor, runner) share.
 *
 * The runtime itself (rings, slots, pages, waits, the segment view) is in
 * the header-only detail headers, shared with every client; this adds what
 * only the processes of a pool's own program know: the handler table, the
 * placement plan, and the entry points of the supervisor and the runner.
 * Nothing outside libember includes it (tests reach internals through
 * lib/testing.h). */
#ifndef EMBER_LIB_INTERNAL_H
#define EMBER_LIB_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "ember/pool.h"
#include "ember/plugin.h"
#include "ember/detail/control.h"
#include "ember/detail/pages.h"
#include "ember/detail/metrics.h"

#define EMBER_MAX_HANDLERS 256

/* handlers.c: the registry, inherited by runners through fork. A handler
 * is FN, or a plugin's PFN called with CTX: what its INIT (NULL: none) made
 * in this runner, at the runner's start (runner.c), before the workers
 * exist; FINI (NULL: none) gets it back at the runner's normal exit. */
struct ember__handler {
    char name[EMBER_NAME_MAX];
    ember_handler_fn fn;
    ember_plugin_fn pfn;
    int (*init)(void **ctx);
    void (*fini)(void *ctx);
    void *ctx;
};
extern struct ember__handler ember__handlers[EMBER_MAX_HANDLERS];
extern unsigned ember__nhandlers;
void ember__builtin_handlers(void);
/* Is NAME a handler's name (1-39 of [A-Za-z0-9_.-])? */
bool ember__handler_name_ok(const char *name);
/* The id of the handler NAME, or -1. */
int ember__handler_find(const char *name);
/* Append H (its name checked, not taken, a place left: the caller's). */
void ember__handler_add(const struct ember__handler *h);
/* "ember.fn", the built-in behind ember_call_fn (callfn.c): its -EMBER_EIMAGE
 * is the call's status, not a handler error */
#define EMBER__FN_HANDLER 2
int ember__fn_handler(const void *args, size_t len, ember_out *out, const ember_job *job);

/* plugin.c: load each plugin of LIST (names or paths, comma-separated;
 * NULL: none): 0 or ember_plugin_load()'s failure. */
int ember__plugins_load(const char *list);

/* segment.c: create, size and lay out a pool's segment; on success *V is
 * the creator's view of it, with the segment's descriptor open (v->shm_fd).
 * The _held form also returns *FD, the segment open (another description)
 * with the starting lock held (proc.h): ember_pool_start() keeps it until
 * the supervisor serves; the other holds no lock (tests play the
 * supervisor with it). Returns 0, -EMBER_EEXIST, -EMBER_ENOSPC (/dev/shm
 * cannot hold it; the message names the sizes and the option to lower), a
 * system failure. */
int ember__segment_create(const struct ember_pool_config *cfg, struct ember__view *v);
int ember__segment_create_held(const struct ember_pool_config *cfg, struct ember__view *v,
                               int *fd);
void ember__shm_unlink(const char *name);
/* Remove NAME's segment if nobody holds its locks (proc.h): its
 * supervisor is gone, even if not reaped yet. */
void ember__unlink_if_stale(const char *name);

/* The pool's placement plan (placement.h), made by ember_pool_start() in the
 * application and inherited through fork by the supervisor and runners. */
struct ember__placement;
extern struct ember__placement *ember__plan;
extern void *ember__topology; /* hwloc_topology_t */

/* supervisor/supervisor.c: runs in the forked supervisor; never returns.
 * SEG_FD: the application's descriptor of the segment (inherited through
 * the fork), closed here once the supervisor holds its own lock. */
_Noreturn void ember__supervisor_main(struct ember__view *v, pid_t app,
                                      const struct ember_pool_config *cfg, int seg_fd);
/* For tests (lib/testing.h): asked by the supervisor before it watches the
 * pidfd of process PID (a runner or a caller); true makes that watch fail
 * as the kernel fails one (its POLL_ADD completes with -EBADF; ppoll says
 * POLLNVAL). NULL: never. */
extern bool (*ember__test_fail_watch)(pid_t pid);

/* lib/log.c: one log line on stderr (ember_log's format, pool.h) with TAG
 * ("ember[PID]: ", or NULL) before the message; errno is kept. */
void ember__log_v(int prio, const char *tag, const char *fmt, va_list ap);
/* SEC seconds (and MS milliseconds) since the epoch as RFC 3339 text in
 * UTC, "2026-12-05T23:52:20.123+00:00", into BUF (LEN bytes, 30 enough);
 * returns its length. Takes no lock (safe in a child forked from threads). */
size_t ember__time_text(char *buf, size_t len, int64_t sec, unsigned ms);

/* runner/runner.c: runs in a forked runner; never returns. */
_Noreturn void ember__runner_main(struct ember__view *v, uint32_t idx, uint32_t gen,
                                  pid_t supervisor, const struct ember_pool_config *cfg);

#endif
