/* redis/internal.h - what libember-redis gives `ember bridge` and no one
 * else: the writer of the result blob whose reader is
 * ember_redis_result_parse (both in blob.c, so one file defines the format
 * of docs/ARCHITECTURE.md, "Across hosts: Redis Streams"). Not in
 * <ember/redis.h> and not exported by libember-redis.so (ember-redis.map
 * exports ember_redis_[a-z]* only); the bridge links the library's objects
 * (libember-redis.a). */
#ifndef EMBER_REDIS_INTERNAL_H
#define EMBER_REDIS_INTERNAL_H

#include <stddef.h>

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
