/* cli/stats.c - ember stats, events and call: the pool seen from outside,
 * through the public snapshot (ember_stats_read) and event ring; calls,
 * and exec's (exec.h) with the caller's directory, environment and stdin,
 * its output printed back and its status as ember's. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "exec.h"

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

/* A runner's state as people read it: a ready one running calls is busy. */
static const char *runner_state_text(const ember_runner_stats *r)
{
    return r->state == EMBER_RUNNER_READY && r->busy ? "busy" : ember_runner_state_name(r->state);
}

static void stats_json(const ember_stats *st, const ember_metrics *m)
{
    printf("{\"pool\":\"%s\",\"state\":\"%s\",\"backend\":\"%s\",\"supervisor\":%d,"
           "\"supervisor_silent_s\":%.3f,\"placement\":\"%s\",\"nodes\":%u,"
           "\"min\":%u,\"max\":%u,\"max_limit\":%u,\"max_concurrency\":%u,\"serving\":%u,"
           "\"ready\":%u,\"queued\":%u,\"running\":%u,\"queue_capacity\":%u,\"callers\":%u,"
           "\"runners_started\":%" PRIu64 ",\"runners_died\":%" PRIu64 ",\"boot_failures\":%" PRIu64
           ",\"calls_crashed\":%" PRIu64 ",\"calls_expired\":%" PRIu64 ",\"calls_killed\":%" PRIu64
           ",\"calls_boot_failed\":%" PRIu64 ",\"calls_retried\":%" PRIu64 ",\"calls_poisoned\":%" PRIu64
           ",\"callers_reaped\":%" PRIu64 ",\"events\":%" PRIu64 ",\"calls_accepted\":%" PRIu64
           ",\"calls_done\":%" PRIu64 ",\"calls_failed\":%" PRIu64 ",\"runners\":[",
           st->pool, ember_pool_state_name(st->state), st->backend, st->supervisor_pid,
           (double)st->supervisor_silent_ns / 1e9,
           placement_name((uint32_t)st->placement), st->nodes, st->min, st->max, st->max_limit,
           st->max_concurrency, st->serving, st->ready, st->queued, st->running, st->queue_capacity,
           st->callers, st->runners_started, st->runners_died, st->boot_failures, st->calls_crashed,
           st->calls_expired, st->calls_killed, st->calls_boot_failed, st->calls_retried,
           st->calls_poisoned, st->callers_reaped, st->events, m->calls_accepted, m->calls_completed,
           m->calls_failed);
}

static void stats_text(const ember_stats *st, const ember_metrics *m)
{
    printf("pool '%s': %s, backend %s, supervisor pid %d, placement %s over %u node%s\n", st->pool,
           ember_pool_state_name(st->state), st->backend, st->supervisor_pid,
           placement_name((uint32_t)st->placement), st->nodes, st->nodes == 1 ? "" : "s");
    if (st->state != EMBER_POOL_DOWN && st->supervisor_silent_ns > CLI_SUP_STUCK_NS)
        printf("the supervisor's event loop has not come round for %.0f s: it is stuck (or stopped)\n",
               (double)st->supervisor_silent_ns / 1e9);
    printf("runners: %u serving (%u ready), min %u, max %u (limit %u), max_concurrency %u\n",
           st->serving, st->ready, st->min, st->max, st->max_limit, st->max_concurrency);
    printf("calls: %u queued, %u running (queue capacity %u); %" PRIu64 " accepted, %" PRIu64
           " done, %" PRIu64 " failed\n",
           st->queued, st->running, st->queue_capacity, m->calls_accepted, m->calls_completed,
           m->calls_failed);
    printf("failures: crashed %" PRIu64 ", expired %" PRIu64 ", killed %" PRIu64 ", boot-failed %" PRIu64
           ", retried %" PRIu64 ", poisoned %" PRIu64 "\n",
           st->calls_crashed, st->calls_expired, st->calls_killed, st->calls_boot_failed,
           st->calls_retried, st->calls_poisoned);
    printf("runners started %" PRIu64 ", ended %" PRIu64 ", boot failures %" PRIu64
           ", callers reaped %" PRIu64 ", %u attached\n",
           st->runners_started, st->runners_died, st->boot_failures, st->callers_reaped, st->callers);
    printf("%5s %8s %-9s %4s %-14s %6s %10s %8s %8s %9s\n", "#", "pid", "state", "node", "cpus", "busy",
           "calls", "stolen", "rss", "up");
}

