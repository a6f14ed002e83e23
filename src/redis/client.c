/* redis/client.c - the producer's side of the Redis stream (redis.h): add
 * call entries, wait for their results.
 *
 * The format is the bridge's (docs/ARCHITECTURE.md, "Across hosts: Redis
 * Streams"): an entry of STREAM per call; its result in hash STREAM:results
 * under the entry's id, announced by an entry "id ID" of stream STREAM:done,
 * both written with the entry's acknowledgement in one MULTI/EXEC.
 *
 * Waiting, written down once:
 *   - Before the handle's first XADD, it reads the last id of STREAM:done
 *     (the cursor). Every completion of an entry added after that read is
 *     appended to STREAM:done after it, so reading STREAM:done onward from
 *     the cursor (XREAD BLOCK) misses none.
 *   - Each id read there that the handle waits for is looked up in
 *     STREAM:results (HMGET, the ids of one read at once); STREAM:done may
 *     name an id twice (a job that ran twice): only ids still waited for
 *     are looked up, so a result is returned once.
 *   - A lost connection is made again (backoff from 50 ms to 1 s, for up to
 *     30 s); the read goes on from the last id seen, and every id waited for
 *     is looked up in STREAM:results again, in case STREAM:done was trimmed.
 *   - Waiting for an entry this handle did not submit (another process's,
 *     `ember submit --wait ID`): the cursor is read first, then its result
 *     looked up; a result posted after the cursor was read shows in
 *     STREAM:done, one posted before is in STREAM:results.
 *
 * One hiredis synchronous context per handle; no threads. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include <ember/client.h>
#include <ember/redis.h>
#include "internal.h"

#define CONNECT_TIMEOUT_MS 5000
#define IO_TIMEOUT_MS 15000       /* a reply's longest wait: more than a read's BLOCK */
#define BLOCK_MAX_MS 1000         /* one XREAD BLOCK at most: a long wait is many */
#define RECONNECT_FOR_NS (30 * EMBER_REDIS_SECOND)
#define READ_COUNT "512"          /* STREAM:done entries per read */

struct ready {
    char id[EMBER_REDIS_ID_MAX];
    int rc;                       /* 0, or -EMBER_REDIS_EBLOB */
    ember_redis_result res;
};

struct ember_redis {
    redisContext *c;              /* NULL: the connection is lost */
    struct ember_redis_url url;
    char where[300];              /* the URL without its password, for messages */
    char *stream, *done_key, *results_key;
    char cursor[EMBER_REDIS_ID_MAX];
    bool cursor_known;
    uint64_t lost_ns;             /* CLOCK_MONOTONIC when the connection was lost */
    char (*pending)[EMBER_REDIS_ID_MAX]; /* entries waited for, no result read yet */
    size_t npending, cappending;
    struct ready *ready;          /* results read, not returned yet */
    size_t nready, capready;
    char submitter[160];          /* HOST:PID */
    uint64_t submitted;           /* entries added: each one's submitter is HOST:PID#N */
    char errmsg[512];
};

static __thread char open_errmsg[512];

const char *ember_redis_strerror(int err)
{
    if (err < 0) err = -err;
    switch (err) {
    case 0: return "success";
    case EMBER_REDIS_ECONN: return "Redis cannot be reached, or the connection to it was lost";
    case EMBER_REDIS_EREPLY: return "Redis refused a command";
    case EMBER_REDIS_EBLOB: return "a result that cannot be read (corrupt, or from an incompatible bridge)";
    case EMBER_EINVAL: return "invalid argument";
    case EMBER_ETIMEDOUT: return "no result before the timeout";
    case EMBER_ENOMEM: return "out of memory";
    case EMBER_ENOENT: return "no such entry in the stream";
    case EMBER_ENOCALLS: return "nothing to wait for";
    default: return "unknown error";
    }
}

const char *ember_redis_errmsg(const ember_redis *r)
{
    return r ? r->errmsg : open_errmsg;
}

