/* cli/main.c - the ember command: start, watch, resize and stop local pools.
 *
 *   ember pool start NAME [--OPTION VALUE]... [--foreground] [--log-file PATH]
 *   ember pool stop NAME [--shutdown_timeout DURATION]
 *   ember pool resize NAME [--min N] [--max N]
 *   ember pool wait NAME [--ready N | --runners N] [--timeout DURATION]
 *   ember pool list
 *   ember stats NAME [--json | --openmetrics]
 *   ember events NAME [--follow] [--json]
 *   ember top NAME [--interval DURATION] [--once]
 *   ember call NAME HANDLER [ARG]... [--timeout DURATION] [--unlinked] [--retries N] [--receipt]
 *   ember help [COMMAND], ember version (--version, -V)
 *   ember call NAME exec [OPTIONS] [--] PROGRAM [ARG]...
 *   ember plugins [--json]
 *   ember submit --redis URL --stream KEY [--timeout DURATION] [--no-wait] HANDLER [ARG]...
 *   ember bridge NAME --redis URL --stream KEY --group GROUP [OPTIONS]  (bridge/bridge.c)
 *
 * Pool options are those of struct ember_pool_config, by the same names
 * (options.c has them from pool.h's table). A pool started here runs in a
 * daemon process (the pool's application) until `ember pool stop` or a
 * signal; its handlers are the built-in ones (noop, echo) and handlers.c's:
 * sleep, spin, exec.
 *
 * Every command is one entry of commands[] below: how it is called, what
 * it does and its options, which `ember help` and `ember CMD --help` print.
 * Exit statuses: 0 done, 1 ember failed (the message says what happened and
 * what to do), 2 a usage error. */
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include "cli.h"

#ifndef EMBER_VERSION
#define EMBER_VERSION "unknown"
#endif

const char *cli_cmd = "ember";
/* "pool start" for `ember pool start`: where usage errors point */
static const char *help_topic = "";

int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli_cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'ember %s%s')\n", help_topic, help_topic[0] ? " --help" : "help");
    va_end(ap);
    return 2;
}

/* What to do about failure RC, where ember's own message (what happened)
 * does not say; NULL: nothing to add. */
static const char *hint(int rc)
{
    switch (-rc) {
    case EMBER_ETIMEDOUT: return "give it longer with --timeout DURATION (or --timeout never)";
    case EMBER_EFULL: return "start the pool with a larger --queue_capacity or --payload_space";
    case EMBER_EABI: return "the pool was started by another version of ember: stop it and start "
                            "it again with this one";
    case EMBER_EOWNER: return "a pool can be used only by the user who started it";
    case EMBER_ECORRUPT: return "stop the pool and start it again";
    case EMBER_ECALLERS: return "start the pool with a larger --max_callers";
    case EMBER_EMFILE: return "raise this shell's limit of open files (ulimit -n)";
    case EMBER_EBOOT: return "see why with: ember events POOL";
    case EMBER_EOOM: return "start the pool with a larger --runner_memory_max (or none), or have "
                            "the handler use less memory";
    default: return NULL;
    }
}

int fail(int rc, const char *what)
{
    const char *detail = ember_last_error(), *h = hint(rc);
    fprintf(stderr, "%s: %s%s%s%s%s\n", cli_cmd, what ? what : "", what ? ": " : "",
            detail[0] ? detail : ember_strerror(rc), h ? "; " : "", h ? h : "");
    return 1;
}

uint64_t cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

/* The commands: "pool start" is WORD "pool", SUB "start"; one-word commands
 * have no SUB. ARGS follows the command's name in its usage line; OPTIONS
 * (lines "  --name VALUE  what it does", or NULL) and MORE (or NULL) are
 * printed by its --help. */
