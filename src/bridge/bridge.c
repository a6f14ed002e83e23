/* bridge/bridge.c - `ember bridge`: feed a local pool from a Redis Streams
 * consumer group.
 *
 *   ember bridge POOL --redis URL --stream KEY --group NAME [--consumer ID]
 *                [--claim-after DURATION] [--max-deliveries N] [--stats-interval DURATION]
 *
 * One thread, one event loop: poll(2) on the pool's completion fd
 * (ember_completion_fd), on the socket of the Redis connection that
 * carries the one XREADGROUP ... BLOCK in flight, and on a signalfd. Each
 * turn of the loop:
 *   1. collects the calls that ended (ember_wait_any(c, 0)) and decides
 *      what each one's entry becomes: a result to post, a crash to run
 *      again, a dead letter;
 *   2. posts results, each with its XACK in one MULTI/EXEC (pipelined);
 *      claims crashed entries back to run them again (XCLAIM, which counts
 *      a delivery); re-marks the entries it is running (XCLAIM ... JUSTID,
 *      which resets their idle time) so no other bridge takes them over;
 *      takes over entries idle past --claim-after (XAUTOCLAIM);
 *   3. submits what it took to the pool (ember_submit_flags);
 *   4. asks for at most the pool's free capacity (XREADGROUP COUNT free).
 *
 * A job (an entry taken) stays in the jobs table until its result is
 * posted; when Redis cannot be reached the loop stops taking work, lets
 * running calls end, keeps their results, reconnects with backoff and
 * posts them then. Nothing is acknowledged that was not answered. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include "bridge.h"
#include "../cli/cli.h"

#define MS 1000000ll
/* how long one XREADGROUP blocks in Redis; a stop unblocks it at once
 * (CLIENT UNBLOCK) */
#define READ_BLOCK_MS 1000
/* the loop looks at the pool's free capacity at least this often (local
 * callers' calls end without waking it) */
#define LOOK_NS (50 * MS)
/* reconnecting: the first wait, doubled up to the last */
#define BACKOFF_MIN_NS (100 * MS)
#define BACKOFF_MAX_NS (5000 * MS)
/* how often the figures for the pool's /metrics are written */
#define METRICS_NS (1000 * MS)
/* results posted in one pipeline */
#define POST_BATCH 32
#define PIPE_MAX (POST_BATCH * 7)
#define PIPE_WORDS 20

enum job_state {
    J_SUBMIT,  /* taken: to submit to the pool */
    J_RUNNING, /* submitted: its call is in flight */
    J_POST,    /* answered: its blob to post with the XACK */
    J_RERUN,   /* crashed: to claim again (a delivery more) and run again */
    J_DEAD,    /* to the dead letters, with its cause */
};

struct job {
    char id[BRIDGE_ID_MAX];
    char *handler, *args;         /* malloc'd; args not NUL-terminated */
    size_t args_len;
    char deadline_txt[24];        /* as the entry gave it ("0": none) */
    int64_t deadline_ms;          /* Unix epoch ms, 0: none */
    unsigned retries;
    unsigned deliveries;          /* Redis's delivery count of the entry, as of our take */
    enum job_state st;
    ember_call_id call;
    double start_wall;            /* submitted, seconds since the epoch */
    uint64_t submit_coarse;       /* CLOCK_MONOTONIC_COARSE then, for the receipt */
    uint64_t seen_ns;             /* its idle time in Redis last reset (take, claim, re-mark) */
    char cause[96];               /* the last crash's cause, "" none */
    char *blob;                   /* J_POST, J_DEAD: the result to post */
    size_t blob_len;
};

/* A pipeline of commands on the CMD connection. */
struct pipe {
    int n;
    int argc[PIPE_MAX];
    const char *argv[PIPE_MAX][PIPE_WORDS];
    size_t len[PIPE_MAX][PIPE_WORDS];
    const char *const *av[PIPE_MAX];
    const size_t *al[PIPE_MAX];
    redisReply *rep[PIPE_MAX];
};

struct bridge {
    const char *pool, *stream, *group, *consumer;
    char host[256];
    char *k_results, *k_done, *k_dead, *k_causes;
    int64_t claim_after_ns, stats_every_ns;
    unsigned max_deliveries;
    struct ember_redis_url url;
    struct bridge_conn bc;
    bool up, ever_up;
    bool refused;                 /* Redis refused the first connection: exit 1 */
    uint64_t retry_at;
    int64_t backoff_ns;
    char last_err[400];
    ember_client *c;
    int cfd;                      /* completion fd, -1: none (wait_any is polled) */
    struct job **jobs;
    size_t njobs, cap;
    int stopping;                 /* 0 running, 1 draining (SIGTERM), 2 quit now (again) */
    bool pool_stopping;           /* the pool is stopping: take no more work, finish what runs */
    bool pool_down;               /* the pool is gone: what runs will not end */
    char claim_cursor[BRIDGE_ID_MAX];
    uint64_t next_claim, next_beat, next_stats;
    ember_runner_stats *runners;  /* the last snapshot's runners, for receipts */
    int nrunners, runners_cap;
    uint64_t runners_turn, turn;
    /* counters since start */
    uint64_t taken, acked, reclaimed, rerun, dead, expired, unanswered;
    struct pipe p;
};

