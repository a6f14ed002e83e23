/* cli/service.c - `ember pool start --foreground` as a systemd service:
 * the notify protocol (sd_notify(3)) through libsystemd.
 *
 * Only where systemd asked for it (NOTIFY_SOCKET set: Type=notify): READY=1
 * once the pool takes calls and its min runners are up, STATUS= with its
 * runners and load (each time serve() looks), WATCHDOG=1 at half of
 * WatchdogSec= while the supervisor lives, its event loop comes round
 * (its heartbeat is younger than CLI_SUP_STUCK_NS) and the pool runs,
 * STOPPING=1 when a stop begins. Built without libsystemd, every function here does
 * nothing. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#ifdef EMBER_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

int cli_service_open(struct cli_service *sv)
{
    sv->notify = false;
    sv->watchdog_ns = 0;
#ifdef EMBER_HAVE_SYSTEMD
    const char *sock = getenv("NOTIFY_SOCKET");
    sv->notify = sock && *sock;
    uint64_t usec = 0;
    /* > 0: WATCHDOG_USEC is set and WATCHDOG_PID, if set, is this process */
    if (sv->notify && sd_watchdog_enabled(0, &usec) > 0 && usec)
        sv->watchdog_ns = usec * 1000;
#endif
    return sv->notify;
}

/* "STATUS=..." for the pool as ST shows it. */
static void status_text(const ember_stats *st, const char *what, char *buf, size_t len)
{
    unsigned slots = st->serving * st->max_concurrency;
    snprintf(buf, len, "STATUS=%s%s%u runners serving (%u ready; min %u, max %u), %u of %u calls "
             "running, %u queued", what ? what : "", what ? ": " : "", st->serving, st->ready,
             st->min, st->max, st->running, slots, st->queued);
}

void cli_service_status(const struct cli_service *sv, const ember_stats *st, const char *what,
                        bool ready, bool watchdog)
{
    if (!sv->notify) return;
#ifdef EMBER_HAVE_SYSTEMD
    char status[256];
    status_text(st, what, status, sizeof status);
    char msg[320];
    snprintf(msg, sizeof msg, "%s%s%s", ready ? "READY=1\n" : "", watchdog ? "WATCHDOG=1\n" : "",
             status);
    int rc = sd_notify(0, msg);
    if (rc < 0)
        ember_log(EMBER_LOG_WARNING, "ember[%d]: cannot tell systemd the pool's state: %s",
                  (int)getpid(), strerror(-rc));
#else
    (void)st, (void)what, (void)ready, (void)watchdog, (void)status_text;
#endif
}

void cli_service_stopping(const struct cli_service *sv, const char *why)
{
    if (!sv->notify) return;
#ifdef EMBER_HAVE_SYSTEMD
    sd_notifyf(0, "STOPPING=1\nSTATUS=%s", why);
#else
    (void)why;
#endif
}
