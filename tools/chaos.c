/* ember-chaos - a pool under fire: K caller processes keep calls of every
 * kind in flight while runners, callers or the supervisor are SIGKILLed on
 * a schedule; every call is tracked by id in memory shared by all of them
 * (this process, its callers, the supervisor and the runners, all forks of
 * it), and at the end the tool says what went wrong, as `key value` lines.
 * tools/chaos builds and runs it (once per supervisor back-end).
 *
 * Usage: ember-chaos [--seconds S] [--callers K] [--kill-every MS]
 *                    [--kill runners|callers|supervisor|mixed] [--runners N]
 *                    [--deadline MS] [--slow F] [--seed N]
 * (--slow multiplies the time limits below, 100 ms and 1 s, for valgrind.)
 *
 * The load. Each caller process attaches and loops over, by weight:
 *   small calls (ember_call, 8-180 bytes: inline in the slot) most of all;
 *   paged calls (1-32 KiB: shared payload pages), 1 in 32;
 *   casts (nobody collects them), 1 in 32;
 *   batches of 4 submits collected with ember_wait_any, 1 in 64;
 *   short-deadline calls (1-3 ms deadline, a handler that sleeps 0-4 ms and
 *     stops when cancelled), 1 in 64;
 *   place_child jobs (a child that runs 1-3 ms, or is stopped at once), 1 in 256.
 * Every argument starts with the call's id (8 bytes) followed by bytes made
 * from it; every handler counts its runs in the id's record and echoes its
 * arguments, and every result is compared byte for byte.
 *
 * The kills, every MS milliseconds (measured from the end of the previous
 * kill's handling):
 *   runners     a random runner that has booted (READY or DRAINING; runners
 *               killed while booting are boot failures, which trip the
 *               pool's boot backoff by design);
 *   callers     a random caller process, then a new one in its place; its
 *               slots must all be free again, and its caller entry cleared,
 *               within 100 ms of its death (from when this tool has reaped
 *               it; slow_reclaims otherwise);
 *   supervisor  the supervisor: it is reaped at once, the pool is started
 *               again under the same name at once (restart_failures if that
 *               start fails), every caller attached to the dead pool must
 *               get EMBER_EPOOLDOWN within 1 s (pooldown_late) and every
 *               runner of the dead pool must be gone within 1 s
 *               (runners_late); callers then attach to the new pool;
 *   mixed       each kill one of the above: runners 70%, callers 25%,
 *               supervisor 5%.
 *
 * Output (key value; the failure counts are the ones marked *; the exit
 * status is 1 when any of them is above zero, 2 for a bad option or a pool
 * that cannot start at all):
 *   calls            calls that promise an outcome (ember_call, submit +
 *                    wait_any, place_child), except those whose caller
 *                    this tool killed before their outcome (abandoned)
 *   resolved_once    of those, the ones whose caller got exactly one
 *                    outcome (a result or an error code), in time
 *   lost *           of those, the ones with no outcome at all, or one that
 *                    came later than their deadline + 1 s
 *   duplicated *     calls or casts whose handler ran more than once, or
 *                    whose outcome came more than once (ember_wait_any
 *                    returning an id twice), by the id's record
 *   wrong_results *  outcomes that are wrong: a result whose bytes differ
 *                    from the arguments, a result with no handler run, a
 *                    code outside ember's error table, or an error the call
 *                    cannot have (EMBER_EPOOLDOWN without supervisor kills,
 *                    EMBER_ETIMEDOUT with a normal deadline, EMBER_EFULL,
 *                    EMBER_ECRASHED by another signal than SIGKILL...), or
 *                    ember_wait_any returning an id this caller never submitted
 *   hung_callers *   caller processes that did not finish a call within its
 *                    deadline + 1 s (watched all along, and at the end,
 *                    when each must finish its last call and exit)
 *   caller_errors *  caller processes that exited on their own with a
 *                    failure (attach refused, handler missing)
 *   leaked_slots *   slots not FREE once the callers are gone and the
 *                    pool has settled (waited for, up to 5 s x --slow)
 *   leaked_pages *   payload pages still owned then
 *   leaked_callers * caller table entries still held then
 *   orphan_processes * runner, supervisor or caller processes (every pid
 *                    seen, with its start time) alive 1 s after the pool
 *                    stopped, and any process reparented to this one (it
 *                    is a child subreaper) still alive then
 *   slow_reclaims *  killed callers whose slots and entry took over 100 ms
 *                    to come back
 *   pooldown_late *  supervisor kills after which some caller attached to
 *                    the dead pool had no EMBER_EPOOLDOWN within 1 s
 *   runners_late *   supervisor kills after which some runner of the dead
 *                    pool was alive 1 s later
 *   restart_failures * starts of the same name, right after the dead
 *                    supervisor was reaped, that failed
 *   supervisor_deaths * supervisors that died without being killed by this tool
 *   runner_failures * runners that ended by something else than SIGKILL (ours,
 *                    their supervisor's death, a kill_grace or stop kill) or
 *                    a status 0 exit: a crash of ember's, a sanitizer's report
 *   final_call_failed * 1 when the pool did not serve one more call at the end
 *   p50_us, p99_us   latency of the successful small and paged ember_calls
 *   and counts: casts, children, timeouts, crashed, pooldown, cancelled,
 *   abandoned, kills_runners, kills_callers, kills_supervisor, restarts,
 *   reclaim_max_ms, pooldown_max_ms, runners_gone_max_ms, restart_max_ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "lib/testing.h"

/* The time limits, times --slow (default 1; tools/memcheck: valgrind's pace) */
#define GRACE_NS     (1000000000ull * opt.slow) /* a call's outcome may come this late */
#define RECLAIM_NS   (100000000ull * opt.slow)  /* a killed caller's slots must be back by then */
#define DOWN_NS      (1000000000ull * opt.slow) /* a dead supervisor's callers and runners */
#define HBUCKETS     640
#define BATCH        4
#define RUNNERS_CAND 256

enum { K_CALL = 1, K_PAGED, K_CAST, K_SUBMIT, K_SHORT, K_CHILD };
enum { F_LATE = 1, F_WRONG = 2 };
enum { M_RUNNERS, M_CALLERS, M_SUPERVISOR, M_MIXED };

/* One call's record, by id: written by its caller and by the handler that
 * runs it (in a runner).
 *
 * Every atomic of these shared records is seq_cst (the default) and none
 * orders anything but itself, with one pairing: a handler counts its run
 * before it writes its result, which the runner publishes with the slot's
 * release store (detail/slot.h) and the caller reads after its acquire
 * load; so a caller that has a result sees the run counted. Everything
 * else is read by this process once its writers have finished (exited,
 * been killed or returned), or as a watchdog's sample that may be stale. */
