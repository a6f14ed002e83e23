/* supervisor/runners.c - the runners' lives as the supervisor sees them:
 * where the next one goes, its fork and pidfd, and, when its pidfd fires,
 * failing exactly the calls it held and reporting why it ended. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "runner/runner.h"
#include "supervisor/sup.h"

/* Where the next runner goes (placement.h): its node (ring) and, with
 * placement core, its core; written into entry RE before its fork. Returns
 * false when no node has room (every core taken by draining runners). */
_Static_assert(sizeof(unsigned long) == sizeof(uint64_t), "cpuset words are hwloc's ulongs");
static bool place_runner(struct sup *s, struct ember_runner_ent *re, const uint32_t *demand,
                         int *place_out)
{
    struct ember__view *v = s->v;
    const struct ember__placement *pl = ember__plan;
    memset(re->cpuset, 0, sizeof re->cpuset);
    re->ring = 0;
    re->node = -1;
    *place_out = -1;
    if (!pl) return true;
    unsigned live[EMBER_MAX_RINGS] = { 0 };
    bool *used = pl->nplaces ? calloc(pl->nplaces, sizeof *used) : NULL;
    for (uint32_t r = 0; r < v->nrunners; r++) {
        struct ember_runner_ent *o = &v->runners[r];
        if (o == re || s->runners[r].pidfd < 0) continue;
        uint32_t st = atomic_load(&o->state);
        if ((st == EMBER_RUNNER_BOOTING || st == EMBER_RUNNER_READY) && o->ring < pl->nnodes)
            live[o->ring]++;
        if (used && s->runners[r].place >= 0) used[s->runners[r].place] = true; /* draining too */
    }
    int place = -1;
    int node = ember__placement_pick(pl, atomic_load(&v->hdr->max), live, demand, used, &place);
    free(used);
    if (node < 0) return false;
    re->ring = (uint32_t)node;
    re->node = pl->node[node].os_index; /* -1 with placement none */
    hwloc_const_bitmap_t set = place >= 0 ? pl->places[place].cpuset
                             : pl->mode == EMBER_PLACEMENT_NONE ? NULL : pl->node[node].cpuset;
    for (unsigned w = 0; set && w < EMBER_CPUSET_WORDS; w++)
        re->cpuset[w] = hwloc_bitmap_to_ith_ulong(set, w);
    *place_out = place;
    return true;
}

/* Re-push every QUEUED slot that is not in the run ring and every FREE slot
 * not in the free ring: a process killed between taking an entry from a
 * ring and moving its slot leaves one such orphan. Duplicates this may make
 * (of entries being moved right now by live processes) are dropped by the
 * slot-state check of whoever pops them. Then repair the page table; runs
 * it had to leave (their slot was held) are looked at again at the next
 * housekeeping ticks (sup_repair_pages). */
void sup_sweep_orphans(struct sup *s)
{
    struct ember__view *v = s->v;
    uint8_t *in = calloc(v->nslots, 1);
    if (!in) return;
    for (uint32_t k = 0; k <= v->nrings; k++) { /* the run rings, then the free ring */
        struct ember__ring *r = k < v->nrings ? &v->run[k] : &v->free;
        uint8_t bit = k < v->nrings ? 1 : 2;
        uint64_t head = atomic_load(&r->h->head), tail = atomic_load(&r->h->tail);
        for (uint64_t p = head; p <= tail + 1 && p < head + r->cap; p++) {
            uint32_t e;
            if (sup_ring_entry(v, atomic_load(&r->cell[p & r->mask]), p, &e)) in[e & 0xffffu] |= bit;
        }
    }
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint32_t w = atomic_load(&v->slots[i].state);
        if (ember__st(w) == EMBER_SLOT_QUEUED && !(in[i] & 1)) /* any node's runner steals it */
            ember__ring_push(&v->run[0], ember__entry(i, ember__gen(w)));
        if (ember__st(w) == EMBER_SLOT_FREE && !(in[i] & 2))
            ember__ring_push(&v->free, ember__entry(i, ember__gen(w)));
    }
    free(in);
    s->pages_left = true;
    sup_repair_pages(s);
}

void sup_repair_pages(struct sup *s)
{
    if (!s->pages_left) return;
    ember__pages_lock(s->v);
    s->pages_left = ember__pages_repair_locked(s->v) != 0;
    ember__pages_unlock(s->v);
}

/* Take runner R's dead threads out of the shared counters (see
 * src/runner/worker.c for why the result can only be below the truth). */
