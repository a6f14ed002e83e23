/* bridge/metrics.c - a bridge's counters in its pool's /metrics.
 *
 * Each bridge writes its figures as OpenMetrics samples into a small file
 * of its own, /dev/shm/ember-bridge.UID.POOL.PID (written whole, then
 * renamed over the last, about once a second, and removed at exit);
 * `ember stats --openmetrics` and the pool's --metrics-listen server
 * (openmetrics.c) add the samples of every such file whose bridge lives,
 * each family's metadata once, under the label consumer="ID". Files of a
 * bridge that died (SIGKILL leaves them) are skipped and removed, there and
 * when a bridge of the pool starts. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bridge.h"
#include "../cli/cli.h"

#define SHM_DIR "/dev/shm"

/* The families: name, type, unit, help; counters' samples are NAME_total,
 * the summary's NAME_count and NAME_sum. */
static const struct family {
    const char *name, *type, *unit, *help;
} families[] = {
    { "ember_bridge_entries_taken", "counter", "", "Stream entries this bridge read (XREADGROUP)." },
    { "ember_bridge_entries_reclaimed", "counter", "",
      "Entries taken over from a bridge that stopped answering (XAUTOCLAIM)." },
    { "ember_bridge_entries_rerun", "counter", "", "Entries run again after their call crashed its runner." },
    { "ember_bridge_entries_acknowledged", "counter", "", "Entries answered: result posted and XACK, in one MULTI/EXEC." },
    { "ember_bridge_entries_dead_lettered", "counter", "", "Entries put in the dead-letter stream KEY:dead." },
    { "ember_bridge_entries_expired", "counter", "", "Entries taken past their deadline, answered ETIMEDOUT unrun." },
    { "ember_bridge_calls_running", "gauge", "", "The bridge's calls in the pool now." },
    { "ember_bridge_results_unposted", "gauge", "", "Results waiting for Redis to be posted." },
    { "ember_bridge_redis_up", "gauge", "", "1 while the bridge is connected to Redis." },
    { "ember_bridge_redis_round_trip_seconds", "summary", "seconds",
      "Round trips of the bridge's Redis commands (a pipeline counts once)." },
};
#define NFAMILIES (sizeof families / sizeof families[0])

static void path_of(char *buf, size_t len, const char *pool, long pid)
{
    snprintf(buf, len, SHM_DIR "/ember-bridge.%u.%s.%ld", (unsigned)getuid(), pool, pid);
}

/* S as an OpenMetrics label value (quotes, backslashes, newlines escaped). */
static void label(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if (*s == '\n') fputs("\\n", f);
        else fputc(*s, f);
    }
}

void bridge_metrics_write(const char *pool, const char *consumer, const struct bridge_metrics *m)
{
    char path[512], tmp[520];
    path_of(path, sizeof path, pool, (long)getpid());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    if (!f) return;
    const uint64_t v[] = { m->taken, m->reclaimed, m->rerun, m->acked, m->dead, m->expired };
    char *lab = NULL;
    size_t ll = 0;
    FILE *lf = open_memstream(&lab, &ll);
    if (!lf) {
        fclose(f);
        unlink(tmp);
        return;
    }
    fputs("{pool=\"", lf);
    label(lf, pool);
    fputs("\",consumer=\"", lf);
    label(lf, consumer);
    fputs("\"}", lf);
    fclose(lf);
    for (size_t i = 0; lab && i < NFAMILIES; i++) {
        const char *n = families[i].name;
        if (i < 6) fprintf(f, "%s_total%s %llu\n", n, lab, (unsigned long long)v[i]);
        else if (i == 6) fprintf(f, "%s%s %llu\n", n, lab, (unsigned long long)m->running);
        else if (i == 7) fprintf(f, "%s%s %llu\n", n, lab, (unsigned long long)m->unposted);
        else if (i == 8) fprintf(f, "%s%s %d\n", n, lab, m->up ? 1 : 0);
        else {
            fprintf(f, "%s_count%s %llu\n", n, lab, (unsigned long long)m->rtt_count);
            fprintf(f, "%s_sum%s %.9f\n", n, lab, (double)m->rtt_sum_ns / 1e9);
        }
    }
    free(lab);
    if (fclose(f) != 0 || rename(tmp, path) != 0) unlink(tmp);
}

void bridge_metrics_remove(const char *pool)
{
    char path[512];
    path_of(path, sizeof path, pool, (long)getpid());
    unlink(path);
}

void bridge_metrics_sweep(const char *pool)
{
    bridge_openmetrics(NULL, pool);
}

int bridge_openmetrics(FILE *f, const char *pool)
{
    char prefix[320];
    snprintf(prefix, sizeof prefix, "ember-bridge.%u.%s.", (unsigned)getuid(), pool);
    size_t pl = strlen(prefix);
    DIR *d = opendir(SHM_DIR);
    if (!d) return 0;
    char *texts[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        if (strncmp(e->d_name, prefix, pl) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + pl, &end, 10);
        if (*end || pid <= 0) continue; /* a .tmp being written, or another pool's */
        char path[600];
        snprintf(path, sizeof path, SHM_DIR "/%s", e->d_name);
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) { /* its bridge died */
            unlink(path);
            continue;
        }
        FILE *in = f ? fopen(path, "re") : NULL;
        if (!in) continue;
        char *buf = malloc(8192);
        size_t got = buf ? fread(buf, 1, 8191, in) : 0;
        fclose(in);
        if (!buf) continue;
        buf[got] = 0;
        texts[n++] = buf;
    }
    closedir(d);
    for (size_t i = 0; n && i < NFAMILIES; i++) {
        const struct family *fm = &families[i];
        bool counter = strcmp(fm->type, "counter") == 0;
        fprintf(f, "# TYPE %s%s %s\n", fm->name, counter ? "_total" : "", fm->type);
        if (fm->unit[0]) fprintf(f, "# UNIT %s %s\n", fm->name, fm->unit);
        fprintf(f, "# HELP %s%s %s\n", fm->name, counter ? "_total" : "", fm->help);
        size_t nl = strlen(fm->name);
        for (int k = 0; k < n; k++)
            for (char *line = texts[k]; *line;) {
                char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t)(eol - line) + 1 : strlen(line);
                const char *rest = line + nl;
                if (strncmp(line, fm->name, nl) == 0 &&
                    (*rest == '{' || strncmp(rest, "_total{", 7) == 0 || strncmp(rest, "_count{", 7) == 0 ||
                     strncmp(rest, "_sum{", 5) == 0))
                    fwrite(line, 1, len, f);
                line += len;
            }
    }
    for (int k = 0; k < n; k++) free(texts[k]);
    return n;
}
