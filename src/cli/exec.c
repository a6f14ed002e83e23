/* cli/exec.c - the exec handler's request and result as bytes (exec.h).
 *
 * Each is a sequence of fields: a tag byte, a 32-bit little-endian length,
 * that many bytes. Numbers are fixed-width little-endian (8 bytes, 4 for the
 * end, code and pid), strings carry their NUL (and no other), flags are
 * empty. Request tags are 0x01-0x0c, result tags 0x81-0x8c, so neither
 * decodes as the other. Decoding never trusts a length: every field must fit
 * in what is left, every number must have its width, a singular field may
 * come once, and what the request cannot do without (a program) must be
 * there. The encoders count first and write second, into one block. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "exec.h"

enum { /* request fields */
    RQ_ARG = 0x01,        /* string, repeated: argv in order */
    RQ_SHELL = 0x02,      /* flag */
    RQ_SHELL_PATH = 0x03, /* string */
    RQ_CWD = 0x04,        /* string */
    RQ_ENV_SET = 0x05,    /* flag: ENV fields are the whole environment */
    RQ_ENV = 0x06,        /* string "NAME=VALUE", repeated */
    RQ_STDIN_FILE = 0x07, /* string */
    RQ_STDIN_DATA = 0x08, /* bytes */
    RQ_OUT_LIMIT = 0x09,  /* u64 */
    RQ_ERR_LIMIT = 0x0a,  /* u64 */
    RQ_KILL_GRACE = 0x0b, /* i64 ns */
    RQ_OUTPUT = 0x0c,     /* "TMP\0FINAL\0", repeated */
    RQ_RUN_LIMIT = 0x0d,  /* i64 ns */
    RQ_LAST = RQ_RUN_LIMIT,
};
enum { /* result fields */
    RS_END = 0x81,        /* u32 EXEC_*, required */
    RS_CODE = 0x82,       /* i32, required */
    RS_PID = 0x83,        /* i32 */
    RS_UTIME = 0x84,      /* u64 ns */
    RS_STIME = 0x85,      /* u64 ns */
    RS_MAXRSS = 0x86,     /* u64 bytes */
    RS_WALL = 0x87,       /* u64 ns */
    RS_OUT = 0x88,        /* bytes */
    RS_OUT_TOTAL = 0x89,  /* u64 */
    RS_ERR = 0x8a,        /* bytes */
    RS_ERR_TOTAL = 0x8b,  /* u64 */
    RS_MSG = 0x8c,        /* string */
    RS_RUNNER = 0x8d,     /* i32: the runner's pid */
    RS_FIRST = RS_END,
    RS_LAST = RS_RUNNER,
};
#define FIELD_HDR 5u

/* Where fields go: with P NULL it only counts. */
struct writer {
    unsigned char *p;
    size_t len;
};

/* A field of tag TAG holding A[0..AN) then B[0..BN). */
static void put2(struct writer *w, unsigned tag, const void *a, size_t an, const void *b, size_t bn)
{
    if (w->p) {
        unsigned char *d = w->p + w->len;
        d[0] = (unsigned char)tag;
        for (int i = 0; i < 4; i++) d[1 + i] = (unsigned char)((uint32_t)(an + bn) >> (8 * i));
        if (an) memcpy(d + FIELD_HDR, a, an);
        if (bn) memcpy(d + FIELD_HDR + an, b, bn);
    }
    w->len += FIELD_HDR + an + bn;
}

static void put(struct writer *w, unsigned tag, const void *data, size_t n)
{
    put2(w, tag, data, n, NULL, 0);
}

static void put_u64(struct writer *w, unsigned tag, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    put(w, tag, b, 8);
}

static void put_u32(struct writer *w, unsigned tag, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
    put(w, tag, b, 4);
}

static void put_str(struct writer *w, unsigned tag, const char *s)
{
    put(w, tag, s, strlen(s) + 1);
}

static uint64_t get_u64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static uint32_t get_u32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Does every string and byte run of REQ fit a field's 32-bit length? */
static bool req_fits(const struct exec_req *req)
{
    const size_t max = UINT32_MAX - 1; /* room for a NUL */
    for (size_t i = 0; i < req->argc; i++)
        if (!req->argv[i] || strlen(req->argv[i]) > max) return false;
    for (size_t i = 0; req->env_set && i < req->envc; i++)
        if (!req->env[i] || strlen(req->env[i]) > max) return false;
    for (size_t i = 0; i < req->noutputs; i++)
        if (!req->outputs[i].tmp || !req->outputs[i].final ||
            strlen(req->outputs[i].tmp) + strlen(req->outputs[i].final) + 2 > UINT32_MAX)
            return false;
    return req->stdin_len <= UINT32_MAX && (!req->stdin_len || req->stdin_data) &&
           (!req->cwd || strlen(req->cwd) <= max) && (!req->shell_path || strlen(req->shell_path) <= max) &&
           (!req->stdin_file || strlen(req->stdin_file) <= max);
}

