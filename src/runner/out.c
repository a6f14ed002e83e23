/* runner/out.c - what a handler sees of its call: the job (deadline,
 * cancel flag, runner) and ember_out, where it writes its result (inline
 * bytes, then shared pages, as it grows). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include "runner/runner.h"

const ember_parent_info *ember_parent(void) { return ember__self.is_runner ? &ember__self.parent : NULL; }

bool ember_job_cancelled(const ember_job *job)
{
    uint32_t w = atomic_load_explicit(job->_state, memory_order_relaxed);
    return ember__gen(w) != job->_gen || ember__st(w) != EMBER_SLOT_RUNNING ||
           (w & EMBER_SLOT_CANCEL) || ember__expired(job->deadline_ns);
}

uint64_t ember_job_remaining_ns(const ember_job *job)
{
    uint64_t now = ember__now_ns();
    return now < job->deadline_ns ? job->deadline_ns - now : 0;
}

/* The worker entry of the thread of this runner running JOB: the one whose
 * current entry is JOB's slot and generation (set before the handler runs,
 * cleared after it returned). */
static struct ember_worker_ent *job_worker(const ember_job *job)
{
    struct ember__view *v = ember__self.view;
    if (!ember__self.is_runner || !v || job->runner != ember__self.runner) return NULL;
    const struct ember_slot *s = (const struct ember_slot *)(const void *)job->_state; /* its first field */
    if (s < v->slots || s >= v->slots + v->nslots) return NULL;
    uint32_t e = ember__entry((uint32_t)(s - v->slots), job->_gen);
    for (uint32_t t = 0; t < v->max_conc; t++) {
        struct ember_worker_ent *we = &v->workers[ember__self.runner * v->max_conc + t];
        if (atomic_load_explicit(&we->current, memory_order_relaxed) == e) return we;
    }
    return NULL;
}

int ember_job_watch_pgid(const ember_job *job, int pgid)
{
    struct ember_worker_ent *we = job && pgid >= 0 ? job_worker(job) : NULL;
    if (!we) return ember__fail(-EMBER_EINVAL, "ember_job_watch_pgid: %s",
                                pgid < 0 ? "negative process group" : "not a job running in this runner");
    /* seq_cst: the supervisor takes it with an exchange once this process
     * is dead (abi.h's notes) */
    atomic_store(&we->job_pgid, pgid);
    return 0;
}

void *ember_out_reserve(ember_out *o, size_t n)
{
    if (n > o->v->max_payload - o->len) {
        o->err = ember__fail(-EMBER_ETOOBIG, "result of %zu bytes exceeds max_payload %llu",
                             o->len + n, (unsigned long long)o->v->max_payload);
        return NULL;
    }
    if (o->len + n > o->cap) {
        size_t want = o->cap * 2 > o->len + n ? o->cap * 2 : o->len + n;
        if (want > o->v->max_payload) want = o->v->max_payload;
        uint32_t old = o->page, nw;
        for (;;) {
            uint32_t seq = atomic_load(&o->v->hdr->page_seq);
            int got = ember__pages_alloc(o->v, o->idx, want, &nw);
            if (got == 0) break;
            if (got != -EMBER_EFULL) { /* /dev/shm is full: the call fails, with its size */
                o->err = o->space_err = got;
                o->space_kib = want / 1024 > INT_MAX ? INT_MAX : (int)(want / 1024);
                return NULL;
            }
            if (ember__now_ns() >= o->deadline) {
                o->err = ember__fail(-EMBER_EFULL, "no shared pages for a %zu-byte result", want);
                return NULL;
            }
            atomic_fetch_add(&o->v->hdr->page_waiters, 1);
            ember__futex_wait(&o->v->hdr->page_seq, seq, ember__now_ns() + 100000000ull);
            atomic_fetch_sub(&o->v->hdr->page_waiters, 1);
        }
        EMBER__PAGES_ACQUIRE(o->v);
        unsigned char *nb = (unsigned char *)ember__page_ptr(o->v, nw);
        memcpy(nb, o->buf, o->len);
        o->s->res_page = nw; /* recorded before the old run goes: repair sees one */
        if (old != EMBER_NONE) ember__pages_free(o->v, o->idx, old);
        o->page = nw;
        o->buf = nb;
        o->cap = (size_t)((want + o->v->page_size - 1) / o->v->page_size) * o->v->page_size;
    }
    void *p = o->buf + o->len;
    o->len += n;
    return p;
}

int ember_out_write(ember_out *o, const void *p, size_t n)
{
    if (n == 0) return 0;
    void *d = ember_out_reserve(o, n);
    if (!d) return o->err;
    memcpy(d, p, n);
    return 0;
}
