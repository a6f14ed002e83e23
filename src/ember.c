/* ember - the command line: start, watch, resize and stop local pools.
 *
 *   ember pool start NAME [--OPTION VALUE]... [--foreground] [--log-file PATH]
 *   ember pool stop NAME [--shutdown_timeout DURATION]
 *   ember pool resize NAME [--min N] [--max N]
 *   ember pool wait NAME [--ready N | --runners N] [--timeout DURATION]
 *   ember pool list
 *   ember stats NAME [--json]
 *   ember events NAME [--follow]
 *   ember call NAME HANDLER [ARG] [--timeout DURATION] [--unlinked]
 *
 * Pool options are those of struct ember_pool_config, by the same names.
 * A pool started here runs in a daemon process (the pool's application)
 * until `ember pool stop` or a signal; its handlers are the built-in ones
 * (noop, echo) and those below: sleep, spin, exec. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "internal.h"

static const char *g_cmd = "ember";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", g_cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'ember help')\n");
    va_end(ap);
    return 2;
}

static int fail(int rc, const char *what)
{
    const char *detail = ember_last_error();
    fprintf(stderr, "%s: %s: %s%s%s\n", g_cmd, what, ember_strerror(rc), detail[0] ? ": " : "",
            detail);
    return 1;
}

/* ---- handlers of pools started from the command line --------------------- */

/* The deadline ARG milliseconds (a decimal string) from now; false if ARG
 * is no number. */
static bool ms_from_now(const void *a, size_t n, uint64_t *until)
{
    char buf[32], *end;
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, a, n);
    buf[n] = 0;
    unsigned long long ms = strtoull(buf, &end, 10);
    if (*end || ms > 1000000000ull) return false;
    *until = ember__now_ns() + ms * 1000000ull;
    return true;
}

/* "sleep": sleeps ARG milliseconds, or until cancelled. */
static int h_sleep(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)o;
    uint64_t until;
    if (!ms_from_now(a, n, &until)) return 1;
    while (!ember_job_cancelled(j) && ember__now_ns() < until) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* "spin": keeps a CPU busy for ARG milliseconds, or until cancelled. */
static int h_spin(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)o;
    uint64_t until;
    if (!ms_from_now(a, n, &until)) return 1;
    volatile uint64_t x = 0;
    while (ember__now_ns() < until && !ember_job_cancelled(j))
        for (int i = 0; i < 10000; i++) x += (uint64_t)i;
    return 0;
}

/* "exec": runs ARG with /bin/sh -c; the result is its standard output, a
 * non-zero exit fails the call with EMBER_EHANDLER and the exit status as
 * detail (128 + signal for a signal). A cancelled call (deadline, caller
 * gone) terminates the command's process group: SIGTERM, then SIGKILL a
 * second later. */
static int h_exec(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    char *cmd = malloc(n + 1);
    if (!cmd) return 126;
    memcpy(cmd, a, n);
    cmd[n] = 0;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        free(cmd);
        return 126;
    }
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with its runner */
        setpgid(0, 0);                    /* a cancel stops the whole command */
        dup2(pfd[1], 1);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    free(cmd);
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        return 126;
    }
    /* wait for output, the command's end, or a cancel (checked every 50 ms) */
    int pidfd = ember__pidfd_open(pid), out = pfd[0], rc = 0, st = 0;
    bool termed = false, ended = false;
    uint64_t kill_at = 0;
    char buf[65536];
    while (out >= 0 || !ended) {
        struct pollfd p[2] = { { .fd = out, .events = POLLIN }, { .fd = ended ? -1 : pidfd, .events = POLLIN } };
        int n = poll(p, 2, 50);
        if (n > 0 && out >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t r = read(out, buf, sizeof buf);
            if (r > 0) {
                if (!rc && ember_out_write(o, buf, (size_t)r) != 0) rc = 125; /* too much output */
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(out);
                out = -1;
            }
        }
        if (!ended && ((n > 0 && (p[1].revents & POLLIN)) || pidfd < 0) &&
            waitpid(pid, &st, pidfd < 0 ? WNOHANG : 0) == pid)
            ended = true;
        if (ember_job_cancelled(j)) {
            uint64_t now = ember__now_ns();
            if (!termed) {
                kill(-pid, SIGTERM);
                termed = true;
                kill_at = now + 1000000000ull;
            } else if (now >= kill_at) {
                kill(-pid, SIGKILL);
            }
            if (ended && out >= 0) { /* what it left running is not waited for */
                close(out);
                out = -1;
            }
        }
    }
    if (pidfd >= 0) close(pidfd);
    if (rc) return rc;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- parsing -------------------------------------------------------------- */

