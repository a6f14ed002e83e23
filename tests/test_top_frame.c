/* Description: ember top's frame from a model made by hand (no pool, no
 * terminal): sparklines scaled to their largest figure, in block
 * characters or ASCII; every line cut to the screen's width in columns;
 * runners past the screen's height counted as "+N more" above the status
 * line, which sits on the bottom row; a ready runner with calls running
 * shown busy, with its job's age; a stopped pool said to be stopped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "top.h"

#define ROWS 64
struct screen {
    char line[ROWS][1024];
    enum top_attr attr[ROWS];
    int last; /* highest row written */
};

static void put(void *ctx, int row, enum top_attr attr, const char *text)
{
    struct screen *s = ctx;
    assert_true(row >= 0 && row < ROWS);
    snprintf(s->line[row], sizeof s->line[row], "%s", text);
    s->attr[row] = attr;
    if (row > s->last) s->last = row;
}

/* A model of pool "p" with N ready runners, runner 0 busy since 2.5 s. */
static void model(struct top_model *m, int n, bool utf8)
{
    top_model_init(m, "p", 1000000000, utf8);
    m->cap = n;
    m->runners = calloc((size_t)n, sizeof *m->runners);
    m->scratch = calloc((size_t)n, sizeof *m->scratch);
    m->seen = calloc((size_t)n, sizeof *m->seen);
    m->seen_next = calloc((size_t)n, sizeof *m->seen_next);
    assert_non_null(m->runners);
    m->sampled = true;
    m->st.state = EMBER_POOL_RUNNING;
    snprintf(m->st.backend, sizeof m->st.backend, "uring");
    m->st.serving = m->st.ready = m->st.runners = (unsigned)n;
    m->t_ns = 10000000000ull;
    for (int i = 0; i < n; i++) {
        ember_runner_stats *r = &m->runners[i];
        r->index = (uint32_t)i;
        r->pid = 1000 + i;
        r->state = EMBER_RUNNER_READY;
        r->capacity = 1;
        r->calls = 7;
        m->seen[i] = (struct top_seen){ .pid = r->pid, .calls = 7 };
    }
    m->runners[0].busy = 1;
    m->seen[0].busy_since = m->t_ns - 2500000000ull;
    m->nrunners = m->nlive = n;
    double rates[] = { 0, 1, 2, 4, 8 };
    for (unsigned i = 0; i < 5; i++) m->rates[i] = rates[i];
    m->nhist = 5;
    m->rate = 8;
}

static const char *find(const struct screen *s, const char *prefix)
{
    for (int i = 0; i <= s->last; i++)
        if (strncmp(s->line[i], prefix, strlen(prefix)) == 0) return s->line[i];
    return NULL;
}

static void sparklines_scale(void **state)
{
    (void)state;
    struct top_model m;
    struct screen s = { .last = -1 };
    model(&m, 2, true);
    top_frame(&m, 0, 0, false, put, &s);
    const char *l = find(&s, "calls/s   ");
    assert_non_null(l);
    assert_non_null(strstr(l, " \u2582\u2583\u2585\u2588 8.0/s, max 8.0"));
    top_model_free(&m);
    memset(&s, 0, sizeof s);
    s.last = -1;
    model(&m, 2, false);
    top_frame(&m, 0, 0, false, put, &s);
    l = find(&s, "calls/s   ");
    assert_non_null(l);
    assert_non_null(strstr(l, " :-+@ 8.0/s"));
    for (const char *c = l; *c; c++) assert_true(*c >= ' ' && *c <= '~');
    top_model_free(&m);
}

static void cut_and_counted(void **state)
{
    (void)state;
    struct top_model m;
    struct screen s = { .last = -1 };
    model(&m, 5, true);
    /* 9 rows above the runners, the status line below: room for 4 */
    top_frame(&m, 30, 14, true, put, &s);
    assert_int_equal(s.last, 13);
    assert_string_equal(s.line[12], "+2 more");
    assert_true(strncmp(s.line[13], "q: quit", 7) == 0);
    assert_true(strncmp(s.line[0], "pool 'p'  running", 17) == 0);
    assert_int_equal(s.attr[0], TOP_TITLE);
    for (int i = 0; i <= s.last; i++) {
        int cols = 0;
        for (const char *c = s.line[i]; *c; c++) cols += ((unsigned char)*c & 0xC0) != 0x80;
        assert_true(cols <= 30);
    }
    /* tall enough: all five, no count */
    memset(&s, 0, sizeof s);
    s.last = -1;
    top_frame(&m, 100, 40, true, put, &s);
    assert_null(find(&s, "+"));
    assert_int_equal(s.last, 39);
    top_model_free(&m);
}

static void busy_and_stopped(void **state)
{
    (void)state;
    struct top_model m;
    struct screen s = { .last = -1 };
    model(&m, 2, true);
    top_frame(&m, 0, 0, false, put, &s);
    const char *r0 = find(&s, "    0    1000");
    const char *r1 = find(&s, "    1    1001");
    assert_non_null(r0);
    assert_non_null(r1);
    assert_non_null(strstr(r0, " busy "));
    assert_non_null(strstr(r0, " 1/1 "));
    assert_non_null(strstr(r0, " 2.5s "));
    assert_non_null(strstr(r1, " ready "));
    assert_null(find(&s, "pool stopped")); /* no status line in a --once frame of a live pool */
    m.stopped = true;
    snprintf(m.stopped_at, sizeof m.stopped_at, "12:00:00");
    memset(&s, 0, sizeof s);
    s.last = -1;
    top_frame(&m, 0, 0, false, put, &s);
    assert_true(strncmp(s.line[0], "pool 'p'  stopped", 17) == 0);
    const char *st = find(&s, "pool stopped at 12:00:00; last figures kept");
    assert_non_null(st);
    assert_non_null(find(&s, "    0    1000")); /* the last figures */
    top_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sparklines_scale),
        cmocka_unit_test(cut_and_counted),
        cmocka_unit_test(busy_and_stopped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
