/* pool.c - starting and stopping a pool from the application.
 *
 * ember_pool_start() validates the options, creates the segment, and forks
 * the supervisor, which forks the runners; it returns once the supervisor
 * has published itself. The application then attaches as a caller like any
 * other process. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "internal.h"
#include "placement.h"

struct ember__placement *ember__plan;
void *ember__topology;

struct ember_pool {
    struct ember__view v;
    struct ember_pool_config cfg; /* normalized; the supervisor has its copy from the fork */
    pid_t sup;
    int sup_pidfd;
    char name[EMBER_NAME_MAX];
};

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

void ember_pool_config_init(struct ember_pool_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->name = "ember";
    cfg->min = 0;
    cfg->max = online_cpus();
    cfg->max_concurrency = 1;
    cfg->timeout_ns = 30ll * 1000000000ll;
    cfg->boot_timeout_ns = 30ll * 1000000000ll;
    cfg->shutdown_timeout_ns = 30ll * 1000000000ll;
    cfg->kill_grace_ns = 1000000000ll;
    cfg->idle_shutdown_after_ns = 30ll * 1000000000ll;
    cfg->min_idle_shutdown_after_ns = EMBER_NEVER;
    cfg->queue_capacity = 4096;
    cfg->max_payload = 64u << 20;
    cfg->max_callers = 256;
}

#define EMBER__RUNNERS_MAX 4096u

static int positive(int64_t v, const char *opt)
{
    if (v <= 0) return ember__fail(-EMBER_EINVAL, "option %s: %lld is not above zero", opt, (long long)v);
    return 0;
}

/* Check C and fill in what it leaves to ember (max_limit, the queue rounded
 * up). The message names the option. */