struct idrec {
    _Atomic uint8_t runs, resolved, kind, flags;
    _Atomic uint32_t inc;             /* the caller incarnation that made it */
};

/* One caller process (an incarnation: a caller killed and forked anew is a
 * new one). Its counters are its own; this process reads them. */
struct inc {
    _Atomic uint32_t pid, killed, hung, exited, failed;
    _Atomic uint32_t att_sup;         /* supervisor pid of the pool it is attached to */
    _Atomic uint32_t down_sup;        /* ... of the last pool that told it EMBER_EPOOLDOWN */
    _Atomic uint64_t cur_id1;         /* id + 1 of the call it waits for; 0: none */
    _Atomic uint64_t cur_deadline;
    _Atomic uint64_t casts, children, timeouts, crashed, pooldown, cancelled;
    _Atomic uint64_t foreign;         /* ember_wait_any gave an id it never submitted */
    _Atomic uint32_t hist[HBUCKETS];  /* latency of ok small and paged calls, by bucket */
};

/* Shared by all: made before the pool, inherited by every fork. */
struct ctl {
    _Atomic uint32_t pool_gen;        /* futex: bumped when the pool was started again */
    _Atomic uint32_t stop;            /* callers finish their call and exit */
    _Atomic uint64_t next_id;
    _Atomic uint32_t reports;         /* wrong results described on stderr so far */
    uint64_t id_cap;
    uint32_t inc_cap;
};

static struct ctl *g;
static struct idrec *g_ids;
static struct inc *g_incs;
static _Atomic uint32_t g_ninc;       /* incarnations used (this process only) */

static struct {
    double seconds;
    unsigned callers, runners;
    unsigned kill_every_ms;
    int mode;
    uint64_t deadline_ns;
    unsigned seed;
    unsigned slow;
} opt = { 10, 8, 2, 50, M_RUNNERS, 5000000000ull, 0, 1 };

static char g_name[EMBER_NAME_MAX];
static struct ember_pool_config g_cfg;
static ember_pool *g_pool;

static uint64_t now_ns(void) { return ember__now_ns(); }

static void pause_ns(uint64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

/* ---- the handlers (run in runners) ------------------------------------- */

static void count_run(const void *a, size_t n)
{
    uint64_t id;
    if (n < sizeof id) return;
    memcpy(&id, a, sizeof id);
    if (id < g->id_cap) atomic_fetch_add(&g_ids[id].runs, 1);
}

/* "cwork": echo. */
static int h_work(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)j;
    count_run(a, n);
    return ember_out_write(o, a, n);
}

/* "cwait": sleep the microseconds in bytes 8-11 (or until cancelled), echo.
 * For short-deadline calls and children. */
static int h_wait(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    count_run(a, n);
    uint32_t us = 0;
    if (n >= 12) memcpy(&us, (const char *)a + 8, sizeof us);
    uint64_t until = now_ns() + (uint64_t)us * 1000u;
    while (now_ns() < until && !ember_job_cancelled(j)) pause_ns(100000);
    return ember_out_write(o, a, n);
}

/* ---- callers ------------------------------------------------------------ */

struct caller {
    uint32_t inc;
    struct inc *me;
    ember_client *c;
    int h_work, h_wait;
    unsigned seed;
    unsigned char *buf;
};

static uint64_t new_id(struct caller *k, int kind)
{
    uint64_t id = atomic_fetch_add(&g->next_id, 1);
    if (id >= g->id_cap) return UINT64_MAX;
    atomic_store(&g_ids[id].inc, k->inc);
    atomic_store(&g_ids[id].kind, (uint8_t)kind);
    return id;
}

/* The arguments of call ID: the id, then (for the waiting handler) how
 * long, then bytes made from the id. */
static void fill(unsigned char *b, size_t len, uint64_t id, uint32_t us)
{
    for (size_t i = 0; i < len; i++) b[i] = (unsigned char)(id * 7 + i * 13);
    memcpy(b, &id, sizeof id);
    if (len >= 12) memcpy(b + 8, &us, sizeof us);
}

static unsigned hbucket(uint64_t us)
{
    if (us < 64) return (unsigned)us;
    unsigned msb = 63u - (unsigned)__builtin_clzll(us);
    unsigned b = 64 + (msb - 6) * 16 + (unsigned)((us >> (msb - 4)) & 15);
    return b < HBUCKETS ? b : HBUCKETS - 1;
}

static uint64_t hbucket_top(unsigned b)
{
    if (b < 64) return b;
    unsigned msb = (b - 64) / 16 + 6, sub = (b - 64) % 16;
    return ((16ull + sub) << (msb - 4)) + (1ull << (msb - 4)) - 1;
}

static bool sup_mode(void) { return opt.mode == M_SUPERVISOR || opt.mode == M_MIXED; }

static void mark(uint64_t id, uint8_t f) { atomic_fetch_or(&g_ids[id].flags, f); }

static void describe(uint64_t id, const char *what, int rc)
{
    if (atomic_fetch_add(&g->reports, 1) < 20)
        fprintf(stderr, "ember-chaos: call %llu (kind %u): %s: rc %d %s (%s)\n",
                (unsigned long long)id, (unsigned)atomic_load(&g_ids[id].kind), what, rc,
                ember_errname(rc), rc ? ember_last_error() : "");
}

/* Record call ID's outcome RC (R: its result; LEN: its arguments' length)
 * that came now, for a deadline of DEADLINE. TIMEOUT_OK, CANCEL_OK: this
 * kind of call may end with EMBER_ETIMEDOUT, EMBER_ECANCELLED. */
static void resolve(struct caller *k, uint64_t id, int rc, const ember_result *r, size_t len,
                    uint64_t deadline, bool timeout_ok, bool cancel_ok)
{
    struct idrec *d = &g_ids[id];
    atomic_fetch_add(&d->resolved, 1);
    if (now_ns() > deadline + GRACE_NS) mark(id, F_LATE);
    if (rc == 0) {
        fill(k->buf, len, id, 0);
        if (len >= 12) memcpy(k->buf + 8, (const char *)r->data + 8, 4); /* its sleep */
        if (!r->data || r->len != len || memcmp(r->data, k->buf, len) != 0) {
            mark(id, F_WRONG);
            describe(id, "result bytes differ from the arguments", rc);
        } else if (atomic_load(&d->runs) == 0) {
            mark(id, F_WRONG);
            describe(id, "a result with no handler run", rc);
        }
        return;
    }
    switch (-rc) {
    case EMBER_ECRASHED: /* the only crashes here are our kills */
        atomic_fetch_add(&k->me->crashed, 1);
        if (r->detail == SIGKILL) return;
        break;
    case EMBER_ERUNNERLOST: atomic_fetch_add(&k->me->crashed, 1); return;
    case EMBER_EPOOLDOWN:
        atomic_fetch_add(&k->me->pooldown, 1);
        atomic_store(&k->me->down_sup, atomic_load(&k->me->att_sup));
        if (sup_mode()) return;
        break;
    case EMBER_ETIMEDOUT:
        atomic_fetch_add(&k->me->timeouts, 1);
        if (timeout_ok) return;
        break;
    case EMBER_ECANCELLED:
        atomic_fetch_add(&k->me->cancelled, 1);
        if (cancel_ok) return;
        break;
    default: break;
    }
    mark(id, F_WRONG);
    describe(id, "an error this call cannot have", rc);
}

