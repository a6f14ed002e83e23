/* cli/handlers.c - the handlers of pools started from the command line.
 *
 *   sleep MS   sleeps MS milliseconds, or until cancelled
 *   spin MS    keeps a CPU busy MS milliseconds, or until cancelled
 *   exec REQ   runs a command as exec.h's request REQ says (argv or shell
 *              string, cwd, environment, stdin, limits, outputs); the
 *              result is exec.h's: how it ended, stdout, stderr, usage
 * (noop and echo are libember's own.) */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "cli.h"
#include "exec.h"

extern char **environ;

/* The deadline ARG milliseconds (a decimal string) from now; false if ARG
 * is no number (the handler then fails with EINVAL as its detail). */
static bool ms_from_now(const void *a, size_t n, uint64_t *until)
{
    char buf[32], *end;
    if (n == 0 || n >= sizeof buf || *(const char *)a < '0' || *(const char *)a > '9') return false;
    memcpy(buf, a, n);
    buf[n] = 0;
    unsigned long long ms = strtoull(buf, &end, 10);
    if (*end || ms > 1000000000ull) return false;
    *until = cli_now_ns() + ms * 1000000ull;
    return true;
}

/* "sleep": sleeps ARG milliseconds, or until cancelled. */
static int h_sleep(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)o;
    uint64_t until;
    if (!ms_from_now(a, n, &until)) return EINVAL;
    while (!ember_job_cancelled(j) && cli_now_ns() < until) {
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
    if (!ms_from_now(a, n, &until)) return EINVAL;
    volatile uint64_t x = 0;
    while (cli_now_ns() < until && !ember_job_cancelled(j))
        for (int i = 0; i < 10000; i++) x += (uint64_t)i;
    return 0;
}

/* "exec": runs a command as exec.h's request says and returns exec.h's
 * result (how it ended, its stdout and stderr, its CPU time and peak RSS).
 *
 * The command starts from a clone(CLONE_VM | CLONE_VFORK) child: the runner
 * has max_concurrency threads, so the child copies no memory and, until its
 * execve, makes only async-signal-safe calls on a stack of its own: it makes
 * itself a process group (a cancel reaches everything it starts), dies with
 * the worker thread that started it (PR_SET_PDEATHSIG, checked against
 * getppid()), changes to the job's directory, puts stdin, stdout and stderr
 * in place, sets every signal the runner inherited or set back to its
 * default with an empty mask, and execs. A failure before or at the execve
 * comes back in the memory it shares with us. Everything the handler opens
 * is close-on-exec, so commands started by other threads at the same moment
 * get none of it.
 *
 * The handler then, in one poll loop (50 ms at most between looks):
 * writes the stdin bytes (non-blocking, as the command reads them), reads
 * stdout and stderr (each kept up to its limit, and counted past it so the
 * command never blocks on a full pipe), notices the command's end (its
 * pidfd), and the job's cancel (deadline, caller gone, ember_cancel, the
 * pool's stop): SIGTERM to the group, SIGKILL to what is left of it once the
 * command has ended or kill_grace later (half the pool's at most). Once the
 * command itself has ended, what is already in the pipes is read and the
 * call ends, whatever its background children still hold open.
 *
 * The group is given to ember_job_watch_pgid() while the command runs, so
 * that if this runner dies (killed past kill_grace, a stop's timeout) the
 * supervisor kills the group too. Outputs (req.outputs) are published on
 * exit status 0 (fsync'd, renamed, the directory fsync'd) and removed
 * otherwise. */

#define EXEC_OUT_LIMIT (16ull << 20)
#define EXEC_ERR_LIMIT (1ull << 20)
#define EXEC_GRACE_NS  2000000000ll
#define EXEC_LOOK_MS   50              /* the longest wait between looks at the cancel flag */
#define EXEC_STACK     (256u << 10)    /* the clone child's stack (only touched pages count) */
#define EXEC_DEFAULT_PATH "/bin:/usr/bin" /* execvp's, for an environment without PATH */

/* Where a stream is kept: up to LIMIT bytes of the TOTAL it wrote. */
struct capture {
    char *p;
    size_t len, cap;
    uint64_t total, limit;
};

