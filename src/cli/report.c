/* cli/report.c - what the commands print about events and calls: times as
 * RFC 3339 text, JSON strings, and a call's receipt, the one JSON object
 * `ember call --receipt` prints and each line of `ember run --receipts` is
 * made of. */
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "exec.h"

uint64_t cli_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t cli_wall_of_mono(uint64_t mono_ns)
{
    struct timespec w, m;
    clock_gettime(CLOCK_REALTIME, &w);
    clock_gettime(CLOCK_MONOTONIC, &m);
    int64_t offset = ((int64_t)w.tv_sec - (int64_t)m.tv_sec) * 1000000000ll +
                     ((int64_t)w.tv_nsec - (int64_t)m.tv_nsec);
    return (int64_t)mono_ns + offset;
}

void cli_time_text(char *buf, size_t len, int64_t wall_ns)
{
    time_t sec = (time_t)(wall_ns >= 0 ? wall_ns / 1000000000ll : (wall_ns + 1) / 1000000000ll - 1);
    unsigned ms = (unsigned)((wall_ns - (int64_t)sec * 1000000000ll) / 1000000);
    struct tm tm;
    char day[32] = "?";
    if (gmtime_r(&sec, &tm)) strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03u+00:00", day, ms);
}

void cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

const char *cli_exec_end_name(const struct exec_res *x)
{
    return x->end == EXEC_EXITED ? "exit" : x->end == EXEC_SIGNALED ? "signal" :
           x->end == EXEC_NOTFOUND ? "not found" : x->end == EXEC_NOEXEC ? "not executable" :
           x->end == EXEC_TIMEOUT ? "timeout" : "could not start";
}

void cli_receipt_fields(FILE *f, const struct cli_receipt *r)
{
    const struct exec_res *x = r->exec;
    uint64_t took = r->call->start_ns;
    double wait = took && took > r->submit_ns ? (double)(took - r->submit_ns) / 1e9 : 0;
    double ran = x ? (double)x->wall_ns / 1e9
                   : took && r->done_ns > took ? (double)(r->done_ns - took) / 1e9 : 0;
    fprintf(f, "\"end\":");
    cli_json_str(f, r->end);
    fprintf(f, ",\"exit\":%d,\"signal\":%d,\"start\":%.3f,\"queue_wait_s\":%.6f,\"run_s\":%.6f",
            r->exit, r->sig, r->start_wall, wait, ran);
    if (x)
        fprintf(f, ",\"user_s\":%.6f,\"sys_s\":%.6f,\"max_rss_bytes\":%" PRIu64 ",\"pid\":%d,"
                "\"runner_pid\":%d", (double)x->utime_ns / 1e9, (double)x->stime_ns / 1e9,
                x->maxrss_bytes, x->pid, x->runner_pid);
    else if (r->runner_pid)
        fprintf(f, ",\"runner_pid\":%d", r->runner_pid);
    if (!x && r->runner_rss) fprintf(f, ",\"runner_rss_bytes\":%" PRIu64, r->runner_rss);
    fprintf(f, ",\"runner\":%d,\"node\":%d", r->call->runner == EMBER_NONE ? -1 : (int)r->call->runner,
            r->call->node);
}

/* The last byte a result put on stdout or stderr ('\n' before any). */
static int result_last = '\n';

void cli_result_write(FILE *f, const void *p, size_t n)
{
    if (!n) return;
    fwrite(p, 1, n, f);
    result_last = ((const unsigned char *)p)[n - 1];
}

void cli_receipt_begin(void)
{
    fflush(stdout);
    if (result_last != '\n' && isatty(STDOUT_FILENO) && isatty(STDERR_FILENO)) fputc('\n', stderr);
}
