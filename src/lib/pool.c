/* pool.c - starting and stopping a pool from the application.
 *
 * ember_pool_start() validates the options, creates the segment, and forks
 * the supervisor, which forks the runners; it returns once the supervisor
 * has published itself. The application then attaches as a caller like any
 * other process. With an event callback set (on_grow_start, on_grow_end,
 * on_shrink), it also starts a thread here, in the application, that reads
 * the pool's event ring and calls them: the supervisor never runs them, so
 * a callback that blocks holds up only later callbacks. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "lib/cgroup.h"
#include "lib/internal.h"
#include "lib/exits.h"
#include "lib/placement.h"
#include "lib/testing.h"

struct ember__placement *ember__plan;
void *ember__topology;

struct ember_pool {
    struct ember__view v;
    struct ember_pool_config cfg; /* normalized; the supervisor has its copy from the fork */
    pid_t sup;
    int sup_pidfd;
    int seg_fd;                   /* the segment with the starting lock, until the supervisor serves */
    char name[EMBER_NAME_MAX];
    /* the event thread (only with a callback set) */
    pthread_t ev_thread;
    bool ev_running;
    _Atomic uint32_t ev_stop;     /* set by ember_pool_stop(), which then bumps the epoch */
    uint64_t ev_cursor;
};

unsigned ember_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Setting a field of each kind of the option table to its default. */
static void ember__opt_set_EMBER_OPT_UINT(unsigned *f, unsigned long long v) { *f = (unsigned)v; }
static void ember__opt_set_EMBER_OPT_INT(int *f, long long v) { *f = (int)v; }
static void ember__opt_set_EMBER_OPT_U64(uint64_t *f, unsigned long long v) { *f = v; }
static void ember__opt_set_EMBER_OPT_SIZE(size_t *f, unsigned long long v) { *f = (size_t)v; }
static void ember__opt_set_EMBER_OPT_DURATION(int64_t *f, long long v) { *f = v; }
static void ember__opt_set_EMBER_OPT_BOOL(bool *f, int v) { *f = v != 0; }
static void ember__opt_set_EMBER_OPT_PLACEMENT(int *f, int v) { *f = v; }
static void ember__opt_set_EMBER_OPT_STRING(const char **f, const char *v) { *f = v; }

void ember_pool_config_init(struct ember_pool_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->name = "ember";
#define EMBER__XDEFAULT(name, field, kind, def, lo, hi, doc) ember__opt_set_##kind(&cfg->field, def);
    EMBER_POOL_OPTIONS(EMBER__XDEFAULT)
#undef EMBER__XDEFAULT
}

#define EMBER__RUNNERS_MAX 4096u

/* Range checks of the option table, by kind: the message names the option. */
static int range_uint(uint64_t v, uint64_t lo, uint64_t hi, const char *opt)
{
    if (v < lo || v > hi)
        return ember__fail(-EMBER_EINVAL, "option %s: %llu is not in %llu..%llu", opt,
                           (unsigned long long)v, (unsigned long long)lo, (unsigned long long)hi);
    return 0;
}
static int range_int(int64_t v, int64_t lo, int64_t hi, const char *opt)
{
    if (v < lo || v > hi) {
        if (lo == 1 && v < 1)
            return ember__fail(-EMBER_EINVAL, "option %s: %lld is not above zero", opt, (long long)v);
        return ember__fail(-EMBER_EINVAL, "option %s: %lld is not in %lld..%lld", opt, (long long)v,
                           (long long)lo, (long long)hi);
    }
    return 0;
}
#define EMBER__CHECK_EMBER_OPT_UINT(v, lo, hi, n)      range_uint(v, lo, hi, n)
#define EMBER__CHECK_EMBER_OPT_U64(v, lo, hi, n)       range_uint(v, lo, hi, n)
#define EMBER__CHECK_EMBER_OPT_SIZE(v, lo, hi, n)      range_uint(v, lo, hi, n)
#define EMBER__CHECK_EMBER_OPT_INT(v, lo, hi, n)       range_int(v, lo, hi, n)
#define EMBER__CHECK_EMBER_OPT_DURATION(v, lo, hi, n)  range_int(v, lo, hi, n)
#define EMBER__CHECK_EMBER_OPT_PLACEMENT(v, lo, hi, n) range_int(v, lo, hi, n)
#define EMBER__CHECK_EMBER_OPT_BOOL(v, lo, hi, n)      ((void)(v), 0)
#define EMBER__CHECK_EMBER_OPT_STRING(v, lo, hi, n)    ((void)(v), 0)

