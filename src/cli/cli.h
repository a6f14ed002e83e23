/* cli/cli.h - what the files of the `ember` command share.
 *
 * The command is a client of libember like any other program: it includes
 * only the public headers (<ember/pool.h>, <ember/client.h>). */
#ifndef EMBER_CLI_H
#define EMBER_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <ember/pool.h>
#include "exec.h"

/* "ember pool start" and the like: the prefix of messages */
extern const char *cli_cmd;

/* Print "CMD: MESSAGE" and a pointer to help; returns 2 (a usage error). */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "CMD: WHAT: ember's message: the detail"; returns 1. */
int fail(int rc, const char *what);
/* Attach to pool NAME; 0, or 1 with the failure printed. */
int cli_attach(const char *name, ember_client **c);
/* CLOCK_MONOTONIC in ns. */
uint64_t cli_now_ns(void);

/* options.c: values, and options given as --name VALUE, --name=VALUE */
bool parse_duration(const char *s, int64_t *out);
bool parse_size(const char *s, uint64_t *out);
bool parse_uint(const char *s, uint64_t max, uint64_t *out);
/* "--max-concurrency=2" or "--max-concurrency 2": is ARG an option? Its
 * NAME then, with underscores for dashes. */
bool option_name(const char *arg, char *name, size_t len);
/* The value of the option at ARGV[*I] (after '=', or the next argument when
 * it TAKES_VALUE; NULL: none); moves *I past what it used. */
const char *option_value(int argc, char **argv, int *i, bool takes_value);
/* The options of a command other than pool start: a table ending with a
 * { NULL } entry. DST is a bool (CLI_FLAG), an int64_t nanoseconds
 * (CLI_DURATION) or a uint64_t at most MAX (CLI_COUNT). */
enum cli_opt_kind { CLI_FLAG, CLI_DURATION, CLI_COUNT };
struct cli_opt {
    const char *name;       /* underscores; --na-me stands for it too */
    enum cli_opt_kind kind;
    void *dst;
    uint64_t max;
    char letter;            /* a flag's short form (-f), or 0 */
};
/* Parse ARGV by OPTS (--name VALUE, --name=VALUE); up to MAXPOS arguments
 * that are no options go to POS[0..*NPOS). 0, or a usage error's 2 with the
 * message printed. */
int cli_parse_args(int argc, char **argv, const struct cli_opt *opts, const char **pos, int maxpos,
                   int *npos);
/* The usual command: `ember CMD NAME [OPTIONS]`: parse ARGV by OPTS, then
 * attach to pool NAME. 0 with *POOL and *C set (detach it), or the exit
 * status with the failure printed. */
int cli_open(int argc, char **argv, const struct cli_opt *opts, const char **pool,
             ember_client **c);
/* Set pool option NAME (underscores) of CFG from VAL (NULL: none given);
 * 0, or a usage error's 2 with the message printed. */
int set_pool_option(struct ember_pool_config *cfg, const char *name, const char *val);
/* Is NAME a pool option that takes no value (a flag)? */
bool pool_option_is_flag(const char *name);
/* The pool options for `ember help`. */
void pool_options_help(FILE *f);
/* CFG with the defaults of a pool started by `ember pool start`: the
 * library's, but calls have no default deadline and the supervisor's log
 * is on (log 1). */
void cli_pool_config_init(struct ember_pool_config *cfg);

/* handlers.c: sleep, spin, exec */
void cli_register_handlers(void);
/* What exec needs of the pool it serves (kill_grace); without it, the
 * defaults are assumed. */
void cli_handlers_pool_config(const struct ember_pool_config *cfg);

/* kvwords.c: when WORDS[0..N) are all KEY=VALUE, the call's arguments for
 * them: "cwd=CWD" (NULL: this process's directory; left out when a word
 * is cwd=) and each word, every one ending in NUL, in a malloc'd *BUF of
 * *LEN bytes. Returns 1 (set), 0 (not KEY=VALUE words: nothing set),
 * -errno (getcwd, memory). */