/* DURATION: a number with a unit (ns, us, ms, s, m, h); a bare number is
 * milliseconds, as FLAME's options; "never" for min_idle_shutdown_after. */
static bool parse_duration(const char *s, int64_t *out)
{
    if (strcmp(s, "never") == 0 || strcmp(s, "infinity") == 0) {
        *out = EMBER_NEVER;
        return true;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0) return false;
    double mul = 1e6;
    if (*end == 0 || strcmp(end, "ms") == 0) mul = 1e6;
    else if (strcmp(end, "ns") == 0) mul = 1;
    else if (strcmp(end, "us") == 0) mul = 1e3;
    else if (strcmp(end, "s") == 0) mul = 1e9;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0) mul = 60e9;
    else if (strcmp(end, "h") == 0) mul = 3600e9;
    else return false;
    double ns = v * mul;
    if (ns >= 9.2e18) return false;
    *out = (int64_t)ns;
    return true;
}

/* SIZE: bytes, or with K, M, G (powers of 1024; an optional trailing B or iB). */
static bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-') return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno) return false;
    uint64_t mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 0: break;
    case 'K': mul = 1ull << 10, end++; break;
    case 'M': mul = 1ull << 20, end++; break;
    case 'G': mul = 1ull << 30, end++; break;
    default: return false;
    }
    if (mul > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)) end += strlen(end);
    if (*end || v > UINT64_MAX / mul) return false;
    *out = v * mul;
    return true;
}

static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-' || !*s) return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v > max) return false;
    *out = v;
    return true;
}

/* "--max_concurrency=2", "--max-concurrency 2": NAME (underscores) and VALUE;
 * returns how many arguments it used, 0 if ARGV[I] is no option. */
static int take_option(int argc, char **argv, int i, char *name, size_t nlen, const char **value,
                       bool takes_value)
{
    const char *a = argv[i];
    if (strncmp(a, "--", 2) != 0 || !a[2]) return 0;
    a += 2;
    size_t k = strcspn(a, "=");
    if (k >= nlen) k = nlen - 1;
    for (size_t j = 0; j < k; j++) name[j] = a[j] == '-' ? '_' : a[j];
    name[k] = 0;
    *value = NULL;
    if (a[k] == '=') {
        *value = a + k + 1;
        return 1;
    }
    if (!takes_value) return 1;
    if (i + 1 < argc) {
        *value = argv[i + 1];
        return 2;
    }
    return 1;
}

/* Options of `pool start`: name, kind, where. */
enum { OPT_UINT, OPT_U64, OPT_DUR, OPT_SIZE, OPT_BOOL, OPT_INT };
struct optdef { const char *name; int kind; size_t off; };
#define O(field, kind) { #field, kind, offsetof(struct ember_pool_config, field) }
static const struct optdef pool_opts[] = {
    O(min, OPT_UINT), O(max, OPT_UINT), O(max_limit, OPT_UINT), O(max_concurrency, OPT_UINT),
    O(single_use, OPT_BOOL),
    { "timeout", OPT_DUR, offsetof(struct ember_pool_config, timeout_ns) },
    { "boot_timeout", OPT_DUR, offsetof(struct ember_pool_config, boot_timeout_ns) },
    { "shutdown_timeout", OPT_DUR, offsetof(struct ember_pool_config, shutdown_timeout_ns) },
    { "kill_grace", OPT_DUR, offsetof(struct ember_pool_config, kill_grace_ns) },
    { "idle_shutdown_after", OPT_DUR, offsetof(struct ember_pool_config, idle_shutdown_after_ns) },
    { "min_idle_shutdown_after", OPT_DUR,
      offsetof(struct ember_pool_config, min_idle_shutdown_after_ns) },
    O(max_jobs, OPT_U64), O(max_rss, OPT_SIZE), O(queue_capacity, OPT_UINT), O(log, OPT_INT),
    O(max_payload, OPT_SIZE), O(payload_space, OPT_SIZE), O(max_callers, OPT_UINT),
};
#undef O