/* Check C and fill in what it leaves to ember (max_limit, the queue rounded
 * up). The message names the option. */
static int check_config(struct ember_pool_config *c)
{
    if (!ember__name_ok(c->name))
        return ember__fail(-EMBER_EINVAL, "option name: '%s' is not 1-39 of [A-Za-z0-9_.-]",
                           c->name ? c->name : "(null)");
    int rc = 0;
#define EMBER__XCHECK(name, field, kind, def, lo, hi, doc) \
    if (!rc) rc = EMBER__CHECK_##kind(c->field, lo, hi, #name);
    EMBER_POOL_OPTIONS(EMBER__XCHECK)
#undef EMBER__XCHECK
    if (rc) return rc;
    if (c->min > c->max)
        return ember__fail(-EMBER_EINVAL, "option min: %u is above max %u", c->min, c->max);
    if (c->max_limit == 0) {
        unsigned d = 4 * ember_online_cpus();
        c->max_limit = c->max > d ? c->max : d;
        if (c->max_limit > EMBER__RUNNERS_MAX) c->max_limit = EMBER__RUNNERS_MAX;
    }
    if (c->max_limit < c->max)
        return ember__fail(-EMBER_EINVAL, "option max_limit: %u is below max %u", c->max_limit, c->max);
    if ((uint64_t)c->max_limit * c->max_concurrency > 65536)
        return ember__fail(-EMBER_EINVAL, "options max_limit x max_concurrency: %u x %u threads is "
                           "above 65536", c->max_limit, c->max_concurrency);
    uint32_t q = 2;
    while (q < c->queue_capacity) q *= 2;
    c->queue_capacity = q;
    if (c->payload_space && c->payload_space < c->max_payload)
        return ember__fail(-EMBER_EINVAL, "option payload_space: %zu is below max_payload %zu",
                           c->payload_space, c->max_payload);
    if (c->single_use) c->max_jobs = 1;
    return 0;
}

/* The placement plan of the pool about to start: the topology is loaded
 * once per process (runners and supervisors inherit it through fork). */
static int make_plan(const struct ember_pool_config *c)
{
    if (!ember__topology) ember__topology = ember__topology_load();
    if (!ember__topology) return ember__fail(-EMBER_EINVAL, "hwloc could not load the topology");
    struct ember__placement *p = calloc(1, sizeof *p);
    if (!p) return ember__fail(-EMBER_ENOMEM, "ember_pool_start: no memory for the placement plan");
    char err[200];
    if (ember__placement_plan((hwloc_topology_t)ember__topology, c->placement, c->nodes, p, err,
                              sizeof err) < 0) {
        free(p);
        return ember__fail(-EMBER_EINVAL, "%s", err);
    }
    if (ember__plan) {
        ember__placement_free(ember__plan);
        free(ember__plan);
    }
    ember__plan = p;
    return 0;
}

/* Say in BUF how a pool process ended with wait status ST: its exit
 * status and what it means (lib/exits.h), or its signal. */
static void describe_end(int st, char *buf, size_t len)
{
    if (WIFSIGNALED(st)) {
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    } else {
        const char *m = ember__exit_meaning(WEXITSTATUS(st));
        snprintf(buf, len, "exit status %d (%s)", WEXITSTATUS(st), m ? m : "not one of ember's");
    }
}

/* Reap the supervisor PID (ended, or about to: never a long wait); its
 * wait status, or -1 if it cannot be had. */
