/* Description: the exec handler's request and result codec (src/cli/exec.c):
 * every field survives a round trip (argv verbatim, binary stdin, the
 * environment flag without entries); decoders refuse, with a message, a
 * buffer cut inside a field, an unknown tag, a length past the end, a string
 * without its NUL, a singular field given twice, a number of the wrong width,
 * a request without a program; random scribbles never make a decoder read
 * outside its buffer (ASan checks that build); a request is no result and a
 * result no request; the shell status of each end. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "cli/exec.h"

static const char *const full_argv[] = { "printf", "%s|", "two words", "it's \"quoted\"", "", "$HOME;*" };
static const char *const full_env[] = { "PATH=/usr/bin:/bin", "EMPTY=", "X=a=b" };
static const struct exec_output full_outs[] = { { "out/.a.tmp", "out/a.mp4" }, { "b.tmp", "b" } };
static const unsigned char stdin_bytes[] = { 'h', 0, 'i', 0xff, '\n' };

static struct exec_req full_req(void)
{
    return (struct exec_req){ .argv = full_argv, .argc = 6, .shell = true, .shell_path = "/bin/bash",
                              .cwd = "/tmp/some dir", .env = full_env, .envc = 3, .env_set = true,
                              .stdin_data = stdin_bytes, .stdin_len = sizeof stdin_bytes,
                              .out_limit = 1234, .err_limit = 1ull << 40, .kill_grace_ns = 250000000,
                              .outputs = full_outs, .noutputs = 2 };
}

static void *encode(const struct exec_req *req, size_t *len)
{
    void *buf = NULL;
    assert_int_equal(exec_req_encode(req, &buf, len), 0);
    return buf;
}

static void req_round_trip(void **state)
{
    (void)state;
    struct exec_req in = full_req(), out;
    size_t len;
    void *buf = encode(&in, &len), *store;
    char err[200];
    assert_int_equal(exec_req_decode(buf, len, &out, &store, err, sizeof err), 0);
    assert_int_equal(out.argc, 6);
    for (size_t i = 0; i < 6; i++) assert_string_equal(out.argv[i], full_argv[i]);
    assert_null(out.argv[6]);
    assert_true(out.shell);
    assert_string_equal(out.shell_path, "/bin/bash");
    assert_string_equal(out.cwd, "/tmp/some dir");
    assert_true(out.env_set);
    assert_int_equal(out.envc, 3);
    for (size_t i = 0; i < 3; i++) assert_string_equal(out.env[i], full_env[i]);
    assert_null(out.env[3]);
    assert_null(out.stdin_file);
    assert_int_equal(out.stdin_len, sizeof stdin_bytes);
    assert_memory_equal(out.stdin_data, stdin_bytes, sizeof stdin_bytes);
    assert_int_equal(out.out_limit, 1234);
    assert_int_equal(out.err_limit, 1ull << 40);
    assert_int_equal(out.kill_grace_ns, 250000000);
    assert_int_equal(out.noutputs, 2);
    assert_string_equal(out.outputs[1].tmp, "b.tmp");
    assert_string_equal(out.outputs[0].final, "out/a.mp4");
    free(store);
    free(buf);
}

/* The defaults travel as absent fields and come back as the defaults. */
static void req_minimal(void **state)
{
    (void)state;
    const char *argv[] = { "true" };
    struct exec_req in = { .argv = argv, .argc = 1 }, out;
    size_t len;
    void *buf = encode(&in, &len), *store;
    char err[200];
    assert_int_equal(exec_req_decode(buf, len, &out, &store, err, sizeof err), 0);
    assert_int_equal(out.argc, 1);
    assert_false(out.shell || out.env_set);
    assert_null(out.cwd);
    assert_null(out.shell_path);
    assert_null(out.stdin_file);
    assert_null(out.stdin_data);
    assert_null(out.outputs);
    assert_int_equal(out.out_limit + out.err_limit + (uint64_t)out.kill_grace_ns, 0);
    free(store);
    free(buf);
    /* an empty environment is not the runner's */
    in.env_set = true;
    in.stdin_file = "in.txt";
    buf = encode(&in, &len);
    assert_int_equal(exec_req_decode(buf, len, &out, &store, err, sizeof err), 0);
    assert_true(out.env_set);
    assert_int_equal(out.envc, 0);
    assert_null(out.env[0]);
    assert_string_equal(out.stdin_file, "in.txt");
    free(store);
    free(buf);
}

static void req_encode_refuses(void **state)
{
    (void)state;
    struct exec_req none = { 0 };
    void *buf = NULL;
    size_t len;
    assert_int_equal(exec_req_encode(&none, &buf, &len), -EINVAL);
    const char *argv[] = { "x", NULL };
    struct exec_req hole = { .argv = argv, .argc = 2 };
    assert_int_equal(exec_req_encode(&hole, &buf, &len), -EINVAL);
    assert_null(buf);
}