static uint64_t now_ns(void) { return cli_now_ns(); }

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logf_(struct bridge *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct bridge *b, const char *fmt, ...)
{
    char t[40];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    cli_time_text(t, sizeof t, (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s ember bridge %s: ", t, b->pool);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- the jobs table ---------------------------------------------------- */

static void job_free(struct job *j)
{
    if (!j) return;
    free(j->handler);
    free(j->args);
    free(j->blob);
    free(j);
}

static struct job *job_find(struct bridge *b, const char *id)
{
    for (size_t i = 0; i < b->njobs; i++)
        if (strcmp(b->jobs[i]->id, id) == 0) return b->jobs[i];
    return NULL;
}

static void job_drop(struct bridge *b, struct job *j)
{
    for (size_t i = 0; i < b->njobs; i++)
        if (b->jobs[i] == j) {
            b->jobs[i] = b->jobs[--b->njobs];
            break;
        }
    job_free(j);
}

static size_t count_state(const struct bridge *b, enum job_state st)
{
    size_t n = 0;
    for (size_t i = 0; i < b->njobs; i++) n += b->jobs[i]->st == st;
    return n;
}

/* The pid of runner IDX, from a snapshot of this turn of the loop (0: unknown). */
static int runner_pid(struct bridge *b, uint32_t idx)
{
    if (idx == EMBER_NONE) return 0;
    if (b->runners_turn != b->turn) {
        ember_stats st;
        int n = ember_stats_read(b->c, &st, b->runners, b->runners_cap);
        if (n > b->runners_cap) {
            ember_runner_stats *r = realloc(b->runners, (size_t)n * 2 * sizeof *r);
            if (r) {
                b->runners = r, b->runners_cap = n * 2;
                n = ember_stats_read(b->c, &st, b->runners, b->runners_cap);
            }
        }
        b->nrunners = n < 0 ? 0 : n < b->runners_cap ? n : b->runners_cap;
        b->runners_turn = b->turn;
    }
    for (int i = 0; i < b->nrunners; i++)
        if (b->runners[i].index == idx) return b->runners[i].pid;
    return 0;
}

/* Make J's blob for an outcome and put it in state ST (J_POST, J_DEAD). */
static void job_answer(struct bridge *b, struct job *j, enum job_state st, int status, int detail,
                       const void *out, size_t len, const ember_result *call, uint64_t done_coarse)
{
    struct bridge_outcome o = {
        .status = status, .detail = detail, .out = out, .out_len = len,
        .cause = st == J_DEAD ? j->cause : NULL, .handler = j->handler ? j->handler : "",
        .call = call, .start_wall = j->start_wall, .submit_ns = j->submit_coarse,
        .done_ns = done_coarse, .runner_pid = call ? runner_pid(b, call->runner) : 0,
    };
    free(j->blob);
    j->blob = bridge_blob(&o, b->host, b->consumer, j->deliveries, &j->blob_len);
    if (!j->blob) { /* out of memory: answer it again on a later turn */
        logf_(b, "out of memory for entry %s's result; it is left to another bridge", j->id);
        b->unanswered++;
        job_drop(b, j);
        return;
    }
    j->st = st;
}

/* Refuse entry J (bad fields): its result is the error STATUS with MSG as output. */
static void job_refuse(struct bridge *b, struct job *j, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void job_refuse(struct bridge *b, struct job *j, int status, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    logf_(b, "entry %s: %s", j->id, msg);
    job_answer(b, j, J_POST, status, 0, msg, strlen(msg), NULL, cli_coarse_ns());
}

/* A crashed run of J (STATUS ECRASHED, EOOM or EPOISON, DETAIL): run it
 * again, or dead-letter it. */
static void job_crashed(struct bridge *b, struct job *j, int status, int detail,
                        const ember_result *call, uint64_t done)
{
    bridge_cause(status, detail, j->cause, sizeof j->cause);
    if (status == -EMBER_EPOISON || j->deliveries >= b->max_deliveries) {
        logf_(b, "entry %s: %s on delivery %u of %u: to %s", j->id, j->cause, j->deliveries,
              b->max_deliveries, b->k_dead);
        job_answer(b, j, J_DEAD, -EMBER_EPOISON, detail, NULL, 0, call, done);
    } else {
        j->st = J_RERUN;
    }
}

/* The call of J ended with R. */
static void job_ended(struct bridge *b, struct job *j, const ember_result *r)
{
    uint64_t done = cli_coarse_ns();
    int st = r->status;
    if (st == -EMBER_ECRASHED || st == -EMBER_EOOM || st == -EMBER_EPOISON) {
        job_crashed(b, j, st, r->detail, r, done);
    } else if (st == -EMBER_EPOOLDOWN) { /* not answered: another bridge will run it */
        logf_(b, "entry %s: the pool went down before its call ended; left to another bridge", j->id);
        b->unanswered++;
        job_drop(b, j);
    } else {
        job_answer(b, j, J_POST, st, r->detail, r->data, r->len, r, done);
    }
}

/* ---- taking entries ------------------------------------------------------ */

static char *dup_bytes(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* Take the entry E ([id, [field, value, ...]]) delivered DELIVERIES times. */
static void take(struct bridge *b, const redisReply *e, unsigned deliveries)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[0]->len >= BRIDGE_ID_MAX)
        return;
    const char *id = e->element[0]->str;
    if (job_find(b, id)) return; /* ours already */
    if (b->njobs == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct job **nj = realloc(b->jobs, cap * sizeof *nj);
        if (!nj) return; /* left pending: claimed later */
        b->jobs = nj, b->cap = cap;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) return;
    strcpy(j->id, id);
    strcpy(j->deadline_txt, "0");
    j->deliveries = deliveries;
    j->seen_ns = now_ns();
    j->st = J_SUBMIT;
    b->jobs[b->njobs++] = j;
    const redisReply *f = e->element[1];
    const char *bad = NULL;
    char badbuf[160];
    bool oom = false;
    for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        if (strcmp(k->str, "handler") == 0) {
            free(j->handler);
            oom |= !(j->handler = dup_bytes(v->str, v->len));
        } else if (strcmp(k->str, "args") == 0) {
            free(j->args);
            oom |= !(j->args = dup_bytes(v->str, v->len));
            j->args_len = v->len;
        } else if (strcmp(k->str, "deadline_ms") == 0) {
            char *end;
            errno = 0;
            long long d = strtoll(v->str, &end, 10);
            if (v->len == 0 || *end || errno || d < 0 || v->len >= sizeof j->deadline_txt) {
                snprintf(badbuf, sizeof badbuf, "deadline_ms '%.40s' is not a time in Unix epoch "
                         "milliseconds", v->str);
                bad = badbuf;
            } else {
                j->deadline_ms = d;
                memcpy(j->deadline_txt, v->str, v->len + 1);
            }
        } else if (strcmp(k->str, "retries") == 0) {
            char *end;
            unsigned long r = strtoul(v->str, &end, 10);
            if (v->len == 0 || *end || v->str[0] == '-' || r > EMBER_RETRIES_MAX) {
                snprintf(badbuf, sizeof badbuf, "retries '%.40s' is not a number from 0 to %u",
                         v->str, EMBER_RETRIES_MAX);
                bad = badbuf;
            } else {
                j->retries = (unsigned)r;
            }
        }
    }
    if (oom) {
        b->unanswered++;
        job_drop(b, j);
        return;
    }
    if (!j->handler || !j->handler[0]) bad = "the entry has no handler field";
    if (bad) job_refuse(b, j, -EMBER_EINVAL, "%s", bad);
}

/* A reply of XREADGROUP: [[KEY, [entry...]]]. */
static void take_read(struct bridge *b, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY) return;
    for (size_t s = 0; s < r->elements; s++) {
        const redisReply *st = r->element[s];
        if (st->type != REDIS_REPLY_ARRAY || st->elements < 2 || st->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        for (size_t i = 0; i < st->element[1]->elements; i++) {
            take(b, st->element[1]->element[i], 1);
            b->taken++;
        }
    }
}

/* ---- Redis: connecting, and each kind of command ---------------------------- */

static void went_down(struct bridge *b, const char *what)
{
    if (b->up) {
        const char *e = b->bc.cmd && b->bc.cmd->err ? b->bc.cmd->errstr :
                        b->bc.read && b->bc.read->err ? b->bc.read->errstr : "connection lost";
        if (strstr(e, "temporarily unavailable")) e = "no answer within the 2 s timeout";
        logf_(b, "Redis failed (%s: %s): taking no work, %zu calls run on, their results are kept "
              "until it answers", what, e, count_state(b, J_RUNNING) + count_state(b, J_SUBMIT));
    }
    bridge_disconnect(&b->bc);
    b->up = false;
    b->retry_at = now_ns() + (uint64_t)b->backoff_ns;
}

/* Connect to Redis. A refusal (a password required or wrong, a database)
 * before the first connection ever made ends the bridge (B->refused): it
 * holds nothing, and the same URL would be refused again. Once it was up,
 * every failure is tried again with backoff (it may hold results to post,
 * and a password changed on the server may be changed back). */
static void try_connect(struct bridge *b)
{
    char err[400];
    int rc = bridge_connect(&b->bc, &b->url, err, sizeof err);
    if (rc == -EMBER_REDIS_EREPLY && !b->ever_up) {
        logf_(b, "%s", err);
        b->refused = true;
        return;
    }
    if (rc) {
        if (strcmp(err, b->last_err) != 0) logf_(b, "%s; trying again", err);
        snprintf(b->last_err, sizeof b->last_err, "%s", err);
        b->retry_at = now_ns() + (uint64_t)b->backoff_ns;
        b->backoff_ns = b->backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : b->backoff_ns * 2;
        return;
    }
    redisReply *r = bridge_command(&b->bc, "XGROUP CREATE %s %s 0 MKSTREAM", b->stream, b->group);
    if (!r) {
        went_down(b, "XGROUP CREATE");
        return;
    }
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
        logf_(b, "Redis refused XGROUP CREATE %s %s: %s", b->stream, b->group, r->str);
        freeReplyObject(r);
        bridge_disconnect(&b->bc);
        b->retry_at = now_ns() + BACKOFF_MAX_NS;
        return;
    }
    freeReplyObject(r);
    if (b->ever_up) logf_(b, "connected to Redis again");
    else if (b->last_err[0]) logf_(b, "connected to Redis");
    uint64_t now = now_ns();
    /* A first connection looks for abandoned entries at once. After an
     * outage every bridge's entries look idle: the others get the longest
     * backoff to reconnect and re-mark theirs before this one takes any. */
    b->next_claim = b->ever_up ? now + (uint64_t)BACKOFF_MAX_NS + 1000 * MS : 0;
    b->next_beat = 0; /* re-mark what it holds now */
    b->ever_up = true;
    b->last_err[0] = 0;
    b->up = true;
    b->backoff_ns = BACKOFF_MIN_NS;
}

static void pipe_reset(struct pipe *p) { p->n = 0; }
static void pipe_word(struct pipe *p, const char *s, size_t n)
{
    int i = p->n;
    p->argv[i][p->argc[i]] = s;
    p->len[i][p->argc[i]++] = n;
}
static void pipe_str(struct pipe *p, const char *s) { pipe_word(p, s, strlen(s)); }
static void pipe_begin(struct pipe *p, const char *w0)
{
    p->argc[p->n] = 0;
    pipe_str(p, w0);
}
static void pipe_end(struct pipe *p)
{
    p->av[p->n] = p->argv[p->n];
    p->al[p->n] = p->len[p->n];
    p->n++;
}
/* Send it; 0, or -1 (Redis down, marked so). */
static int pipe_send(struct bridge *b, const char *what)
{
    if (bridge_pipeline(&b->bc, b->p.n, b->p.argc, b->p.av, b->p.al, b->p.rep) != 0) {
        went_down(b, what);
        return -1;
    }
    return 0;
}
static void pipe_free(struct pipe *p)
{
    for (int i = 0; i < p->n; i++) freeReplyObject(p->rep[i]);
    p->n = 0;
}

/* Post the answered jobs: per job one MULTI/EXEC with its result (first
 * writer wins), its XACK and its line in KEY:done (and a dead letter's
 * entry in KEY:dead first). */
static void post(struct bridge *b)
{
    struct job *batch[POST_BATCH];
    char deliv[POST_BATCH][16];
    for (;;) {
        int n = 0;
        for (size_t i = 0; i < b->njobs && n < POST_BATCH; i++)
            if (b->jobs[i]->st == J_POST || b->jobs[i]->st == J_DEAD) batch[n++] = b->jobs[i];
        if (!n || !b->up) return;
        struct pipe *p = &b->p;
        pipe_reset(p);
        int exec_at[POST_BATCH];
        for (int k = 0; k < n; k++) {
            struct job *j = batch[k];
            pipe_begin(p, "MULTI");
            pipe_end(p);
            if (j->st == J_DEAD) {
                snprintf(deliv[k], sizeof deliv[k], "%u", j->deliveries);
                pipe_begin(p, "XADD");
                pipe_str(p, b->k_dead), pipe_str(p, "*");
                pipe_str(p, "id"), pipe_str(p, j->id);
                pipe_str(p, "handler"), pipe_str(p, j->handler ? j->handler : "");
                pipe_str(p, "args"), pipe_word(p, j->args ? j->args : "", j->args_len);
                pipe_str(p, "deadline_ms"), pipe_str(p, j->deadline_txt);
                pipe_str(p, "cause"), pipe_str(p, j->cause);
                pipe_str(p, "deliveries"), pipe_str(p, deliv[k]);
                pipe_str(p, "host"), pipe_str(p, b->host);
                pipe_end(p);
            }
            pipe_begin(p, "HSETNX");
            pipe_str(p, b->k_results), pipe_str(p, j->id), pipe_word(p, j->blob, j->blob_len);
            pipe_end(p);
            pipe_begin(p, "XACK");
            pipe_str(p, b->stream), pipe_str(p, b->group), pipe_str(p, j->id);
            pipe_end(p);
            pipe_begin(p, "XADD");
            pipe_str(p, b->k_done), pipe_str(p, "MAXLEN"), pipe_str(p, "~"), pipe_str(p, "1000000");
            pipe_str(p, "*"), pipe_str(p, "id"), pipe_str(p, j->id);
            pipe_end(p);
            if (j->deliveries > 1 || j->cause[0]) { /* a cause recorded by a run before */
                pipe_begin(p, "HDEL");
                pipe_str(p, b->k_causes), pipe_str(p, j->id);
                pipe_end(p);
            }
            exec_at[k] = p->n;
            pipe_begin(p, "EXEC");
            pipe_end(p);
        }
        if (pipe_send(b, "posting results") != 0) return;
        for (int k = 0; k < n; k++) {
            const redisReply *r = p->rep[exec_at[k]];
            if (r->type != REDIS_REPLY_ARRAY) { /* EXECABORT: nothing of it was done */
                logf_(b, "Redis refused entry %s's result: %s; it is left to another bridge", batch[k]->id,
                      r->type == REDIS_REPLY_ERROR ? r->str : "no reply");
                b->unanswered++;
            } else {
                b->acked++;
                b->dead += batch[k]->st == J_DEAD;
            }
            job_drop(b, batch[k]);
        }
        pipe_free(p);
    }
}

/* Crashed jobs: record the cause (for whoever runs it next), claim the
 * entry again (a delivery more) and run it again. */
static void rerun(struct bridge *b)
{
    struct job *batch[POST_BATCH];
    int n = 0;
    for (size_t i = 0; i < b->njobs && n < POST_BATCH; i++)
        if (b->jobs[i]->st == J_RERUN) batch[n++] = b->jobs[i];
    if (!n || !b->up) return;
    struct pipe *p = &b->p;
    pipe_reset(p);
    for (int k = 0; k < n; k++) {
        pipe_begin(p, "HSET");
        pipe_str(p, b->k_causes), pipe_str(p, batch[k]->id), pipe_str(p, batch[k]->cause);
        pipe_end(p);
        pipe_begin(p, "XCLAIM");
        pipe_str(p, b->stream), pipe_str(p, b->group), pipe_str(p, b->consumer), pipe_str(p, "0");
        pipe_str(p, batch[k]->id);
        pipe_end(p);
    }
    if (pipe_send(b, "claiming crashed entries again") != 0) return;
    for (int k = 0; k < n; k++) {
        struct job *j = batch[k];
        const redisReply *r = p->rep[2 * k + 1];
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
            j->deliveries++;
            j->seen_ns = now_ns();
            j->st = J_SUBMIT;
            b->rerun++;
            logf_(b, "entry %s: %s; running it again (delivery %u of %u)", j->id, j->cause,
                  j->deliveries, b->max_deliveries);
        } else { /* no longer pending: answered elsewhere, or deleted */
            job_drop(b, j);
        }
    }
    pipe_free(p);
}