static void runner_line(const ember_runner_stats *r, bool json, bool first)
{
    char cpus[160];
    cpuset_text(r->cpus, cpus, sizeof cpus);
    double up = (double)r->uptime_ns / 1e9;
    if (json) {
        printf("%s{\"index\":%u,\"pid\":%d,\"state\":\"%s\",\"node\":%d,\"cpus\":\"%s\",\"busy\":%u,"
               "\"calls\":%" PRIu64 ",\"stolen\":%" PRIu64 ",\"rss\":%" PRIu64 ",\"up_s\":%.3f}",
               first ? "" : ",", r->index, r->pid, runner_state_text(r), r->node, cpus,
               r->busy, r->calls, r->stolen, r->rss, up);
        return;
    }
    char rs[16], bs[16];
    human_size(r->rss, rs, sizeof rs);
    snprintf(bs, sizeof bs, "%u/%u", r->busy, r->capacity);
    printf("%5u %8d %-9s %4d %-14s %6s %10" PRIu64 " %8" PRIu64 " %8s %8.1fs\n", r->index, r->pid,
           runner_state_text(r), r->node, cpus, bs, r->calls, r->stolen,
           r->rss ? rs : "-", up);
}

int cmd_stats(int argc, char **argv)
{
    bool json = false, om = false;
    const struct cli_opt opts[] = { { "json", CLI_FLAG, &json, 0, 0 },
                                    { "openmetrics", CLI_FLAG, &om, 0, 0 }, { 0 } };
    const char *pool;
    ember_client *c;
    int rc = cli_open(argc, argv, opts, &pool, &c);
    if (rc) return rc;
    if (json && om) {
        ember_detach(c);
        return usage_error("--json and --openmetrics: choose one");
    }
    if (om) {
        rc = openmetrics_write(c, pool, stdout);
        ember_detach(c);
        return rc ? fail(rc, "writing the metrics") : 0;
    }
    ember_stats st;
    ember_metrics m;
    static ember_runner_stats runners[4096];
    int n = ember_stats_read(c, &st, runners, 4096);
    if (n >= 0) rc = ember_metrics_read(c, &m, NULL, 0);
    ember_detach(c);
    if (n < 0) return fail(n, NULL);
    if (rc < 0) return fail(rc, NULL);
    if (n > 4096) n = 4096;
    if (json) stats_json(&st, &m);
    else stats_text(&st, &m);
    for (int i = 0; i < n; i++) runner_line(&runners[i], json, i == 0);
    if (json) printf("]}\n");
    return 0;
}

/* Event E, one line: text (its time in RFC 3339, UTC) or a JSON object
 * (the time, and the monotonic seconds the pool stamped it with). The
 * wall-clock time comes from CLOCK_MONOTONIC by the clocks' offset now. */
static void event_line(const ember_event *e, bool json)
{
    char when[40];
    cli_time_text(when, sizeof when, cli_wall_of_mono(e->time_ns));
    if (json) {
        printf("{\"seq\":%" PRIu64 ",\"time\":\"%s\",\"mono_s\":%.6f,\"event\":\"%s\",\"runner\":%u,"
               "\"runners\":%u,\"reason\":\"%s\"", e->seq, when, e->time_ns / 1e9,
               ember_event_name(e->type), e->runner, e->runners, ember_why_name(e->reason));
        if (e->type == EMBER_EV_GROW_END) {
            printf(",\"ok\":%s", e->ok ? "true" : "false");
            if (!e->ok) {
                printf(",\"count\":%d,\"status\":%d,\"signal\":%d,\"msg\":", e->count, e->status,
                       e->signal);
                cli_json_str(stdout, e->msg);
            }
        }
        printf("}\n");
        return;
    }
    printf("%" PRIu64 " %s %s runner=%u runners=%u reason=%s", e->seq, when, ember_event_name(e->type),
           e->runner, e->runners, ember_why_name(e->reason));
    if (e->type == EMBER_EV_GROW_END)
        printf(e->ok ? " ok" : " failed count=%d status=%d signal=%d msg=\"%s\"", e->count, e->status,
               e->signal, e->msg);
    putchar('\n');
}

