/* cli/run.c - `ember run`: GNU parallel's batch runner on a standing pool.
 *
 * The front end (run_args.c) gives the jobs' command lines; this file runs
 * them. Each job is one exec call (or, with --handler, a call of that
 * handler) on a pool: a pool of its own, -j N runners of one call each,
 * started for the batch and stopped after it, or --pool NAME. One thread
 * keeps up to N calls in flight and collects whichever ends first
 * (ember_wait_any); no process is forked per job here: the runner that takes
 * the call starts the command, and stays for the next.
 *
 * What a job printed comes back with its result and is printed whole, stdout
 * then stderr, so no two jobs' output mix; -k holds finished jobs' output
 * until those before them in input order are printed.
 *
 * --output TEMPLATE: the command writes {out}, a temporary name beside the
 * final one (".NAME.ember-PID-SEQ.part"); the exec handler renames it into
 * place when the command exits 0 and removes it otherwise (cancel, deadline,
 * failure). A run killed outright leaves its temporary files behind, named
 * with its pid: the next run that writes into that directory removes those
 * of runs that are gone.
 *
 * Ctrl-C or SIGTERM: no job starts any more, the running ones are cancelled
 * (the exec handler kills their process groups) and collected, so the job
 * log says what ran; a second one exits at once. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <ember/client.h>
#include <ember/plugin.h>
#include <ember/redis.h>
#include "cli.h"
#include "exec.h"
#include "run.h"

/* One job, from its composition to its last try's result. */
struct job {
    uint64_t seq;               /* {#} */
    uint64_t ord;               /* its place among the jobs run (for -k) */
    unsigned slot;              /* {%}: 1..jobs */
    unsigned tries;
    char *line;                 /* the composed command line (joblog, messages) */
    char *tag;                  /* --tag's prefix, or NULL */
    char *final, *tmp;          /* --output's names, or NULL */
    void *req;                  /* the call's arguments */
    size_t reqlen;
    ember_call_id id;
    char rid[EMBER_REDIS_ID_MAX]; /* --redis: the stream entry of this try */
    char host[128];             /* --redis: the host that ran it (the joblog's Host) */
    uint64_t submit_ns;         /* CLOCK_MONOTONIC_COARSE of this try's submit */
    double start_wall;          /* the first try's start, seconds since the epoch */
    bool busy;                  /* in flight */
};

/* The inputs, read by a thread of their own: a slow producer on stdin
 * (`tail -f log | ember run ...`) must not hold up collecting and printing
 * the jobs that run meanwhile. It reads ahead up to CAP jobs. */
struct feeder {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t more, room;  /* a job was read / one was taken */
    struct run_input *in;
    struct run_args *q;         /* a ring of CAP */
    size_t head, n, cap;
    bool end, failed, stop;     /* END: no more (FAILED: a read error) */
};

/* A finished job's output waiting for its turn (-k). */
struct held {
    uint64_t ord;
    char *out, *err;
    size_t out_len, err_len;
    char *tag;
};

struct run {
    struct run_opts *o;
    ember_pool *pool;           /* ours, or NULL with --pool */
    ember_client *c;            /* NULL with --redis */
    ember_redis *redis;         /* --redis: the stream the jobs go through */
    const ember_redis_result *rres; /* --redis: the result being accounted for */
    bool abandon;               /* --redis: stop waiting for the jobs in flight */
    int h;                      /* the handler called */
    const char *shell;          /* $SHELL, or /bin/sh */
    char *cwd;
    char **env;                 /* environ and two slots for PARALLEL_SEQ, PARALLEL_JOBSLOT */
    size_t envc;
    struct job *jobs;           /* o->jobs entries; free when !busy */
    unsigned inflight;
    struct run_input *in;
    struct feeder *feed;        /* reads IN, unless it was read ahead whole */
    bool input_done;
    bool input_wait;            /* the next job's input has not come yet */
    struct run_args *pre;       /* all inputs, read ahead (a total is needed) */
    size_t npre, pre_next;
    bool have_total;
    uint64_t total;             /* jobs to run, when known */
    struct run_seqset skip;     /* --resume */
    FILE *joblog, *receipts;
    uint64_t next_ord, print_ord;
    struct held *held;          /* -k: finished, not yet printed */
    size_t nheld, capheld;
    uint64_t started, done, failed, succeeded;
    bool stop_starting;         /* halt, a signal, an error */
    int halt_status;            /* the exit status --halt decided, or -1 */
    bool error;                 /* 255 */
    uint64_t next_start_ns;     /* --delay */
    uint64_t t0_ns;
    uint64_t bar_ns;            /* the progress line's last drawing */
    bool bar, bar_tty;
    char **cleaned;             /* directories whose stale temporaries are gone */
    size_t ncleaned;
};

static volatile sig_atomic_t run_signal, run_signals;

static void on_signal(int sig)
{
    run_signal = sig;
    run_signals++;
    if (run_signals >= 2) { /* a second one: at once (our calls die with us) */
        signal(sig, SIG_DFL);
        raise(sig);
    }
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- output ---- */

/* Write BUF[0..LEN) to F, each line after TAG (if any). */
static void put_tagged(FILE *f, const char *tag, const char *buf, size_t len)
{
    if (!tag) {
        fwrite(buf, 1, len, f);
        return;
    }
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (buf + i)) + 1 : len - i;
        fputs(tag, f);
        fwrite(buf + i, 1, n, f);
        i += n;
    }
}

static void bar_clear(struct run *r);

static void print_output(struct run *r, const char *tag, const char *out, size_t out_len,
                         const char *err, size_t err_len)
{
    if (!out_len && !err_len) return; /* (-k: its turn passes all the same) */
    bar_clear(r);
    put_tagged(stdout, tag, out, out_len);
    fflush(stdout);
    put_tagged(stderr, tag, err, err_len);
    fflush(stderr);
}

