/* cli/joblog.c - `ember run --joblog FILE` in GNU parallel's format, and
 * the jobs --resume and --resume-failed skip because of it.
 *
 * The format, as parallel 20221122 writes it: a header line, then one line
 * per finished job, tab-separated:
 *
 *   Seq Host Starttime JobRuntime Send Receive Exitval Signal Command
 *   1   :    1796461790.899   0.019   0  0  0  0  sleep 0.0; exit 0
 *
 * Host ":" is this machine; Starttime is seconds since the epoch with three
 * decimals; JobRuntime is "%10.3f" (right-aligned); Exitval is 0 when a
 * signal killed the job (Signal says which); a newline in the command is
 * written as a NUL byte so a job stays one line. Tools read these files
 * (parallel's own --resume among them), so the columns are exactly these. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "run.h"

static const char header[] =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

int run_joblog_header(FILE *f)
{
    if (fputs(header, f) == EOF) return -errno;
    return 0;
}

int run_joblog_write(FILE *f, const struct run_joblog_entry *e)
{
    if (fprintf(f, "%llu\t%s\t%.3f\t%10.3f\t%llu\t%llu\t%d\t%d\t", (unsigned long long)e->seq,
                e->host ? e->host : ":", e->start, e->runtime, (unsigned long long)e->send,
                (unsigned long long)e->receive, e->exitval, e->signal) < 0)
        return -errno;
    for (const char *c = e->command ? e->command : ""; *c; c++)
        if (putc(*c == '\n' ? 0 : *c, f) == EOF) return -errno;
    if (putc('\n', f) == EOF) return -errno;
    return 0;
}

static int seq_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int seqset_add(struct run_seqset *s, uint64_t seq)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        uint64_t *v = realloc(s->v, cap * sizeof *v);
        if (!v) return -1;
        s->v = v, s->cap = cap;
    }
    s->v[s->n++] = seq;
    return 0;
}

/* Sort S and drop duplicates */
static void seqset_settle(struct run_seqset *s)
{
    if (!s->n) return;
    qsort(s->v, s->n, sizeof *s->v, seq_cmp);
    size_t k = 1;
    for (size_t i = 1; i < s->n; i++)
        if (s->v[i] != s->v[k - 1]) s->v[k++] = s->v[i];
    s->n = k;
}

bool run_seqset_has(const struct run_seqset *s, uint64_t seq)
{
    return s->n && bsearch(&seq, s->v, s->n, sizeof *s->v, seq_cmp) != NULL;
}

void run_seqset_free(struct run_seqset *s)
{
    free(s->v);
    *s = (struct run_seqset){ 0 };
}

/* A whole number field: true with *V */
static bool field_num(const char *s, size_t len, bool sign, long long *v)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    if (!sign && buf[0] == '-') return false;
    *v = strtoll(buf, &end, 10);
    return !*end && !errno;
}

/* Parse one job's LINE: true with its seq and whether it succeeded */
static bool parse_line(const char *line, uint64_t *seq, bool *ok)
{
    const char *f[9];
    size_t len[9];
    const char *p = line;
    for (int i = 0; i < 8; i++) { /* the command (the 9th) may hold tabs */
        const char *tab = strchr(p, '\t');
        if (!tab) return false;
        f[i] = p, len[i] = (size_t)(tab - p);
        p = tab + 1;
    }
    long long s, exitval, sig;
    if (!field_num(f[0], len[0], false, &s) || s < 1) return false;
    if (!field_num(f[6], len[6], true, &exitval) || !field_num(f[7], len[7], false, &sig))
        return false;
    *seq = (uint64_t)s;
    *ok = exitval == 0 && sig == 0;
    return true;
}

int run_joblog_load(const char *path, bool only_succeeded, struct run_seqset *skip)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 0; /* no log yet: nothing ran */
        fprintf(stderr, "%s: cannot read the joblog '%s': %s\n", cli_cmd, path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
        if (len == 0 || (lineno == 1 && strncmp(line, "Seq\tHost\t", 9) == 0)) continue;
        uint64_t seq;
        bool ok;
        if (!parse_line(line, &seq, &ok)) {
            fprintf(stderr,
                    "%s: the joblog '%s' line %zu is not a job (Seq, Host, Starttime, JobRuntime, "
                    "Send, Receive, Exitval, Signal, Command, tab-separated): fix or remove it\n",
                    cli_cmd, path, lineno);
            rc = -1;
            break;
        }
        if ((ok || !only_succeeded) && seqset_add(skip, seq)) {
            fprintf(stderr, "%s: out of memory reading the joblog '%s'\n", cli_cmd, path);
            rc = -1;
            break;
        }
    }
    if (!rc && ferror(f)) {
        fprintf(stderr, "%s: cannot read the joblog '%s': %s\n", cli_cmd, path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    seqset_settle(skip);
    return rc;
}
