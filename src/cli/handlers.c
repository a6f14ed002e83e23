/* cli/handlers.c - the handlers of pools started from the command line.
 *
 *   sleep MS   sleeps MS milliseconds, or until cancelled
 *   spin MS    keeps a CPU busy MS milliseconds, or until cancelled
 *   exec CMD   runs CMD with /bin/sh -c; the result is its output
 * (noop and echo are libember's own.) */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "cli.h"

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
    *until = cli_now_ns() + ms * 1000000ull;
    return true;
}

/* "sleep": sleeps ARG milliseconds, or until cancelled. */
static int h_sleep(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)o;
    uint64_t until;
    if (!ms_from_now(a, n, &until)) return 1;
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
    if (!ms_from_now(a, n, &until)) return 1;
    volatile uint64_t x = 0;
    while (cli_now_ns() < until && !ember_job_cancelled(j))
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
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), out = pfd[0], rc = 0, st = 0;
    bool termed = false, ended = false;
    uint64_t kill_at = 0;
    char buf[65536];
    while (out >= 0 || !ended) {
        struct pollfd p[2] = { { .fd = out, .events = POLLIN, .revents = 0 },
                               { .fd = ended ? -1 : pidfd, .events = POLLIN, .revents = 0 } };
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
            uint64_t now = cli_now_ns();
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

void cli_register_handlers(void)
{
    ember_handler_register("sleep", h_sleep);
    ember_handler_register("spin", h_spin);
    ember_handler_register("exec", h_exec);
}