/* -k: print what is held and due, in order. */
static void print_held(struct run *r)
{
    for (;;) {
        size_t i;
        for (i = 0; i < r->nheld && r->held[i].ord != r->print_ord; i++) {}
        if (i == r->nheld) return;
        struct held *h = &r->held[i];
        print_output(r, h->tag, h->out, h->out_len, h->err, h->err_len);
        free(h->out);
        free(h->err);
        free(h->tag);
        r->held[i] = r->held[--r->nheld];
        r->print_ord++;
    }
}

/* -k, at the end: what is still held waits for jobs that ended without a
 * result (their pool died under them); print it, in order, not lose it. */
static void print_rest(struct run *r)
{
    print_held(r);
    while (r->nheld) {
        uint64_t first = r->held[0].ord;
        for (size_t i = 1; i < r->nheld; i++)
            if (r->held[i].ord < first) first = r->held[i].ord;
        r->print_ord = first;
        print_held(r);
    }
}

/* Job J's output: printed now, or held for its turn (-k). */
static void job_output(struct run *r, const struct job *j, const char *out, size_t out_len,
                       const char *err, size_t err_len)
{
    if (!r->o->keep_order) {
        print_output(r, j->tag, out, out_len, err, err_len);
        return;
    }
    if (r->nheld == r->capheld) {
        size_t cap = r->capheld ? 2 * r->capheld : 16;
        struct held *p = realloc(r->held, cap * sizeof *p);
        if (!p) goto nomem;
        r->held = p, r->capheld = cap;
    }
    struct held h = { j->ord, malloc(out_len + 1), malloc(err_len + 1), out_len, err_len,
                      j->tag ? strdup(j->tag) : NULL };
    if (!h.out || !h.err || (j->tag && !h.tag)) {
        free(h.out);
        free(h.err);
        free(h.tag);
        goto nomem;
    }
    memcpy(h.out, out, out_len);
    memcpy(h.err, err, err_len);
    r->held[r->nheld++] = h;
    print_held(r);
    return;
nomem: /* out of order rather than lost */
    print_output(r, j->tag, out, out_len, err, err_len);
}

/* ---- progress (--bar, --eta, --progress) ---- */

static void bar_clear(struct run *r)
{
    if (r->bar && r->bar_tty && r->bar_ns) fputs("\r\033[K", stderr);
}

static void fmt_secs(double s, char *buf, size_t len)
{
    unsigned long t = s < 0 ? 0 : (unsigned long)(s + 0.5);
    if (t >= 3600) snprintf(buf, len, "%luh%02lum", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, len, "%lum%02lus", t / 60, t % 60);
    else snprintf(buf, len, "%lus", t);
}

/* Draw the progress line: at most 10 times a second on a terminal, once a
 * second on a pipe; FORCE draws now (the end). */
static void bar_draw(struct run *r, bool force)
{
    if (!r->bar) return;
    uint64_t now = cli_now_ns(), every = r->bar_tty ? 100000000ull : 1000000000ull;
    if (!force && r->bar_ns && now - r->bar_ns < every) return;
    r->bar_ns = now;
    double el = (double)(now - r->t0_ns) / 1e9;
    char eta[64] = "", line[256];
    if (r->have_total && r->done && r->done < r->total) {
        char t[48];
        fmt_secs(el / (double)r->done * (double)(r->total - r->done), t, sizeof t);
        snprintf(eta, sizeof eta, ", ETA %s", t);
    }
    int n;
    if (r->have_total)
        n = snprintf(line, sizeof line, "%" PRIu64 "/%" PRIu64 " done, %" PRIu64 " failed, %u running%s",
                     r->done, r->total, r->failed, r->inflight, eta);
    else
        n = snprintf(line, sizeof line, "%" PRIu64 " done, %" PRIu64 " failed, %u running", r->done,
                     r->failed, r->inflight);
    if (!r->bar_tty) {
        fprintf(stderr, "%s: %s\n", cli_cmd, line);
        return;
    }
    struct winsize ws;
    int cols = ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80;
    int width = cols - n - 10;
    fputs("\r\033[K", stderr);
    if (r->o->bar && r->have_total && width >= 10) {
        int fill = r->total ? (int)((double)width * (double)r->done / (double)r->total) : width;
        fprintf(stderr, "%3d%% [", r->total ? (int)(100 * r->done / r->total) : 100);
        for (int i = 0; i < width; i++) fputc(i < fill ? '#' : ' ', stderr);
        fputs("] ", stderr);
    }
    fputs(line, stderr);
    if (force) fputc('\n', stderr);
    fflush(stderr);
}

/* ---- the job log and receipts ---- */

/* How a job ended, for the job log, the receipts and the count. */
struct outcome {
    const char *how;            /* "exit", "signal", "timeout", "cancelled", "not found",
                                   "crashed" (its runner died), "oom" (the OOM killer)... */
    int exitval, sig;           /* the job log's columns */
    int status;                 /* the shell's way: 0 is success */
    const struct exec_res *res; /* exec's result, or NULL */
    uint64_t out_bytes;
    const ember_result *call;
    const char *out, *err;      /* what it printed (pointing into the result) */
    size_t out_len, err_len;
};

/* Does BUF[0..LEN) look like one JSON object on one line ("{...}", a
 * newline after it at most)? Then a receipt carries it as it is. */
static bool is_json_object(const char *buf, size_t len)
{
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) len--;
    if (len < 2 || buf[0] != '{' || buf[len - 1] != '}') return false;
    return !memchr(buf, '\n', len) && !memchr(buf, '\0', len);
}

