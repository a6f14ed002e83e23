/* cli/submit.c - `ember submit`: one call through a Redis stream, run by
 * whichever host's `ember bridge` takes it (libember-redis, <ember/redis.h>).
 *
 *   ember submit --redis URL --stream KEY [--timeout D] [--no-wait] HANDLER [ARG]...
 *   ember submit --redis URL --stream KEY --wait ID [--timeout D]
 *
 * The call's arguments are made as `ember call` makes them (exec's request,
 * with this directory and environment, or a handler's words), and its result
 * is printed as `ember call` prints it, with the same exit statuses; --no-wait
 * prints the entry's id instead, for a later --wait ID. Ctrl-C or SIGTERM
 * while it waits says how to fetch the result later (the call runs on) and
 * exits 128 + the signal. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <ember/client.h>
#include <ember/redis.h>
#include "cli.h"

/* How long past a call's deadline its result may still be coming: the
 * bridge's post after the local call's own deadline. */
#define SUBMIT_GRACE_NS (2 * EMBER_SECOND)

struct submit_opts {
    const char *url, *stream, *wait_id;
    bool no_wait;
};

static void print_receipt(const char *handler, const char *id, const ember_redis_result *res)
{
    cli_receipt_begin();
    fprintf(stderr, "{\"handler\":");
    cli_json_str(stderr, handler);
    fprintf(stderr, ",\"id\":");
    cli_json_str(stderr, id);
    fprintf(stderr, ",\"host\":");
    cli_json_str(stderr, res->host);
    fprintf(stderr, ",\"consumer\":");
    cli_json_str(stderr, res->consumer);
    fprintf(stderr, ",\"deliveries\":%u,\"status\":", res->deliveries);
    cli_json_str(stderr, res->status ? ember_errname(res->status) : "OK");
    fprintf(stderr, ",\"receipt\":");
    if (res->receipt) fwrite(res->receipt, 1, res->receipt_len, stderr);
    else fputs("null", stderr);
    fputs("}\n", stderr);
}

/* Print the result RES of entry ID (a call of HANDLER; EXEC: exec's) as
 * `ember call` prints it; its exit status. */
static int report(const char *handler, bool exec, const char *id, const ember_redis_result *res,
                  const struct call_opts *co, const struct submit_opts *so)
{
    int rc = res->status, status;
    char what[300];
    snprintf(what, sizeof what, "%s (entry %s, on %s)", handler, id, res->host[0] ? res->host : "an unnamed host");
    if (rc == -EMBER_EPOISON) {
        fprintf(stderr, "%s: %s: dead-lettered after %u deliveries: %s; the entry is in stream %s:dead\n",
                cli_cmd, what, res->deliveries, res->cause[0] ? res->cause : ember_strerror(rc), so->stream);
        status = exec ? 125 : 1;
    } else if (exec) {
        ember_result r = { .data = res->data, .len = res->len, .status = rc, .detail = res->detail,
                           .runner = EMBER_NONE, .node = -1 };
        struct exec_res xb, *x;
        if (rc == 0) {
            status = exec_report(&r, co, &xb, &x);
        } else if (rc == -EMBER_ETIMEDOUT) {
            fail(rc, what);
            status = 124;
        } else if (rc == -EMBER_EHANDLER && res->detail == EINVAL) {
            fprintf(stderr, "%s: %s: the exec handler refused the request as malformed (a pool of another "
                    "version of ember?)\n", cli_cmd, what);
            status = 125;
        } else if (rc == -EMBER_EHANDLER) {
            fprintf(stderr, "%s: %s: the exec handler could not return the job's result: %s\n", cli_cmd, what,
                    strerror(res->detail));
            status = 125;
        } else {
            fail(rc, what);
            status = 125;
        }
    } else {
        if (rc == 0) {
            cli_result_write(stdout, res->data, res->len);
            fflush(stdout);
        } else if (rc == -EMBER_EHANDLER && res->len) { /* the handler's own message */
            fwrite(res->data, 1, res->len, stderr);
            if (((const char *)res->data)[res->len - 1] != '\n') fputc('\n', stderr);
        } else {
            fail(rc, what);
        }
        status = rc == -EMBER_EHANDLER && res->detail == EINVAL ? 2 : rc ? 1 : 0;
    }
    if (co->receipt) print_receipt(handler, id, res);
    return status;
}

/* The URL as messages may show it: not with its password. */
static const char *url_shown(const struct submit_opts *so)
{
    return strchr(so->url, '@') ? "URL" : so->url;
}

static volatile sig_atomic_t submit_signal;

static void on_signal(int sig)
{
    submit_signal = sig;
}

/* ember_redis_wait in steps of a quarter of a second, so that Ctrl-C or
 * SIGTERM ends the wait (-EMBER_ECANCELLED, said: the entry runs on). */
