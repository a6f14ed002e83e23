/* redis/internal.h - what libember-redis gives `ember bridge` and no one
 * else: the writer of the result blob whose reader is
 * ember_redis_result_parse (both in blob.c, so one file defines the format
 * of docs/ARCHITECTURE.md, "Across hosts: Redis Streams"), and the
 * connection to a URL's Redis (connect.c, the producer's too, so both say
 * the same about each failure). Not in <ember/redis.h> and not exported by
 * libember-redis.so (ember-redis.map exports ember_redis_[a-z]* only); the
 * bridge links the library's objects (libember-redis.a). */
#ifndef EMBER_REDIS_INTERNAL_H
#define EMBER_REDIS_INTERNAL_H

#include <stddef.h>

struct ember_redis_url;
struct redisContext; /* hiredis's */

/* Connect to U's Redis (CONNECT_MS to connect; IO_MS, the context's
 * timeout for a reply after), AUTH with its credentials if it has any,
 * then SELECT its database if not 0, or PING when neither was sent, so that
 * a server requiring a password is found now. 0 with *OUT set (the
 * caller's to redisFree), or, *OUT NULL, the reason in ERR (ERRLEN bytes,
 * may be 0; never the password) and: -EMBER_REDIS_ECONN (not reached, or
 * the connection lost on the way: trying again may do), -EMBER_REDIS_EREPLY
 * (Redis refused: a password it requires and U lacks, a password or user
 * it refuses, a database it refuses: the same URL will fail again),
 * -EMBER_ENOMEM. */
int ember_redis__connect(const struct ember_redis_url *u, int connect_ms, int io_ms, struct redisContext **out,
                         char *err, size_t errlen);
/* U's server for a message, into BUF: redis://HOST:PORT ([HOST] for IPv6)
 * or unix://PATH, no credentials, no database. */
void ember_redis__where(const struct ember_redis_url *u, char *buf, size_t len);
/* Is error reply ERR one of a server that is up but not serving yet
 * (LOADING its dataset, BUSY with a script, MASTERDOWN, TRYAGAIN,
 * CLUSTERDOWN)? An outage that ends by itself, not a refusal. */
bool ember_redis__transient(const char *err);

/* A finished call, as a bridge posts it. */
struct ember_redis__post {
    int status;               /* 0 or -EMBER_E...; "error" is its name */
    int detail;
    const char *host;         /* the host whose pool ran it */
    const char *consumer;     /* the bridge's consumer name */
    unsigned deliveries;
    const char *cause;        /* a dead letter's cause, NULL for none */
    const char *receipt;      /* the receipt: one JSON object's text (RECEIPT_LEN
                                 bytes), or NULL for none */
    size_t receipt_len;
    const void *out;          /* the output bytes */
    size_t out_len;
};

/* The blob for P: one line of JSON, "\n", then the output bytes, as
 * ember_redis_result_parse reads it. A malloc'd buffer of *LEN bytes, or
 * NULL (out of memory). */
char *ember_redis__blob_write(const struct ember_redis__post *p, size_t *len);

#endif
