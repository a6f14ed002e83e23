/* bridge/bridge.h - what the files of `ember bridge` share.
 *
 * `ember bridge POOL --redis URL --stream KEY --group NAME` feeds the local
 * pool POOL from a Redis Streams consumer group (the wire format is in
 * docs/ARCHITECTURE.md, "Across hosts: Redis Streams"):
 *   bridge.c   the command: options, the event loop, the jobs' life
 *   conn.c     the two Redis connections (hiredis): connect, commands
 *   blob.c     a result's receipt, then the blob (libember-redis writes it), a cause's text
 *   metrics.c  its counters, in a file the pool's /metrics adds (openmetrics.c)
 *
 * One thread. Every entry taken is a job in the jobs table until its result
 * is posted with its XACK: a job is answered in Redis or it is still here
 * (or this process died, and the entry is pending in Redis for another
 * bridge to claim). */
#ifndef EMBER_BRIDGE_H
#define EMBER_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include <ember/client.h>
#include <ember/redis.h>

/* A stream entry id, "1700000000000-0": at most 20 + 1 + 20 digits. */
#define BRIDGE_ID_MAX 48

/* ---- conn.c --------------------------------------------------------------- */

/* The two connections: CMD for commands answered at once (posting,
 * claiming), made with a short timeout; READ for XREADGROUP ... BLOCK,
 * whose reply the event loop polls for. */
struct bridge_conn {
    redisContext *cmd, *read;
    long long read_id;         /* READ's CLIENT ID, for CLIENT UNBLOCK */
    bool read_outstanding;     /* an XREADGROUP was sent on READ, its reply not read */
    uint64_t rtt_count, rtt_sum_ns, rtt_max_ns; /* CMD round trips */
};
/* Connect both to U (--redis, read by libember-redis's
 * ember_redis_url_parse), authenticate, select the database, with
 * libember-redis's ember_redis__connect: 0, or, nothing left open and the
 * reason in ERR, -EMBER_REDIS_ECONN (not reached, or lost: try again),
 * -EMBER_REDIS_EREPLY (refused: a password required or wrong, a database;
 * the same URL fails again), -EMBER_ENOMEM. */
int bridge_connect(struct bridge_conn *bc, const struct ember_redis_url *u, char *err, size_t errlen);
void bridge_disconnect(struct bridge_conn *bc);
/* Send ARGV on CMD (pipelined: N commands of ARGC[i] words each, then
 * read N replies into REPLIES[0..N)). 0, or -1 when the connection failed
 * (then REPLIES hold nothing: all freed). Times the round trip. */
int bridge_pipeline(struct bridge_conn *bc, int n, const int *argc, const char *const *const *argv,
                    const size_t *const *argvlen, redisReply **replies);
/* One command on CMD, printf-style (hiredis's format): the reply, or NULL
 * when the connection failed. */
redisReply *bridge_command(struct bridge_conn *bc, const char *fmt, ...);

/* ---- blob.c --------------------------------------------------------------- */

/* A finished call, as its blob says it. */
struct bridge_outcome {
    int status;                /* 0 or -EMBER_E... */
    int detail;
    const void *out;           /* output bytes */
    size_t out_len;
    const char *cause;         /* dead letters: why; NULL otherwise */
    /* the receipt */
    const char *handler;
    const ember_result *call;  /* runner, node, start_ns; NULL: never ran */
    double start_wall;         /* when the bridge submitted it */
    uint64_t submit_ns, done_ns; /* CLOCK_MONOTONIC_COARSE */
    int runner_pid;            /* 0: unknown */
};
/* The blob for O: one line of JSON, "\n", the output bytes, written by
 * libember-redis (ember_redis__blob_write) with O's receipt rendered here.
 * A malloc'd buffer of *LEN bytes, or NULL (out of memory). */
char *bridge_blob(const struct bridge_outcome *o, const char *host, const char *consumer,
                  unsigned deliveries, size_t *len);
/* The text of a crash's cause: "crashed: signal 11", "crashed: exit 3",
 * "oom", "poison: signal 11"... for a call that ended with STATUS, DETAIL. */
void bridge_cause(int status, int detail, char *buf, size_t len);

/* ---- metrics.c ------------------------------------------------------------ */

struct bridge_metrics {
    uint64_t taken, reclaimed, rerun, acked, dead, expired; /* since start */
    uint64_t running, unposted;                             /* now */
    bool up;                                                /* connected to Redis */
    uint64_t rtt_count, rtt_sum_ns;                         /* Redis round trips */
};
/* Publish M for pool POOL's /metrics under consumer CONSUMER (the file
 * /dev/shm/ember-bridge.UID.POOL.PID, replaced whole); failures are ignored. */
void bridge_metrics_write(const char *pool, const char *consumer, const struct bridge_metrics *m);
/* Remove this process's file. */
void bridge_metrics_remove(const char *pool);
/* Remove the files of POOL's bridges that died. */
void bridge_metrics_sweep(const char *pool);

#endif