static void release_worker_counts(struct ember__view *v, uint32_t r)
{
    struct ember_runner_ent *re = &v->runners[r];
    for (uint32_t t = 0; t < v->max_conc; t++) {
        struct ember_worker_ent *we = &v->workers[r * v->max_conc + t];
        uint32_t ws = atomic_exchange(&we->park, EMBER_WORKER_ACTIVE);
        /* busy stays: it tells fail_held_calls which calls were taken,
         * which clears it with the names */
        if (ws == EMBER_WORKER_SPINNING) {
            atomic_fetch_sub(&v->hdr->spin, EMBER_SPIN_IDLE);
            if (v->nrings > 1 && re->ring < v->nrings) atomic_fetch_sub(&v->run[re->ring].h->spinners, 1);
        } else if (ws == EMBER_WORKER_PARKED || ws == EMBER_WORKER_WOKEN) {
            atomic_fetch_sub(&v->hdr->nparked, 1);
        }
    }
}

/* Kill the process groups dead runner R's jobs left running
 * (ember_job_watch_pgid): a command its handler started does not outlive
 * it. The runner is dead, so nothing writes the words any more. */
static void kill_job_groups(struct ember__view *v, uint32_t r)
{
    for (uint32_t t = 0; t < v->max_conc; t++) {
        int32_t pg = atomic_exchange(&v->workers[r * v->max_conc + t].job_pgid, 0);
        if (pg > 0) {
            sup_log(2, "runner %u died while its job's process group %d ran: killed", r, (int)pg);
            kill(-pg, SIGKILL);
        }
    }
}

/* The status of a call runner R of generation GEN held when it died
 * (SIG, STATUS), by why the supervisor killed it; *KILLED: that call was
 * the reason (overdue or cancelled). */
static int held_call_code(const struct sup_runner *sr, const struct ember_slot *sl, uint32_t w,
                          uint64_t now, int sig, int status, int *detail, bool *killed)
{
    *killed = false;
    *detail = sig ? sig : EMBER_CRASH_EXIT + (status & 0xff); /* client.h */
    switch (sr->kill_why) {
    case KILL_OVERDUE: {
        /* the overdue calls are killed; the others were lost with them
         * (an abandoned one is freed: nobody collects it) */
        bool late = now >= sl->deadline_ns;
        bool cancelled = (w & EMBER_SLOT_CANCEL) || ember__st(w) == EMBER_SLOT_ABANDONED;
        *detail = late ? EMBER_TIMEOUT_RUNNING : cancelled ? 1 : 0;
        *killed = late || cancelled;
        return late ? -EMBER_ETIMEDOUT : cancelled ? -EMBER_ECANCELLED : -EMBER_ERUNNERLOST;
    }
    case KILL_STOP: /* every call it still ran is one the stop killed */
        *detail = EMBER_DOWN_KILLED;
        *killed = true;
        return -EMBER_EPOOLDOWN;
    case KILL_UNWATCHED:
        *detail = 0;
        return -EMBER_ERUNNERLOST;
    default:
        return sr->oom ? -EMBER_EOOM : -EMBER_ECRASHED;
    }
}

/* Retries and quarantine: CODE is what call IDX (word W), held by a runner
 * that died, would end with. A crash counts against the pool's
 * poison_after, and the call that reaches it ends with EMBER_EPOISON
 * instead (*CODE). A crashed or lost call with retries left goes back to
 * QUEUED (returns true), in the same generation: its owner waits on the
 * same word, and WAITER rides along with the other sticky bits, so the DONE
 * of its next runner wakes it; nobody else acts on it meanwhile (its runner
 * is dead, S1 in detail/slot.h). Never a call past its deadline, cancelled,
 * abandoned, a child, or one whose runner had written its receipt (it was
 * writing the result over the inline arguments). */