static void req_put(struct writer *w, const struct exec_req *req)
{
    for (size_t i = 0; i < req->argc; i++) put_str(w, RQ_ARG, req->argv[i]);
    if (req->shell) put(w, RQ_SHELL, NULL, 0);
    if (req->shell_path) put_str(w, RQ_SHELL_PATH, req->shell_path);
    if (req->cwd) put_str(w, RQ_CWD, req->cwd);
    if (req->env_set) {
        put(w, RQ_ENV_SET, NULL, 0);
        for (size_t i = 0; i < req->envc; i++) put_str(w, RQ_ENV, req->env[i]);
    }
    if (req->stdin_file) put_str(w, RQ_STDIN_FILE, req->stdin_file);
    else if (req->stdin_data) put(w, RQ_STDIN_DATA, req->stdin_data, req->stdin_len);
    if (req->out_limit) put_u64(w, RQ_OUT_LIMIT, req->out_limit);
    if (req->err_limit) put_u64(w, RQ_ERR_LIMIT, req->err_limit);
    if (req->kill_grace_ns) put_u64(w, RQ_KILL_GRACE, (uint64_t)req->kill_grace_ns);
    if (req->run_limit_ns) put_u64(w, RQ_RUN_LIMIT, (uint64_t)req->run_limit_ns);
    for (size_t i = 0; i < req->noutputs; i++)
        put2(w, RQ_OUTPUT, req->outputs[i].tmp, strlen(req->outputs[i].tmp) + 1, req->outputs[i].final,
             strlen(req->outputs[i].final) + 1);
}

int exec_req_encode(const struct exec_req *req, void **buf, size_t *len)
{
    if (!req || !req->argc || !req->argv || !req_fits(req)) return -EINVAL;
    struct writer w = { NULL, 0 };
    req_put(&w, req);
    w.p = malloc(w.len);
    if (!w.p) return -ENOMEM;
    *len = w.len;
    w.len = 0;
    req_put(&w, req);
    *buf = w.p;
    return 0;
}

/* One field of a buffer being decoded. */
struct field {
    unsigned tag;
    const unsigned char *data;
    uint32_t len;
    size_t at; /* its offset, for messages */
};

/* The field at *POS of BUF[0..LEN); false when it does not fit (*WHY says how). */
static bool next_field(const unsigned char *buf, size_t len, size_t *pos, struct field *f,
                       const char **why)
{
    size_t left = len - *pos;
    if (left < FIELD_HDR) {
        *why = "a field's header is cut short";
        return false;
    }
    f->at = *pos;
    f->tag = buf[*pos];
    f->len = get_u32(buf + *pos + 1);
    if (f->len > left - FIELD_HDR) {
        *why = "a field is longer than what is left";
        return false;
    }
    f->data = buf + *pos + FIELD_HDR;
    *pos += FIELD_HDR + f->len;
    return true;
}

/* A string field: its bytes end with its one NUL. */
static bool is_str(const struct field *f)
{
    return f->len >= 1 && f->data[f->len - 1] == 0 && !memchr(f->data, 0, f->len - 1);
}

/* An output field: "TMP\0FINAL\0", both non-empty; *SPLIT: FINAL's offset. */
static bool is_output(const struct field *f, size_t *split)
{
    const unsigned char *z = f->len ? memchr(f->data, 0, f->len) : NULL;
    if (!z || z == f->data) return false;
    *split = (size_t)(z - f->data) + 1;
    struct field fin = { f->tag, f->data + *split, (uint32_t)(f->len - *split), 0 };
    return fin.len > 1 && is_str(&fin);
}