/* Reset the idle time of the entries this bridge holds, so that no other
 * bridge's XAUTOCLAIM takes them while they run (or while their results
 * wait for Redis). JUSTID: the delivery count stays. An entry another
 * bridge has claimed meanwhile was idle less than MIN-IDLE and is left to
 * it. */
static void remark(struct bridge *b, uint64_t now)
{
    uint64_t every = (uint64_t)b->claim_after_ns / 4;
    struct pipe *p = &b->p;
    pipe_reset(p);
    char minidle[24];
    snprintf(minidle, sizeof minidle, "%lld", (long long)(b->claim_after_ns / 8 / MS));
    size_t i = 0;
    while (i < b->njobs && p->n < PIPE_MAX) {
        int ids = 0;
        pipe_begin(p, "XCLAIM");
        pipe_str(p, b->stream), pipe_str(p, b->group), pipe_str(p, b->consumer), pipe_str(p, minidle);
        for (; i < b->njobs && p->argc[p->n] < PIPE_WORDS - 1; i++)
            if (now - b->jobs[i]->seen_ns >= every) {
                pipe_str(p, b->jobs[i]->id);
                b->jobs[i]->seen_ns = now;
                ids++;
            }
        if (!ids) break;
        pipe_str(p, "JUSTID");
        pipe_end(p);
    }
    if (!p->n || pipe_send(b, "re-marking running entries") != 0) return;
    pipe_free(p);
}