static bool retry_call(struct sup *s, uint32_t idx, uint32_t w, uint64_t now, int *code)
{
    struct ember__view *v = s->v;
    struct ember_slot *sl = &v->slots[idx];
    uint32_t fl = sl->flags;
    if (*code == -EMBER_ECRASHED || *code == -EMBER_EOOM) { /* an OOM kill is a crash too */
        uint32_t crashes = (fl & EMBER_CALL_CRASH_MASK) >> EMBER_CALL_CRASH_SHIFT;
        crashes += crashes < 15;
        fl = (fl & ~EMBER_CALL_CRASH_MASK) | crashes << EMBER_CALL_CRASH_SHIFT;
        sl->flags = (uint16_t)fl;
        if (crashes >= s->cfg->poison_after) {
            *code = -EMBER_EPOISON;
            atomic_fetch_add(&v->hdr->calls_poisoned, 1);
            return false;
        }
    } else if (*code != -EMBER_ERUNNERLOST) {
        return false;
    }
    if (!(fl & EMBER_CALL_RETRY_MASK) || (fl & EMBER_CALL_CHILD) || now >= sl->deadline_ns ||
        sl->runner != EMBER_SLOT_NO_RUNNER)
        return false;
    uint32_t rp = sl->res_page; /* a result begun in pages */
    if (rp != EMBER_NONE && rp != sl->args_page) ember__pages_free(v, idx, rp);
    sl->res_page = EMBER_NONE;
    sl->res_len = 0;
    sl->flags = (uint16_t)(fl - (1u << EMBER_CALL_RETRY_SHIFT));
    /* counted before the call can end again (ember_stats) */
    atomic_fetch_add(&v->hdr->calls_retried, 1);
    /* the fields above before QUEUED (release): the next runner reads them
     * after its take (acquire) */
    const uint32_t gen = ember__gen(w);
    for (;;) {
        if (ember__st(w) != EMBER_SLOT_RUNNING || ember__gen(w) != gen || (w & EMBER_SLOT_CANCEL)) {
            atomic_fetch_sub(&v->hdr->calls_retried, 1);
            return false;
        }
        uint32_t nw = ember__mk(ember__gen(w), EMBER_SLOT_QUEUED) | (w & EMBER_SLOT_STICKY);
        if (atomic_compare_exchange_strong_explicit(&sl->state, &w, nw, memory_order_acq_rel,
                                                    memory_order_acquire))
            break;
    }
    /* any node's runner takes it (a full ring: the sweep after this death
     * pushes it) */
    ember__ring_push(&v->run[0], ember__entry(idx, gen));
    ember__wake_runner(v, 0);
    sup_log(2, "call %u: its runner died, queued again (%u retries left)", idx,
            (uint32_t)((sl->flags & EMBER_CALL_RETRY_MASK) >> EMBER_CALL_RETRY_SHIFT));
    return true;
}

/* How the workers of live runners (not reaped: a dead one's pidfd is -1
 * from its reap on) name entry E. A worker announces an entry before its
 * take, sets busy after the take, clears busy after the result and only
 * then its name (src/runner/worker.c, release stores, which these acquire
 * loads pair with: a name seen gone means its DONE is seen too, and busy
 * seen set with the name means the take of that very entry). */
enum { NAMED_NOT = 0, NAMED_ONLY, NAMED_RUNNING };
static int named_live(const struct sup *s, uint32_t e)
{
    const struct ember__view *v = s->v;
    int n = NAMED_NOT;
    for (uint32_t o = 0; o < v->nrunners; o++) {
        if (s->runners[o].pidfd < 0) continue;
        for (uint32_t t = 0; t < v->max_conc; t++) {
            struct ember_worker_ent *we = &v->workers[o * v->max_conc + t];
            if (atomic_load_explicit(&we->current, memory_order_acquire) != e) continue;
            if (atomic_load_explicit(&we->busy, memory_order_acquire)) return NAMED_RUNNING;
            n = NAMED_ONLY;
        }
    }
    return n;
}

/* Slot I's word if it is still the call of word W (RUNNING or ABANDONED in
 * its generation; flags may have changed), else 0. */
static uint32_t still_running(const struct ember__view *v, uint32_t i, uint32_t w)
{
    uint32_t now = atomic_load_explicit(&v->slots[i].state, memory_order_acquire);
    uint32_t st = ember__st(now);
    return ember__gen(now) == ember__gen(w) && (st == EMBER_SLOT_RUNNING || st == EMBER_SLOT_ABANDONED)
               ? now : 0;
}

/* End call I (word W), held by dead runner R of generation GEN as SR
 * describes it (its death: SIG, STATUS): run again if it may, else
 * finished with the cause. What s->unsure held for the slot goes: the
 * call is decided. Returns whether it failed; *KILLED: it was the reason
 * R was killed. */
static bool fail_held_call(struct sup *s, const struct sup_runner *sr, uint32_t r, uint32_t gen,
                           uint32_t i, uint32_t w, int sig, int status, bool *killed)
{
    struct ember__view *v = s->v;
    struct ember_slot *sl = &v->slots[i];
    for (uint32_t k = 0; k < s->nunsure; k++)
        if (s->unsure[k].slot == i) s->unsure[k].slot = EMBER_NONE;
    /* a run it allocated and had not recorded yet: nobody else frees it
     * (repair leaves a held slot's runs alone) */
    ember__pages_drop_unnamed(v, i);
    int detail;
    int code = held_call_code(sr, sl, w, ember__now_ns(), sig, status, &detail, killed);
    if (retry_call(s, i, w, ember__now_ns(), &code)) return false; /* not failed: queued again */
    if (sl->runner == EMBER_SLOT_NO_RUNNER) sl->t_start_ns = 0; /* no receipt: it held the queueing time */
    sl->runner = (uint16_t)r;
    sl->runner_gen = (uint16_t)gen;
    return sup_finish(v, i, w, code, detail);
}

