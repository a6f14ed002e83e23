/* supervisor/callers.c - attached callers: each is watched through a pidfd
 * from the moment the supervisor sees its entry; a dead one's queued work
 * is dropped and its running linked work cancelled. */
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
#include "supervisor/sup.h"

void sup_reap_caller(struct sup *s, uint32_t i, uint32_t gen)
{
    struct sup_caller *sc = &s->callers[i];
    /* pid 0: the entry was seen released (a detach, sup_scan_callers), and
     * this is the exit of the process that had it: nothing to reclaim */
    if (sc->gen != gen || sc->pid == 0) return;
    struct ember__view *v = s->v;
    struct ember_caller_ent *ce = &v->callers[i];
    if (sc->pidfd >= 0) {
        if (sc->watched) s->ops->del_fd(s->loop, sc->pidfd, MKTAG(TAG_CALLER, i, gen));
        close(sc->pidfd);
    }
    sc->pidfd = -1;
    /* queued calls first: a runner freed by a cancelled call must not take
     * the dead caller's next one meanwhile */
    unsigned dropped = 0, cancelled = 0; /* for the log: queued, and running */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t k = 0; k < v->nslots; k++) {
            struct ember_slot *sl = &v->slots[k];
            uint32_t w = atomic_load_explicit(&sl->state, memory_order_acquire);
            if (ember__st(w) != EMBER_SLOT_FREE && (pass || ember__st(w) == EMBER_SLOT_QUEUED) &&
                ember__owned_by(sl, w, i, gen)) {
                dropped += !pass;
                cancelled += pass && ember__st(w) == EMBER_SLOT_RUNNING;
                ember__slot_disown(v, k, ember__gen(w), true);
            }
        }
    atomic_fetch_sub(&v->hdr->spin, atomic_exchange(&ce->spinning, 0));
    uint32_t pid = sc->pid;
    /* counted only if it died attached (one that detached and then exited
     * before we looked at the table left nothing behind) */
    bool died = atomic_compare_exchange_strong(&ce->pid, &pid, 0);
    if (died) atomic_fetch_add(&v->hdr->callers_reaped, 1);
    sup_sweep_orphans(s);
    /* it may have died between a claim CAS and its owner store: look for
     * such slots at the next few housekeeping ticks */
    s->unowned_until = ember__now_ns() + 3 * EMBER__HOUSEKEEPING_NS;
    /* an operator hears of a caller that died attached or left work behind;
     * one that detached and then ended, only in the debug log */
    if ((died && sc->pid) || dropped || cancelled)
        sup_log(1, "caller %u (pid %u) died attached: %u queued calls dropped, %u running "
                "cancelled", i, sc->pid, dropped, cancelled);
    else
        sup_log(2, "caller %u (pid %u) gone; nothing of its reclaimed", i, sc->pid);
    sc->pid = 0;
    sup_bump_epoch(v);
}

/* Watch caller I (its pid and gen already taken from the table): open its
 * pidfd if it has none yet, and hand it to the loop. A caller that is gone
 * is reaped. One that cannot be watched now (no fd left for its pidfd, or
 * the loop refuses it) is tried again by the next scan, within a second;
 * meanwhile an open pidfd is polled there. Never reaps a live caller. */
static void watch_caller(struct sup *s, uint32_t i)
{
    struct sup_caller *sc = &s->callers[i];
    if (sc->pidfd < 0) {
        sc->pidfd = ember__pidfd_open((pid_t)sc->pid);
        if (sc->pidfd < 0) {
            if (errno == ESRCH) sup_reap_caller(s, i, sc->gen); /* died before we looked */
            else if (!sc->refused)
                sup_warn("caller %u (pid %u): no pidfd (%s); tried again each second", i,
                         sc->pid, strerror(errno));
            sc->refused = sc->pidfd < 0;
            return;
        }
    } else if (ember__pidfd_dead(sc->pidfd)) {
        sup_reap_caller(s, i, sc->gen);
        return;
    }
    int rc = sup_add_watch(s, sc->pidfd, MKTAG(TAG_CALLER, i, sc->gen), (pid_t)sc->pid);
    if (rc < 0 && !sc->refused)
        sup_warn("caller %u (pid %u): cannot watch its pidfd (%s); polled instead", i, sc->pid,
                 strerror(-rc));
    sc->watched = rc == 0;
    sc->refused = rc < 0;
}

void sup_caller_unwatched(struct sup *s, uint32_t i, uint32_t gen, int err)
{
    struct sup_caller *sc = &s->callers[i];
    if (sc->gen != gen || sc->pidfd < 0 || !sc->watched) return;
    sc->watched = false;
    if (!sc->refused)
        sup_warn("caller %u (pid %u): its watch failed (%s); watched again at the next look", i,
                 sc->pid, strerror(err));
    sc->refused = true; /* logged once; watch_caller() clears it when a watch is taken */
}

void sup_check_callers(struct sup *s)
{
    for (uint32_t i = 0; i < s->v->ncallers; i++) {
        struct sup_caller *sc = &s->callers[i];
        if (sc->pidfd >= 0 && ember__pidfd_dead(sc->pidfd)) sup_reap_caller(s, i, sc->gen);
    }
}

/* Look at the caller table: watch callers that attached, stop watching
 * those that detached, reap those that died unwatched. */
void sup_scan_callers(struct sup *s)
{
    struct ember__view *v = s->v;
    for (uint32_t i = 0; i < v->ncallers; i++) {
        uint32_t pid = atomic_load(&v->callers[i].pid), gen = atomic_load(&v->callers[i].gen);
        struct sup_caller *sc = &s->callers[i];
        if (pid == sc->pid && gen == sc->gen) {
            if (pid && !sc->watched) watch_caller(s, i);
            continue;
        }
        if (sc->pidfd >= 0) { /* detached (or replaced): stop watching the old one */
            if (sc->watched) s->ops->del_fd(s->loop, sc->pidfd, MKTAG(TAG_CALLER, i, sc->gen));
            close(sc->pidfd);
            sc->pidfd = -1;
        }
        *sc = (struct sup_caller){ .pidfd = -1, .pid = pid, .gen = gen };
        if (pid) watch_caller(s, i);
    }
}

void sup_free_unowned(struct sup *s)
{
    struct ember__view *v = s->v;
    if (!s->unowned || ember__now_ns() > s->unowned_until) return;
    for (uint32_t i = 0; i < v->nslots; i++) {
        struct ember_slot *sl = &v->slots[i];
        uint32_t w = atomic_load_explicit(&sl->state, memory_order_acquire);
        /* the acquire on the state pairs with the claim CAS; the owner word
         * read after it names this generation unless its store never came */
        uint64_t o = atomic_load_explicit(&sl->owner, memory_order_acquire);
        if (ember__st(w) != EMBER_SLOT_CLAIMED || (uint32_t)(o >> 48) == ember__gen(w)) {
            s->unowned[i] = 0;
            continue;
        }
        if (s->unowned[i] != w) { /* first sighting: a live claimer may be between the two */
            s->unowned[i] = w;
            continue;
        }
        if (ember__slot_free(v, i, w)) sup_warn("slot %u: claimed by a caller that died; freed", i);
        s->unowned[i] = 0;
    }
}