static int set_pool_option(struct ember_pool_config *cfg, const char *name, const char *val)
{
    for (size_t i = 0; i < sizeof pool_opts / sizeof pool_opts[0]; i++) {
        const struct optdef *d = &pool_opts[i];
        if (strcmp(d->name, name) != 0) continue;
        void *p = (char *)cfg + d->off;
        uint64_t u;
        int64_t dur;
        if (d->kind == OPT_BOOL) {
            if (!val || strcmp(val, "true") == 0 || strcmp(val, "1") == 0) *(bool *)p = true;
            else if (strcmp(val, "false") == 0 || strcmp(val, "0") == 0) *(bool *)p = false;
            else return usage_error("option --%s: '%s' is not true or false", name, val);
            return 0;
        }
        if (!val) return usage_error("option --%s needs a value", name);
        switch (d->kind) {
        case OPT_UINT:
            if (!parse_uint(val, UINT32_MAX, &u))
                return usage_error("option --%s: '%s' is not a whole number", name, val);
            *(unsigned *)p = (unsigned)u;
            return 0;
        case OPT_INT:
            if (!parse_uint(val, INT32_MAX, &u))
                return usage_error("option --%s: '%s' is not a whole number", name, val);
            *(int *)p = (int)u;
            return 0;
        case OPT_U64:
            if (!parse_uint(val, UINT64_MAX, &u))
                return usage_error("option --%s: '%s' is not a whole number", name, val);
            *(uint64_t *)p = u;
            return 0;
        case OPT_SIZE:
            if (!parse_size(val, &u) || u > SIZE_MAX)
                return usage_error("option --%s: '%s' is not a size (bytes, or with K, M, G)", name, val);
            *(size_t *)p = (size_t)u;
            return 0;
        case OPT_DUR:
            if (!parse_duration(val, &dur))
                return usage_error("option --%s: '%s' is not a duration (e.g. 250ms, 30s, 2m%s)", name,
                                   val, strcmp(name, "min_idle_shutdown_after") == 0 ? ", never" : "");
            *(int64_t *)p = dur;
            return 0;
        }
    }
    return usage_error("unknown option --%s", name);
}

/* ---- pool start ------------------------------------------------------------ */

static void register_handlers(void)
{
    ember_handler_register("sleep", h_sleep);
    ember_handler_register("spin", h_spin);
    ember_handler_register("exec", h_exec);
}

/* The pool's application: run until the supervisor ends or a signal asks for
 * a stop. */
static int serve(ember_pool *pool)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    int pfd = ember__pidfd_open(ember_pool_supervisor_pid(pool));
    struct pollfd p[2] = { { .fd = sfd, .events = POLLIN }, { .fd = pfd, .events = POLLIN } };
    while (poll(p, 2, -1) < 0 && errno == EINTR) {}
    ember_pool_stop(pool, -1); /* a supervisor that ended: only reaped */
    return 0;
}