/* Fail exactly the calls dead runner R held: each of its threads announces
 * the entry it takes in its own line before taking it, and clears it after
 * the result is out. Returns how many failed; *KILLED of them were the
 * reason it was killed.
 *
 * An announcement alone does not prove the take: a second entry of a
 * QUEUED call (the orphan sweep pushes one for a slot between its owner's
 * QUEUED store and push, or between a worker's pop and take) lets two
 * workers announce the same call, and only one take wins. The slot does
 * not say which (the taker leaves its line alone until the result), but
 * the workers' busy flags do once set: R's set means R took it; a live
 * worker's set means that one runs it, and R only named it. With neither,
 * the call goes on s->unsure and is decided by sup_settle_unsure: the
 * loser drops its name right after its failed take, the winner sets busy
 * soon after its own. Failing it at once would end, or run a second time
 * beside itself, a call the live worker is running. */
static unsigned fail_held_calls(struct sup *s, uint32_t r, uint32_t gen, int sig, int status,
                                unsigned *killed)
{
    struct ember__view *v = s->v;
    unsigned failed = 0;
    *killed = 0;
    for (uint32_t i = 0; i < v->nslots; i++) {
        struct ember_slot *sl = &v->slots[i];
        uint32_t w = atomic_load_explicit(&sl->state, memory_order_acquire);
        uint32_t st = ember__st(w);
        if (st != EMBER_SLOT_RUNNING && st != EMBER_SLOT_ABANDONED) continue;
        uint32_t e = ember__entry(i, ember__gen(w));
        bool held = false, took = false;
        for (uint32_t t = 0; !held && t < v->max_conc; t++) {
            struct ember_worker_ent *we = &v->workers[r * v->max_conc + t];
            held = atomic_load(&we->current) == e;
            took = held && atomic_load(&we->busy);
        }
        if (!held) continue;
        int n = took ? NAMED_NOT : named_live(s, e);
        if (n == NAMED_RUNNING) {
            sup_log(2, "call %u: runner %u died naming it, and a live runner runs it", i, r);
            continue;
        }
        if (n == NAMED_ONLY) {
            struct sup_unsure *u = s->nunsure < s->unsure_cap ? &s->unsure[s->nunsure] : NULL;
            if (!u) {
                uint32_t cap = s->unsure_cap ? 2 * s->unsure_cap : 8;
                struct sup_unsure *nu = realloc(s->unsure, cap * sizeof *nu);
                if (nu) s->unsure = nu, s->unsure_cap = cap, u = &s->unsure[s->nunsure];
            }
            if (u) { /* without memory the repair look ends it (EMBER_ECORRUPT) */
                *u = (struct sup_unsure){ .slot = i, .w = w, .r = r, .gen = gen, .sig = sig,
                                          .status = status, .since = ember__now_ns(),
                                          .who = s->runners[r] };
                s->nunsure++;
            }
            sup_log(2, "call %u: runner %u died naming it, as a live runner does: decided later", i, r);
            continue;
        }
        /* nobody alive names it: R's, unless a live winner ended it and
         * dropped its name since the word was read */
        if (!took && !(w = still_running(v, i, w))) continue;
        bool k;
        if (fail_held_call(s, &s->runners[r], r, gen, i, w, sig, status, &k)) {
            failed++;
            *killed += k;
        }
    }
    for (uint32_t t = 0; t < v->max_conc; t++) {
        atomic_store(&v->workers[r * v->max_conc + t].current, EMBER_NONE);
        atomic_store(&v->workers[r * v->max_conc + t].busy, 0);
    }
    return failed;
}

