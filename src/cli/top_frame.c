/* cli/top_frame.c - `ember top`'s model and frame: snapshots of a pool taken
 * through the public API, turned into what one refresh shows. No terminal
 * here: top.c draws the lines on the screen, or prints them (--once).
 *
 * Calls per second come from the runners' counts of calls run: the sum,
 * over the runners of this snapshot, of what each ran since the last one
 * (a runner new since then counts all its calls; one that ended between
 * two snapshots takes its last calls with it). A runner's "job" column is
 * how long top has seen it busy without finishing a call: with
 * max_concurrency 1, its current call's age, to one refresh. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "top.h"

void top_model_init(struct top_model *m, const char *pool, int64_t interval_ns, bool utf8)
{
    memset(m, 0, sizeof *m);
    snprintf(m->pool, sizeof m->pool, "%s", pool);
    m->interval_ns = interval_ns;
    m->utf8 = utf8;
    m->rate = -1;
}

void top_model_reset(struct top_model *m)
{
    m->sampled = m->stopped = m->stop_known = false;
    m->stopped_at[0] = 0;
    memset(&m->st, 0, sizeof m->st);
    m->nrunners = m->nlive = 0;
    if (m->seen) memset(m->seen, 0, (size_t)m->cap * sizeof *m->seen);
    m->rate = -1;
    m->nhist = 0;
    m->latency[0] = 0;
}

void top_model_free(struct top_model *m)
{
    free(m->runners);
    free(m->scratch);
    free(m->seen);
    free(m->seen_next);
    m->runners = m->scratch = NULL;
    m->seen = m->seen_next = NULL;
    m->cap = 0;
}

/* Room for N runners in every array of M; 0 or -EMBER_ENOMEM. */
static int top_reserve(struct top_model *m, int n)
{
    if (n <= m->cap) return 0;
    ember_runner_stats *r = realloc(m->runners, (size_t)n * sizeof *r);
    if (r) m->runners = r;
    ember_runner_stats *s = realloc(m->scratch, (size_t)n * sizeof *s);
    if (s) m->scratch = s;
    struct top_seen *a = realloc(m->seen, (size_t)n * sizeof *a);
    if (a) m->seen = a;
    struct top_seen *b = realloc(m->seen_next, (size_t)n * sizeof *b);
    if (b) m->seen_next = b;
    if (!r || !s || !a || !b) return -EMBER_ENOMEM;
    memset(a + m->cap, 0, (size_t)(n - m->cap) * sizeof *a);
    m->cap = n;
    return 0;
}

/* M's pool has gone: keep its last figures, note when and how it stopped
 * (ST, the snapshot that saw it). */
static void top_stopped(struct top_model *m, const ember_stats *st)
{
    m->stopped = true;
    if (st->state == EMBER_POOL_DOWN) {
        m->stop_known = true;
        m->st.stop_finished = st->stop_finished;
        m->st.stop_killed = st->stop_killed;
        m->st.stop_never_ran = st->stop_never_ran;
    }
    time_t t = time(NULL);
    struct tm tm;
    if (localtime_r(&t, &tm)) strftime(m->stopped_at, sizeof m->stopped_at, "%H:%M:%S", &tm);
}

