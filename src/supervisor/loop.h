/* supervisor/loop.h - the supervisor's event loop, behind one small interface.
 *
 * Two back-ends: io_uring (loop_uring.c, the default) and ppoll with a
 * doorbell tick (loop_poll.c) where io_uring is refused. Both report a
 * watched fd that turned readable (a pidfd: that process ended; the
 * signalfd), a watch that failed, and the doorbell word changing. Watches
 * are one-shot: a fd reported, readable or failed, is no longer watched
 * until added again. A failed watch (its POLL_ADD completed with an error,
 * or ppoll said POLLNVAL or POLLERR) says nothing about the fd: the user
 * watches it again later, or looks at it with a check that cannot block. */
#ifndef EMBER_SUPERVISOR_LOOP_H
#define EMBER_SUPERVISOR_LOOP_H

#include <stdint.h>
#include "ember/abi.h"

/* what a loop reports (not to be confused with the pool's EMBER_EV_* events) */
enum { EMBER__LOOP_FD = 1, EMBER__LOOP_DOORBELL = 2, EMBER__LOOP_FD_FAILED = 3 };
/* err: EMBER__LOOP_FD_FAILED's errno */
struct ember_loop_ev { int kind; uint64_t tag; int err; };
struct ember_loop;
struct ember_loop_ops {
    const char *name;
    int  (*init)(struct ember_loop **lp, EMBER_ATOMIC(uint32_t) *doorbell);
    /* watch FD until it is readable; 0 or -errno */
    int  (*add_fd)(struct ember_loop *l, int fd, uint64_t tag);
    void (*del_fd)(struct ember_loop *l, int fd, uint64_t tag);
    /* wait up to timeout_ns (<0: no limit); returns events written (0 on timeout) or
     * -errno (the wait itself failed: what it watched may have fired unseen) */
    int  (*wait)(struct ember_loop *l, int64_t timeout_ns, struct ember_loop_ev *ev, int max);
    void (*close_in_child)(struct ember_loop *l);
};
extern const struct ember_loop_ops ember__loop_uring, ember__loop_poll;

#endif