int cli_kv_request(const char *const *words, size_t n, const char *cwd, char **buf, size_t *len);

/* report.c: what commands print about events and calls */
/* CLOCK_MONOTONIC_COARSE in ns (a call's receipt's clock, start_ns). */
uint64_t cli_coarse_ns(void);
/* The wall-clock time (CLOCK_REALTIME ns) of MONO_NS, a CLOCK_MONOTONIC
 * time, by the two clocks' offset now: a clock set since moves it too. */
int64_t cli_wall_of_mono(uint64_t mono_ns);
/* WALL_NS as RFC 3339 text in UTC to the millisecond into BUF (32 bytes
 * do): "2026-12-05T23:52:20.123+00:00", as the log writes its times. */
void cli_time_text(char *buf, size_t len, int64_t wall_ns);
/* S as a JSON string, quotes and escapes, on F. */
void cli_json_str(FILE *f, const char *s);
struct exec_res;
/* How an exec job ended, in words: "exit", "signal", "not found"... */
const char *cli_exec_end_name(const struct exec_res *x);
/* A call's receipt: how it ended, when and how long it queued and ran,
 * where, and what it used. */
struct cli_receipt {
    const char *end;            /* "exit", "signal", "timeout", "crashed", "oom", "error"... */
    int exit, sig;              /* its exit value and signal, ember run's joblog's way */
    double start_wall;          /* when it was submitted, seconds since the epoch */
    uint64_t submit_ns, done_ns; /* CLOCK_MONOTONIC_COARSE at submit and at the result */
    const ember_result *call;   /* runner, node and start_ns */
    const struct exec_res *exec; /* exec's result (CPU, peak RSS, pids), or NULL */
    int runner_pid;             /* without EXEC: the runner's pid (0: unknown) ... */
    uint64_t runner_rss;        /* ... and its resident bytes after the call */
};
/* R's fields as JSON members on F, without the braces: "end", "exit",
 * "signal", "start", "queue_wait_s", "run_s", then exec's "user_s",
 * "sys_s", "max_rss_bytes", "pid", "runner_pid" (or a handler's
 * "runner_pid", "runner_rss_bytes"), then "runner", "node". */
void cli_receipt_fields(FILE *f, const struct cli_receipt *r);
/* Write a result's bytes N at P to F (stdout, or stderr for a job's), as
 * they are; remembers the last one for cli_receipt_begin. */
void cli_result_write(FILE *f, const void *p, size_t n);
/* Before a receipt on stderr: flushes stdout, and when stdout and stderr
 * are terminals and the result written last did not end its line, ends
 * it, so that the receipt starts on a line of its own (the result's bytes
 * themselves stay as they are). */
void cli_receipt_begin(void);

/* A supervisor whose event loop has not come round for this long (it
 * does at least once a second while it works) is stuck: the watchdog is
 * no longer fed, and `ember stats` says so. */
#define CLI_SUP_STUCK_NS (3 * EMBER_SECOND)

/* service.c: systemd's notify protocol, for `pool start --foreground`
 * under a Type=notify unit (nothing where NOTIFY_SOCKET is not set, or
 * ember was built without libsystemd). */
struct cli_service {
    bool notify;            /* systemd listens */
    uint64_t watchdog_ns;   /* WatchdogSec= (0: no watchdog) */
};
/* Fill *SV from the environment; returns SV->notify. */
int cli_service_open(struct cli_service *sv);
/* Tell systemd the pool's state ST: "STATUS=" (after WHAT: when given),
 * with READY=1 and WATCHDOG=1 when asked. */
void cli_service_status(const struct cli_service *sv, const ember_stats *st, const char *what,
                        bool ready, bool watchdog);
/* Tell systemd a stop has begun: STOPPING=1 and STATUS=WHY. */
void cli_service_stopping(const struct cli_service *sv, const char *why);

/* openmetrics.c: the metrics of pool POOL (client C) as OpenMetrics text
 * on F, ending with "# EOF". 0, or a negative ember code. */