static void write_logs(struct run *r, const struct job *j, const struct outcome *oc)
{
    double now = wall_now();
    if (r->joblog) {
        struct run_joblog_entry e = { j->seq, j->host[0] ? j->host : ":", j->start_wall, now - j->start_wall, 0, oc->out_bytes,
                                      oc->exitval, oc->sig, j->line };
        if (run_joblog_write(r->joblog, &e) != 0 || fflush(r->joblog) == EOF) {
            fprintf(stderr, "%s: cannot write the job log %s: %s\n", cli_cmd, r->o->joblog,
                    strerror(errno));
            fclose(r->joblog);
            r->joblog = NULL;
            r->error = true;
        }
    }
    if (!r->receipts) return;
    FILE *f = r->receipts;
    struct cli_receipt rc = { .end = oc->how, .exit = oc->exitval, .sig = oc->sig,
                              .start_wall = j->start_wall, .submit_ns = j->submit_ns,
                              .done_ns = cli_coarse_ns(), .call = oc->call, .exec = oc->res };
    fprintf(f, "{\"seq\":%" PRIu64 ",\"command\":", j->seq);
    cli_json_str(f, j->line);
    fputc(',', f);
    cli_receipt_fields(f, &rc);
    fprintf(f, ",\"tries\":%u", j->tries);
    if (r->redis) { /* where it ran, and that host's receipt of the call (its queue wait, run time) */
        fputs(",\"host\":", f);
        cli_json_str(f, j->host);
        if (r->rres && r->rres->receipt) {
            fputs(",\"host_receipt\":", f);
            fwrite(r->rres->receipt, 1, r->rres->receipt_len, f);
        }
    }
    if (r->o->handler && oc->out && is_json_object(oc->out, oc->out_len)) { /* the handler's own receipt */
        size_t n = oc->out_len;
        while (n && (oc->out[n - 1] == '\n' || oc->out[n - 1] == '\r')) n--;
        fputs(",\"result\":", f);
        fwrite(oc->out, 1, n, f);
    }
    if (j->final) {
        fprintf(f, ",\"output\":");
        cli_json_str(f, j->final);
    }
    fputs("}\n", f);
    if (fflush(f) == EOF) {
        fprintf(stderr, "%s: cannot write the receipts %s: %s\n", cli_cmd, r->o->receipts, strerror(errno));
        fclose(f);
        r->receipts = NULL;
        r->error = true;
    }
}

/* ---- --output: temporary names, and what dead runs left ---- */

/* Make DIR and its parents (mkdir -p); 0 or -errno. */
static int mkdirs(const char *dir)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return -ENAMETOOLONG;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0777) < 0 && errno != EEXIST) return -errno;
        *s = '/';
    }
    if (mkdir(p, 0777) < 0 && errno != EEXIST) return -errno;
    return 0;
}

/* Remove from DIR the temporary outputs of runs that are gone
 * (".NAME.ember-PID-SEQ.part" whose PID is not alive); once per directory. */
static void clean_dir(struct run *r, const char *dir)
{
    for (size_t i = 0; i < r->ncleaned; i++)
        if (strcmp(r->cleaned[i], dir) == 0) return;
    char **p = realloc(r->cleaned, (r->ncleaned + 1) * sizeof *p);
    if (!p) return;
    r->cleaned = p;
    if (!(p[r->ncleaned] = strdup(dir))) return;
    r->ncleaned++;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name, *m = strstr(n, ".ember-");
        size_t len = strlen(n);
        if (n[0] != '.' || !m || len < 6 || strcmp(n + len - 5, ".part") != 0) continue;
        char *end;
        long pid = strtol(m + 7, &end, 10);
        if (pid <= 0 || *end != '-' || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        unlinkat(dirfd(d), n, 0);
    }
    closedir(d);
}

/* J's output names: FINAL from --output's template, TMP beside it. 0, or -1
 * with the error printed. */
static int job_output_names(struct run *r, struct job *j, const struct run_args *a)
{
    j->final = run_output_name(r->o, a, j->seq, j->slot);
    if (!j->final) return -1;
    char *slash = strrchr(j->final, '/');
    const char *base = slash ? slash + 1 : j->final;
    char dir[PATH_MAX];
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - j->final), j->final);
    else snprintf(dir, sizeof dir, ".");
    if (!dir[0]) snprintf(dir, sizeof dir, "/");
    int rc = mkdirs(dir);
    if (rc) {
        fprintf(stderr, "%s: job %" PRIu64 ": cannot make the output directory %s: %s\n", cli_cmd, j->seq,
                dir, strerror(-rc));
        return -1;
    }
    clean_dir(r, dir);
    size_t len = strlen(j->final) + 64;
    if (!(j->tmp = malloc(len))) return -1;
    snprintf(j->tmp, len, "%.*s.%s.ember-%ld-%" PRIu64 ".part", (int)(base - j->final), j->final, base,
             (long)getpid(), j->seq);
    return 0;
}

/* ---- composing a job into a call ---- */

