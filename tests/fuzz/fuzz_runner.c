/* tests/fuzz/fuzz_runner.c - a runner taking a request from a slot
 * (ember__run_entry, src/runner/worker.c, and the checks it makes with
 * ember__request_check, src/runner/runner.h).
 *
 * Feeds: a small segment whose slots, worker lines, run rings and page
 * tables hold what the input says (fuzz_view.h: each part a heap block of
 * its own), a run-ring entry (popped from the first run ring, as a worker
 * does, else the input's), and what the handler does: how many bytes of
 * result it writes, in how many pieces, and what it returns. Whatever a
 * slot says (handler id, argument length and page, flags, state, owner,
 * deadline), the runner runs it as it would run a caller's request.
 *
 * Asserts: nothing is read or written outside the segment's parts (every
 * slot, page, ring and bitmap index is checked by AddressSanitizer against
 * its block); a handler is called only with an id below both tables'
 * sizes, and with arguments that lie inside the slot or the pages; the
 * status left in the slot is 0 or a code of ember's table; a result the
 * runner reports as written reads back, where the caller will read it,
 * as exactly the bytes the handler wrote; the worker line says it runs
 * nothing afterwards.
 *
 * The deadline: a request already expired keeps its deadline (the runner
 * finishes it with ETIMEDOUT); any other gets one far away, and the handler
 * asks for pages only when a run of that size is free, since
 * ember_out_reserve waits for pages (up to the deadline) by design. */
#include <assert.h>
#include "runner/runner.h"
#include "fuzz_view.h"

#define FZ_NHANDLERS 8

static struct {
    struct ember__view *v;
    struct ember_slot *s;
    size_t want;          /* bytes of result to write */
    unsigned pieces;      /* in this many writes */
    int rc;               /* the handler's return */
    bool ran;             /* the handler ran */
    size_t wrote;         /* bytes it wrote */
} fz;

static unsigned char pattern(size_t i) { return (unsigned char)(i * 31 + 7); }

/* Is a run of pages for O to grow by N bytes free (as ember__pages_alloc
 * would find it)? */
static bool pages_free_for(const ember_out *o, size_t n)
{
    const struct ember__view *v = o->v;
    if (o->len + n <= o->cap) return true;
    uint64_t want = o->cap * 2 > o->len + n ? o->cap * 2 : o->len + n;
    if (want > v->max_payload) want = v->max_payload;
    uint64_t pages = (want + v->page_size - 1) / v->page_size;
    uint32_t run = 0;
    for (uint32_t i = 0; i < v->npages; i++)
        if ((run = v->page_owner[i] ? 0 : run + 1) >= pages) return true;
    return false;
}

static int fz_handler(const void *args, size_t len, ember_out *o, const ember_job *job)
{
    const struct ember__view *v = fz.v;
    const char *a = args, *data = (const char *)fz.s->data;
    (void)job;
    fz.ran = true;
    assert(o->v == v && o->s == fz.s && o->len == 0);
    if (len) { /* inside the slot's inline bytes, or inside the pages */
        assert(a);
        bool inl = a == data && len <= EMBER_INLINE_MAX;
        bool paged = a >= v->pages && (uint64_t)(a - v->pages) + len <= (uint64_t)v->npages * v->page_size;
        assert(inl || paged);
        volatile char x = a[0];
        x = a[len - 1];
        (void)x;
    }
    size_t per = fz.pieces ? fz.want / fz.pieces + 1 : fz.want;
    unsigned char buf[4096];
    while (fz.wrote < fz.want) {
        size_t n = fz.want - fz.wrote < per ? fz.want - fz.wrote : per;
        if (n > sizeof buf) n = sizeof buf;
        if (n <= v->max_payload - o->len && !pages_free_for(o, n)) break;
        for (size_t i = 0; i < n; i++) buf[i] = pattern(fz.wrote + i);
        if (ember_out_write(o, buf, n)) break; /* too big: the call fails */
        fz.wrote += n;
    }
    return fz.rc;
}

static bool code_ok(int status)
{
    switch (-status) {
    case 0:
#define FZ_CODE(name, val, msg) case val:
        EMBER_ERROR_TABLE(FZ_CODE)
#undef FZ_CODE
        return true;
    default:
        return false;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    struct fz_in in = { data, n };
    uint8_t ctl[8];
    fz_take(&in, ctl, sizeof ctl);
    struct ember__view v;
    fz_view_make(&v, &in);
    uint32_t e = ember__ring_pop(&v.run[0]);
    if (e == EMBER_NONE || (ctl[0] & 1)) e = fz_u32(&in);
    uint32_t idx = e & 0xffffu;

    ember__nhandlers = ctl[1] % FZ_NHANDLERS;
    for (unsigned h = 0; h < ember__nhandlers; h++) ember__handlers[h].fn = fz_handler;
    ember__self.runner = 0;
    ember__self.gen = 1;
    ember__self.node = -1;
    memset(&fz, 0, sizeof fz);
    fz.v = &v;
    fz.s = idx < v.nslots ? &v.slots[idx] : NULL;
    fz.want = (size_t)(ctl[2] | ctl[3] << 8) * (ctl[4] % 4 + 1); /* up to ~256 KiB */
    fz.pieces = ctl[5] % 4;
    fz.rc = (int8_t)ctl[6] % 4;
    if (fz.s && !ember__expired(fz.s->deadline_ns)) fz.s->deadline_ns = UINT64_MAX / 2;

    ember_out *o = malloc(sizeof *o);
    struct ember_worker_ent *we = &v.workers[0];
    uint32_t w0 = fz.s ? atomic_load(&fz.s->state) : 0;
    ember__run_entry(&v, e, o, we);
    free(o);

    if (fz.s) {
        struct ember_slot *s = fz.s;
        uint32_t w = atomic_load(&s->state);
        bool took = ember__st(w0) == EMBER_SLOT_QUEUED && ember__gen(w0) == e >> 16;
        assert(atomic_load(&we->current) == EMBER_NONE);
        if (fz.ran) assert(atomic_load(&we->busy) == 0);
        if (took) {
            if (ember__st(w) == EMBER_SLOT_DONE) assert(code_ok(s->status));
        }
        if (fz.ran) assert(s->handler < v.nhandlers && s->handler < ember__nhandlers);
        /* a result kept for the caller reads back as written */
        if (took && fz.ran && ember__st(w) == EMBER_SLOT_DONE && ember__gen(w) == e >> 16 &&
            (s->status == 0 || s->status == -EMBER_EHANDLER)) {
            const unsigned char *r = ember__payload(&v, s, s->res_len, s->res_page);
            assert(r && s->res_len == fz.wrote);
            for (size_t i = 0; i < fz.wrote; i++) assert(r[i] == pattern(i));
        }
    }
    fz_view_free(&v);
    return 0;
}