/* Take over up to FREE entries idle past --claim-after (their bridge died
 * or lost Redis): XAUTOCLAIM counts a delivery; one delivered more than
 * --max-deliveries times goes to the dead letters with its last cause. */
static void autoclaim(struct bridge *b, unsigned free_)
{
    if (!free_) return;
    char minidle[24], count[16];
    snprintf(minidle, sizeof minidle, "%lld", (long long)(b->claim_after_ns / MS));
    snprintf(count, sizeof count, "%u", free_ > 100 ? 100 : free_);
    redisReply *r = bridge_command(&b->bc, "XAUTOCLAIM %s %s %s %s %s COUNT %s", b->stream, b->group,
                                   b->consumer, minidle, b->claim_cursor, count);
    if (!r) {
        went_down(b, "XAUTOCLAIM");
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[1]->type != REDIS_REPLY_ARRAY) {
        if (r->type == REDIS_REPLY_ERROR) logf_(b, "XAUTOCLAIM failed: %s", r->str);
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOGROUP", 7) == 0) went_down(b, "NOGROUP");
        freeReplyObject(r);
        return;
    }
    if (r->element[0]->type == REDIS_REPLY_STRING && r->element[0]->len < BRIDGE_ID_MAX)
        memcpy(b->claim_cursor, r->element[0]->str, r->element[0]->len + 1);
    const redisReply *es = r->element[1];
    /* each one's delivery count and the cause a crash left */
    struct pipe *p = &b->p;
    pipe_reset(p);
    const redisReply *got[100];
    int n = 0;
    for (size_t i = 0; i < es->elements && n < 100; i++) {
        const redisReply *e = es->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        if (job_find(b, e->element[0]->str)) continue; /* ours, running: the re-mark was late */
        got[n++] = e;
        pipe_begin(p, "XPENDING");
        pipe_str(p, b->stream), pipe_str(p, b->group);
        pipe_str(p, e->element[0]->str), pipe_str(p, e->element[0]->str), pipe_str(p, "1");
        pipe_end(p);
        pipe_begin(p, "HGET");
        pipe_str(p, b->k_causes), pipe_str(p, e->element[0]->str);
        pipe_end(p);
    }
    if (n && pipe_send(b, "XPENDING") != 0) {
        freeReplyObject(r);
        return;
    }
    for (int k = 0; k < n; k++) {
        const redisReply *x = p->rep[2 * k], *c = p->rep[2 * k + 1];
        unsigned d = 1;
        if (x->type == REDIS_REPLY_ARRAY && x->elements == 1 && x->element[0]->type == REDIS_REPLY_ARRAY &&
            x->element[0]->elements >= 4 && x->element[0]->element[3]->type == REDIS_REPLY_INTEGER)
            d = (unsigned)x->element[0]->element[3]->integer;
        size_t before = b->njobs;
        take(b, got[k], d);
        b->reclaimed++;
        if (b->njobs == before) continue;
        struct job *j = b->jobs[b->njobs - 1];
        if (c->type == REDIS_REPLY_STRING) snprintf(j->cause, sizeof j->cause, "%s", c->str);
        logf_(b, "entry %s: taken over after %s ms idle (delivery %u)", j->id, minidle, d);
        if (j->st == J_SUBMIT && d > b->max_deliveries) {
            if (!j->cause[0]) snprintf(j->cause, sizeof j->cause, "lost: its bridge stopped answering");
            logf_(b, "entry %s: delivered %u times, more than %u: to %s (%s)", j->id, d,
                  b->max_deliveries, b->k_dead, j->cause);
            job_answer(b, j, J_DEAD, -EMBER_EPOISON, 0, NULL, 0, NULL, cli_coarse_ns());
        }
    }
    pipe_free(p);
    freeReplyObject(r);
}