static int check_config(struct ember_pool_config *c)
{
    if (!ember__name_ok(c->name))
        return ember__fail(-EMBER_EINVAL, "option name: '%s' is not 1-39 of [A-Za-z0-9_.-]",
                           c->name ? c->name : "(null)");
    if (c->max == 0 || c->max > EMBER__RUNNERS_MAX)
        return ember__fail(-EMBER_EINVAL, "option max: %u is not in 1..%u", c->max, EMBER__RUNNERS_MAX);
    if (c->min > c->max)
        return ember__fail(-EMBER_EINVAL, "option min: %u is above max %u", c->min, c->max);
    if (c->max_limit == 0) {
        unsigned d = 4 * online_cpus();
        c->max_limit = c->max > d ? c->max : d;
        if (c->max_limit > EMBER__RUNNERS_MAX) c->max_limit = EMBER__RUNNERS_MAX;
    }
    if (c->max_limit < c->max || c->max_limit > EMBER__RUNNERS_MAX)
        return ember__fail(-EMBER_EINVAL, "option max_limit: %u is not in max (%u)..%u", c->max_limit,
                           c->max, EMBER__RUNNERS_MAX);
    if (c->max_concurrency == 0 || c->max_concurrency > 1024)
        return ember__fail(-EMBER_EINVAL, "option max_concurrency: %u is not in 1..1024",
                           c->max_concurrency);
    if ((uint64_t)c->max_limit * c->max_concurrency > 65536)
        return ember__fail(-EMBER_EINVAL, "options max_limit x max_concurrency: %u x %u threads is "
                           "above 65536", c->max_limit, c->max_concurrency);
    if (c->queue_capacity < 2 || c->queue_capacity > EMBER_MAX_SLOTS)
        return ember__fail(-EMBER_EINVAL, "option queue_capacity: %u is not in 2..%u",
                           c->queue_capacity, EMBER_MAX_SLOTS);
    uint32_t q = 2;
    while (q < c->queue_capacity) q *= 2;
    c->queue_capacity = q;
    if (c->max_payload < EMBER_INLINE_MAX || c->max_payload > (1ull << 31))
        return ember__fail(-EMBER_EINVAL, "option max_payload: %zu is not in %d..2 GiB",
                           c->max_payload, EMBER_INLINE_MAX);
    if (c->payload_space && c->payload_space < c->max_payload)
        return ember__fail(-EMBER_EINVAL, "option payload_space: %zu is below max_payload %zu",
                           c->payload_space, c->max_payload);
    if (c->max_callers == 0 || c->max_callers > 65536)
        return ember__fail(-EMBER_EINVAL, "option max_callers: %u is not in 1..65536",
                           c->max_callers);
    int rc;
    if ((rc = positive(c->timeout_ns, "timeout")) || (rc = positive(c->boot_timeout_ns, "boot_timeout")) ||
        (rc = positive(c->shutdown_timeout_ns, "shutdown_timeout")) ||
        (rc = positive(c->kill_grace_ns, "kill_grace")) ||
        (rc = positive(c->idle_shutdown_after_ns, "idle_shutdown_after")) ||
        (rc = positive(c->min_idle_shutdown_after_ns, "min_idle_shutdown_after")))
        return rc;
    if (c->log < 0 || c->log > 2)
        return ember__fail(-EMBER_EINVAL, "option log: %d is not 0, 1 or 2", c->log);
    if (c->placement != EMBER_PLACEMENT_NUMA && c->placement != EMBER_PLACEMENT_CORE &&
        c->placement != EMBER_PLACEMENT_NONE)
        return ember__fail(-EMBER_EINVAL, "option placement: %d is not EMBER_PLACEMENT_NUMA, _CORE "
                           "or _NONE", c->placement);
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
    if (!p) return -ENOMEM;
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

int ember_pool_start(const struct ember_pool_config *cfg, ember_pool **out)
{
    if (!cfg || !out) return ember__fail(-EMBER_EINVAL, "ember_pool_start: NULL argument");
    *out = NULL;
    ember_pool *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->cfg = *cfg;
    int rc = check_config(&p->cfg);
    if (rc) {
        free(p);
        return rc;
    }
    cfg = &p->cfg;
    ember__builtin_handlers();
    if ((rc = make_plan(cfg)) != 0) {
        free(p);
        return rc;
    }
    rc = ember__segment_create(cfg, &p->v);
    if (rc) {
        free(p);
        return rc;
    }
    snprintf(p->name, sizeof p->name, "%s", cfg->name);
    atomic_store(&p->v.hdr->pool_state, EMBER_POOL_STARTING);
    pid_t app = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) ember__supervisor_main(&p->v, app, &p->cfg);
    if (pid < 0) {
        rc = -errno;
        goto fail;
    }
    p->sup = pid;
    p->sup_pidfd = ember__pidfd_open(pid);
    /* wait for the supervisor to publish itself (or die trying) */
    uint64_t until = ember__now_ns() + 5000000000ull;
    for (;;) {
        uint32_t st = atomic_load(&p->v.hdr->pool_state);
        if (st == EMBER_POOL_RUNNING) break;
        if (st != EMBER_POOL_STARTING || ember__pidfd_dead(p->sup_pidfd) || ember__now_ns() > until) {
            rc = ember__fail(-EMBER_EBOOT, "pool '%s': supervisor did not start", cfg->name);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(p->sup_pidfd);
            goto fail;
        }
        ember__futex_wait(&p->v.hdr->pool_state, st, ember__now_ns() + 100000000ull);
    }
    *out = p;
    return 0;
fail:
    ember__shm_unlink(cfg->name);
    munmap(p->v.base, p->v.size);
    free(p);
    return rc;
}

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
    if (!p) return -EMBER_EINVAL;
    if (timeout_ns < 0) timeout_ns = p->cfg.shutdown_timeout_ns;
    ember__stop_supervisor(&p->v, p->name, p->sup_pidfd, timeout_ns);
    waitpid(p->sup, NULL, 0);
    /* a supervisor that was killed (not stopped) left its segment's name */
    ember__unlink_if_stale(p->name);
    close(p->sup_pidfd);
    munmap(p->v.base, p->v.size);
    free(p);
    return 0;
}