static void watch(struct caller *k, uint64_t id, uint64_t deadline)
{
    atomic_store(&k->me->cur_deadline, deadline);
    atomic_store(&k->me->cur_id1, id + 1);
}

static void unwatch(struct caller *k) { atomic_store(&k->me->cur_id1, 0); }

/* A plain call of LEN bytes (KIND: small or paged), or a short-deadline one. */
static int op_call(struct caller *k, int kind, size_t len)
{
    uint64_t id = new_id(k, kind);
    if (id == UINT64_MAX) return 1;
    bool shrt = kind == K_SHORT;
    uint32_t us = shrt ? rand_r(&k->seed) % 4000 : 0;
    uint64_t tmo = shrt ? 1000000ull + rand_r(&k->seed) % 2000000 : opt.deadline_ns;
    fill(k->buf, len, id, us);
    uint64_t t0 = now_ns();
    watch(k, id, t0 + tmo);
    ember_result r;
    int rc = ember_call(k->c, shrt ? k->h_wait : k->h_work, k->buf, len, &r, (int64_t)tmo);
    uint64_t t1 = now_ns();
    unwatch(k);
    resolve(k, id, rc, &r, len, t0 + tmo, shrt, false);
    if (rc == 0 && !shrt) atomic_fetch_add_explicit(&k->me->hist[hbucket((t1 - t0) / 1000)], 1,
                                                    memory_order_relaxed);
    ember_result_release(k->c, &r);
    return rc;
}

static int op_cast(struct caller *k)
{
    uint64_t id = new_id(k, K_CAST);
    if (id == UINT64_MAX) return 1;
    size_t len = 8 + rand_r(&k->seed) % 100;
    fill(k->buf, len, id, 0);
    int rc = ember_cast(k->c, k->h_work, k->buf, len, (int64_t)opt.deadline_ns);
    atomic_fetch_add(&k->me->casts, 1);
    if (rc == -EMBER_EPOOLDOWN && sup_mode()) {
        atomic_fetch_add(&k->me->pooldown, 1);
        atomic_store(&k->me->down_sup, atomic_load(&k->me->att_sup));
    } else if (rc) {
        mark(id, F_WRONG);
        describe(id, "cast refused", rc);
    }
    return rc;
}

/* BATCH submits collected with ember_wait_any: each id must come back once. */
static int op_submit(struct caller *k)
{
    uint64_t ids[BATCH];
    size_t lens[BATCH];
    ember_call_id cid[BATCH];
    bool open[BATCH];
    unsigned n = 0, left = 0;
    int last = 0;
    uint64_t t0 = now_ns(), deadline = t0 + opt.deadline_ns;
    for (unsigned i = 0; i < BATCH; i++) {
        uint64_t id = new_id(k, K_SUBMIT);
        if (id == UINT64_MAX) break;
        size_t len = 8 + rand_r(&k->seed) % 100;
        fill(k->buf, len, id, 0);
        if (i == 0) watch(k, id, deadline);
        ids[n] = id;
        lens[n] = len;
        int rc = ember_submit(k->c, k->h_work, k->buf, len, (int64_t)opt.deadline_ns, &cid[n]);
        open[n] = rc == 0;
        if (rc) {
            ember_result none = { 0 };
            resolve(k, id, rc, &none, len, deadline, false, false);
            last = rc;
        } else {
            left++;
        }
        n++;
    }
    while (left) {
        ember_call_id got;
        ember_result r;
        int rc = ember_wait_any(k->c, (int64_t)(opt.deadline_ns + GRACE_NS), &got, &r);
        if (rc == -EMBER_EPOOLDOWN) { /* the calls in flight will not end: that is their outcome */
            for (unsigned i = 0; i < n; i++)
                if (open[i]) resolve(k, ids[i], rc, &r, lens[i], deadline, false, false);
            last = rc;
            break;
        }
        if (rc) { /* none came in time: they stay unresolved, and count as lost */
            describe(ids[0], "ember_wait_any", rc);
            break;
        }
        unsigned i = 0;
        while (i < n && !(open[i] && cid[i].idx == got.idx && cid[i].gen == got.gen)) i++;
        if (i == n) { /* an id not in flight: collected already, or never ours */
            bool known = false;
            for (i = 0; i < n; i++)
                if (cid[i].idx == got.idx && cid[i].gen == got.gen) {
                    atomic_fetch_add(&g_ids[ids[i]].resolved, 1);
                    known = true;
                }
            if (!known) atomic_fetch_add(&k->me->foreign, 1);
            ember_result_release(k->c, &r);
            continue;
        }
        open[i] = false;
        left--;
        resolve(k, ids[i], r.status, &r, lens[i], deadline, false, false);
        if (r.status) last = r.status;
        ember_result_release(k->c, &r);
    }
    unwatch(k);
    return last;
}

/* A child that runs 1-3 ms, or is stopped at once. */
static int op_child(struct caller *k)
{
    uint64_t id = new_id(k, K_CHILD);
    if (id == UINT64_MAX) return 1;
    uint32_t us = 1000 + rand_r(&k->seed) % 2000;
    size_t len = 16;
    fill(k->buf, len, id, us);
    uint64_t deadline = now_ns() + opt.deadline_ns + us * 1000ull;
    watch(k, id, deadline);
    ember_child ch;
    ember_result r = { 0 };
    int rc = ember_place_child(k->c, k->h_wait, k->buf, len, (int64_t)opt.deadline_ns, 0, &ch);
    bool stop = rand_r(&k->seed) % 2;
    if (rc == 0) rc = stop ? ember_child_stop(k->c, &ch, &r) : ember_child_wait(k->c, &ch, &r);
    unwatch(k);
    atomic_fetch_add(&k->me->children, 1);
    resolve(k, id, rc, &r, len, deadline, false, stop);
    ember_result_release(k->c, &r);
    return rc;
}

