/* supervisor/loop_poll.c - the supervisor's fallback event loop: ppoll and
 * a tick.
 *
 * For kernels or containers that refuse io_uring (kernel.io_uring_disabled,
 * seccomp). ppoll() watches the signalfd and the pidfds; since a futex cannot
 * be polled, the doorbell word is compared with its last value at least every
 * EMBER__DOORBELL_TICK_NS. What the doorbell announces (callers attaching
 * and detaching, growth requests, runners ready, cancels, resizes) waits
 * that long at most: a call is never held up by it, since runners take work
 * from the rings without the supervisor; growth and cancels are what may
 * start up to a tick late. A helper thread turning the futex into an eventfd
 * would remove the tick, but the supervisor stays single-threaded: it forks
 * runners, and a fork while another thread holds a lock (the allocator's,
 * say) would leave the runner deadlocked. Same one-shot watch semantics as
 * the io_uring back-end: a fd with POLLIN is readable; one with only
 * POLLNVAL, POLLERR or POLLHUP is a failed watch, dropped and reported as
 * such. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "lib/internal.h"
#include "supervisor/loop.h"

/* 50 ms: also the bound on reclaiming a caller killed before the supervisor
 * saw its attach (it is watched, found dead and reclaimed at the next look) */
#define EMBER__DOORBELL_TICK_NS 50000000ll

struct ember_loop {
    _Atomic uint32_t *db;
    uint32_t db_seen;
    struct pollfd *pfd;
    uint64_t *tags;
    int n, cap;
};

static int p_init(struct ember_loop **lp, EMBER_ATOMIC(uint32_t) *doorbell)
{
    struct ember_loop *l = calloc(1, sizeof *l);
    if (!l) return -ENOMEM;
    l->db = doorbell;
    l->db_seen = atomic_load(doorbell);
    *lp = l;
    return 0;
}

static int p_add_fd(struct ember_loop *l, int fd, uint64_t tag)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        struct pollfd *p = realloc(l->pfd, (size_t)cap * sizeof *p);
        if (!p) return -ENOMEM;
        l->pfd = p;
        uint64_t *t = realloc(l->tags, (size_t)cap * sizeof *t);
        if (!t) return -ENOMEM;
        l->tags = t;
        l->cap = cap;
    }
    l->pfd[l->n] = (struct pollfd){ .fd = fd, .events = POLLIN };
    l->tags[l->n] = tag;
    l->n++;
    return 0;
}

static void drop(struct ember_loop *l, int i)
{
    l->n--;
    l->pfd[i] = l->pfd[l->n];
    l->tags[i] = l->tags[l->n];
}

static void p_del_fd(struct ember_loop *l, int fd, uint64_t tag)
{
    for (int i = 0; i < l->n; i++)
        if (l->pfd[i].fd == fd && l->tags[i] == tag) {
            drop(l, i);
            return;
        }
}

static int p_wait(struct ember_loop *l, int64_t timeout_ns, struct ember_loop_ev *ev, int max)
{
    if (timeout_ns < 0 || timeout_ns > EMBER__DOORBELL_TICK_NS) timeout_ns = EMBER__DOORBELL_TICK_NS;
    struct timespec ts = { timeout_ns / 1000000000, timeout_ns % 1000000000 };
    int n = 0;
    uint32_t db = atomic_load(l->db);
    if (db == l->db_seen) {
        int rc = ppoll(l->pfd, (nfds_t)l->n, &ts, NULL);
        if (rc < 0 && errno != EINTR) return -errno;
        for (int i = 0; rc > 0 && i < l->n && n < max;) {
            short re = l->pfd[i].revents;
            if (re) {
                ev[n++] = re & POLLIN ? (struct ember_loop_ev){ EMBER__LOOP_FD, l->tags[i], 0 }
                                      : (struct ember_loop_ev){ EMBER__LOOP_FD_FAILED, l->tags[i],
                                                                re & POLLNVAL ? EBADF : EIO };
                drop(l, i);
            } else {
                i++;
            }
        }
        db = atomic_load(l->db);
    }
    if (db != l->db_seen && n < max) {
        l->db_seen = db;
        ev[n++] = (struct ember_loop_ev){ EMBER__LOOP_DOORBELL, 0, 0 };
    }
    return n;
}

static void p_close_in_child(struct ember_loop *l) { (void)l; }

const struct ember_loop_ops ember__loop_poll = {
    "poll", p_init, p_add_fd, p_del_fd, p_wait, p_close_in_child,
};
