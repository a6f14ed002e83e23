/* cli/top.h - what the files of `ember top` share: the model of the pool it
 * watches (the last snapshot, the deltas of its counters between refreshes,
 * the histories behind the sparklines) and the frame, the lines it shows,
 * composed without a terminal so that the ncurses screen (top.c) and
 * --once's plain text are the same picture.
 *
 * Everything here comes from the public snapshot API of <ember/client.h>
 * (ember_stats_read, ember_stats_wait); top_latency.c is the one place
 * that will read latency figures once the pool offers them. */
#ifndef EMBER_CLI_TOP_H
#define EMBER_CLI_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ember/client.h>

#define TOP_HISTORY 60 /* refreshes the sparklines cover */

/* What top remembers of one runner table entry from one refresh to the next. */
struct top_seen {
    int      pid;        /* 0: no runner there at the last refresh */
    uint64_t calls;      /* its count of calls run, then */
    uint64_t busy_since; /* CLOCK_MONOTONIC since which top has seen it busy without
                            finishing a call; 0: not busy */
};

struct top_model {
    char     pool[EMBER_NAME_MAX];
    int64_t  interval_ns;
    bool     utf8;              /* sparklines of block characters (else ASCII) */
    bool     sampled;           /* a snapshot has been taken */
    bool     stopped;           /* the pool went away: the figures are its last ones */
    bool     stop_known;        /* its stop's outcome (st.stop_*) was read */
    char     stopped_at[16];    /* wall-clock HH:MM:SS when top saw it stop */
    ember_stats st;             /* the last snapshot */
    ember_runner_stats *runners; /* ... its runners: NRUNNERS filled of NLIVE alive */
    ember_runner_stats *scratch; /* the snapshot being taken; CAP of each */
    int      nrunners, nlive, cap;
    struct top_seen *seen, *seen_next; /* by runner table index, CAP of each */
    uint64_t t_ns;              /* CLOCK_MONOTONIC of the last snapshot */
    double   rate;              /* calls per second over the last interval; < 0: not yet known */
    double   rates[TOP_HISTORY]; /* the last NHIST rates and queue depths, oldest first */
    unsigned queued[TOP_HISTORY];
    unsigned nhist;
    char     latency[160];      /* the latency line's figures (top_latency) */
};

/* A model for pool POOL refreshed every INTERVAL_NS. */
void top_model_init(struct top_model *m, const char *pool, int64_t interval_ns, bool utf8);
/* Forget the pool's figures and histories (a new pool of the same name). */
void top_model_reset(struct top_model *m);
void top_model_free(struct top_model *m);
/* Take a snapshot of C's pool at NOW_NS (CLOCK_MONOTONIC) into M: counters'
 * deltas, job ages, histories. Returns 0, -EMBER_EPOOLDOWN (the pool has
 * stopped or its supervisor died: M keeps the last figures and says so),
 * or -EMBER_ENOMEM. */
int top_sample(struct top_model *m, ember_client *c, uint64_t now_ns);

/* How a frame's line wants to be shown. */
enum top_attr { TOP_PLAIN, TOP_TITLE, TOP_HEAD, TOP_ALERT };
/* Receives line ROW of a frame, UTF-8, at most the frame's width in columns. */
typedef void top_put_fn(void *ctx, int row, enum top_attr attr, const char *text);
/* Compose M's frame for a screen of WIDTH columns and HEIGHT rows (0: no
 * limit, for --once), handing each line to PUT. INTERACTIVE: keys are read
 * (the last row says how to quit). Runners past the screen's height are
 * summed up as "+N more". Returns the number of lines. */
int top_frame(const struct top_model *m, int width, int height, bool interactive, top_put_fn *put,
              void *ctx);

/* top_latency.c: the figures of the latency line for the interval since
 * the last call, from C's pool, into LINE (LEN bytes). */
void top_latency(ember_client *c, char *line, size_t len);

#endif
