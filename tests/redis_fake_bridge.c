/* Description: a stand-in for `ember bridge` in the producer's tests: takes
 * entries of a Redis stream with XREADGROUP and posts their results in the
 * bridge's format (docs/ARCHITECTURE.md, "Across hosts: Redis Streams"),
 * written by the bridge's own writer (libember-redis's blob.c),
 * one at a time, with no pool: it runs the calls itself.
 *
 *   redis_fake_bridge HOST PORT STREAM CONSUMER
 *
 * Handlers: echo ARGS (the arguments back); exec REQ (exec.h's request: the
 * command run here, in its cwd with its environment, its result exec.h's);
 * fail (EMBER_EHANDLER, a message); bad (EMBER_EHANDLER with EINVAL);
 * poison (dead-lettered with cause "crashed: signal 11"); garbage (a
 * result blob that is not one); anything else: EMBER_ENOHANDLER. An entry
 * past its deadline_ms gets EMBER_ETIMEDOUT. A lost connection is made
 * again, and the entries it had taken are served again (XREADGROUP from 0,
 * as a bridge does). Runs until SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <hiredis/hiredis.h>
#include <ember/client.h>
#include "exec.h"
#include "redis/internal.h"

static const char *stream, *consumer;
static char done_key[512], results_key[512], dead_key[512];
static volatile sig_atomic_t stop;
static bool broken; /* the connection was lost: nothing more is sent on it */

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

/* R, or when the connection broke (R NULL) an empty reply, with BROKEN set. */
static redisReply none = { .type = REDIS_REPLY_NIL };
static redisReply *must(redisContext *c, redisReply *r)
{
    if (r) return r;
    if (!broken) fprintf(stderr, "fake bridge: Redis: %s\n", c->errstr);
    broken = true;
    return &none;
}

static void done(redisReply *r)
{
    if (r != &none) freeReplyObject(r);
}

/* Read all of FD into a malloc'd *BUF. */
static size_t slurp(int fd, char **buf)
{
    size_t n = 0, cap = 4096;
    char *b = malloc(cap);
    for (;;) {
        if (n == cap) b = realloc(b, cap *= 2);
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    *buf = b;
    return n;
}

/* Run exec's request: its output (an encoded exec_res) into *OUT. */
static int run_exec(const char *args, size_t len, char **out, size_t *out_len)
{
    struct exec_req req;
    void *store = NULL;
    char err[256];
    if (exec_req_decode(args, len, &req, &store, err, sizeof err) != 0) return EINVAL;
    int po[2], pe[2];
    if (pipe(po) || pipe(pe)) return errno;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        int nul = open("/dev/null", O_RDONLY);
        dup2(nul, 0);
        if (req.cwd && chdir(req.cwd) != 0) _exit(126);
        char **env = (char **)req.env;
        if (req.shell) {
            const char *sh = req.shell_path ? req.shell_path : "/bin/sh";
            char **argv = calloc(req.argc + 3, sizeof *argv);
            argv[0] = (char *)sh, argv[1] = "-c";
            for (size_t i = 0; i < req.argc; i++) argv[2 + i] = (char *)req.argv[i];
            execve(sh, argv, env);
        } else {
            if (req.env_set) environ = env;
            execvp(req.argv[0], (char **)req.argv);
        }
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    char *o, *e;
    size_t on = slurp(po[0], &o), en = slurp(pe[0], &e);
    close(po[0]);
    close(pe[0]);
    int st;
    waitpid(pid, &st, 0);
    struct exec_res res = { .end = WIFSIGNALED(st) ? EXEC_SIGNALED : EXEC_EXITED,
                            .code = WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), .pid = pid,
                            .out = o, .out_len = on, .out_total = on, .err = e, .err_len = en,
                            .err_total = en, .msg = "" };
    *out_len = exec_res_size(&res);
    *out = malloc(*out_len);
    exec_res_write(&res, *out);
    free(o);
    free(e);
    free(store);
    return 0;
}