int cmd_events(int argc, char **argv)
{
    bool follow = false, json = false;
    const struct cli_opt opts[] = { { "follow", CLI_FLAG, &follow, 0, 'f' },
                                    { "json", CLI_FLAG, &json, 0, 0 }, { 0 } };
    const char *pool;
    ember_client *c;
    int rc = cli_open(argc, argv, opts, &pool, &c);
    if (rc) return rc;
    uint64_t cursor = 0;
    for (;;) {
        ember_stats st;
        ember_stats_read(c, &st, NULL, 0);
        ember_event ev[32];
        int n;
        while ((n = ember_events_read(c, &cursor, ev, 32)) > 0)
            for (int i = 0; i < n; i++) event_line(&ev[i], json);
        fflush(stdout);
        if (!follow) break;
        if (st.state != EMBER_POOL_RUNNING || ember_stats_wait(c, st.epoch, EMBER_NEVER) != 0) break;
    }
    ember_detach(c);
    return 0;
}

int check_handler_arg(const char *handler, const char *arg)
{
    if (strcmp(handler, "sleep") != 0 && strcmp(handler, "spin") != 0) return 0;
    uint64_t ms;
    if (!arg) return usage_error("%s takes a number of milliseconds (ember call POOL %s 250)",
                                 handler, handler);
    if (!parse_uint(arg, 1000000000ull, &ms))
        return usage_error("%s takes a number of milliseconds, not '%s'", handler, arg);
    return 0;
}

/* --output TMP:FINAL: the command writes TMP; exit status 0 renames it
 * to FINAL, anything else removes it. 0 or a usage error. */
static int output_option(const char *val, struct call_opts *co)
{
    const char *colon = strchr(val, ':');
    if (!colon || colon == val || !colon[1])
        return usage_error("option --output: '%s' is not TMP:FINAL (the file the command writes, "
                           "then the name it gets when the command succeeds)", val);
    if (co->noutputs == sizeof co->outputs / sizeof co->outputs[0])
        return usage_error("option --output: at most %zu outputs", co->noutputs);
    char *tmp = strndup(val, (size_t)(colon - val)); /* freed at exit */
    if (!tmp) return usage_error("out of memory");
    co->outputs[co->noutputs++] = (struct exec_output){ tmp, colon + 1 };
    return 0;
}

/* The flags of the call CO describes. */
static unsigned call_flags(const struct call_opts *co)
{
    return (co->unlinked ? EMBER_UNLINKED : 0) | EMBER_RETRIES(co->retries);
}

