/* cli/pool.c - ember pool start, stop, resize, wait, list.
 *
 * `pool start` runs the pool's application in a daemon (or in the
 * foreground): it starts the pool with the options given and serves until
 * its supervisor ends or a signal asks it to stop. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ember/plugin.h>
#include "cli.h"

struct start_args {
    struct ember_pool_config cfg;
    bool foreground;
    const char *logfile;
    int logfd;           /* LOGFILE, opened by the command (-1: none) */
    const char *metrics_listen;       /* --metrics-listen ADDR:PORT, NULL: none */
    struct sockaddr_storage metrics_addr;
    socklen_t metrics_addr_len;
};

/* How often the pool's application looks at its pool while systemd
 * listens: STATUS= each time, WATCHDOG=1 (at half the watchdog's period
 * when that is shorter). */
#define SERVE_LOOK_NS (5 * EMBER_SECOND)

/* A log line of the pool's application (ember_log's format). */
static void app_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void app_log(int prio, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ember_log(prio, "ember[%d]: %s", (int)getpid(), msg);
}

/* Until the pool is ready for systemd: its min runners ready, or
 * BOOT_TIMEOUT passed (then it is ready without them, and says why).
 * Returns once ready, or early when a stop signal or the supervisor's end
 * shows on P; *ST is the last snapshot. */
static void await_ready(ember_client *c, struct pollfd *p, int64_t boot_timeout, ember_stats *st,
                        const char **why)
{
    uint64_t until = cli_now_ns() + (uint64_t)boot_timeout;
    *why = NULL;
    for (;;) {
        ember_stats_read(c, st, NULL, 0);
        if (st->ready >= st->min || st->state != EMBER_POOL_RUNNING) return;
        uint64_t now = cli_now_ns();
        if (now >= until) {
            *why = "its min runners are not ready after boot_timeout (ember events POOL says why)";
            app_log(EMBER_LOG_WARNING, "pool '%s': %s", st->pool, *why);
            return;
        }
        if (poll(p, 2, 0) > 0) return;
        /* the epoch moves when a runner is ready; the signals are looked
         * at again within 100 ms */
        uint64_t slice = until - now < 100000000ull ? until - now : 100000000ull;
        if (ember_stats_wait(c, st->epoch, (int64_t)slice) != 0) return;
    }
}

/* The pool's application: run until the supervisor ends or SIGTERM, SIGINT
 * or SIGHUP asks for a stop, which drains the pool (ember_pool_stop: its
 * shutdown_timeout for the running calls). With SERVICE, tell systemd how
 * the pool is (service.c). The exit status: 0 for a stop that went
 * cleanly, 1 when the supervisor ended on its own or the stop did not. */