/* Decode BUF[0..LEN) expecting a refusal whose message holds WANT. */
static void refused(const void *buf, size_t len, const char *want)
{
    struct exec_req out;
    void *store = (void *)1;
    char err[200];
    assert_int_equal(exec_req_decode(buf, len, &out, &store, err, sizeof err), -EINVAL);
    assert_null(store);
    if (!strstr(err, "malformed exec request: ") || !strstr(err, want))
        fail_msg("message '%s' lacks '%s'", err, want);
}

/* Cut inside any field: refused; cut between fields: a shorter request or refused. */
static void req_truncated(void **state)
{
    (void)state;
    struct exec_req in = full_req();
    size_t len;
    unsigned char *buf = encode(&in, &len);
    bool boundary[4096] = { false };
    assert_true(len < sizeof boundary);
    for (size_t p = 0; p < len; p += 5 + (buf[p + 1] | buf[p + 2] << 8 | buf[p + 3] << 16 | (size_t)buf[p + 4] << 24))
        boundary[p] = true;
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1); /* exactly CUT bytes: ASan sees overreads */
        memcpy(copy, buf, cut);
        if (!boundary[cut]) {
            refused(copy, cut, "");
        } else {
            struct exec_req out;
            void *store;
            char err[200];
            if (exec_req_decode(copy, cut, &out, &store, err, sizeof err) == 0) {
                assert_true(out.argc >= 1);
                free(store);
            } else {
                assert_true(err[0] != 0);
            }
        }
        free(copy);
    }
    free(buf);
}

static void req_scribbled(void **state)
{
    (void)state;
    const char *argv[] = { "ls", "-l" };
    struct exec_req in = { .argv = argv, .argc = 2, .cwd = "/tmp" };
    size_t len;
    unsigned char *buf = encode(&in, &len);
    /* fields: ARG "ls\0" at 0 (8 bytes), ARG "-l\0" at 8, CWD "/tmp\0" at 16 */
    assert_int_equal(len, 8 + 8 + 10);
    unsigned char *b = malloc(len);
    memcpy(b, buf, len), b[8] = 0x7e;
    refused(b, len, "unknown field 0x7e");
    memcpy(b, buf, len), b[0] = 0x85; /* a result's tag */
    refused(b, len, "unknown field 0x85");
    memcpy(b, buf, len), b[17] = 200;
    refused(b, len, "longer than what is left");
    memcpy(b, buf, len), b[20] = 0xff; /* the length's high byte */
    refused(b, len, "longer than what is left");
    memcpy(b, buf, len), b[7] = 'x';  /* "ls" loses its NUL */
    refused(b, len, "argument at byte 0 is not a string");
    memcpy(b, buf, len), b[6] = 0; /* "l\0\0": a NUL inside */
    refused(b, len, "not a string");
    memcpy(b, buf, len), b[8] = 0x04; /* "-l" becomes a second cwd */
    refused(b, len, "working directory given twice");
    memcpy(b, buf, len), b[0] = 0x09; /* "ls\0" as the stdout limit: 3 bytes */
    refused(b, len, "stdout limit at byte 0 is not 8 bytes");
    memcpy(b, buf, len), b[0] = 0x02; /* a flag with a value */
    refused(b, len, "has a value");
    memcpy(b, buf, len);
    refused(b + 16, len - 16, "no program"); /* the cwd alone */
    free(b);
    /* random bytes into a valid request: never a read outside it; what
     * decodes has a program */
    unsigned rng = 12345;
    struct exec_req big = full_req();
    unsigned char *fb = encode(&big, &len);
    unsigned char *s = malloc(len);
    for (int it = 0; it < 20000; it++) {
        memcpy(s, fb, len);
        for (int k = 0; k < 1 + it % 4; k++) {
            rng = rng * 1103515245u + 12345u;
            s[(rng >> 8) % len] = (unsigned char)(rng >> 24);
        }
        struct exec_req out;
        void *store;
        char err[200];
        if (exec_req_decode(s, len, &out, &store, err, sizeof err) == 0) {
            assert_true(out.argc >= 1);
            for (size_t i = 0; i < out.argc; i++)
                assert_true((const unsigned char *)out.argv[i] >= s &&
                            (const unsigned char *)out.argv[i] < s + len);
            free(store);
        } else {
            assert_true(strncmp(err, "malformed exec request: ", 24) == 0 && err[24]);
        }
    }
    free(s);
    free(fb);
    free(buf);
}

static void *res_encode(const struct exec_res *r, size_t *len)
{
    *len = exec_res_size(r);
    void *buf = malloc(*len);
    exec_res_write(r, buf);
    return buf;
}