static int say(ember_redis *r, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int say(ember_redis *r, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->errmsg, sizeof r->errmsg, fmt, ap);
    va_end(ap);
    return rc;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the connection ---- */

static void drop(ember_redis *r)
{
    if (r->c) redisFree(r->c);
    r->c = NULL;
    r->lost_ns = mono_ns();
}

/* Run ARGV (lengths LENS, or NULL for C strings); the reply, or NULL with
 * *RC set and the message said: a lost connection (-ECONN, R->c dropped)
 * or Redis's error reply (-EREPLY). */
static redisReply *command(ember_redis *r, int argc, const char **argv, const size_t *lens, int *rc)
{
    if (!r->c) {
        *rc = -EMBER_REDIS_ECONN;
        return NULL;
    }
    redisReply *rep = redisCommandArgv(r->c, argc, argv, lens);
    if (!rep) {
        *rc = say(r, -EMBER_REDIS_ECONN, "lost the connection to Redis at %s during %s: %s", r->where,
                  argv[0], r->c->errstr[0] ? r->c->errstr : "no reply");
        drop(r);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        *rc = say(r, -EMBER_REDIS_EREPLY, "Redis at %s refused %s%s%s: %s", r->where, argv[0],
                  argc > 1 ? " " : "", argc > 1 ? argv[1] : "", rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* Connect, authenticate, select the database (connect.c). 0, or -ECONN /
 * -EREPLY / -ENOMEM said. */
static int connect_now(ember_redis *r)
{
    redisContext *c;
    int rc = ember_redis__connect(&r->url, CONNECT_TIMEOUT_MS, IO_TIMEOUT_MS, &c, r->errmsg, sizeof r->errmsg);
    if (rc) return rc;
    r->c = c;
    return 0;
}

static int recheck(ember_redis *r);

/* The connection, made again if it was lost, trying with a growing pause
 * until 30 s after it was lost (then -ECONN, said) or until DEADLINE_NS
 * (monotonic; then -ETIMEDOUT: try again later), whichever is first. On
 * success the pending entries' results are looked up again. 0, or those,
 * or another failure said. */
static int reconnect(ember_redis *r, uint64_t deadline_ns)
{
    if (r->c) return 0;
    uint64_t give_up = r->lost_ns + RECONNECT_FOR_NS;
    long pause_ms = 50;
    for (;;) {
        int rc = connect_now(r);
        if (rc == 0) return recheck(r);
        if (rc != -EMBER_REDIS_ECONN) return rc;
        uint64_t now = mono_ns();
        if (now >= give_up) {
            char why[sizeof r->errmsg];
            snprintf(why, sizeof why, "%s", r->errmsg);
            return say(r, -EMBER_REDIS_ECONN, "lost the connection to Redis and could not make it again "
                       "in %.0fs: %s", (double)(now - r->lost_ns) / 1e9, why);
        }
        if (now >= deadline_ns) return -EMBER_ETIMEDOUT; /* R->errmsg says why */
        uint64_t left = (give_up < deadline_ns ? give_up : deadline_ns) - now;
        long ms = (uint64_t)pause_ms * 1000000ull < left ? pause_ms : (long)(left / 1000000ull) + 1;
        struct timespec ts = { ms / 1000, ms % 1000 * 1000000l };
        nanosleep(&ts, NULL);
        if (pause_ms < 1000) pause_ms *= 2;
    }
}

/* ---- ids waited for, results read ---- */

static bool is_entry_id(const char *id)
{
    size_t n = strlen(id), a = strspn(id, "0123456789");
    return n < EMBER_REDIS_ID_MAX && a > 0 && id[a] == '-' && id[a + 1] &&
           strspn(id + a + 1, "0123456789") == n - a - 1;
}

static ssize_t pending_find(const ember_redis *r, const char *id)
{
    for (size_t i = 0; i < r->npending; i++)
        if (strcmp(r->pending[i], id) == 0) return (ssize_t)i;
    return -1;
}

static int pending_add(ember_redis *r, const char *id)
{
    if (r->npending == r->cappending) {
        size_t cap = r->cappending ? 2 * r->cappending : 64;
        void *p = realloc(r->pending, cap * sizeof *r->pending);
        if (!p) return say(r, -EMBER_ENOMEM, "out of memory");
        r->pending = p, r->cappending = cap;
    }
    snprintf(r->pending[r->npending++], EMBER_REDIS_ID_MAX, "%s", id);
    return 0;
}

static void pending_remove(ember_redis *r, size_t i)
{
    if (i != --r->npending) memcpy(r->pending[i], r->pending[r->npending], EMBER_REDIS_ID_MAX);
}

/* The result BLOB[0..LEN) of pending entry I: read, and moved to READY. */
static int take_result(ember_redis *r, size_t i, const char *blob, size_t len)
{
    if (r->nready == r->capready) {
        size_t cap = r->capready ? 2 * r->capready : 16;
        struct ready *p = realloc(r->ready, cap * sizeof *p);
        if (!p) return say(r, -EMBER_ENOMEM, "out of memory");
        r->ready = p, r->capready = cap;
    }
    struct ready *rd = &r->ready[r->nready];
    memset(rd, 0, sizeof *rd);
    snprintf(rd->id, sizeof rd->id, "%s", r->pending[i]);
    char *copy = malloc(len ? len : 1);
    if (!copy) return say(r, -EMBER_ENOMEM, "out of memory");
    memcpy(copy, blob, len);
    char err[sizeof rd->res.cause];
    rd->rc = ember_redis_result_parse(copy, len, &rd->res, err, sizeof err);
    if (rd->rc) {
        free(copy);
        snprintf(rd->res.error, sizeof rd->res.error, "unreadable");
        snprintf(rd->res.cause, sizeof rd->res.cause, "%s", err);
    } else {
        rd->res._blob = copy;
    }
    r->nready++;
    pending_remove(r, i);
    return 0;
}

/* Look up the results of entries IDS[0..N) (those still pending) in
 * STREAM:results. */
static int fetch(ember_redis *r, char (*ids)[EMBER_REDIS_ID_MAX], size_t n)
{
    if (!n) return 0;
    const char **argv = malloc((n + 2) * sizeof *argv);
    if (!argv) return say(r, -EMBER_ENOMEM, "out of memory");
    argv[0] = "HMGET", argv[1] = r->results_key;
    for (size_t i = 0; i < n; i++) argv[2 + i] = ids[i];
    int rc = 0;
    redisReply *rep = command(r, (int)n + 2, argv, NULL, &rc);
    free(argv);
    if (rep && (rep->type != REDIS_REPLY_ARRAY || rep->elements != n))
        rc = say(r, -EMBER_REDIS_EREPLY, "Redis at %s answered HMGET %s with no list of %zu", r->where,
                 r->results_key, n);
    for (size_t i = 0; rep && !rc && i < n; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING) continue; /* not posted yet */
        ssize_t at = pending_find(r, ids[i]);
        if (at >= 0) rc = take_result(r, (size_t)at, e->str, e->len);
    }
    if (rep) freeReplyObject(rep);
    return rc;
}

/* Look up every pending entry's result (after a reconnect). */
static int recheck(ember_redis *r)
{
    size_t n = r->npending;
    if (!n) return 0;
    char (*ids)[EMBER_REDIS_ID_MAX] = malloc(n * sizeof *ids);
    if (!ids) return say(r, -EMBER_ENOMEM, "out of memory");
    memcpy(ids, r->pending, n * sizeof *ids);
    int rc = 0;
    for (size_t from = 0; !rc && from < n; from += 256) rc = fetch(r, ids + from, n - from < 256 ? n - from : 256);
    free(ids);
    return rc;
}

/* The last id of STREAM:done into the cursor ("0-0" when it is empty). */
static int read_cursor(ember_redis *r)
{
    const char *a[] = { "XREVRANGE", r->done_key, "+", "-", "COUNT", "1" };
    int rc = 0;
    redisReply *rep = command(r, 6, a, NULL, &rc);
    if (!rep) return rc;
    snprintf(r->cursor, sizeof r->cursor, "0-0");
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 && rep->element[0]->type == REDIS_REPLY_ARRAY &&
        rep->element[0]->elements >= 1 && rep->element[0]->element[0]->type == REDIS_REPLY_STRING)
        snprintf(r->cursor, sizeof r->cursor, "%s", rep->element[0]->element[0]->str);
    freeReplyObject(rep);
    r->cursor_known = true;
    return 0;
}

/* One read of STREAM:done from the cursor, blocking up to BLOCK_MS (0: not
 * at all); the results of the entries waited for that it names are taken. */
static int pump(ember_redis *r, long block_ms)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%ld", block_ms);
    const char *a[] = { "XREAD", "COUNT", READ_COUNT, "BLOCK", ms, "STREAMS", r->done_key, r->cursor };
    const char *nb[] = { "XREAD", "COUNT", READ_COUNT, "STREAMS", r->done_key, r->cursor };
    int rc = 0;
    redisReply *rep = block_ms > 0 ? command(r, 8, a, NULL, &rc) : command(r, 6, nb, NULL, &rc);
    if (!rep) return rc;
    static __thread char ids[512][EMBER_REDIS_ID_MAX]; /* READ_COUNT of them at most */
    size_t n = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 && rep->element[0]->type == REDIS_REPLY_ARRAY &&
        rep->element[0]->elements == 2 && rep->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
        redisReply *list = rep->element[0]->element[1];
        for (size_t i = 0; i < list->elements; i++) {
            redisReply *e = list->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            snprintf(r->cursor, sizeof r->cursor, "%s", e->element[0]->str);
            redisReply *f = e->element[1];
            for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
                if (f->element[k]->type != REDIS_REPLY_STRING || strcmp(f->element[k]->str, "id") != 0 ||
                    f->element[k + 1]->type != REDIS_REPLY_STRING)
                    continue;
                const char *done = f->element[k + 1]->str;
                bool dup = pending_find(r, done) < 0;
                for (size_t j = 0; !dup && j < n; j++) dup = strcmp(ids[j], done) == 0;
                if (!dup && n < 512) snprintf(ids[n++], EMBER_REDIS_ID_MAX, "%s", done);
            }
        }
    }
    freeReplyObject(rep);
    return fetch(r, ids, n);
}