void sup_settle_unsure(struct sup *s)
{
    struct ember__view *v = s->v;
    uint64_t now = ember__now_ns();
    uint32_t left = 0;
    for (uint32_t k = 0; k < s->nunsure; k++) {
        struct sup_unsure u = s->unsure[k];
        if (u.slot == EMBER_NONE) continue; /* decided meanwhile */
        /* moved on: its live runner ran it to the end, or it was ended */
        uint32_t w = still_running(v, u.slot, u.w);
        if (!w) continue;
        int n = named_live(s, ember__entry(u.slot, ember__gen(w)));
        if (n == NAMED_RUNNING) continue; /* the live one took it: its own end decides */
        /* a name that has not turned into a take for EMBER__UNSURE_NS is
         * no winner's: a stray write, or a loser stopped between its
         * announce and its take (which then fails, or, if the call is
         * queued again, is a take like any other) */
        if (n == NAMED_ONLY && now - u.since < EMBER__UNSURE_NS) {
            s->unsure[left++] = u;
            continue;
        }
        if (!(w = still_running(v, u.slot, w))) continue;
        bool killed;
        if (fail_held_call(s, &u.who, u.r, u.gen, u.slot, w, u.sig, u.status, &killed)) {
            atomic_fetch_add(&v->hdr->calls_crashed, !killed);
            atomic_fetch_add(&v->hdr->calls_killed, killed);
        }
        sup_log(2, "call %u: no live runner took it: it was runner %u's, which died", u.slot, u.r);
    }
    s->nunsure = left;
}

/* -- The crash-loop breaker ---------------------------------------------
 * A runner that was up (READY, or DRAINING: single_use drains at its only
 * call), died on its own while it ran a call (not a child) and had finished
 * none is one more in a row (s->early_crashes); any runner's first finished
 * call ends the row (sup_runner_proven, from evaluate.c). At
 * EMBER__CRASH_LOOP_RUNNERS in a row the breaker trips as it does after
 * failed boots: at least EMBER__BREAKER_FAILURES failures, their backoff,
 * one probe at a time, and while no runner is ready calls fail with
 * EMBER_EBOOT and this cause. A probe that comes up does not close it (a
 * failed boot's would): its first finished call does, as any runner's first
 * finished call ends a row of failed boots too. */

uint64_t sup_runner_jobs(const struct ember__view *v, uint32_t r)
{
    uint64_t n = 0;
    for (uint32_t t = 0; t < v->max_conc; t++)
        n += atomic_load_explicit(&v->workers[r * v->max_conc + t].jobs_done, memory_order_relaxed);
    return n;
}

void sup_runner_proven(struct sup *s, uint32_t r)
{
    s->runners[r].proven = true;
    if (s->early_crashes >= EMBER__CRASH_LOOP_RUNNERS)
        sup_log(1, "runner %u finished a call: the crash loop is over", r);
    /* boots work, whatever failed before (also a runner that finished a
     * call before it said READY); boot_broken is recomputed after the plan */
    s->failures = 0;
    s->early_crashes = 0;
}

/* Does dead runner R hold a call (not a child)? */
static bool holds_call(const struct ember__view *v, uint32_t r)
{
    for (uint32_t t = 0; t < v->max_conc; t++) {
        uint32_t e = atomic_load(&v->workers[r * v->max_conc + t].current);
        if (e == EMBER_NONE || (e & 0xffffu) >= v->nslots) continue;
        const struct ember_slot *sl = &v->slots[e & 0xffffu];
        uint32_t w = atomic_load_explicit(&sl->state, memory_order_acquire);
        /* busy: it took the call (a name alone may be a lost take's) */
        if (ember__gen(w) == e >> 16 && ember__st(w) == EMBER_SLOT_RUNNING &&
            atomic_load(&v->workers[r * v->max_conc + t].busy) && !(sl->flags & EMBER_CALL_CHILD))
            return true;
    }
    return false;
}

/* Runner R, which was WAS, ended with SIG or STATUS: one more in a crash
 * loop? Called before its calls are ended, so that a caller that sees its
 * call crash also sees the breaker open. */
static void count_crash_loop(struct sup *s, uint32_t r, uint32_t was, int sig, int status)
{
    struct sup_runner *sr = &s->runners[r];
    struct ember__view *v = s->v;
    /* a call another runner finished since the last look ends the row first */
    for (uint32_t o = 0; o < v->nrunners; o++)
        if ((o == r || s->runners[o].pidfd >= 0) && !s->runners[o].proven &&
            sup_runner_jobs(v, o) != s->runners[o].jobs_base)
            sup_runner_proven(s, o);
    if (sr->kill_why || (!sig && !status) || was == EMBER_RUNNER_BOOTING || sr->proven ||
        !holds_call(v, r))
        return;
    if (++s->early_crashes < EMBER__CRASH_LOOP_RUNNERS) return;
    struct ember_shm_header *h = v->hdr;
    s->failures = s->failures < EMBER__BREAKER_FAILURES ? EMBER__BREAKER_FAILURES : s->failures + 1;
    s->retry_at = ember__now_ns() + ember__policy_backoff(s->failures);
    h->boot_fail_status = status;
    h->boot_fail_signal = sig;
    snprintf(h->boot_fail_msg, sizeof h->boot_fail_msg,
             "crash loop: %u runners in a row died on their first call", s->early_crashes);
    atomic_store(&h->boot_retry_ns, s->retry_at);
    atomic_store(&h->boot_broken, s->failures); /* before the calls end (seq_cst) */
    sup_error("runner %u died on its first call, %u in a row: crash loop, no boot for %llu ms", r,
               s->early_crashes, (unsigned long long)(ember__policy_backoff(s->failures) / 1000000));
}

