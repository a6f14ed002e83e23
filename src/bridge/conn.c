/* bridge/conn.c - the bridge's two connections to Redis, through hiredis.
 *
 * CMD takes commands whose replies come at once (posting results,
 * claiming, heartbeats): hiredis's blocking calls, with a short timeout so
 * that a Redis that stops answering is a failed command, not a hang. READ
 * carries one XREADGROUP ... BLOCK at a time; the event loop writes it, then
 * polls READ's socket beside the pool's completion fd and reads the reply
 * when it comes (bridge.c), so a blocked read never holds up a call's
 * result. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "bridge.h"

/* how long connecting, and a command on CMD, may take */
#define CONNECT_TIMEOUT_MS 1000
#define COMMAND_TIMEOUT_MS 2000

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One connection to U, authenticated, its database selected: the context,
 * or NULL with the reason in ERR. */
static redisContext *open_one(const struct ember_redis_url *u, char *err, size_t errlen)
{
    struct timeval ct = { 0, CONNECT_TIMEOUT_MS * 1000 };
    redisContext *c = u->unix_socket ? redisConnectUnixWithTimeout(u->path, ct)
                                     : redisConnectWithTimeout(u->host, u->port, ct);
    if (!c || c->err) {
        if (u->unix_socket) snprintf(err, errlen, "cannot connect to Redis at %s: %s", u->path,
                                     c ? c->errstr : "out of memory");
        else snprintf(err, errlen, "cannot connect to Redis at %s:%d: %s", u->host, u->port,
                      c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    struct timeval tt = { COMMAND_TIMEOUT_MS / 1000, (COMMAND_TIMEOUT_MS % 1000) * 1000 };
    redisSetTimeout(c, tt);
    if (!u->unix_socket) redisEnableKeepAlive(c); /* TCP only: on a unix socket it fails the context */
    redisReply *r = NULL;
    if (u->password[0]) {
        r = u->user[0] ? redisCommand(c, "AUTH %s %s", u->user, u->password)
                       : redisCommand(c, "AUTH %s", u->password);
        if (!r || r->type == REDIS_REPLY_ERROR) goto failed;
        freeReplyObject(r);
    }
    if (u->db) {
        r = redisCommand(c, "SELECT %d", u->db);
        if (!r || r->type == REDIS_REPLY_ERROR) goto failed;
        freeReplyObject(r);
    }
    return c;
failed:
    snprintf(err, errlen, "Redis refused the connection's %s: %s", u->db && r ? "SELECT" : "AUTH",
             r ? r->str : c->errstr);
    if (r) freeReplyObject(r);
    redisFree(c);
    return NULL;
}

int bridge_connect(struct bridge_conn *bc, const struct ember_redis_url *u, char *err, size_t errlen)
{
    bridge_disconnect(bc);
    if (!(bc->cmd = open_one(u, err, errlen))) return -1;
    if (!(bc->read = open_one(u, err, errlen))) {
        bridge_disconnect(bc);
        return -1;
    }
    redisReply *r = redisCommand(bc->read, "CLIENT ID");
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errlen, "Redis did not answer CLIENT ID: %s",
                 r && r->type == REDIS_REPLY_ERROR ? r->str : bc->read->errstr);
        if (r) freeReplyObject(r);
        bridge_disconnect(bc);
        return -1;
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