/* ---- the API ---- */

int ember_redis_open(const char *url, const char *stream, ember_redis **out)
{
    *out = NULL;
    open_errmsg[0] = 0;
    ember_redis *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(open_errmsg, sizeof open_errmsg, "out of memory");
        return -EMBER_ENOMEM;
    }
    int rc = ember_redis_url_parse(url, &r->url, r->errmsg, sizeof r->errmsg);
    if (!rc && (!stream || !*stream || strlen(stream) > 1000))
        rc = say(r, -EMBER_EINVAL, "the stream's name (--stream KEY) is %s", stream && *stream ? "too long" : "empty");
    if (rc) goto fail;
    ember_redis__where(&r->url, r->where, sizeof r->where);
    size_t n = strlen(stream) + 16;
    r->stream = strdup(stream);
    r->done_key = malloc(n);
    r->results_key = malloc(n);
    if (!r->stream || !r->done_key || !r->results_key) {
        rc = say(r, -EMBER_ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(r->done_key, n, "%s:done", stream);
    snprintf(r->results_key, n, "%s:results", stream);
    char host[64] = "?";
    gethostname(host, sizeof host);
    host[sizeof host - 1] = 0;
    snprintf(r->submitter, sizeof r->submitter, "%s:%ld", host, (long)getpid());
    if ((rc = connect_now(r))) goto fail;
    /* the keys: free, or of the type the format gives them */
    const char *keys[] = { r->stream, r->done_key, r->results_key };
    const char *types[] = { "stream", "stream", "hash" };
    for (int i = 0; i < 3; i++) {
        const char *a[] = { "TYPE", keys[i] };
        redisReply *rep = command(r, 2, a, NULL, &rc);
        if (!rep) goto fail;
        bool ok = rep->type == REDIS_REPLY_STATUS &&
                  (strcmp(rep->str, "none") == 0 || strcmp(rep->str, types[i]) == 0);
        if (!ok)
            rc = say(r, -EMBER_REDIS_EREPLY, "key '%s' at %s holds a %s, not a %s: choose another --stream "
                     "(it names %s, %s:done and %s:results)", keys[i], r->where,
                     rep->type == REDIS_REPLY_STATUS ? rep->str : "?", types[i], stream, stream, stream);
        freeReplyObject(rep);
        if (rc) goto fail;
    }
    *out = r;
    return 0;
fail:
    snprintf(open_errmsg, sizeof open_errmsg, "%s", r->errmsg);
    ember_redis_close(r);
    return rc;
}

void ember_redis_close(ember_redis *r)
{
    if (!r) return;
    if (r->c) redisFree(r->c);
    for (size_t i = 0; i < r->nready; i++) ember_redis_result_release(&r->ready[i].res);
    free(r->ready);
    free(r->pending);
    free(r->stream);
    free(r->done_key);
    free(r->results_key);
    free(r);
}

/* The id of the entry whose submitter is TOKEN among the stream's last
 * 1000, into ID: 0, or -EMBER_ENOENT, or a failure said. */
static int find_token(ember_redis *r, const char *token, char id[EMBER_REDIS_ID_MAX])
{
    const char *a[] = { "XREVRANGE", r->stream, "+", "-", "COUNT", "1000" };
    int rc = 0;
    redisReply *rep = command(r, 6, a, NULL, &rc);
    if (!rep) return rc;
    rc = -EMBER_ENOENT;
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && rc && i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        redisReply *f = e->element[1];
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            if (f->element[k]->type == REDIS_REPLY_STRING && strcmp(f->element[k]->str, "submitter") == 0 &&
                f->element[k + 1]->type == REDIS_REPLY_STRING && strcmp(f->element[k + 1]->str, token) == 0) {
                snprintf(id, EMBER_REDIS_ID_MAX, "%s", e->element[0]->str);
                rc = 0;
            }
    }
    freeReplyObject(rep);
    return rc;
}

