/* tests/test_bridge_blob.c - ember bridge's pure parts: a crash's cause in words,
 * and the result blob as docs/ARCHITECTURE.md ("Across hosts: Redis
 * Streams") fixes it: one JSON line with its keys in order, a newline, then
 * exactly output_len raw bytes (NULs and newlines included); a dead
 * letter's cause; an exec result with its receipt; strings escaped; and
 * what it writes read back by libember-redis's reader, whole, cut short at
 * every byte and with every bit flipped.
 * test_bridge.sh runs the whole against Redis. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ember/redis.h>
#include "bridge/bridge.h"
#include "cli/exec.h"
#include "cli/cli.h" /* before cmocka.h, whose fail() macro would rename cli.h's fail */
#include <cmocka.h>

const char *cli_cmd = "ember bridge";

static void causes(void **st)
{
    (void)st;
    char b[64];
    bridge_cause(-EMBER_ECRASHED, 11, b, sizeof b);
    assert_string_equal(b, "crashed: signal 11");
    bridge_cause(-EMBER_ECRASHED, EMBER_CRASH_EXIT + 3, b, sizeof b);
    assert_string_equal(b, "crashed: exit 3");
    bridge_cause(-EMBER_EOOM, 9, b, sizeof b);
    assert_string_equal(b, "oom");
    bridge_cause(-EMBER_EPOISON, 6, b, sizeof b);
    assert_string_equal(b, "poison: signal 6");
    bridge_cause(-EMBER_ECRASHED, 0, b, sizeof b);
    assert_string_equal(b, "crashed");
}

static void blob_ok(void **st)
{
    (void)st;
    static const char out[] = "a\0b\nc"; /* 5 bytes: a NUL and a newline in them */
    ember_result call = { .runner = 3, .node = 0, .start_ns = 2000000000ull };
    struct bridge_outcome o = { .status = 0, .out = out, .out_len = 5, .handler = "echo",
                                .call = &call, .start_wall = 1796524386.25,
                                .submit_ns = 1000000000ull, .done_ns = 2500000000ull,
                                .runner_pid = 4242 };
    size_t len;
    char *b = bridge_blob(&o, "host1", "host1:enc", 1, &len);
    assert_non_null(b);
    const char *nl = memchr(b, '\n', len);
    assert_non_null(nl);
    char *json = strndup(b, (size_t)(nl - b));
    assert_string_equal(json,
        "{\"status\":0,\"error\":\"\",\"detail\":0,\"host\":\"host1\",\"consumer\":\"host1:enc\","
        "\"deliveries\":1,\"output_len\":5,\"receipt\":{\"handler\":\"echo\",\"end\":\"exit\","
        "\"exit\":0,\"signal\":0,\"start\":1796524386.250,\"queue_wait_s\":1.000000,"
        "\"run_s\":0.500000,\"runner_pid\":4242,\"runner\":3,\"node\":0}}");
    assert_int_equal(len - (size_t)(nl + 1 - b), 5);
    assert_memory_equal(nl + 1, out, 5);
    free(json);
    free(b);
}

static void blob_dead_letter(void **st)
{
    (void)st;
    struct bridge_outcome o = { .status = -EMBER_EPOISON, .detail = 11, .handler = "sample.crash",
                                .cause = "crashed: signal 11" };
    size_t len;
    char *b = bridge_blob(&o, "h", "c\"q", 3, &len);
    assert_non_null(b);
    assert_int_equal(b[len - 1], '\n'); /* no output bytes after the line */
    assert_non_null(strstr(b, "{\"status\":-1022,\"error\":\"EMBER_EPOISON\",\"detail\":11,"));
    assert_non_null(strstr(b, "\"consumer\":\"c\\\"q\",\"deliveries\":3,\"output_len\":0,"
                              "\"cause\":\"crashed: signal 11\",\"receipt\":{\"handler\":\"sample.crash\","
                              "\"end\":\"crashed\",\"exit\":255,\"signal\":11,"));
    assert_non_null(strstr(b, "\"runner\":-1,\"node\":-1}}\n")); /* never ran here: no runner */
    free(b);
}

static void blob_timeout(void **st)
{
    (void)st;
    struct bridge_outcome o = { .status = -EMBER_ETIMEDOUT, .handler = "sleep" };
    size_t len;
    char *b = bridge_blob(&o, "h", "c", 1, &len);
    assert_non_null(b);
    assert_non_null(strstr(b, "{\"status\":-110,\"error\":\"EMBER_ETIMEDOUT\","));
    assert_non_null(strstr(b, "\"end\":\"timeout\",\"exit\":-1,"));
    free(b);
}