static int cmd_pool_start(int argc, char **argv)
{
    if (argc < 1 || argv[0][0] == '-') return usage_error("the pool's NAME comes first");
    struct ember_pool_config cfg;
    ember_pool_config_init(&cfg);
    cfg.name = argv[0];
    bool foreground = false;
    const char *logfile = NULL;
    for (int i = 1; i < argc;) {
        char name[64];
        const char *val;
        bool is_flag = strcmp(argv[i], "--single_use") == 0 || strcmp(argv[i], "--single-use") == 0 ||
                       strcmp(argv[i], "--foreground") == 0;
        int used = take_option(argc, argv, i, name, sizeof name, &val, !is_flag);
        if (!used) return usage_error("unexpected argument '%s'", argv[i]);
        i += used;
        if (strcmp(name, "foreground") == 0) foreground = true;
        else if (strcmp(name, "log_file") == 0) {
            if (!val) return usage_error("option --log-file needs a path");
            logfile = val;
        } else if (strcmp(name, "placement") == 0) {
            if (!val) return usage_error("option --placement needs numa, core or none");
            if (strcmp(val, "numa") == 0) cfg.placement = EMBER_PLACEMENT_NUMA;
            else if (strcmp(val, "core") == 0) cfg.placement = EMBER_PLACEMENT_CORE;
            else if (strcmp(val, "none") == 0) cfg.placement = EMBER_PLACEMENT_NONE;
            else return usage_error("option --placement: '%s' is not numa, core or none", val);
        } else if (strcmp(name, "nodes") == 0) {
            if (!val) return usage_error("option --nodes needs a list of NUMA nodes such as 0,2-3");
            cfg.nodes = val;
        } else if (strcmp(name, "name") == 0) {
            return usage_error("the name is the first argument, not --name");
        } else {
            int rc = set_pool_option(&cfg, name, val);
            if (rc) return rc;
        }
    }
    register_handlers();
    if (foreground) {
        ember_pool *pool;
        int rc = ember_pool_start(&cfg, &pool);
        if (rc) return fail(rc, cfg.name);
        fprintf(stderr, "%s: pool '%s' running (supervisor pid %d); Ctrl-C stops it\n", g_cmd,
                cfg.name, ember_pool_supervisor_pid(pool));
        return serve(pool);
    }
    /* daemon: the child starts the pool and reports through a pipe */
    int rp[2];
    if (pipe2(rp, O_CLOEXEC) < 0) return fail(-errno, "pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return fail(-errno, "fork");
    if (pid == 0) {
        close(rp[0]);
        setsid();
        int nul = open("/dev/null", O_RDWR);
        int out = logfile ? open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : nul;
        if (nul >= 0) dup2(nul, 0);
        if (out >= 0) dup2(out, 1), dup2(out, 2);
        ember_pool *pool;
        int rc = ember_pool_start(&cfg, &pool);
        char msg[400];
        int n = rc ? snprintf(msg, sizeof msg, "%d %s", rc, ember_last_error())
                   : snprintf(msg, sizeof msg, "0 %d", ember_pool_supervisor_pid(pool));
        if (write(rp[1], msg, (size_t)n) < 0) {}
        close(rp[1]);
        if (rc) _exit(1);
        _exit(serve(pool));
    }
    close(rp[1]);
    char msg[400];
    ssize_t n = read(rp[0], msg, sizeof msg - 1);
    close(rp[0]);
    if (n <= 0) {
        waitpid(pid, NULL, 0);
        fprintf(stderr, "%s: the pool's process died while starting it\n", g_cmd);
        return 1;
    }
    msg[n] = 0;
    int rc = atoi(msg);
    const char *rest = strchr(msg, ' ');
    rest = rest ? rest + 1 : "";
    if (rc) {
        waitpid(pid, NULL, 0);
        fprintf(stderr, "%s: %s: %s\n", g_cmd, ember_strerror(rc), rest);
        return 1;
    }
    printf("pool '%s' started: supervisor pid %s, min %u, max %u, max_concurrency %u\n", cfg.name,
           rest, cfg.min, cfg.max, cfg.max_concurrency);
    return 0;
}

/* ---- commands on a running pool ------------------------------------------ */

static int attach(const char *name, ember_client **c)
{
    int rc = ember_attach(name, c);
    if (rc) return fail(rc, name);
    return 0;
}

static int cmd_pool_stop(int argc, char **argv)
{
    if (argc < 1 || argv[0][0] == '-') return usage_error("NAME is missing");
    int64_t timeout = -1;
    for (int i = 1; i < argc;) {
        char name[64];
        const char *val;
        int used = take_option(argc, argv, i, name, sizeof name, &val, true);
        if (!used) return usage_error("unexpected argument '%s'", argv[i]);
        i += used;
        if (strcmp(name, "shutdown_timeout") != 0)
            return usage_error("unknown option --%s", name);
        if (!val || !parse_duration(val, &timeout))
            return usage_error("option --shutdown_timeout: '%s' is not a duration", val ? val : "");
    }
    ember_client *c;
    if (attach(argv[0], &c)) return 1;
    int rc = ember_stop(c, timeout);
    ember_detach(c);
    if (rc) return fail(rc, argv[0]);
    printf("pool '%s' stopped\n", argv[0]);
    return 0;
}

static int cmd_pool_resize(int argc, char **argv)
{
    if (argc < 1 || argv[0][0] == '-') return usage_error("NAME is missing");
    ember_client *c;
    int64_t min = -1, max = -1;
    for (int i = 1; i < argc;) {
        char name[64];
        const char *val;
        uint64_t u;
        int used = take_option(argc, argv, i, name, sizeof name, &val, true);
        if (!used) return usage_error("unexpected argument '%s'", argv[i]);
        i += used;
        if (strcmp(name, "min") != 0 && strcmp(name, "max") != 0)
            return usage_error("unknown option --%s (it takes --min and --max)", name);
        if (!val || !parse_uint(val, UINT32_MAX, &u))
            return usage_error("option --%s: '%s' is not a whole number", name, val ? val : "");
        *(name[1] == 'i' ? &min : &max) = (int64_t)u;
    }
    if (min < 0 && max < 0) return usage_error("give --min, --max or both");
    if (attach(argv[0], &c)) return 1;
    struct ember_shm_header *h = c->v.hdr;
    unsigned nmin = min >= 0 ? (unsigned)min : atomic_load(&h->min);
    unsigned nmax = max >= 0 ? (unsigned)max : atomic_load(&h->max);
    int rc = ember_resize(c, nmin, nmax);
    ember_detach(c);
    if (rc) return fail(rc, argv[0]);
    printf("pool '%s': min %u, max %u\n", argv[0], nmin, nmax);
    return 0;
}

/* Wait until exactly N runner processes live, all of them serving. */
static int wait_runners(ember_client *c, unsigned n, int64_t timeout)
{
    struct ember_shm_header *h = c->v.hdr;
    uint64_t until = ember__now_ns() + (uint64_t)timeout;
    for (;;) {
        uint32_t ep = atomic_load(&h->epoch);
        unsigned live = 0;
        for (uint32_t r = 0; r < c->v.nrunners; r++) live += atomic_load(&c->v.runners[r].pid) != 0;
        if (live == n && atomic_load(&h->nserving) == n) return 0;
        if (atomic_load(&h->pool_state) != EMBER_POOL_RUNNING)
            return ember__fail(-EMBER_EPOOLDOWN, "pool '%s' is stopping or stopped", c->name);
        uint64_t now = ember__now_ns();
        if (now >= until)
            return ember__fail(-EMBER_ETIMEDOUT, "pool '%s': %u runners, not %u", c->name, live, n);
        ember__futex_wait(&h->epoch, ep, now + 100000000ull < until ? now + 100000000ull : until);
    }
}

static int cmd_pool_wait(int argc, char **argv)
{
    if (argc < 1 || argv[0][0] == '-') return usage_error("NAME is missing");
    uint64_t ready = 1, runners = UINT64_MAX;
    int64_t timeout = 30ll * 1000000000ll;
    for (int i = 1; i < argc;) {
        char name[64];
        const char *val;
        int used = take_option(argc, argv, i, name, sizeof name, &val, true);
        if (!used) return usage_error("unexpected argument '%s'", argv[i]);
        i += used;
        if (strcmp(name, "ready") == 0 || strcmp(name, "runners") == 0) {
            if (!val || !parse_uint(val, 65536, name[0] == 'r' && name[1] == 'e' ? &ready : &runners))
                return usage_error("option --%s: '%s' is not a whole number", name, val ? val : "");
        } else if (strcmp(name, "timeout") == 0) {
            if (!val || !parse_duration(val, &timeout))
                return usage_error("option --timeout: '%s' is not a duration", val ? val : "");
        } else {
            return usage_error("unknown option --%s", name);
        }
    }
    ember_client *c;
    if (attach(argv[0], &c)) return 1;
    int rc = runners == UINT64_MAX ? ember_wait_ready(c, (unsigned)ready, timeout)
                                   : wait_runners(c, (unsigned)runners, timeout);
    ember_detach(c);
    if (rc) return fail(rc, argv[0]);
    return 0;
}

static int cmd_pool_list(void)
{
    DIR *d = opendir("/dev/shm");
    if (!d) return fail(-errno, "/dev/shm");
    char prefix[32];
    snprintf(prefix, sizeof prefix, "ember.%u.", (unsigned)getuid());
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        const char *name = e->d_name + strlen(prefix);
        ember_client *c;
        if (ember_attach(name, &c) == 0) {
            struct ember_shm_header *h = c->v.hdr;
            printf("%-24s supervisor %u, %u runners serving, min %u, max %u\n", name,
                   atomic_load(&h->sup_pid), atomic_load(&h->nserving), atomic_load(&h->min),
                   atomic_load(&h->max));
            ember_detach(c);
        }
    }
    closedir(d);
    return 0;
}