int call_option(int argc, char **argv, int *i, struct call_opts *co)
{
    char name[64];
    option_name(argv[*i], name, sizeof name);
    bool flag = strcmp(name, "unlinked") == 0 || strcmp(name, "shell") == 0 ||
                strcmp(name, "verbose") == 0 || strcmp(name, "receipt") == 0;
    bool known = flag || strcmp(name, "timeout") == 0 || strcmp(name, "retries") == 0 ||
                 strcmp(name, "stdin") == 0 ||
                 strcmp(name, "max_output") == 0 || strcmp(name, "output") == 0;
    if (!known) return usage_error("unknown option --%s", name);
    const char *val = option_value(argc, argv, i, !flag);
    if (flag && val) return usage_error("option --%s takes no value", name);
    if (!flag && !val) return usage_error("option --%s needs a value", name);
    co->exec_only |= strcmp(name, "unlinked") != 0 && strcmp(name, "timeout") != 0 &&
                     strcmp(name, "retries") != 0 && strcmp(name, "receipt") != 0;
    if (strcmp(name, "unlinked") == 0) co->unlinked = true;
    else if (strcmp(name, "receipt") == 0) co->receipt = true;
    else if (strcmp(name, "shell") == 0) co->shell = true;
    else if (strcmp(name, "verbose") == 0) co->verbose = true;
    else if (strcmp(name, "stdin") == 0) co->stdin_path = val;
    else if (strcmp(name, "output") == 0) return output_option(val, co);
    else if (strcmp(name, "retries") == 0) {
        uint64_t n;
        if (!parse_uint(val, EMBER_RETRIES_MAX, &n))
            return usage_error("option --retries: '%s' is not a number of retries from 0 to %u", val,
                               EMBER_RETRIES_MAX);
        co->retries = (unsigned)n;
    }
    else if (strcmp(name, "timeout") == 0) {
        if (!parse_duration(val, &co->timeout))
            return usage_error("option --timeout: '%s' is not a duration (e.g. 250ms, 30s, 2m, never)", val);
    } else if (!parse_size(val, &co->max_output) || !co->max_output) {
        return usage_error("option --max-output: '%s' is not a size (bytes, or with K, M, G)", val);
    }
    return 0;
}

/* All of stdin into *BUF (malloc'd), *LEN bytes; 0 or -errno. */
static int read_all_stdin(char **buf, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    if (!b) return -ENOMEM;
    for (;;) {
        if (n == cap) {
            char *nb = cap <= SIZE_MAX / 2 ? realloc(b, cap * 2) : NULL;
            if (!nb) {
                free(b);
                return -ENOMEM;
            }
            b = nb, cap *= 2;
        }
        ssize_t r = read(0, b + n, cap - n);
        if (r == 0) break;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(b);
            return -e;
        }
        n += (size_t)r;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* When and how a call was made, for its receipt. */
struct call_clock {
    uint64_t submit_ns, done_ns; /* CLOCK_MONOTONIC_COARSE */
    double start_wall;           /* seconds since the epoch at submit */
};

static void call_clock_start(struct call_clock *k)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    k->start_wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    k->submit_ns = cli_coarse_ns();
}

/* --receipt: the receipt of the call that returned RC with R (and exec's
 * result X, or NULL) as one JSON object on stderr, made as `ember run
 * --receipts` makes its lines (report.c). A handler's call says the
 * runner's pid and resident memory after it, from the pool's stats. */
static void print_receipt(ember_client *c, const char *handler, int rc, const ember_result *r,
                          const struct exec_res *x, const struct call_clock *k)
{
    cli_receipt_begin();
    struct cli_receipt rcp = { .end = "exit", .start_wall = k->start_wall,
                               .submit_ns = k->submit_ns, .done_ns = k->done_ns, .call = r };
    if (x) {
        rcp.end = cli_exec_end_name(x);
        rcp.exec = x;
        rcp.exit = x->end == EXEC_SIGNALED ? 0 : exec_res_status(x);
        rcp.sig = x->end == EXEC_SIGNALED ? x->code : 0;
    } else if (rc == -EMBER_EHANDLER) {
        rcp.exit = r->detail & 0xff ? r->detail & 0xff : 1;
    } else if (rc == -EMBER_ETIMEDOUT || rc == -EMBER_ECANCELLED) {
        rcp.end = rc == -EMBER_ETIMEDOUT ? "timeout" : "cancelled", rcp.exit = -1;
    } else if (rc) {
        rcp.end = rc == -EMBER_ECRASHED ? "crashed" : rc == -EMBER_EOOM ? "oom" : "error";
        rcp.exit = 255;
        if ((rc == -EMBER_ECRASHED || rc == -EMBER_EOOM) && r->detail < EMBER_CRASH_EXIT)
            rcp.sig = r->detail;
    }
    if (!x && r->runner != EMBER_NONE) {
        ember_stats st;
        int n = ember_stats_read(c, &st, NULL, 0);
        ember_runner_stats *rs = n > 0 ? calloc((size_t)n, sizeof *rs) : NULL;
        if (rs) n = ember_stats_read(c, &st, rs, n);
        for (int i = 0; rs && i < n; i++)
            if (rs[i].index == r->runner) rcp.runner_pid = rs[i].pid, rcp.runner_rss = rs[i].rss;
        free(rs);
        /* the runner's resident memory now, where the kernel says it */
        char path[64];
        unsigned long long size, resident;
        snprintf(path, sizeof path, "/proc/%d/statm", rcp.runner_pid);
        FILE *f = rcp.runner_pid ? fopen(path, "re") : NULL;
        if (f && fscanf(f, "%llu %llu", &size, &resident) == 2)
            rcp.runner_rss = resident * (uint64_t)sysconf(_SC_PAGESIZE);
        if (f) fclose(f);
    }
    fflush(stdout);
    fprintf(stderr, "{\"handler\":");
    cli_json_str(stderr, handler);
    fputc(',', stderr);
    cli_receipt_fields(stderr, &rcp);
    fputs("}\n", stderr);
}

