/* Description: libember-redis's pure parts: Redis URLs, and the result blobs
 * bridges post, corrupt ones included (a clear error, never a crash). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <ember/client.h>
#include <ember/redis.h>

static void url_ok(void **state)
{
    (void)state;
    struct ember_redis_url u;
    char err[256];
    assert_int_equal(ember_redis_url_parse("redis://localhost", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_false(u.unix_socket);
    assert_int_equal(ember_redis_url_parse("redis://:s%40cret@10.0.0.5:7000/3", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 3);
    assert_string_equal(u.password, "s@cret");
    assert_string_equal(u.user, "");
    assert_int_equal(ember_redis_url_parse("redis://app:pw@[::1]:6380", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6380);
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "pw");
    assert_int_equal(ember_redis_url_parse("redis://h/", &u, err, sizeof err), 0);
    assert_int_equal(u.db, 0);
    assert_int_equal(ember_redis_url_parse("unix:///run/redis/redis.sock", &u, err, sizeof err), 0);
    assert_true(u.unix_socket);
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_int_equal(ember_redis_url_parse("unix:///tmp/r.sock?db=2", &u, err, sizeof err), 0);
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_int_equal(u.db, 2);
    /* the forms `ember bridge --redis` has always taken */
    assert_int_equal(ember_redis_url_parse("redis://10.0.0.5:6380", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 6380);
    assert_int_equal(ember_redis_url_parse("redis://worker:pw@h/7", &u, err, sizeof err), 0);
    assert_string_equal(u.user, "worker");
    assert_string_equal(u.password, "pw");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.db, 7);
    /* a password alone, as redis-cli reads it */
    assert_int_equal(ember_redis_url_parse("redis://secret@h", &u, err, sizeof err), 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "secret");
    /* the credentials end at the last '@': '/', '?', '#' and '@' in them as they are */
    assert_int_equal(ember_redis_url_parse("redis://:a/b?c#d@e@h:7000/2", &u, err, sizeof err), 0);
    assert_string_equal(u.password, "a/b?c#d@e");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 2);
    assert_int_equal(ember_redis_url_parse("unix:/run/redis/redis.sock", &u, err, sizeof err), 0);
    assert_true(u.unix_socket);
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_int_equal(ember_redis_url_parse("unix:///run/r%20s.sock", &u, err, sizeof err), 0);
    assert_string_equal(u.path, "/run/r s.sock");
    assert_int_equal(ember_redis_url_parse("unix://run/r.sock", &u, err, sizeof err), 0);
    assert_string_equal(u.path, "run/r.sock");
    assert_string_equal(u.password, "");
    /* a socket with credentials: unix://[[USER]:PASSWORD@]/PATH[?db=N] */
    assert_int_equal(ember_redis_url_parse("unix://:pw@/run/redis/redis.sock", &u, err, sizeof err), 0);
    assert_true(u.unix_socket);
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.db, 0);
    assert_int_equal(ember_redis_url_parse("unix://app:pw@/tmp/r.sock?db=5", &u, err, sizeof err), 0);
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "pw");
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_int_equal(u.db, 5);
    assert_int_equal(ember_redis_url_parse("unix://secret@/tmp/r.sock", &u, err, sizeof err), 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "secret");
    assert_int_equal(ember_redis_url_parse("unix://:p%40ss%3f@/tmp/r%20s.sock", &u, err, sizeof err), 0);
    assert_string_equal(u.password, "p@ss?");
    assert_string_equal(u.path, "/tmp/r s.sock");
    /* the credentials end at the last '@' before '/': '@', '/', '?', '#' in them as they are */
    assert_int_equal(ember_redis_url_parse("unix://:a@/b?c#d@e@/run/r.sock?db=1", &u, err, sizeof err), 0);
    assert_string_equal(u.password, "a@/b?c#d@e");
    assert_string_equal(u.path, "/run/r.sock");
    assert_int_equal(u.db, 1);
    /* a path given at once (no credentials) may hold '@' */
    assert_int_equal(ember_redis_url_parse("unix:///run/a@/r@b.sock", &u, err, sizeof err), 0);
    assert_string_equal(u.path, "/run/a@/r@b.sock");
    assert_string_equal(u.password, "");
    assert_int_equal(ember_redis_url_parse("unix:/run/a@b.sock", &u, err, sizeof err), 0);
    assert_string_equal(u.path, "/run/a@b.sock");
    assert_string_equal(u.password, "");
}

/* URL is refused, and the message holds WORD */
static void refused(const char *url, const char *word)
{
    struct ember_redis_url u;
    char err[1024] = "";
    assert_int_equal(ember_redis_url_parse(url, &u, err, sizeof err), -EMBER_EINVAL);
    if (!strstr(err, word)) fail_msg("'%s': message '%s' lacks '%s'", url, err, word);
}