static const char *runner_state(uint32_t st)
{
    switch (st) {
    case EMBER_RUNNER_BOOTING: return "booting";
    case EMBER_RUNNER_READY: return "ready";
    case EMBER_RUNNER_DRAINING: return "draining";
    default: return "empty";
    }
}

static const char *pool_state(uint32_t st)
{
    switch (st) {
    case EMBER_POOL_STARTING: return "starting";
    case EMBER_POOL_RUNNING: return "running";
    case EMBER_POOL_STOPPING: return "stopping";
    case EMBER_POOL_DOWN: return "down";
    default: return "unknown";
    }
}

/* "0-3,8" from a runner's cpuset words; "-" when unbound. */
static void cpuset_text(const uint64_t *w, char *out, size_t len)
{
    size_t n = 0;
    out[0] = 0;
    int c = 0, max = EMBER_CPUSET_WORDS * 64;
    while (c < max && n + 16 < len) {
        if (!((w[c / 64] >> (c % 64)) & 1)) { c++; continue; }
        int e = c;
        while (e + 1 < max && ((w[(e + 1) / 64] >> ((e + 1) % 64)) & 1)) e++;
        n += (size_t)snprintf(out + n, len - n, n ? ",%d" : "%d", c);
        if (e > c) n += (size_t)snprintf(out + n, len - n, "-%d", e);
        c = e + 1;
    }
    if (!out[0]) snprintf(out, len, "-");
}