static const struct command {
    const char *word, *sub;
    int (*run)(int argc, char **argv);
    const char *args, *what, *options;
    void (*more)(FILE *f);
} commands[] = {
    { "pool", "start", cmd_pool_start,
      "NAME [--OPTION VALUE]... [--foreground] [--log-file PATH] [--metrics-listen ADDR:PORT]",
      "Start pool NAME: a daemon runs it until 'ember pool stop NAME'. Prints the\n"
      "supervisor's pid once the pool takes calls.",
      "  --foreground          run the pool in this process until Ctrl-C or SIGTERM (a\n"
      "                        drain); under systemd (NOTIFY_SOCKET) it says READY=1,\n"
      "                        STATUS=, WATCHDOG=1 and STOPPING=1 (docs/ember-pool@.service)\n"
      "  --log-file PATH       the daemon's output (the supervisor's log: --log 1 by\n"
      "                        default, 2 debug, 0 none; a time and a level a line) is\n"
      "                        appended to PATH, opened before the daemon starts\n"
      "  --plugin NAME|PATH    load a handler plugin into the pool (repeatable; adds to\n"
      "                        --plugins; 'ember plugins' lists those installed)\n"
      "  --metrics-listen ADDR:PORT  serve the pool's metrics (ember stats --openmetrics)\n"
      "                        over HTTP at http://ADDR:PORT/metrics for Prometheus, from\n"
      "                        the daemon (127.0.0.1:9464, [::1]:9464; an address of this\n"
      "                        host, not a name)\n",
      pool_options_help },
    { "pool", "stop", cmd_pool_stop, "NAME [--shutdown_timeout DURATION]",
      "Stop pool NAME, draining it: new calls are refused, queued calls fail (they never\n"
      "ran), running calls have the shutdown timeout to finish and their callers get\n"
      "their results; calls still running then are killed. Waits for all that and says\n"
      "what happened. A pool that is not running is no error.",
      "  --shutdown_timeout DURATION  how long running calls may take to finish (default:\n"
      "                        the pool's shutdown_timeout, 30s unless given at start)\n",
      NULL },
    { "pool", "resize", cmd_pool_resize, "NAME [--min N] [--max N]",
      "Change the pool's bounds while it runs. Growing boots runners as min or demand\n"
      "needs; shrinking drains runners, idle ones first, never killing a call.",
      "  --min N               runners always up\n"
      "  --max N               runners at most (up to the pool's max_limit)\n",
      NULL },
    { "pool", "wait", cmd_pool_wait, "NAME [--ready N | --runners N] [--timeout DURATION]",
      "Wait until N runners of the pool are ready, or until exactly N runner processes\n"
      "live and serve (after a resize down, for instance).",
      "  --ready N             at least N runners ready (default 1)\n"
      "  --runners N           exactly N runners, all serving\n"
      "  --timeout DURATION    give up after this long, exit status 1 (default 30s)\n",
      NULL },
    { "pool", "list", cmd_pool_list, "",
      "List this user's running pools: supervisor pid, runners, bounds.", NULL, NULL },
    { "stats", NULL, cmd_stats, "NAME [--json | --openmetrics]",
      "Print the pool's state and counters (calls accepted, done, failed), and a line\n"
      "per runner: pid, state (busy: ready with calls running), node, CPUs, busy\n"
      "threads, calls, resident memory.",
      "  --json                one JSON object instead\n"
      "  --openmetrics         every metric as OpenMetrics text (Prometheus): calls by\n"
      "                        cause, per-handler queue-wait and run-time histograms,\n"
      "                        runners by state, ends by reason, resident memory\n", NULL },
    { "events", NULL, cmd_events, "NAME [--follow] [--json]",
      "Print the pool's events (grow_start, grow_end, shrink), each with its time\n"
      "(RFC 3339, UTC, to the millisecond) and its reason. The pool stamps events with\n"
      "the monotonic clock; they are shown on the wall clock as it stands now, so a\n"
      "clock set since the event moves its time too.",
      "  -f, --follow          keep printing new events until the pool stops\n"
      "  --json                one JSON object a line (with mono_s, the monotonic stamp)\n",
      NULL },
    { "top", NULL, cmd_top, "NAME [--interval DURATION] [--once]",
      "Watch the pool live, full screen: its state and bounds, calls per second, queue\n"
      "depth, failures, latency, sparklines of throughput and queue depth over the last\n"
      "60 refreshes, and a line per runner (pid, node, state, load, calls, how long its\n"
      "current job has run, RSS, uptime). q or Ctrl-C quits. When the pool stops, the\n"
      "last figures stay and say so, until q or until a pool of that name starts again.",
      "  --interval DURATION   time between refreshes (default 1s)\n"
      "  --once                print one plain-text frame after one interval and exit\n"
      "                        (for scripts; needs no terminal)\n", NULL },
    { "call", NULL, cmd_call,
      "NAME HANDLER [ARG]... [--timeout DURATION] [--unlinked] [--retries N] [--receipt]",
      "Run HANDLER of pool NAME with ARG, print its result as it is (a newline only\n"
      "where the result ends with one) and exit 0, or say why it failed (with the\n"
      "handler's message) and exit 1. A pool started by 'ember pool start' has the\n"
      "handlers noop, echo ARG, sleep MS, spin MS and exec. Several ARGs go as words,\n"
      "each ending in NUL; KEY=VALUE words (in=a.mp4 out=b.mp4 height=240, apart or\n"
      "in one string) go with cwd=DIR first, this directory, so that their relative\n"
      "paths are this directory's.\n"
      "\n"
      "  ember call NAME exec [--shell] [--stdin FILE|-] [--max-output SIZE]\n"
      "                       [--output TMP:FINAL] [--verbose] [--timeout DURATION]\n"
      "                       [--] PROGRAM [ARG]...\n"
      "runs PROGRAM (no shell; --shell: one shell string) on a runner, in this\n"
      "directory with this environment, stdin /dev/null unless --stdin; prints its\n"
      "stdout and stderr and exits with its status: its exit status, 128 + its\n"
      "signal, 127 not found, 126 not executable or could not start, 124 the\n"
      "deadline passed, 125 ember's own failure.",
      "  --timeout DURATION    the call's deadline, queueing and running (default: the\n"
      "                        pool's, none unless it was started with --timeout)\n"
      "  --unlinked            the call runs on if this command dies (else it is\n"
      "                        cancelled)\n"
      "  --retries N           for idempotent work: if its runner dies while it runs\n"
      "                        the call, run it again on another, up to N times (0-15)\n"
      "                        within its deadline; a call that crashed the pool's\n"
      "                        --poison-after runners fails with EMBER_EPOISON\n"
      "  --receipt             print the call's receipt on stderr after its result, one\n"
      "                        JSON object: how it ended, queue_wait_s, run_s, runner,\n"
      "                        node; exec's user_s, sys_s, max_rss_bytes; a handler's\n"
      "                        runner_pid and runner_rss_bytes (as ember run --receipts);\n"
      "                        in a terminal, on a line of its own\n"
      "  --                    what follows is ARG, even if it starts with '-'\n"
      "exec's options:\n"
      "  --shell               PROGRAM is one string for /bin/sh -c\n"
      "  --stdin FILE|-        the job's stdin: FILE (opened by the runner) or this\n"
      "                        command's stdin (-), sent with the call\n"
      "  --max-output SIZE     keep at most SIZE of stdout and of stderr (default 16M);\n"
      "                        more is counted and reported as truncated\n"
      "  --output TMP:FINAL    the command writes TMP; renamed to FINAL on exit status\n"
      "                        0, removed otherwise (repeatable)\n"
      "  --verbose             print the job's status, CPU time and peak RSS\n",
      NULL },
    { "run", NULL, cmd_run, "[OPTIONS] [COMMAND [ARG]...] [::: ARGS | :::: FILES]...",
      "Run COMMAND once per input, as GNU parallel does, each job an exec call on a\n"
      "pool: a pool of its own (-j N runners, started for the batch and stopped after)\n"
      "or --pool NAME. 'ember run --help' lists every option.",
      NULL, NULL },
    { "submit", NULL, cmd_submit,
      "--redis URL --stream KEY [--timeout DURATION] [--no-wait] HANDLER [ARG]...",
      "Add a call of HANDLER to Redis stream KEY, for whichever host's 'ember bridge'\n"
      "takes it, wait for its result and print it as 'ember call' does, with the same\n"
      "exit statuses (exec: the job's own). Its arguments are made as 'ember call'\n"
      "makes them: exec runs in this directory with this environment, which must\n"
      "exist on the hosts too.\n"
      "\n"
      "  ember submit --redis URL --stream KEY --wait ID [--timeout DURATION]\n"
      "prints the result of entry ID (from --no-wait) in the same way.",
      "  --redis URL           redis://[[[USER]:]PASSWORD@]HOST[:PORT][/DB] or\n"
      "                        unix://[[[USER]:]PASSWORD@]/PATH[?db=N]\n"
      "  --stream KEY          the stream the bridges serve (results in KEY:results)\n"
      "  --timeout DURATION    the call's deadline (from now, on this host's clock): a\n"
      "                        bridge that takes it later fails it with ETIMEDOUT; with\n"
      "                        --wait, how long to wait (default: no limit)\n"
      "  --no-wait             print the entry's id and exit; the call runs all the same\n"
      "                        (as after Ctrl-C, which says how to fetch its result)\n"
      "  --wait ID             wait for entry ID's result instead of adding a call\n"
      "  --retries N, --receipt, and exec's options: as ember call's\n",
      NULL },
    { "plugins", NULL, cmd_plugins, "[--json]",
      "List the handler plugins found by name (in $EMBER_PLUGIN_PATH, the install's\n"
      "plugin directory, then plugins/ beside this program), each loaded and\n"
      "checked: its name, version, what it does, and its handlers with their\n"
      "arguments; one that cannot be used, with the reason. A pool loads them with\n"
      "'ember pool start NAME --plugin PLUGIN'.",
      "  --json                one JSON object instead\n", NULL },
    { "bridge", NULL, cmd_bridge,
      "NAME --redis URL --stream KEY --group GROUP [--consumer ID] [--claim-after DURATION]\n"
      "              [--max-deliveries N] [--stats-interval DURATION]",
      "Feed pool NAME from a Redis Streams consumer group, so that pools on many hosts\n"
      "share one stream of jobs: take entries as fast as the pool has room, run each\n"
      "as a call (handler, args, deadline_ms, retries from the entry), post its result\n"
      "to KEY:results and acknowledge it in one MULTI/EXEC. Entries of a bridge that\n"
      "died are taken over after --claim-after; a job that crashes its runner runs\n"
      "again, up to --max-deliveries, then goes to KEY:dead with its cause. Ctrl-C or\n"
      "SIGTERM drains: no more work taken, running calls finish and are posted. The\n"
      "format is in docs/ARCHITECTURE.md (Across hosts: Redis Streams).",
      "  --redis URL           redis://[[[USER]:]PASSWORD@]HOST[:PORT][/DB] or\n"
      "                        unix://[[[USER]:]PASSWORD@]/PATH[?db=N]\n"
      "  --stream KEY          the stream of jobs (results go to KEY:results, KEY:done)\n"
      "  --group GROUP         the consumer group (made if missing, from the stream's start)\n"
      "  --consumer ID         this bridge's name in the group (default HOSTNAME:NAME)\n"
      "  --claim-after DURATION  take over another bridge's entries idle this long\n"
      "                        (default 30s; a live bridge re-marks its entries every\n"
      "                        quarter of it, however long they run)\n"
      "  --max-deliveries N    deliveries before an entry that crashes goes to KEY:dead\n"
      "                        (default 3)\n"
      "  --stats-interval DURATION  log a stats line this often (default 1m; 0: at exit)\n",
      NULL },
    { "help", NULL, cmd_help, "[COMMAND]",
      "Print every command's usage, or one command's usage and options.", NULL, NULL },
    { "version", NULL, cmd_version, "", "Print ember's version (also: --version, -V).", NULL,
      NULL },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage_line(FILE *f, const struct command *c, const char *lead)
{
    fprintf(f, "%sember %s%s%s%s%s\n", lead, c->word, c->sub ? " " : "", c->sub ? c->sub : "",
            c->args[0] ? " " : "", c->args);
}

/* `ember CMD --help`: its usage, what it does, its options. */
static void command_help(FILE *f, const struct command *c)
{
    usage_line(f, c, "usage: ");
    fprintf(f, "\n%s\n", c->what);
    if (c->options) fprintf(f, "\noptions:\n%s", c->options);
    if (c->more) {
        fputc('\n', f);
        c->more(f);
    }
    if (c->options || c->more)
        fprintf(f, "\nDURATION: 250ms, 30s, 2m, 1h, never (a bare number is milliseconds); SIZE: 512M, 2G...\n");
}

/* `ember pool --help`: the pool commands. */
static void word_help(FILE *f, const char *word)
{
    fprintf(f, "usage: ember %s COMMAND ...\n\ncommands:\n", word);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].word, word) == 0) usage_line(f, &commands[i], "  ");
    fprintf(f, "\n'ember %s COMMAND --help' says what each does.\n", word);
}

