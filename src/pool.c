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

struct ember_pool {
    struct ember__view v;
    pid_t sup;
    int sup_pidfd;
    char name[EMBER_NAME_MAX];
};

void ember_pool_config_init(struct ember_pool_config *cfg)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    memset(cfg, 0, sizeof *cfg);
    cfg->name = "ember";
    cfg->runners = n > 0 ? (unsigned)n : 1;
    cfg->max_concurrency = 1;
    cfg->slots = 4096;
    cfg->max_payload = 64u << 20;
    cfg->max_callers = 256;
    cfg->timeout_ns = 30ll * 1000000000ll;
}

static int check_config(const struct ember_pool_config *c)
{
    if (!ember__name_ok(c->name))
        return ember__fail(-EMBER_EINVAL, "option name: '%s' is not 1-39 of [A-Za-z0-9_.-]",
                           c->name ? c->name : "(null)");
    if (c->runners == 0 || c->runners > 4096)
        return ember__fail(-EMBER_EINVAL, "option runners: %u is not in 1..4096", c->runners);
    if (c->max_concurrency == 0 || c->max_concurrency > 1024)
        return ember__fail(-EMBER_EINVAL, "option max_concurrency: %u is not in 1..1024",
                           c->max_concurrency);
    if (!ember__pow2(c->slots) || c->slots < 2 || c->slots > EMBER_MAX_SLOTS)
        return ember__fail(-EMBER_EINVAL, "option slots: %u is not a power of two in 2..%u",
                           c->slots, EMBER_MAX_SLOTS);
    if (c->max_payload < EMBER_INLINE_MAX || c->max_payload > (1ull << 31))
        return ember__fail(-EMBER_EINVAL, "option max_payload: %zu is not in %d..2 GiB",
                           c->max_payload, EMBER_INLINE_MAX);
    if (c->payload_space && c->payload_space < c->max_payload)
        return ember__fail(-EMBER_EINVAL, "option payload_space: %zu is below max_payload %zu",
                           c->payload_space, c->max_payload);
    if (c->max_callers == 0 || c->max_callers > 65536)
        return ember__fail(-EMBER_EINVAL, "option max_callers: %u is not in 1..65536",
                           c->max_callers);
    if (c->timeout_ns <= 0)
        return ember__fail(-EMBER_EINVAL, "option timeout: must be above zero");
    return 0;
}

int ember_pool_start(const struct ember_pool_config *cfg, ember_pool **out)
{
    if (!cfg || !out) return ember__fail(-EMBER_EINVAL, "ember_pool_start: NULL argument");
    *out = NULL;
    int rc = check_config(cfg);
    if (rc) return rc;
    ember__builtin_handlers();
    ember_pool *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
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
    if (pid == 0) ember__supervisor_main(&p->v, app, 2000000000ll);
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
    uint64_t until = ember__now_ns() + (uint64_t)timeout_ns;
    for (;;) {
        uint32_t ep = atomic_load(&p->v.hdr->epoch);
        unsigned ready = 0;
        for (uint32_t r = 0; r < p->v.nrunners; r++)
            ready += atomic_load(&p->v.runners[r].state) == EMBER_RUNNER_READY;
        if (ready >= n) return 0;
        if (ember__pidfd_dead(p->sup_pidfd))
            return ember__fail(-EMBER_EPOOLDOWN, "pool '%s': supervisor died", p->name);
        uint64_t now = ember__now_ns();
        if (now >= until)
            return ember__fail(-EMBER_ETIMEDOUT, "pool '%s': %u of %u runners ready", p->name,
                               ready, n);
        uint64_t t = now + 100000000ull;
        ember__futex_wait(&p->v.hdr->epoch, ep, t < until ? t : until);
    }
}

int ember_pool_stop(ember_pool *p, int64_t timeout_ns)
{
    if (!p) return -EMBER_EINVAL;
    if (timeout_ns < 0) timeout_ns = 0;
    atomic_store(&p->v.hdr->stop_timeout_ns, timeout_ns);
    syscall(SYS_pidfd_send_signal, p->sup_pidfd, SIGTERM, NULL, 0);
    struct pollfd pf = { .fd = p->sup_pidfd, .events = POLLIN };
    int ms = (int)(timeout_ns / 1000000) + 3000; /* its grace, then time to clean up */
    if (poll(&pf, 1, ms) == 0) syscall(SYS_pidfd_send_signal, p->sup_pidfd, SIGKILL, NULL, 0);
    waitpid(p->sup, NULL, 0);
    /* a supervisor that was killed (not stopped) left its segment's name */
    ember__unlink_if_stale(p->name);
    close(p->sup_pidfd);
    munmap(p->v.base, p->v.size);
    free(p);
    return 0;
}
