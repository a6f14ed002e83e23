/* plugins/libav/call.c - a call of one of the plugin's handlers: its
 * key=value words, its result (JSON, or one line saying what failed), and
 * libav's log kept per thread so that a failure can say libav's reason.
 *
 * The words: a call's bytes are NUL-separated words when they hold a NUL
 * (what `ember run --handler` and `ember call` send; a last word without
 * its NUL is taken too), else one line of words separated by blanks (a
 * string a program sends). Each word is KEY=VALUE; `cwd=DIR` (absolute) is
 * the caller's directory, against which relative paths are resolved. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libavutil/avutil.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include "libav.h"

/* CPU time of the calling thread, in ns */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void lav_call_init(struct lav_call *call, const char *handler, const ember_job *job,
                   const struct lav_key *keys, size_t nkeys)
{
    memset(call, 0, sizeof *call);
    call->handler = handler;
    call->job = job;
    call->args.keys = keys;
    call->args.nkeys = nkeys;
    call->cpu0_ns = thread_cpu_ns();
    lav_log_clear();
}

int lav_call_end(struct lav_call *call, int rc, ember_out *out)
{
    if (!rc && call->oom) rc = lav_fail(call, ENOMEM, "out of memory writing the result");
    int wrc;
    if (rc) {
        char line[sizeof call->err + 64];
        int n = snprintf(line, sizeof line, "%s: %s\n", call->handler,
                         call->err[0] ? call->err : strerror(rc));
        wrc = ember_out_write(out, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    } else {
        /* the CPU the job took (its handler runs on this thread alone: one
         * codec thread unless threads= says more, then this is a floor) */
        if (call->len && call->json[call->len - 1] == '}') {
            call->len--;
            lav_json(call, ",\"cpu_s\":%.6f}", (double)(thread_cpu_ns() - call->cpu0_ns) / 1e9);
        }
        lav_json(call, "\n");
        wrc = call->oom ? -ENOMEM : ember_out_write(out, call->json, call->len);
    }
    free(call->json);
    free(call->args.buf);
    call->json = call->args.buf = NULL;
    if (wrc && !rc) rc = wrc == -ENOMEM ? ENOMEM : E2BIG;
    return rc;
}

int lav_fail(struct lav_call *call, int code, const char *fmt, ...)
{
    if (!call->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(call->err, sizeof call->err, fmt, ap);
        va_end(ap);
    }
    return code;
}

int lav_fail_av(struct lav_call *call, int averr, const char *what, const char *file)
{
    char reason[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(averr, reason, sizeof reason);
    const char *logged = lav_log_last();
    bool extra = logged[0] && !strstr(reason, logged);
    int code = averr < 0 && -averr < 4096 ? -averr : EIO;
    if (averr == AVERROR(ENOMEM)) code = ENOMEM;
    return lav_fail(call, code, "%s%s%s: %s%s%s%s", what, file ? " " : "", file ? file : "", reason,
                    extra ? " (libav: " : "", extra ? logged : "", extra ? ")" : "");
}

int lav_check_cancel(struct lav_call *call)
{
    if (!ember_job_cancelled(call->job)) return 0;
    bool late = ember_job_remaining_ns(call->job) == 0;
    return lav_fail(call, ECANCELED, "%s; the output was removed",
                    late ? "the call's deadline passed" : "the call was cancelled");
}

/* ---- the words ---- */

/* The keys of the call as a usage line: "in= out= [crf=] ..." into BUF. */
static const char *keys_usage(const struct lav_call *call, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < call->args.nkeys && n < size; i++) {
        const struct lav_key *k = &call->args.keys[i];
        n += (size_t)snprintf(buf + n, size - n, "%s%s%s=%s%s", i ? " " : "", k->required ? "" : "[",
                              k->name, k->kind == LAV_WORD ? k->choices : "", k->required ? "" : "]");
    }
    return buf;
}

static bool word_in(const char *choices, const char *w)
{
    size_t wl = strlen(w);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == wl && strncmp(p, w, l) == 0) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

/* Check VALUE against K's kind; 0 or EINVAL with the message. */
static int check_value(struct lav_call *call, const struct lav_key *k, const char *v)
{
    char *end;
    switch (k->kind) {
    case LAV_PATH:
        if (strlen(v) >= PATH_MAX - 64)
            return lav_fail(call, EINVAL, "%s=: the path is too long", k->name);
        return 0;
    case LAV_INT: {
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || *end || end == v || x < k->min || x > k->max)
            return lav_fail(call, EINVAL, "%s=%s: not an integer from %.0f to %.0f", k->name, v, k->min,
                            k->max);
        return 0;
    }
    case LAV_NUM: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || *end || end == v || !isfinite(x) || x <= k->min || x > k->max)
            return lav_fail(call, EINVAL, "%s=%s: not a number above %g and at most %g", k->name, v, k->min,
                            k->max);
        return 0;
    }
    case LAV_WORD:
        if (!word_in(k->choices, v))
            return lav_fail(call, EINVAL, "%s=%s: not one of %s", k->name, v, k->choices);
        return 0;
    case LAV_TEXT:
        return 0;
    }
    return 0;
}