static const char *placement_name(uint32_t p)
{
    return p == EMBER_PLACEMENT_NUMA ? "numa" : p == EMBER_PLACEMENT_CORE ? "core" : "none";
}

static void human_size(uint64_t b, char *out, size_t len)
{
    if (b >= 1ull << 30) snprintf(out, len, "%.1fG", b / 1073741824.0);
    else if (b >= 1ull << 20) snprintf(out, len, "%.1fM", b / 1048576.0);
    else if (b >= 1ull << 10) snprintf(out, len, "%.1fK", b / 1024.0);
    else snprintf(out, len, "%" PRIu64, b);
}

static int cmd_stats(int argc, char **argv)
{
    if (argc < 1 || argv[0][0] == '-') return usage_error("NAME is missing");
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = true;
        else return usage_error("unexpected argument '%s'", argv[i]);
    }
    ember_client *c;
    if (attach(argv[0], &c)) return 1;
    struct ember__view *v = &c->v;
    struct ember_shm_header *h = v->hdr;
    /* calls: queued (in the queue), running (on a runner thread) */
    unsigned queued = 0, running = 0;
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint32_t st = ember__st(atomic_load(&v->slots[i].state));
        queued += st == EMBER_SLOT_QUEUED;
        running += st == EMBER_SLOT_RUNNING || st == EMBER_SLOT_ABANDONED;
    }
    uint64_t now = ember__now_ns();
    if (json) {
        printf("{\"pool\":\"%s\",\"state\":\"%s\",\"backend\":\"%s\",\"supervisor\":%u,"
               "\"placement\":\"%s\",\"nodes\":%u,"
               "\"min\":%u,\"max\":%u,\"max_limit\":%u,\"max_concurrency\":%u,\"serving\":%u,"
               "\"ready\":%u,\"queued\":%u,\"running\":%u,\"queue_capacity\":%u,"
               "\"runners_started\":%" PRIu64 ",\"runners_died\":%" PRIu64 ",\"boot_failures\":%" PRIu64
               ",\"calls_crashed\":%" PRIu64 ",\"calls_expired\":%" PRIu64 ",\"calls_killed\":%" PRIu64
               ",\"callers_reaped\":%" PRIu64 ",\"runners\":[",
               c->name, pool_state(atomic_load(&h->pool_state)), h->backend, atomic_load(&h->sup_pid),
               placement_name(h->placement), v->nrings, atomic_load(&h->min), atomic_load(&h->max), v->nrunners, v->max_conc,
               atomic_load(&h->nserving), atomic_load(&h->nready), queued, running, v->nslots,
               atomic_load(&h->runners_started), atomic_load(&h->runners_died),
               atomic_load(&h->boot_failures), atomic_load(&h->calls_crashed),
               atomic_load(&h->calls_expired), atomic_load(&h->calls_killed),
               atomic_load(&h->callers_reaped));
    } else {
        printf("pool '%s': %s, backend %s, supervisor pid %u, placement %s over %u node%s\n", c->name,
               pool_state(atomic_load(&h->pool_state)), h->backend, atomic_load(&h->sup_pid),
               placement_name(h->placement), v->nrings, v->nrings == 1 ? "" : "s");
        printf("runners: %u serving (%u ready), min %u, max %u (limit %u), max_concurrency %u\n",
               atomic_load(&h->nserving), atomic_load(&h->nready), atomic_load(&h->min),
               atomic_load(&h->max), v->nrunners, v->max_conc);
        printf("calls: %u queued, %u running (queue capacity %u); crashed %" PRIu64 ", expired %" PRIu64
               ", killed %" PRIu64 ", boot-failed %" PRIu64 "\n",
               queued, running, v->nslots, atomic_load(&h->calls_crashed), atomic_load(&h->calls_expired),
               atomic_load(&h->calls_killed), atomic_load(&h->calls_boot_failed));
        printf("runners started %" PRIu64 ", ended %" PRIu64 ", boot failures %" PRIu64
               ", callers reaped %" PRIu64 "\n",
               atomic_load(&h->runners_started), atomic_load(&h->runners_died),
               atomic_load(&h->boot_failures), atomic_load(&h->callers_reaped));
        printf("%5s %8s %-9s %4s %-14s %6s %10s %8s %8s %9s\n", "#", "pid", "state", "node", "cpus", "busy",
               "calls", "stolen", "rss", "up");
    }
    bool first = true;
    for (uint32_t r = 0; r < v->nrunners; r++) {
        struct ember_runner_ent *re = &v->runners[r];
        uint32_t pid = atomic_load(&re->pid), st = atomic_load(&re->state);
        if (!pid || st == EMBER_RUNNER_EMPTY) continue;
        unsigned busy = 0;
        uint64_t jobs = 0, stolen = 0;
        for (uint32_t t = 0; t < v->max_conc; t++) {
            busy += atomic_load(&v->workers[r * v->max_conc + t].busy) != 0;
            jobs += atomic_load(&v->workers[r * v->max_conc + t].jobs_done);
            stolen += atomic_load(&v->workers[r * v->max_conc + t].jobs_stolen);
        }
        char cpus[160];
        cpuset_text(re->cpuset, cpus, sizeof cpus);
        double up = re->started_ns && now > re->started_ns ? (now - re->started_ns) / 1e9 : 0;
        uint64_t rss = atomic_load(&re->rss);
        if (json) {
            printf("%s{\"index\":%u,\"pid\":%u,\"state\":\"%s\",\"node\":%d,\"cpus\":\"%s\",\"busy\":%u,"
                   "\"calls\":%" PRIu64 ",\"stolen\":%" PRIu64 ",\"rss\":%" PRIu64 ",\"up_s\":%.3f}",
                   first ? "" : ",", r, pid, runner_state(st), re->node, cpus, busy, jobs, stolen, rss, up);
        } else {
            char rs[16], bs[16];
            human_size(rss, rs, sizeof rs);
            snprintf(bs, sizeof bs, "%u/%u", busy, v->max_conc);
            printf("%5u %8u %-9s %4d %-14s %6s %10" PRIu64 " %8" PRIu64 " %8s %8.1fs\n", r, pid,
                   runner_state(st), re->node, cpus, bs, jobs, stolen, rss ? rs : "-", up);
        }
        first = false;
    }
    if (json) printf("]}\n");
    ember_detach(c);
    return 0;
}

