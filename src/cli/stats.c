/* cli/stats.c - ember stats, events and call: the pool seen from outside,
 * through the public snapshot (ember_stats_read) and event ring. */
#include <inttypes.h>
#include <string.h>
#include "cli.h"

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

static void stats_json(const ember_stats *st)
{
    printf("{\"pool\":\"%s\",\"state\":\"%s\",\"backend\":\"%s\",\"supervisor\":%d,"
           "\"placement\":\"%s\",\"nodes\":%u,"
           "\"min\":%u,\"max\":%u,\"max_limit\":%u,\"max_concurrency\":%u,\"serving\":%u,"
           "\"ready\":%u,\"queued\":%u,\"running\":%u,\"queue_capacity\":%u,\"callers\":%u,"
           "\"runners_started\":%" PRIu64 ",\"runners_died\":%" PRIu64 ",\"boot_failures\":%" PRIu64
           ",\"calls_crashed\":%" PRIu64 ",\"calls_expired\":%" PRIu64 ",\"calls_killed\":%" PRIu64
           ",\"calls_boot_failed\":%" PRIu64 ",\"callers_reaped\":%" PRIu64 ",\"events\":%" PRIu64
           ",\"runners\":[",
           st->pool, ember_pool_state_name(st->state), st->backend, st->supervisor_pid,
           placement_name((uint32_t)st->placement), st->nodes, st->min, st->max, st->max_limit,
           st->max_concurrency, st->serving, st->ready, st->queued, st->running, st->queue_capacity,
           st->callers, st->runners_started, st->runners_died, st->boot_failures, st->calls_crashed,
           st->calls_expired, st->calls_killed, st->calls_boot_failed, st->callers_reaped, st->events);
}

static void stats_text(const ember_stats *st)
{
    printf("pool '%s': %s, backend %s, supervisor pid %d, placement %s over %u node%s\n", st->pool,
           ember_pool_state_name(st->state), st->backend, st->supervisor_pid,
           placement_name((uint32_t)st->placement), st->nodes, st->nodes == 1 ? "" : "s");
    printf("runners: %u serving (%u ready), min %u, max %u (limit %u), max_concurrency %u\n",
           st->serving, st->ready, st->min, st->max, st->max_limit, st->max_concurrency);
    printf("calls: %u queued, %u running (queue capacity %u); crashed %" PRIu64 ", expired %" PRIu64
           ", killed %" PRIu64 ", boot-failed %" PRIu64 "\n",
           st->queued, st->running, st->queue_capacity, st->calls_crashed, st->calls_expired,
           st->calls_killed, st->calls_boot_failed);
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
               first ? "" : ",", r->index, r->pid, ember_runner_state_name(r->state), r->node, cpus,
               r->busy, r->calls, r->stolen, r->rss, up);
        return;
    }
    char rs[16], bs[16];
    human_size(r->rss, rs, sizeof rs);
    snprintf(bs, sizeof bs, "%u/%u", r->busy, r->capacity);
    printf("%5u %8d %-9s %4d %-14s %6s %10" PRIu64 " %8" PRIu64 " %8s %8.1fs\n", r->index, r->pid,
           ember_runner_state_name(r->state), r->node, cpus, bs, r->calls, r->stolen,
           r->rss ? rs : "-", up);
}

int cmd_stats(int argc, char **argv)
{
    bool json = false;
    const struct cli_opt opts[] = { { "json", CLI_FLAG, &json, 0, 0 }, { 0 } };
    const char *pool;
    ember_client *c;
    int rc = cli_open(argc, argv, opts, &pool, &c);
    if (rc) return rc;
    ember_stats st;
    static ember_runner_stats runners[4096];
    int n = ember_stats_read(c, &st, runners, 4096);
    ember_detach(c);
    if (n < 0) return fail(n, NULL);
    if (n > 4096) n = 4096;
    if (json) stats_json(&st);
    else stats_text(&st);
    for (int i = 0; i < n; i++) runner_line(&runners[i], json, i == 0);
    if (json) printf("]}\n");
    return 0;
}

int cmd_events(int argc, char **argv)
{
    bool follow = false;
    const struct cli_opt opts[] = { { "follow", CLI_FLAG, &follow, 0, 'f' }, { 0 } };
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
            for (int i = 0; i < n; i++) {
                printf("%" PRIu64 " %.6f %s runner=%u runners=%u reason=%s", ev[i].seq,
                       ev[i].time_ns / 1e9, ember_event_name(ev[i].type), ev[i].runner, ev[i].runners,
                       ember_why_name(ev[i].reason));
                if (ev[i].type == EMBER_EV_GROW_END)
                    printf(ev[i].ok ? " ok" : " failed count=%d status=%d signal=%d msg=\"%s\"",
                           ev[i].count, ev[i].status, ev[i].signal, ev[i].msg);
                putchar('\n');
            }
        fflush(stdout);
        if (!follow) break;
        if (st.state != EMBER_POOL_RUNNING || ember_stats_wait(c, st.epoch, EMBER_NEVER) != 0) break;
    }
    ember_detach(c);
    return 0;
}

/* The handlers of a pool started by `ember pool start` whose argument the
 * command can check before calling: sleep and spin take milliseconds. A
 * usage error's 2 (message printed), or 0. */
static int check_handler_arg(const char *handler, const char *arg)
{
    if (strcmp(handler, "sleep") != 0 && strcmp(handler, "spin") != 0) return 0;
    uint64_t ms;
    if (!arg) return usage_error("%s takes a number of milliseconds (ember call POOL %s 250)",
                                 handler, handler);
    if (!parse_uint(arg, 1000000000ull, &ms))
        return usage_error("%s takes a number of milliseconds, not '%s'", handler, arg);
    return 0;
}

int cmd_call(int argc, char **argv)
{
    const char *pos[3] = { NULL, NULL, NULL };
    int64_t timeout = EMBER_TIMEOUT_DEFAULT;
    bool unlinked = false;
    const struct cli_opt opts[] = { { "timeout", CLI_DURATION, &timeout, 0, 0 },
                                    { "unlinked", CLI_FLAG, &unlinked, 0, 0 }, { 0 } };
    int npos, rc = cli_parse_args(argc, argv, opts, pos, 3, &npos);
    if (rc) return rc;
    if (npos < 2) return usage_error("the pool's NAME and the HANDLER to call are needed");
    if ((rc = check_handler_arg(pos[1], pos[2])) != 0) return rc;
    ember_client *c;
    if (cli_attach(pos[0], &c)) return 1;
    int h = ember_handler(c, pos[1]);
    if (h < 0) {
        fprintf(stderr, "%s: pool '%s' has no handler '%s' (a pool started by 'ember pool start' "
                "has noop, echo, sleep, spin and exec)\n", cli_cmd, pos[0], pos[1]);
        ember_detach(c);
        return 1;
    }
    const char *arg = pos[2] ? pos[2] : "";
    ember_result r;
    rc = ember_call_flags(c, h, arg, strlen(arg), &r, timeout, unlinked ? EMBER_UNLINKED : 0);
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
