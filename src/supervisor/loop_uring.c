/* supervisor/loop_uring.c - the supervisor's io_uring event loop back-end.
 *
 * One ring: POLL_ADD (one-shot) on pidfds and the signalfd, a FUTEX_WAIT on
 * the pool's doorbell word, and a TIMEOUT for the loop's own deadline.
 * liburing 2.3 has no futex helpers, so that SQE is filled by hand: opcode 51, fd = futex2 flags (FUTEX2_SIZE_U32, never
 * FUTEX2_PRIVATE: the word is shared), addr = the word, off = the expected
 * value, addr3 = the bitmask (all ones; zero is refused). It completes with 0
 * when woken and -EAGAIN when the word already differed; either way the
 * doorbell is reported and the wait re-armed with the word's current value.
 * Any other result is a failed wait: it is armed again no sooner than
 * EMBER__DOORBELL_RETRY_NS later (a wait that fails at once would otherwise
 * spin the loop), and meanwhile the word is compared by hand at least that
 * often, as loop_poll.c does. A POLL_ADD that completes with an error (or
 * without POLLIN) is reported as a failed watch, never as the fd readable.
 * init fails (and the supervisor falls back to loop_poll.c) when the kernel
 * refuses io_uring or lacks the futex opcode. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <liburing.h>
#include "lib/internal.h"
#include "supervisor/loop.h"

#define EMBER__OP_FUTEX_WAIT 51
#define EMBER__FUTEX2_SIZE_U32 0x02
#define TAG_DOORBELL (~0ull)
#define TAG_IGNORE (~0ull - 1)
#define TAG_TIMEOUT (~0ull - 2)
#define EMBER__DOORBELL_RETRY_NS 100000000ull

struct ember_loop {
    struct io_uring ring;
    _Atomic uint32_t *db;
    uint32_t db_seen;
    struct __kernel_timespec ts; /* the pending TIMEOUT's, alive until it completes */
    bool timeout_armed;
    bool db_armed;        /* a FUTEX_WAIT is pending */
    uint64_t db_retry_at; /* not armed: its last wait failed; arm it again from then */
};

static struct io_uring_sqe *get_sqe(struct ember_loop *l)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
    if (!sqe) {
        io_uring_submit(&l->ring);
        sqe = io_uring_get_sqe(&l->ring);
    }
    return sqe;
}

static int arm_doorbell(struct ember_loop *l)
{
    struct io_uring_sqe *sqe = get_sqe(l);
    if (!sqe) return -EBUSY;
    l->db_seen = atomic_load(l->db);
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = EMBER__OP_FUTEX_WAIT;
    sqe->fd = EMBER__FUTEX2_SIZE_U32;
    sqe->addr = (uint64_t)(uintptr_t)l->db;
    sqe->off = l->db_seen;
    sqe->addr3 = 0xffffffffull;
    sqe->user_data = TAG_DOORBELL;
    l->db_armed = true;
    return 0;
}

/* The doorbell wait completed with RES: report the doorbell (*RING) and arm
 * it again, or, for a failed wait, arm it later and look at the word by hand
 * meanwhile. */
static void doorbell_done(struct ember_loop *l, int res, bool *ring)
{
    l->db_armed = false;
    if (res == 0 || res == -EAGAIN || res == -EINTR) {
        *ring = true;
        return;
    }
    if (res == -ECANCELED) return; /* the ring is going away */
    l->db_retry_at = ember__now_ns() + EMBER__DOORBELL_RETRY_NS;
    *ring = atomic_load(l->db) != l->db_seen;
}

static int u_init(struct ember_loop **lp, EMBER_ATOMIC(uint32_t) *doorbell)
{
    struct ember_loop *l = calloc(1, sizeof *l);
    if (!l) return -ENOMEM;
    int rc = io_uring_queue_init(256, &l->ring, 0);
    if (rc < 0) {
        free(l);
        return rc;
    }
    struct io_uring_probe *p = io_uring_get_probe_ring(&l->ring);
    bool ok = p && io_uring_opcode_supported(p, IORING_OP_POLL_ADD) &&
              io_uring_opcode_supported(p, EMBER__OP_FUTEX_WAIT);
    if (p) io_uring_free_probe(p);
    if (!ok) {
        io_uring_queue_exit(&l->ring);
        free(l);
        return -ENOSYS;
    }
    l->db = doorbell;
    arm_doorbell(l);
    rc = io_uring_submit(&l->ring);
    if (rc < 0) {
        io_uring_queue_exit(&l->ring);
        free(l);
        return rc;
    }
    *lp = l;
    return 0;
}

