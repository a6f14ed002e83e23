/* loop_poll.c - the supervisor's fallback event loop: ppoll + a futex thread.
 *
 * For kernels or containers that refuse io_uring (kernel.io_uring_disabled,
 * seccomp). A helper thread sleeps on the doorbell futex and turns each
 * change into an eventfd write; the main thread ppoll()s the eventfd, the
 * signalfd and the pidfds. Same one-shot watch semantics as the io_uring
 * back-end. The helper only ever touches the doorbell word and the eventfd. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include "internal.h"

struct ember_loop {
    _Atomic uint32_t *db;
    _Atomic int stop;
    int efd;
    pthread_t th;
    struct pollfd *pfd;
    uint64_t *tags;
    int n, cap;
};

static void *doorbell_thread(void *arg)
{
    struct ember_loop *l = arg;
    uint32_t seen = atomic_load(l->db);
    while (!atomic_load(&l->stop)) {
        ember__futex_wait(l->db, seen, 0);
        uint32_t now = atomic_load(l->db);
        if (now != seen) {
            seen = now;
            uint64_t one = 1;
            if (write(l->efd, &one, sizeof one) < 0) { /* counter saturated: already signalled */ }
        }
    }
    return NULL;
}

static int p_init(struct ember_loop **lp, _Atomic uint32_t *doorbell)
{
    struct ember_loop *l = calloc(1, sizeof *l);
    if (!l) return -ENOMEM;
    l->db = doorbell;
    l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->efd < 0) {
        int e = errno;
        free(l);
        return -e;
    }
    int rc = pthread_create(&l->th, NULL, doorbell_thread, l);
    if (rc) {
        close(l->efd);
        free(l);
        return -rc;
    }
    *lp = l;
    return 0;
}

static int p_add_fd(struct ember_loop *l, int fd, uint64_t tag)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        struct pollfd *p = realloc(l->pfd, (size_t)(cap + 1) * sizeof *p);
        if (!p) return -ENOMEM;
        l->pfd = p;
        uint64_t *t = realloc(l->tags, (size_t)(cap + 1) * sizeof *t);
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
    if (p_add_fd(l, l->efd, ~0ull) < 0) return -ENOMEM; /* the eventfd, last */
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tp = &ts;
    }
    int rc = ppoll(l->pfd, (nfds_t)l->n, tp, NULL);
    l->n--; /* the eventfd is not a watch */
    if (rc < 0) return errno == EINTR ? 0 : -errno;
    int n = 0;
    if (l->pfd[l->n].revents) {
        uint64_t v;
        if (read(l->efd, &v, sizeof v) < 0) { /* nothing to read: spurious */ }
        ev[n++] = (struct ember_loop_ev){ EMBER_EV_DOORBELL, 0 };
    }
    for (int i = 0; i < l->n && n < max;) {
        if (l->pfd[i].revents) {
            ev[n++] = (struct ember_loop_ev){ EMBER_EV_FD, l->tags[i] };
            drop(l, i);
        } else {
            i++;
        }
    }
    return n;
}

static void p_destroy(struct ember_loop *l)
{
    atomic_store(&l->stop, 1);
    atomic_fetch_add(l->db, 1);
    ember__futex_wake(l->db, INT_MAX);
    pthread_join(l->th, NULL);
    close(l->efd);
    free(l->pfd);
    free(l->tags);
    free(l);
}

static void p_close_in_child(struct ember_loop *l) { close(l->efd); }

const struct ember_loop_ops ember__loop_poll = {
    "poll", p_init, p_add_fd, p_del_fd, p_wait, p_destroy, p_close_in_child,
};