/* The call's arguments for --handler: the words, each ending in NUL. */
static int handler_request(struct run *r, struct job *j, const struct run_args *a)
{
    size_t n;
    char **w = run_compose_words(r->o, a, j->seq, j->slot, j->tmp, &n);
    if (!w) return -1;
    /* KEY=VALUE words: the caller's directory goes with them (cwd=) */
    char *kvb;
    int kv = cli_kv_request((const char *const *)w, n, r->cwd, &kvb, &j->reqlen);
    if (kv) {
        run_words_free(w);
        if (kv < 0) return -1;
        j->req = kvb;
        return 0;
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += strlen(w[i]) + 1;
    char *b = malloc(len ? len : 1), *p = b;
    if (b)
        for (size_t i = 0; i < n; i++) p = stpcpy(p, w[i]) + 1;
    run_words_free(w);
    if (!b) return -1;
    j->req = b, j->reqlen = len;
    return 0;
}

/* exec's request: argv when the line needs no shell, else the shell. */
static int exec_request(struct run *r, struct job *j)
{
    size_t argc = 0;
    char **words = r->o->shell ? NULL : run_split_simple(j->line, &argc);
    const char *shell_argv[] = { j->line, NULL };
    char seqv[48], slotv[48];
    snprintf(seqv, sizeof seqv, "PARALLEL_SEQ=%" PRIu64, j->seq);
    snprintf(slotv, sizeof slotv, "PARALLEL_JOBSLOT=%u", j->slot);
    r->env[r->envc] = seqv;
    r->env[r->envc + 1] = slotv;
    struct exec_output out = { j->tmp, j->final };
    struct exec_req req = {
        .argv = words && argc ? (const char *const *)words : shell_argv,
        .argc = words && argc ? argc : 1,
        .shell = !(words && argc),
        .shell_path = r->shell,
        .cwd = r->cwd,
        .env = (const char *const *)r->env,
        .envc = r->envc + 2,
        .env_set = true,
        .kill_grace_ns = 0,
        .run_limit_ns = r->o->timeout_ns > 0 ? r->o->timeout_ns : 0,
        .outputs = j->tmp ? &out : NULL,
        .noutputs = j->tmp ? 1 : 0,
    };
    int rc = exec_req_encode(&req, &j->req, &j->reqlen);
    run_words_free(words);
    return rc ? -1 : 0;
}

static void job_free(struct job *j)
{
    free(j->line);
    free(j->tag);
    free(j->final);
    free(j->tmp);
    free(j->req);
    memset(j, 0, sizeof *j);
}

/* Compose the job of A into J (slot SLOT). 0, or -1 with the error printed. */
static int job_make(struct run *r, struct job *j, const struct run_args *a, unsigned slot)
{
    memset(j, 0, sizeof *j);
    j->seq = a->seq;
    j->slot = slot;
    if (r->o->output && job_output_names(r, j, a)) goto fail;
    j->line = run_compose(r->o, a, j->seq, slot, j->tmp);
    if (!j->line) goto nomem;
    if (r->o->tag && !(j->tag = run_tag(r->o, a, j->seq, slot))) goto nomem;
    if (r->o->handler ? handler_request(r, j, a) : exec_request(r, j)) goto nomem;
    return 0;
nomem:
    fprintf(stderr, "%s: out of memory composing job %" PRIu64 "\n", cli_cmd, j->seq);
fail:
    job_free(j);
    return -1;
}

/* ---- the pool ---- */

/* The batch's pool on a /dev/shm too small for the default payload space
 * (a container's 64 MiB): it takes half the space free there, and payloads
 * up to a quarter of that (exec cuts longer output, saying so), rather than
 * refusing to run. False if that is not even 1 MiB. */
static bool pool_fit_shm(struct ember_pool_config *cfg)
{
    struct statvfs fs;
    if (statvfs("/dev/shm", &fs) < 0) return false;
    uint64_t space = (uint64_t)fs.f_bavail * fs.f_frsize / 2 / 65536 * 65536;
    if (space < EMBER_MIB) return false;
    cfg->payload_space = (size_t)space;
    if (cfg->max_payload > space / 4) cfg->max_payload = (size_t)(space / 4);
    return true;
}

static int pool_open(struct run *r)
{
    if (r->o->redis) { /* the hosts' pools: their handlers are theirs to check */
        int rc = ember_redis_open(r->o->redis, r->o->stream, &r->redis);
        if (rc) fprintf(stderr, "%s: %s\n", cli_cmd, ember_redis_errmsg(NULL));
        return rc ? -1 : 0;
    }
    if (r->o->pool) {
        if (cli_attach(r->o->pool, &r->c)) return -1;
    } else {
        struct ember_pool_config cfg;
        cli_pool_config_init(&cfg);
        static char name[32];
        snprintf(name, sizeof name, "run.%ld", (long)getpid());
        cfg.name = name;
        cfg.min = cfg.max = r->o->jobs;
        if (cfg.max_limit < cfg.max) cfg.max_limit = cfg.max;
        cfg.max_concurrency = 1;
        unsigned q = 2;
        while (q < 2 * r->o->jobs && q < 65536) q *= 2;
        if (cfg.queue_capacity < q) cfg.queue_capacity = q;
        cfg.kill_grace_ns = 2 * EMBER_SECOND; /* exec gives a cancelled job half: 1 s to end on SIGTERM */
        cfg.shutdown_timeout_ns = 5 * EMBER_SECOND;
        cfg.log = 0; /* the batch's stderr is its jobs' (EMBER_LOG=1 still shows the pool's log) */
        cli_register_handlers();
        cli_handlers_pool_config(&cfg);
        for (size_t i = 0; i < r->o->nplugins; i++) { /* loaded here: each error said as such */
            int rc = ember_plugin_load(r->o->plugins[i], NULL);
            if (rc) {
                fprintf(stderr, "%s: --plugin %s: %s\n", cli_cmd, r->o->plugins[i], ember_last_error());
                return -1;
            }
        }
        int rc = ember_pool_start(&cfg, &r->pool);
        if (rc == -EMBER_ENOSPC && pool_fit_shm(&cfg)) rc = ember_pool_start(&cfg, &r->pool);
        if (rc) {
            fail(rc, "cannot start the batch's pool");
            return -1;
        }
        if ((rc = ember_attach(name, &r->c)) != 0) {
            fail(rc, "cannot attach to the batch's pool");
            return -1;
        }
    }
    const char *hn = r->o->handler ? r->o->handler : "exec";
    r->h = ember_handler(r->c, hn);
    if (r->h < 0) {
        fprintf(stderr, "%s: pool '%s' has no handler '%s'\n", cli_cmd, r->o->pool ? r->o->pool : "(the batch's)",
                hn);
        return -1;
    }
    return 0;
}

static void pool_close(struct run *r, int64_t timeout)
{
    if (r->c) ember_detach(r->c);
    r->c = NULL;
    ember_redis_close(r->redis); /* what is in flight stays in the stream */
    r->redis = NULL;
    if (r->pool) ember_pool_stop(r->pool, timeout);
    r->pool = NULL;
}

/* ---- the batch ---- */

static void *feeder_main(void *arg)
{
    struct feeder *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        while (f->n == f->cap && !f->stop) pthread_cond_wait(&f->room, &f->mu);
        bool stop = f->stop;
        pthread_mutex_unlock(&f->mu);
        if (stop) return NULL;
        struct run_args a;
        int rc = run_input_next(f->in, &a); /* may block: nothing is held meanwhile */
        pthread_mutex_lock(&f->mu);
        if (rc == 1) {
            f->q[(f->head + f->n) % f->cap] = a;
            f->n++;
        } else {
            f->end = true;
            f->failed = rc < 0;
        }
        pthread_cond_signal(&f->more);
        pthread_mutex_unlock(&f->mu);
        if (rc != 1) return NULL;
    }
}