static void help(FILE *f)
{
    fprintf(f, "usage:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) usage_line(f, &commands[i], "  ");
    fprintf(f, "'ember COMMAND --help' prints a command's options.\n");
    pool_options_help(f);
    fprintf(f,
            "DURATION: 250ms, 30s, 2m, 1h, never (a bare number is milliseconds); SIZE: 512M, 2G...\n"
            "handlers of a pool started here: noop, echo ARG, sleep MS, spin MS, exec 'SHELL COMMAND',\n"
            "and those of its --plugin's (ember plugins)\n"
            "calls have no deadline unless the pool was started with --timeout or the call\n"
            "gives one (a pool a program starts with ember_pool_start has a 30s default)\n"
            "exit status:\n"
            "  0  done\n"
            "  1  ember failed (no such pool, a call failed...): the message says why\n"
            "  2  usage error: a bad command, option or argument\n"
            "environment: EMBER_LOG=0|1|2 (the supervisor's log level, over --log),\n"
            "  EMBER_BACKEND=poll (no io_uring)\n");
}

static int cmd_help(int argc, char **argv)
{
    if (argc == 0) {
        help(stdout);
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct command *c = &commands[i];
        if (strcmp(argv[0], c->word) != 0) continue;
        if (c->sub && argc < 2) {
            word_help(stdout, c->word);
            return 0;
        }
        if (!c->sub || strcmp(argv[1], c->sub) == 0) {
            command_help(stdout, c);
            return 0;
        }
    }
    return usage_error("no command '%s%s%s'", argv[0], argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
}

static int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 0) return usage_error("version takes no arguments");
    printf("ember %s\n", EMBER_VERSION);
    return 0;
}