/* exec: the output is exec's encoded result as it came; the receipt is
 * the job's (exit status, CPU time, peak RSS, pids), as `ember call
 * --receipt` gives it */
static void blob_exec(void **st)
{
    (void)st;
    struct exec_res x = { .end = EXEC_EXITED, .code = 3, .pid = 77, .runner_pid = 66,
                          .utime_ns = 250000000, .stime_ns = 0, .maxrss_bytes = 1048576,
                          .wall_ns = 500000000, .out = "hi\n", .out_len = 3, .out_total = 3,
                          .err = "", .err_len = 0, .msg = "" };
    size_t n = exec_res_size(&x);
    char *enc = malloc(n);
    assert_non_null(enc);
    exec_res_write(&x, enc);
    ember_result call = { .runner = 1, .node = 0 };
    struct bridge_outcome o = { .out = enc, .out_len = n, .handler = "exec", .call = &call };
    size_t len;
    char *b = bridge_blob(&o, "h", "c", 1, &len);
    assert_non_null(b);
    const char *nl = memchr(b, '\n', len);
    assert_non_null(nl);
    assert_int_equal(len - (size_t)(nl + 1 - b), n);
    assert_memory_equal(nl + 1, enc, n); /* decoded by the producer as ember call decodes it */
    assert_non_null(strstr(b, "\"receipt\":{\"handler\":\"exec\",\"end\":\"exit\",\"exit\":3,\"signal\":0,"));
    assert_non_null(strstr(b, "\"run_s\":0.500000,\"user_s\":0.250000,\"sys_s\":0.000000,"
                              "\"max_rss_bytes\":1048576,\"pid\":77,\"runner_pid\":66,\"runner\":1,\"node\":0}}\n"));
    free(b);
    free(enc);
}

/* what the bridge writes, libember-redis's reader reads back as it was;
 * every prefix of it is refused and every bit flipped is refused or read,
 * never a crash nor a read past it */
static void blob_read_back(void **st)
{
    (void)st;
    static const char out[] = "x\0y\n";
    ember_result call = { .runner = 2, .node = 1, .start_ns = 3000000000ull };
    struct bridge_outcome o = { .status = -EMBER_EPOISON, .detail = 11, .out = out, .out_len = 4,
                                .cause = "crashed: signal 11", .handler = "sample.crash", .call = &call,
                                .submit_ns = 1000000000ull, .done_ns = 4000000000ull };
    size_t len;
    char *b = bridge_blob(&o, "h\t1", "c\"q\\", 3, &len);
    assert_non_null(b);
    ember_redis_result r;
    char err[256] = "";
    if (ember_redis_result_parse(b, len, &r, err, sizeof err) != 0) fail_msg("read back: %s", err);
    assert_int_equal(r.status, -EMBER_EPOISON);
    assert_int_equal(r.detail, 11);
    assert_int_equal(r.deliveries, 3);
    assert_string_equal(r.error, "EMBER_EPOISON");
    assert_string_equal(r.host, "h\t1");
    assert_string_equal(r.consumer, "c\"q\\");
    assert_string_equal(r.cause, "crashed: signal 11");
    assert_int_equal(r.len, 4);
    assert_memory_equal(r.data, out, 4);
    assert_non_null(r.receipt);
    assert_true(r.receipt_len > 2 && r.receipt[0] == '{' && r.receipt[r.receipt_len - 1] == '}');
    static const char handler[] = "\"handler\":\"sample.crash\"";
    assert_non_null(memmem(r.receipt, r.receipt_len, handler, sizeof handler - 1));
    for (size_t n = 0; n < len; n++) {
        char *cut = malloc(n ? n : 1); /* exactly n bytes: ASan sees a read past them */
        assert_non_null(cut);
        memcpy(cut, b, n);
        assert_int_equal(ember_redis_result_parse(cut, n, &r, NULL, 0), -EMBER_REDIS_EBLOB);
        free(cut);
    }
    char *m = malloc(len);
    assert_non_null(m);
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(m, b, len);
            m[i] ^= (char)(1 << bit);
            int rc = ember_redis_result_parse(m, len, &r, NULL, 0);
            assert_true(rc == 0 || rc == -EMBER_REDIS_EBLOB);
            if (rc == 0) assert_true((const char *)r.data >= m && (const char *)r.data + r.len <= m + len);
        }
    free(m);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(causes),
        cmocka_unit_test(blob_ok),
        cmocka_unit_test(blob_dead_letter),
        cmocka_unit_test(blob_timeout),
        cmocka_unit_test(blob_exec),
        cmocka_unit_test(blob_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
