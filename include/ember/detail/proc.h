/* ember/detail/proc.h - pool names, segment names and processes.
 *
 * A pool NAME lives in the segment "/ember.<uid>.NAME". Whether its
 * supervisor lives is told by a lock, not by its pid: the supervisor holds
 * an open-file-description lock (F_OFD_SETLK) on byte EMBER__LOCK_SUPERVISOR
 * of the segment, through a descriptor of its own that its runners close
 * at once. The kernel drops the lock when the supervisor exits, before it
 * is reaped, so a zombie supervisor (its application has not waited for
 * it), which keeps its pid and start time, holds no lock: its pool is gone.
 * The application starting a pool holds byte EMBER__LOCK_STARTING until the
 * supervisor serves, so the segment is not taken for a dead one meanwhile. */
#ifndef EMBER_DETAIL_PROC_H
#define EMBER_DETAIL_PROC_H

#include "error.h"

static inline bool ember__name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= EMBER_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return name[0] != '.';
}

static inline void ember__shm_name(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "/ember.%u.%s", (unsigned)geteuid(), name);
}

/* Start time of PID in clock ticks since boot (/proc/PID/stat field 22), 0 if
 * it does not exist (published in the header for tools; liveness is the
 * lock's). */
static inline uint64_t ember__proc_start_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    int field = 2;
    for (; *p && field < 22; p++)
        if (*p == ' ') field++;
    return strtoull(p, NULL, 10);
}

/* Does PID live, not as a zombie, and (START not 0) with that start time
 * (ember__proc_start_ticks), so that it is the same process? */
static inline bool ember__proc_alive(pid_t pid, uint64_t start)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* then " STATE ..." */
    if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X') return false;
    return !start || ember__proc_start_ticks(pid) == start;
}

#define EMBER__LOCK_SUPERVISOR 0
#define EMBER__LOCK_STARTING 1
/* Linux's numbers, for a client compiled without _GNU_SOURCE */
#ifdef F_OFD_GETLK
#define EMBER__F_OFD_GETLK F_OFD_GETLK
#define EMBER__F_OFD_SETLK F_OFD_SETLK
#else
#define EMBER__F_OFD_GETLK 36
#define EMBER__F_OFD_SETLK 37
#endif

/* Take the write lock of byte BYTE of FD's open file description: 0 or
 * -errno (EAGAIN: another description holds it). */
static inline int ember__ofd_lock(int fd, off_t byte)
{
    struct flock l;
    memset(&l, 0, sizeof l);
    l.l_type = F_WRLCK;
    l.l_whence = SEEK_SET;
    l.l_start = byte;
    l.l_len = 1;
    return fcntl(fd, EMBER__F_OFD_SETLK, &l) == 0 ? 0 : -errno;
}

/* Does any open file description lock a byte of FD's file in
 * [START, START + LEN)? 1, 0, or -errno. */
static inline int ember__ofd_locked(int fd, off_t start, off_t len)
{
    struct flock l;
    memset(&l, 0, sizeof l);
    l.l_type = F_WRLCK;
    l.l_whence = SEEK_SET;
    l.l_start = start;
    l.l_len = len;
    if (fcntl(fd, EMBER__F_OFD_GETLK, &l) < 0) return -errno;
    return l.l_type != F_UNLCK;
}

#if defined(EMBER_VALGRIND) && defined(__x86_64__)
/* A build for valgrind's memcheck (tools/memcheck: -DEMBER_VALGRIND): the
 * valgrind of Debian 12 (3.19) does not know pidfd_open or
 * pidfd_send_signal and fails them with ENOSYS, so under it these two are
 * made on the real CPU (VALGRIND_NON_SIMD_CALL), where valgrind does not
 * look: a raw system call, no libc (nothing there may be resolved
 * lazily). Their effects need no tracking: an fd number, a signal sent. */
#include <valgrind/valgrind.h>
static inline long ember__vg_syscall(long n, long a, long b)
{
    long r;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(0L), "r"(r10)
                     : "rcx", "r11", "memory");
    return r;
}
static long ember__vg_pidfd_open(long tid, long pid)
{
    (void)tid;
    return ember__vg_syscall(SYS_pidfd_open, pid, 0);
}
static long ember__vg_pidfd_signal(long tid, long fd, long sig)
{
    (void)tid;
    return ember__vg_syscall(SYS_pidfd_send_signal, fd, sig);
}
static inline long ember__vg_result(long r)
{
    if (r >= 0) return r;
    errno = (int)-r;
    return -1;
}
#define EMBER__PIDFD_OPEN(pid)                                                                 \
    (RUNNING_ON_VALGRIND ? ember__vg_result((long)VALGRIND_NON_SIMD_CALL1(ember__vg_pidfd_open, (long)(pid))) \
                         : syscall(SYS_pidfd_open, (pid), 0))
#define EMBER__PIDFD_SIGNAL(fd, sig)                                                           \
    (RUNNING_ON_VALGRIND ? ember__vg_result((long)VALGRIND_NON_SIMD_CALL2(ember__vg_pidfd_signal, (long)(fd), (long)(sig))) \
                         : syscall(SYS_pidfd_send_signal, (fd), (sig), NULL, 0))
#else
#define EMBER__PIDFD_OPEN(pid)       syscall(SYS_pidfd_open, (pid), 0)
#define EMBER__PIDFD_SIGNAL(fd, sig) syscall(SYS_pidfd_send_signal, (fd), (sig), NULL, 0)
#endif

static inline int ember__pidfd_open(pid_t pid)
{
    return (int)EMBER__PIDFD_OPEN(pid);
}

/* Send SIG to the process of pidfd FD: 0, or -1 with errno. */
static inline int ember__pidfd_signal(int fd, int sig)
{
    return (int)EMBER__PIDFD_SIGNAL(fd, sig);
}

static inline bool ember__pidfd_dead(int fd)
{
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    /* POLLIN only: POLLNVAL (no such fd) says nothing about the process */
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

#endif /* EMBER_DETAIL_PROC_H */