/* Does ARGV ask for help (--help or -h before any "--")? */
static bool asks_help(int argc, char **argv)
{
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return true;
    return false;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        help(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) return cmd_help(0, NULL);
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
        return cmd_version(argc - 2, argv + 2);
    static char label[48];
    bool word_known = false;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct command *cmd = &commands[i];
        if (strcmp(argv[1], cmd->word) != 0) continue;
        word_known = true;
        int skip = cmd->sub ? 3 : 2;
        if (cmd->sub && (argc < 3 || strcmp(argv[2], cmd->sub) != 0)) continue;
        snprintf(label, sizeof label, "ember %s%s%s", cmd->word, cmd->sub ? " " : "",
                 cmd->sub ? cmd->sub : "");
        cli_cmd = label;
        help_topic = label + strlen("ember ");
        /* run's own parser knows where its options end and the command begins */
        if (cmd->run != cmd_run && asks_help(argc - skip, argv + skip)) {
            command_help(stdout, cmd);
            return 0;
        }
        return cmd->run(argc - skip, argv + skip);
    }
    if (word_known) { /* `ember pool` and no known subcommand */
        snprintf(label, sizeof label, "ember %s", argv[1]);
        cli_cmd = label;
        help_topic = label + strlen("ember ");
        if (argc < 3 || asks_help(argc - 2, argv + 2)) {
            word_help(argc < 3 ? stderr : stdout, argv[1]);
            return argc < 3 ? 2 : 0;
        }
        return usage_error("unknown command '%s %s'", argv[1], argv[2]);
    }
    return usage_error("unknown command '%s'", argv[1]);
}
