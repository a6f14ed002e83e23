/* redis/blob.c - a result as a bridge posts it: one line of JSON, "\n",
 * then exactly output_len raw output bytes. Written here for the bridge
 * (ember_redis__blob_write, internal.h) and read here for the producers
 * (ember_redis_result_parse, redis.h), so the format is defined once.
 *
 * The JSON line is read by a small reader of its own that trusts nothing:
 * every string, number and nesting is checked against what is left of the
 * line, nesting is bounded, and any fault is a message naming it and the
 * byte where it was found. Members it does not know are skipped, so a newer
 * bridge may add some. Pure: no allocation, pointers into the blob. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ember/client.h>
#include <ember/redis.h>
#include "internal.h"

#define MAX_DEPTH 32

/* ---- writing -------------------------------------------------------------- */

/* S as a JSON string: '"' and '\\' escaped, control characters as \n, \t
 * or \u00XX, other bytes (UTF-8) as they are. */
static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* STATUS's name from client.h's table ("" for 0), as ember_errname() says it. */
static const char *status_name(int status)
{
    switch (-status) {
    case 0: return "";
#define EMBER__XNAME(name, val, msg) case val: return "EMBER_" #name;
        EMBER_ERROR_TABLE(EMBER__XNAME)
#undef EMBER__XNAME
    default: return "EMBER_EUNKNOWN";
    }
}