static int wait_steps(ember_redis *r, const char *id, int64_t wait_ns, ember_redis_result *res,
                      const struct submit_opts *so)
{
    uint64_t start = cli_now_ns();
    for (;;) {
        int64_t left = wait_ns;
        if (wait_ns != EMBER_REDIS_NEVER) {
            uint64_t spent = cli_now_ns() - start;
            left = spent >= (uint64_t)wait_ns ? 0 : wait_ns - (int64_t)spent;
        }
        int rc = ember_redis_wait(r, id, left < EMBER_SECOND / 4 ? left : EMBER_SECOND / 4, res);
        if (submit_signal) {
            if (rc == 0) return 0; /* it came: print it */
            fprintf(stderr, "%s: %s: entry %s runs on; its result: ember submit --redis %s --stream %s "
                    "--wait %s\n", cli_cmd, strsignal(submit_signal), id, url_shown(so), so->stream, id);
            return -EMBER_ECANCELLED;
        }
        if (rc != -EMBER_ETIMEDOUT || left < EMBER_SECOND / 4) return rc;
    }
}

/* Wait for entry ID's result and print it. */
static int await(ember_redis *r, const char *handler, bool exec, const char *id, int64_t wait_ns,
                 const struct call_opts *co, const struct submit_opts *so)
{
    ember_redis_result res;
    int rc = wait_steps(r, id, wait_ns, &res, so);
    if (rc == -EMBER_ECANCELLED) return 128 + submit_signal;
    if (rc == 0) {
        int status = report(handler, exec, id, &res, co, so);
        ember_redis_result_release(&res);
        return status;
    }
    if (rc == -EMBER_ETIMEDOUT)
        fprintf(stderr, "%s: no result for entry %s of stream %s in time (is an 'ember bridge' serving the "
                "stream?); if one comes, fetch it with: ember submit --redis %s --stream %s --wait %s\n",
                cli_cmd, id, so->stream, url_shown(so), so->stream, id);
    else
        fprintf(stderr, "%s: %s\n", cli_cmd, ember_redis_errmsg(r));
    if (rc == -EMBER_REDIS_ECONN)
        fprintf(stderr, "%s: the entry %s stays in the stream; fetch its result later with: ember submit "
                "--redis %s --stream %s --wait %s\n", cli_cmd, id, url_shown(so), so->stream, id);
    return rc == -EMBER_ETIMEDOUT && exec ? 124 : exec ? 125 : 1;
}

/* `--wait ID`: the result of an entry submitted before. */
static int wait_only(ember_redis *r, const struct call_opts *co, const struct submit_opts *so)
{
    char handler[256] = "";
    int rc = ember_redis_entry_handler(r, so->wait_id, handler, sizeof handler);
    if (rc && rc != -EMBER_ENOENT) {
        fprintf(stderr, "%s: %s\n", cli_cmd, ember_redis_errmsg(r));
        return 1;
    }
    ember_redis_result res;
    rc = wait_steps(r, so->wait_id, co->timeout == EMBER_TIMEOUT_DEFAULT ? EMBER_REDIS_NEVER : co->timeout,
                    &res, so);
    if (rc == -EMBER_ECANCELLED) return 128 + submit_signal;
    if (rc) {
        if (rc == -EMBER_ETIMEDOUT)
            fprintf(stderr, "%s: no result for entry %s of stream %s yet\n", cli_cmd, so->wait_id, so->stream);
        else fprintf(stderr, "%s: %s\n", cli_cmd, ember_redis_errmsg(r));
        return rc == -EMBER_ETIMEDOUT && strcmp(handler, "exec") == 0 ? 124 : strcmp(handler, "exec") == 0 ? 125 : 1;
    }
    /* an entry removed since: its output says whether it was exec's */
    struct exec_res x;
    bool exec = handler[0] ? strcmp(handler, "exec") == 0
                           : res.status == 0 && exec_res_decode(res.data, res.len, &x) == 0;
    int status = report(handler[0] ? handler : exec ? "exec" : "(removed entry)", exec, so->wait_id, &res, co, so);
    ember_redis_result_release(&res);
    return status;
}