/* Publish why runner R ended: a failed boot (it never became ready, or
 * could not be watched), or a shrink with its reason. */
static void report_runner_end(struct sup *s, uint32_t r, uint32_t was, uint32_t why, int sig,
                              int status, unsigned failed)
{
    struct sup_runner *sr = &s->runners[r];
    struct ember_runner_ent *re = &s->v->runners[r];
    if (was == EMBER_RUNNER_BOOTING || sr->kill_why == KILL_UNWATCHED) {
        char msg[sizeof re->msg];
        memcpy(msg, re->msg, sizeof msg);
        msg[sizeof msg - 1] = 0;
        if (sr->kill_why == KILL_BOOT_TIMEOUT)
            snprintf(msg, sizeof msg, "not ready after boot_timeout (%lld ms)",
                     (long long)(s->cfg->boot_timeout_ns / 1000000));
        else if (sr->kill_why == KILL_UNWATCHED)
            snprintf(msg, sizeof msg, "the supervisor could not watch it: %s", strerror(sr->watch_err));
        bool timeout = sr->kill_why == KILL_BOOT_TIMEOUT;
        sup_boot_failed(s, r, timeout ? EMBER_WHY_BOOT_TIMEOUT : EMBER_WHY_BOOT_FAILED, status,
                    timeout || sr->kill_why == KILL_UNWATCHED ? 0 : sig, msg);
        return;
    }
    uint32_t reason = sr->kill_why == KILL_OVERDUE ? (sr->overdue_cancel ? EMBER_WHY_CANCEL
                                                                        : EMBER_WHY_DEADLINE)
                    : sr->kill_why == KILL_STOP    ? EMBER_WHY_STOP
                    : was == EMBER_RUNNER_DRAINING && !sig && !status ? why
                                                                       : EMBER_WHY_CRASH;
    /* a runner that ended with one of ember's own statuses says why */
    const char *why_msg = !sig && status ? ember__exit_meaning(status) : NULL;
    sup_emit(s, EMBER_EV_SHRINK, r, reason, 0, 0, status, sig, why_msg);
    if (reason == EMBER_WHY_CRASH)
        sup_warn("runner %u (pid %d) died: %s %d%s%s%s; %u calls failed", r, (int)sr->pid,
                 sig ? "signal" : "exit status", sig ? sig : status,
                 sr->oom ? " (the OOM killer)" : "", why_msg ? ": " : "", why_msg ? why_msg : "",
                 failed);
}

/* Runner R (generation GEN) has ended with SIG or STATUS: repair what it
 * held, free its entry, report it. */
static void runner_gone(struct sup *s, uint32_t r, int sig, int status)
{
    struct sup_runner *sr = &s->runners[r];
    struct ember__view *v = s->v;
    struct ember_runner_ent *re = &v->runners[r];
    uint32_t was = atomic_load(&re->state);
    uint32_t why = atomic_load(&re->reason);
    re->last_exit_signal = sig;
    re->last_exit_status = status;
    atomic_fetch_add(&v->hdr->runners_died, 1);
    kill_job_groups(v, r);
    release_worker_counts(v, r);
    /* an OOM kill only as its cgroup counted it, never guessed from SIGKILL */
    sr->oom = sup_cgroup_end(s, r, sr->gen) && sig == SIGKILL && sr->kill_why == KILL_NONE;
    count_crash_loop(s, r, was, sig, status);
    unsigned killed, failed = fail_held_calls(s, r, sr->gen, sig, status, &killed);
    atomic_fetch_add(&v->hdr->calls_crashed, failed - killed);
    atomic_fetch_add(&v->hdr->calls_killed, killed);
    atomic_store(&re->state, EMBER_RUNNER_EMPTY);
    atomic_store(&re->pid, 0);
    sup_sweep_orphans(s);
    report_runner_end(s, r, was, why, sig, status, failed);
    sr->kill_why = KILL_NONE;
    sup_settle_unsure(s); /* a call this runner named may be decided now */
    sup_bump_epoch(v);
}