int ember_redis_submit(ember_redis *r, const char *handler, const void *args, size_t len,
                       int64_t timeout_ns, unsigned retries, char id[EMBER_REDIS_ID_MAX])
{
    r->errmsg[0] = 0;
    if (!handler || !*handler || strlen(handler) > 255 || (len && !args) || retries > 15)
        return say(r, -EMBER_EINVAL, "%s", retries > 15 ? "retries are 0 to 15" : "a handler's name (1-255 bytes) "
                   "and its arguments are needed");
    int rc = reconnect(r, UINT64_MAX);
    if (rc) return rc;
    if (!r->cursor_known && (rc = read_cursor(r))) return rc;
    char deadline[24], tries[8], token[200];
    snprintf(token, sizeof token, "%s#%" PRIu64, r->submitter, ++r->submitted);
    const char *argv[16];
    size_t lens[16];
    int n = 0;
#define ARG(s, l) (argv[n] = (s), lens[n] = (l), n++)
#define SARG(s) ARG(s, strlen(s))
    SARG("XADD");
    SARG(r->stream);
    SARG("*");
    SARG("handler");
    SARG(handler);
    SARG("args");
    ARG(len ? (const char *)args : "", len);
    if (timeout_ns > 0 && timeout_ns != EMBER_REDIS_NEVER) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + (timeout_ns + 999999) / 1000000;
        snprintf(deadline, sizeof deadline, "%lld", ms);
        SARG("deadline_ms");
        SARG(deadline);
    }
    if (retries) {
        snprintf(tries, sizeof tries, "%u", retries);
        SARG("retries");
        SARG(tries);
    }
    SARG("submitter");
    SARG(token);
