/* redis/connect.c - one connection to the Redis a URL names, ready for
 * commands: reached, authenticated, its database selected. The one place
 * that does it, so that ember_redis_open (and its reconnects) and both
 * connections of `ember bridge` say the same about each failure: Redis not
 * reached, a password it requires and the URL lacks, a password it refuses,
 * a database it refuses. No message holds the password.
 *
 * A server that requires a password answers any command but AUTH with
 * NOAUTH; without a password in the URL the first command is the SELECT
 * (a database given) or a PING, so that is found here, not on the first
 * command the caller sends. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include <ember/client.h>
#include <ember/redis.h>
#include "internal.h"

void ember_redis__where(const struct ember_redis_url *u, char *buf, size_t len)
{
    if (u->unix_socket) snprintf(buf, len, "unix://%s", u->path);
    else snprintf(buf, len, strchr(u->host, ':') ? "redis://[%s]:%d" : "redis://%s:%d", u->host, u->port);
}

static int say(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int say(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* How to give U a password: U as a URL with PASSWORD in it, into BUF. */
static void with_password(const struct ember_redis_url *u, char *buf, size_t len)
{
    char db[24] = "";
    if (u->unix_socket) {
        if (u->db) snprintf(db, sizeof db, "?db=%d", u->db);
        snprintf(buf, len, "unix://:PASSWORD@%s%s", u->path, db);
    } else {
        if (u->db) snprintf(db, sizeof db, "/%d", u->db);
        snprintf(buf, len, strchr(u->host, ':') ? "redis://:PASSWORD@[%s]:%d%s" : "redis://:PASSWORD@%s:%d%s",
                 u->host, u->port, db);
    }
}

bool ember_redis__transient(const char *err)
{
    static const char *const codes[] = { "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN" };
    for (size_t k = 0; err && k < sizeof codes / sizeof *codes; k++) {
        size_t n = strlen(codes[k]);
        if (strncmp(err, codes[k], n) == 0 && (err[n] == ' ' || err[n] == 0)) return true;
    }
    return false;
}

/* ARGV on C: the reply (not an error), or NULL with the failure said and
 * returned in *RC: -EMBER_REDIS_ECONN (no reply: the connection is lost) or
 * -EMBER_REDIS_EREPLY (Redis refused it). WHAT names the command in a
 * message, never its arguments (AUTH's are the credentials). */
static redisReply *run(redisContext *c, const struct ember_redis_url *u, const char *where, int argc,
                       const char **argv, const char *what, char *err, size_t errlen, int *rc)
{
    redisReply *rep = redisCommandArgv(c, argc, argv, NULL);
    if (!rep) {
        *rc = say(err, errlen, -EMBER_REDIS_ECONN, "lost the connection to Redis at %s during %s: %s", where, what,
                  c->errstr[0] ? c->errstr : "no reply");
        return NULL;
    }
    if (rep->type != REDIS_REPLY_ERROR) return rep;
    if (ember_redis__transient(rep->str)) {
        *rc = say(err, errlen, -EMBER_REDIS_ECONN, "Redis at %s is not serving yet (%s): %s", where, what,
                  rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    *rc = -EMBER_REDIS_EREPLY;
    if (strncmp(rep->str, "NOAUTH", 6) == 0 && !u->password[0]) {
        char hint[400];
        with_password(u, hint, sizeof hint);
        say(err, errlen, *rc, "Redis at %s requires a password and the URL gives none: give it as %s "
            "(USER:PASSWORD@ for a Redis 6 ACL user)", where, hint);
    } else if (strcmp(argv[0], "AUTH") == 0) {
        if (u->user[0])
            say(err, errlen, *rc, "Redis at %s refused user '%s' with the password in the URL: %s", where,
                u->user, rep->str);
        else
            say(err, errlen, *rc, "Redis at %s refused the password in the URL: %s", where, rep->str);
    } else {
        say(err, errlen, *rc, "Redis at %s refused %s: %s", where, what, rep->str);
    }
    freeReplyObject(rep);
    return NULL;
}

int ember_redis__connect(const struct ember_redis_url *u, int connect_ms, int io_ms, struct redisContext **out,
                         char *err, size_t errlen)
{
    *out = NULL;
    char where[300];
    ember_redis__where(u, where, sizeof where);
    struct timeval ct = { connect_ms / 1000, connect_ms % 1000 * 1000 };
    redisContext *c = u->unix_socket ? redisConnectUnixWithTimeout(u->path, ct)
                                     : redisConnectWithTimeout(u->host, u->port, ct);
    if (!c) return say(err, errlen, -EMBER_ENOMEM, "out of memory connecting to Redis at %s", where);
    if (c->err) {
        say(err, errlen, -EMBER_REDIS_ECONN, "cannot reach Redis at %s: %s (is redis-server running there? "
            "is the URL right?)", where, c->errstr);
        redisFree(c);
        return -EMBER_REDIS_ECONN;
    }
    struct timeval it = { io_ms / 1000, io_ms % 1000 * 1000 };
    redisSetTimeout(c, it);
    if (!u->unix_socket) redisEnableKeepAlive(c); /* TCP only: on a unix socket it fails the context */
    int rc = 0;
    redisReply *rep;
    if (u->password[0] || u->user[0]) { /* a user logs in as itself, even with no password */
        const char *a[] = { "AUTH", u->user, u->password };
        int n = 3;
        if (!u->user[0]) a[1] = u->password, n = 2; /* AUTH PASSWORD: the default user */
        if (!(rep = run(c, u, where, n, a, "AUTH", err, errlen, &rc))) goto fail;
        freeReplyObject(rep);
    }
    if (u->db) {
        char db[16], what[24];
        snprintf(db, sizeof db, "%d", u->db);
        snprintf(what, sizeof what, "SELECT %d", u->db);
        const char *a[] = { "SELECT", db };
        if (!(rep = run(c, u, where, 2, a, what, err, errlen, &rc))) goto fail;
        freeReplyObject(rep);
    } else if (!u->password[0]) {
        const char *a[] = { "PING" };
        if (!(rep = run(c, u, where, 1, a, "PING", err, errlen, &rc))) goto fail;
        freeReplyObject(rep);
    }
    *out = c;
    return 0;
fail:
    redisFree(c);
    return rc;
}