static const char *event_type(int t)
{
    return t == EMBER_EV_GROW_START ? "grow_start" : t == EMBER_EV_GROW_END ? "grow_end"
         : t == EMBER_EV_SHRINK     ? "shrink"     : "?";
}

static int cmd_events(int argc, char **argv)
{
    if (argc < 1 || argv[0][0] == '-') return usage_error("NAME is missing");
    bool follow = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0) follow = true;
        else return usage_error("unexpected argument '%s'", argv[i]);
    }
    ember_client *c;
    if (attach(argv[0], &c)) return 1;
    struct ember_shm_header *h = c->v.hdr;
    uint64_t cursor = 0;
    for (;;) {
        uint32_t ep = atomic_load(&h->epoch);
        ember_event ev[32];
        int n;
        while ((n = ember_events_read(c, &cursor, ev, 32)) > 0)
            for (int i = 0; i < n; i++) {
                printf("%" PRIu64 " %.6f %s runner=%u runners=%u reason=%s", ev[i].seq,
                       ev[i].time_ns / 1e9, event_type(ev[i].type), ev[i].runner, ev[i].runners,
                       ember_why_name(ev[i].reason));
                if (ev[i].type == EMBER_EV_GROW_END)
                    printf(ev[i].ok ? " ok" : " failed count=%d status=%d signal=%d msg=\"%s\"",
                           ev[i].count, ev[i].status, ev[i].signal, ev[i].msg);
                putchar('\n');
            }
        fflush(stdout);
        if (!follow) break;
        if (atomic_load(&h->pool_state) != EMBER_POOL_RUNNING) break;
        ember__futex_wait(&h->epoch, ep, ember__now_ns() + 200000000ull);
    }
    ember_detach(c);
    return 0;
}