/* Attach to the pool, a new one if the last one we knew went down. */
static void attach(struct caller *k)
{
    for (;;) {
        if (atomic_load(&g->stop)) _exit(0);
        uint32_t gen = atomic_load(&g->pool_gen);
        int rc = ember_attach(g_name, &k->c);
        if (rc == 0) {
            uint32_t sup = atomic_load(&ember__client_view(k->c)->hdr->sup_pid);
            if (sup != atomic_load(&k->me->down_sup)) {
                atomic_store(&k->me->att_sup, sup);
                k->h_work = ember_handler(k->c, "cwork");
                k->h_wait = ember_handler(k->c, "cwait");
                if (k->h_work >= 0 && k->h_wait >= 0) return;
                fprintf(stderr, "ember-chaos: caller %d: handlers missing: %s\n", (int)getpid(),
                        ember_last_error());
                atomic_store(&k->me->failed, 1);
                _exit(3);
            }
            ember_detach(k->c); /* the dead pool, not yet removed */
        } else if (rc != -EMBER_ENOPOOL && rc != -EMBER_EPOOLDOWN) {
            fprintf(stderr, "ember-chaos: caller %d: attach: %s (%s)\n", (int)getpid(),
                    ember_errname(rc), ember_last_error());
            atomic_store(&k->me->failed, 1);
            _exit(3);
        }
        ember__futex_wait(&g->pool_gen, gen, now_ns() + 100000000ull);
    }
}

static _Noreturn void caller_main(uint32_t inc)
{
    struct caller k = { .inc = inc, .me = &g_incs[inc] };
    k.seed = opt.seed ^ (inc * 2654435761u);
    k.buf = malloc(64 * 1024);
    if (!k.buf) _exit(3);
    attach(&k);
    for (uint64_t n = 0; !atomic_load(&g->stop); n++) {
        unsigned r = rand_r(&k.seed) % 256;
        int rc;
        if (r < 8) rc = op_call(&k, K_PAGED, 1024 + rand_r(&k.seed) % (31 * 1024));
        else if (r < 16) rc = op_cast(&k);
        else if (r < 20) rc = op_submit(&k);
        else if (r < 24) rc = op_call(&k, K_SHORT, 16 + rand_r(&k.seed) % 100);
        else if (r < 25) rc = op_child(&k);
        else rc = op_call(&k, K_CALL, 8 + rand_r(&k.seed) % 173);
        if (rc == 1) break; /* out of ids */
        if (rc == -EMBER_EPOOLDOWN) {
            ember_detach(k.c);
            attach(&k);
        }
    }
    ember_detach(k.c);
    free(k.buf);
    atomic_store(&k.me->exited, 1);
    _exit(0);
}

/* ---- this process: the pool, the kills, the checks ---------------------- */

static struct {
    uint64_t kills[3], restarts, reclaim_max, pooldown_max, runners_gone_max, restart_max;
    uint64_t slow_reclaims, pooldown_late, runners_late, restart_failures, caller_errors;
    uint64_t hung, sup_deaths, runner_failures;
} st;

/* Every runner and supervisor pid seen, with its start time. */
static struct seen { pid_t pid; uint64_t start; } *g_seen;
static size_t g_nseen, g_capseen;

static void seen_add(pid_t pid)
{
    uint64_t start = ember__proc_start_ticks(pid);
    if (!pid || !start) return;
    for (size_t i = g_nseen; i > 0 && i + 64 > g_nseen; i--)
        if (g_seen[i - 1].pid == pid && g_seen[i - 1].start == start) return;
    if (g_nseen == g_capseen) {
        size_t cap = g_capseen ? 2 * g_capseen : 1024;
        struct seen *n = realloc(g_seen, cap * sizeof *n);
        if (!n) return;
        g_seen = n;
        g_capseen = cap;
    }
    g_seen[g_nseen++] = (struct seen){ pid, start };
}

static struct ember__view *view(void) { return ember__pool_view(g_pool); }

/* The pid each runner entry had at the last look (0: none). */
static pid_t g_runner_pid[RUNNERS_CAND];

/* Note the runners' pids; a runner that ended since the last look must
 * have ended by SIGKILL (ours, its supervisor's death, a kill_grace or the
 * stop's) or with status 0 (drained): anything else, such as a sanitizer's
 * report (exit status 66 under TSan), is a runner failure. */
static void note_runners(void)
{
    struct ember__view *v = view();
    for (uint32_t i = 0; i < v->nrunners && i < RUNNERS_CAND; i++) {
        pid_t p = (pid_t)atomic_load(&v->runners[i].pid);
        seen_add(p);
        if (g_runner_pid[i] && p != g_runner_pid[i]) { /* it ended: pid cleared after the exit's record */
            int sig = v->runners[i].last_exit_signal, status = v->runners[i].last_exit_status;
            if ((sig && sig != SIGKILL) || (!sig && status)) {
                st.runner_failures++;
                fprintf(stderr, "ember-chaos: runner %d ended with signal %d, status %d\n",
                        (int)g_runner_pid[i], sig, status);
            }
        }
        g_runner_pid[i] = p;
    }
}

static void fork_caller(void)
{
    uint32_t inc = atomic_fetch_add(&g_ninc, 1);
    if (inc >= g->inc_cap) {
        atomic_fetch_sub(&g_ninc, 1);
        return;
    }
    fflush(NULL);
    pid_t p = fork();
    if (p == 0) caller_main(inc);
    if (p < 0) {
        perror("ember-chaos: fork of a caller");
        exit(2);
    }
    atomic_store(&g_incs[inc].pid, (uint32_t)p);
}

static struct inc *inc_of(pid_t p)
{
    for (uint32_t i = 0; i < atomic_load(&g_ninc); i++)
        if ((pid_t)atomic_load(&g_incs[i].pid) == p) return &g_incs[i];
    return NULL;
}

static bool live(struct inc *c) { return c->pid && !c->exited && !c->killed && !c->failed; }

/* Reap what ended: callers (a new one for each that failed), reparented
 * runners, an unexpected supervisor death. */
static void reap(bool refork)
{
    int status;
    pid_t p;
    while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
        struct inc *c = inc_of(p);
        if (p == ember_pool_supervisor_pid(g_pool)) st.sup_deaths++;
        if (!c || c->killed) continue;
        bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        atomic_store(&c->pid, 0);
        if (!ok) {
            st.caller_errors++;
            fprintf(stderr, "ember-chaos: caller %d ended with status 0x%x\n", (int)p, status);
        }
        if (refork && !atomic_load(&g->stop)) fork_caller();
    }
}

/* Callers waiting on a call past its deadline + 1 s: hung (each once). */
static void watchdog(void)
{
    uint64_t now = now_ns();
    for (uint32_t i = 0; i < atomic_load(&g_ninc); i++) {
        struct inc *c = &g_incs[i];
        if (!live(c) || c->hung || !atomic_load(&c->cur_id1)) continue;
        if (now > atomic_load(&c->cur_deadline) + GRACE_NS) {
            atomic_store(&c->hung, 1);
            st.hung++;
            fprintf(stderr, "ember-chaos: caller %d hangs in call %llu\n", (int)c->pid,
                    (unsigned long long)atomic_load(&c->cur_id1) - 1);
        }
    }
}

