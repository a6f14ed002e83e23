/* ember/redis.h - libember-redis: calls to ember pools on other hosts through
 * a Redis stream, v0.2.
 *
 * A producer adds each call as an entry of a Redis stream; on every host an
 * `ember bridge` takes entries from the stream's consumer group, runs them on
 * its local pool and posts each result (docs/ARCHITECTURE.md, "Across hosts:
 * Redis Streams", has the format and the guarantees: at-least-once
 * execution, one result per entry). This library is the producer's side: it
 * adds entries and waits for their results. It is a library of its own,
 * linked with -lember-redis (pkg-config ember-redis), because it needs
 * hiredis and libember does not; it needs nothing of libember.
 *
 * USAGE
 *       ember_redis *r;
 *       int rc = ember_redis_open("redis://db.lan:6379/0", "jobs", &r);
 *       char id[EMBER_REDIS_ID_MAX];
 *       rc = ember_redis_submit(r, "echo", "hi", 2, 30 * EMBER_REDIS_SECOND, 0, id);
 *       ember_redis_result res;
 *       rc = ember_redis_wait(r, id, EMBER_REDIS_NEVER, &res);
 *       if (rc == 0 && res.status == 0) use(res.data, res.len);
 *       ember_redis_result_release(&res);                 // after any 0 return
 *       ember_redis_close(r);
 *
 * ERRORS
 *   Functions return 0 on success and a negative code on failure: one of
 *   ember's (client.h's table, by value: -EMBER_EINVAL, -EMBER_ETIMEDOUT,
 *   -EMBER_ENOMEM, -EMBER_ENOENT, -EMBER_ENOCALLS) or one of the three below.
 *   ember_redis_errmsg() says what was wrong in words (the URL, the key,
 *   Redis's own reply). A call's own failure is no function failure: it is
 *   the result's STATUS (the -EMBER_E... code the remote call ended with).
 *
 * THREADS
 *   A handle is one connection: use it from one thread at a time.
 *
 * CONTENTS
 *   1. codes   2. URLs   3. the handle: open, submit, wait   4. results
 */
#ifndef EMBER_REDIS_H
#define EMBER_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- 1. codes (beside client.h's, which they do not overlap) ---------- */
#define EMBER_REDIS_ECONN  1101 /* Redis cannot be reached, or the connection was lost
                                   and could not be made again in time */
#define EMBER_REDIS_EREPLY 1102 /* Redis refused a command: a key of another type
                                   (WRONGTYPE), a wrong password, no streams (< 5.0)... */
#define EMBER_REDIS_EBLOB  1103 /* a result this library cannot read (corrupt, or
                                   posted by an incompatible bridge) */

#define EMBER_REDIS_SECOND 1000000000ll
#define EMBER_REDIS_NEVER  INT64_MAX /* a timeout that never ends */
/* An entry id ("1733450000000-0") with its NUL fits in this many bytes. */
#define EMBER_REDIS_ID_MAX 48

/* Words for a code this library returns (ember's codes it uses included). */
const char *ember_redis_strerror(int err);

/* ---- 2. URLs ------------------------------------------------------------
 *   redis://[[[USER]:]PASSWORD@]HOST[:PORT][/DB]   (PORT 6379, DB 0 by default;
 *                                                   HOST may be [IPv6])
 *   unix://[[[USER]:]PASSWORD@]/PATH/TO/SOCKET[?db=N] (or unix:PATH, no password)
 * A password is sent with AUTH on every connect, and so is a user with an
 * empty password (USER:@: an ACL user without one logs in as itself, not
 * as the default user); %XX in it, in the user and
 * in PATH stands for that byte. The credentials end at the URL's last '@'
 * (unix://: the last '@' followed by '/', the socket's absolute path; a
 * unix:/// path may hold '@'). A server that requires a password the URL
 * lacks, or refuses the one given, is -EMBER_REDIS_EREPLY on open, saying
 * which (never printing the password). `ember bridge --redis` reads the
 * same URLs and connects with the same code. */
struct ember_redis_url {
    bool unix_socket;
    char host[256];           /* TCP: the host name or address (no brackets) */
    int port;
    char path[108];           /* unix: the socket's path */
    char user[128];           /* "" unless given (Redis 6 ACL user) */
    char password[256];       /* "" when none */
    int db;
};
/* Parse URL into *U. 0, or -EMBER_EINVAL with the reason in ERR (ERRLEN
 * bytes, may be 0). Pure: no connection is made. */
int ember_redis_url_parse(const char *url, struct ember_redis_url *u, char *err, size_t errlen);

/* ---- 3. the handle -------------------------------------------------------- */
typedef struct ember_redis ember_redis;

/* Connect to URL (5 s to connect) and use stream STREAM (its results in
 * STREAM:results, its completions in STREAM:done). Checks that those keys are
 * free or of the right type. 0 with *OUT set (ember_redis_close it), or
 * -EMBER_EINVAL (bad URL or stream name), -EMBER_REDIS_ECONN,
 * -EMBER_REDIS_EREPLY, -EMBER_ENOMEM; *OUT is then NULL and the message is
 * ember_redis_errmsg(NULL) (this thread's). */
