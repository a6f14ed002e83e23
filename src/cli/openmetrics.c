/* cli/openmetrics.c - a pool's metrics as OpenMetrics text, from the
 * public snapshots (ember_metrics_read, ember_stats_read): what `ember
 * stats --openmetrics` prints and what `ember pool start --metrics-listen`
 * serves at /metrics.
 *
 * Every sample has the label pool="NAME". Counters are named with their
 * _total suffix in their # TYPE and # HELP lines as well: OpenMetrics
 * parsers (Prometheus's) read them so, and promtool's `check metrics`,
 * which lints with the older text format's parser, then finds each
 * counter's help and type. Durations are in seconds, sizes in bytes, each
 * family with its # UNIT. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

/* One family's metadata lines. UNIT: "" for none. */
static void family(FILE *f, const char *name, const char *type, const char *unit, const char *help)
{
    fprintf(f, "# TYPE %s %s\n", name, type);
    if (unit[0]) fprintf(f, "# UNIT %s %s\n", name, unit);
    fprintf(f, "# HELP %s %s\n", name, help);
}

static void sample(FILE *f, const char *name, const char *pool, const char *labels, uint64_t v)
{
    fprintf(f, "%s{pool=\"%s\"%s%s} %" PRIu64 "\n", name, pool, labels[0] ? "," : "", labels, v);
}

static void histogram(FILE *f, const char *name, const char *pool, const char *handler,
                      const ember_histogram *h)
{
    uint64_t cum = 0;
    for (int b = 0; b < EMBER_HIST_BUCKETS; b++) {
        cum += h->bucket[b];
        uint64_t bound = ember_histogram_bound_ns(b);
        char le[32];
        if (bound == UINT64_MAX) snprintf(le, sizeof le, "+Inf");
        else snprintf(le, sizeof le, "%.3f", (double)bound / 1e9);
        fprintf(f, "%s_bucket{pool=\"%s\",handler=\"%s\",le=\"%s\"} %" PRIu64 "\n", name, pool, handler,
                le, cum);
    }
    fprintf(f, "%s_count{pool=\"%s\",handler=\"%s\"} %" PRIu64 "\n", name, pool, handler, h->count);
    fprintf(f, "%s_sum{pool=\"%s\",handler=\"%s\"} %.9f\n", name, pool, handler, (double)h->sum_ns / 1e9);
}

