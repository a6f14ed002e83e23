/* cli/main.c - the ember command: start, watch, resize and stop local pools.
 *
 *   ember pool start NAME [--OPTION VALUE]... [--foreground] [--log-file PATH]
 *   ember pool stop NAME [--shutdown_timeout DURATION]
 *   ember pool resize NAME [--min N] [--max N]
 *   ember pool wait NAME [--ready N | --runners N] [--timeout DURATION]
 *   ember pool list
 *   ember stats NAME [--json]
 *   ember events NAME [--follow]
 *   ember call NAME HANDLER [ARG] [--timeout DURATION] [--unlinked]
 *
 * Pool options are those of struct ember_pool_config, by the same names
 * (options.c has them from pool.h's table). A pool started here runs in a
 * daemon process (the pool's application) until `ember pool stop` or a
 * signal; its handlers are the built-in ones (noop, echo) and handlers.c's:
 * sleep, spin, exec. */
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include "cli.h"

const char *cli_cmd = "ember";

int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli_cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'ember help')\n");
    va_end(ap);
    return 2;
}

int fail(int rc, const char *what)
{
    const char *detail = ember_last_error();
    fprintf(stderr, "%s: %s: %s%s%s\n", cli_cmd, what, ember_strerror(rc), detail[0] ? ": " : "",
            detail);
    return 1;
}

uint64_t cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void help(FILE *f)
{
    fprintf(f,
            "usage:\n"
            "  ember pool start NAME [--OPTION VALUE]... [--foreground] [--log-file PATH]\n"
            "  ember pool stop NAME [--shutdown_timeout DURATION]\n"
            "  ember pool resize NAME [--min N] [--max N]\n"
            "  ember pool wait NAME [--ready N | --runners N] [--timeout DURATION]\n"
            "  ember pool list\n"
            "  ember stats NAME [--json]\n"
            "  ember events NAME [--follow]\n"
            "  ember call NAME HANDLER [ARG] [--timeout DURATION] [--unlinked]\n"
            );
    pool_options_help(f);
    fprintf(f,
            "DURATION: 250ms, 30s, 2m, 1h (a bare number is milliseconds); SIZE: 512M, 2G...\n"
            "handlers of a pool started here: noop, echo, sleep MS, spin MS, exec 'SHELL COMMAND'\n");
}

/* The commands: "pool start" is WORD "pool", SUB "start"; one-word commands
 * have no SUB. */
static const struct command {
    const char *word, *sub;
    int (*run)(int argc, char **argv);
} commands[] = {
    { "pool", "start", cmd_pool_start },   { "pool", "stop", cmd_pool_stop },
    { "pool", "resize", cmd_pool_resize }, { "pool", "wait", cmd_pool_wait },
    { "pool", "list", cmd_pool_list },     { "stats", NULL, cmd_stats },
    { "events", NULL, cmd_events },        { "call", NULL, cmd_call },
    { "run-dry", NULL, cmd_run_dry },      /* hidden: ember run --dry-run's front end */
};

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static char label[48];
    bool word_known = false;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const struct command *cmd = &commands[i];
        if (strcmp(argv[1], cmd->word) != 0) continue;
        word_known = true;
        int skip = cmd->sub ? 3 : 2;
        if (cmd->sub && (argc < 3 || strcmp(argv[2], cmd->sub) != 0)) continue;
        snprintf(label, sizeof label, "ember %s%s%s", cmd->word, cmd->sub ? " " : "",
                 cmd->sub ? cmd->sub : "");
        cli_cmd = label;
        return cmd->run(argc - skip, argv + skip);
    }
    if (word_known && argc < 3) return usage_error("pool: start, stop, resize, wait or list?");
    if (word_known) return usage_error("pool: unknown command '%s'", argv[2]);
    return usage_error("unknown command '%s'", argv[1]);
}