static unsigned rnd(unsigned n)
{
    return n ? (unsigned)(rand_r(&opt.seed) % n) : 0;
}

static void kill_runner(void)
{
    struct ember__view *v = view();
    uint32_t cand[RUNNERS_CAND];
    unsigned n = 0;
    for (uint32_t i = 0; i < v->nrunners && n < RUNNERS_CAND; i++) {
        uint32_t s = atomic_load(&v->runners[i].state);
        if (atomic_load(&v->runners[i].pid) && (s == EMBER_RUNNER_READY || s == EMBER_RUNNER_DRAINING))
            cand[n++] = i;
    }
    if (!n) return;
    struct ember_runner_ent *re = &v->runners[cand[rnd(n)]];
    uint32_t pid = atomic_load(&re->pid), s = atomic_load(&re->state);
    /* the same pid before and after the look at its state: the same runner */
    if (pid && (s == EMBER_RUNNER_READY || s == EMBER_RUNNER_DRAINING) && atomic_load(&re->pid) == pid &&
        kill((pid_t)pid, SIGKILL) == 0)
        st.kills[0]++;
}

/* Does caller entry IDX of generation CGEN still hold a slot or its entry? */
static bool caller_holds(struct ember__view *v, uint32_t idx, uint32_t cgen, pid_t pid)
{
    if ((pid_t)atomic_load(&v->callers[idx].pid) == pid && atomic_load(&v->callers[idx].gen) == cgen)
        return true;
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint32_t w = atomic_load(&v->slots[i].state);
        if (ember__st(w) == EMBER_SLOT_FREE) continue;
        uint64_t o = atomic_load(&v->slots[i].owner);
        if ((o >> 48) == (ember__gen(w) & 0xffffu) && ((o >> 32) & 0xffffu) == idx && (uint32_t)o == cgen)
            return true;
    }
    return false;
}

/* What a killed caller still holds past the limit, and its supervisor's state. */
static void tell_held(struct ember__view *v, uint32_t idx, uint32_t cgen, pid_t pid)
{
    char buf[512] = "";
    size_t n = 0;
    bool entry = (pid_t)atomic_load(&v->callers[idx].pid) == pid && atomic_load(&v->callers[idx].gen) == cgen;
    for (uint32_t i = 0; i < v->nslots && n < 400; i++) {
        uint32_t w = atomic_load(&v->slots[i].state);
        if (ember__st(w) == EMBER_SLOT_FREE) continue;
        uint64_t o = atomic_load(&v->slots[i].owner);
        if ((o >> 48) == (ember__gen(w) & 0xffffu) && ((o >> 32) & 0xffffu) == idx && (uint32_t)o == cgen)
            n += (size_t)snprintf(buf + n, sizeof buf - n, " slot %u state %u flags 0x%x call 0x%x runner %u;", i,
                                  ember__st(w), w & 0xf0u, v->slots[i].flags, v->slots[i].runner);
    }
    char path[64], stat[256] = "";
    snprintf(path, sizeof path, "/proc/%d/stat", ember_pool_supervisor_pid(g_pool));
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(stat, sizeof stat, f)) stat[0] = 0;
        fclose(f);
    }
    char *st_ = strrchr(stat, ')');
    fprintf(stderr, "ember-chaos: caller %d killed %.0f ms ago: its entry %s;%s supervisor state %c, "
            "callers reaped %llu\n", (int)pid, RECLAIM_NS / 1e6, entry ? "still held" : "cleared",
            n ? buf : " no slot", st_ && st_[1] ? st_[2] : '?',
            (unsigned long long)atomic_load(&v->hdr->callers_reaped));
}

static void kill_caller(void)
{
    struct inc *cand[256];
    unsigned n = 0;
    for (uint32_t i = 0; i < atomic_load(&g_ninc) && n < 256; i++)
        if (live(&g_incs[i])) cand[n++] = &g_incs[i];
    if (!n) return;
    struct inc *c = cand[rnd(n)];
    pid_t p = (pid_t)c->pid;
    struct ember__view *v = view();
    uint32_t idx = EMBER_NONE, cgen = 0;
    for (uint32_t i = 0; i < v->ncallers && idx == EMBER_NONE; i++)
        if ((pid_t)atomic_load(&v->callers[i].pid) == p) {
            idx = i;
            cgen = atomic_load(&v->callers[i].gen);
        }
    atomic_store(&c->killed, 1);
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    uint64_t t0 = now_ns(); /* dead: from here its supervisor may know it (its pidfd) */
    st.kills[1]++;
    if (idx != EMBER_NONE) { /* it had attached: its entry and slots come back */
        uint64_t until = t0 + 10 * RECLAIM_NS;
        bool told = false;
        while (caller_holds(v, idx, cgen, p) && now_ns() < until) {
            if (!told && now_ns() - t0 > RECLAIM_NS) {
                told = true;
                tell_held(v, idx, cgen, p);
            }
            pause_ns(200000);
        }
        uint64_t took = now_ns() - t0;
        if (took > st.reclaim_max) st.reclaim_max = took;
        if (took > RECLAIM_NS) {
            st.slow_reclaims++;
            fprintf(stderr, "ember-chaos: caller %d's slots came back after %.1f ms\n", (int)p, took / 1e6);
        }
    }
    fork_caller();
}

static int start_pool(void)
{
    int rc = ember_pool_start(&g_cfg, &g_pool);
    if (rc) fprintf(stderr, "ember-chaos: pool start: %s (%s)\n", ember_errname(rc), ember_last_error());
    else seen_add(ember_pool_supervisor_pid(g_pool));
    return rc;
}