int openmetrics_write(ember_client *c, const char *pool, FILE *f)
{
    ember_metrics m;
    ember_handler_metrics hm[256];
    int nh = ember_metrics_read(c, &m, hm, 256);
    if (nh < 0) return nh;
    if (nh > 256) nh = 256;
    ember_stats st;
    static ember_runner_stats runners[4096];
    int nr = ember_stats_read(c, &st, runners, 4096);
    if (nr < 0) return nr;
    if (nr > 4096) nr = 4096;
    char l[160];

    family(f, "ember_pool_up", "gauge", "", "1 while the pool runs (starting or running), else 0.");
    sample(f, "ember_pool_up", pool, "",
           st.state == EMBER_POOL_RUNNING || st.state == EMBER_POOL_STARTING);
    family(f, "ember_calls_accepted_total", "counter", "", "Calls queued by callers.");
    sample(f, "ember_calls_accepted_total", pool, "", m.calls_accepted);
    family(f, "ember_calls_completed_total", "counter", "", "Calls that ended with a result.");
    sample(f, "ember_calls_completed_total", pool, "", m.calls_completed);
    family(f, "ember_calls_failed_total", "counter", "",
           "Calls that ended with an error, by cause (the code's name, as ember_errname gives it).");
    for (int k = 0; k < EMBER_CAUSES; k++) {
        int code = ember_metrics_cause(k);
        if (!code || !m.failed_by[k]) continue;
        snprintf(l, sizeof l, "cause=\"%s\"", ember_errname(code) + 6); /* past "EMBER_" */
        sample(f, "ember_calls_failed_total", pool, l, m.failed_by[k]);
    }
    family(f, "ember_calls_queued", "gauge", "", "Calls waiting for a runner now.");
    sample(f, "ember_calls_queued", pool, "", m.calls_queued);
    family(f, "ember_calls_in_flight", "gauge", "", "Calls on a runner now.");
    sample(f, "ember_calls_in_flight", pool, "", m.calls_in_flight);

    family(f, "ember_handler_calls_completed_total", "counter", "", "Calls of the handler that ended with a result.");
    for (int i = 0; i < nh; i++) {
        snprintf(l, sizeof l, "handler=\"%.*s\"", EMBER_NAME_MAX, hm[i].name);
        sample(f, "ember_handler_calls_completed_total", pool, l, hm[i].completed);
    }
    family(f, "ember_handler_calls_failed_total", "counter", "", "Calls of the handler that ended with an error.");
    for (int i = 0; i < nh; i++) {
        snprintf(l, sizeof l, "handler=\"%.*s\"", EMBER_NAME_MAX, hm[i].name);
        sample(f, "ember_handler_calls_failed_total", pool, l, hm[i].failed);
    }
    family(f, "ember_call_queue_wait_seconds", "histogram", "seconds",
           "Time from a call's queueing to a runner's take (coarse clock: a multiple of its tick).");
    for (int i = 0; i < nh; i++) histogram(f, "ember_call_queue_wait_seconds", pool, hm[i].name, &hm[i].queue_wait);
    family(f, "ember_call_run_seconds", "histogram", "seconds",
           "Time from a runner's take of a call to its result (coarse clock: a multiple of its tick).");
    for (int i = 0; i < nh; i++) histogram(f, "ember_call_run_seconds", pool, hm[i].name, &hm[i].run_time);

    family(f, "ember_runners", "gauge", "", "Runner processes by state (busy: ready with calls running).");
    const struct { const char *name; unsigned n; } states[] = {
        { "booting", m.runners_booting }, { "idle", m.runners_idle },
        { "busy", m.runners_busy }, { "draining", m.runners_draining },
    };
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        snprintf(l, sizeof l, "state=\"%s\"", states[i].name);
        sample(f, "ember_runners", pool, l, states[i].n);
    }
    family(f, "ember_runners_min", "gauge", "", "The pool's current min.");
    sample(f, "ember_runners_min", pool, "", st.min);
    family(f, "ember_runners_max", "gauge", "", "The pool's current max.");
    sample(f, "ember_runners_max", pool, "", st.max);
    family(f, "ember_runner_boots_total", "counter", "", "Runners forked.");
    sample(f, "ember_runner_boots_total", pool, "", m.runner_boots);
    family(f, "ember_runner_boot_failures_total", "counter", "", "Runner boots that failed or timed out.");
    sample(f, "ember_runner_boot_failures_total", pool, "", m.boot_failures);
    family(f, "ember_runner_ends_total", "counter", "",
           "Runners that ended, by reason: crash, recycles (max_jobs, max_rss, single_use), idle, resize, "
           "boot_failed, boot_timeout, deadline, cancelled, stop.");
    for (int k = EMBER_WHY_IDLE; k < EMBER_WHY_SLOTS; k++) {
        const char *why = ember_why_name(k);
        if (!why || !strcmp(why, "none") || !strcmp(why, "unknown")) continue;
        snprintf(l, sizeof l, "reason=\"%s\"", why);
        sample(f, "ember_runner_ends_total", pool, l, m.runner_ends[k]);
    }
    family(f, "ember_supervisor_silent_seconds", "gauge", "seconds",
           "Since the supervisor's event loop last came round: it does at least once a second "
           "while it works, so more means a supervisor that lives but is stuck.");
    fprintf(f, "ember_supervisor_silent_seconds{pool=\"%s\"} %.3f\n", pool,
            (double)st.supervisor_silent_ns / 1e9);
    family(f, "ember_supervisor_resident_bytes", "gauge", "bytes", "The supervisor's resident memory.");
    sample(f, "ember_supervisor_resident_bytes", pool, "", m.supervisor_rss);
    family(f, "ember_runner_resident_bytes", "gauge", "bytes",
           "Each runner's resident memory, as it last measured it (runner: its table index).");
    for (int i = 0; i < nr; i++) {
        snprintf(l, sizeof l, "runner=\"%u\"", runners[i].index);
        sample(f, "ember_runner_resident_bytes", pool, l, runners[i].rss);
    }
    family(f, "ember_callers", "gauge", "", "Processes attached now.");
    sample(f, "ember_callers", pool, "", m.callers);
    family(f, "ember_callers_attached_total", "counter", "", "Attaches so far.");
    sample(f, "ember_callers_attached_total", pool, "", m.callers_attached);
    family(f, "ember_callers_reaped_total", "counter", "",
           "Callers that died attached (their queued calls dropped, linked running ones cancelled).");
    sample(f, "ember_callers_reaped_total", pool, "", m.callers_reaped);
    bridge_openmetrics(f, pool); /* its bridges' figures (ember bridge), if any */
    fprintf(f, "# EOF\n");
    return ferror(f) ? -EMBER_ESYSTEM : 0;
}
