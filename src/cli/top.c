/* cli/top.c - ember top: a live full-screen view of a pool, redrawn every
 * interval with ncurses, until q or Ctrl-C.
 *
 * It attaches to the pool like any client and reads its snapshots
 * (top_frame.c turns them into lines). When the pool stops, or its
 * supervisor dies, the screen keeps the last figures and says so, and top
 * tries to attach again at each refresh, so that a pool started again
 * under the same name is shown live. A resize (SIGWINCH, which ncurses
 * turns into KEY_RESIZE) redraws at the new size at once. --once prints
 * one plain-text frame to stdout after one interval, for scripts. */
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curses.h>
#include "cli.h"
#include "top.h"

/* set by SIGINT, SIGTERM, SIGHUP: the loop restores the terminal and ends */
static volatile sig_atomic_t top_quit;

static void top_on_signal(int sig)
{
    (void)sig;
    top_quit = 1;
}

static void put_text(void *ctx, int row, enum top_attr attr, const char *text)
{
    (void)row, (void)attr;
    fprintf((FILE *)ctx, "%s\n", text);
}

static void put_screen(void *ctx, int row, enum top_attr attr, const char *text)
{
    (void)ctx;
    attr_t a = attr == TOP_TITLE ? A_BOLD : attr == TOP_HEAD ? A_REVERSE : attr == TOP_ALERT ? A_BOLD | A_REVERSE
                                                                                             : A_NORMAL;
    attrset(a);
    mvaddstr(row, 0, text);
    attrset(A_NORMAL);
    clrtoeol();
}

static void draw(const struct top_model *m)
{
    erase();
    top_frame(m, COLS, LINES, true, put_screen, NULL);
    refresh();
}

/* --once: one frame, its calls per second measured over one interval. */
static int top_once(struct top_model *m, ember_client *c)
{
    int rc = top_sample(m, c, cli_now_ns());
    if (rc == 0) {
        struct timespec ts = { m->interval_ns / 1000000000, m->interval_ns % 1000000000 };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
        rc = top_sample(m, c, cli_now_ns());
    }
    if (rc && rc != -EMBER_EPOOLDOWN) return fail(rc, "cannot read the pool's figures");
    top_frame(m, 0, 0, false, put_text, stdout);
    return 0;
}

/* The live screen, until q or a signal; *C may be replaced by a client of
 * a new pool of the same name. */
static int top_screen(struct top_model *m, ember_client **c)
{
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (!scr) {
        const char *term = getenv("TERM");
        fprintf(stderr, "%s: cannot draw on this terminal (TERM=%s has no terminfo entry): set TERM to "
                "one it knows, such as xterm-256color, or use --once for a plain-text frame\n", cli_cmd,
                term && term[0] ? term : "(unset)");
        return 1;
    }
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    uint64_t next = cli_now_ns();
    int status = 0;
    while (!top_quit) {
        uint64_t now = cli_now_ns();
        if (now >= next) {
            if (m->stopped) { /* a pool of that name started again? */
                ember_client *nc;
                if (ember_attach(m->pool, &nc) == 0) {
                    ember_detach(*c);
                    *c = nc;
                    top_model_reset(m);
                }
            }
            if (!m->stopped) {
                int rc = top_sample(m, *c, now);
                if (rc && rc != -EMBER_EPOOLDOWN) {
                    status = rc;
                    break;
                }
            }
            next += (uint64_t)m->interval_ns;
            if (next <= now) next = now + (uint64_t)m->interval_ns;
            draw(m);
        }
        timeout((int)((next - now + 999999) / 1000000));
        int ch = getch();
        if (ch == 'q' || ch == 'Q') break;
        if (ch == KEY_RESIZE) draw(m);
        if (ch == 12) { /* Ctrl-L: repaint everything */
            clearok(curscr, TRUE);
            draw(m);
        }
    }
    endwin();
    delscreen(scr);
    return status ? fail(status, "cannot read the pool's figures") : 0;
}

int cmd_top(int argc, char **argv)
{
    int64_t interval = 1000000000;
    bool once = false;
    const struct cli_opt opts[] = { { "interval", CLI_DURATION, &interval, 0, 0 },
                                    { "once", CLI_FLAG, &once, 0, 0 }, { 0 } };
    const char *pool;
    int npos, rc = cli_parse_args(argc, argv, opts, &pool, 1, &npos);
    if (rc) return rc;
    if (npos < 1) return usage_error("the pool's NAME is missing");
    if (interval < 10000000 || interval > 3600000000000)
        return usage_error("option --interval: give a duration from 10ms to 1h (e.g. 500ms, 2s)");
    ember_client *c;
    if (cli_attach(pool, &c)) return 1;
    if (!once && (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO))) {
        ember_detach(c);
        return usage_error("%s is not a terminal: run 'ember top' in one, or add --once for one "
                           "plain-text frame", isatty(STDOUT_FILENO) ? "standard input" : "standard output");
    }
    setlocale(LC_ALL, "");
    struct top_model m;
    top_model_init(&m, pool, interval, strcmp(nl_langinfo(CODESET), "UTF-8") == 0);
    if (once) {
        rc = top_once(&m, c);
    } else {
        struct sigaction sa = { .sa_handler = top_on_signal }; /* no SA_RESTART: getch returns */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        rc = top_screen(&m, &c);
    }
    ember_detach(c);
    top_model_free(&m);
    return rc;
}