int openmetrics_write(ember_client *c, const char *pool, FILE *f);
/* bridge/metrics.c: the samples of pool POOL's live bridges (ember bridge)
 * as OpenMetrics families on F; returns how many bridges. */
int bridge_openmetrics(FILE *f, const char *pool);

/* metrics_http.c: --metrics-listen. Parse VAL ("127.0.0.1:9464",
 * "[::1]:9464") into *SS and *LEN: 0, or a usage error's 2 with the message
 * printed. */
int metrics_listen_parse(const char *val, struct sockaddr_storage *ss, socklen_t *len);
/* Serve pool POOL's metrics at http://LISTEN/metrics (SS, LEN parsed from
 * it) from a thread of this process: the server, or NULL with the reason
 * in ERR (ERRLEN bytes). */
struct metrics_http;
struct metrics_http *metrics_http_start(const char *pool, const struct sockaddr_storage *ss,
                                        socklen_t len, const char *listen, char *err, size_t errlen);
/* Stop serving (NULL: nothing to stop). */
void metrics_http_stop(struct metrics_http *mh);

/* stats.c: what `ember call` and `ember submit` share */
/* The options of `ember call`; those after "shell" are exec's alone. */
struct call_opts {
    int64_t timeout;
    bool unlinked;
    unsigned retries;                 /* --retries N: EMBER_RETRIES(N) */
    bool receipt;                     /* --receipt: the call's receipt on stderr */
    bool shell, verbose, exec_only;   /* exec_only: one of exec's was given */
    bool exec;                        /* the handler is exec */
    const char *stdin_path;
    uint64_t max_output;
    struct exec_output outputs[16];   /* --output TMP:FINAL */
    size_t noutputs;
    const char **words;               /* a handler's arguments (not exec's), NWORDS */
    size_t nwords;
};
/* The option at ARGV[*I] (it starts with "--") into CO; 0 or a usage error. */
int call_option(int argc, char **argv, int *i, struct call_opts *co);
/* The handlers of a pool started by `ember pool start` whose argument the
 * command can check before calling: sleep and spin take milliseconds. A
 * usage error's 2 (message printed), or 0. */
int check_handler_arg(const char *handler, const char *arg);
/* The arguments of a handler call (not exec's) into *BUF (malloc'd), *LEN
 * bytes: none, ""; KEY=VALUE words (given apart, or as one string of
 * blank-separated words), NUL-terminated words with cwd= first
 * (cli_kv_request); other words: one as it is (no NUL), several each
 * ending in NUL. 0 or -errno. */
int handler_args(const struct call_opts *co, char **buf, size_t *len);
/* exec's request for CMD[0..NCMD) run in this directory with this
 * environment (and CO's exec options) into *BUF (malloc'd), *LEN bytes. 0,
 * or 125 with the error printed. */
int call_exec_request(char **cmd, int ncmd, const struct call_opts *co, void **buf, size_t *len);
/* Print what an exec job wrote and said (R's bytes decoded into *RESB;
 * *RESP points at it, or is NULL when they could not be read); its status,
 * the shell's way (125: unreadable). */
int exec_report(const ember_result *r, const struct call_opts *co, struct exec_res *resb,
                struct exec_res **resp);

/* the commands: each returns the process's exit status */
int cmd_pool_start(int argc, char **argv);
int cmd_pool_stop(int argc, char **argv);
int cmd_pool_resize(int argc, char **argv);
int cmd_pool_wait(int argc, char **argv);
int cmd_pool_list(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_top(int argc, char **argv);     /* top.c: ember top */
int cmd_call(int argc, char **argv);
int cmd_run(int argc, char **argv);     /* run.c: ember run */
int cmd_plugins(int argc, char **argv); /* plugins.c: ember plugins */
int cmd_submit(int argc, char **argv);  /* submit.c: ember submit --redis */
int cmd_bridge(int argc, char **argv);  /* bridge/bridge.c: ember bridge */

#endif
