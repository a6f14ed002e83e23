/* bridge/conn.c - the bridge's two connections to Redis, through hiredis.
 *
 * CMD takes commands whose replies come at once (posting results,
 * claiming, heartbeats): hiredis's blocking calls, with a short timeout so
 * that a Redis that stops answering is a failed command, not a hang. READ
 * carries one XREADGROUP ... BLOCK at a time; the event loop writes it, then
 * polls READ's socket beside the pool's completion fd and reads the reply
 * when it comes (bridge.c), so a blocked read never holds up a call's
 * result. Both are made by libember-redis's ember_redis__connect (connect,
 * AUTH, SELECT), as the producer's are. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "bridge.h"
#include "../redis/internal.h"

/* how long connecting, and a command on CMD, may take */
#define CONNECT_TIMEOUT_MS 1000
#define COMMAND_TIMEOUT_MS 2000

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bridge_connect(struct bridge_conn *bc, const struct ember_redis_url *u, char *err, size_t errlen)
{
    bridge_disconnect(bc);
    int rc = ember_redis__connect(u, CONNECT_TIMEOUT_MS, COMMAND_TIMEOUT_MS, &bc->cmd, err, errlen);
    if (!rc) rc = ember_redis__connect(u, CONNECT_TIMEOUT_MS, COMMAND_TIMEOUT_MS, &bc->read, err, errlen);
    if (rc) {
        bridge_disconnect(bc);
        return rc;
    }
    redisReply *r = redisCommand(bc->read, "CLIENT ID");
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        char where[300];
        ember_redis__where(u, where, sizeof where);
        bool busy = r && r->type == REDIS_REPLY_ERROR && ember_redis__transient(r->str);
        bool refused = r && !busy;
        snprintf(err, errlen, "Redis at %s %s CLIENT ID: %s", where,
                 busy ? "is not serving yet:" : "did not answer",
                 r && r->type == REDIS_REPLY_ERROR ? r->str : bc->read->errstr);
        rc = refused ? -EMBER_REDIS_EREPLY : -EMBER_REDIS_ECONN;
        if (r) freeReplyObject(r);
        bridge_disconnect(bc);
        return rc;
    }
    bc->read_id = r->integer;
    freeReplyObject(r);
    return 0;
}

void bridge_disconnect(struct bridge_conn *bc)
{
    if (bc->cmd) redisFree(bc->cmd);
    if (bc->read) redisFree(bc->read);
    bc->cmd = bc->read = NULL;
    bc->read_outstanding = false;
}

static void rtt(struct bridge_conn *bc, uint64_t t0)
{
    uint64_t d = mono_ns() - t0;
    bc->rtt_count++;
    bc->rtt_sum_ns += d;
    if (d > bc->rtt_max_ns) bc->rtt_max_ns = d;
}

int bridge_pipeline(struct bridge_conn *bc, int n, const int *argc, const char *const *const *argv,
                    const size_t *const *argvlen, redisReply **replies)
{
    if (!bc->cmd) return -1;
    uint64_t t0 = mono_ns();
    for (int i = 0; i < n; i++)
        if (redisAppendCommandArgv(bc->cmd, argc[i], (const char **)argv[i], argvlen[i]) != REDIS_OK)
            return -1;
    for (int i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(bc->cmd, &r) != REDIS_OK || !r) {
            for (int j = 0; j < i; j++) freeReplyObject(replies[j]);
            return -1;
        }
        replies[i] = r;
    }
    rtt(bc, t0);
    return 0;
}

redisReply *bridge_command(struct bridge_conn *bc, const char *fmt, ...)
{
    if (!bc->cmd) return NULL;
    uint64_t t0 = mono_ns();
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(bc->cmd, fmt, ap);
    va_end(ap);
    if (r) rtt(bc, t0);
    return r;
}
