/* Description: a pool's /dev/shm space, as the page allocator sees it. The
 * fixed parts of a new segment are allocated at its creation and its
 * payload pages are not; a run of pages gets its space (posix_fallocate)
 * before the allocator hands it out, a little ahead, and the mark of the
 * reserved pages only grows; when the space cannot be had, a run among the
 * pages reserved already is handed out instead, and when none fits the
 * allocation fails with the reason, without waiting and without touching a
 * page. The full /dev/shm itself (EMBER_ENOSPC, end to end) is
 * test_shmspace.sh's: here a descriptor that cannot allocate stands in for
 * it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "lib/testing.h"
#include "fixture.h"

/* Bytes of the segment that have space in /dev/shm. */
static uint64_t allocated(const struct ember__view *v)
{
    struct stat st;
    assert_int_equal(fstat(v->shm_fd, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

/* A slot no call uses, to tag runs with. */
static uint32_t free_slot(struct ember__view *v)
{
    uint32_t i = 0;
    while (i < v->nslots && ember__st(atomic_load(&v->slots[i].state)) != EMBER_SLOT_FREE) i++;
    assert_true(i < v->nslots);
    return i;
}

static uint32_t mark(struct ember__view *v)
{
    ember__pages_lock(v);
    uint32_t m = atomic_load_explicit(&v->hdr->page_reserved, memory_order_relaxed);
    ember__pages_unlock(v);
    return m;
}

static void start(struct fixture *f)
{
    struct ember_pool_config cfg;
    fixture_config(f, &cfg, "space", "");
    cfg.max_payload = 4 << 20;
    cfg.payload_space = 16 << 20;
    fixture_start(f, &cfg, 0);
}

/* At creation only the fixed parts have space; a run gets its own (and
 * EMBER__RESERVE_AHEAD pages more) before it is handed out; a run below the
 * mark costs nothing more. */
static void runs_get_their_space_before_use(void **state)
{
    (void)state;
    struct fixture f;
    start(&f);
    struct ember__view *v = ember__pool_view(f.pool);
    uint64_t fixed = (uint64_t)(v->pages - v->base);
    assert_true(v->shm_fd >= 0);
    assert_true(allocated(v) >= fixed);
    assert_true(allocated(v) < fixed + v->page_size); /* no payload page yet */
    assert_int_equal(mark(v), 0);

    uint32_t i = free_slot(v), a, b;
    assert_int_equal(ember__pages_alloc(v, i, 3 * (uint64_t)v->page_size, &a), 0);
    assert_int_equal(mark(v), EMBER__RESERVE_AHEAD);
    assert_true(a + 3 <= mark(v));
    assert_true(allocated(v) >= fixed + (uint64_t)EMBER__RESERVE_AHEAD * v->page_size);
    /* a run of more than the margin: to its end */
    assert_int_equal(ember__pages_alloc(v, i, 40 * (uint64_t)v->page_size, &b), 0);
    assert_true(b + 40 <= mark(v));
    uint32_t m = mark(v);
    assert_true(allocated(v) >= fixed + (uint64_t)m * v->page_size);
    ember__pages_free(v, i, a);
    ember__pages_free(v, i, b);
    /* freed runs keep their space: the mark stays */
    assert_int_equal(ember__pages_alloc(v, i, 3 * (uint64_t)v->page_size, &a), 0);
    assert_int_equal(mark(v), m);
    ember__pages_free(v, i, a);

    /* calls through the pool reserve the same way */
    ember_result r;
    char *big = calloc(1, 1 << 20);
    assert_non_null(big);
    assert_int_equal(ember_call(f.c, ember_handler(f.c, "echo"), big, 1 << 20, &r,
                                EMBER_TIMEOUT_DEFAULT), 0);
    assert_int_equal(r.len, 1 << 20);
    ember_result_release(f.c, &r);
    free(big);
    assert_true(allocated(v) >= fixed + (uint64_t)mark(v) * v->page_size);
    fixture_stop(&f);
}

/* The space cannot be had (a descriptor open read-only, where a full
 * /dev/shm would say ENOSPC): a run below the mark is handed out if one
 * fits, and otherwise the allocation fails at once with the reason, the
 * mark unchanged and nothing tagged. */
static void no_space_falls_back_on_reserved_pages(void **state)
{
    (void)state;
    struct fixture f;
    start(&f);
    struct ember__view *pv = ember__pool_view(f.pool);
    char shm[96];
    ember__shm_name(shm, sizeof shm, f.name);
    struct ember__view v = *pv; /* this process's copy, with a descriptor that cannot allocate */
    v.shm_fd = shm_open(shm, O_RDONLY | O_CLOEXEC, 0);
    assert_true(v.shm_fd >= 0);

    uint32_t i = free_slot(&v), a, b;
    assert_int_equal(ember__pages_alloc(pv, i, (uint64_t)v.page_size, &a), 0); /* mark: 32 */
    ember__pages_free(pv, i, a);
    uint32_t m = mark(&v);
    assert_int_equal(m, EMBER__RESERVE_AHEAD);
    /* the allocator's hint past the mark: its first choice needs space */
    ember__pages_lock(&v);
    atomic_store_explicit(&v.hdr->page_hint, m + 8, memory_order_relaxed);
    ember__pages_unlock(&v);
    assert_int_equal(ember__pages_alloc(&v, i, 4 * (uint64_t)v.page_size, &a), 0);
    assert_true(a + 4 <= m);
    assert_int_equal(mark(&v), m);

    /* more than the reserved pages hold: refused at once, with the reason */
    int rc = ember__pages_alloc(&v, i, (uint64_t)(m + 1) * v.page_size, &b);
    assert_int_not_equal(rc, 0);
    assert_int_not_equal(rc, -EMBER_EFULL); /* EFULL would make the caller wait */
    assert_non_null(strstr(ember_last_error(), "posix_fallocate"));
    assert_int_equal(mark(&v), m);
    uint32_t tagged = 0;
    ember__pages_lock(&v);
    for (uint32_t k = 0; k < v.npages; k++) tagged += v.page_owner[k] == i + 1;
    ember__pages_unlock(&v);
    assert_int_equal(tagged, 4); /* the one run handed out above */
    ember__pages_free(&v, i, a);
    close(v.shm_fd);

    /* the pool itself still gets its pages */
    assert_int_equal(ember__pages_alloc(pv, i, (uint64_t)(m + 1) * v.page_size, &b), 0);
    assert_true(mark(pv) >= b + m + 1);
    ember__pages_free(pv, i, b);
    fixture_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_get_their_space_before_use),
        cmocka_unit_test(no_space_falls_back_on_reserved_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