static void kill_supervisor(void)
{
    struct ember__view *v = view();
    pid_t sup = ember_pool_supervisor_pid(g_pool);
    int fds[RUNNERS_CAND];
    unsigned nfd = 0;
    for (uint32_t i = 0; i < v->nrunners && nfd < RUNNERS_CAND; i++) {
        pid_t p = (pid_t)atomic_load(&v->runners[i].pid);
        int fd = p ? ember__pidfd_open(p) : -1;
        if (fd >= 0) fds[nfd++] = fd;
    }
    uint64_t t0 = now_ns();
    kill(sup, SIGKILL);
    waitpid(sup, NULL, 0); /* reaped at once: the name is free */
    st.kills[2]++;
    ember_pool_stop(g_pool, 0);
    g_pool = NULL;
    int rc = start_pool();
    if (rc) { /* the same name must start again at once; try on, for the run's sake */
        st.restart_failures++;
        uint64_t until = now_ns() + 5000000000ull;
        while (rc && now_ns() < until) {
            pause_ns(10000000);
            rc = start_pool();
        }
        if (rc) exit(2);
    }
    uint64_t took = now_ns() - t0;
    if (took > st.restart_max) st.restart_max = took;
    st.restarts++;
    memset(g_runner_pid, 0, sizeof g_runner_pid); /* the dead pool's runners die by its death */
    atomic_fetch_add(&g->pool_gen, 1);
    ember__futex_wake(&g->pool_gen, INT32_MAX);

    /* every caller attached to the dead pool is told so, its runners go */
    bool callers_ok = false, runners_ok = false;
    uint64_t until = t0 + DOWN_NS;
    for (;;) {
        uint64_t now = now_ns();
        if (!callers_ok) {
            callers_ok = true;
            for (uint32_t i = 0; i < atomic_load(&g_ninc); i++) {
                struct inc *c = &g_incs[i];
                if (live(c) && atomic_load(&c->att_sup) == (uint32_t)sup &&
                    atomic_load(&c->down_sup) != (uint32_t)sup)
                    callers_ok = false;
            }
            if (callers_ok && now - t0 > st.pooldown_max) st.pooldown_max = now - t0;
        }
        if (!runners_ok) {
            runners_ok = true;
            for (unsigned i = 0; i < nfd; i++)
                if (!ember__pidfd_dead(fds[i])) runners_ok = false;
            if (runners_ok && now - t0 > st.runners_gone_max) st.runners_gone_max = now - t0;
        }
        reap(true);
        if ((callers_ok && runners_ok) || now > until) break;
        pause_ns(200000);
    }
    if (!callers_ok) {
        st.pooldown_late++;
        fprintf(stderr, "ember-chaos: a caller of the dead pool had no EMBER_EPOOLDOWN within 1 s\n");
    }
    if (!runners_ok) {
        st.runners_late++;
        fprintf(stderr, "ember-chaos: a runner of the dead pool was alive 1 s after its supervisor died\n");
    }
    for (unsigned i = 0; i < nfd; i++) close(fds[i]);
}

/* Processes reparented to this one (a subreaper), not yet reaped. */
static unsigned children_left(bool report)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    unsigned count = 0;
    for (char *p = buf; *p;) {
        char *e;
        long pid = strtol(p, &e, 10);
        if (e == p) break;
        if (ember__proc_alive((pid_t)pid, 0)) {
            count++;
            if (report) fprintf(stderr, "ember-chaos: process %ld, reparented to this one, outlived the pool\n", pid);
        }
        p = e;
    }
    return count;
}

static uint64_t sum_inc(size_t off)
{
    uint64_t s = 0;
    for (uint32_t i = 0; i < atomic_load(&g_ninc); i++)
        s += atomic_load((_Atomic uint64_t *)((char *)&g_incs[i] + off));
    return s;
}
#define SUM(field) sum_inc(offsetof(struct inc, field))

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ember-chaos [--seconds S] [--callers K] [--kill-every MS]\n"
            "                   [--kill runners|callers|supervisor|mixed] [--runners N]\n"
            "                   [--deadline MS] [--slow F] [--seed N]\n"
            "K caller processes (default 8) call a pool of N runners (default 2) for S seconds\n"
            "(default 10): small and paged calls, casts, submits collected with ember_wait_any,\n"
            "short-deadline calls and place_child jobs, every result checked byte for byte,\n"
            "while every MS ms (default 50) a runner that has booted, a caller process (forked\n"
            "anew), the supervisor (the pool started again under its name) or any of them is\n"
            "SIGKILLed. Normal calls have a deadline of --deadline ms (default 5000).\n"
            "--slow F multiplies the time limits below (100 ms, 1 s) by F, for slow runs\n"
            "(valgrind). --seed N makes the kills and the load repeatable.\n"
            "Prints key value lines; exits 1 if any failure count is above 0:\n"
            "  calls             calls promising an outcome (call, submit, place_child), but\n"
            "                    those whose caller was killed before it (abandoned)\n"
            "  resolved_once     of those, the ones with exactly one outcome, in time\n"
            "  lost *            no outcome at all, or one later than deadline + 1 s\n"
            "  duplicated *      a handler run twice for one call or cast, or an outcome twice\n"
            "  wrong_results *   result bytes not the arguments, a result with no run, a code\n"
            "                    outside the error table, or an error the call cannot have\n"
            "  hung_callers *    callers not finishing a call within deadline + 1 s\n"
            "  caller_errors *   callers that failed on their own (attach, handlers)\n"
            "  leaked_slots *    slots not FREE once callers are gone and the pool settled\n"
            "  leaked_pages *    payload pages still owned then\n"
            "  leaked_callers *  caller entries still held then\n"
            "  orphan_processes * runner, supervisor or caller pids alive 1 s after the stop\n"
            "  slow_reclaims *   killed callers whose slots took over 100 ms to come back\n"
            "  pooldown_late *   supervisor kills not followed by EMBER_EPOOLDOWN within 1 s\n"
            "                    in every caller of the dead pool\n"
            "  runners_late *    supervisor kills after which a runner lived on over 1 s\n"
            "  restart_failures * restarts of the same name, right after the reap, that failed\n"
            "  supervisor_deaths * supervisors that died without this tool's kill\n"
            "  runner_failures * runners that ended otherwise than by SIGKILL or exit 0\n"
            "  final_call_failed * the pool did not serve one more call at the end\n"
            "  p50_us, p99_us    latency of the successful small and paged calls\n");
}

static int bad_value(const char *name, const char *arg)
{
    fprintf(stderr, "ember-chaos: --%s %s: not a valid value (--seconds > 0, --callers 1-200, "
                    "--kill-every > 0 ms, --runners 1-16, --deadline > 0 ms, --slow 1-1000, --seed a number)\n",
            name, arg);
    return -1;
}

/* Read option CH's value ARG into opt: 0, or -1 with the message printed. */
static int parse_one(int ch, const char *name, const char *arg)
{
    char *e = NULL;
    unsigned long u = 0;
    switch (ch) {
    case 's':
        opt.seconds = strtod(arg, &e);
        return *e || !(opt.seconds > 0) ? bad_value(name, arg) : 0;
    case 'K':
        if (!strcmp(arg, "runners")) opt.mode = M_RUNNERS;
        else if (!strcmp(arg, "callers")) opt.mode = M_CALLERS;
        else if (!strcmp(arg, "supervisor")) opt.mode = M_SUPERVISOR;
        else if (!strcmp(arg, "mixed")) opt.mode = M_MIXED;
        else {
            fprintf(stderr, "ember-chaos: --kill %s: say runners, callers, supervisor or mixed\n", arg);
            return -1;
        }
        return 0;
    default: break;
    }
    u = strtoul(arg, &e, 10);
    if (*e || !*arg) return bad_value(name, arg);
    switch (ch) {
    case 'c': opt.callers = (unsigned)u; return u < 1 || u > 200 ? bad_value(name, arg) : 0;
    case 'k': opt.kill_every_ms = (unsigned)u; return u < 1 ? bad_value(name, arg) : 0;
    case 'r': opt.runners = (unsigned)u; return u < 1 || u > 16 ? bad_value(name, arg) : 0;
    case 'd': opt.deadline_ns = u * 1000000ull; return u < 1 ? bad_value(name, arg) : 0;
    case 'W': opt.slow = (unsigned)u; return u < 1 || u > 1000 ? bad_value(name, arg) : 0;
    default: opt.seed = (unsigned)u; return 0;
    }
}

