/* internal.h - what libember's files share and nothing else sees. */
#ifndef EMBER_INTERNAL_H
#define EMBER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#ifndef EMBER_CLIENT_IMPLEMENTATION
#define EMBER_CLIENT_INTERNALS_ONLY
#endif
#include "ember/pool.h"

#define EMBER_MAX_HANDLERS 256

struct ember__handler { char name[EMBER_NAME_MAX]; ember_handler_fn fn; };
extern struct ember__handler ember__handlers[EMBER_MAX_HANDLERS];
extern unsigned ember__nhandlers;
void ember__builtin_handlers(void);
/* "ember.fn", the built-in behind ember_call_fn (callfn.c): its -EMBER_EIMAGE
 * is the call's status, not a handler error */
#define EMBER__FN_HANDLER 2
int ember__fn_handler(const void *args, size_t len, ember_out *out, const ember_job *job);

/* segment.c: create, size and lay out a pool's segment; on success *V is the
 * creator's view and *FD the segment's fd. */
int ember__segment_create(const struct ember_pool_config *cfg, struct ember__view *v);
void ember__shm_unlink(const char *name);
/* Remove NAME's segment if the supervisor it names is gone. */
void ember__unlink_if_stale(const char *name);

/* Event loop back-ends of the supervisor (loop_uring.c, loop_poll.c).
 * Watches are one-shot: a watched fd reported readable is no longer watched. */
enum { EMBER_EV_FD = 1, EMBER_EV_DOORBELL = 2 };
struct ember_loop_ev { int kind; uint64_t tag; };
struct ember_loop;
struct ember_loop_ops {
    const char *name;
    int  (*init)(struct ember_loop **lp, _Atomic uint32_t *doorbell);
    int  (*add_fd)(struct ember_loop *l, int fd, uint64_t tag);
    void (*del_fd)(struct ember_loop *l, int fd, uint64_t tag);
    /* wait up to timeout_ns (<0: no limit); returns events written (0 on timeout) or -errno */
    int  (*wait)(struct ember_loop *l, int64_t timeout_ns, struct ember_loop_ev *ev, int max);
    void (*close_in_child)(struct ember_loop *l);
};
extern const struct ember_loop_ops ember__loop_uring, ember__loop_poll;

/* The pool's placement plan (placement.h), made by ember_pool_start() in the
 * application and inherited through fork by the supervisor and runners. */
struct ember__placement;
extern struct ember__placement *ember__plan;
extern void *ember__topology; /* hwloc_topology_t */

/* supervisor.c: runs in the forked supervisor; never returns. */
_Noreturn void ember__supervisor_main(struct ember__view *v, pid_t app,
                                      const struct ember_pool_config *cfg);

/* runner.c: runs in a forked runner; never returns. */
_Noreturn void ember__runner_main(struct ember__view *v, uint32_t idx, uint32_t gen,
                                  pid_t supervisor, const struct ember_pool_config *cfg);

#endif