char *ember_redis__blob_write(const struct ember_redis__post *p, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return NULL;
    fprintf(f, "{\"status\":%d,\"error\":", p->status);
    put_string(f, status_name(p->status));
    fprintf(f, ",\"detail\":%d,\"host\":", p->detail);
    put_string(f, p->host);
    fputs(",\"consumer\":", f);
    put_string(f, p->consumer);
    fprintf(f, ",\"deliveries\":%u,\"output_len\":%zu", p->deliveries, p->out_len);
    if (p->cause) {
        fputs(",\"cause\":", f);
        put_string(f, p->cause);
    }
    if (p->receipt) {
        fputs(",\"receipt\":", f);
        fwrite(p->receipt, 1, p->receipt_len, f);
    }
    fputs("}\n", f);
    if (p->out_len) fwrite(p->out, 1, p->out_len, f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* ---- reading -------------------------------------------------------------- */

struct reader {
    const char *s, *p, *end;
    char *err;
    size_t errlen;
    bool failed;
};

static bool fault(struct reader *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fault(struct reader *rd, const char *fmt, ...)
{
    if (rd->failed) return false;
    rd->failed = true;
    if (rd->errlen) {
        char what[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(rd->err, rd->errlen, "the result's JSON line: %s at byte %zu", what, (size_t)(rd->p - rd->s));
    }
    return false;
}

static void blanks(struct reader *rd)
{
    while (rd->p < rd->end && (*rd->p == ' ' || *rd->p == '\t' || *rd->p == '\r')) rd->p++;
}

static bool expect(struct reader *rd, char c)
{
    blanks(rd);
    if (rd->p >= rd->end || *rd->p != c) return fault(rd, "expected '%c'", c);
    rd->p++;
    return true;
}

static void put_utf8(char *dst, size_t cap, size_t *o, unsigned cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) b[0] = (char)cp, n = 1;
    else if (cp < 0x800) b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    else b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | (cp >> 6 & 0x3f)), b[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    for (size_t i = 0; i < n; i++)
        if (*o + 1 < cap) dst[(*o)++] = b[i];
}

/* A string into DST (CAP bytes, cut to fit, NUL-terminated; DST NULL: skipped). */
static bool string(struct reader *rd, char *dst, size_t cap)
{
    size_t o = 0;
    if (!expect(rd, '"')) return false;
    while (rd->p < rd->end && *rd->p != '"') {
        unsigned char c = (unsigned char)*rd->p++;
        if (c < 0x20) return fault(rd, "a control character in a string");
        if (c == '\\') {
            if (rd->p >= rd->end) break;
            char e = *rd->p++;
            unsigned cp;
            switch (e) {
            case '"': case '\\': case '/': cp = (unsigned char)e; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                cp = 0;
                for (int i = 0; i < 4; i++) {
                    char h = rd->p < rd->end ? *rd->p++ : 0;
                    int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                          : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                    if (v < 0) return fault(rd, "a bad \\u escape");
                    cp = cp << 4 | (unsigned)v;
                }
                if (!cp) cp = '?'; /* no NUL inside C strings */
                break;
            default: return fault(rd, "a bad escape '\\%c'", e);
            }
            if (dst) put_utf8(dst, cap, &o, cp);
            continue;
        }
        if (dst && o + 1 < cap) dst[o++] = (char)c;
    }
    if (rd->p >= rd->end) return fault(rd, "a string without its closing quote");
    rd->p++;
    if (dst && cap) dst[o] = 0;
    return true;
}

/* A number: an integer into *OUT when OUT, else any JSON number skipped. */
static bool num(struct reader *rd, long long *out)
{
    blanks(rd);
    const char *b = rd->p;
    if (rd->p < rd->end && *rd->p == '-') rd->p++;
    const char *digits = rd->p;
    while (rd->p < rd->end && *rd->p >= '0' && *rd->p <= '9') rd->p++;
    if (rd->p == digits) return fault(rd, "expected a number");
    if (out) {
        if (rd->p - b > 18) return fault(rd, "a number out of range");
        long long v = 0;
        for (const char *q = digits; q < rd->p; q++) v = v * 10 + (*q - '0');
        *out = *b == '-' ? -v : v;
        if (rd->p < rd->end && (*rd->p == '.' || *rd->p == 'e' || *rd->p == 'E'))
            return fault(rd, "expected a whole number");
        return true;
    }
    if (rd->p < rd->end && *rd->p == '.') {
        rd->p++;
        while (rd->p < rd->end && *rd->p >= '0' && *rd->p <= '9') rd->p++;
    }
    if (rd->p < rd->end && (*rd->p == 'e' || *rd->p == 'E')) {
        rd->p++;
        if (rd->p < rd->end && (*rd->p == '+' || *rd->p == '-')) rd->p++;
        while (rd->p < rd->end && *rd->p >= '0' && *rd->p <= '9') rd->p++;
    }
    return true;
}

static bool word(struct reader *rd, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(rd->end - rd->p) < n || memcmp(rd->p, w, n) != 0) return fault(rd, "an unknown value");
    rd->p += n;
    return true;
}

/* Any value, skipped (DEPTH: the nesting so far). */
static bool skip_value(struct reader *rd, int depth)
{
    blanks(rd);
    if (rd->p >= rd->end) return fault(rd, "expected a value");
    if (depth > MAX_DEPTH) return fault(rd, "nested deeper than %d", MAX_DEPTH);
    char c = *rd->p;
    if (c == '"') return string(rd, NULL, 0);
    if (c == 't') return word(rd, "true");
    if (c == 'f') return word(rd, "false");
    if (c == 'n') return word(rd, "null");
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        rd->p++;
        blanks(rd);
        if (rd->p < rd->end && *rd->p == close) {
            rd->p++;
            return true;
        }
        for (;;) {
            if (c == '{' && (!string(rd, NULL, 0) || !expect(rd, ':'))) return false;
            if (!skip_value(rd, depth + 1)) return false;
            blanks(rd);
            if (rd->p < rd->end && *rd->p == ',') {
                rd->p++;
                continue;
            }
            return expect(rd, close);
        }
    }
    return num(rd, NULL);
}

int ember_redis_result_parse(const void *blob, size_t len, ember_redis_result *res, char *err,
                             size_t errlen)
{
    memset(res, 0, sizeof *res);
    if (errlen) err[0] = 0;
    const char *s = blob, *nl = len ? memchr(s, '\n', len) : NULL;
    if (!nl) {
        if (errlen) snprintf(err, errlen, "the result has no JSON line (%zu bytes, no newline)", len);
        return -EMBER_REDIS_EBLOB;
    }
    struct reader rd = { s, s, nl, err, errlen, false };
    bool have_status = false, have_len = false;
    long long status = 0, detail = 0, deliveries = 0, out_len = 0;
    if (!expect(&rd, '{')) goto corrupt;
    blanks(&rd);
    if (rd.p < rd.end && *rd.p == '}') {
        rd.p++;
    } else {
        for (;;) {
            char key[32];
            if (!string(&rd, key, sizeof key) || !expect(&rd, ':')) goto corrupt;
            blanks(&rd);
            bool ok;
            if (strcmp(key, "status") == 0) ok = num(&rd, &status), have_status = true;
            else if (strcmp(key, "detail") == 0) ok = num(&rd, &detail);
            else if (strcmp(key, "deliveries") == 0) ok = num(&rd, &deliveries);
            else if (strcmp(key, "output_len") == 0) ok = num(&rd, &out_len), have_len = true;
            else if (strcmp(key, "error") == 0) ok = string(&rd, res->error, sizeof res->error);
            else if (strcmp(key, "host") == 0) ok = string(&rd, res->host, sizeof res->host);
            else if (strcmp(key, "consumer") == 0) ok = string(&rd, res->consumer, sizeof res->consumer);
            else if (strcmp(key, "cause") == 0) ok = string(&rd, res->cause, sizeof res->cause);
            else if (strcmp(key, "receipt") == 0) {
                const char *b = rd.p;
                ok = skip_value(&rd, 1);
                if (ok && *b == '{') res->receipt = b, res->receipt_len = (size_t)(rd.p - b);
            } else {
                ok = skip_value(&rd, 1);
            }
            if (!ok) goto corrupt;
            blanks(&rd);
            if (rd.p < rd.end && *rd.p == ',') {
                rd.p++;
                continue;
            }
            if (!expect(&rd, '}')) goto corrupt;
            break;
        }
    }
    blanks(&rd);
    if (rd.p != rd.end) {
        fault(&rd, "text after the object");
        goto corrupt;
    }
    if (!have_status || !have_len) {
        if (errlen) snprintf(err, errlen, "the result's JSON line lacks \"%s\"", have_status ? "output_len" : "status");
        goto bad;
    }
    if (status > 0 || status < -100000 || detail < -2147483647ll - 1 || detail > 2147483647ll ||
        deliveries < 0 || deliveries > 0xffffffffll) {
        if (errlen) snprintf(err, errlen, "the result's status, detail or deliveries is out of range");
        goto bad;
    }
    size_t rest = len - (size_t)(nl + 1 - s);
    if (out_len < 0 || (unsigned long long)out_len != rest) {
        if (errlen) snprintf(err, errlen, "the result says output_len %lld but carries %zu output bytes",
                             out_len, rest);
        goto bad;
    }
    res->status = (int)status;
    res->detail = (int)detail;
    res->deliveries = (unsigned)deliveries;
    res->data = nl + 1;
    res->len = rest;
    return 0;
corrupt:
    if (!rd.failed) fault(&rd, "malformed");
bad:
    memset(res, 0, sizeof *res);
    return -EMBER_REDIS_EBLOB;
}