/* One word W: a key and its value, checked. */
static int take_word(struct lav_call *call, char *w)
{
    char usage[512];
    char *eq = strchr(w, '=');
    if (!eq || eq == w)
        return lav_fail(call, EINVAL, "'%s' is not KEY=VALUE (%s takes %s)", w, call->handler,
                        keys_usage(call, usage, sizeof usage));
    *eq = 0;
    const char *key = w, *v = eq + 1;
    if (!*v) return lav_fail(call, EINVAL, "%s= needs a value", key);
    if (strcmp(key, "cwd") == 0) {
        if (call->args.cwd) return lav_fail(call, EINVAL, "cwd= is given twice");
        if (v[0] != '/')
            return lav_fail(call, EINVAL, "cwd=%s: the caller's directory must be an absolute path", v);
        call->args.cwd = v;
        return 0;
    }
    for (size_t i = 0; i < call->args.nkeys; i++) {
        if (strcmp(call->args.keys[i].name, key) != 0) continue;
        if (call->args.value[i]) return lav_fail(call, EINVAL, "%s= is given twice", key);
        call->args.value[i] = v;
        return check_value(call, &call->args.keys[i], v);
    }
    return lav_fail(call, EINVAL, "unknown key %s= (%s takes %s, and cwd=)", key, call->handler,
                    keys_usage(call, usage, sizeof usage));
}

int lav_args_parse(struct lav_call *call, const void *args, size_t len)
{
    char *b = malloc(len + 1);
    if (!b) return lav_fail(call, ENOMEM, "out of memory");
    if (len) memcpy(b, args, len);
    b[len] = 0;
    call->args.buf = b;
    bool nul = memchr(b, 0, len) != NULL;
    for (size_t i = 0; i < len;) {
        size_t wl = nul ? strlen(b + i) : strcspn(b + i, " \t\r\n");
        if (wl) {
            b[i + wl] = 0;
            int rc = take_word(call, b + i);
            if (rc) return rc;
        }
        i += wl + 1;
    }
    char usage[512];
    for (size_t i = 0; i < call->args.nkeys; i++)
        if (call->args.keys[i].required && !call->args.value[i])
            return lav_fail(call, EINVAL, "%s= is missing (%s takes %s)", call->args.keys[i].name,
                            call->handler, keys_usage(call, usage, sizeof usage));
    return 0;
}

const char *lav_arg(const struct lav_call *call, const char *key)
{
    for (size_t i = 0; i < call->args.nkeys; i++)
        if (strcmp(call->args.keys[i].name, key) == 0) return call->args.value[i];
    return NULL;
}

long lav_arg_int(const struct lav_call *call, const char *key, long def)
{
    const char *v = lav_arg(call, key);
    return v ? strtol(v, NULL, 10) : def;
}

double lav_arg_num(const struct lav_call *call, const char *key, double def)
{
    const char *v = lav_arg(call, key);
    return v ? strtod(v, NULL) : def;
}

int lav_arg_path(struct lav_call *call, const char *key, char *buf)
{
    const char *v = lav_arg(call, key);
    if (!v) return lav_fail(call, EINVAL, "%s= is missing", key);
    int n;
    if (v[0] == '/') {
        n = snprintf(buf, PATH_MAX, "%s", v);
    } else if (call->args.cwd) {
        n = snprintf(buf, PATH_MAX, "%s/%s", call->args.cwd, v);
    } else {
        return lav_fail(call, EINVAL, "%s=%s is a relative path and the call has no cwd= (the caller's "
                        "directory): give an absolute path, or cwd=DIR", key, v);
    }
    if (n >= PATH_MAX) return lav_fail(call, EINVAL, "%s=%s: the path is too long", key, v);
    return 0;
}

/* ---- the JSON result ---- */

static bool room(struct lav_call *call, size_t more)
{
    if (call->oom) return false;
    if (call->len + more + 1 <= call->cap) return true;
    size_t cap = call->cap ? call->cap : 512;
    while (cap < call->len + more + 1) cap *= 2;
    char *p = realloc(call->json, cap);
    if (!p) {
        call->oom = true;
        return false;
    }
    call->json = p;
    call->cap = cap;
    return true;
}

void lav_json(struct lav_call *call, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !room(call, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(call->json + call->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    call->len += (size_t)n;
}

void lav_json_str(struct lav_call *call, const char *s)
{
    if (!s) {
        lav_json(call, "null");
        return;
    }
    lav_json(call, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') lav_json(call, "\\%c", *p);
        else if (*p < 0x20) lav_json(call, "\\u%04x", *p);
        else lav_json(call, "%c", *p);
    }
    lav_json(call, "\"");
}

/* ---- libav's log ---- */

/* The last error libav logged on this thread (a call runs on one thread;
 * with max_concurrency > 1 the runner's calls run on several). */
static __thread char last_error[256];

static void on_log(void *avcl, int level, const char *fmt, va_list vl)
{
    (void)avcl;
    if (level > AV_LOG_ERROR) return;
    char line[sizeof last_error - 1];
    vsnprintf(line, sizeof line, fmt, vl);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == ' ' || line[n - 1] == '.')) line[--n] = 0;
    if (n) memcpy(last_error, line, n + 1);
}

void lav_log_setup(void)
{
    av_log_set_callback(on_log);
}

const char *lav_log_last(void)
{
    return last_error;
}

void lav_log_clear(void)
{
    last_error[0] = 0;
}