/* ---- the pool ----------------------------------------------------------- */

/* How many more calls the pool can take from this bridge now: its max
 * runners times max_concurrency (at most its queue_capacity), less what
 * local callers have queued or running, less what this bridge holds to
 * run. 0 while the pool is not running. */
static unsigned free_capacity(struct bridge *b)
{
    ember_stats st;
    if (ember_stats_read(b->c, &st, NULL, 0) < 0) return 0;
    if (st.state != EMBER_POOL_RUNNING) {
        if (st.state != EMBER_POOL_STARTING && !b->pool_stopping) {
            logf_(b, "the pool is %s: taking no more work, finishing what runs",
                  ember_pool_state_name(st.state));
            b->pool_stopping = true;
        }
        return 0;
    }
    size_t running = count_state(b, J_RUNNING);
    size_t mine = running + count_state(b, J_SUBMIT) + count_state(b, J_RERUN);
    uint64_t used = (uint64_t)st.queued + st.running;
    uint64_t local = used > running ? used - running : 0;
    uint64_t total = (uint64_t)st.max * st.max_concurrency;
    if (total > st.queue_capacity) total = st.queue_capacity;
    return local + mine >= total ? 0 : (unsigned)(total - local - mine);
}

static void submit_all(struct bridge *b)
{
    int64_t wall = wall_ms();
    for (size_t i = 0; i < b->njobs; i++) {
        struct job *j = b->jobs[i];
        if (j->st != J_SUBMIT) continue;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        j->start_wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
        j->submit_coarse = cli_coarse_ns();
        if (j->deadline_ms && wall >= j->deadline_ms) { /* never run */
            b->expired++;
            job_answer(b, j, J_POST, -EMBER_ETIMEDOUT, 0, NULL, 0, NULL, j->submit_coarse);
            continue;
        }
        int h = ember_handler(b->c, j->handler);
        if (h < 0) {
            job_refuse(b, j, -EMBER_ENOHANDLER, "pool '%s' has no handler '%s'", b->pool, j->handler);
            continue;
        }
        int64_t timeout = j->deadline_ms ? (j->deadline_ms - wall) * MS : EMBER_TIMEOUT_DEFAULT;
        int rc = ember_submit_flags(b->c, h, j->args ? j->args : "", j->args_len, timeout,
                                    EMBER_RETRIES(j->retries), &j->call);
        if (rc == 0) {
            j->st = J_RUNNING;
        } else if (rc == -EMBER_EPOOLDOWN) { /* stopping (or gone): left to another bridge */
            if (!b->pool_stopping) logf_(b, "the pool refuses new calls: taking no more work");
            b->pool_stopping = true;
            b->unanswered++;
            job_drop(b, j);
            i--;
        } else if (rc == -EMBER_EFULL) {
            return; /* on a later turn */
        } else {
            job_refuse(b, j, rc, "%s", ember_last_error()[0] ? ember_last_error() : ember_strerror(rc));
        }
    }
}