static void res_round_trip(void **state)
{
    (void)state;
    const char out[] = "stdout\0bytes", err[] = "oops\n";
    struct exec_res in = { .end = EXEC_SIGNALED, .code = 15, .pid = 4242, .utime_ns = 1, .stime_ns = 2,
                           .maxrss_bytes = 3ull << 33, .wall_ns = 4, .out = out, .out_len = sizeof out,
                           .out_total = 1ull << 35, .err = err, .err_len = 5, .err_total = 5,
                           .msg = "cannot run 'x'" },
                    r;
    size_t len;
    void *buf = res_encode(&in, &len);
    assert_int_equal(exec_res_decode(buf, len, &r), 0);
    assert_int_equal(r.end, EXEC_SIGNALED);
    assert_int_equal(r.code, 15);
    assert_int_equal(r.pid, 4242);
    assert_int_equal(r.utime_ns + r.stime_ns + r.wall_ns, 7);
    assert_int_equal(r.maxrss_bytes, 3ull << 33);
    assert_int_equal(r.out_len, sizeof out);
    assert_memory_equal(r.out, out, sizeof out);
    assert_int_equal(r.out_total, 1ull << 35);
    assert_int_equal(r.err_len, 5);
    assert_memory_equal(r.err, "oops\n", 5);
    assert_string_equal(r.msg, "cannot run 'x'");
    free(buf);
    /* nothing captured, no message: empty, and msg "" */
    struct exec_res empty = { .end = EXEC_NOTFOUND, .code = 2 };
    buf = res_encode(&empty, &len);
    assert_int_equal(exec_res_decode(buf, len, &r), 0);
    assert_int_equal(r.out_len + r.err_len, 0);
    assert_string_equal(r.msg, "");
    free(buf);
}

static void res_refused(void **state)
{
    (void)state;
    struct exec_res in = { .end = EXEC_EXITED, .code = 0, .out = "abc", .out_len = 3, .out_total = 3,
                           .msg = "m" },
                    r;
    size_t len;
    unsigned char *buf = res_encode(&in, &len);
    for (size_t cut = 0; cut < len; cut++) { /* cut anywhere: a field or END/CODE lost */
        unsigned char *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        if (exec_res_decode(copy, cut, &r) == 0) {
            /* only a cut after END and CODE at a boundary decodes */
            assert_true(cut >= 18);
        }
        free(copy);
    }
    assert_int_equal(exec_res_decode(buf, 17, &r), -EINVAL); /* CODE cut */
    assert_int_equal(exec_res_decode(buf + 9, len - 9, &r), -EINVAL); /* no END */
    unsigned char *b = malloc(len);
    memcpy(b, buf, len), b[5] = 9; /* END 9 */
    assert_int_equal(exec_res_decode(b, len, &r), -EINVAL);
    memcpy(b, buf, len), b[9] = 0x81; /* END twice */
    assert_int_equal(exec_res_decode(b, len, &r), -EINVAL);
    memcpy(b, buf, len), b[len - 1] = 'x'; /* msg without its NUL */
    assert_int_equal(exec_res_decode(b, len, &r), -EINVAL);
    free(b);
    in.out_total = 2; /* fewer written than kept */
    free(buf);
    buf = res_encode(&in, &len);
    assert_int_equal(exec_res_decode(buf, len, &r), -EINVAL);
    free(buf);
    /* a request is no result, a result no request */
    const char *argv[] = { "true" };
    struct exec_req req = { .argv = argv, .argc = 1 };
    buf = encode(&req, &len);
    assert_int_equal(exec_res_decode(buf, len, &r), -EINVAL);
    free(buf);
    in.out_total = 3;
    buf = res_encode(&in, &len);
    refused(buf, len, "unknown field 0x81");
    free(buf);
}

static void res_status(void **state)
{
    (void)state;
    struct exec_res r = { .end = EXEC_EXITED, .code = 3 };
    assert_int_equal(exec_res_status(&r), 3);
    r = (struct exec_res){ .end = EXEC_SIGNALED, .code = 15 };
    assert_int_equal(exec_res_status(&r), 143);
    r = (struct exec_res){ .end = EXEC_NOTFOUND, .code = 2 };
    assert_int_equal(exec_res_status(&r), 127);
    r = (struct exec_res){ .end = EXEC_NOEXEC, .code = 13 };
    assert_int_equal(exec_res_status(&r), 126);
    r = (struct exec_res){ .end = EXEC_FAILED, .code = 2 };
    assert_int_equal(exec_res_status(&r), 126);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(req_round_trip),   cmocka_unit_test(req_minimal),
        cmocka_unit_test(req_encode_refuses), cmocka_unit_test(req_truncated),
        cmocka_unit_test(req_scribbled),    cmocka_unit_test(res_round_trip),
        cmocka_unit_test(res_refused),      cmocka_unit_test(res_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