bool (*ember__test_fail_watch)(pid_t pid);

int sup_add_watch(struct sup *s, int fd, uint64_t tag, pid_t pid)
{
    /* a descriptor number no process has open: the kernel fails the watch */
    if (ember__test_fail_watch && ember__test_fail_watch(pid)) fd = INT_MAX;
    return s->ops->add_fd(s->loop, fd, tag);
}

/* Has runner R ended? Its wait status as SIG or STATUS if so (reaped).
 * WNOHANG: never waits for a live one. */
static bool runner_ended(struct sup_runner *sr, int *sig, int *status)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    *sig = *status = 0;
    if (sr->pidfd >= 0) {
        if (waitid((idtype_t)P_PIDFD, (id_t)sr->pidfd, &si, WEXITED | WNOHANG) < 0)
            /* ECHILD: reaped by nobody but us, unless SIGCHLD was ignored; then the
             * pidfd alone says it ended (its status is lost) */
            return errno == ECHILD && ember__pidfd_dead(sr->pidfd);
        if (si.si_pid == 0) return false; /* still running */
        if (si.si_code == CLD_EXITED) *status = si.si_status;
        else *sig = si.si_status;
        return true;
    }
    int st = 0;
    pid_t got = waitpid(sr->unreaped, &st, WNOHANG);
    if (got == 0 || (got < 0 && errno != ECHILD)) return false;
    if (got > 0 && WIFEXITED(st)) *status = WEXITSTATUS(st);
    if (got > 0 && WIFSIGNALED(st)) *sig = WTERMSIG(st);
    return true;
}

bool sup_reap_runner(struct sup *s, uint32_t r, uint32_t gen)
{
    struct sup_runner *sr = &s->runners[r];
    if (sr->gen != gen || (sr->pidfd < 0 && !sr->unreaped)) return false;
    int sig, status;
    if (!runner_ended(sr, &sig, &status)) return false;
    if (sr->pidfd >= 0) {
        if (sr->watched) s->ops->del_fd(s->loop, sr->pidfd, MKTAG(TAG_RUNNER, r, gen));
        close(sr->pidfd);
    }
    sr->pidfd = -1;
    sr->unreaped = 0;
    sr->watched = false;
    runner_gone(s, r, sig, status);
    return true;
}

void sup_runner_unwatched(struct sup *s, uint32_t r, uint32_t gen, int err)
{
    struct sup_runner *sr = &s->runners[r];
    if (sr->gen != gen || sr->pidfd < 0) return;
    sr->watched = false;
    s->rewatch = true;
    sup_warn("runner %u (pid %d): its watch failed (%s); looked at again within %llu ms", r,
             (int)sr->pid, strerror(err), (unsigned long long)(EMBER__REWATCH_NS / 1000000));
}

bool sup_rewatch_runners(struct sup *s, bool all)
{
    bool left = false;
    for (uint32_t r = 0; r < s->v->nrunners; r++) {
        struct sup_runner *sr = &s->runners[r];
        if ((sr->pidfd < 0 && !sr->unreaped) || (sr->watched && !all)) continue;
        if (sup_reap_runner(s, r, sr->gen) || sr->watched) continue;
        /* one killed because it could not be watched is only waited for */
        if (sr->pidfd >= 0 && sr->kill_why != KILL_UNWATCHED)
            sr->watched = sup_add_watch(s, sr->pidfd, MKTAG(TAG_RUNNER, r, sr->gen), sr->pid) == 0;
        left |= !sr->watched;
    }
    return left;
}

/* A runner just forked (PID) could not be watched (no pidfd, or the loop
 * refused it, ERR): it is killed, and counted as a failed boot once it is
 * reaped (here, or by sup_rewatch_runners() within EMBER__REWATCH_NS); the
 * calls it may have taken meanwhile are lost (EMBER_ERUNNERLOST). */
static void unwatched_runner(struct sup *s, uint32_t r, pid_t pid, int err)
{
    struct sup_runner *sr = &s->runners[r];
    sup_warn("runner %u (pid %d) cannot be watched (%s): killed", r, (int)pid, strerror(err));
    sr->kill_why = KILL_UNWATCHED;
    sr->watch_err = err;
    sr->watched = false;
    if (sr->pidfd >= 0) ember__pidfd_signal(sr->pidfd, SIGKILL);
    else {
        kill(pid, SIGKILL);
        sr->unreaped = pid;
    }
    if (!sup_reap_runner(s, r, sr->gen)) s->rewatch = true;
}