static int reap_supervisor(pid_t pid)
{
    int st = 0;
    pid_t got;
    while ((got = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {}
    return got == pid ? st : -1;
}

/* With runner_memory_max: can this process make the pool's memory cgroup
 * (lib/cgroup.h)? Its supervisor will make it the same way. Tried after the
 * segment is made: no live pool has the name, so what the try sweeps up
 * belongs to none. */
static int check_cgroup(const struct ember_pool_config *c)
{
    if (!c->runner_memory_max) return 0;
    struct ember__cgroup cg;
    char why[200];
    if (ember__cgroup_pool_open(&cg, c->name, getpid(), why, sizeof why) < 0)
        return ember__fail(-EMBER_EINVAL, "option runner_memory_max: %s; start the pool without it, "
                           "or where a cgroup with the memory controller is writable", why);
    ember__cgroup_pool_close(&cg);
    return 0;
}

/* Fork the supervisor of P (its segment made) and wait until it has
 * published itself, or died trying: then its exit status or signal, and
 * what it means, are in ember_last_error(). */
static int supervisor_start(ember_pool *p)
{
    atomic_store(&p->v.hdr->pool_state, EMBER_POOL_STARTING);
    pid_t app = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) ember__supervisor_main(&p->v, app, &p->cfg, p->seg_fd);
    if (pid < 0) return ember__sys_fail(errno, "ember_pool_start: fork of the supervisor");
    p->sup = pid;
    p->sup_pidfd = ember__pidfd_open(pid);
    int rc = p->sup_pidfd < 0 ? ember__sys_fail(errno, "ember_pool_start: pidfd_open of the supervisor")
                              : 0;
    uint64_t until = ember__now_ns() + 5000000000ull;
    while (rc == 0) {
        uint32_t st = atomic_load(&p->v.hdr->pool_state);
        if (st == EMBER_POOL_RUNNING) return 0;
        if (ember__pidfd_dead(p->sup_pidfd)) {
            char how[200] = "its wait status is lost";
            int ws = reap_supervisor(pid);
            if (ws >= 0) describe_end(ws, how, sizeof how);
            return ember__fail(-EMBER_EBOOT, "pool '%s': the supervisor did not start: %s", p->name,
                               how);
        }
        if (st != EMBER_POOL_STARTING || ember__now_ns() > until)
            rc = ember__fail(-EMBER_EBOOT, "pool '%s': the supervisor did not start within 5 s "
                             "(pool state %u): killed", p->name, st);
        else
            ember__futex_wait(&p->v.hdr->pool_state, st, ember__now_ns() + 100000000ull);
    }
    kill(pid, SIGKILL);
    reap_supervisor(pid);
    if (p->sup_pidfd >= 0) close(p->sup_pidfd);
    return rc;
}

/* Call P's callback for event EV, if it has one. */
static void event_deliver(const ember_pool *p, const ember_event *ev)
{
    const struct ember_pool_config *c = &p->cfg;
    void (*cb)(const ember_event *, void *) =
        ev->type == EMBER_EV_GROW_START ? c->on_grow_start
        : ev->type == EMBER_EV_GROW_END ? c->on_grow_end
        : ev->type == EMBER_EV_SHRINK   ? c->on_shrink
                                        : NULL;
    if (cb) cb(ev, c->event_arg);
}

/* The event thread: read the ring from the start (the events of the boot
 * too), call the callbacks, sleep on the epoch futex (the supervisor bumps
 * it after each event). A reader 256 events behind loses the oldest (the
 * ring's size). Ends after ember_pool_stop() asked, once the ring is read
 * to its end: the stop's own events are delivered too. */
static void *event_thread(void *arg)
{
    ember_pool *p = arg;
    for (;;) {
        uint32_t ep = atomic_load(&p->v.hdr->epoch);
        /* seq_cst: read before the ring and the stop flag, so that an event
         * or a stop after this read changes the word the wait expects */
        bool stop = atomic_load(&p->ev_stop);
        ember_event ev[16];
        int n;
        while ((n = ember__events_copy(&p->v, p->name, &p->ev_cursor, ev, 16)) > 0)
            for (int i = 0; i < n; i++) event_deliver(p, &ev[i]);
        if (stop) return NULL;
        ember__futex_wait(&p->v.hdr->epoch, ep, 0);
    }
}

/* Start P's event thread if a callback is set: 0 or a failure. Signals
 * stay with the application's own threads. */
static int event_thread_start(ember_pool *p)
{
    if (!p->cfg.on_grow_start && !p->cfg.on_grow_end && !p->cfg.on_shrink) return 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = pthread_create(&p->ev_thread, NULL, event_thread, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) return ember__sys_fail(e, "ember_pool_start: the thread for the event callbacks");
    p->ev_running = true;
    return 0;
}

/* Let P's event thread deliver what is left, and join it. */
static void event_thread_stop(ember_pool *p)
{
    if (!p->ev_running) return;
    atomic_store(&p->ev_stop, 1);
    /* seq_cst after the flag: the thread reads the word, then the flag */
    atomic_fetch_add(&p->v.hdr->epoch, 1);
    ember__futex_wake(&p->v.hdr->epoch, INT_MAX);
    pthread_join(p->ev_thread, NULL);
    p->ev_running = false;
}

int ember_pool_start(const struct ember_pool_config *cfg, ember_pool **out)
{
    if (!cfg || !out) return ember__fail(-EMBER_EINVAL, "ember_pool_start: NULL argument");
    *out = NULL;
    ember_pool *p = calloc(1, sizeof *p);
    if (!p) return ember__fail(-EMBER_ENOMEM, "ember_pool_start: no memory for the pool");
    p->cfg = *cfg;
    p->sup_pidfd = -1;
    p->seg_fd = -1;
    int rc = check_config(&p->cfg);
    if (rc == 0) {
        snprintf(p->name, sizeof p->name, "%s", p->cfg.name);
        ember__builtin_handlers();
        rc = ember__plugins_load(p->cfg.plugins); /* before the fork: runners inherit them */
    }
    if (rc == 0) rc = make_plan(&p->cfg);
    if (rc == 0) rc = ember__segment_create_held(&p->cfg, &p->v, &p->seg_fd);
    if (rc) {
        free(p);
        return rc;
    }
    rc = check_cgroup(&p->cfg);
    if (rc == 0) rc = supervisor_start(p);
    close(p->seg_fd); /* the supervisor holds its own lock now (or is gone) */
    if (rc == 0) rc = event_thread_start(p);
    if (rc && p->sup_pidfd >= 0) { /* the supervisor served: stop it */
        char why[EMBER__ERRLEN];
        memcpy(why, ember__errbuf, sizeof why);
        ember__stop_supervisor(&p->v, p->name, p->sup_pidfd, 0, NULL);
        reap_supervisor(p->sup);
        close(p->sup_pidfd);
        ember__fail(rc, "%s", why);
    }
    if (rc) {
        ember__shm_unlink(p->name);
        munmap(p->v.base, p->v.size);
        close(p->v.shm_fd);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

struct ember__view *ember__pool_view(ember_pool *p) { return p ? &p->v : NULL; }

int ember_pool_supervisor_pid(const ember_pool *p) { return p ? (int)p->sup : -1; }

const char *ember_pool_backend(const ember_pool *p) { return p ? p->v.hdr->backend : ""; }

int ember_pool_wait_ready(ember_pool *p, unsigned n, int64_t timeout_ns)
{
    if (!p) return ember__fail(-EMBER_EINVAL, "ember_pool_wait_ready: pool is NULL");
    return ember__wait_ready(&p->v, p->name, p->sup_pidfd, n, timeout_ns);
}

int ember_pool_resize(ember_pool *p, unsigned min, unsigned max)
{
    if (!p) return ember__fail(-EMBER_EINVAL, "ember_pool_resize: pool is NULL");
    return ember__resize(&p->v, p->name, min, max);
}

int ember_pool_stop(ember_pool *p, int64_t timeout_ns)
{
    if (!p) return ember__fail(-EMBER_EINVAL, "ember_pool_stop: pool is NULL");
    if (p->ev_running && pthread_equal(pthread_self(), p->ev_thread))
        return ember__fail(-EMBER_EINVAL, "ember_pool_stop: called from pool '%s''s own event "
                           "callback; stop the pool from another thread", p->name);
    if (timeout_ns < 0) timeout_ns = p->cfg.shutdown_timeout_ns;
    bool killed = false;
    int rc = ember__stop_supervisor(&p->v, p->name, p->sup_pidfd, timeout_ns, &killed);
    if (rc) kill(p->sup, SIGKILL); /* it cannot be signalled through its pidfd: it must end */
    int ws = reap_supervisor(p->sup);
    event_thread_stop(p);
    if (rc == 0 && ws != 0) { /* not a clean exit 0 */
        char how[200] = "its wait status is lost";
        if (ws > 0) describe_end(ws, how, sizeof how);
        rc = ember__fail(-EMBER_EPOOLDOWN, "pool '%s': its supervisor did not end cleanly: %s%s",
                         p->name, how,
                         killed ? ", by this stop, since it had not ended within the timeout and 3 s"
                                : ", before it could finish the stop; calls still running were lost");
    }
    /* a supervisor that was killed (not stopped) left its segment's name */
    ember__unlink_if_stale(p->name);
    close(p->sup_pidfd);
    munmap(p->v.base, p->v.size);
    close(p->v.shm_fd);
    free(p);
    return rc;
}