int top_sample(struct top_model *m, ember_client *c, uint64_t now_ns)
{
    ember_stats st;
    int n;
    for (;;) { /* read; again with more room if the pool has more runners than that */
        n = ember_stats_read(c, &st, m->scratch, m->cap);
        if (n < 0) return n;
        int need = n > (int)st.max_limit ? n : (int)st.max_limit;
        if (need <= m->cap) break;
        int rc = top_reserve(m, need);
        if (rc) return rc;
    }
    /* the supervisor is gone (stopped, or died without a word) or said it stopped */
    if (st.state == EMBER_POOL_DOWN || ember_stats_wait(c, st.epoch, 0) == -EMBER_EPOOLDOWN) {
        if (!m->stopped) top_stopped(m, &st);
        return -EMBER_EPOOLDOWN;
    }
    uint64_t calls = 0;
    memset(m->seen_next, 0, (size_t)m->cap * sizeof *m->seen_next);
    for (int i = 0; i < n; i++) {
        const ember_runner_stats *r = &m->scratch[i];
        if (r->index >= (uint32_t)m->cap) continue;
        const struct top_seen *was = &m->seen[r->index];
        struct top_seen *is = &m->seen_next[r->index];
        bool same = was->pid == r->pid;
        calls += same && r->calls >= was->calls ? r->calls - was->calls : r->calls;
        is->pid = r->pid;
        is->calls = r->calls;
        if (!r->busy) is->busy_since = 0;
        else if (same && was->busy_since && r->calls == was->calls) is->busy_since = was->busy_since;
        else is->busy_since = now_ns;
    }
    struct top_seen *t = m->seen;
    m->seen = m->seen_next;
    m->seen_next = t;
    if (m->sampled && now_ns > m->t_ns) {
        m->rate = (double)calls * 1e9 / (double)(now_ns - m->t_ns);
        if (m->nhist == TOP_HISTORY) {
            memmove(m->rates, m->rates + 1, (TOP_HISTORY - 1) * sizeof m->rates[0]);
            memmove(m->queued, m->queued + 1, (TOP_HISTORY - 1) * sizeof m->queued[0]);
            m->nhist--;
        }
        m->rates[m->nhist] = m->rate;
        m->queued[m->nhist++] = st.queued;
    }
    ember_runner_stats *r = m->runners;
    m->runners = m->scratch;
    m->scratch = r;
    m->st = st;
    m->nlive = n;
    m->nrunners = n < m->cap ? n : m->cap;
    m->t_ns = now_ns;
    m->sampled = true;
    top_latency(c, m->latency, sizeof m->latency);
    return 0;
}

/* ---- the frame ---------------------------------------------------------- */

/* One line being composed, then handed to the frame's PUT cut to WIDTH. */
struct top_out {
    top_put_fn *put;
    void *ctx;
    int width, height; /* 0: no limit */
    int row;
    char buf[1024];
    size_t len;
};