#undef SARG
#undef ARG
    redisReply *rep = command(r, n, argv, lens, &rc);
    if (!rep && rc == -EMBER_REDIS_ECONN) {
        /* the entry may have been added before the connection broke: made
         * again, the stream's last entries say, by this one's token */
        if ((rc = reconnect(r, UINT64_MAX)) == 0 && (rc = find_token(r, token, id)) == 0) return pending_add(r, id);
        if (rc == -EMBER_ENOENT) rep = command(r, n, argv, lens, &rc);
        if (!rep && rc == -EMBER_REDIS_ECONN)
            say(r, rc, "%s (the entry may have been added all the same)", r->errmsg);
    }
    if (!rep) return rc;
    if (rep->type != REDIS_REPLY_STRING || !is_entry_id(rep->str)) {
        freeReplyObject(rep);
        return say(r, -EMBER_REDIS_EREPLY, "Redis at %s answered XADD %s with no entry id", r->where, r->stream);
    }
    snprintf(id, EMBER_REDIS_ID_MAX, "%s", rep->str);
    freeReplyObject(rep);
    return pending_add(r, id);
}

/* Ready result I to the caller. */
static int hand_out(ember_redis *r, size_t i, char id[EMBER_REDIS_ID_MAX], ember_redis_result *res)
{
    struct ready rd = r->ready[i];
    r->ready[i] = r->ready[--r->nready];
    if (id) snprintf(id, EMBER_REDIS_ID_MAX, "%s", rd.id);
    if (rd.rc) {
        memset(res, 0, sizeof *res);
        return say(r, rd.rc, "the result of entry %s cannot be read: %s", rd.id, rd.res.cause);
    }
    *res = rd.res;
    return 0;
}