int ember_redis_open(const char *url, const char *stream, ember_redis **out);
/* Close the connection. The entries submitted stay in the stream: bridges
 * run them and post their results whether or not anyone waits. */
void ember_redis_close(ember_redis *r);
/* What the last failure on R was about (with R NULL: the last failed
 * ember_redis_open on this thread, or a parse). "" if none. */
const char *ember_redis_errmsg(const ember_redis *r);

/* Add a call of HANDLER (as the remote pools know it) with ARGS[0..LEN) to
 * the stream, to be waited for on this handle. TIMEOUT_NS > 0 (and not
 * EMBER_REDIS_NEVER): its deadline, now + TIMEOUT_NS on this host's wall
 * clock (a bridge that takes it later posts EMBER_ETIMEDOUT without running
 * it); RETRIES: EMBER_RETRIES(RETRIES) for the remote call (0-15). The entry's
 * id into ID. A lost connection is made again first (for up to 30 s since
 * it was lost); one lost while adding is made again and the stream's last
 * 1000 entries are searched for this one (each carries a submitter token of
 * its own, HOST:PID#N) before it is added again, so it is added once. 0, or
 * -EMBER_EINVAL, -EMBER_REDIS_ECONN (not added, or, when the connection
 * broke after the request went out and could not be made again, perhaps
 * added), -EMBER_REDIS_EREPLY, -EMBER_ENOMEM. */
int ember_redis_submit(ember_redis *r, const char *handler, const void *args, size_t len,
                       int64_t timeout_ns, unsigned retries, char id[EMBER_REDIS_ID_MAX]);

/* The handler entry ID of the stream calls, into HANDLER (CAP bytes). 0,
 * -EMBER_ENOENT (no such entry), -EMBER_EINVAL, -EMBER_REDIS_ECONN,
 * -EMBER_REDIS_EREPLY. */
int ember_redis_entry_handler(ember_redis *r, const char *id, char *handler, size_t cap);

/* ---- 4. results ----------------------------------------------------------- */
typedef struct ember_redis_result {
    int status;               /* 0, or the -EMBER_E... code the remote call ended with
                                 (-EMBER_EPOISON: dead-lettered, see CAUSE) */
    int detail;               /* the call's ember_result.detail */
    unsigned deliveries;      /* how many times a bridge took the entry (0: not said) */
    char error[32];           /* the code's name as the bridge wrote it ("" for 0) */
    char host[128];           /* the host whose pool ran it */
    char consumer[128];       /* the bridge's consumer name */
    char cause[128];          /* a dead letter's cause: "crashed: signal 11"... ("") */
    const void *data;         /* the call's output bytes (the handler's result; with
                                 EMBER_EHANDLER its message) */
    size_t len;
    const char *receipt;      /* the call's receipt, one JSON object's text (not
                                 NUL-terminated), or NULL */
    size_t receipt_len;
    void *_blob;              /* private: what DATA and RECEIPT point into */
} ember_redis_result;

/* Wait up to TIMEOUT_NS (0: only look; EMBER_REDIS_NEVER: no limit) for the
 * result of entry ID: one this handle submitted, or any other of the stream
 * (an id printed by `ember submit --no-wait`). 0 with *RES set (release it),
 * -EMBER_ETIMEDOUT (not yet, or the connection is being made again: wait
 * again; ember_redis_errmsg() says which), -EMBER_ENOENT (the stream has no
 * such entry, nor a result for it), -EMBER_EINVAL (not an entry id),
 * -EMBER_REDIS_ECONN (connection lost and not made again within 30 s: the
 * entry is not lost, wait again later), -EMBER_REDIS_EREPLY,
 * -EMBER_REDIS_EBLOB (its result is unreadable; it is forgotten),
 * -EMBER_ENOMEM. A lost connection is made again meanwhile: no result posted
 * in between is missed. */
int ember_redis_wait(ember_redis *r, const char *id, int64_t timeout_ns, ember_redis_result *res);
/* The same for whichever of this handle's submitted entries ends first: its
 * id into ID. -EMBER_ENOCALLS when none is waited for. With
 * -EMBER_REDIS_EBLOB, ID says which one's result was unreadable. */
int ember_redis_wait_any(ember_redis *r, int64_t timeout_ns, char id[EMBER_REDIS_ID_MAX],
                         ember_redis_result *res);
/* Stop waiting for entry ID on this handle (it runs on, its result is
 * posted all the same). 0, or -EMBER_ENOENT (not waited for). */
int ember_redis_forget(ember_redis *r, const char *id);
/* How many submitted entries this handle still waits for. */
size_t ember_redis_pending(const ember_redis *r);
/* Free what a result holds (a zeroed or released one: nothing). */
void ember_redis_result_release(ember_redis_result *res);

/* Read a result as the bridge posts it (BLOB[0..LEN), a JSON line, "\n",
 * then the output bytes) into *RES, whose pointers point into BLOB (RES's
 * _blob is left NULL: BLOB stays the caller's). 0, or -EMBER_REDIS_EBLOB with
 * the reason in ERR. Pure. */
int ember_redis_result_parse(const void *blob, size_t len, ember_redis_result *res, char *err,
                             size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
