/* cli/kvwords.c - the arguments of a handler called with KEY=VALUE words
 * (the libav plugin's transcode in=a.mp4 out=b.mp4 height=240): sent as
 * NUL-terminated words, the caller's directory first as cwd=DIR, so that
 * relative paths are the caller's, as they are for exec. Words that are not
 * all KEY=VALUE (echo hello) are left as they are. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

/* Is W "KEY=..." with KEY of [A-Za-z_][A-Za-z0-9_]*? */
static bool is_kv(const char *w)
{
    if (!((*w >= 'a' && *w <= 'z') || (*w >= 'A' && *w <= 'Z') || *w == '_')) return false;
    for (w++; *w && *w != '='; w++)
        if (!((*w >= 'a' && *w <= 'z') || (*w >= 'A' && *w <= 'Z') || (*w >= '0' && *w <= '9') || *w == '_'))
            return false;
    return *w == '=';
}

int cli_kv_request(const char *const *words, size_t n, const char *cwd, char **buf, size_t *len)
{
    bool has_cwd = false;
    if (!n) return 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_kv(words[i])) return 0;
        has_cwd |= strncmp(words[i], "cwd=", 4) == 0;
    }
    char *own = NULL;
    if (!has_cwd && !cwd && !(cwd = own = getcwd(NULL, 0))) return -errno;
    size_t total = has_cwd ? 0 : strlen("cwd=") + strlen(cwd) + 1;
    for (size_t i = 0; i < n; i++) total += strlen(words[i]) + 1;
    char *b = malloc(total), *p = b;
    if (!b) {
        free(own);
        return -ENOMEM;
    }
    if (!has_cwd) p = stpcpy(stpcpy(p, "cwd="), cwd) + 1;
    for (size_t i = 0; i < n; i++) p = stpcpy(p, words[i]) + 1;
    free(own);
    *buf = b;
    *len = total;
    return 1;
}