/* What the clone child needs, and what it says back. The parent is stopped
 * (CLONE_VFORK) from the clone until the child's execve or _exit, so ERR and
 * STAGE, written by the child, are read by the parent only after that. */
struct child_args {
    const char *path;
    char *const *argv, *const *envp;
    int cwdfd;        /* AT_FDCWD: stay in the runner's */
    int fd[3];        /* stdin, stdout, stderr, all above 2 */
    pid_t parent;
    volatile int err, stage;
};
enum { STAGE_NONE, STAGE_CWD, STAGE_FDS, STAGE_EXEC };

/* One exec job in the handler. */
struct exec_job {
    const struct exec_req *req;
    const ember_job *job;
    int cwdfd;                 /* the job's directory (O_PATH), or AT_FDCWD */
    const char *prog;          /* what the user named: argv[0], or the shell */
    const char *path;          /* what is executed */
    char found[4096];          /* a PATH search's result */
    char *const *argv;
    char **shell_argv;
    int in_fd, in_w;           /* the child's stdin; our end of its pipe (stdin bytes) */
    size_t in_off;
    int out_r, out_w, err_r, err_w;
    struct capture out, err;
    bool cancelled;            /* it was told to stop: its outputs are not published */
    bool timed_out;            /* by its run limit: the result says EXEC_TIMEOUT */
    struct exec_res res;
    char msg[768];
};