/* How the job ended, for --verbose. */
static void exec_verbose(const struct exec_res *res)
{
    char rss[16];
    human_size(res->maxrss_bytes, rss, sizeof rss);
    static const char *const ends[] = { "", "exit status", "signal", "not found", "not executable",
                                        "could not start", "timed out" };
    fprintf(stderr, "%s: pid %d: %s %d, wall %.3fs, user %.3fs, sys %.3fs, max rss %s (%" PRIu64
            " bytes)\n", cli_cmd, res->pid, ends[res->end], res->code, res->wall_ns / 1e9,
            res->utime_ns / 1e9, res->stime_ns / 1e9, rss, res->maxrss_bytes);
}

int exec_report(const ember_result *r, const struct call_opts *co, struct exec_res *resb,
                struct exec_res **resp)
{
    struct exec_res res;
    *resp = NULL;
    if (exec_res_decode(r->data, r->len, &res) != 0) {
        fprintf(stderr, "%s: the pool's exec handler returned a result this ember cannot read "
                "(a pool started by another version?)\n", cli_cmd);
        return 125;
    }
    cli_result_write(stdout, res.out, res.out_len);
    fflush(stdout);
    cli_result_write(stderr, res.err, res.err_len);
    if (res.out_total > res.out_len)
        fprintf(stderr, "%s: stdout truncated: %zu of %" PRIu64 " bytes kept (--max-output raises "
                "the limit)\n", cli_cmd, res.out_len, res.out_total);
    if (res.err_total > res.err_len)
        fprintf(stderr, "%s: stderr truncated: %zu of %" PRIu64 " bytes kept\n", cli_cmd, res.err_len,
                res.err_total);
    if (res.msg[0]) fprintf(stderr, "%s: %s\n", cli_cmd, res.msg);
    if (co->verbose) exec_verbose(&res);
    *resb = res;
    *resp = resb;
    return exec_res_status(&res);
}

int call_exec_request(char **cmd, int ncmd, const struct call_opts *co, void **buf, size_t *len)
{
    extern char **environ;
    size_t envc = 0;
    while (environ[envc]) envc++;
    char *cwd = getcwd(NULL, 0), *in = NULL;
    if (!cwd) {
        fprintf(stderr, "%s: cannot read the working directory: %s\n", cli_cmd, strerror(errno));
        return 125;
    }
    struct exec_req req = { .argv = (const char *const *)cmd, .argc = (size_t)ncmd, .shell = co->shell,
                            .cwd = cwd, .env = (const char *const *)environ, .envc = envc, .env_set = true,
                            .out_limit = co->max_output, .outputs = co->outputs,
                            .noutputs = co->noutputs };
    size_t inlen = 0;
    if (co->stdin_path && strcmp(co->stdin_path, "-") == 0) {
        int rc = read_all_stdin(&in, &inlen);
        if (rc) {
            fprintf(stderr, "%s: cannot read stdin: %s\n", cli_cmd, strerror(-rc));
            free(cwd);
            return 125;
        }
        req.stdin_data = in, req.stdin_len = inlen;
    } else {
        req.stdin_file = co->stdin_path;
    }
    int rc = exec_req_encode(&req, buf, len);
    free(cwd);
    free(in);
    if (rc) {
        fprintf(stderr, "%s: cannot encode the exec request: %s\n", cli_cmd, strerror(-rc));
        return 125;
    }
    return 0;
}