static void post(redisContext *c, const char *id, const char *handler, int status, int detail,
                 const char *out, size_t out_len, const char *cause, unsigned deliveries, bool garbage)
{
    const char *host = "fakehost";
    static const char receipt[] = "{\"end\":\"exit\",\"exit\":0,\"run_s\":0.001}";
    struct ember_redis__post p = { .status = status, .detail = detail, .host = host, .consumer = consumer,
                                   .deliveries = deliveries, .cause = cause, .receipt = receipt,
                                   .receipt_len = sizeof receipt - 1, .out = out, .out_len = out_len };
    size_t blen;
    char *blob = ember_redis__blob_write(&p, &blen); /* the bridge's own writer */
    if (!blob) {
        fprintf(stderr, "redis_fake_bridge: out of memory\n");
        exit(1);
    }
    if (garbage) {
        static const char bad[] = "{\"status\":0,\"output_len\":99}\nshort";
        free(blob);
        blob = strdup(bad);
        blen = sizeof bad - 1;
    }
    done(must(c, redisCommand(c, "MULTI")));
    if (cause)
        done(must(c, redisCommand(c, "XADD %s * id %s handler %s cause %s deliveries %u host %s",
                                             dead_key, id, handler, cause, deliveries, host)));
    done(must(c, redisCommand(c, "HSETNX %s %s %b", results_key, id, blob, blen)));
    done(must(c, redisCommand(c, "XACK %s fake %s", stream, id)));
    done(must(c, redisCommand(c, "XADD %s MAXLEN ~ 1000000 * id %s", done_key, id)));
    done(must(c, redisCommand(c, "EXEC")));
    free(blob);
}

static void serve(redisContext *c, redisReply *e)
{
    const char *id = e->element[0]->str, *handler = "", *args = "";
    size_t args_len = 0;
    long long deadline = 0;
    redisReply *f = e->element[1];
    for (size_t k = 0; k + 1 < f->elements; k += 2) {
        const char *key = f->element[k]->str;
        redisReply *v = f->element[k + 1];
        if (strcmp(key, "handler") == 0) handler = v->str;
        else if (strcmp(key, "args") == 0) args = v->str, args_len = v->len;
        else if (strcmp(key, "deadline_ms") == 0) deadline = atoll(v->str);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (deadline && now > deadline) {
        post(c, id, handler, -EMBER_ETIMEDOUT, 0, NULL, 0, NULL, 1, false);
    } else if (strcmp(handler, "echo") == 0) {
        post(c, id, handler, 0, 0, args, args_len, NULL, 1, false);
    } else if (strcmp(handler, "exec") == 0) {
        char *out = NULL;
        size_t out_len = 0;
        int rc = run_exec(args, args_len, &out, &out_len);
        post(c, id, handler, rc ? -EMBER_EHANDLER : 0, rc, out, out_len, NULL, 1, false);
        free(out);
    } else if (strcmp(handler, "fail") == 0) {
        post(c, id, handler, -EMBER_EHANDLER, 3, "it failed on purpose", 20, NULL, 1, false);
    } else if (strcmp(handler, "bad") == 0) {
        post(c, id, handler, -EMBER_EHANDLER, EINVAL, "bad key 'x'", 11, NULL, 1, false);
    } else if (strcmp(handler, "poison") == 0) {
        post(c, id, handler, -EMBER_EPOISON, 11, NULL, 0, "crashed: signal 11", 3, false);
    } else if (strcmp(handler, "garbage") == 0) {
        post(c, id, handler, 0, 0, NULL, 0, NULL, 1, true);
    } else {
        post(c, id, handler, -EMBER_ENOHANDLER, 0, NULL, 0, NULL, 1, false);
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: redis_fake_bridge HOST PORT STREAM CONSUMER\n");
        return 2;
    }
    stream = argv[3], consumer = argv[4];
    snprintf(done_key, sizeof done_key, "%s:done", stream);
    snprintf(results_key, sizeof results_key, "%s:results", stream);
    snprintf(dead_key, sizeof dead_key, "%s:dead", stream);
    struct sigaction sa = { .sa_handler = on_term };
    sigaction(SIGTERM, &sa, NULL);
    redisContext *c = redisConnect(argv[1], atoi(argv[2]));
    if (!c || c->err) {
        fprintf(stderr, "fake bridge: cannot connect: %s\n", c ? c->errstr : "?");
        return 1;
    }
    done(must(c, redisCommand(c, "XGROUP CREATE %s fake 0 MKSTREAM", stream))); /* BUSYGROUP: there already */
    bool history = false; /* read this consumer's own pending entries first */
    while (!stop) {
        if (broken) {
            struct timespec ts = { 0, 50000000 };
            nanosleep(&ts, NULL);
            if (redisReconnect(c) != REDIS_OK) continue;
            broken = false;
            history = true;
        }
        redisReply *r = must(c, redisCommand(c, "XREADGROUP GROUP fake %s COUNT 16 BLOCK 200 STREAMS %s %s",
                                             consumer, stream, history ? "0" : ">"));
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            redisReply *list = r->element[0]->element[1];
            if (history && list->elements == 0) history = false;
            for (size_t i = 0; i < list->elements && !broken; i++)
                if (list->element[i]->element[1]->type == REDIS_REPLY_ARRAY) serve(c, list->element[i]);
        }
        done(r);
    }
    redisFree(c);
    return 0;
}