static int cmd_call(int argc, char **argv)
{
    const char *pos[3] = { NULL, NULL, NULL };
    int npos = 0;
    int64_t timeout = EMBER_TIMEOUT_DEFAULT;
    unsigned flags = 0;
    for (int i = 0; i < argc;) {
        if (strncmp(argv[i], "--", 2) != 0 || !argv[i][2]) {
            if (npos == 3) return usage_error("too many arguments");
            pos[npos++] = argv[i++];
            continue;
        }
        char name[64];
        const char *val;
        bool flag = strcmp(argv[i], "--unlinked") == 0;
        i += take_option(argc, argv, i, name, sizeof name, &val, !flag);
        if (strcmp(name, "unlinked") == 0) flags |= EMBER_UNLINKED;
        else if (strcmp(name, "timeout") == 0) {
            if (!val || !parse_duration(val, &timeout))
                return usage_error("option --timeout: '%s' is not a duration", val ? val : "");
        } else {
            return usage_error("unknown option --%s", name);
        }
    }
    if (npos < 2) return usage_error("NAME and HANDLER are needed");
    ember_client *c;
    if (attach(pos[0], &c)) return 1;
    int h = ember_handler(c, pos[1]);
    if (h < 0) {
        fprintf(stderr, "%s: pool '%s' has no handler '%s'\n", g_cmd, pos[0], pos[1]);
        ember_detach(c);
        return 1;
    }
    const char *arg = pos[2] ? pos[2] : "";
    ember_result r;
    int rc = ember_call_flags(c, h, arg, strlen(arg), &r, timeout, flags);
    if (rc == 0) {
        fwrite(r.data, 1, r.len, stdout);
        fflush(stdout);
    } else {
        fail(rc, pos[1]);
    }
    ember_result_release(c, &r);
    ember_detach(c);
    return rc ? 1 : 0;
}

static void help(FILE *f)
{
    fprintf(f,
            "usage:\n"
            "  ember pool start NAME [--OPTION VALUE]... [--foreground] [--log-file PATH]\n"
            "  ember pool stop NAME [--shutdown_timeout DURATION]\n"
            "  ember pool resize NAME [--min N] [--max N]\n"
            "  ember pool wait NAME [--ready N | --runners N] [--timeout DURATION]\n"
            "  ember pool list\n"
            "  ember stats NAME [--json]\n"
            "  ember events NAME [--follow]\n"
            "  ember call NAME HANDLER [ARG] [--timeout DURATION] [--unlinked]\n"
            "pool options (struct ember_pool_config's names; '-' may stand for '_'):\n"
            "  --min N --max N --max_limit N --max_concurrency N --single_use\n"
            "  --timeout D --boot_timeout D --shutdown_timeout D --kill_grace D\n"
            "  --idle_shutdown_after D --min_idle_shutdown_after D|never\n"
            "  --max_jobs N --max_rss SIZE --queue_capacity N --log 0|1|2\n"
            "  --max_payload SIZE --payload_space SIZE --max_callers N\n"
            "  --placement numa|core|none --nodes LIST (NUMA nodes by P#, e.g. 0,2-3)\n"
            "DURATION: 250ms, 30s, 2m, 1h (a bare number is milliseconds); SIZE: 512M, 2G...\n"
            "handlers of a pool started here: noop, echo, sleep MS, spin MS, exec 'SHELL COMMAND'\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "pool") == 0) {
        if (argc < 3) return usage_error("pool: start, stop, resize, wait or list?");
        const char *sub = argv[2];
        static char label[32];
        snprintf(label, sizeof label, "ember pool %s", sub);
        g_cmd = label;
        if (strcmp(sub, "start") == 0) return cmd_pool_start(argc - 3, argv + 3);
        if (strcmp(sub, "stop") == 0) return cmd_pool_stop(argc - 3, argv + 3);
        if (strcmp(sub, "resize") == 0) return cmd_pool_resize(argc - 3, argv + 3);
        if (strcmp(sub, "wait") == 0) return cmd_pool_wait(argc - 3, argv + 3);
        if (strcmp(sub, "list") == 0) return cmd_pool_list();
        g_cmd = "ember";
        return usage_error("pool: unknown command '%s'", sub);
    }
    static char cmd_label[32];
    snprintf(cmd_label, sizeof cmd_label, "ember %s", cmd);
    g_cmd = cmd_label;
    if (strcmp(cmd, "stats") == 0) return cmd_stats(argc - 2, argv + 2);
    if (strcmp(cmd, "events") == 0) return cmd_events(argc - 2, argv + 2);
    if (strcmp(cmd, "call") == 0) return cmd_call(argc - 2, argv + 2);
    g_cmd = "ember";
    return usage_error("unknown command '%s'", cmd);
}