int sup_spawn_runner(struct sup *s, uint32_t reason, const uint32_t *demand)
{
    struct ember__view *v = s->v;
    uint32_t r = 0;
    while (r < v->nrunners && (atomic_load(&v->runners[r].state) != EMBER_RUNNER_EMPTY ||
                               s->runners[r].pidfd >= 0 || s->runners[r].unreaped))
        r++;
    if (r == v->nrunners) return -1;
    struct ember_runner_ent *re = &v->runners[r];
    int place;
    if (!place_runner(s, re, demand, &place)) return -1;
    uint32_t gen = atomic_fetch_add(&re->gen, 1) + 1;
    atomic_store(&re->ctl, EMBER_CTL_NONE);
    atomic_store(&re->reason, EMBER_WHY_NONE);
    atomic_store(&re->ready_ns, 0);
    atomic_store(&re->rss, 0);
    memset(re->msg, 0, sizeof re->msg);
    re->started_ns = ember__now_ns();
    for (uint32_t t = 0; t < v->max_conc; t++) {
        struct ember_worker_ent *we = &v->workers[r * v->max_conc + t];
        atomic_store(&we->busy, 0);
        atomic_store(&we->current, EMBER_NONE);
        atomic_store(&we->job_pgid, 0);
    }
    atomic_store(&re->state, EMBER_RUNNER_BOOTING);
    struct sup_runner *sr = &s->runners[r];
    *sr = (struct sup_runner){ .pidfd = -1, .gen = gen, .boot_reason = reason,
                               .veto_seen = atomic_load(&re->veto_seq), .place = (int16_t)place,
                               .jobs_base = sup_runner_jobs(v, r) };
    sup_emit(s, EMBER_EV_GROW_START, r, reason, 0, 0, 0, 0, NULL);
    int cg_fd;
    char msg[sizeof re->msg];
    if (sup_cgroup_leaf(s, r, gen, &cg_fd, msg, sizeof msg) < 0) {
        atomic_store(&re->state, EMBER_RUNNER_EMPTY);
        sup_boot_failed(s, r, EMBER_WHY_BOOT_FAILED, 0, 0, msg);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(s->lock_fd); /* first: the supervisor's liveness lock is its own */
        if (s->cg_spare >= 0) close(s->cg_spare); /* the next runner's */
        ember__self.cg_fd = cg_fd; /* joined first thing (runner.c) */
        s->ops->close_in_child(s->loop);
        close(s->sigfd);
        if (s->app_pidfd >= 0) close(s->app_pidfd);
        for (uint32_t i = 0; i < v->nrunners; i++)
            if (s->runners[i].pidfd >= 0) close(s->runners[i].pidfd);
        for (uint32_t i = 0; i < v->ncallers; i++)
            if (s->callers[i].pidfd >= 0) close(s->callers[i].pidfd);
        ember__runner_main(v, r, gen, s->self, s->cfg);
    }
    if (pid < 0) {
        int e = errno;
        if (cg_fd >= 0) close(cg_fd);
        atomic_store(&re->state, EMBER_RUNNER_EMPTY);
        sup_cgroup_end(s, r, gen);
        snprintf(msg, sizeof msg, "fork: %s", strerror(e));
        sup_boot_failed(s, r, EMBER_WHY_BOOT_FAILED, 0, 0, msg);
        return -1;
    }
    sr->pid = pid;
    atomic_store(&re->pid, (uint32_t)pid);
    atomic_fetch_add(&v->hdr->runners_started, 1);
    sr->pidfd = ember__pidfd_open(pid);
    int rc = sr->pidfd < 0 ? -errno : sup_add_watch(s, sr->pidfd, MKTAG(TAG_RUNNER, r, gen), pid);
    /* the leaf's fd (the spare's, opened ahead) is closed only now: the
     * pidfd needs a descriptor of its own, and a supervisor out of them
     * fails the boot as unwatched rather than reuse the leaf's */
    if (cg_fd >= 0) close(cg_fd);
    if (rc < 0) {
        unwatched_runner(s, r, pid, -rc);
        return -1;
    }
    sr->watched = true;
    return 0;
}

void sup_kill_runner(struct sup *s, uint32_t r, uint8_t why)
{
    struct sup_runner *sr = &s->runners[r];
    if (sr->pidfd < 0 || sr->kill_why) return;
    sr->kill_why = why;
    ember__pidfd_signal(sr->pidfd, SIGKILL);
}

void sup_request(struct ember__view *v, uint32_t r, uint32_t ctl)
{
    atomic_store(&v->runners[r].ctl, ctl);
    ember__futex_wake(&v->runners[r].ctl, 1);
}