static int req_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int req_error(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        int n = snprintf(err, errlen, "malformed exec request: ");
        va_list ap;
        va_start(ap, fmt);
        if (n >= 0 && (size_t)n < errlen) vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static const char *const rq_names[] = { "", "argument", "shell flag", "shell path", "working directory",
                                        "environment flag", "environment entry", "stdin file",
                                        "stdin bytes", "stdout limit", "stderr limit", "kill grace",
                                        "output", "run limit" };

/* Check one request field F (tag known); counts the repeated ones in
 * N[tag], and each singular one may come once. */
static int req_check(const struct field *f, size_t *n, char *err, size_t errlen)
{
    size_t split;
    const char *name = rq_names[f->tag];
    switch (f->tag) {
    case RQ_ARG: case RQ_ENV:
        if (!is_str(f)) return req_error(err, errlen, "%s at byte %zu is not a string", name, f->at);
        break;
    case RQ_SHELL_PATH: case RQ_CWD: case RQ_STDIN_FILE:
        if (!is_str(f) || f->len < 2)
            return req_error(err, errlen, "%s at byte %zu is not a non-empty string", name, f->at);
        break;
    case RQ_SHELL: case RQ_ENV_SET:
        if (f->len) return req_error(err, errlen, "%s at byte %zu has a value", name, f->at);
        break;
    case RQ_OUT_LIMIT: case RQ_ERR_LIMIT: case RQ_KILL_GRACE: case RQ_RUN_LIMIT:
        if (f->len != 8) return req_error(err, errlen, "%s at byte %zu is not 8 bytes", name, f->at);
        if (f->tag == RQ_KILL_GRACE && (int64_t)get_u64(f->data) < 0)
            return req_error(err, errlen, "kill grace is negative");
        if (f->tag == RQ_RUN_LIMIT && (int64_t)get_u64(f->data) < 0)
            return req_error(err, errlen, "run limit is negative");
        break;
    case RQ_OUTPUT:
        if (!is_output(f, &split))
            return req_error(err, errlen, "output at byte %zu is not two non-empty paths", f->at);
        break;
    default: /* RQ_STDIN_DATA: any bytes */
        break;
    }
    bool repeated = f->tag == RQ_ARG || f->tag == RQ_ENV || f->tag == RQ_OUTPUT;
    if (n[f->tag]++ && !repeated) return req_error(err, errlen, "%s given twice", name);
    return 0;
}

/* Fill REQ from field F (checked); the arrays are filled at *ARGI, *ENVI, *OUTI. */
static void req_fill(const struct field *f, struct exec_req *req, const char **argv, const char **env,
                     struct exec_output *outs, size_t *argi, size_t *envi, size_t *outi)
{
    const char *s = (const char *)f->data;
    size_t split = 0; /* set by is_output, which the decode checked already */
    switch (f->tag) {
    case RQ_ARG: argv[(*argi)++] = s; break;
    case RQ_ENV: env[(*envi)++] = s; break;
    case RQ_SHELL: req->shell = true; break;
    case RQ_ENV_SET: req->env_set = true; break;
    case RQ_SHELL_PATH: req->shell_path = s; break;
    case RQ_CWD: req->cwd = s; break;
    case RQ_STDIN_FILE: req->stdin_file = s; break;
    case RQ_STDIN_DATA:
        req->stdin_data = f->data;
        req->stdin_len = f->len;
        break;
    case RQ_OUT_LIMIT: req->out_limit = get_u64(f->data); break;
    case RQ_ERR_LIMIT: req->err_limit = get_u64(f->data); break;
    case RQ_KILL_GRACE: req->kill_grace_ns = (int64_t)get_u64(f->data); break;
    case RQ_RUN_LIMIT: req->run_limit_ns = (int64_t)get_u64(f->data); break;
    default: /* RQ_OUTPUT */
        is_output(f, &split);
        outs[*outi].tmp = s;
        outs[(*outi)++].final = s + split;
    }
}

int exec_req_decode(const void *buf, size_t len, struct exec_req *req, void **store, char *err,
                    size_t errlen)
{
    const unsigned char *b = buf;
    size_t n[RQ_LAST + 1] = { 0 }, pos = 0;
    struct field f = { 0, NULL, 0, 0 };
    const char *why;
    memset(req, 0, sizeof *req);
    *store = NULL;
    if (err && errlen) err[0] = 0;
    while (pos < len) { /* check, and count */
        if (!next_field(b, len, &pos, &f, &why))
            return req_error(err, errlen, "%s (byte %zu of %zu)", why, pos, len);
        if (f.tag < 1 || f.tag > RQ_LAST)
            return req_error(err, errlen, "unknown field 0x%02x at byte %zu", f.tag, f.at);
        int rc = req_check(&f, n, err, errlen);
        if (rc) return rc;
    }
    if (!n[RQ_ARG]) return req_error(err, errlen, "no program to run");
    if (n[RQ_ENV] && !n[RQ_ENV_SET]) return req_error(err, errlen, "environment entries without the environment flag");
    if (n[RQ_STDIN_FILE] && n[RQ_STDIN_DATA]) return req_error(err, errlen, "both a stdin file and stdin bytes");
    size_t ptrs = n[RQ_ARG] + 1 + n[RQ_ENV] + 1;
    char *blk = malloc(ptrs * sizeof(char *) + n[RQ_OUTPUT] * sizeof(struct exec_output));
    if (!blk) return req_error(err, errlen, "out of memory");
    const char **argv = (const char **)(void *)blk, **env = argv + n[RQ_ARG] + 1;
    struct exec_output *outs = (struct exec_output *)(void *)(blk + ptrs * sizeof(char *));
    size_t argi = 0, envi = 0, outi = 0;
    for (pos = 0; pos < len && next_field(b, len, &pos, &f, &why);) /* all fit: checked above */
        req_fill(&f, req, argv, env, outs, &argi, &envi, &outi);
    argv[argi] = NULL;
    env[envi] = NULL;
    req->argv = argv;
    req->argc = argi;
    req->env = env;
    req->envc = envi;
    req->outputs = n[RQ_OUTPUT] ? outs : NULL;
    req->noutputs = outi;
    *store = blk;
    return 0;
}

static void res_put(struct writer *w, const struct exec_res *res)
{
    put_u32(w, RS_END, (uint32_t)res->end);
    put_u32(w, RS_CODE, (uint32_t)res->code);
    if (res->pid) put_u32(w, RS_PID, (uint32_t)res->pid);
    put_u64(w, RS_UTIME, res->utime_ns);
    put_u64(w, RS_STIME, res->stime_ns);
    put_u64(w, RS_MAXRSS, res->maxrss_bytes);
    put_u64(w, RS_WALL, res->wall_ns);
    put(w, RS_OUT, res->out, res->out_len);
    put_u64(w, RS_OUT_TOTAL, res->out_total);
    put(w, RS_ERR, res->err, res->err_len);
    put_u64(w, RS_ERR_TOTAL, res->err_total);
    if (res->msg && res->msg[0]) put_str(w, RS_MSG, res->msg);
    if (res->runner_pid) put_u32(w, RS_RUNNER, (uint32_t)res->runner_pid);
}

size_t exec_res_size(const struct exec_res *res)
{
    struct writer w = { NULL, 0 };
    res_put(&w, res);
    return w.len;
}

void exec_res_write(const struct exec_res *res, void *dst)
{
    struct writer w = { dst, 0 };
    res_put(&w, res);
}

/* One result field F into RES: false when malformed. */
static bool res_fill(const struct field *f, struct exec_res *res)
{
    static const unsigned char width[RS_LAST - RS_FIRST + 1] = { 4, 4, 4, 8, 8, 8, 8, 0, 8, 0, 8, 0, 4 };
    unsigned wd = width[f->tag - RS_FIRST];
    if (wd && f->len != wd) return false;
    uint64_t v = wd == 8 ? get_u64(f->data) : wd == 4 ? get_u32(f->data) : 0;
    switch (f->tag) {
    case RS_END: res->end = (int)v; return v >= EXEC_EXITED && v <= EXEC_TIMEOUT;
    case RS_CODE: res->code = (int)(int32_t)v; return true;
    case RS_PID: res->pid = (int)(int32_t)v; return res->pid >= 0;
    case RS_UTIME: res->utime_ns = v; return true;
    case RS_STIME: res->stime_ns = v; return true;
    case RS_MAXRSS: res->maxrss_bytes = v; return true;
    case RS_WALL: res->wall_ns = v; return true;
    case RS_OUT: res->out = (const char *)f->data, res->out_len = f->len; return true;
    case RS_OUT_TOTAL: res->out_total = v; return true;
    case RS_ERR: res->err = (const char *)f->data, res->err_len = f->len; return true;
    case RS_ERR_TOTAL: res->err_total = v; return true;
    case RS_RUNNER: res->runner_pid = (int)(int32_t)v; return res->runner_pid >= 0;
    default: /* RS_MSG */
        res->msg = (const char *)f->data;
        return is_str(f);
    }
}

int exec_res_decode(const void *buf, size_t len, struct exec_res *res)
{
    const unsigned char *b = buf;
    uint32_t seen = 0;
    size_t pos = 0;
    struct field f;
    const char *why;
    memset(res, 0, sizeof *res);
    res->msg = "";
    while (pos < len) {
        if (!next_field(b, len, &pos, &f, &why)) return -EINVAL;
        if (f.tag < RS_FIRST || f.tag > RS_LAST) return -EINVAL;
        uint32_t bit = 1u << (f.tag - RS_FIRST);
        if ((seen & bit) || !res_fill(&f, res)) return -EINVAL;
        seen |= bit;
    }
    const uint32_t need = 1u << (RS_END - RS_FIRST) | 1u << (RS_CODE - RS_FIRST);
    if ((seen & need) != need || res->out_total < res->out_len || res->err_total < res->err_len)
        return -EINVAL;
    return 0;
}

int exec_res_status(const struct exec_res *res)
{
    switch (res->end) {
    case EXEC_EXITED: return res->code & 0xff;
    case EXEC_SIGNALED: return 128 + (res->code & 0x7f);
    case EXEC_NOTFOUND: return 127;
    case EXEC_TIMEOUT: return 124;
    default: return 126;
    }
}