static int serve(ember_pool *pool, const struct start_args *a, bool service)
{
    static const int stop_signals[] = { SIGTERM, SIGINT, SIGHUP };
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
        sigaddset(&set, stop_signals[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct pollfd p[2];
    p[0].fd = signalfd(-1, &set, SFD_CLOEXEC);
    p[1].fd = (int)syscall(SYS_pidfd_open, ember_pool_supervisor_pid(pool), 0);
    p[0].events = p[1].events = POLLIN;
    struct cli_service sv = { 0 };
    ember_client *c = NULL;
    if (service && cli_service_open(&sv) && ember_attach(a->cfg.name, &c) != 0) {
        app_log(EMBER_LOG_WARNING, "pool '%s': cannot attach to it to tell systemd its state: %s",
                a->cfg.name, ember_last_error());
        c = NULL;
    }
    if (c) {
        ember_stats st;
        const char *why;
        await_ready(c, p, a->cfg.boot_timeout_ns, &st, &why);
        cli_service_status(&sv, &st, why, true, sv.watchdog_ns != 0);
        int64_t period = SERVE_LOOK_NS;
        if (sv.watchdog_ns && (int64_t)(sv.watchdog_ns / 2) < period) period = (int64_t)(sv.watchdog_ns / 2);
        for (;;) {
            int k = poll(p, 2, (int)(period / 1000000));
            if (k < 0 && errno == EINTR) continue;
            if (k != 0) break;
            /* the watchdog is fed while the supervisor lives (else the
             * poll has returned), its loop comes round and the pool runs:
             * a stuck supervisor is restarted by systemd */
            ember_stats_read(c, &st, NULL, 0);
            bool stuck = st.supervisor_silent_ns > CLI_SUP_STUCK_NS;
            char what[96];
            if (stuck)
                snprintf(what, sizeof what, "the supervisor (pid %d) has not come round for %.0f s",
                         st.supervisor_pid, (double)st.supervisor_silent_ns / 1e9);
            cli_service_status(&sv, &st, stuck ? what : NULL, false,
                               sv.watchdog_ns && st.state == EMBER_POOL_RUNNING && !stuck);
        }
        ember_detach(c);
    } else {
        while (poll(p, 2, -1) < 0 && errno == EINTR) {}
    }
    struct signalfd_siginfo si;
    if (p[0].revents && read(p[0].fd, &si, sizeof si) == (ssize_t)sizeof si) {
        char why[160];
        snprintf(why, sizeof why, "draining: no new calls, running ones have %.0f s to finish",
                 (double)a->cfg.shutdown_timeout_ns / 1e9);
        app_log(EMBER_LOG_INFO, "pool '%s': %s: %s", a->cfg.name, strsignal((int)si.ssi_signo), why);
        cli_service_stopping(&sv, why);
    }
    /* a supervisor that ended (`ember pool stop`, or it died): only reaped,
     * and how it ended said */
    int rc = ember_pool_stop(pool, -1);
    if (rc) app_log(EMBER_LOG_ERR, "%s", ember_last_error()); /* it names the pool */
    return rc ? 1 : 0;
}

/* Serve /metrics as A asks, once the pool runs: true, with *MH the server
 * (NULL: none asked for), or false with the reason in ERR. */
static bool metrics_start(const struct start_args *a, struct metrics_http **mh, char *err, size_t len)
{
    *mh = NULL;
    if (!a->metrics_listen) return true;
    *mh = metrics_http_start(a->cfg.name, &a->metrics_addr, a->metrics_addr_len, a->metrics_listen,
                             err, len);
    return *mh != NULL;
}

/* Append plugin names or paths VAL (a list) to CFG's list; 0 or 1 (no memory). The list
 * lives as long as the command (the one joined last, in PLUGINS_JOINED). */
static char *plugins_joined;
static int plugins_append(struct ember_pool_config *cfg, const char *val)
{
    if (!cfg->plugins || !cfg->plugins[0]) {
        cfg->plugins = val;
        return 0;
    }
    size_t n = strlen(cfg->plugins) + strlen(val) + 2;
    char *s = malloc(n);
    if (!s) {
        fprintf(stderr, "%s: no memory for the list of plugins\n", cli_cmd);
        return 1;
    }
    snprintf(s, n, "%s,%s", cfg->plugins, val);
    cfg->plugins = s;
    free(plugins_joined); /* the list before, now copied into S */
    plugins_joined = s;
    return 0;
}

/* Load the plugins of LIST (comma-separated) here, before the daemon forks,
 * so that a bad one is said at once (and none is taken for a clash with a
 * running pool); ember_pool_start() finds them loaded. 0, or 1 with the
 * failure printed. */
static int load_plugins(const char *list)
{
    for (const char *s = list ? list : ""; *s;) {
        size_t n = strcspn(s, ",");
        char one[4096];
        snprintf(one, sizeof one, "%.*s", (int)n, s);
        s += n + (s[n] == ',');
        if (!one[0]) continue;
        int rc = ember_plugin_load(one, NULL);
        if (rc) { /* the message says it all (fail()'s hints are about pools) */
            fprintf(stderr, "%s: %s%s\n", cli_cmd, ember_last_error(),
                    rc == -EMBER_ENOENT && !strchr(one, '/')
                        ? "; 'ember plugins' lists those found, or give a path" : "");
            return 1;
        }
    }
    return 0;
}

/* The arguments of `pool start NAME ...` into *A; 0 or a usage error (2). */
static int start_args_parse(int argc, char **argv, struct start_args *a)
{
    if (argc < 1 || argv[0][0] == '-') return usage_error("the pool's NAME comes first: ember pool start NAME [--OPTION VALUE]...");
    cli_pool_config_init(&a->cfg);
    a->cfg.name = argv[0];
    a->foreground = false;
    a->logfile = NULL;
    a->logfd = -1;
    a->metrics_listen = NULL;
    for (int i = 1; i < argc;) {
        char name[64];
        if (!option_name(argv[i], name, sizeof name))
            return usage_error("unexpected argument '%s': pool options start with -- (--max 4)",
                               argv[i]);
        bool is_flag = strcmp(name, "foreground") == 0 || pool_option_is_flag(name);
        const char *val = option_value(argc, argv, &i, !is_flag);
        if (strcmp(name, "foreground") == 0) {
            a->foreground = true;
        } else if (strcmp(name, "log_file") == 0) {
            if (!val) return usage_error("option --log-file needs a path");
            a->logfile = val;
        } else if (strcmp(name, "metrics_listen") == 0) {
            int rc = metrics_listen_parse(val, &a->metrics_addr, &a->metrics_addr_len);
            if (rc) return rc;
            a->metrics_listen = val;
        } else if (strcmp(name, "name") == 0) {
            return usage_error("the name is the first argument, not --name");
        } else if (strcmp(name, "plugin") == 0 || strcmp(name, "plugins") == 0) {
            /* each --plugin adds one, each --plugins a list */
            if (!val || !val[0])
                return usage_error("option --%s needs a plugin's NAME or PATH ('ember plugins' "
                                   "lists them)", name);
            int rc = plugins_append(&a->cfg, val);
            if (rc) return rc;
        } else {
            int rc = set_pool_option(&a->cfg, name, val);
            if (rc) return rc;
        }
    }
    return 0;
}

/* Say why pool start failed with RC (its message in DETAIL); returns 1. */
static int start_failed(const struct start_args *a, int rc, const char *detail)
{
    if (rc == -EMBER_EEXIST)
        fprintf(stderr, "%s: pool '%s' is already running: stop it first (ember pool stop %s), or "
                "choose another name\n", cli_cmd, a->cfg.name, a->cfg.name);
    else
        fprintf(stderr, "%s: %s\n", cli_cmd, detail[0] ? detail : ember_strerror(rc));
    return 1;
}

static int start_foreground(const struct start_args *a)
{
    ember_pool *pool;
    int rc = ember_pool_start(&a->cfg, &pool);
    if (rc) return start_failed(a, rc, ember_last_error());
    struct metrics_http *mh;
    char err[300];
    if (!metrics_start(a, &mh, err, sizeof err)) { /* the pool is not left running */
        ember_pool_stop(pool, -1);
        fprintf(stderr, "%s: %s\n", cli_cmd, err);
        return 1;
    }
    app_log(EMBER_LOG_INFO, "pool '%s' running (supervisor pid %d); Ctrl-C or SIGTERM stops it",
            a->cfg.name, ember_pool_supervisor_pid(pool));
    if (mh) app_log(EMBER_LOG_INFO, "pool '%s': metrics at http://%s/metrics", a->cfg.name, a->metrics_listen);
    if (a->logfd >= 0) { /* from now on the log goes there */
        fflush(NULL);
        dup2(a->logfd, 1);
        dup2(a->logfd, 2);
    }
    rc = serve(pool, a, true);
    metrics_http_stop(mh);
    return rc;
}

/* Close every descriptor but 0, 1, 2 and KEEP: what the daemon, and the
 * supervisor and runners it forks, would otherwise hold of the caller's
 * (a copy of its pipe keeps a $(...) or a `| cat` waiting). */
static void close_inherited(int keep)
{
    if (keep > 3 && close_range(3, (unsigned)keep - 1, 0) == 0 &&
        close_range((unsigned)keep + 1, ~0u, 0) == 0)
        return;
    if (keep == 3 && close_range(4, ~0u, 0) == 0) return;
    long max = sysconf(_SC_OPEN_MAX); /* a kernel before 5.9 */
    for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
        if (fd != keep) close(fd);
}

/* The daemon's side: detached from the caller (its own session, stdin
 * /dev/null, stdout and stderr the log file or /dev/null, nothing else of
 * the caller's kept), it starts the pool, reports on REPORT ("0 PID" or
 * "CODE MESSAGE") and serves. */
static _Noreturn void daemon_main(const struct start_args *a, int nul, int report)
{
    setsid();
    dup2(nul, 0);
    dup2(a->logfd >= 0 ? a->logfd : nul, 1);
    dup2(a->logfd >= 0 ? a->logfd : nul, 2);
    close_inherited(report);
    ember_pool *pool;
    int rc = ember_pool_start(&a->cfg, &pool);
    char msg[400], err[300] = "";
    struct metrics_http *mh = NULL;
    if (!rc && !metrics_start(a, &mh, err, sizeof err)) { /* the pool is not left running */
        ember_pool_stop(pool, -1);
        rc = -EMBER_ESYSTEM;
    }
    int n = rc ? snprintf(msg, sizeof msg, "%d %s", rc, err[0] ? err : ember_last_error())
               : snprintf(msg, sizeof msg, "0 %d", ember_pool_supervisor_pid(pool));
    if (write(report, msg, (size_t)n) < 0) {}
    close(report); /* the supervisor and runners have a copy, never written */
    if (rc) _exit(1);
    rc = serve(pool, a, false);
    metrics_http_stop(mh);
    _exit(rc);
}

/* Read the daemon PID's report from RP into MSG (LEN bytes): its length,
 * or 0 if it died without one. */
static ssize_t read_report(int rp, pid_t pid, char *msg, size_t len)
{
    /* the pool's processes inherit the pipe's write end: watch the daemon
     * itself, not only for the pipe's end */
    struct pollfd p[2] = { { .fd = rp, .events = POLLIN },
                           { .fd = (int)syscall(SYS_pidfd_open, pid, 0), .events = POLLIN } };
    ssize_t n = 0;
    for (;;) {
        int k = poll(p, p[1].fd >= 0 ? 2 : 1, -1);
        if (k < 0 && errno == EINTR) continue;
        if (k > 0 && p[0].revents) n = read(rp, msg, len - 1);
        else if (k > 0 && p[1].revents) { /* it ended: a report may still be in the pipe */
            fcntl(rp, F_SETFL, O_NONBLOCK);
            n = read(rp, msg, len - 1);
        }
        break;
    }
    if (p[1].fd >= 0) close(p[1].fd);
    return n < 0 ? 0 : n;
}

/* The daemon: a child starts the pool and reports through a pipe, then
 * serves; the command returns once it has the report. */
static int start_daemon(const struct start_args *a)
{
    int rp[2];
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul < 0 || pipe2(rp, O_CLOEXEC) < 0) {
        int e = errno;
        if (nul >= 0) close(nul);
        fprintf(stderr, "%s: cannot %s: %s\n", cli_cmd, nul < 0 ? "open /dev/null" : "make a pipe",
                strerror(e));
        return 1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: cannot fork the pool's daemon: %s\n", cli_cmd, strerror(errno));
        return 1;
    }
    if (pid == 0) {
        close(rp[0]);
        daemon_main(a, nul, rp[1]);
    }
    close(rp[1]);
    close(nul);
    char msg[400];
    ssize_t n = read_report(rp[0], pid, msg, sizeof msg);
    close(rp[0]);
    if (n <= 0) {
        int st = 0;
        waitpid(pid, &st, 0);
        fprintf(stderr, "%s: the pool's daemon died while starting the pool (%s %d); run it with "
                "--foreground to see why\n", cli_cmd, WIFSIGNALED(st) ? "signal" : "exit status",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        return 1;
    }
    msg[n] = 0;
    int rc = atoi(msg);
    const char *rest = strchr(msg, ' ');
    rest = rest ? rest + 1 : "";
    if (rc) {
        waitpid(pid, NULL, 0);
        return start_failed(a, rc, rest);
    }
    printf("pool '%s' started: supervisor pid %s, min %u, max %u, max_concurrency %u\n", a->cfg.name,
           rest, a->cfg.min, a->cfg.max, a->cfg.max_concurrency);
    return 0;
}

int cmd_pool_start(int argc, char **argv)
{
    struct start_args a;
    int rc = start_args_parse(argc, argv, &a);
    if (rc) return rc;
    if (a.logfile) { /* a path that will not do is said now, not lost in the daemon */
        a.logfd = open(a.logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (a.logfd < 0) {
            fprintf(stderr, "%s: --log-file %s: %s (give a file in a directory you may write to)\n",
                    cli_cmd, a.logfile, strerror(errno));
            return 1;
        }
    }
    cli_register_handlers();
    cli_handlers_pool_config(&a.cfg);
    rc = load_plugins(a.cfg.plugins);
    if (rc) {
        if (a.logfd >= 0) close(a.logfd);
        return rc;
    }
    rc = a.foreground ? start_foreground(&a) : start_daemon(&a);
    if (a.logfd >= 0) close(a.logfd);
    return rc;
}

/* Say why attaching to pool NAME failed with RC; returns 1. */
static int attach_failed(int rc, const char *name)
{
    if (rc == -EMBER_ENOPOOL) {
        fprintf(stderr, "%s: no pool '%s' is running (start it with: ember pool start %s)\n",
                cli_cmd, name, name);
        return 1;
    }
    char what[96];
    snprintf(what, sizeof what, "cannot attach to pool '%s'", name);
    return fail(rc, what);
}

int cli_attach(const char *name, ember_client **c)
{
    int rc = ember_attach(name, c);
    return rc ? attach_failed(rc, name) : 0;
}

int cli_open(int argc, char **argv, const struct cli_opt *opts, const char **pool,
             ember_client **c)
{
    int npos, rc = cli_parse_args(argc, argv, opts, pool, 1, &npos);
    if (rc) return rc;
    if (npos < 1) return usage_error("the pool's NAME is missing");
    return cli_attach(*pool, c);
}

static const char *plural(unsigned n) { return n == 1 ? "" : "s"; }

/* Stop: a drain that the supervisor does and reports in the pool's stats;
 * this waits for it and says what it did. */
int cmd_pool_stop(int argc, char **argv)
{
    int64_t timeout = -1;
    const struct cli_opt opts[] = { { "shutdown_timeout", CLI_DURATION, &timeout, 0, 0 }, { 0 } };
    const char *pool;
    int npos, rc = cli_parse_args(argc, argv, opts, &pool, 1, &npos);
    if (rc) return rc;
    if (npos < 1) return usage_error("the pool's NAME is missing");
    ember_client *c;
    rc = ember_attach(pool, &c);
    if (rc == -EMBER_ENOPOOL) { /* what the user wanted is so */
        printf("pool '%s' is not running; nothing to stop\n", pool);
        return 0;
    }
    if (rc) return attach_failed(rc, pool);
    rc = ember_stop(c, timeout);
    ember_stats st;
    ember_stats_read(c, &st, NULL, 0);
    ember_detach(c);
    /* EMBER_EPOOLDOWN: the supervisor did not end its stop cleanly (killed
     * by this stop after the timeout, or killed or crashed); the message says which */
    if (rc) return fail(rc, NULL);
    printf("pool '%s' stopped: %u running call%s finished, %u killed", pool, st.stop_finished,
           plural(st.stop_finished), st.stop_killed);
    if (st.stop_never_ran)
        printf(", %u queued call%s never ran", st.stop_never_ran, plural(st.stop_never_ran));
    printf("\n");
    return 0;
}

int cmd_pool_resize(int argc, char **argv)
{
    uint64_t min = UINT64_MAX, max = UINT64_MAX; /* not given */
    const struct cli_opt opts[] = { { "min", CLI_COUNT, &min, UINT32_MAX, 0 },
                                    { "max", CLI_COUNT, &max, UINT32_MAX, 0 }, { 0 } };
    const char *pool;
    ember_client *c;
    int rc = cli_open(argc, argv, opts, &pool, &c);
    if (rc) return rc;
    if (min == UINT64_MAX && max == UINT64_MAX) {
        ember_detach(c);
        return usage_error("give --min, --max or both");
    }
    ember_stats st;
    ember_stats_read(c, &st, NULL, 0);
    unsigned nmin = min != UINT64_MAX ? (unsigned)min : st.min;
    unsigned nmax = max != UINT64_MAX ? (unsigned)max : st.max;
    rc = ember_resize(c, nmin, nmax);
    ember_detach(c);
    if (rc) return fail(rc, NULL);
    printf("pool '%s': min %u, max %u\n", pool, nmin, nmax);
    return 0;
}

/* Wait until exactly N runner processes live, all of them serving. */
static int wait_runners(ember_client *c, const char *pool, unsigned n, int64_t timeout)
{
    uint64_t until = cli_now_ns() + (uint64_t)timeout;
    for (;;) {
        ember_stats st;
        ember_stats_read(c, &st, NULL, 0);
        if (st.runners == n && st.serving == n) return 0;
        if (st.state != EMBER_POOL_RUNNING) {
            fprintf(stderr, "%s: pool '%s' stopped while waiting for %u runners\n", cli_cmd, pool, n);
            return 1;
        }
        uint64_t now = cli_now_ns();
        if (now >= until) {
            fprintf(stderr, "%s: pool '%s' has %u runners (%u serving), not %u, at the end of the "
                    "timeout; wait longer with --timeout DURATION\n", cli_cmd, pool, st.runners,
                    st.serving, n);
            return 1;
        }
        int rc = ember_stats_wait(c, st.epoch, (int64_t)(until - now));
        if (rc) return fail(rc, NULL);
    }
}

int cmd_pool_wait(int argc, char **argv)
{
    uint64_t ready = 1, runners = UINT64_MAX;
    int64_t timeout = 30 * EMBER_SECOND;
    const struct cli_opt opts[] = { { "ready", CLI_COUNT, &ready, 65536, 0 },
                                    { "runners", CLI_COUNT, &runners, 65536, 0 },
                                    { "timeout", CLI_DURATION, &timeout, 0, 0 }, { 0 } };
    const char *pool;
    ember_client *c;
    int rc = cli_open(argc, argv, opts, &pool, &c);
    if (rc) return rc;
    rc = runners == UINT64_MAX ? ember_wait_ready(c, (unsigned)ready, timeout)
                               : wait_runners(c, pool, (unsigned)runners, timeout);
    ember_detach(c);
    if (rc && runners == UINT64_MAX) return fail(rc, NULL);
    return rc;
}

int cmd_pool_list(int argc, char **argv)
{
    const struct cli_opt opts[] = { { 0 } };
    int npos, rc = cli_parse_args(argc, argv, opts, NULL, 0, &npos);
    if (rc) return rc;
    DIR *d = opendir("/dev/shm");
    if (!d) {
        fprintf(stderr, "%s: cannot list /dev/shm, where pools live: %s\n", cli_cmd, strerror(errno));
        return 1;
    }
    char prefix[32];
    snprintf(prefix, sizeof prefix, "ember.%u.", (unsigned)getuid());
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        const char *name = e->d_name + strlen(prefix);
        ember_client *c;
        if (ember_attach(name, &c) == 0) {
            ember_stats st;
            ember_stats_read(c, &st, NULL, 0);
            printf("%-24s supervisor %d, %u runners serving, min %u, max %u\n", name,
                   st.supervisor_pid, st.serving, st.min, st.max);
            ember_detach(c);
        }
    }
    closedir(d);
    return 0;
}