static void job_fail(struct exec_job *x, int end, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void job_fail(struct exec_job *x, int end, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->msg, sizeof x->msg, fmt, ap);
    va_end(ap);
    x->res.end = end;
    x->res.code = code;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* FD moved above 2 if it is 0, 1 or 2 (a runner started with some of them
 * closed), so that the child's dup2s onto 0-2 cannot clobber each other;
 * -1 on failure. */
static int fd_above_2(int fd)
{
    if (fd < 0 || fd > 2) return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return nfd;
}

/* The job's PATH: from its environment, else the runner's. */
static const char *job_path_var(const struct exec_req *r)
{
    if (!r->env_set) {
        const char *p = getenv("PATH");
        return p ? p : EXEC_DEFAULT_PATH;
    }
    for (size_t i = 0; i < r->envc; i++)
        if (strncmp(r->env[i], "PATH=", 5) == 0) return r->env[i] + 5;
    return EXEC_DEFAULT_PATH;
}

/* Search PROG in PATH as execvp does (an empty entry is the working
 * directory; relative entries are relative to the job's): 0 with x->found
 * the first executable regular file, -EACCES with x->found the first match
 * that is not one, -ENOENT. */
static int search_path(struct exec_job *x, const char *prog, const char *pathvar)
{
    int rc = -ENOENT;
    char cand[sizeof x->found];
    for (const char *p = pathvar;; p++) {
        size_t n = strcspn(p, ":");
        int k = snprintf(cand, sizeof cand, "%.*s%s%s", (int)n, n ? p : "", n ? "/" : "", prog);
        struct stat st;
        if (k > 0 && (size_t)k < sizeof cand && fstatat(x->cwdfd, cand, &st, 0) == 0) {
            if (S_ISREG(st.st_mode) && faccessat(x->cwdfd, cand, X_OK, AT_EACCESS) == 0) {
                memcpy(x->found, cand, (size_t)k + 1);
                return 0;
            }
            if (rc == -ENOENT) {
                memcpy(x->found, cand, (size_t)k + 1);
                rc = -EACCES;
            }
        }
        p += n;
        if (!*p) return rc;
    }
}

/* The working directory, the program and its argv: false with the result
 * set when the command cannot start. */
static bool job_program(struct exec_job *x)
{
    const struct exec_req *r = x->req;
    if (r->cwd && (x->cwdfd = open(r->cwd, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
        int e = errno;
        job_fail(x, EXEC_FAILED, e, "cannot use working directory '%s': %s; run from a directory "
                 "the pool's runners can reach", r->cwd, strerror(e));
        return false;
    }
    if (r->shell) {
        x->prog = x->path = r->shell_path ? r->shell_path : "/bin/sh";
        x->shell_argv = malloc((r->argc + 3) * sizeof(char *));
        if (!x->shell_argv) {
            job_fail(x, EXEC_FAILED, ENOMEM, "cannot run '%s': out of memory", x->prog);
            return false;
        }
        x->shell_argv[0] = (char *)x->path;
        x->shell_argv[1] = (char *)"-c";
        for (size_t i = 0; i < r->argc; i++) x->shell_argv[2 + i] = (char *)r->argv[i];
        x->shell_argv[r->argc + 2] = NULL;
        x->argv = x->shell_argv;
        return true;
    }
    x->prog = x->path = r->argv[0];
    x->argv = (char *const *)r->argv;
    if (strchr(x->prog, '/')) return true; /* as given: the child's execve says the rest */
    const char *pathvar = job_path_var(r);
    int rc = x->prog[0] ? search_path(x, x->prog, pathvar) : -ENOENT;
    if (rc == -ENOENT) {
        job_fail(x, EXEC_NOTFOUND, ENOENT, "cannot run '%s': not found in PATH (%s); install it, "
                 "or give its full path", x->prog, pathvar);
        return false;
    }
    if (rc == -EACCES) {
        job_fail(x, EXEC_NOEXEC, EACCES, "cannot run '%s': '%s' is not an executable file; make it "
                 "one (chmod +x) or give the path of the right program", x->prog, x->found);
        return false;
    }
    x->path = x->found;
    return true;
}

/* A pipe: *R and *W, close-on-exec, above 2; OURS (0: the read end, 1: the
 * write end) non-blocking. */
static int job_pipe(int *r, int *w, int ours)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return -errno;
    p[0] = fd_above_2(p[0]);
    p[1] = fd_above_2(p[1]);
    *r = p[0], *w = p[1];
    if (p[0] < 0 || p[1] < 0 || fcntl(p[ours], F_SETFL, O_NONBLOCK) < 0) return -EMFILE;
    return 0;
}

/* stdin, stdout and stderr for the child: false with the result set. */
static bool job_fds(struct exec_job *x)
{
    const struct exec_req *r = x->req;
    int rc = 0;
    if (r->stdin_file) {
        x->in_fd = fd_above_2(openat(x->cwdfd, r->stdin_file, O_RDONLY | O_CLOEXEC));
        if (x->in_fd < 0) {
            int e = errno;
            job_fail(x, EXEC_FAILED, e, "cannot open stdin file '%s': %s", r->stdin_file, strerror(e));
            return false;
        }
    } else if (r->stdin_data) {
        rc = job_pipe(&x->in_fd, &x->in_w, 1);
    } else {
        x->in_fd = fd_above_2(open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (x->in_fd < 0) rc = -errno;
    }
    if (!rc) rc = job_pipe(&x->out_r, &x->out_w, 0);
    if (!rc) rc = job_pipe(&x->err_r, &x->err_w, 0);
    if (rc) {
        job_fail(x, EXEC_FAILED, -rc, "cannot start '%s': pipes: %s (the runner is out of file "
                 "descriptors?)", x->prog, strerror(-rc));
        return false;
    }
    return true;
}

/* The clone child: see the file's notes. Not instrumented: it runs on a
 * stack the sanitizers know nothing of, and must not leave marks there. */
__attribute__((no_sanitize_address, noinline)) static int child_main(void *arg)
{
    struct child_args *a = arg;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != a->parent) _exit(127); /* its thread is gone already */
    setpgid(0, 0);
    if (a->cwdfd != AT_FDCWD && fchdir(a->cwdfd) < 0) {
        a->err = errno;
        a->stage = STAGE_CWD;
        _exit(127);
    }
    for (int i = 0; i < 3; i++)
        if (dup2(a->fd[i], i) < 0) {
            a->err = errno;
            a->stage = STAGE_FDS;
            _exit(127);
        }
    struct sigaction sa;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL) {
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = SIG_DFL;
            sigaction(sig, &sa, NULL);
        }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(a->path, a->argv, a->envp);
    a->err = errno;
    a->stage = STAGE_EXEC;
    _exit(127);
}

/* The result of an execve that failed with E. */
static void exec_failed(struct exec_job *x, int e)
{
    struct stat st;
    const char *where = x->req->cwd ? x->req->cwd : "the runner's directory";
    if (e == ENOENT && fstatat(x->cwdfd, x->path, &st, 0) == 0)
        job_fail(x, EXEC_NOTFOUND, e, "cannot run '%s': the interpreter its #! line names was not "
                 "found; fix that line, or install the interpreter", x->path);
    else if (e == ENOENT || e == ENOTDIR)
        job_fail(x, EXEC_NOTFOUND, e, "cannot run '%s': no such file%s%s; check the path", x->path,
                 x->path[0] == '/' ? "" : " in ", x->path[0] == '/' ? "" : where);
    else if (e == ENOEXEC)
        job_fail(x, EXEC_NOEXEC, e, "cannot run '%s': not a program this system runs; a script "
                 "needs a #! line (or run it with its interpreter)", x->path);
    else if (e == EACCES || e == EPERM || e == EISDIR || e == ETXTBSY)
        job_fail(x, EXEC_NOEXEC, e, "cannot run '%s': %s; make it an executable file (chmod +x) "
                 "or run it with its interpreter", x->path, strerror(e));
    else
        job_fail(x, EXEC_FAILED, e, "cannot run '%s': %s", x->path, strerror(e));
}

/* Start the command: its pid, or 0 with the result set. */
static pid_t job_spawn(struct exec_job *x)
{
    struct child_args a = { .path = x->path, .argv = x->argv,
                            .envp = x->req->env_set ? (char *const *)x->req->env : environ,
                            .cwdfd = x->cwdfd, .fd = { x->in_fd, x->out_w, x->err_w },
                            .parent = getpid(), .err = 0, .stage = STAGE_NONE };
    void *stack = mmap(NULL, EXEC_STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (stack == MAP_FAILED) {
        int e = errno;
        job_fail(x, EXEC_FAILED, e, "cannot start '%s': no memory for its start: %s", x->prog, strerror(e));
        return 0;
    }
    /* no signal handler may run in the child before it has reset them */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = clone(child_main, (char *)stack + EXEC_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, EXEC_STACK);
    if (pid < 0) {
        job_fail(x, EXEC_FAILED, e, "cannot start '%s': %s (the system's process limit?)", x->prog,
                 strerror(e));
        return 0;
    }
    if (a.stage == STAGE_NONE) return pid;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    if (a.stage == STAGE_EXEC) exec_failed(x, a.err);
    else if (a.stage == STAGE_CWD)
        job_fail(x, EXEC_FAILED, a.err, "cannot change to working directory '%s': %s", x->req->cwd,
                 strerror(a.err));
    else
        job_fail(x, EXEC_FAILED, a.err, "cannot start '%s': setting up its stdin, stdout and stderr: %s",
                 x->prog, strerror(a.err));
    return 0;
}

/* Read what FD has now into C; false at its end (EOF, or an error). */
static bool drain(int fd, struct capture *c)
{
    char buf[65536];
    for (int k = 0; k < 64; k++) { /* then let the loop look at the rest */
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0) return false;
        if (n < 0) return errno == EAGAIN || errno == EINTR;
        c->total += (uint64_t)n;
        uint64_t room = c->len < c->limit ? c->limit - c->len : 0;
        size_t keep = (uint64_t)n < room ? (size_t)n : (size_t)room;
        if (keep && c->len + keep > c->cap) {
            size_t want = c->cap ? c->cap : 65536;
            while (want < c->len + keep) want *= 2;
            if (want > c->limit) want = (size_t)c->limit;
            char *p = realloc(c->p, want);
            if (!p) keep = 0; /* counted, not kept */
            else c->p = p, c->cap = want;
        }
        if (keep) memcpy(c->p + c->len, buf, keep);
        c->len += keep;
    }
    return true;
}

/* Write more of the stdin bytes; closes our end when all are written or
 * the command stopped reading (EPIPE: SIGPIPE is blocked in this thread). */
static void pump_stdin(struct exec_job *x)
{
    const char *d = x->req->stdin_data;
    while (x->in_w >= 0 && x->in_off < x->req->stdin_len) {
        ssize_t n = write(x->in_w, d + x->in_off, x->req->stdin_len - x->in_off);
        if (n > 0) x->in_off += (size_t)n;
        else if (n < 0 && errno == EINTR) continue;
        else if (n < 0 && errno == EAGAIN) return;
        else break;
    }
    close_fd(&x->in_w);
}

/* The cancel: SIGTERM to the group at the first look that sees it (or
 * that finds the request's run limit past), SIGKILL kill_grace later (or as
 * soon as the command itself has ended). */
struct cancel {
    bool termed, killed;
    bool timed_out;            /* it was the run limit */
    uint64_t term_at;
    uint64_t limit_at;         /* CLOCK_MONOTONIC of the run limit (UINT64_MAX: none) */
};

/* The pool's kill_grace (cli_handlers_pool_config; unknown: the default). */
static int64_t pool_kill_grace_ns = EMBER_SECOND;

void cli_handlers_pool_config(const struct ember_pool_config *cfg)
{
    pool_kill_grace_ns = cfg->kill_grace_ns;
}

static void look_cancel(struct exec_job *x, pid_t pg, struct cancel *c)
{
    if (!c->termed && (ember_job_cancelled(x->job) || cli_now_ns() >= c->limit_at)) {
        kill(-pg, SIGTERM);
        c->termed = true;
        c->term_at = cli_now_ns();
        c->timed_out = !ember_job_cancelled(x->job);
    }
    /* the request's grace, but half the pool's at most: the supervisor
     * kills a runner whose cancelled call runs on past the pool's, and this
     * handler must have ended the job and returned by then */
    int64_t grace = x->req->kill_grace_ns ? x->req->kill_grace_ns : EXEC_GRACE_NS;
    if (grace > pool_kill_grace_ns / 2) grace = pool_kill_grace_ns / 2;
    if (c->termed && !c->killed && cli_now_ns() - c->term_at >= (uint64_t)grace) {
        kill(-pg, SIGKILL);
        c->killed = true;
    }
}

/* Run the started command PID to its end: feed stdin, collect stdout and
 * stderr, cancel it when the job is; *ST and *RU: its wait status and usage.
 * False when its status is lost (something reaped it: SIGCHLD ignored). */
static bool job_wait(struct exec_job *x, pid_t pid, int *st, struct rusage *ru, uint64_t t0)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* -1: a look every EXEC_LOOK_MS then */
    struct cancel c = { .limit_at = UINT64_MAX };
    if (x->req->run_limit_ns > 0) c.limit_at = t0 + (uint64_t)x->req->run_limit_ns;
    for (;;) {
        struct pollfd p[4];
        int n = 0, ip = -1, op = -1, ep = -1;
        if (x->in_w >= 0) ip = n, p[n++] = (struct pollfd){ x->in_w, POLLOUT, 0 };
        if (x->out_r >= 0) op = n, p[n++] = (struct pollfd){ x->out_r, POLLIN, 0 };
        if (x->err_r >= 0) ep = n, p[n++] = (struct pollfd){ x->err_r, POLLIN, 0 };
        if (pidfd >= 0) p[n++] = (struct pollfd){ pidfd, POLLIN, 0 };
        int ms = EXEC_LOOK_MS;
        if (c.limit_at != UINT64_MAX && !c.termed) { /* wake at the limit, not up to 50 ms past it */
            uint64_t now = cli_now_ns();
            uint64_t left = c.limit_at > now ? (c.limit_at - now + 999999) / 1000000 : 0;
            if (left < (uint64_t)ms) ms = (int)left;
        }
        if (poll(p, (nfds_t)n, ms) > 0) {
            if (ip >= 0 && p[ip].revents) pump_stdin(x);
            if (op >= 0 && p[op].revents && !drain(x->out_r, &x->out)) close_fd(&x->out_r);
            if (ep >= 0 && p[ep].revents && !drain(x->err_r, &x->err)) close_fd(&x->err_r);
        }
        siginfo_t si = { .si_pid = 0 };
        int w = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if ((w == 0 && si.si_pid == pid) || (w < 0 && errno == ECHILD)) break; /* ECHILD: reaped unseen */
        look_cancel(x, pid, &c);
    }
    /* It has ended, and is a zombie until reaped, so its pid names no other
     * group yet. Cancelled: what is left of its group is killed now (it
     * has had its SIGTERM; the command it was for is over, and members
     * killed but not yet reaped by init cannot be told from live ones).
     * Then the watch is cleared, before the pid is freed. */
    if (c.termed) kill(-pid, SIGKILL);
    ember_job_watch_pgid(x->job, 0);
    x->cancelled = c.termed;
    x->timed_out = c.timed_out;
    /* what it wrote is in the pipes; background children may hold them open */
    while (x->out_r >= 0 && drain(x->out_r, &x->out)) {
        struct pollfd p = { x->out_r, POLLIN, 0 };
        if (poll(&p, 1, 0) <= 0) break;
    }
    while (x->err_r >= 0 && drain(x->err_r, &x->err)) {
        struct pollfd p = { x->err_r, POLLIN, 0 };
        if (poll(&p, 1, 0) <= 0) break;
    }
    int w;
    while ((w = (int)wait4(pid, st, 0, ru)) < 0 && errno == EINTR) {}
    if (pidfd >= 0) close(pidfd);
    return w == pid;
}

