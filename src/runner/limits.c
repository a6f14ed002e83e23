/* runner/limits.c - what confines a runner, set by the runner itself right
 * after its fork, before its boot callback: its memory cgroup (the leaf the
 * supervisor made for this life, lib/cgroup.h), the pool's rlimits, and
 * no_new_privs (a handler's exec of a setuid program gains nothing). What
 * cannot be set fails the boot with a message naming the option. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include "lib/cgroup.h"
#include "runner/runner.h"

static _Noreturn void limits_failed(struct ember_runner_ent *re, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static _Noreturn void limits_failed(struct ember_runner_ent *re, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(re->msg, sizeof re->msg, fmt, ap);
    va_end(ap);
    _exit(EMBER__EXIT_RUNNER_LIMITS);
}

/* Set rlimit RES to SOFT (hard HARD) for option NAME. */
static void set_limit(struct ember_runner_ent *re, int res, uint64_t soft, uint64_t hard,
                      const char *name)
{
    struct rlimit rl = { .rlim_cur = (rlim_t)soft, .rlim_max = (rlim_t)hard };
    if (setrlimit(res, &rl) < 0) {
        int e = errno;
        struct rlimit now = { 0, 0 };
        getrlimit(res, &now);
        if (now.rlim_max == RLIM_INFINITY)
            limits_failed(re, "%s %llu: %s", name, (unsigned long long)soft, strerror(e));
        limits_failed(re, "%s %llu: %s (hard limit %llu)", name, (unsigned long long)soft,
                      strerror(e), (unsigned long long)now.rlim_max);
    }
}

void ember__runner_limits(struct ember_runner_ent *re, const struct ember_pool_config *cfg)
{
    if (ember__self.cg_fd >= 0) {
        int rc = ember__cgroup_join(ember__self.cg_fd);
        ember__self.cg_fd = -1;
        if (rc < 0) limits_failed(re, "cannot join its memory cgroup: %s", strerror(-rc));
    }
    if (cfg->runner_rlimit_as)
        set_limit(re, RLIMIT_AS, cfg->runner_rlimit_as, cfg->runner_rlimit_as, "runner_rlimit_as");
    /* SIGXCPU at the limit, which kills (runner.c makes it fatal); SIGKILL a
     * second later for a handler that caught it */
    if (cfg->runner_rlimit_cpu)
        set_limit(re, RLIMIT_CPU, cfg->runner_rlimit_cpu, cfg->runner_rlimit_cpu + 1, "runner_rlimit_cpu");
    if (cfg->runner_rlimit_nofile)
        set_limit(re, RLIMIT_NOFILE, cfg->runner_rlimit_nofile, cfg->runner_rlimit_nofile,
                  "runner_rlimit_nofile");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        limits_failed(re, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
}
