/* bridge-bench - what `ember bridge` adds to a job: the same empty call
 * (the echo handler, 8 bytes) made directly on a local pool, and as an
 * entry of a Redis stream that bridges feed to their pools. bench/bridge
 * runs it in alternating rounds.
 *
 * Usage:
 *   bridge-bench local POOL N        N calls one after another (latency),
 *                                    then N with 8 in flight (throughput)
 *   bridge-bench stream PORT KEY N   N entries one after another, each
 *                                    awaited in KEY:done (latency), then
 *                                    N added at once and awaited (throughput)
 * Prints "latency_us X" and "throughput_per_s Y"; exit status 0, or 1 with
 * the reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <hiredis/hiredis.h>
#include <ember/client.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int local(const char *pool, long n)
{
    ember_client *c;
    if (ember_attach(pool, &c) != 0) {
        fprintf(stderr, "bridge-bench: %s\n", ember_last_error());
        return 1;
    }
    int h = ember_handler(c, "echo");
    ember_result r;
    for (int i = 0; i < 100; i++) { /* warm */
        ember_call(c, h, "12345678", 8, &r, EMBER_NEVER);
        ember_result_release(c, &r);
    }
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        if (ember_call(c, h, "12345678", 8, &r, EMBER_NEVER) != 0) {
            fprintf(stderr, "bridge-bench: call: %s\n", ember_strerror(r.status));
            return 1;
        }
        ember_result_release(c, &r);
    }
    double t1 = now_s();
    long sent = 0, done = 0;
    int inflight = 0;
    while (done < n) {
        while (inflight < 8 && sent < n) {
            ember_call_id id;
            if (ember_submit(c, h, "12345678", 8, EMBER_NEVER, &id) != 0) return 1;
            inflight++, sent++;
        }
        ember_call_id id;
        if (ember_wait_any(c, EMBER_NEVER, &id, &r) == 0) {
            ember_result_release(c, &r);
            inflight--, done++;
        }
    }
    double t2 = now_s();
    printf("latency_us %.2f\nthroughput_per_s %.0f\n", (t1 - t0) / (double)n * 1e6, (double)n / (t2 - t1));
    ember_detach(c);
    return 0;
}

/* Wait until KEY:done has an entry for ID (or, with ID NULL, until
 * KEY:results holds WANT results), reading KEY:done from *LAST. */
static int await_done(redisContext *rc, const char *key, char *last, const char *id)
{
    for (;;) {
        redisReply *r = redisCommand(rc, "XREAD COUNT 1000 BLOCK 5000 STREAMS %s:done %s", key, last);
        if (!r) return -1;
        if (r->type == REDIS_REPLY_NIL) {
            freeReplyObject(r);
            fprintf(stderr, "bridge-bench: no result in 5 s: is a bridge running?\n");
            return -1;
        }
        int found = 0;
        redisReply *es = r->element[0]->element[1];
        for (size_t i = 0; i < es->elements; i++) {
            redisReply *e = es->element[i];
            snprintf(last, 64, "%s", e->element[0]->str);
            if (id && strcmp(e->element[1]->element[1]->str, id) == 0) found = 1;
        }
        freeReplyObject(r);
        if (found || !id) return 0;
    }
}

static long hlen(redisContext *rc, const char *key)
{
    redisReply *r = redisCommand(rc, "HLEN %s:results", key);
    long v = r && r->type == REDIS_REPLY_INTEGER ? (long)r->integer : -1;
    if (r) freeReplyObject(r);
    return v;
}

static int stream(int port, const char *key, long n)
{
    redisContext *rc = redisConnect("127.0.0.1", port);
    if (!rc || rc->err) {
        fprintf(stderr, "bridge-bench: cannot connect to Redis on port %d\n", port);
        return 1;
    }
    char last[64] = "$";
    redisReply *r = redisCommand(rc, "XREVRANGE %s:done + - COUNT 1", key);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements) snprintf(last, sizeof last, "%s", r->element[0]->element[0]->str);
    else snprintf(last, sizeof last, "0-0");
    if (r) freeReplyObject(r);
    double lat = 0;
    for (long i = 0; i < n + 20; i++) { /* the first 20 warm */
        double t0 = now_s();
        r = redisCommand(rc, "XADD %s * handler echo args 12345678", key);
        if (!r || r->type != REDIS_REPLY_STRING) return 1;
        char id[64];
        snprintf(id, sizeof id, "%s", r->str);
        freeReplyObject(r);
        if (await_done(rc, key, last, id) != 0) return 1;
        if (i >= 20) lat += now_s() - t0;
    }
    long before = hlen(rc, key);
    double t1 = now_s();
    for (long i = 0; i < n; i++) redisAppendCommand(rc, "XADD %s * handler echo args 12345678", key);
    for (long i = 0; i < n; i++) {
        void *rep;
        if (redisGetReply(rc, &rep) != REDIS_OK) return 1;
        freeReplyObject(rep);
    }
    while (hlen(rc, key) < before + n)
        if (await_done(rc, key, last, NULL) != 0) return 1;
    double t2 = now_s();
    printf("latency_us %.2f\nthroughput_per_s %.0f\n", lat / (double)n * 1e6, (double)n / (t2 - t1));
    redisFree(rc);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "local") == 0) return local(argv[2], atol(argv[3]));
    if (argc == 5 && strcmp(argv[1], "stream") == 0) return stream(atoi(argv[2]), argv[3], atol(argv[4]));
    fprintf(stderr, "usage: bridge-bench local POOL N | stream PORT KEY N\n");
    return 2;
}