/* Collect every call that has ended. */
static void collect(struct bridge *b)
{
    for (;;) {
        ember_call_id id;
        ember_result r;
        int rc = ember_wait_any(b->c, 0, &id, &r);
        if (rc == -EMBER_EPOOLDOWN) {
            if (!b->pool_down) logf_(b, "the pool went down: its calls in flight will not end");
            b->pool_down = true;
            return;
        }
        if (rc != 0) return; /* EAGAIN, ENOCALLS */
        for (size_t i = 0; i < b->njobs; i++) {
            struct job *j = b->jobs[i];
            if (j->st == J_RUNNING && j->call.idx == id.idx && j->call.gen == id.gen) {
                job_ended(b, j, &r);
                break;
            }
        }
        ember_result_release(b->c, &r);
    }
}

/* ---- reading ------------------------------------------------------------- */

static void read_send(struct bridge *b, unsigned free_)
{
    char count[16], block[16];
    snprintf(count, sizeof count, "%u", free_);
    snprintf(block, sizeof block, "%d", READ_BLOCK_MS);
    const char *argv[] = { "XREADGROUP", "GROUP", b->group, b->consumer, "COUNT", count, "BLOCK", block,
                           "STREAMS", b->stream, ">" };
    if (redisAppendCommandArgv(b->bc.read, 11, argv, NULL) != REDIS_OK) {
        went_down(b, "XREADGROUP");
        return;
    }
    int done = 0;
    while (!done)
        if (redisBufferWrite(b->bc.read, &done) != REDIS_OK) {
            went_down(b, "XREADGROUP");
            return;
        }
    b->bc.read_outstanding = true;
}

/* READ's socket is readable: its reply, when whole. */
static void read_recv(struct bridge *b)
{
    if (redisBufferRead(b->bc.read) != REDIS_OK) {
        went_down(b, "XREADGROUP");
        return;
    }
    void *rep = NULL;
    if (redisGetReplyFromReader(b->bc.read, &rep) != REDIS_OK) {
        went_down(b, "XREADGROUP");
        return;
    }
    if (!rep) return; /* not whole yet */
    b->bc.read_outstanding = false;
    redisReply *r = rep;
    if (r->type == REDIS_REPLY_ERROR) {
        logf_(b, "XREADGROUP failed: %s", r->str);
        if (strncmp(r->str, "NOGROUP", 7) == 0) went_down(b, "the group is gone"); /* made again */
    } else {
        take_read(b, r);
    }
    freeReplyObject(r);
}