static void url_bad(void **state)
{
    (void)state;
    refused("", "no Redis URL");
    refused("http://x", "not a Redis URL");
    refused("rediss://x", "not supported");
    refused("redis://", "no host");
    refused("redis://:pw@", "no host");
    refused("redis://h:0", "port");
    refused("redis://h:65536", "port");
    refused("redis://h:12x", "port");
    refused("redis://h:", "port");
    refused("redis://h/db", "database");
    refused("redis://h?x=1", "query");
    refused("localhost:6379", "not a Redis URL");
    refused("redis://:6379", "no host");
    refused("redis://h:0", "'0' is not a number from 1 to 65535");
    refused("redis://[::1]x", "after ']'");
    refused("unix:", "no socket");
    refused("unix:///s%4", "bad %XX");
    refused("redis://:%zz@h", "password");
    refused("redis://[::1", "']'");
    refused("unix://", "no socket");
    refused("redis://:s3cret@h:0", "redis://***@h:0");
    struct ember_redis_url v;
    char msg[256];
    ember_redis_url_parse("redis://app:s3cret@h:x", &v, msg, sizeof msg);
    if (strstr(msg, "s3cret")) fail_msg("a message quotes the password: %s", msg);
    ember_redis_url_parse("redis://:s3/cret@h:x", &v, msg, sizeof msg);
    if (strstr(msg, "cret")) fail_msg("a message quotes the password: %s", msg);
    refused("unix:///s?x=1", "db=N");
    refused("unix://:pw@", "the socket's absolute path");
    /* credentials whose '@' was forgotten are not a relative socket path
     * (which a connect error would print) */
    refused("unix://:s3cret/run/redis.sock", "end with '@'");
    ember_redis_url_parse("unix://:s3cret/run/redis.sock", &v, msg, sizeof msg);
    if (strstr(msg, "s3cret")) fail_msg("a message quotes the password: %s", msg);
    refused("unix://:pw@run/r.sock", "unix://[[USER]:PASSWORD@]/PATH");
    refused("unix://:%zz@/s", "password");
    refused("unix://:pw@/s?x=1", "unix://***@/s?x=1");
    refused("unix://:pw@?db=1", "absolute path");
    const char *unix_bad[] = { "unix://app:s3cret@/s?db=x", "unix://:s3cret@rel", "unix://:s3c@ret@",
                               "unix://:s3cret@/s?x", "unix://:s3cret@?db=1", "unix://s3cret@/s%4" };
    for (size_t i = 0; i < sizeof unix_bad / sizeof *unix_bad; i++) {
        assert_int_equal(ember_redis_url_parse(unix_bad[i], &v, msg, sizeof msg), -EMBER_EINVAL);
        if (strstr(msg, "s3c") || strstr(msg, "ret@")) fail_msg("a message quotes the password: %s", msg);
    }
    char big[400];
    memset(big, 'a', sizeof big);
    memcpy(big, "redis://", 8);
    big[sizeof big - 1] = 0;
    refused(big, "too long");
    /* no room for the message: still refused */
    struct ember_redis_url u;
    assert_int_equal(ember_redis_url_parse("nope", &u, NULL, 0), -EMBER_EINVAL);
}

static void blob_ok(void **state)
{
    (void)state;
    const char b[] = "{\"status\":0,\"error\":\"\",\"detail\":0,\"host\":\"h1\",\"consumer\":\"h1-9\","
                     "\"deliveries\":1,\"output_len\":5,\"receipt\":{\"end\":\"exit\",\"run_s\":1.5e-3,"
                     "\"n\":[1,{\"x\":null}],\"t\":true}}\nhi\0\nx";
    ember_redis_result r;
    char err[256];
    assert_int_equal(ember_redis_result_parse(b, sizeof b - 1, &r, err, sizeof err), 0);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.host, "h1");
    assert_string_equal(r.consumer, "h1-9");
    assert_int_equal(r.deliveries, 1);
    assert_int_equal(r.len, 5);
    assert_memory_equal(r.data, "hi\0\nx", 5);
    assert_non_null(r.receipt);
    assert_int_equal(r.receipt[0], '{');
    assert_int_equal(r.receipt[r.receipt_len - 1], '}');
    assert_null(r._blob);
    const char d[] = "{ \"output_len\" : 0 , \"status\" : -1022, \"error\":\"EPOISON\", \"detail\": 11,"
                     "\"cause\":\"crashed: signal 11\",\"deliveries\":3, \"future\":\"a\\\"b\\u00e9\"}\n";
    assert_int_equal(ember_redis_result_parse(d, sizeof d - 1, &r, err, sizeof err), 0);
    assert_int_equal(r.status, -EMBER_EPOISON);
    assert_int_equal(r.detail, 11);
    assert_string_equal(r.cause, "crashed: signal 11");
    assert_string_equal(r.error, "EPOISON");
    assert_int_equal(r.len, 0);
    assert_null(r.receipt);
    const char e[] = "{\"status\":0,\"output_len\":0,\"host\":\"a\\nb\\u0041\"}\n";
    assert_int_equal(ember_redis_result_parse(e, sizeof e - 1, &r, err, sizeof err), 0);
    assert_string_equal(r.host, "a\nbA");
}