/* Wait for ONE (an id) or, when NULL, any of the handle's entries. */
static int wait_for(ember_redis *r, const char *one, int64_t timeout_ns, char id[EMBER_REDIS_ID_MAX],
                    ember_redis_result *res)
{
    uint64_t start = mono_ns();
    uint64_t deadline = timeout_ns < 0 || timeout_ns == EMBER_REDIS_NEVER ||
                        (uint64_t)timeout_ns > UINT64_MAX - start ? UINT64_MAX : start + (uint64_t)timeout_ns;
    bool looked = false;
    for (;;) {
        for (size_t i = 0; i < r->nready; i++)
            if (!one || strcmp(r->ready[i].id, one) == 0) return hand_out(r, i, id, res);
        if (!one && !r->npending) return say(r, -EMBER_ENOCALLS, "nothing submitted on this handle is waited for");
        uint64_t now = mono_ns();
        if (looked && now >= deadline) return -EMBER_ETIMEDOUT;
        int rc = reconnect(r, deadline == UINT64_MAX ? UINT64_MAX : deadline);
        if (rc) return rc;
        now = mono_ns();
        long ms = now >= deadline ? 0 : (deadline - now) / 1000000 > BLOCK_MAX_MS ? BLOCK_MAX_MS
                                      : (long)((deadline - now) / 1000000);
        if (now < deadline && ms == 0) ms = 1;
        rc = pump(r, ms);
        looked = true;
        if (rc && rc != -EMBER_REDIS_ECONN) return rc; /* a lost connection is made again above */
    }
}

/* Entry ID, not this handle's: waited for from now on, once it is known
 * to exist. The cursor is read first, then its result looked up (one
 * posted before the cursor is in STREAM:results, one after it will show in
 * STREAM:done), then its entry. 0, or a failure said (ID not pending). */