/* ---- stats --------------------------------------------------------------- */

static void metrics_publish(struct bridge *b)
{
    struct bridge_metrics m = {
        .taken = b->taken, .reclaimed = b->reclaimed, .rerun = b->rerun, .acked = b->acked,
        .dead = b->dead, .expired = b->expired, .running = count_state(b, J_RUNNING),
        .unposted = count_state(b, J_POST) + count_state(b, J_DEAD), .up = b->up,
        .rtt_count = b->bc.rtt_count, .rtt_sum_ns = b->bc.rtt_sum_ns,
    };
    bridge_metrics_write(b->pool, b->consumer, &m);
}

static void stats_line(struct bridge *b, const char *when)
{
    double avg = b->bc.rtt_count ? (double)b->bc.rtt_sum_ns / (double)b->bc.rtt_count / 1e6 : 0;
    logf_(b, "%sstats: taken=%" PRIu64 " reclaimed=%" PRIu64 " rerun=%" PRIu64 " acknowledged=%" PRIu64
          " dead_lettered=%" PRIu64 " expired=%" PRIu64 " unanswered=%" PRIu64 " running=%zu unposted=%zu"
          " redis=%s rtt_avg_ms=%.3f rtt_max_ms=%.3f round_trips=%" PRIu64,
          when, b->taken, b->reclaimed, b->rerun, b->acked, b->dead, b->expired, b->unanswered,
          count_state(b, J_RUNNING), count_state(b, J_POST) + count_state(b, J_DEAD),
          b->up ? "up" : "down", avg, (double)b->bc.rtt_max_ns / 1e6, b->bc.rtt_count);
    b->bc.rtt_max_ns = 0; /* the max over each interval */
}

/* ---- the loop ------------------------------------------------------------ */

static int loop(struct bridge *b, int sfd)
{
    b->backoff_ns = BACKOFF_MIN_NS;
    strcpy(b->claim_cursor, "0-0");
    uint64_t start = now_ns();
    bool draining = false;
    uint64_t next_metrics = 0;
    b->next_stats = b->stats_every_ns ? start + (uint64_t)b->stats_every_ns : UINT64_MAX;
    for (;;) {
        b->turn++;
        uint64_t now = now_ns();
        if (!b->up && now >= b->retry_at && b->stopping < 2) try_connect(b);
        if (b->refused) return 1; /* nothing taken yet */
        collect(b);
        if (b->up) post(b);
        if (b->up) rerun(b);
        if (b->pool_down) { /* nothing running will end: what is answered is posted, the rest left */
            size_t left = 0;
            for (size_t i = 0; i < b->njobs; i++) left += b->jobs[i]->st == J_POST || b->jobs[i]->st == J_DEAD;
            if (!left) break;
        }
        submit_all(b);
        if (b->up) post(b); /* refused and expired entries */
        if ((b->stopping || b->pool_stopping) && !draining) {
            draining = true;
            if (b->up && b->bc.read_outstanding) { /* its reply comes at once, perhaps with entries */
                redisReply *r = bridge_command(&b->bc, "CLIENT UNBLOCK %lld", b->bc.read_id);
                if (r) freeReplyObject(r);
                else went_down(b, "CLIENT UNBLOCK");
            }
        }
        unsigned free_ = draining || b->pool_down ? 0 : free_capacity(b);
        now = now_ns();
        if (b->up && now >= b->next_beat) {
            remark(b, now);
            b->next_beat = now + (uint64_t)b->claim_after_ns / 4;
        }
        if (b->up && free_ && now >= b->next_claim) {
            autoclaim(b, free_);
            b->next_claim = now + (uint64_t)b->claim_after_ns / 4;
            submit_all(b);
            if (b->up) post(b);
            free_ = draining || b->pool_down ? 0 : free_capacity(b);
        }
        if (b->up && free_ && !b->bc.read_outstanding) read_send(b, free_);
        if (now >= next_metrics) {
            metrics_publish(b);
            next_metrics = now + METRICS_NS;
        }
        if (now >= b->next_stats) {
            stats_line(b, "");
            b->next_stats = now + (uint64_t)b->stats_every_ns;
        }
        if (b->stopping >= 2) break;
        if (draining && !b->bc.read_outstanding && !b->njobs) break;
        /* wait */
        struct pollfd pf[3] = { { sfd, POLLIN, 0 }, { b->cfd, POLLIN, 0 }, { -1, POLLIN, 0 } };
        if (b->up && b->bc.read_outstanding) pf[2].fd = b->bc.read->fd;
        int64_t wait = LOOK_NS;
        if (b->cfd < 0 && count_state(b, J_RUNNING)) wait = 2 * MS;
        if (!b->up && b->retry_at > now && (int64_t)(b->retry_at - now) < wait) wait = (int64_t)(b->retry_at - now);
        if (!b->up && b->retry_at <= now) wait = 0;
        if (b->pool_down) wait = 100 * MS;
        int k = poll(pf, 3, (int)(wait / MS) + (wait % MS != 0));
        if (k < 0 && errno != EINTR) {
            logf_(b, "poll: %s", strerror(errno));
            return 1;
        }
        if (k > 0 && pf[0].revents) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                b->stopping++;
                if (b->stopping == 1)
                    logf_(b, "%s: draining: taking no more work; %zu calls to finish and post "
                          "(again to quit at once)", strsignal((int)si.ssi_signo), b->njobs);
            }
        }
        if (k > 0 && b->up && pf[2].fd >= 0 && pf[2].revents) read_recv(b);
    }
    stats_line(b, "final ");
    size_t left = b->njobs;
    if (left)
        logf_(b, "%zu entries not answered here: they stay pending in the group, and another bridge "
              "takes them over after --claim-after", left);
    if (b->pool_down) return 1;
    return b->stopping >= 2 && left ? 1 : 0;
}