static void add(struct top_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct top_out *o, const char *fmt, ...)
{
    if (o->len >= sizeof o->buf - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
    va_end(ap);
    if (n > 0) o->len += (size_t)n;
    if (o->len > sizeof o->buf - 1) o->len = sizeof o->buf - 1;
}

/* The line composed so far, cut to the width in columns (every character
 * top writes takes one column; a UTF-8 character is cut whole), as row
 * ROW; a row past the height is dropped. */
static void emit_at(struct top_out *o, int row, enum top_attr attr)
{
    o->buf[o->len] = 0;
    if (o->width > 0) {
        int cols = 0;
        for (size_t i = 0; o->buf[i]; i++)
            if (((unsigned char)o->buf[i] & 0xC0) != 0x80 && ++cols > o->width) {
                o->buf[i] = 0;
                break;
            }
    }
    if (o->height <= 0 || row < o->height) o->put(o->ctx, row, attr, o->buf);
    o->len = 0;
}

static void emit(struct top_out *o, enum top_attr attr) { emit_at(o, o->row++, attr); }

/* "1.2s", "3m04s", "2h05m", "3d04h". */
static void age_text(uint64_t ns, char *out, size_t len)
{
    uint64_t s = ns / 1000000000ull;
    if (s < 60) snprintf(out, len, "%.1fs", (double)ns / 1e9);
    else if (s < 3600) snprintf(out, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400) snprintf(out, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
    else snprintf(out, len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
}

/* "512", "1.5K", "12.3M", "1.1G". */
static void size_text(uint64_t b, char *out, size_t len)
{
    if (b >= 1ull << 30) snprintf(out, len, "%.1fG", (double)b / (1ull << 30));
    else if (b >= 1ull << 20) snprintf(out, len, "%.1fM", (double)b / (1ull << 20));
    else if (b >= 1ull << 10) snprintf(out, len, "%.1fK", (double)b / (1ull << 10));
    else snprintf(out, len, "%" PRIu64, b);
}

static void rate_text(double r, char *out, size_t len)
{
    if (r < 0) snprintf(out, len, "-");
    else snprintf(out, len, r < 100 ? "%.1f" : "%.0f", r);
}

/* A sparkline of the last W of V[0..N) (oldest first), each scaled to the
 * largest shown: a blank for 0, then 8 heights; right-aligned, blanks
 * before a short history. */
static void sparkline(struct top_out *o, const double *v, unsigned n, unsigned w, bool utf8)
{
    static const char *const blocks[9] = { " ", "\u2581", "\u2582", "\u2583", "\u2584",
                                           "\u2585", "\u2586", "\u2587", "\u2588" };
    static const char ascii[9] = { ' ', '.', ':', '-', '=', '+', '*', '#', '@' };
    unsigned k = n < w ? n : w;
    const double *last = v + n - k;
    double max = 0;
    for (unsigned i = 0; i < k; i++)
        if (last[i] > max) max = last[i];
    for (unsigned i = k; i < w; i++) add(o, " ");
    for (unsigned i = 0; i < k; i++) {
        int lvl = last[i] <= 0 || max <= 0 ? 0 : 1 + (int)(last[i] / max * 7 + 0.5);
        if (lvl > 8) lvl = 8;
        if (utf8) add(o, "%s", blocks[lvl]);
        else add(o, "%c", ascii[lvl]);
    }
}

/* The two sparklines: throughput and queue depth. */
static void sparklines(struct top_out *o, const struct top_model *m)
{
    /* label (8) + line + " 1234.5/s, max 1234.5" (22) */
    int w = o->width > 0 ? o->width - 8 - 22 : TOP_HISTORY;
    if (w > TOP_HISTORY) w = TOP_HISTORY;
    double q[TOP_HISTORY], qmax = 0, rmax = 0;
    for (unsigned i = 0; i < m->nhist; i++) {
        q[i] = m->queued[i];
        if (q[i] > qmax) qmax = q[i];
        if (m->rates[i] > rmax) rmax = m->rates[i];
    }
    char now[32], max[32];
    rate_text(m->rate, now, sizeof now);
    rate_text(m->nhist ? rmax : -1, max, sizeof max);
    add(o, "calls/s ");
    if (w > 0) sparkline(o, m->rates, m->nhist, (unsigned)w, m->utf8);
    add(o, " %s/s, max %s", now, max);
    emit(o, TOP_PLAIN);
    add(o, "queued  ");
    if (w > 0) sparkline(o, q, m->nhist, (unsigned)w, m->utf8);
    add(o, " %u, max %.0f", m->st.queued, qmax);
    emit(o, TOP_PLAIN);
}

static const char *placement_text(int p)
{
    return p == EMBER_PLACEMENT_NUMA ? "numa" : p == EMBER_PLACEMENT_CORE ? "core" : "none";
}

static void runner_line(struct top_out *o, const struct top_model *m, const ember_runner_stats *r)
{
    char node[16], load[24], job[16] = "-", rss[16] = "-", up[16];
    snprintf(node, sizeof node, r->node < 0 ? "-" : "%d", r->node);
    snprintf(load, sizeof load, "%u/%u", r->busy, r->capacity);
    const struct top_seen *s = r->index < (uint32_t)m->cap ? &m->seen[r->index] : NULL;
    if (s && s->pid == r->pid && s->busy_since && m->t_ns >= s->busy_since)
        age_text(m->t_ns - s->busy_since, job, sizeof job);
    if (r->rss) size_text(r->rss, rss, sizeof rss);
    age_text(r->uptime_ns, up, sizeof up);
    /* a ready runner running calls is busy */
    const char *state = r->state == EMBER_RUNNER_READY && r->busy ? "busy" : ember_runner_state_name(r->state);
    add(o, "%5u %7d %4s %-8s %5s %9" PRIu64 " %7s %7s %8s", r->index, r->pid, node, state, load, r->calls,
        job, rss, up);
    emit(o, TOP_PLAIN);
}

/* The last row: how to quit, or that the pool stopped. */
static void status_line(struct top_out *o, const struct top_model *m, bool interactive)
{
    enum top_attr attr = TOP_PLAIN;
    if (m->stopped) {
        attr = TOP_ALERT;
        add(o, "pool stopped at %s", m->stopped_at);
        if (m->stop_known)
            add(o, " (%u running calls finished, %u killed, %u queued never ran)", m->st.stop_finished,
                m->st.stop_killed, m->st.stop_never_ran);
        add(o, "; last figures kept, shown live again when a pool '%s' starts", m->pool);
        if (interactive) add(o, "   q: quit");
    } else if (interactive) {
        char iv[24];
        if (m->interval_ns < 1000000000) snprintf(iv, sizeof iv, "%" PRId64 "ms", m->interval_ns / 1000000);
        else age_text((uint64_t)m->interval_ns, iv, sizeof iv);
        add(o, "q: quit   refresh every %s", iv);
    } else {
        return;
    }
    if (o->height > 0) emit_at(o, o->height - 1, attr); /* the bottom row */
    else emit(o, attr);
}

int top_frame(const struct top_model *m, int width, int height, bool interactive, top_put_fn *put,
              void *ctx)
{
    struct top_out o = { .put = put, .ctx = ctx, .width = width, .height = height };
    const ember_stats *st = &m->st;
    const char *state = m->stopped ? "stopped" : m->sampled ? ember_pool_state_name(st->state) : "-";
    add(&o, "pool '%s'  %s   supervisor %d  backend %s  placement %s, %u node%s", m->pool, state,
        st->supervisor_pid, st->backend[0] ? st->backend : "-", placement_text(st->placement), st->nodes,
        st->nodes == 1 ? "" : "s");
    emit(&o, TOP_TITLE);
    add(&o, "runners %u serving, %u ready  min %u  max %u (limit %u)  max_concurrency %u  callers %u",
        st->serving, st->ready, st->min, st->max, st->max_limit, st->max_concurrency, st->callers);
    if (st->runners > st->serving) add(&o, "  %u draining", st->runners - st->serving);
    emit(&o, TOP_PLAIN);
    char rate[32];
    rate_text(m->rate, rate, sizeof rate);
    add(&o, "calls/s %s  queued %u  running %u  (%u at most)", rate, st->queued, st->running,
        st->queue_capacity);
    emit(&o, TOP_PLAIN);
    add(&o, "failed: crashed %" PRIu64 "  expired %" PRIu64 "  killed %" PRIu64 "  boot-failed %" PRIu64
        "  poisoned %" PRIu64 "  retried %" PRIu64, st->calls_crashed, st->calls_expired, st->calls_killed,
        st->calls_boot_failed, st->calls_poisoned, st->calls_retried);
    emit(&o, TOP_PLAIN);
    add(&o, "latency %s", m->latency[0] ? m->latency : "no data");
    emit(&o, TOP_PLAIN);
    sparklines(&o, m);
    emit(&o, TOP_PLAIN);
    add(&o, "%5s %7s %4s %-8s %5s %9s %7s %7s %8s", "#", "pid", "node", "state", "load", "calls", "job",
        "rss", "up");
    emit(&o, TOP_HEAD);
    /* the runners that fit above the status line; "+N more" for the rest */
    int room = m->nlive;
    if (height > 0) {
        room = height - o.row - (interactive || m->stopped ? 1 : 0);
        if (room < 0) room = 0;
    }
    int shown = m->nlive <= room ? m->nrunners : room - 1;
    if (shown > m->nrunners) shown = m->nrunners;
    if (shown < 0) shown = 0;
    for (int i = 0; i < shown; i++) runner_line(&o, m, &m->runners[i]);
    if (shown < m->nlive && room > 0) {
        add(&o, "+%d more", m->nlive - shown);
        emit(&o, TOP_PLAIN);
    }
    status_line(&o, m, interactive);
    return o.row;
}