/* Remove every output's temporary file (ENOENT is fine: it never wrote it). */
static void outputs_discard(struct exec_job *x)
{
    for (size_t i = 0; i < x->req->noutputs; i++) unlinkat(x->cwdfd, x->req->outputs[i].tmp, 0);
}

/* fsync PATH (a file, or with DIR a directory), relative to the job's directory. */
static int fsync_at(int cwdfd, const char *path, bool dir)
{
    int fd = openat(cwdfd, path, O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
    if (fd < 0) return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* Exit status 0: each output's temporary file, fsync'd, renamed to its final
 * name, and that directory fsync'd; an output not written fails the job.
 * Anything else: the temporary files removed. */
static void outputs_finish(struct exec_job *x)
{
    const struct exec_req *r = x->req;
    if (!r->noutputs) return;
    if (x->res.end != EXEC_EXITED || x->res.code != 0 || x->cancelled) {
        outputs_discard(x);
        return;
    }
    for (size_t i = 0; i < r->noutputs; i++) {
        struct stat st;
        if (fstatat(x->cwdfd, r->outputs[i].tmp, &st, 0) < 0) {
            job_fail(x, EXEC_FAILED, ENOENT, "the command exited 0 without writing its output '%s' "
                     "(under the temporary name '%s'); nothing was published", r->outputs[i].final,
                     r->outputs[i].tmp);
            outputs_discard(x);
            return;
        }
    }
    for (size_t i = 0; i < r->noutputs; i++) {
        const struct exec_output *out = &r->outputs[i];
        char dir[4096];
        const char *slash = strrchr(out->final, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - out->final) + (slash == out->final) : 1,
                 slash ? out->final : ".");
        int rc = fsync_at(x->cwdfd, out->tmp, false);
        if (!rc && renameat(x->cwdfd, out->tmp, x->cwdfd, out->final) < 0) rc = -errno;
        if (!rc) rc = fsync_at(x->cwdfd, dir, true);
        if (rc) {
            job_fail(x, EXEC_FAILED, -rc, "cannot publish output '%s' from '%s': %s", out->final, out->tmp,
                     strerror(-rc));
            outputs_discard(x);
            return;
        }
    }
}

/* Write X's result into O, cutting the captured output if the pool's
 * max_payload cannot hold it (said in the message); false when even that
 * fails (no shared pages before the deadline). */
static bool job_result(struct exec_job *x, ember_out *o)
{
    struct exec_res *res = &x->res;
    res->out = x->out.p, res->out_len = x->out.len, res->out_total = x->out.total;
    res->err = x->err.p, res->err_len = x->err.len, res->err_total = x->err.total;
    res->msg = x->msg;
    for (;;) {
        size_t size = exec_res_size(res);
        void *d = ember_out_reserve(o, size);
        if (d) {
            exec_res_write(res, d);
            return true;
        }
        if (!res->out_len && !res->err_len) return false;
        if (res->out_len >= res->err_len) res->out_len /= 2;
        else res->err_len /= 2;
        if (!x->msg[0])
            snprintf(x->msg, sizeof x->msg, "the captured output was cut to fit the pool's max_payload");
    }
}

static void job_close(struct exec_job *x)
{
    int *fds[] = { &x->in_fd, &x->in_w, &x->out_r, &x->out_w, &x->err_r, &x->err_w };
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) close_fd(fds[i]);
    if (x->cwdfd >= 0) close(x->cwdfd);
    x->cwdfd = AT_FDCWD;
    free(x->out.p);
    free(x->err.p);
    free(x->shell_argv);
}