/* Start reading R's inputs in a thread; 0 or -1 (then they are read here). */
static int feeder_start(struct run *r)
{
    struct feeder *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->in = r->in;
    f->cap = 2 * (size_t)r->o->jobs + 16;
    if (!(f->q = calloc(f->cap, sizeof *f->q))) {
        free(f);
        return -1;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->more, NULL);
    pthread_cond_init(&f->room, NULL);
    sigset_t all, old; /* the signals are the main thread's */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&f->th, NULL, feeder_main, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        free(f->q);
        free(f);
        return -1;
    }
    r->feed = f;
    return 0;
}

/* A job's arguments from the feeder: 1, 0 at the end, -1 on a read error,
 * 2 when none has come yet (having waited up to WAIT_NS for one). */
static int feeder_take(struct feeder *f, struct run_args *a, int64_t wait_ns)
{
    pthread_mutex_lock(&f->mu);
    if (!f->n && !f->end && wait_ns > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += wait_ns % 1000000000;
        ts.tv_sec += wait_ns / 1000000000 + ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&f->more, &f->mu, &ts);
    }
    int rc;
    if (f->n) {
        *a = f->q[f->head];
        f->head = (f->head + 1) % f->cap;
        f->n--;
        pthread_cond_signal(&f->room);
        rc = 1;
    } else {
        rc = f->end ? (f->failed ? -1 : 0) : 2;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* Stop the feeder. One that has ended is joined and freed, with the
 * inputs (true); one blocked in a read is left to the process's exit
 * (false: the inputs are its). */
static bool feeder_stop(struct feeder *f)
{
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    bool ended = f->end;
    pthread_cond_signal(&f->room);
    pthread_mutex_unlock(&f->mu);
    if (!ended) {
        pthread_detach(f->th);
        return false;
    }
    pthread_join(f->th, NULL);
    for (size_t i = 0; i < f->n; i++) run_args_free(&f->q[(f->head + i) % f->cap]);
    free(f->q);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->more);
    pthread_cond_destroy(&f->room);
    free(f);
    return true;
}

/* The next job's arguments: 1, 0 at the end, -1 on a read error, 2 none
 * yet (the feeder waits for its input; with nothing in flight, up to a
 * tenth of a second was spent waiting for it). */
static int next_args(struct run *r, struct run_args *a)
{
    if (r->pre) {
        if (r->pre_next == r->npre) return 0;
        *a = r->pre[r->pre_next];
        memset(&r->pre[r->pre_next++], 0, sizeof *a);
        return 1;
    }
    if (r->feed) return feeder_take(r->feed, a, r->inflight ? 0 : 100000000);
    return run_input_next(r->in, a);
}

/* Read every input now, when a total is needed (--bar, --eta, N% halts). */
static int preload(struct run *r)
{
    size_t cap = 0;
    struct run_args a;
    int rc;
    while ((rc = run_input_next(r->in, &a)) == 1) {
        if (run_seqset_has(&r->skip, a.seq)) {
            run_args_free(&a);
            continue;
        }
        if (r->npre == cap) {
            cap = cap ? 2 * cap : 256;
            struct run_args *p = realloc(r->pre, cap * sizeof *p);
            if (!p) {
                run_args_free(&a);
                return -1;
            }
            r->pre = p;
        }
        r->pre[r->npre++] = a;
    }
    if (!r->pre) r->pre = calloc(1, sizeof *r->pre); /* no input: still preloaded */
    r->have_total = true;
    r->total = r->npre;
    return rc < 0 ? -1 : 0;
}

static int submit(struct run *r, struct job *j)
{
    j->submit_ns = cli_coarse_ns();
    /* exec enforces --timeout itself from the command's start (queueing in
     * a busy --pool does not count, and what it wrote comes back); a
     * handler's call has it as its deadline */
    int64_t timeout = r->o->timeout_ns > 0 && r->o->handler ? r->o->timeout_ns : EMBER_NEVER;
    if (!r->redis) return ember_submit(r->c, r->h, j->req, j->reqlen, timeout, &j->id);
    int rc = ember_redis_submit(r->redis, r->o->handler ? r->o->handler : "exec", j->req, j->reqlen, timeout,
                                0, j->rid);
    if (rc) {
        bar_clear(r);
        fprintf(stderr, "%s: cannot add job %" PRIu64 " to stream %s: %s\n", cli_cmd, j->seq, r->o->stream,
                ember_redis_errmsg(r->redis));
    }
    return rc;
}

/* Start the next job, if there is one. 1 started, 0 nothing to start, -1
 * the batch cannot go on, 2 its input has not come yet. */
static int start_next(struct run *r)
{
    struct run_args a;
    int rc;
    do {
        rc = next_args(r, &a);
        if (rc == 2) return 2;
        if (rc <= 0) {
            r->input_done = true;
            if (rc < 0) r->error = true;
            return rc;
        }
        if (!run_seqset_has(&r->skip, a.seq)) break;
        run_args_free(&a);
    } while (1);
    unsigned slot = 0;
    while (r->jobs[slot].busy) slot++;
    struct job *j = &r->jobs[slot];
    rc = job_make(r, j, &a, slot + 1);
    run_args_free(&a);
    if (rc) {
        r->error = true;
        return -1;
    }
    j->ord = r->next_ord++;
    j->tries = 1;
    j->start_wall = wall_now();
    rc = submit(r, j);
    if (rc) {
        if (!r->redis) fail(rc, "cannot submit a job");
        job_free(j);
        r->error = true;
        return -1;
    }
    j->busy = true;
    r->inflight++;
    r->started++;
    return 1;
}