/* ember call NAME exec [OPTIONS] [--] PROGRAM [ARG]...: CMD[0..NCMD) run in
 * this directory with this environment. Exit: the job's status, 125 for
 * ember's failures, 124 for the deadline. */
static int call_exec(ember_client *c, int h, char **cmd, int ncmd, const struct call_opts *co)
{
    void *buf = NULL;
    size_t len = 0;
    int rc = call_exec_request(cmd, ncmd, co, &buf, &len);
    if (rc) return rc;
    ember_result r;
    struct call_clock k;
    call_clock_start(&k);
    rc = ember_call_flags(c, h, buf, len, &r, co->timeout, call_flags(co));
    k.done_ns = cli_coarse_ns();
    free(buf);
    int status;
    struct exec_res xb, *x = NULL;
    if (rc == 0) {
        status = exec_report(&r, co, &xb, &x);
    } else if (rc == -EMBER_ETIMEDOUT) {
        fail(rc, "exec");
        status = 124;
    } else if (rc == -EMBER_EHANDLER && r.detail == EINVAL) {
        fprintf(stderr, "%s: the pool's exec handler refused the request as malformed (a pool "
                "started by another version of ember?)\n", cli_cmd);
        status = 125;
    } else if (rc == -EMBER_EHANDLER) {
        fprintf(stderr, "%s: the pool's exec handler could not return the job's result: %s\n", cli_cmd,
                strerror(r.detail));
        status = 125;
    } else {
        fail(rc, "exec");
        status = 125;
    }
    if (co->receipt) print_receipt(c, "exec", rc, &r, x, &k);
    ember_result_release(c, &r);
    return status;
}

int handler_args(const struct call_opts *co, char **buf, size_t *len)
{
    char *copy = NULL;
    const char **tok = NULL;
    size_t ntok = 0;
    int rc = 0;
    if (co->nwords == 1) { /* one string: its blank-separated words */
        copy = strdup(co->words[0]);
        tok = calloc(strlen(co->words[0]) / 2 + 2, sizeof *tok);
        if (!copy || !tok) rc = -ENOMEM;
        for (char *sv, *w = rc ? NULL : strtok_r(copy, " \t\n", &sv); w; w = strtok_r(NULL, " \t\n", &sv))
            tok[ntok++] = w;
    }
    if (!rc) rc = co->nwords == 1 ? cli_kv_request(tok, ntok, NULL, buf, len)
                                  : cli_kv_request(co->words, co->nwords, NULL, buf, len);
    free(copy);
    free(tok);
    if (rc) return rc < 0 ? rc : 0;
    if (co->nwords <= 1) {
        const char *a = co->nwords ? co->words[0] : "";
        *len = strlen(a);
        return (*buf = strdup(a)) ? 0 : -ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < co->nwords; i++) n += strlen(co->words[i]) + 1;
    char *b = malloc(n), *p = b;
    if (!b) return -ENOMEM;
    for (size_t i = 0; i < co->nwords; i++) p = stpcpy(p, co->words[i]) + 1;
    *buf = b;
    *len = n;
    return 0;
}

static int call_parsed(int argc, char **argv, struct call_opts *co);

