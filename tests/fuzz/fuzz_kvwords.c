/* tests/fuzz/fuzz_kvwords.c - the KEY=VALUE words `ember run --handler` and
 * `ember call` send to a handler (cli_kv_request, src/cli/kvwords.c).
 *
 * Feeds: NUL-separated words (the last one need not end in a NUL), and a
 * caller's directory taken from the first word when it starts with '/'.
 *
 * Asserts: cli_kv_request returns 1 exactly when every word is KEY=VALUE
 * with KEY of [A-Za-z_][A-Za-z0-9_]*, 0 otherwise, never an error when the
 * directory is given; when it builds the request, the request is the
 * words, each ending in a NUL, in order, after cwd=DIR unless a word is
 * already cwd=..., and its length is exactly that. */
#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static bool kv(const char *w)
{
    const char *eq = strchr(w, '=');
    if (!eq || eq == w) return false;
    for (const char *p = w; p < eq; p++) {
        bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_';
        if (!alpha && !(p > w && *p >= '0' && *p <= '9')) return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    char *buf = malloc(n + 1);
    memcpy(buf, data, n);
    buf[n] = 0;
    size_t nw = 0;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1) nw++;
    const char **words = calloc(nw + 1, sizeof *words);
    nw = 0;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1) words[nw++] = buf + i;
    const char *cwd = "/home/u";
    size_t first = 0;
    if (nw && words[0][0] == '/') cwd = words[0], first = 1;

    char *req = NULL;
    size_t len = 0;
    int rc = cli_kv_request(words + first, nw - first, cwd, &req, &len);
    bool all = nw > first, has_cwd = false;
    for (size_t i = first; i < nw; i++) {
        all &= kv(words[i]);
        has_cwd |= strncmp(words[i], "cwd=", 4) == 0;
    }
    assert(rc == (all ? 1 : 0));
    if (rc == 1) {
        const char *p = req;
        if (!has_cwd) {
            assert(strncmp(p, "cwd=", 4) == 0 && strcmp(p + 4, cwd) == 0);
            p += strlen(p) + 1;
        }
        for (size_t i = first; i < nw; i++) {
            assert(strcmp(p, words[i]) == 0);
            p += strlen(p) + 1;
        }
        assert((size_t)(p - req) == len);
        free(req);
    }
    free(words);
    free(buf);
    return 0;
}