static void cancel_all(struct run *r)
{
    if (r->redis) { /* no cancelling another host's call: stop waiting (batch) */
        r->abandon = true;
        return;
    }
    for (unsigned i = 0; i < r->o->jobs; i++)
        if (r->jobs[i].busy) ember_cancel(r->c, r->jobs[i].id);
}

/* Has --halt's condition come? */
static bool halt_reached(struct run *r, bool failed)
{
    const struct run_halt *h = &r->o->halt;
    if (h->when == RUN_HALT_NEVER) return false;
    uint64_t n = h->on == RUN_HALT_FAIL ? r->failed : h->on == RUN_HALT_SUCCESS ? r->succeeded : r->done;
    if (h->on == RUN_HALT_FAIL && !failed) return false;
    if (h->on == RUN_HALT_SUCCESS && failed) return false;
    if (h->percent) return r->total && (double)n * 100.0 >= (double)h->count * (double)r->total;
    return n >= h->count;
}

/* Fill OC from a call's outcome RC/RES, printing what the job wrote. */
static void outcome_of(struct run *r, struct job *j, int rc, const ember_result *res, struct exec_res *x,
                       struct outcome *oc)
{
    memset(oc, 0, sizeof *oc);
    oc->call = res;
    oc->status = 1;
    if (rc == 0 && r->o->handler) {
        oc->how = "exit";
        oc->status = 0;
        oc->out_bytes = res->len;
        oc->out = res->data, oc->out_len = res->len;
        return;
    }
    if (rc == 0) {
        if (exec_res_decode(res->data, res->len, x) != 0) {
            fprintf(stderr, "%s: job %" PRIu64 ": the pool's exec handler returned a result this ember "
                    "cannot read (a pool of another version?)\n", cli_cmd, j->seq);
            oc->how = "error", oc->exitval = 255, oc->status = 255;
            return;
        }
        oc->res = x;
        oc->out_bytes = x->out_total;
        oc->status = exec_res_status(x);
        oc->how = cli_exec_end_name(x);
        oc->exitval = x->end == EXEC_SIGNALED ? 0 : oc->status;
        oc->sig = x->end == EXEC_SIGNALED ? x->code : 0;
        if (x->end == EXEC_TIMEOUT) { /* GNU parallel's joblog: -1, and the signal sent */
            oc->exitval = -1, oc->sig = SIGTERM;
            bar_clear(r);
            fprintf(stderr, "%s: job %" PRIu64 " timed out: %s\n", cli_cmd, j->seq, j->line);
        }
        oc->out = x->out, oc->out_len = x->out_len;
        oc->err = x->err, oc->err_len = x->err_len;
        if (x->out_total > x->out_len)
            fprintf(stderr, "%s: job %" PRIu64 ": stdout truncated: %zu of %" PRIu64 " bytes kept\n", cli_cmd,
                    j->seq, x->out_len, x->out_total);
        if (x->err_total > x->err_len)
            fprintf(stderr, "%s: job %" PRIu64 ": stderr truncated: %zu of %" PRIu64 " bytes kept\n", cli_cmd,
                    j->seq, x->err_len, x->err_total);
        if (x->msg[0]) fprintf(stderr, "%s: job %" PRIu64 ": %s\n", cli_cmd, j->seq, x->msg);
        return;
    }
    bar_clear(r);
    if (rc == -EMBER_ETIMEDOUT) {
        oc->how = "timeout", oc->exitval = -1, oc->sig = SIGTERM;
        fprintf(stderr, "%s: job %" PRIu64 " timed out: %s\n", cli_cmd, j->seq, j->line);
    } else if (rc == -EMBER_ECANCELLED) {
        oc->how = "cancelled", oc->exitval = -1, oc->sig = SIGTERM;
    } else if (r->redis && (rc == -EMBER_EPOISON || rc == -EMBER_REDIS_EBLOB)) {
        if (rc == -EMBER_EPOISON)
            fprintf(stderr, "%s: job %" PRIu64 ": dead-lettered after %u deliveries on %s: %s (stream %s:dead)\n",
                    cli_cmd, j->seq, r->rres->deliveries, j->host, r->rres->cause[0] ? r->rres->cause : "poison",
                    r->o->stream);
        else
            fprintf(stderr, "%s: job %" PRIu64 ": %s\n", cli_cmd, j->seq, ember_redis_errmsg(r->redis));
        oc->how = rc == -EMBER_EPOISON ? "poison" : "error", oc->exitval = 255, oc->status = 255;
    } else if (rc == -EMBER_EHANDLER && r->o->handler) {
        oc->how = "exit", oc->exitval = res->detail ? res->detail & 0xff : 1, oc->status = oc->exitval;
        if (!oc->status) oc->exitval = oc->status = 1;
        oc->out = res->data, oc->out_len = res->len;
    } else {
        char what[64];
        snprintf(what, sizeof what, "job %" PRIu64, j->seq);
        fail(rc, what);
        oc->how = "error", oc->exitval = 255, oc->status = 255;
        /* the runner's end (client.h): its signal in the log's column; a
         * runner that exited has none, its status is in the message */
        if (rc == -EMBER_ECRASHED) oc->how = "crashed";
        if (rc == -EMBER_EOOM) oc->how = "oom";
        if ((rc == -EMBER_ECRASHED || rc == -EMBER_EOOM) && res->detail < EMBER_CRASH_EXIT)
            oc->sig = res->detail;
    }
}

/* The exit status --halt gives once its condition came with the end of the
 * job OC tells of, as GNU parallel computes it: at fail=1 or done=1, that
 * job's (its joblog exit value, so -1 for a timeout is 255, or 128+N for
 * signal N); at N% of the jobs, the share that failed, in percent rounded
 * up; at fail=N or done=N, the jobs failed so far (101 past 100); at
 * successes, 0. */
static int halt_exit_status(const struct run *r, const struct outcome *oc)
{
    const struct run_halt *h = &r->o->halt;
    if (h->on == RUN_HALT_SUCCESS) return 0;
    if (h->percent) return r->total ? (int)((r->failed * 100 + r->total - 1) / r->total) : 0;
    if (h->count == 1) return oc->exitval ? oc->exitval & 0xff : oc->sig ? 128 + oc->sig : 0;
    return r->failed > 100 ? 101 : (int)r->failed;
}