int cmd_call(int argc, char **argv)
{
    struct call_opts co = { .timeout = EMBER_TIMEOUT_DEFAULT };
    if (!(co.words = calloc((size_t)argc + 1, sizeof *co.words))) return usage_error("out of memory");
    int status = call_parsed(argc, argv, &co);
    free(co.words);
    if (co.exec && status == 2) status = 125; /* exec's statuses are the job's: ember's own is 125 */
    for (size_t i = 0; i < co.noutputs; i++) free((char *)co.outputs[i].tmp);
    return status;
}

/* cmd_call with its options in *CO (what they allocate is freed by cmd_call). */
static int call_parsed(int argc, char **argv, struct call_opts *co)
{
    const char *pos[3] = { NULL, NULL, NULL };
    char **cmd = NULL;
    int npos = 0, ncmd = 0;
    bool options_end = false; /* after "--", everything is an argument */
    for (int i = 0; i < argc;) {
        const char *a = argv[i];
        if (!options_end && strcmp(a, "--") == 0) {
            options_end = true;
            i++;
        } else if (!options_end && strncmp(a, "--", 2) == 0) {
            int rc = call_option(argc, argv, &i, co);
            if (rc) return rc;
        } else if (npos == 2 && strcmp(pos[1], "exec") == 0) { /* the rest is the command's */
            cmd = argv + i;
            ncmd = argc - i;
            break;
        } else if (npos == 2) { /* the handler's arguments */
            co->words[co->nwords++] = argv[i++];
        } else {
            pos[npos++] = argv[i++];
            co->exec = npos == 2 && strcmp(pos[1], "exec") == 0;
        }
    }
    if (npos < 2) return usage_error("the pool's NAME and the HANDLER to call are needed");
    bool exec = co->exec;
    if (exec && !ncmd) return usage_error("exec needs a PROGRAM to run (or, with --shell, a command)");
    if (!exec && co->exec_only) return usage_error("--shell, --stdin, --max-output, --output and --verbose are exec's");
    if (!exec && co->nwords > 1 && (strcmp(pos[1], "sleep") == 0 || strcmp(pos[1], "spin") == 0))
        return usage_error("unexpected argument '%s'", co->words[1]);
    int rc = check_handler_arg(pos[1], co->words[0]);
    if (rc) return rc;
    ember_client *c;
    if (cli_attach(pos[0], &c)) return exec ? 125 : 1;
    int h = ember_handler(c, pos[1]);
    if (h < 0) {
        fprintf(stderr, "%s: pool '%s' has no handler '%s' (a pool started by 'ember pool start' "
                "has noop, echo, sleep, spin and exec)\n", cli_cmd, pos[0], pos[1]);
        ember_detach(c);
        return exec ? 125 : 1;
    }
    if (exec) {
        int status = call_exec(c, h, cmd, ncmd, co);
        ember_detach(c);
        return status;
    }
    char *arg;
    size_t arglen;
    if ((rc = handler_args(co, &arg, &arglen))) {
        fprintf(stderr, "%s: cannot compose the call's arguments: %s\n", cli_cmd, strerror(-rc));
        ember_detach(c);
        return 1;
    }
    ember_result r;
    struct call_clock k;
    call_clock_start(&k);
    rc = ember_call_flags(c, h, arg, arglen, &r, co->timeout, call_flags(co));
    k.done_ns = cli_coarse_ns();
    free(arg);
    if (rc == 0) {
        cli_result_write(stdout, r.data, r.len);
        fflush(stdout);
    } else if (rc == -EMBER_EHANDLER && r.len) { /* the handler's own message */
        fwrite(r.data, 1, r.len, stderr);
        if (((const char *)r.data)[r.len - 1] != '\n') fputc('\n', stderr);
    } else {
        fail(rc, pos[1]);
    }
    /* a handler that refuses its arguments (EINVAL: a bad key or value,
     * its message says which) is a usage error, as for the checks above */
    int status = rc == -EMBER_EHANDLER && r.detail == EINVAL ? 2 : rc ? 1 : 0;
    if (co->receipt) print_receipt(c, pos[1], rc, &r, NULL, &k);
    ember_result_release(c, &r);
    ember_detach(c);
    return status;
}
