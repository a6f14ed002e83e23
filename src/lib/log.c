/* lib/log.c - ember's log lines on stderr: the supervisor's (sup_log) and
 * those of a program that writes its own the same way (ember_log).
 *
 * A line is "TIME LEVEL MESSAGE": TIME in RFC 3339, UTC, to the
 * millisecond (2026-12-05T23:52:20.123+00:00), LEVEL one of syslog's words
 * (error, warning, notice, info, debug). When stderr is systemd's journal
 * (JOURNAL_STREAM names the device and inode of the stream it gave, and fd
 * 2 still is that stream) the time gives way to sd-daemon's "<N>" priority
 * prefix, and the journal stamps the line itself.
 *
 * The supervisor is forked from a program that may have other threads, so
 * nothing here takes a lock another thread could have held at the fork:
 * the date is computed from the seconds since the epoch (no localtime, no
 * tzset), the line is formatted on the stack and written with one write(2),
 * which also keeps the lines of processes sharing stderr whole. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "lib/internal.h"

/* Is fd 2 the stream systemd's JOURNAL_STREAM ("DEV:INODE") names? */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    if (!js || !*js) return false;
    char *end;
    unsigned long long dev = strtoull(js, &end, 10), ino;
    if (*end != ':') return false;
    ino = strtoull(end + 1, &end, 10);
    if (*end) return false;
    struct stat st;
    return fstat(2, &st) == 0 && (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

/* The civil date (proleptic Gregorian) of DAYS since 1970-01-01. */
static void civil_date(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    days += 719468; /* from 0000-03-01, so that leap days end a year */
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);                        /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  /* [0, 399] */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                     /* March = 0 */
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

size_t ember__time_text(char *buf, size_t len, int64_t sec, unsigned ms)
{
    int64_t days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
    int64_t rem = sec - days * 86400, y;
    unsigned m, d;
    civil_date(days, &y, &m, &d);
    int n = snprintf(buf, len, "%04lld-%02u-%02uT%02u:%02u:%02u.%03u+00:00", (long long)y, m, d,
                     (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60), ms % 1000);
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

static const char *const level_words[8] = { "emerg", "alert", "crit", "error",
                                            "warning", "notice", "info", "debug" };

void ember__log_v(int prio, const char *tag, const char *fmt, va_list ap)
{
    int saved = errno;
    if (prio < EMBER_LOG_ERR) prio = EMBER_LOG_ERR;
    if (prio > EMBER_LOG_DEBUG) prio = EMBER_LOG_DEBUG;
    char line[1024];
    size_t n;
    if (stderr_is_journal()) {
        n = (size_t)snprintf(line, sizeof line, "<%d>", prio);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        n = ember__time_text(line, sizeof line, ts.tv_sec, (unsigned)(ts.tv_nsec / 1000000));
        line[n++] = ' ';
    }
    n += (size_t)snprintf(line + n, sizeof line - n, "%s %s", level_words[prio], tag ? tag : "");
    if (n < sizeof line - 1) {
        int k = vsnprintf(line + n, sizeof line - n, fmt, ap);
        if (k > 0) n += (size_t)k;
    }
    if (n > sizeof line - 2) n = sizeof line - 2; /* cut: room for the newline */
    line[n++] = '\n';
    for (size_t off = 0; off < n;) {
        ssize_t w = write(2, line + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    errno = saved;
}

void ember_log(int prio, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ember__log_v(prio, NULL, fmt, ap);
    va_end(ap);
}