/* The call of J ended with RC/RES: retry it, or account for it. */
static void job_ended(struct run *r, struct job *j, int rc, ember_result *res)
{
    struct exec_res x;
    struct outcome oc;
    outcome_of(r, j, rc, res, &x, &oc);
    bool failed = oc.status != 0;
    bool cancelled = rc == -EMBER_ECANCELLED;
    if (failed && !cancelled && !r->stop_starting && j->tries < r->o->retries) {
        if (!r->redis) ember_result_release(r->c, res);
        j->tries++;
        if (submit(r, j) == 0) return;
        if (!r->redis) fail(-EMBER_EPOOLDOWN, "cannot submit a job's retry");
        r->error = true;
    } else {
        job_output(r, j, oc.out ? oc.out : "", oc.out_len, oc.err ? oc.err : "", oc.err_len);
        write_logs(r, j, &oc);
        if (!r->redis) ember_result_release(r->c, res);
    }
    j->busy = false;
    r->inflight--;
    r->done++;
    if (failed) r->failed++;
    else r->succeeded++;
    if (!cancelled && halt_reached(r, failed)) {
        if (r->halt_status < 0) {
            r->halt_status = halt_exit_status(r, &oc);
            bar_clear(r);
            fprintf(stderr, "%s: --halt: %s after %" PRIu64 " failed, %" PRIu64 " succeeded%s\n", cli_cmd,
                    r->o->halt.when == RUN_HALT_NOW ? "stopping now" : "starting no more jobs", r->failed,
                    r->succeeded, r->o->halt.when == RUN_HALT_NOW && r->inflight ? "; cancelling the running" : "");
        }
        r->stop_starting = true;
        if (r->o->halt.when == RUN_HALT_NOW) cancel_all(r);
    }
    job_free(j);
    bar_draw(r, false);
}

/* The job in flight whose call is ID. */
static struct job *job_of(struct run *r, ember_call_id id)
{
    for (unsigned i = 0; i < r->o->jobs; i++)
        if (r->jobs[i].busy && r->jobs[i].id.idx == id.idx && r->jobs[i].id.gen == id.gen) return &r->jobs[i];
    return NULL;
}

static int run_open_logs(struct run *r)
{
    const struct run_opts *o = r->o;
    if ((o->resume || o->resume_failed) &&
        run_joblog_load(o->joblog, o->resume_failed && !o->resume, &r->skip))
        return -1;
    if (o->joblog) {
        bool append = o->resume || o->resume_failed;
        struct stat st;
        bool fresh = !append || stat(o->joblog, &st) != 0 || st.st_size == 0;
        r->joblog = fopen(o->joblog, append ? "a" : "w");
        if (!r->joblog) {
            fprintf(stderr, "%s: cannot open the job log %s: %s\n", cli_cmd, o->joblog, strerror(errno));
            return -1;
        }
        if (fresh && (run_joblog_header(r->joblog) || fflush(r->joblog) == EOF)) {
            fprintf(stderr, "%s: cannot write the job log %s: %s\n", cli_cmd, o->joblog, strerror(errno));
            return -1;
        }
    }
    if (o->receipts) {
        r->receipts = fopen(o->receipts, o->resume || o->resume_failed ? "a" : "w");
        if (!r->receipts) {
            fprintf(stderr, "%s: cannot open the receipts file %s: %s\n", cli_cmd, o->receipts, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int run_setup(struct run *r)
{
    const struct run_opts *o = r->o;
    extern char **environ;
    const char *sh = getenv("SHELL");
    r->shell = sh && sh[0] == '/' ? sh : "/bin/sh";
    if (!(r->cwd = getcwd(NULL, 0))) {
        fprintf(stderr, "%s: cannot read the working directory: %s\n", cli_cmd, strerror(errno));
        return -1;
    }
    size_t n = 0;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "PARALLEL_SEQ=", 13) != 0 && strncmp(*e, "PARALLEL_JOBSLOT=", 17) != 0) n++;
    if (!(r->env = calloc(n + 3, sizeof *r->env))) return -1;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "PARALLEL_SEQ=", 13) != 0 && strncmp(*e, "PARALLEL_JOBSLOT=", 17) != 0)
            r->env[r->envc++] = *e;
    if (!(r->jobs = calloc(o->jobs, sizeof *r->jobs))) return -1;
    if (run_open_logs(r)) return -1;
    if (run_input_open(o, &r->in)) return -1;
    bool need_total = o->bar || o->eta || o->progress || (o->halt.when != RUN_HALT_NEVER && o->halt.percent);
    if (need_total && preload(r)) return -1;
    r->bar = o->bar || o->eta || o->progress;
    r->bar_tty = isatty(2);
    return 0;
}

static void run_free(struct run *r)
{
    if (r->jobs)
        for (unsigned i = 0; i < r->o->jobs; i++) job_free(&r->jobs[i]);
    free(r->jobs);
    for (size_t i = r->pre_next; i < r->npre; i++) run_args_free(&r->pre[i]);
    free(r->pre);
    if (r->feed && !feeder_stop(r->feed)) r->in = NULL; /* a blocked read keeps them */
    if (r->in) run_input_close(r->in);
    run_seqset_free(&r->skip);
    if (r->joblog) fclose(r->joblog);
    if (r->receipts) fclose(r->receipts);
    for (size_t i = 0; i < r->nheld; i++) {
        free(r->held[i].out);
        free(r->held[i].err);
        free(r->held[i].tag);
    }
    free(r->held);
    for (size_t i = 0; i < r->ncleaned; i++) free(r->cleaned[i]);
    free(r->cleaned);
    free(r->env);
    free(r->cwd);
}

/* Start what may start now; the time until --delay lets the next start
 * (0: none waits). */