static int u_add_fd(struct ember_loop *l, int fd, uint64_t tag)
{
    struct io_uring_sqe *sqe = get_sqe(l);
    if (!sqe) return -EBUSY;
    io_uring_prep_poll_add(sqe, fd, POLLIN);
    sqe->user_data = tag;
    return 0;
}

static void u_del_fd(struct ember_loop *l, int fd, uint64_t tag)
{
    (void)fd;
    struct io_uring_sqe *sqe = get_sqe(l);
    if (!sqe) return;
    io_uring_prep_poll_remove(sqe, tag);
    sqe->user_data = TAG_IGNORE;
    io_uring_submit(&l->ring);
}

/* One completion of a watch (POLL_ADD) tagged TAG with RES: the fd readable,
 * a failed watch, or nothing (a removed one). */
static int watch_done(uint64_t tag, int res, struct ember_loop_ev *ev)
{
    if (res == -ECANCELED) return 0; /* removed watch */
    if (res < 0 || !(res & POLLIN)) {
        *ev = (struct ember_loop_ev){ EMBER__LOOP_FD_FAILED, tag, res < 0 ? -res : EIO };
        return 1;
    }
    *ev = (struct ember_loop_ev){ EMBER__LOOP_FD, tag, 0 };
    return 1;
}

static int u_wait(struct ember_loop *l, int64_t timeout_ns, struct ember_loop_ev *ev, int max)
{
    uint64_t now = ember__now_ns();
    if (!l->db_armed && now >= l->db_retry_at) arm_doorbell(l);
    if (!l->db_armed) { /* its wait failed: look at the word by then at the latest */
        int64_t left = (int64_t)(l->db_retry_at - now);
        if (timeout_ns < 0 || timeout_ns > left) timeout_ns = left;
    }
    /* one IORING_OP_TIMEOUT at a time; it completes (-ETIME) when the time is
     * up or (0) as soon as any other completion arrives (count 1) */
    if (timeout_ns >= 0 && !l->timeout_armed) {
        struct io_uring_sqe *sqe = get_sqe(l);
        if (sqe) {
            l->ts.tv_sec = timeout_ns / 1000000000;
            l->ts.tv_nsec = timeout_ns % 1000000000;
            io_uring_prep_timeout(sqe, &l->ts, 1, 0);
            sqe->user_data = TAG_TIMEOUT;
            l->timeout_armed = true;
        }
    }
    int rc = io_uring_submit_and_wait(&l->ring, 1);
    /* EAGAIN, EBUSY: the completion queue is full; reaping it below makes room */
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) return rc;
    int n = 0;
    bool ring = false;
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&l->ring, head, cqe) {
        if (n >= max - 1) break; /* the rest stay for the next wait (one place kept: the doorbell) */
        seen++;
        if (cqe->user_data == TAG_IGNORE) continue;
        if (cqe->user_data == TAG_TIMEOUT) {
            l->timeout_armed = false;
            continue;
        }
        if (cqe->user_data == TAG_DOORBELL) {
            doorbell_done(l, cqe->res, &ring);
            continue;
        }
        n += watch_done(cqe->user_data, cqe->res, &ev[n]);
    }
    io_uring_cq_advance(&l->ring, seen);
    if (!l->db_armed && !ring && atomic_load(l->db) != l->db_seen) ring = true; /* by hand */
    if (ring && n < max) ev[n++] = (struct ember_loop_ev){ EMBER__LOOP_DOORBELL, 0, 0 };
    if (ring && !l->db_armed && ember__now_ns() >= l->db_retry_at) arm_doorbell(l);
    else if (ring) l->db_seen = atomic_load(l->db);
    return n;
}

static void u_close_in_child(struct ember_loop *l) { close(l->ring.ring_fd); }

const struct ember_loop_ops ember__loop_uring = {
    "uring", u_init, u_add_fd, u_del_fd, u_wait, u_close_in_child,
};