static int parse(int argc, char **argv)
{
    static const struct option lo[] = {
        { "seconds", 1, 0, 's' }, { "callers", 1, 0, 'c' }, { "kill-every", 1, 0, 'k' },
        { "kill", 1, 0, 'K' },    { "runners", 1, 0, 'r' }, { "deadline", 1, 0, 'd' },
        { "seed", 1, 0, 'S' },    { "slow", 1, 0, 'W' },    { "help", 0, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    int ch, li = 0;
    opt.seed = (unsigned)getpid();
    while ((ch = getopt_long(argc, argv, "", lo, &li)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            exit(0);
        }
        if (ch == '?' || ch == ':') {
            usage(stderr);
            return -1;
        }
        if (parse_one(ch, lo[li].name, optarg)) return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "ember-chaos: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    return 0;
}

static void *shared(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        perror("ember-chaos: mmap of the shared records");
        exit(2);
    }
    return p;
}

/* The kills, every kill_every ms, until the end of the run. */
static void run(void)
{
    uint64_t end = now_ns() + (uint64_t)(opt.seconds * 1e9);
    uint64_t every = opt.kill_every_ms * 1000000ull, next = now_ns() + every;
    for (uint64_t now = now_ns(); now < end; now = now_ns()) {
        uint64_t wake = next < now + 10000000ull ? next : now + 10000000ull;
        if (wake > end) wake = end;
        if (wake > now) pause_ns(wake - now); /* the schedule's pace, not a wait for a state */
        reap(true);
        note_runners();
        watchdog();
        if (now_ns() < next || now_ns() >= end) continue;
        int m = opt.mode;
        if (m == M_MIXED) {
            unsigned r = rnd(100);
            m = r < 70 ? M_RUNNERS : r < 95 ? M_CALLERS : M_SUPERVISOR;
        }
        if (m == M_RUNNERS) kill_runner();
        else if (m == M_CALLERS) kill_caller();
        else kill_supervisor();
        next = now_ns() + every;
    }
}

/* Stop the callers: each finishes its call and exits, within its deadline
 * + 1 s, or it hangs (and is killed). */
static void stop_callers(void)
{
    atomic_store(&g->stop, 1);
    atomic_fetch_add(&g->pool_gen, 1);
    ember__futex_wake(&g->pool_gen, INT32_MAX);
    /* the longest call: a child's place and run (deadline + 3 ms) */
    uint64_t until = now_ns() + opt.deadline_ns + 3000000ull + GRACE_NS;
    for (;;) {
        reap(false);
        unsigned left = 0;
        for (uint32_t i = 0; i < atomic_load(&g_ninc); i++)
            left += live(&g_incs[i]);
        if (!left || now_ns() > until) break;
        pause_ns(1000000);
    }
    for (uint32_t i = 0; i < atomic_load(&g_ninc); i++) {
        struct inc *c = &g_incs[i];
        if (!live(c)) continue;
        pid_t p = (pid_t)c->pid;
        fprintf(stderr, "ember-chaos: caller %d did not finish its last call (%llu) in time\n", (int)p,
                (unsigned long long)atomic_load(&c->cur_id1) - 1);
        if (!c->hung) st.hung++;
        atomic_store(&c->hung, 1);
        atomic_store(&c->killed, 1); /* not by the chaos: its calls count as lost */
        kill(p, SIGKILL);
        waitpid(p, NULL, 0);
    }
}

struct leaks { unsigned slots, pages, callers; };

static struct leaks count_leaks(void)
{
    struct ember__view *v = view();
    struct leaks l = { 0, 0, 0 };
    for (uint32_t i = 0; i < v->nslots; i++)
        l.slots += ember__st(atomic_load(&v->slots[i].state)) != EMBER_SLOT_FREE;
    ember__pages_lock(v);
    for (uint32_t i = 0; i < v->npages; i++) l.pages += v->page_owner[i] != 0;
    ember__pages_unlock(v);
    for (uint32_t i = 0; i < v->ncallers; i++) l.callers += atomic_load(&v->callers[i].pid) != 0;
    return l;
}

/* Once the callers are gone, the pool comes back to rest on its own (the
 * supervisor reaps the last killed callers and frees what they held):
 * polled, for at most 5 s. */
static struct leaks settle(void)
{
    uint64_t until = now_ns() + 5000000000ull * opt.slow;
    struct leaks l = count_leaks();
    while ((l.slots || l.pages || l.callers) && now_ns() < until) {
        pause_ns(5000000);
        l = count_leaks();
    }
    return l;
}

static int final_call(void)
{
    ember_client *c;
    int rc = ember_attach(g_name, &c);
    if (rc) return rc;
    ember_result r;
    uint64_t x = 42;
    rc = ember_call(c, ember_handler(c, "echo"), &x, sizeof x, &r, (int64_t)opt.deadline_ns);
    if (rc == 0 && (r.len != sizeof x || memcmp(r.data, &x, sizeof x))) rc = -EMBER_ECORRUPT;
    ember_result_release(c, &r);
    ember_detach(c);
    return rc;
}

/* After the stop: every runner, supervisor and caller pid seen must be
 * gone, and nothing reparented to us alive; waited for, at most 1 s. */
static unsigned orphans(void)
{
    uint64_t until = now_ns() + DOWN_NS;
    unsigned n;
    for (;;) {
        reap(false);
        n = children_left(false);
        for (size_t i = 0; i < g_nseen; i++) n += ember__proc_alive(g_seen[i].pid, g_seen[i].start);
        if (!n || now_ns() > until) break;
        pause_ns(5000000);
    }
    if (n) children_left(true);
    for (size_t i = 0; i < g_nseen; i++)
        if (ember__proc_alive(g_seen[i].pid, g_seen[i].start)) {
            fprintf(stderr, "ember-chaos: process %d outlived the pool\n", (int)g_seen[i].pid);
            kill(g_seen[i].pid, SIGKILL);
        }
    reap(false);
    return n;
}

int main(int argc, char **argv)
{
    if (parse(argc, argv)) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    prctl(PR_SET_CHILD_SUBREAPER, 1); /* a dead supervisor's runners come to us: we see orphans */
    signal(SIGPIPE, SIG_IGN);

    g = shared(sizeof *g);
    g->id_cap = (uint64_t)(opt.seconds * 300000) + 1000000;
    g->inc_cap = opt.callers + (uint32_t)(opt.seconds * 1000 / opt.kill_every_ms) + 64;
    g_ids = shared(g->id_cap * sizeof *g_ids);
    g_incs = shared((size_t)g->inc_cap * sizeof *g_incs);

    if (ember_handler_register("cwork", h_work) || ember_handler_register("cwait", h_wait)) {
        fprintf(stderr, "ember-chaos: handler registration: %s\n", ember_last_error());
        return 2;
    }
    snprintf(g_name, sizeof g_name, "chaos-%d", (int)getpid());
    ember_pool_config_init(&g_cfg);
    g_cfg.name = g_name;
    g_cfg.min = g_cfg.max = opt.runners;
    g_cfg.max_concurrency = 2;
    g_cfg.queue_capacity = 1024;
    g_cfg.max_payload = 256 * 1024;
    g_cfg.payload_space = 16 * 1024 * 1024;
    g_cfg.timeout_ns = (int64_t)opt.deadline_ns;
    g_cfg.shutdown_timeout_ns = 2000000000ll;
    if (start_pool()) return 2;
    int rc = ember_pool_wait_ready(g_pool, opt.runners, 30000000000ll);
    if (rc) {
        fprintf(stderr, "ember-chaos: runners not ready: %s (%s)\n", ember_errname(rc), ember_last_error());
        ember_pool_stop(g_pool, 0);
        return 2;
    }
    const char *backend = ember_pool_backend(g_pool);
    char be[16];
    snprintf(be, sizeof be, "%s", backend);
    for (unsigned i = 0; i < opt.callers; i++) fork_caller();

    uint64_t t0 = now_ns();
    run();
    stop_callers();
    double secs = (now_ns() - t0) / 1e9;
    struct leaks l = settle();
    rc = final_call();
    if (rc) fprintf(stderr, "ember-chaos: the last call failed: %s (%s)\n", ember_errname(rc), ember_last_error());
    note_runners();
    ember_pool_stop(g_pool, 2000000000ll);
    g_pool = NULL;
    unsigned orph = orphans();

    /* the records, by id */
    uint64_t n = atomic_load(&g->next_id);
    if (n > g->id_cap) n = g->id_cap;
    uint64_t calls = 0, once = 0, lost = 0, dup = 0, wrong = 0, abandoned = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct idrec *d = &g_ids[i];
        unsigned runs = d->runs, res = d->resolved, kind = d->kind, flags = d->flags;
        if (runs > 1 || res > 1) dup++;
        if (flags & F_WRONG) wrong++;
        if (kind == K_CAST) continue;
        /* kind 0: an id taken by a caller killed before it wrote the
         * record (a call never made) */
        if (!kind || (!res && g_incs[d->inc].killed && !g_incs[d->inc].hung)) {
            abandoned++;
            continue;
        }
        calls++;
        if (res == 1 && !(flags & F_LATE)) once++;
        if (!res || (flags & F_LATE)) {
            if (lost++ < 10) {
                struct inc *c = &g_incs[d->inc];
                fprintf(stderr, "ember-chaos: call %llu (kind %u) of caller %u (pid %u%s%s) lost: %s, "
                        "%u handler runs\n", (unsigned long long)i, kind, (unsigned)d->inc,
                        (unsigned)c->pid, c->killed ? ", killed" : "", c->hung ? ", hung" : "",
                        res ? "its outcome came late" : "no outcome", runs);
            }
        }
    }
    uint64_t hist[HBUCKETS] = { 0 }, nh = 0;
    for (uint32_t i = 0; i < atomic_load(&g_ninc); i++)
        for (unsigned b = 0; b < HBUCKETS; b++) {
            hist[b] += g_incs[i].hist[b];
            nh += g_incs[i].hist[b];
        }
    uint64_t p50 = 0, p99 = 0, acc = 0;
    for (unsigned b = 0; b < HBUCKETS && nh; b++) {
        if (acc < nh / 2 && acc + hist[b] >= nh / 2) p50 = hbucket_top(b);
        if (acc < nh - nh / 100 && acc + hist[b] >= nh - nh / 100) p99 = hbucket_top(b);
        acc += hist[b];
    }
    static const char *modes[] = { "runners", "callers", "supervisor", "mixed" };
    printf("backend %s\nkill %s\nseconds %.1f\ncallers %u\nkill_every_ms %u\n", be, modes[opt.mode], secs,
           opt.callers, opt.kill_every_ms);
    printf("calls %llu\nresolved_once %llu\n", (unsigned long long)calls, (unsigned long long)once);
    printf("calls_per_s %.0f\n", calls / secs);
    struct { const char *k; uint64_t v; } fails[] = {
        { "lost", lost },
        { "duplicated", dup },
        { "wrong_results", wrong + SUM(foreign) },
        { "hung_callers", st.hung },
        { "caller_errors", st.caller_errors },
        { "leaked_slots", l.slots },
        { "leaked_pages", l.pages },
        { "leaked_callers", l.callers },
        { "orphan_processes", orph },
        { "slow_reclaims", st.slow_reclaims },
        { "pooldown_late", st.pooldown_late },
        { "runners_late", st.runners_late },
        { "restart_failures", st.restart_failures },
        { "supervisor_deaths", st.sup_deaths },
        { "runner_failures", st.runner_failures },
        { "final_call_failed", rc != 0 },
    };
    uint64_t failed = 0;
    for (size_t i = 0; i < sizeof fails / sizeof fails[0]; i++) {
        printf("%s %llu\n", fails[i].k, (unsigned long long)fails[i].v);
        failed += fails[i].v;
    }
    printf("p50_us %llu\np99_us %llu\n", (unsigned long long)p50, (unsigned long long)p99);
    printf("casts %llu\nchildren %llu\ntimeouts %llu\ncrashed %llu\npooldown %llu\ncancelled %llu\n"
           "abandoned %llu\n",
           (unsigned long long)SUM(casts), (unsigned long long)SUM(children), (unsigned long long)SUM(timeouts),
           (unsigned long long)SUM(crashed), (unsigned long long)SUM(pooldown),
           (unsigned long long)SUM(cancelled), (unsigned long long)abandoned);
    printf("kills_runners %llu\nkills_callers %llu\nkills_supervisor %llu\nrestarts %llu\n",
           (unsigned long long)st.kills[0], (unsigned long long)st.kills[1], (unsigned long long)st.kills[2],
           (unsigned long long)st.restarts);
    printf("reclaim_max_ms %.1f\npooldown_max_ms %.1f\nrunners_gone_max_ms %.1f\nrestart_max_ms %.1f\n",
           st.reclaim_max / 1e6, st.pooldown_max / 1e6, st.runners_gone_max / 1e6, st.restart_max / 1e6);
    printf("result %s\n", failed ? "FAIL" : "ok");
    return failed ? 1 : 0;
}