/* Run request R of JOB into X (its result set). */
static void job_run(struct exec_job *x)
{
    uint64_t t0 = cli_now_ns();
    x->res.runner_pid = getpid();
    if (!job_program(x) || !job_fds(x)) return;
    pid_t pid = job_spawn(x);
    close_fd(&x->in_fd); /* the child's ends: ours hold no pipe open */
    close_fd(&x->out_w);
    close_fd(&x->err_w);
    if (!pid) return;
    ember_job_watch_pgid(x->job, pid);
    x->res.pid = pid;
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    bool waited = job_wait(x, pid, &st, &ru, t0);
    x->res.wall_ns = cli_now_ns() - t0;
    if (!waited) {
        job_fail(x, EXEC_FAILED, ECHILD, "the exit status of '%s' was lost: something else reaped "
                 "it (does the pool's program ignore SIGCHLD?)", x->prog);
        return;
    }
    x->res.utime_ns = (uint64_t)ru.ru_utime.tv_sec * 1000000000ull + (uint64_t)ru.ru_utime.tv_usec * 1000ull;
    x->res.stime_ns = (uint64_t)ru.ru_stime.tv_sec * 1000000000ull + (uint64_t)ru.ru_stime.tv_usec * 1000ull;
    x->res.maxrss_bytes = (uint64_t)ru.ru_maxrss * 1024ull;
    if (WIFSIGNALED(st)) x->res.end = EXEC_SIGNALED, x->res.code = WTERMSIG(st);
    else x->res.end = EXEC_EXITED, x->res.code = WEXITSTATUS(st);
    if (x->timed_out) x->res.end = EXEC_TIMEOUT; /* code: how it ended */
}