static int submit_parsed(int argc, char **argv, struct call_opts *co, struct submit_opts *so)
{
    const char *handler = NULL;
    char **cmd = NULL;
    int ncmd = 0;
    bool options_end = false;
    for (int i = 0; i < argc;) {
        const char *a = argv[i];
        char name[64];
        if (!options_end && strcmp(a, "--") == 0) {
            options_end = true;
            i++;
        } else if (!options_end && strncmp(a, "--", 2) == 0 && option_name(a, name, sizeof name) &&
                   (strcmp(name, "redis") == 0 || strcmp(name, "stream") == 0 || strcmp(name, "wait") == 0 ||
                    strcmp(name, "no_wait") == 0 || strcmp(name, "unlinked") == 0)) {
            bool flag = strcmp(name, "no_wait") == 0 || strcmp(name, "unlinked") == 0;
            const char *val = option_value(argc, argv, &i, !flag);
            if (flag && val) return usage_error("option --%s takes no value", a + 2);
            if (!flag && !val) return usage_error("option --%s needs a value", name);
            if (strcmp(name, "unlinked") == 0)
                return usage_error("--unlinked is ember call's: a submitted entry runs whether or not "
                                   "this command waits for it");
            if (strcmp(name, "redis") == 0) so->url = val;
            else if (strcmp(name, "stream") == 0) so->stream = val;
            else if (strcmp(name, "wait") == 0) so->wait_id = val;
            else so->no_wait = true;
        } else if (!options_end && strncmp(a, "--", 2) == 0) {
            int rc = call_option(argc, argv, &i, co);
            if (rc) return rc;
        } else if (handler && co->exec) { /* the rest is the command's */
            cmd = argv + i;
            ncmd = argc - i;
            break;
        } else if (handler) {
            co->words[co->nwords++] = argv[i++];
        } else {
            handler = argv[i++];
            co->exec = strcmp(handler, "exec") == 0;
        }
    }
    if (!so->url) return usage_error("--redis URL is needed: the Redis that holds the stream "
                                     "(redis://[[[USER]:]PASSWORD@]HOST[:PORT][/DB], "
                                     "unix://[[[USER]:]PASSWORD@]/PATH[?db=N])");
    if (!so->stream) return usage_error("--stream KEY is needed: the stream the bridges serve");
    char err[256];
    struct ember_redis_url u;
    if (ember_redis_url_parse(so->url, &u, err, sizeof err)) return usage_error("--redis: %s", err);
    if (so->wait_id) {
        if (handler || so->no_wait)
            return usage_error("--wait ID fetches the result of an entry submitted before: no HANDLER, no --no-wait");
        if (co->exec_only || co->retries) return usage_error("--wait ID takes only --timeout and --receipt");
    } else {
        if (!handler) return usage_error("the HANDLER to call is needed (or --wait ID)");
        if (co->exec && !ncmd) return usage_error("exec needs a PROGRAM to run (or, with --shell, a command)");
        if (!co->exec && co->exec_only)
            return usage_error("--shell, --stdin, --max-output, --output and --verbose are exec's");
        if (!co->exec && co->nwords > 1 && (strcmp(handler, "sleep") == 0 || strcmp(handler, "spin") == 0))
            return usage_error("unexpected argument '%s'", co->words[1]);
        int rc = check_handler_arg(handler, co->words[0]);
        if (rc) return rc;
    }
    bool exec = co->exec;
    void *req = NULL;
    size_t reqlen = 0;
    if (handler && exec) {
        int rc = call_exec_request(cmd, ncmd, co, &req, &reqlen);
        if (rc) return rc;
    } else if (handler) {
        char *b;
        int rc = handler_args(co, &b, &reqlen);
        if (rc) {
            fprintf(stderr, "%s: cannot compose the call's arguments: %s\n", cli_cmd, strerror(-rc));
            return 1;
        }
        req = b;
    }
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    ember_redis *r;
    int rc = ember_redis_open(so->url, so->stream, &r);
    if (rc) {
        fprintf(stderr, "%s: %s\n", cli_cmd, ember_redis_errmsg(NULL));
        free(req);
        return exec ? 125 : 1;
    }
    int status;
    if (so->wait_id) {
        status = wait_only(r, co, so);
    } else {
        int64_t timeout = co->timeout == EMBER_TIMEOUT_DEFAULT ? 0 : co->timeout;
        char id[EMBER_REDIS_ID_MAX];
        rc = ember_redis_submit(r, handler, req, reqlen, timeout, co->retries, id);
        if (rc) {
            fprintf(stderr, "%s: cannot add the call to stream %s: %s\n", cli_cmd, so->stream, ember_redis_errmsg(r));
            status = exec ? 125 : 1;
        } else if (so->no_wait) {
            printf("%s\n", id);
            status = 0;
        } else {
            int64_t wait = timeout > 0 && timeout != EMBER_NEVER ? timeout + SUBMIT_GRACE_NS : EMBER_REDIS_NEVER;
            status = await(r, handler, exec, id, wait, co, so);
        }
    }
    free(req);
    ember_redis_close(r);
    return status;
}

int cmd_submit(int argc, char **argv)
{
    struct call_opts co = { .timeout = EMBER_TIMEOUT_DEFAULT };
    struct submit_opts so = { 0 };
    if (!(co.words = calloc((size_t)argc + 1, sizeof *co.words))) return usage_error("out of memory");
    int status = submit_parsed(argc, argv, &co, &so);
    free(co.words);
    if (co.exec && status == 2) status = 125; /* as ember call: exec's own failures are 125 */
    for (size_t i = 0; i < co.noutputs; i++) free((char *)co.outputs[i].tmp);
    return status;
}
