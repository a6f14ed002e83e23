/* tests/fuzz/fuzz_libav_args.c - the libav plugin's KEY=VALUE arguments
 * (lav_args_parse and the lav_arg_* readers, plugins/libav/call.c), and the
 * JSON strings its results quote values into (lav_json_str).
 *
 * Feeds: a call's bytes, as a handler receives them (NUL-separated words,
 * or one line of blank-separated words when there is no NUL), parsed
 * against a key table with every kind of key (a path, integers, a number,
 * a word of choices, text; one required), as transcode and thumbnails
 * have.
 *
 * Asserts: a parse that fails says why (a message, EINVAL or ENOMEM); one
 * that succeeds has every required key, and each value given is of its
 * key's kind (an integer or number in range, one of the choices, a path
 * short enough), cwd= absolute; a path key resolves to an absolute path
 * shorter than PATH_MAX or fails saying why; and every value, quoted as a
 * JSON string, reads back as itself (no raw control character, quote or
 * backslash left unescaped). */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../../plugins/libav/libav.h"

static const struct lav_key keys[] = {
    { "in", LAV_PATH, true, 0, 0, NULL },
    { "out", LAV_PATH, false, 0, 0, NULL },
    { "height", LAV_INT, false, 2, 16384, NULL },
    { "threads", LAV_INT, false, 1, 64, NULL },
    { "crf", LAV_NUM, false, -1, 63, NULL },
    { "every", LAV_NUM, false, 0, 86400, NULL },
    { "codec", LAV_WORD, false, 0, 0, "h264|hevc|mpeg4|vp9|av1" },
    { "format", LAV_WORD, false, 0, 0, "png|jpg" },
    { "preset", LAV_TEXT, false, 0, 0, NULL },
};
#define NKEYS (sizeof keys / sizeof keys[0])

/* Undo lav_json_str's quoting of the JSON string at J: the bytes, or
 * abort on anything a JSON string may not hold. */
static char *json_unquote(const char *j, size_t len)
{
    assert(len >= 2 && j[0] == '"' && j[len - 1] == '"');
    char *out = malloc(len), *o = out;
    for (size_t i = 1; i < len - 1; i++) {
        unsigned char c = (unsigned char)j[i];
        assert(c >= 0x20 && c != '"');
        if (c != '\\') { *o++ = (char)c; continue; }
        c = (unsigned char)j[++i];
        if (c == '"' || c == '\\') { *o++ = (char)c; continue; }
        assert(c == 'u' && i + 4 < len - 1);
        char hex[5] = { j[i + 1], j[i + 2], j[i + 3], j[i + 4], 0 };
        char *end;
        long x = strtol(hex, &end, 16);
        assert(*end == 0 && x > 0 && x < 0x20);
        *o++ = (char)x;
        i += 4;
    }
    *o = 0;
    return out;
}

static void check_json(const char *v)
{
    struct lav_call c;
    memset(&c, 0, sizeof c);
    lav_json_str(&c, v);
    assert(!c.oom && c.json);
    char *back = json_unquote(c.json, c.len);
    assert(strcmp(back, v) == 0);
    free(back);
    free(c.json);
}

static void check_value(const struct lav_key *k, const char *v)
{
    char *end;
    assert(*v);
    switch (k->kind) {
    case LAV_PATH: assert(strlen(v) < PATH_MAX - 64); break;
    case LAV_INT: {
        long x = strtol(v, &end, 10);
        assert(*end == 0 && x >= k->min && x <= k->max);
        break;
    }
    case LAV_NUM: {
        double x = strtod(v, &end);
        assert(*end == 0 && isfinite(x) && x > k->min && x <= k->max);
        break;
    }
    case LAV_WORD: {
        size_t n = strlen(v);
        const char *at = strstr(k->choices, v);
        bool found = false;
        for (; at && !found; at = strstr(at + 1, v))
            found = (at == k->choices || at[-1] == '|') && (at[n] == 0 || at[n] == '|');
        assert(found);
        break;
    }
    case LAV_TEXT: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    struct lav_call call;
    lav_call_init(&call, "fuzz", NULL, keys, NKEYS);
    int rc = lav_args_parse(&call, data, n);
    if (rc) {
        assert((rc == EINVAL || rc == ENOMEM) && call.err[0]);
    } else {
        assert(!call.args.cwd || call.args.cwd[0] == '/');
        for (size_t i = 0; i < NKEYS; i++) {
            const char *v = call.args.value[i];
            assert(v || !keys[i].required);
            assert(lav_arg(&call, keys[i].name) == v);
            if (!v) continue;
            check_value(&keys[i], v);
            check_json(v);
            if (keys[i].kind == LAV_PATH) {
                char path[PATH_MAX];
                call.err[0] = 0;
                if (lav_arg_path(&call, keys[i].name, path) == 0)
                    assert(path[0] == '/' && strlen(path) < PATH_MAX);
                else
                    assert(call.err[0]);
            }
        }
    }
    free(call.json);
    free(call.args.buf);
    return 0;
}