/* ---- the command --------------------------------------------------------- */

static char *key_of(const char *stream, const char *suffix)
{
    size_t n = strlen(stream) + strlen(suffix) + 1;
    char *k = malloc(n);
    if (k) snprintf(k, n, "%s%s", stream, suffix);
    return k;
}

int cmd_bridge(int argc, char **argv)
{
    static struct bridge br; /* its pipe is large */
    struct bridge *b = &br;
    const char *redis = NULL, *pos = NULL;
    b->claim_after_ns = 30000 * MS;
    b->stats_every_ns = 60000 * MS;
    b->max_deliveries = 3;
    for (int i = 0; i < argc;) {
        char name[64];
        if (!option_name(argv[i], name, sizeof name)) {
            if (pos) return usage_error("unexpected argument '%s'", argv[i]);
            pos = argv[i++];
            continue;
        }
        const char *val = option_value(argc, argv, &i, true);
        if (!val) return usage_error("option --%s needs a value", name);
        if (strcmp(name, "redis") == 0) redis = val;
        else if (strcmp(name, "stream") == 0) b->stream = val;
        else if (strcmp(name, "group") == 0) b->group = val;
        else if (strcmp(name, "consumer") == 0) b->consumer = val;
        else if (strcmp(name, "claim_after") == 0) {
            if (!parse_duration(val, &b->claim_after_ns) || b->claim_after_ns < 100 * MS ||
                b->claim_after_ns == EMBER_NEVER)
                return usage_error("option --claim-after: '%s' is not a duration of at least 100ms "
                                   "(e.g. 30s)", val);
        } else if (strcmp(name, "stats_interval") == 0) {
            if (!parse_duration(val, &b->stats_every_ns))
                return usage_error("option --stats-interval: '%s' is not a duration (e.g. 10s; 0: "
                                   "only at the end)", val);
            if (b->stats_every_ns == EMBER_NEVER) b->stats_every_ns = 0;
        } else if (strcmp(name, "max_deliveries") == 0) {
            uint64_t n;
            if (!parse_uint(val, 1000, &n) || n == 0)
                return usage_error("option --max-deliveries: '%s' is not a number from 1 to 1000", val);
            b->max_deliveries = (unsigned)n;
        } else {
            return usage_error("unknown option --%s", name);
        }
    }
    if (!pos) return usage_error("the local pool's NAME is needed");
    if (!redis) return usage_error("--redis URL is needed: the Redis that holds the stream "
                                   "(redis://[[[USER]:]PASSWORD@]HOST[:PORT][/DB], "
                                   "unix://[[[USER]:]PASSWORD@]/PATH[?db=N])");
    if (!b->stream || !b->stream[0]) return usage_error("--stream KEY is needed");
    if (!b->group || !b->group[0]) return usage_error("--group NAME is needed");
    char err[300];
    if (ember_redis_url_parse(redis, &b->url, err, sizeof err) != 0) return usage_error("--redis: %s", err);
    b->pool = pos;
    if (gethostname(b->host, sizeof b->host - 1) != 0) strcpy(b->host, "unknown");
    static char consumer[320];
    if (!b->consumer) {
        snprintf(consumer, sizeof consumer, "%s:%s", b->host, b->pool);
        b->consumer = consumer;
    }
    if (!b->consumer[0]) return usage_error("option --consumer: an empty name");
    b->k_results = key_of(b->stream, ":results");
    b->k_done = key_of(b->stream, ":done");
    b->k_dead = key_of(b->stream, ":dead");
    b->k_causes = key_of(b->stream, ":causes");
    if (!b->k_results || !b->k_done || !b->k_dead || !b->k_causes) return fail(-EMBER_ENOMEM, "bridge");
    if (cli_attach(b->pool, &b->c)) return 1;
    b->cfd = ember_completion_fd(b->c);
    if (b->cfd < 0) b->cfd = -1; /* ember_wait_any is polled instead */

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        fprintf(stderr, "%s: signalfd: %s\n", cli_cmd, strerror(errno));
        ember_detach(b->c);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    logf_(b, "serving stream %s, group %s, as consumer %s (claim after %.3gs, at most %u deliveries)",
          b->stream, b->group, b->consumer, (double)b->claim_after_ns / 1e9, b->max_deliveries);
    bridge_metrics_sweep(b->pool); /* what bridges of this pool SIGKILLed left */
    int status = loop(b, sfd);
    bridge_metrics_remove(b->pool);
    bridge_disconnect(&b->bc);
    close(sfd);
    ember_detach(b->c);
    for (size_t i = 0; i < b->njobs; i++) job_free(b->jobs[i]);
    free(b->jobs);
    free(b->runners);
    free(b->k_results), free(b->k_done), free(b->k_dead), free(b->k_causes);
    return status;
}
