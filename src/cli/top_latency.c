/* cli/top_latency.c - the latency line of `ember top`: percentiles of the
 * calls that ended in the last interval.
 *
 * The pool's handlers' histograms (ember_metrics_read) are summed over its
 * handlers at each refresh; the line gives the median, 90th and 99th
 * percentiles of the queue wait and of the run time of the calls added
 * since the refresh before, interpolated within their buckets
 * (ember_histogram_quantile). Durations come from the coarse clock, so
 * calls shorter than its tick show as 0 or one tick: the line says the
 * tick. A new client (top reattached to a pool restarted under the same
 * name) starts the interval anew. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "top.h"

struct lat_state {
    const ember_client *c;   /* whose figures BEFORE holds */
    ember_histogram wait, run;
    bool have;
};

static struct lat_state L;

/* The sum of the handlers' histograms into *WAIT and *RUN: 0, or a
 * negative ember code. */
static int sum_histograms(ember_client *c, ember_histogram *wait, ember_histogram *run)
{
    ember_metrics m;
    int n = ember_metrics_read(c, &m, NULL, 0);
    if (n < 0) return n;
    ember_handler_metrics *h = calloc(n ? (size_t)n : 1, sizeof *h);
    if (!h) return -EMBER_ENOMEM;
    int got = ember_metrics_read(c, &m, h, n);
    memset(wait, 0, sizeof *wait);
    memset(run, 0, sizeof *run);
    for (int i = 0; i < got && i < n; i++) {
        wait->count += h[i].queue_wait.count, wait->sum_ns += h[i].queue_wait.sum_ns;
        run->count += h[i].run_time.count, run->sum_ns += h[i].run_time.sum_ns;
        for (int b = 0; b < EMBER_HIST_BUCKETS; b++) {
            wait->bucket[b] += h[i].queue_wait.bucket[b];
            run->bucket[b] += h[i].run_time.bucket[b];
        }
    }
    free(h);
    return got < 0 ? got : 0;
}

/* Duration NS as short text: "0", "850us", "12ms", "1.5s". */
static void dur_text(char *buf, size_t len, uint64_t ns)
{
    if (ns == 0) snprintf(buf, len, "0");
    else if (ns < 1000000) snprintf(buf, len, "%lluus", (unsigned long long)(ns / 1000));
    else if (ns < 10000000000ull) snprintf(buf, len, "%.3gms", (double)ns / 1e6);
    else snprintf(buf, len, "%.3gs", (double)ns / 1e9);
}

/* "p50 X p90 Y p99 Z" of the span from BEFORE to NOW into BUF. */
static void quantiles(char *buf, size_t len, const ember_histogram *now, const ember_histogram *before)
{
    static const double q[] = { 0.5, 0.9, 0.99 };
    static const char *const qn[] = { "p50", "p90", "p99" };
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < 3 && at < len; i++) {
        uint64_t ns = 0;
        char d[24];
        if (ember_histogram_quantile(now, before, q[i], &ns) != 0) break;
        dur_text(d, sizeof d, ns);
        int w = snprintf(buf + at, len - at, "%s%s %s", i ? " " : "", qn[i], d);
        if (w < 0) break;
        at += (size_t)w;
    }
}

void top_latency(ember_client *c, char *line, size_t len)
{
    ember_histogram wait, run;
    if (!c || sum_histograms(c, &wait, &run) != 0) {
        snprintf(line, len, "no data");
        L.have = false;
        return;
    }
    if (!L.have || L.c != c || run.count < L.run.count || wait.count < L.wait.count) {
        /* the first look at this pool: no interval yet */
        L = (struct lat_state){ c, wait, run, true };
        snprintf(line, len, "no calls ended yet in this view");
        return;
    }
    uint64_t n = run.count - L.run.count;
    if (run.count == L.run.count && wait.count == L.wait.count) {
        snprintf(line, len, "no calls in the last interval");
    } else {
        char qw[96], qr[96];
        quantiles(qw, sizeof qw, &wait, &L.wait);
        quantiles(qr, sizeof qr, &run, &L.run);
        snprintf(line, len, "run %s  queue %s  (%llu calls)", qr[0] ? qr : "-", qw[0] ? qw : "-",
                 (unsigned long long)n);
    }
    L.wait = wait;
    L.run = run;
}