static uint64_t fill(struct run *r)
{
    r->input_wait = false;
    while (!r->stop_starting && !r->input_done && r->inflight < r->o->jobs) {
        uint64_t now = cli_now_ns();
        if (r->o->delay_ns > 0 && r->started && now < r->next_start_ns) return r->next_start_ns - now;
        int rc = start_next(r);
        if (rc == 2) {
            r->input_wait = true;
            return 0;
        }
        if (rc < 0) r->stop_starting = true;
        r->next_start_ns = cli_now_ns() + (uint64_t)(r->o->delay_ns > 0 ? r->o->delay_ns : 0);
    }
    return 0;
}

/* --redis: the jobs in flight are no longer waited for (Ctrl-C, --halt
 * now): each ends as cancelled here; on its host it runs on, and its result
 * is posted all the same. */
static void redis_abandon(struct run *r)
{
    r->abandon = false;
    if (!r->inflight) return;
    bar_clear(r);
    fprintf(stderr, "%s: %u jobs stay in stream %s, their results to come in %s:results\n", cli_cmd,
            r->inflight, r->o->stream, r->o->stream);
    for (unsigned i = 0; i < r->o->jobs; i++) {
        struct job *j = &r->jobs[i];
        if (!j->busy) continue;
        ember_redis_forget(r->redis, j->rid);
        ember_result res = { .status = -EMBER_ECANCELLED, .runner = EMBER_NONE, .node = -1 };
        job_ended(r, j, res.status, &res);
    }
}

/* --redis: wait up to WAIT ns for a job's result from the stream and account
 * for it. 0, or -1: the batch cannot go on (Redis lost), said. */
static int redis_collect(struct run *r, int64_t wait)
{
    char rid[EMBER_REDIS_ID_MAX];
    ember_redis_result rres;
    int rc = ember_redis_wait_any(r->redis, wait, rid, &rres);
    if (rc == -EMBER_ETIMEDOUT) {
        bar_draw(r, false);
    } else if (rc && rc != -EMBER_REDIS_EBLOB) {
        bar_clear(r);
        fprintf(stderr, "%s: %s; the %u jobs in flight stay in stream %s\n", cli_cmd, ember_redis_errmsg(r->redis),
                r->inflight, r->o->stream);
        r->error = true;
        return -1;
    } else {
        struct job *j = NULL;
        for (unsigned i = 0; i < r->o->jobs && !j; i++)
            if (r->jobs[i].busy && strcmp(r->jobs[i].rid, rid) == 0) j = &r->jobs[i];
        if (j) {
            snprintf(j->host, sizeof j->host, "%s", rres.host[0] ? rres.host : "?");
            ember_result res = { .data = rres.data, .len = rres.len, .status = rc ? rc : rres.status,
                                 .detail = rres.detail, .runner = EMBER_NONE, .node = -1 };
            r->rres = &rres;
            job_ended(r, j, res.status, &res);
            r->rres = NULL;
        }
        ember_redis_result_release(&rres);
    }
    if (r->abandon) redis_abandon(r);
    return 0;
}

static int batch(struct run *r)
{
    r->t0_ns = cli_now_ns();
    bool cancelled = false;
    for (;;) {
        if (run_signal && !cancelled) {
            cancelled = true;
            r->stop_starting = true;
            bar_clear(r);
            fprintf(stderr, "%s: %s: starting no more jobs, cancelling %u running (again: at once)\n", cli_cmd,
                    strsignal(run_signal), r->inflight);
            cancel_all(r);
            if (r->abandon) redis_abandon(r);
        }
        uint64_t delay = fill(r);
        if (!r->inflight && (r->stop_starting || r->input_done)) break;
        int64_t wait = 100000000; /* a tenth of a second: signals and the bar are looked at */
        if (delay && (int64_t)delay < wait) wait = (int64_t)delay;
        if (r->input_wait && !r->inflight) continue; /* the feeder was waited for */
        if (r->input_wait) wait = 20000000; /* input may come while jobs run */
        if (!r->inflight) {
            struct timespec ts = { 0, wait };
            nanosleep(&ts, NULL);
            continue;
        }
        if (r->redis) {
            if (redis_collect(r, wait)) break;
            continue;
        }
        ember_call_id id;
        ember_result res;
        int rc = ember_wait_any(r->c, wait, &id, &res);
        if (rc == -EMBER_EAGAIN) {
            bar_draw(r, false);
            continue;
        }
        if (rc == -EMBER_EPOOLDOWN || rc == -EMBER_ENOCALLS || rc == -EMBER_EINVAL) {
            bar_clear(r);
            fail(rc, "the pool stopped with jobs running");
            r->error = true;
            break;
        }
        struct job *j = job_of(r, id);
        if (!j) { /* not ours: cannot be, but never lose a slot over it */
            ember_result_release(r->c, &res);
            continue;
        }
        job_ended(r, j, res.status, &res);
    }
    if (r->bar) {
        bar_clear(r);
        bar_draw(r, true);
    }
    print_rest(r);
    if (r->halt_status >= 0) return r->halt_status;
    if (run_signal) return 128 + run_signal;
    if (r->error) return RUN_EXIT_ERROR;
    return r->failed > 100 ? 101 : (int)r->failed;
}

int cmd_run(int argc, char **argv)
{
    struct run_opts o;
    int rc = run_parse(argc, argv, &o);
    if (rc) return rc;
    if (o.help) {
        run_help(stdout);
        return 0;
    }
    if (o.dry_run) {
        rc = run_dry_run(&o, stdout);
        run_opts_free(&o);
        return rc;
    }
    struct run r = { .o = &o, .halt_status = -1 };
    int status = RUN_EXIT_ERROR;
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    if (run_setup(&r) == 0 && pool_open(&r) == 0) {
        /* the inputs' thread starts once the pool has forked its supervisor:
         * a read it blocks in holds stdin's lock, which a fork may want */
        if (!r.pre) feeder_start(&r); /* when it cannot start, this thread reads them */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        status = batch(&r);
    }
    pool_close(&r, 5 * EMBER_SECOND);
    run_free(&r);
    run_opts_free(&o);
    return status;
}