static int adopt(ember_redis *r, const char *id)
{
    int rc = reconnect(r, UINT64_MAX);
    if (!rc && !r->cursor_known) rc = read_cursor(r);
    if (!rc) rc = pending_add(r, id);
    if (rc) return rc;
    char one[1][EMBER_REDIS_ID_MAX];
    snprintf(one[0], sizeof one[0], "%s", id);
    if ((rc = fetch(r, one, 1)) == 0 && pending_find(r, id) >= 0) {
        const char *a[] = { "XRANGE", r->stream, id, id };
        redisReply *rep = command(r, 4, a, NULL, &rc);
        if (rep && !(rep->type == REDIS_REPLY_ARRAY && rep->elements > 0))
            rc = say(r, -EMBER_ENOENT, "stream %s has no entry %s, and %s no result for it", r->stream, id,
                     r->results_key);
        if (rep) freeReplyObject(rep);
    }
    ssize_t at = rc ? pending_find(r, id) : -1;
    if (at >= 0) pending_remove(r, (size_t)at);
    return rc;
}

int ember_redis_wait(ember_redis *r, const char *id, int64_t timeout_ns, ember_redis_result *res)
{
    memset(res, 0, sizeof *res);
    r->errmsg[0] = 0;
    if (!id || !is_entry_id(id))
        return say(r, -EMBER_EINVAL, "'%s' is not a stream entry's id (as 1733450000000-0)", id ? id : "(null)");
    bool known = pending_find(r, id) >= 0;
    for (size_t i = 0; !known && i < r->nready; i++) known = strcmp(r->ready[i].id, id) == 0;
    int rc = known ? 0 : adopt(r, id);
    if (rc) return rc;
    rc = wait_for(r, id, timeout_ns, NULL, res);
    ssize_t at = known ? -1 : pending_find(r, id);
    if (at >= 0) pending_remove(r, (size_t)at); /* another's entry: not this handle's to wait_any for */
    return rc;
}

int ember_redis_wait_any(ember_redis *r, int64_t timeout_ns, char id[EMBER_REDIS_ID_MAX],
                         ember_redis_result *res)
{
    memset(res, 0, sizeof *res);
    r->errmsg[0] = 0;
    return wait_for(r, NULL, timeout_ns, id, res);
}

int ember_redis_forget(ember_redis *r, const char *id)
{
    ssize_t at = pending_find(r, id);
    if (at >= 0) {
        pending_remove(r, (size_t)at);
        return 0;
    }
    for (size_t i = 0; i < r->nready; i++)
        if (strcmp(r->ready[i].id, id) == 0) {
            ember_redis_result_release(&r->ready[i].res);
            r->ready[i] = r->ready[--r->nready];
            return 0;
        }
    return say(r, -EMBER_ENOENT, "entry %s is not waited for on this handle", id);
}

size_t ember_redis_pending(const ember_redis *r)
{
    return r->npending + r->nready;
}

void ember_redis_result_release(ember_redis_result *res)
{
    if (!res) return;
    free(res->_blob);
    memset(res, 0, sizeof *res);
}

int ember_redis_entry_handler(ember_redis *r, const char *id, char *handler, size_t cap)
{
    if (!is_entry_id(id)) return say(r, -EMBER_EINVAL, "'%s' is not a stream entry's id", id);
    int rc = reconnect(r, UINT64_MAX);
    if (rc) return rc;
    const char *a[] = { "XRANGE", r->stream, id, id };
    redisReply *rep = command(r, 4, a, NULL, &rc);
    if (!rep) return rc;
    rc = say(r, -EMBER_ENOENT, "stream %s has no entry %s", r->stream, id);
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 && rep->element[0]->type == REDIS_REPLY_ARRAY &&
        rep->element[0]->elements == 2) {
        redisReply *f = rep->element[0]->element[1];
        for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2)
            if (f->element[k]->type == REDIS_REPLY_STRING && strcmp(f->element[k]->str, "handler") == 0 &&
                f->element[k + 1]->type == REDIS_REPLY_STRING) {
                snprintf(handler, cap, "%s", f->element[k + 1]->str);
                r->errmsg[0] = 0;
                rc = 0;
            }
    }
    freeReplyObject(rep);
    return rc;
}
