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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "cli.h"

/* The pool's application: run until the supervisor ends or SIGTERM, SIGINT
 * or SIGHUP asks for a stop. */
static int serve(ember_pool *pool)
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
    while (poll(p, 2, -1) < 0 && errno == EINTR) {}
    ember_pool_stop(pool, -1); /* a supervisor that ended: only reaped */
    return 0;
}

struct start_args { struct ember_pool_config cfg; bool foreground; const char *logfile; };

/* The arguments of `pool start NAME ...` into *A; 0 or a usage error (2). */
static int start_args_parse(int argc, char **argv, struct start_args *a)
{
    if (argc < 1 || argv[0][0] == '-') return usage_error("the pool's NAME comes first");
    ember_pool_config_init(&a->cfg);
    a->cfg.name = argv[0];
    a->foreground = false;
    a->logfile = NULL;
    for (int i = 1; i < argc;) {
        char name[64];
        if (!option_name(argv[i], name, sizeof name))
            return usage_error("unexpected argument '%s'", argv[i]);
        bool is_flag = strcmp(name, "foreground") == 0 || pool_option_is_flag(name);
        const char *val = option_value(argc, argv, &i, !is_flag);
        if (strcmp(name, "foreground") == 0) {
            a->foreground = true;
        } else if (strcmp(name, "log_file") == 0) {
            if (!val) return usage_error("option --log-file needs a path");
            a->logfile = val;
        } else if (strcmp(name, "name") == 0) {
            return usage_error("the name is the first argument, not --name");
        } else {
            int rc = set_pool_option(&a->cfg, name, val);
            if (rc) return rc;
        }
    }
    return 0;
}

static int start_foreground(const struct start_args *a)
{
    ember_pool *pool;
    int rc = ember_pool_start(&a->cfg, &pool);
    if (rc) return fail(rc, a->cfg.name);
    fprintf(stderr, "%s: pool '%s' running (supervisor pid %d); Ctrl-C stops it\n", cli_cmd,
            a->cfg.name, ember_pool_supervisor_pid(pool));
    return serve(pool);
}

/* The daemon: a child starts the pool and reports through a pipe, then
 * serves; the command returns once it has the report. */
static int start_daemon(const struct start_args *a)
{
    int rp[2];
    if (pipe2(rp, O_CLOEXEC) < 0) return fail(-errno, "pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return fail(-errno, "fork");
    if (pid == 0) {
        close(rp[0]);
        setsid();
        int nul = open("/dev/null", O_RDWR);
        int out = a->logfile ? open(a->logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : nul;
        if (nul >= 0) dup2(nul, 0);
        if (out >= 0) dup2(out, 1), dup2(out, 2);
        ember_pool *pool;
        int rc = ember_pool_start(&a->cfg, &pool);
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
        fprintf(stderr, "%s: the pool's process died while starting it\n", cli_cmd);
        return 1;
    }
    msg[n] = 0;
    int rc = atoi(msg);
    const char *rest = strchr(msg, ' ');
    rest = rest ? rest + 1 : "";
    if (rc) {
        waitpid(pid, NULL, 0);
        fprintf(stderr, "%s: %s: %s\n", cli_cmd, ember_strerror(rc), rest);
        return 1;
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
    cli_register_handlers();
    cli_handlers_pool_config(&a.cfg);
    return a.foreground ? start_foreground(&a) : start_daemon(&a);
}

int cli_attach(const char *name, ember_client **c)
{
    int rc = ember_attach(name, c);
    if (rc) return fail(rc, name);
    return 0;
}

int cli_open(int argc, char **argv, const struct cli_opt *opts, const char **pool,
             ember_client **c)
{
    int npos, rc = cli_parse_args(argc, argv, opts, pool, 1, &npos);
    if (rc) return rc;
    if (npos < 1) return usage_error("the pool's NAME is missing");
    return cli_attach(*pool, c);
}

int cmd_pool_stop(int argc, char **argv)
{
    int64_t timeout = -1;
    const struct cli_opt opts[] = { { "shutdown_timeout", CLI_DURATION, &timeout, 0, 0 }, { 0 } };
    const char *pool;
    ember_client *c;
    int rc = cli_open(argc, argv, opts, &pool, &c);
    if (rc) return rc;
    rc = ember_stop(c, timeout);
    ember_detach(c);
    if (rc) return fail(rc, pool);
    printf("pool '%s' stopped\n", pool);
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
    if (rc) return fail(rc, pool);
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
        if (st.state != EMBER_POOL_RUNNING) return fail(-EMBER_EPOOLDOWN, pool);
        uint64_t now = cli_now_ns();
        if (now >= until) {
            fprintf(stderr, "%s: %s: %u runners, not %u\n", cli_cmd, pool, st.runners, n);
            return 1;
        }
        int rc = ember_stats_wait(c, st.epoch, (int64_t)(until - now));
        if (rc) return fail(rc, pool);
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
    if (rc && runners == UINT64_MAX) return fail(rc, pool);
    return rc;
}

int cmd_pool_list(int argc, char **argv)
{
    const struct cli_opt opts[] = { { 0 } };
    int npos, rc = cli_parse_args(argc, argv, opts, NULL, 0, &npos);
    if (rc) return rc;
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