static void corrupt(const char *blob, size_t len, const char *word)
{
    ember_redis_result r;
    char err[256] = "";
    memset(&r, 0x5a, sizeof r);
    assert_int_equal(ember_redis_result_parse(blob, len, &r, err, sizeof err), -EMBER_REDIS_EBLOB);
    if (!strstr(err, word)) fail_msg("blob '%.*s': message '%s' lacks '%s'", (int)len, blob, err, word);
    assert_null(r.data);
    assert_null(r._blob);
}
#define CORRUPT(s, w) corrupt(s, sizeof s - 1, w)

static void blob_corrupt(void **state)
{
    (void)state;
    CORRUPT("", "no JSON line");
    CORRUPT("{\"status\":0,\"output_len\":0}", "no JSON line");
    CORRUPT("\n", "expected '{'");
    CORRUPT("[]\n", "expected '{'");
    CORRUPT("{\"status\":0}\n", "output_len");
    CORRUPT("{\"output_len\":0}\n", "status");
    CORRUPT("{\"status\":0,\"output_len\":3}\nab", "carries 2");
    CORRUPT("{\"status\":0,\"output_len\":1}\nab", "carries 2");
    CORRUPT("{\"status\":0,\"output_len\":-1}\n", "output_len -1");
    CORRUPT("{\"status\":\"0\",\"output_len\":0}\n", "number");
    CORRUPT("{\"status\":1.5,\"output_len\":0}\n", "whole number");
    CORRUPT("{\"status\":5,\"output_len\":0}\n", "out of range");
    CORRUPT("{\"status\":0,\"output_len\":99999999999999999999}\n", "out of range");
    CORRUPT("{\"status\":0,\"output_len\":0,\"host\":\"abc}\n", "closing quote");
    CORRUPT("{\"status\":0,\"output_len\":0,\"host\":\"a\\qb\"}\n", "bad escape");
    CORRUPT("{\"status\":0,\"output_len\":0,\"host\":\"\\u12\"}\n", "\\u");
    CORRUPT("{\"status\":0,\"output_len\":0,\"x\":tru}\n", "unknown value");
    CORRUPT("{\"status\":0,\"output_len\":0,}\n", "expected '\"'");
    CORRUPT("{\"status\":0 \"output_len\":0}\n", "expected '}'");
    CORRUPT("{\"status\":0,\"output_len\":0} x\n", "text after");
    CORRUPT("{\"status\":0,\"output_len\":0,\"receipt\":{\"a\":1\n", "expected");
    /* nesting: bounded, not a stack overflow */
    char deep[4096];
    size_t n = (size_t)snprintf(deep, sizeof deep, "{\"status\":0,\"output_len\":0,\"x\":");
    while (n < 3000) deep[n++] = '[';
    deep[n++] = '\n';
    corrupt(deep, n, "nested deeper");
    /* every prefix of a good blob, and every byte flipped: refused or read, never a crash */
    const char good[] = "{\"status\":-1014,\"error\":\"EHANDLER\",\"detail\":3,\"host\":\"h\",\"output_len\":3,"
                        "\"receipt\":{\"a\":[1,2.5e3,\"x\"]}}\nabc";
    ember_redis_result r;
    for (size_t len = 0; len < sizeof good - 1; len++)
        assert_int_equal(ember_redis_result_parse(good, len, &r, NULL, 0), -EMBER_REDIS_EBLOB);
    char m[sizeof good];
    for (size_t i = 0; i < sizeof good - 1; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(m, good, sizeof good);
            m[i] ^= (char)(1 << bit);
            int rc = ember_redis_result_parse(m, sizeof good - 1, &r, NULL, 0);
            assert_true(rc == 0 || rc == -EMBER_REDIS_EBLOB);
            if (rc == 0) assert_true(r.len <= sizeof good);
        }
}

static void codes(void **state)
{
    (void)state;
    assert_non_null(strstr(ember_redis_strerror(-EMBER_REDIS_ECONN), "cannot be reached"));
    assert_non_null(strstr(ember_redis_strerror(-EMBER_REDIS_EBLOB), "cannot be read"));
    /* a failed open says why, on this thread */
    ember_redis *r = (ember_redis *)1;
    assert_int_equal(ember_redis_open("bogus://", "s", &r), -EMBER_EINVAL);
    assert_null(r);
    assert_non_null(strstr(ember_redis_errmsg(NULL), "not a Redis URL"));
    assert_int_equal(ember_redis_open("redis://localhost", "", &r), -EMBER_EINVAL);
    assert_non_null(strstr(ember_redis_errmsg(NULL), "--stream"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_ok), cmocka_unit_test(url_bad), cmocka_unit_test(blob_ok),
        cmocka_unit_test(blob_corrupt), cmocka_unit_test(codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