static int h_exec(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    /* a private copy: the caller could still write the shared one */
    void *copy = malloc(n ? n : 1), *store = NULL;
    if (!copy) return ENOMEM;
    memcpy(copy, a, n);
    struct exec_req req;
    char err[256];
    if (exec_req_decode(copy, n, &req, &store, err, sizeof err) != 0) {
        fprintf(stderr, "ember exec: %s\n", err);
        free(copy);
        return EINVAL;
    }
    struct exec_job x = { .req = &req, .job = j, .cwdfd = AT_FDCWD, .in_fd = -1, .in_w = -1,
                          .out_r = -1, .out_w = -1, .err_r = -1, .err_w = -1 };
    x.out.limit = req.out_limit ? req.out_limit : EXEC_OUT_LIMIT;
    x.err.limit = req.err_limit ? req.err_limit : EXEC_ERR_LIMIT;
    /* a command that stops reading its stdin must not kill the runner:
     * SIGPIPE blocked in this thread, and one raised here taken back */
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    job_run(&x);
    outputs_finish(&x);
    struct timespec zero = { 0, 0 };
    while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE) {}
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    bool ok = job_result(&x, o);
    job_close(&x);
    free(store);
    free(copy);
    return ok ? 0 : ENOBUFS;
}

void cli_register_handlers(void)
{
    ember_handler_register("sleep", h_sleep);
    ember_handler_register("spin", h_spin);
    ember_handler_register("exec", h_exec);
}
