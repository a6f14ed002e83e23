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

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "pool") == 0) {
        if (argc < 3) return usage_error("pool: start, stop, resize, wait or list?");
        const char *sub = argv[2];
        static char label[32];
        snprintf(label, sizeof label, "ember pool %s", sub);
        cli_cmd = label;
        if (strcmp(sub, "start") == 0) return cmd_pool_start(argc - 3, argv + 3);
        if (strcmp(sub, "stop") == 0) return cmd_pool_stop(argc - 3, argv + 3);
        if (strcmp(sub, "resize") == 0) return cmd_pool_resize(argc - 3, argv + 3);
        if (strcmp(sub, "wait") == 0) return cmd_pool_wait(argc - 3, argv + 3);
        if (strcmp(sub, "list") == 0) return cmd_pool_list();
        cli_cmd = "ember";
        return usage_error("pool: unknown command '%s'", sub);
    }
    static char cmd_label[32];
    snprintf(cmd_label, sizeof cmd_label, "ember %s", cmd);
    cli_cmd = cmd_label;
    if (strcmp(cmd, "stats") == 0) return cmd_stats(argc - 2, argv + 2);
    if (strcmp(cmd, "events") == 0) return cmd_events(argc - 2, argv + 2);
    if (strcmp(cmd, "call") == 0) return cmd_call(argc - 2, argv + 2);
    cli_cmd = "ember";
    return usage_error("unknown command '%s'", cmd);
}
