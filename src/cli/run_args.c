/* cli/run_args.c - `ember run`'s command line as GNU parallel reads it:
 * options, input sources, and each job's command composed from the
 * template. No processes here: run.c runs what this composes.
 *
 * What GNU parallel (20221122, Debian's) does and this copies, found by
 * running it:
 * - options stop at the first word that is not one (the command), or "--";
 * - `::: ARGS` values are split at the delimiter like lines of a file (so a
 *   newline in one makes two values, unless -0); an empty source among
 *   several gives one empty value; linked sources (`:::+`) stop at the
 *   shortest; several groups are multiplied, the last varying fastest;
 * - --colsep is a Perl regex splitting every value into columns, empty ones
 *   kept; an empty match splits off one character;
 * - a value is quoted unless it is made only of [A-Za-z0-9_+./-]: in single
 *   quotes, a single quote as '"'"', and the '' this leaves at either end
 *   dropped; an empty value is '';
 * - a replacement string inside a word is replaced in place ("x{}y"); {} with
 *   several values gives each one quoted, joined by spaces; a positional one
 *   past the values gives nothing; with none in the template, the values are
 *   appended; with no template, the values are the command as they are;
 * - -q quotes the template's words after replacement (then {} with several
 *   values splits the word there into words of their own). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "run.h"

/* ---- errors ---- */

static int run_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli_cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'ember run --help')\n");
    va_end(ap);
    return RUN_EXIT_ERROR;
}

/* ---- a growing string ---- */

struct sb {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sb_add(struct sb *b, const char *s, size_t len)
{
    if (b->oom) return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + len + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = 0;
}

static void sb_str(struct sb *b, const char *s) { sb_add(b, s, strlen(s)); }

/* The string built (never NULL unless out of memory), owned by the caller */
static char *sb_take(struct sb *b)
{
    if (!b->oom && !b->p) sb_add(b, "", 0);
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    return b->p;
}

/* ---- quoting ---- */

static bool shell_safe(const char *v)
{
    if (!*v) return false;
    for (; *v; v++)
        if (!isalnum((unsigned char)*v) && !strchr("_+./-", *v)) return false;
    return true;
}

static void sb_quote(struct sb *b, const char *v)
{
    if (shell_safe(v)) {
        sb_str(b, v);
        return;
    }
    if (!*v) {
        sb_str(b, "''");
        return;
    }
    /* '...' with each ' as '"'"'; a value starting or ending with ' would
     * leave '' there, which parallel drops */
    struct sb q = { 0 };
    sb_str(&q, "'");
    for (const char *c = v; *c; c++) {
        if (*c == '\'') sb_str(&q, "'\"'\"'");
        else sb_add(&q, c, 1);
    }
    sb_str(&q, "'");
    if (q.oom) {
        b->oom = true;
        free(q.p);
        return;
    }
    const char *s = q.p;
    size_t len = q.n;
    if (len >= 2 && strncmp(s, "''", 2) == 0) s += 2, len -= 2;
    if (len >= 2 && strncmp(s + len - 2, "''", 2) == 0) len -= 2;
    sb_add(b, s, len);
    free(q.p);
}

char *run_shell_quote(const char *value)
{
    struct sb b = { 0 };
    sb_quote(&b, value);
    return sb_take(&b);
}

/* ---- replacement strings ---- */

enum rs_kind { RS_VALUE, RS_SEQ, RS_SLOT, RS_OUT };
enum rs_form { RS_AS_IS, RS_NOEXT, RS_BASE, RS_DIR, RS_BASE_NOEXT };
struct rs {
    enum rs_kind kind;
    long pos;               /* RS_VALUE: 0 for {}, N for {N}, -N for {-N} */
    enum rs_form form;
};

/* The replacement string at S (which starts with '{'): its length, or 0 when
 * S is no replacement string (then it is text). */
static size_t rs_parse(const char *s, struct rs *r)
{
    const char *p = s + 1;
    *r = (struct rs){ RS_VALUE, 0, RS_AS_IS };
    if (strncmp(p, "#}", 2) == 0) return r->kind = RS_SEQ, 3;
    if (strncmp(p, "%}", 2) == 0) return r->kind = RS_SLOT, 3;
    if (strncmp(p, "out}", 4) == 0) return r->kind = RS_OUT, 5;
    if (*p == '-' || isdigit((unsigned char)*p)) {
        bool neg = *p == '-';
        if (neg) p++;
        if (!isdigit((unsigned char)*p)) return 0;
        long n = 0;
        for (; isdigit((unsigned char)*p); p++) {
            n = n * 10 + (*p - '0');
            if (n > 1000000000) return 0;
        }
        if (n == 0) return 0;
        r->pos = neg ? -n : n;
    }
    static const struct { const char *tail; enum rs_form form; } forms[] = {
        { "}", RS_AS_IS }, { ".}", RS_NOEXT }, { "//}", RS_DIR }, { "/.}", RS_BASE_NOEXT },
        { "/}", RS_BASE },
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        size_t k = strlen(forms[i].tail);
        if (strncmp(p, forms[i].tail, k) == 0) {
            r->form = forms[i].form;
            return (size_t)(p - s) + k;
        }
    }
    return 0;
}

/* Does WORD hold a replacement string that takes the arguments' place (all
 * but {out}, which names the output and leaves the arguments appended)? */
static bool word_uses_args(const char *word)
{
    for (const char *c = word; (c = strchr(c, '{')); c++) {
        struct rs r;
        if (rs_parse(c, &r) && r.kind != RS_OUT) return true;
    }
    return false;
}

static bool template_uses_args(const struct run_opts *o)
{
    for (size_t i = 0; i < o->ncmd; i++)
        if (word_uses_args(o->cmd[i])) return true;
    return false;
}

/* V transformed by FORM into B */
static void sb_form(struct sb *b, const char *v, enum rs_form form)
{
    size_t len = strlen(v);
    if (form == RS_BASE || form == RS_BASE_NOEXT) {
        const char *slash = strrchr(v, '/');
        if (slash) v = slash + 1, len = strlen(v);
    }
    if (form == RS_NOEXT || form == RS_BASE_NOEXT) {
        /* parallel's s:\.[^/.]*$:: */
        const char *dot = memrchr(v, '.', len);
        if (dot && !strchr(dot, '/')) len = (size_t)(dot - v);
    }
    if (form == RS_DIR) {
        /* POSIX dirname: "dir/" is ".", "/a" is "/", "a//b" is "a" */
        while (len > 1 && v[len - 1] == '/') len--;
        const char *slash = memrchr(v, '/', len);
        if (!slash) {
            sb_str(b, ".");
            return;
        }
        len = (size_t)(slash - v);
        while (len > 0 && v[len - 1] == '/') len--;
        if (len == 0) {
            sb_str(b, "/");
            return;
        }
    }
    sb_add(b, v, len);
}

/* What a template is composed for */
enum mode { M_SHELL, M_QUOTE_WORDS, M_RAW };
struct ctx {
    const struct run_opts *o;
    const struct run_args *a;
    uint64_t seq;
    unsigned slot;
    const char *out;
};

/* The value of R (one, or for {} each value: I in [0, count)) */
static size_t rs_count(const struct ctx *c, const struct rs *r)
{
    return r->kind == RS_VALUE && r->pos == 0 ? c->a->n : 1;
}

/* Append value I of R to B, QUOTED or not */
static void sb_rs(struct sb *b, const struct ctx *c, const struct rs *r, size_t i, bool quoted)
{
    char num[24];
    struct sb t = { 0 };
    switch (r->kind) {
    case RS_SEQ: snprintf(num, sizeof num, "%llu", (unsigned long long)c->seq); sb_str(b, num); return;
    case RS_SLOT: snprintf(num, sizeof num, "%u", c->slot); sb_str(b, num); return;
    case RS_OUT: sb_str(&t, c->out ? c->out : ""); break;
    case RS_VALUE: {
        const char *v;
        if (r->pos == 0) v = c->a->v[i];
        else if (r->pos > 0 && (size_t)r->pos <= c->a->n) v = c->a->v[r->pos - 1];
        else if (r->pos < 0 && (size_t)-r->pos <= c->a->n) v = c->a->v[c->a->n - (size_t)-r->pos];
        else return; /* past the values: nothing, not even '' */
        sb_form(&t, v, r->form);
        break;
    }
    }
    if (t.oom) b->oom = true;
    else if (quoted) sb_quote(b, t.p ? t.p : "");
    else sb_str(b, t.p ? t.p : "");
    free(t.p);
}

/* A list of words */
struct words {
    char **v;
    size_t n, cap;
    bool oom;
};

static void words_add(struct words *w, char *s)
{
    if (!s || w->oom) {
        free(s);
        w->oom = true;
        return;
    }
    if (w->n + 2 > w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 8;
        char **v = realloc(w->v, cap * sizeof *v);
        if (!v) {
            free(s);
            w->oom = true;
            return;
        }
        w->v = v, w->cap = cap;
    }
    w->v[w->n++] = s;
    w->v[w->n] = NULL;
}

void run_words_free(char **words)
{
    if (!words) return;
    for (char **w = words; *w; w++) free(*w);
    free(words);
}

static char **words_take(struct words *w, size_t *n)
{
    if (!w->oom && !w->v) {
        w->v = calloc(1, sizeof *w->v);
        if (!w->v) w->oom = true;
    }
    if (w->oom) {
        if (w->v) w->v[w->n] = NULL;
        run_words_free(w->v);
        return NULL;
    }
    if (n) *n = w->n;
    return w->v;
}

/* WORD with its replacement strings applied, in MODE: M_SHELL quotes each
 * value in place (one word out); M_QUOTE_WORDS and M_RAW put raw values in,
 * and a {} of several values splits the word into one word per value
 * (M_QUOTE_WORDS then quotes each). The words go to OUT. */
static void expand_word(const struct ctx *c, const char *word, enum mode mode, struct words *out)
{
    struct sb b = { 0 };
    for (const char *p = word; *p;) {
        struct rs r;
        size_t k = *p == '{' ? rs_parse(p, &r) : 0;
        if (!k) {
            size_t text = strcspn(p + 1, "{") + 1;
            sb_add(&b, p, text);
            p += text;
            continue;
        }
        p += k;
        size_t count = rs_count(c, &r);
        for (size_t i = 0; i < count; i++) {
            if (i > 0 && mode == M_SHELL) sb_str(&b, " ");
            else if (i > 0) { /* the next value starts a word of its own */
                words_add(out, mode == M_QUOTE_WORDS ? run_shell_quote(b.p ? b.p : "") : sb_take(&b));
                if (mode == M_QUOTE_WORDS) free(b.p);
                b = (struct sb){ 0 };
            }
            sb_rs(&b, c, &r, i, mode == M_SHELL);
        }
    }
    if (b.oom) out->oom = true;
    if (mode == M_QUOTE_WORDS) {
        words_add(out, run_shell_quote(b.p ? b.p : ""));
        free(b.p);
    } else {
        words_add(out, sb_take(&b));
    }
}

char *run_compose(const struct run_opts *o, const struct run_args *args, uint64_t seq,
                  unsigned slot, const char *out_tmp)
{
    struct ctx c = { o, args, seq, slot, out_tmp };
    struct sb b = { 0 };
    if (o->ncmd == 0) { /* the values are the command */
        for (size_t i = 0; i < args->n; i++) {
            if (i) sb_str(&b, " ");
            sb_str(&b, args->v[i]);
        }
        return sb_take(&b);
    }
    struct words w = { 0 };
    for (size_t i = 0; i < o->ncmd; i++)
        expand_word(&c, o->cmd[i], o->quote ? M_QUOTE_WORDS : M_SHELL, &w);
    if (!template_uses_args(o))
        for (size_t i = 0; i < args->n; i++) words_add(&w, run_shell_quote(args->v[i]));
    for (size_t i = 0; i < w.n; i++) {
        if (i) sb_str(&b, " ");
        sb_str(&b, w.v[i]);
    }
    if (w.oom) b.oom = true;
    if (w.v) w.v[w.n] = NULL;
    run_words_free(w.v);
    return sb_take(&b);
}

char **run_compose_words(const struct run_opts *o, const struct run_args *args, uint64_t seq,
                         unsigned slot, const char *out_tmp, size_t *n)
{
    struct ctx c = { o, args, seq, slot, out_tmp };
    struct words w = { 0 };
    for (size_t i = 0; i < o->ncmd; i++) expand_word(&c, o->cmd[i], M_RAW, &w);
    if (!template_uses_args(o))
        for (size_t i = 0; i < args->n; i++) words_add(&w, strdup(args->v[i]));
    return words_take(&w, n);
}

/* TEMPLATE with its replacement strings applied, unquoted ({} joins values
 * with spaces) */
static char *expand_text(const struct ctx *c, const char *template)
{
    struct sb b = { 0 };
    for (const char *p = template; *p;) {
        struct rs r;
        size_t k = *p == '{' ? rs_parse(p, &r) : 0;
        if (!k) {
            size_t text = strcspn(p + 1, "{") + 1;
            sb_add(&b, p, text);
            p += text;
            continue;
        }
        p += k;
        size_t count = rs_count(c, &r);
        for (size_t i = 0; i < count; i++) {
            if (i) sb_str(&b, " ");
            sb_rs(&b, c, &r, i, false);
        }
    }
    return sb_take(&b);
}

char *run_output_name(const struct run_opts *o, const struct run_args *args, uint64_t seq,
                      unsigned slot)
{
    if (!o->output) return NULL;
    struct ctx c = { o, args, seq, slot, NULL };
    return expand_text(&c, o->output);
}

char *run_tag(const struct run_opts *o, const struct run_args *args, uint64_t seq, unsigned slot)
{
    if (!o->tag) return NULL;
    struct ctx c = { o, args, seq, slot, NULL };
    struct sb b = { 0 };
    if (o->tagstring) {
        char *t = expand_text(&c, o->tagstring);
        if (!t) return NULL;
        sb_str(&b, t);
        free(t);
    } else {
        for (size_t i = 0; i < args->n; i++) {
            if (i) sb_str(&b, " ");
            sb_str(&b, args->v[i]);
        }
    }
    sb_str(&b, "\t");
    return sb_take(&b);
}

/* ---- the shell-free path ---- */

/* Builtins and keywords: a command starting with one of these means what
 * the shell makes of it (cd, exit, a loop...), not a program's run. echo
 * is left to the program unless a backslash is involved (dash's echo
 * interprets escapes, coreutils' and bash's do not). */
static const char *const shell_words[] = {
    ".", ":", "[[", "]]", "!", "{", "}", "alias", "bg", "bind", "break", "builtin", "caller",
    "case", "cd", "command", "compgen", "complete", "continue", "coproc", "declare", "dirs",
    "disown", "do", "done", "elif", "else", "enable", "esac", "eval", "exec", "exit", "export",
    "fc", "fg", "fi", "for", "function", "getopts", "hash", "help", "history", "if", "in", "jobs",
    "kill", "let", "local", "logout", "mapfile", "newgrp", "popd", "pushd", "pwd", "read",
    "readarray", "readonly", "return", "select", "set", "shift", "shopt", "source", "suspend",
    "then", "time", "times", "trap", "type", "typeset", "ulimit", "umask", "unalias", "unset",
    "until", "wait", "while",
};

char **run_split_simple(const char *line, size_t *argc)
{
    struct words w = { 0 };
    struct sb cur = { 0 };
    bool in_word = false;
    const char *p = line;
    while (true) {
        char ch = *p;
        if (ch == 0 || ch == ' ' || ch == '\t') {
            if (in_word) words_add(&w, sb_take(&cur));
            cur = (struct sb){ 0 };
            in_word = false;
            if (ch == 0) break;
            p++;
            continue;
        }
        if (w.n == 0 && ch == '=') goto shell; /* an assignment, VAR=value cmd */
        in_word = true;
        if (ch == '\'') {
            const char *end = strchr(p + 1, '\'');
            if (!end) goto shell;
            sb_add(&cur, p + 1, (size_t)(end - p - 1));
            p = end + 1;
        } else if (ch == '"') {
            for (p++; *p != '"'; p++) {
                if (!*p || *p == '$' || *p == '`' || *p == '!') goto shell;
                if (*p == '\\') {
                    if (p[1] && strchr("$`\"\\", p[1])) p++;
                    else if (!p[1] || p[1] == '\n') goto shell;
                }
                sb_add(&cur, p, 1);
            }
            p++;
        } else if (ch == '\\') {
            if (!p[1] || p[1] == '\n') goto shell;
            sb_add(&cur, p + 1, 1);
            p += 2;
        } else if (strchr("$`;&|<>()*?[]~#!{}\n\r", ch)) {
            goto shell;
        } else {
            sb_add(&cur, p, 1);
            p++;
        }
    }
    if (w.n == 0) goto shell;
    for (size_t i = 0; i < sizeof shell_words / sizeof shell_words[0]; i++)
        if (strcmp(w.v[0], shell_words[i]) == 0) goto shell;
    if (strcmp(w.v[0], "echo") == 0)
        for (size_t i = 1; i < w.n; i++)
            if (strchr(w.v[i], '\\')) goto shell;
    return words_take(&w, argc);
shell:
    free(cur.p);
    if (w.v) w.v[w.n] = NULL;
    run_words_free(w.v);
    return NULL;
}

/* ---- options ---- */

/* A duration as --timeout and --delay take it: a bare number is seconds
 * (parallel's), else ember's DURATION (250ms, 30s, 2m, 1h), or parallel's
 * compound form 1h30m, 2d. */
static bool parse_run_duration(const char *s, int64_t *ns)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end != s && !*end && !errno && v >= 0 && v < 9e9) {
        *ns = (int64_t)(v * 1e9);
        return true;
    }
    if (strcmp(s, "never") != 0 && strcmp(s, "infinity") != 0 && parse_duration(s, ns))
        return true;
    double total = 0;
    const char *p = s;
    if (!*p) return false;
    while (*p) {
        errno = 0;
        v = strtod(p, &end);
        if (end == p || errno || v < 0 || !*end) return false;
        double mul;
        switch (*end) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        default: return false;
        }
        total += v * mul;
        p = end + 1;
    }
    if (total >= 9e9) return false;
    *ns = (int64_t)(total * 1e9);
    return true;
}

/* -j: N, N% of the CPUs, +N or -N CPUs */
static int parse_jobs(const char *s, unsigned *jobs)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || errno || !isdigit((unsigned char)s[*s == '+' || *s == '-']))
        return run_usage("option -j: '%s' is not a number of jobs (N, N%%, +N or -N)", s);
    long n;
    if (strcmp(end, "%") == 0) n = cpus * v / 100;
    else if (*end) return run_usage("option -j: '%s' is not a number of jobs (N, N%%, +N or -N)", s);
    else if (*s == '+' || *s == '-') n = cpus + v;
    else if (v == 0)
        return run_usage("option -j: 0 (as many as possible) is not supported: give a number of "
                         "jobs");
    else n = v;
    if (n < 1) n = 1;
    if (n > 65536)
        return run_usage("option -j: %ld jobs is more than 65536", n);
    *jobs = (unsigned)n;
    return 0;
}

/* --halt: never, 0, 1, 2, -1, -2, N% (parallel's short forms), or
 * when,what=N / when,what=N% */
static int parse_halt(const char *s, struct run_halt *h)
{
    static const char hint[] = "never, now|soon,fail|success|done=N or =N%";
    *h = (struct run_halt){ RUN_HALT_NEVER, RUN_HALT_FAIL, 0, false };
    if (strcmp(s, "never") == 0 || strcmp(s, "0") == 0) return 0;
    static const struct { const char *s; enum run_halt_when when; enum run_halt_on on; } shorts[] = {
        { "1", RUN_HALT_SOON, RUN_HALT_FAIL }, { "2", RUN_HALT_NOW, RUN_HALT_FAIL },
        { "-1", RUN_HALT_SOON, RUN_HALT_SUCCESS }, { "-2", RUN_HALT_NOW, RUN_HALT_SUCCESS },
    };
    for (size_t i = 0; i < sizeof shorts / sizeof shorts[0]; i++)
        if (strcmp(s, shorts[i].s) == 0) {
            *h = (struct run_halt){ shorts[i].when, shorts[i].on, 1, false };
            return 0;
        }
    const char *rest;
    if (strncmp(s, "now,", 4) == 0) h->when = RUN_HALT_NOW, rest = s + 4;
    else if (strncmp(s, "soon,", 5) == 0) h->when = RUN_HALT_SOON, rest = s + 5;
    else if (isdigit((unsigned char)*s)) h->when = RUN_HALT_SOON, h->on = RUN_HALT_FAIL, rest = NULL;
    else return run_usage("option --halt: '%s' is not %s", s, hint);
    const char *num = s;
    if (rest) {
        static const struct { const char *s; enum run_halt_on on; } ons[] = {
            { "fail=", RUN_HALT_FAIL }, { "success=", RUN_HALT_SUCCESS }, { "done=", RUN_HALT_DONE },
        };
        num = NULL;
        for (size_t i = 0; i < 3; i++)
            if (strncmp(rest, ons[i].s, strlen(ons[i].s)) == 0) {
                h->on = ons[i].on;
                num = rest + strlen(ons[i].s);
            }
        if (!num) return run_usage("option --halt: '%s' is not %s", s, hint);
    }
    char buf[32];
    size_t len = strlen(num);
    if (len == 0 || len >= sizeof buf) return run_usage("option --halt: '%s' is not %s", s, hint);
    memcpy(buf, num, len + 1);
    if (buf[len - 1] == '%') h->percent = true, buf[len - 1] = 0;
    else if (!rest) return run_usage("option --halt: '%s' is not %s", s, hint);
    uint64_t n;
    if (!parse_uint(buf, h->percent ? 100 : UINT32_MAX, &n) || n == 0)
        return run_usage("option --halt: '%s': the count must be a whole number from 1%s", s,
                         h->percent ? " to 100%" : "");
    h->count = n;
    return 0;
}

/* -d: one character, or an escape: \n \t \r \0 \\ \xHH */
static int parse_delim(const char *s, char *d)
{
    if (s[0] && !s[1]) return *d = s[0], 0;
    if (s[0] == '\\' && s[1] && !s[2]) {
        const char *from = "nt0r\\", *to = "\n\t\0\r\\";
        const char *k = strchr(from, s[1]);
        if (k) return *d = to[k - from], 0;
    }
    if (s[0] == '\\' && s[1] == 'x' && isxdigit((unsigned char)s[2]) &&
        isxdigit((unsigned char)s[3]) && !s[4])
        return *d = (char)strtol(s + 2, NULL, 16), 0;
    return run_usage("option -d: '%s' is not one character (or \\n, \\t, \\0, \\xHH)", s);
}

/* --colsep's Perl regex as a POSIX extended one: \t \n \r \d \s \w and
 * their negations, which POSIX does not know (glibc reads \t as t). */
static char *colsep_to_ere(const char *re)
{
    struct sb b = { 0 };
    bool bracket = false;
    for (const char *p = re; *p; p++) {
        if (*p == '[' && !bracket) {
            bracket = true;
            sb_add(&b, p, 1);
            if (p[1] == '^') sb_add(&b, ++p, 1);
            if (p[1] == ']') sb_add(&b, ++p, 1);
            continue;
        }
        if (*p == ']' && bracket) bracket = false;
        if (*p != '\\' || !p[1]) {
            sb_add(&b, p, 1);
            continue;
        }
        char e = *++p;
        const char *lit = e == 't' ? "\t" : e == 'n' ? "\n" : e == 'r' ? "\r" : e == 'f' ? "\f" : NULL;
        const char *cls = e == 'd' ? "0-9" : e == 's' ? "[:space:]" : e == 'w' ? "[:alnum:]_" : NULL;
        const char *neg = e == 'D' ? "[^0-9]" : e == 'S' ? "[^[:space:]]" : e == 'W' ? "[^[:alnum:]_]" : NULL;
        if (lit) sb_str(&b, lit);
        else if (cls && bracket) sb_str(&b, cls);
        else if (cls) sb_str(&b, "["), sb_str(&b, cls), sb_str(&b, "]");
        else if (neg && !bracket) sb_str(&b, neg);
        else if (bracket) sb_add(&b, &e, 1); /* [\]] and the like: the character */
        else sb_add(&b, p - 1, 2);
    }
    return sb_take(&b);
}

/* The most pieces --colsep's regex may have once glibc's regcomp has
 * expanded its repetitions: the compile's time and memory grow with them,
 * and they grow fast: x+ is compiled as x x*, x{m,n} as n copies of x,
 * so ((a+)+)+... doubles with each level and nested counts multiply (20
 * levels of + take minutes, ((a{1,100}){1,100}){1,100} 12 s), and a run of
 * copies that may match nothing costs the square of their number ((a?){4000}
 * takes 6 s, a{1,32767} 39 s). At this size any of them compiles within a
 * second. */
#define COLSEP_MAX_PIECES 1024u
/* What ere_pieces says of a repetition of a repetition (x?+, a*{2}): POSIX
 * leaves it undefined (Perl reads it as lazy or possessive), and glibc
 * compiles it as a repetition of something that may match nothing, whose
 * cost grows about sevenfold with each + (x??++++++++: minutes). */
#define COLSEP_STACKED UINT64_MAX

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return b && a > COLSEP_MAX_PIECES * 2ull / b ? COLSEP_MAX_PIECES * 2ull : a * b;
}

/* How many pieces the extended regex RE has once its repetitions are
 * expanded (see COLSEP_MAX_PIECES); past twice the most, it says so. */
static uint64_t ere_pieces(const char *re)
{
    enum { DEPTH = 64 };
    uint64_t total[DEPTH] = { 0 }, last[DEPTH] = { 0 }; /* per open group: done, and its last atom */
    int d = 0;
    bool quantified = false; /* the last thing seen was a repetition */
    for (const char *p = re; *p; p++) {
        uint64_t atom = 1;
        bool q = *p == '*' || *p == '?' || *p == '+' || (*p == '{' && isdigit((unsigned char)p[1]));
        if (q && quantified) return COLSEP_STACKED;
        quantified = q;
        if (*p == '(') {
            if (++d == DEPTH) return COLSEP_MAX_PIECES * 2ull;
            total[d] = last[d] = 0;
            continue;
        }
        if (*p == ')' && d > 0) {
            atom = total[d] + last[d] + 1;
            d--;
        } else if (*p == '|') {
            total[d] += last[d], last[d] = 0;
            continue;
        } else if (*p == '*' || *p == '?') {
            continue;
        } else if (*p == '+') { /* x+ is x x*: counted as more, for what x* adds to a closure */
            last[d] = sat_mul(last[d], 4);
            continue;
        } else if (*p == '{' && isdigit((unsigned char)p[1])) {
            char *end;
            unsigned long m = strtoul(p + 1, &end, 10), n = m;
            if (*end == ',') {
                end++;
                n = isdigit((unsigned char)*end) ? strtoul(end, &end, 10) : m + 1;
            }
            if (*end == '}') {
                last[d] = sat_mul(last[d], n ? n : 1);
                p = end;
                continue;
            }
        } else if (*p == '\\' && p[1]) {
            p++;
        } else if (*p == '[') { /* a bracket expression is one piece */
            const char *q = p + 1;
            if (*q == '^') q++;
            if (*q == ']') q++;
            while (*q && *q != ']') {
                const char *cls = q[0] == '[' && q[1] == ':' ? strstr(q + 2, ":]") : NULL;
                q = cls ? cls + 2 : q + 1;
            }
            if (!*q) break;
            p = q;
        }
        total[d] = total[d] + last[d] > COLSEP_MAX_PIECES * 2ull ? COLSEP_MAX_PIECES * 2ull
                                                                 : total[d] + last[d];
        last[d] = atom;
    }
    uint64_t n = 0;
    for (; d >= 0; d--) n += total[d] + last[d];
    return n;
}

static int add_source(struct run_opts *o, enum run_src_kind kind, bool linked, const char *path)
{
    struct run_source *s = realloc(o->sources, (o->nsources + 1) * sizeof *s);
    if (!s) return run_usage("out of memory");
    o->sources = s;
    s[o->nsources++] = (struct run_source){ kind, NULL, 0, path, linked && o->nsources > 0 };
    return 0;
}

/* The options: LONG names (dashes), LETTER a short form or 0 */
enum opt_id {
    O_POOL, O_JOBS, O_HANDLER, O_SHELL, O_TIMEOUT, O_RETRIES, O_HALT, O_DELAY, O_KEEP, O_TAG,
    O_TAGSTRING, O_LINEBUF, O_DRY, O_BAR, O_ETA, O_PROGRESS, O_JOBLOG, O_RESUME, O_RESUME_FAILED,
    O_RECEIPTS, O_PLUGIN, O_OUTPUT, O_QUOTE, O_COLSEP, O_MAXARGS, O_ARGFILE, O_NULL, O_DELIM, O_HELP,
    O_REDIS, O_STREAM,
};
static const struct run_opt {
    const char *name;
    char letter;
    bool value;
    enum opt_id id;
} run_opt_table[] = {
    { "pool", 0, true, O_POOL },          { "jobs", 'j', true, O_JOBS },
    { "max-procs", 'P', true, O_JOBS },   { "handler", 0, true, O_HANDLER },
    { "shell", 0, false, O_SHELL },       { "timeout", 0, true, O_TIMEOUT },
    { "retries", 0, true, O_RETRIES },    { "halt", 0, true, O_HALT },
    { "halt-on-error", 0, true, O_HALT }, { "delay", 0, true, O_DELAY },
    { "keep-order", 'k', false, O_KEEP }, { "tag", 0, false, O_TAG },
    { "tagstring", 0, true, O_TAGSTRING }, { "line-buffer", 0, false, O_LINEBUF },
    { "lb", 0, false, O_LINEBUF },        { "dry-run", 0, false, O_DRY },
    { "bar", 0, false, O_BAR },           { "eta", 0, false, O_ETA },
    { "progress", 0, false, O_PROGRESS }, { "joblog", 0, true, O_JOBLOG },
    { "resume", 0, false, O_RESUME },     { "resume-failed", 0, false, O_RESUME_FAILED },
    { "receipts", 0, true, O_RECEIPTS },  { "output", 0, true, O_OUTPUT },
    { "plugin", 0, true, O_PLUGIN },
    { "quote", 'q', false, O_QUOTE },     { "colsep", 'C', true, O_COLSEP },
    { "max-args", 'n', true, O_MAXARGS }, { "arg-file", 'a', true, O_ARGFILE },
    { "null", '0', false, O_NULL },       { "delimiter", 'd', true, O_DELIM },
    { "help", 'h', false, O_HELP },
    { "redis", 0, true, O_REDIS },        { "stream", 0, true, O_STREAM },
};
#define N_RUN_OPTS (sizeof run_opt_table / sizeof run_opt_table[0])

/* Set option D from VAL (NULL for a flag); 0 or RUN_EXIT_ERROR */
static int set_opt(struct run_opts *o, const struct run_opt *d, const char *val)
{
    uint64_t u;
    switch (d->id) {
    case O_POOL: o->pool = val; break;
    case O_JOBS: return parse_jobs(val, &o->jobs);
    case O_HANDLER: o->handler = val; break;
    case O_SHELL: o->shell = true; break;
    case O_TIMEOUT:
    case O_DELAY:
        if (!parse_run_duration(val, d->id == O_TIMEOUT ? &o->timeout_ns : &o->delay_ns))
            return run_usage("option --%s: '%s' is not a duration (seconds, or 250ms, 30s, 2m, "
                             "1h30m)", d->name, val);
        break;
    case O_RETRIES:
        if (!parse_uint(val, 1000000, &u))
            return run_usage("option --retries: '%s' is not a whole number of tries", val);
        o->retries = (unsigned)u;
        break;
    case O_HALT: return parse_halt(val, &o->halt);
    case O_KEEP: o->keep_order = true; break;
    case O_TAG: o->tag = true; break;
    case O_TAGSTRING: o->tag = true, o->tagstring = val; break;
    case O_LINEBUF: o->line_buffer = true; break;
    case O_DRY: o->dry_run = true; break;
    case O_BAR: o->bar = true; break;
    case O_ETA: o->eta = true; break;
    case O_PROGRESS: o->progress = true; break;
    case O_JOBLOG: o->joblog = val; break;
    case O_RESUME: o->resume = true; break;
    case O_RESUME_FAILED: o->resume_failed = true; break;
    case O_RECEIPTS: o->receipts = val; break;
    case O_PLUGIN:
        if (o->nplugins == sizeof o->plugins / sizeof o->plugins[0])
            return run_usage("--plugin: at most %zu plugins", o->nplugins);
        o->plugins[o->nplugins++] = val;
        break;
    case O_OUTPUT:
        if (!*val) return run_usage("option --output: the file name template is empty");
        o->output = val;
        break;
    case O_QUOTE: o->quote = true; break;
    case O_COLSEP:
        if (!*val) return run_usage("option --colsep: the separator is empty");
        o->colsep = val;
        break;
    case O_MAXARGS:
        if (!parse_uint(val, 1000000, &u) || u == 0)
            return run_usage("option -n: '%s' is not a number of arguments (1 or more)", val);
        o->max_args = (unsigned)u;
        break;
    case O_ARGFILE: return add_source(o, RUN_SRC_FILE, false, val);
    case O_NULL: o->delim = 0; break;
    case O_DELIM: return parse_delim(val, &o->delim);
    case O_HELP: break;
    case O_REDIS: o->redis = val; break;
    case O_STREAM: o->stream = val; break;
    }
    return 0;
}

static bool is_separator(const char *a) { return a[0] == ':' && a[1] == ':' && a[2] == ':' &&
                                                  (!a[3] || strcmp(a + 3, "+") == 0 ||
                                                   strcmp(a + 3, ":") == 0 ||
                                                   strcmp(a + 3, ":+") == 0); }

/* Options at ARGV[*I]...; stops at the command, a separator or after "--".
 * *HELP: --help seen. 0 or RUN_EXIT_ERROR. */
static int parse_options(int argc, char **argv, int *i, struct run_opts *o, bool *help)
{
    while (*i < argc) {
        const char *a = argv[*i];
        if (strcmp(a, "--") == 0) {
            (*i)++;
            return 0;
        }
        if (a[0] != '-' || !a[1] || is_separator(a)) return 0;
        if (a[1] == '-') { /* --name, --name=value, --name value */
            size_t k = strcspn(a + 2, "=");
            const struct run_opt *d = NULL;
            for (size_t j = 0; j < N_RUN_OPTS; j++)
                if (strlen(run_opt_table[j].name) == k &&
                    strncmp(run_opt_table[j].name, a + 2, k) == 0)
                    d = &run_opt_table[j];
            if (!d) return run_usage("unknown option '%.*s'", (int)k + 2, a);
            const char *val = a[2 + k] == '=' ? a + 3 + k : NULL;
            (*i)++;
            if (!d->value && val) return run_usage("option --%s takes no value", d->name);
            if (d->value && !val) {
                if (*i == argc) return run_usage("option --%s needs a value", d->name);
                val = argv[(*i)++];
            }
            if (d->id == O_HELP) *help = true;
            if (set_opt(o, d, val)) return RUN_EXIT_ERROR;
            continue;
        }
        (*i)++;
        for (const char *p = a + 1; *p; p++) { /* -kq, -j4, -j 4 */
            const struct run_opt *d = NULL;
            for (size_t j = 0; j < N_RUN_OPTS; j++)
                if (run_opt_table[j].letter == *p) d = &run_opt_table[j];
            if (!d) return run_usage("unknown option '-%c'", *p);
            const char *val = NULL;
            if (d->value) {
                if (p[1]) val = p + 1;
                else if (*i < argc) val = argv[(*i)++];
                else return run_usage("option -%c needs a value", *p);
            }
            if (d->id == O_HELP) *help = true;
            if (set_opt(o, d, val)) return RUN_EXIT_ERROR;
            if (val) break;
        }
    }
    return 0;
}

/* Check what the options say together, and compile --colsep */
static int check_opts(struct run_opts *o)
{
    if ((o->resume || o->resume_failed) && !o->joblog)
        return run_usage("--resume and --resume-failed need --joblog FILE (the log of the run "
                         "to resume)");
    for (size_t i = 0; i < o->ncmd; i++)
        for (const char *c = o->cmd[i]; (c = strstr(c, "{out}")); c++) o->uses_out = true;
    if (o->uses_out && !o->output)
        return run_usage("the command uses {out} but no --output TEMPLATE names the output file");
    if (o->output && !o->uses_out)
        return run_usage("--output needs the command to write {out} (the temporary name of the "
                         "output file, renamed into place when the job succeeds)");
    if (o->output && o->handler)
        return run_usage("--output works with commands, not with --handler");
    if (o->nplugins && o->pool)
        return run_usage("--plugin is for the batch's own pool: start pool '%s' with --plugin instead",
                         o->pool);
    if (!o->redis != !o->stream)
        return run_usage("--redis URL and --stream KEY go together (the Redis, and the stream the "
                         "hosts' bridges serve)");
    if (o->redis && (o->pool || o->nplugins))
        return run_usage("--redis sends the jobs to the hosts' pools: no --pool or --plugin with it");
    if (o->colsep) {
        char *ere = colsep_to_ere(o->colsep);
        if (!ere) return run_usage("out of memory");
        uint64_t pieces = ere_pieces(ere);
        if (pieces == COLSEP_STACKED) {
            free(ere);
            const char *bad = o->colsep;
            o->colsep = NULL;
            return run_usage("option --colsep: '%s' repeats a repetition (like x?+ or a*{2}), which "
                             "POSIX regular expressions leave undefined: put the inner one in "
                             "parentheses, (x?)+, or drop one", bad);
        }
        if (pieces > COLSEP_MAX_PIECES) {
            free(ere);
            const char *bad = o->colsep;
            o->colsep = NULL;
            return run_usage("option --colsep: '%s' repeats too much: with its repetitions expanded "
                             "it has more than %u pieces, and compiling it could take minutes; "
                             "nest fewer repetitions (+, {m,n}) or give smaller counts",
                             bad, COLSEP_MAX_PIECES);
        }
        int rc = regcomp(&o->colsep_re, ere, REG_EXTENDED);
        free(ere);
        if (rc) {
            char msg[128];
            regerror(rc, &o->colsep_re, msg, sizeof msg);
            const char *bad = o->colsep;
            o->colsep = NULL; /* nothing compiled to free */
            return run_usage("option --colsep: '%s' is not a regular expression: %s", bad, msg);
        }
    }
    return 0;
}

int run_parse(int argc, char **argv, struct run_opts *o)
{
    *o = (struct run_opts){ .delim = '\n' };
    bool help = false;
    int i = 0, rc = parse_options(argc, argv, &i, o, &help);
    if (rc) goto fail;
    if (help) {
        run_opts_free(o);
        o->help = true;
        return 0;
    }
    if (!o->jobs && (rc = parse_jobs("100%", &o->jobs))) goto fail;
    o->cmd = argv + i;
    while (i < argc && !is_separator(argv[i])) i++;
    o->ncmd = (size_t)(argv + i - o->cmd);
    while (i < argc) { /* ::: ARGS, :::+ ARGS, :::: FILES, ::::+ FILES */
        const char *sep = argv[i++];
        bool linked = sep[strlen(sep) - 1] == '+';
        int start = i;
        while (i < argc && !is_separator(argv[i])) i++;
        if (sep[3] != ':') {
            if ((rc = add_source(o, RUN_SRC_ARGS, linked, NULL))) goto fail;
            o->sources[o->nsources - 1].args = argv + start;
            o->sources[o->nsources - 1].nargs = (size_t)(i - start);
            continue;
        }
        if (i == start) {
            rc = run_usage("'%s' needs a file name (or - for stdin)", sep);
            goto fail;
        }
        for (int f = start; f < i; f++)
            if ((rc = add_source(o, RUN_SRC_FILE, linked && f == start, argv[f]))) goto fail;
    }
    if (!o->nsources && (rc = add_source(o, RUN_SRC_STDIN, false, "-"))) goto fail;
    if ((rc = check_opts(o))) goto fail;
    return 0;
fail:
    run_opts_free(o);
    return rc;
}

void run_opts_free(struct run_opts *o)
{
    if (o->colsep) regfree(&o->colsep_re);
    free(o->sources);
    *o = (struct run_opts){ .delim = '\n' };
}

void run_help(FILE *f)
{
    fprintf(f,
        "usage: ember run [OPTIONS] [COMMAND [ARG]...] [::: ARGS | :::+ ARGS | :::: FILES | ::::+ FILES]...\n"
        "Runs COMMAND once per input, as GNU parallel does, each job an exec call on a pool.\n"
        "inputs: ::: ARGS (values), :::: FILES (lines; - is stdin); several are multiplied (the\n"
        "  last varies fastest), :::+ and ::::+ link to the one before (pairs, up to the shorter);\n"
        "  none: lines of stdin; with no COMMAND the inputs are the commands\n"
        "replacement strings: {} {.} (no extension) {/} (basename) {//} (dirname) {/.} {#} (job\n"
        "  number) {%%} (job slot), {N} {N.} {N/} {N//} {N/.} (the Nth value), {out} (--output);\n"
        "  values are quoted for the shell; with none, the values are appended\n"
        "  -a, --arg-file FILE     an input source (repeatable)\n"
        "  -n, --max-args N        N values per job\n"
        "  -C, --colsep REGEX      split each input into columns {1} {2}...\n"
        "  -0, --null              inputs end with NUL; -d, --delimiter C: with C\n"
        "  -q, --quote             quote the command's words too\n"
        "  -j, --jobs N            jobs at once: N, N%% or +N/-N of the CPUs (default: the CPUs)\n"
        "  --pool NAME             run on a running pool (default: a pool of its own)\n"
        "  --redis URL --stream KEY  send the jobs through Redis stream KEY to the hosts'\n"
        "                          'ember bridge's (-j: jobs in the stream at once)\n"
        "  --handler NAME          send each job's words to handler NAME instead of exec\n"
        "  --plugin NAME|PATH      the batch's own pool loads this handler plugin (repeatable)\n"
        "  --shell                 run every job with /bin/sh (default: only those needing it)\n"
        "  -k, --keep-order        output in input order\n"
        "  --tag, --tagstring STR  prefix output lines with the values (or STR), a TAB\n"
        "  --line-buffer           output line by line (default: each job's output whole)\n"
        "  --output TEMPLATE       the job's output file; the command writes {out}, renamed to it\n"
        "                          on success, removed otherwise\n"
        "  --timeout D, --delay D  D: seconds, or 250ms, 30s, 2m, 1h30m\n"
        "  --retries N             try a failing job up to N times\n"
        "  --halt WHEN,WHAT=N      WHEN now|soon, WHAT fail|success|done, N or N%%; or never\n"
        "  --joblog FILE, --resume, --resume-failed   GNU parallel's job log, and resuming from it\n"
        "  --bar, --eta, --progress   progress on the terminal\n"
        "  --receipts FILE         one JSON line per job\n"
        "  --dry-run               print the jobs' commands, run nothing\n"
        "exit status: 0; 1-100 the number of failed jobs; 101 more; 255 other errors\n");
}

/* ---- inputs ---- */

/* One source being read: its values in memory (::: args, or a file read
 * whole), or a file read value by value. */
struct src {
    char **vals;
    size_t n, cap;
    size_t next;        /* streamed: values handed out */
    FILE *f;            /* streamed, or NULL */
    bool own_f;
    const char *name;
    bool pad;           /* an empty source among several gives one empty value */
    char *line;
    size_t linecap;
};

struct run_input {
    const struct run_opts *o;
    struct src *src;
    size_t nsrc;
    size_t *group;      /* group g's first source; group[ngroups] = nsrc */
    size_t ngroups;
    size_t *glen;       /* values in group g >= 1 (the shortest of its sources) */
    size_t *idx;        /* group g >= 1's current value */
    char **cur0;        /* group 0's current values, one per source */
    bool have0, done;
    uint64_t seq;
};

static int src_push(struct src *s, const char *v, size_t len)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        char **p = realloc(s->vals, cap * sizeof *p);
        if (!p) return -1;
        s->vals = p, s->cap = cap;
    }
    char *c = strndup(v, len);
    if (!c) return -1;
    s->vals[s->n++] = c;
    return 0;
}

/* The next value of stream S into *V (malloc'd): 1, 0 at the end, -1 error */
static int src_read(struct src *s, char delim, char **v)
{
    ssize_t len = getdelim(&s->line, &s->linecap, delim, s->f);
    if (len < 0) {
        if (ferror(s->f)) {
            fprintf(stderr, "%s: cannot read input %s: %s\n", cli_cmd, s->name, strerror(errno));
            return -1;
        }
        return 0;
    }
    if (len > 0 && s->line[len - 1] == delim) len--;
    *v = strndup(s->line, (size_t)len);
    return *v ? 1 : -1;
}

/* The value of source S (streamed or not) after the last: 1, 0 at its end, -1 */
static int src_next(struct src *s, char delim, char **v)
{
    if (!s->f) {
        if (s->next < s->n) {
            *v = strdup(s->vals[s->next++]);
            return *v ? 1 : -1;
        }
        if (s->next == 0 && s->pad) {
            s->next = 1;
            *v = strdup("");
            return *v ? 1 : -1;
        }
        return 0;
    }
    int rc = src_read(s, delim, v);
    if (rc == 0 && s->next == 0 && s->pad) {
        *v = strdup("");
        rc = *v ? 1 : -1;
    }
    if (rc == 1) s->next++;
    return rc;
}

/* Open source D into S: ::: args split at the delimiter; files opened
 * (stdin for "-"), read whole unless STREAM. 0 or -1 with the error printed. */
static int src_open(const struct run_opts *o, const struct run_source *d, struct src *s, bool stream)
{
    if (d->kind == RUN_SRC_ARGS) {
        s->name = ":::";
        for (size_t i = 0; i < d->nargs; i++) {
            const char *a = d->args[i], *end = a + strlen(a);
            for (const char *p = a;;) { /* split at the delimiter, as lines */
                const char *q = memchr(p, o->delim, (size_t)(end - p));
                if (!q) {
                    if (p < end || p == a) {
                        if (src_push(s, p, (size_t)(end - p))) return -1;
                    }
                    break;
                }
                if (src_push(s, p, (size_t)(q - p))) return -1;
                p = q + 1;
            }
        }
        return 0;
    }
    s->name = d->path;
    if (strcmp(d->path, "-") == 0) {
        s->f = stdin;
        s->name = "stdin";
    } else {
        s->f = fopen(d->path, "r");
        if (!s->f) {
            fprintf(stderr, "%s: cannot open input file '%s': %s\n", cli_cmd, d->path,
                    strerror(errno));
            return -1;
        }
        s->own_f = true;
    }
    if (stream) return 0;
    char *v;
    int rc;
    while ((rc = src_read(s, o->delim, &v)) == 1) {
        int prc = src_push(s, v, strlen(v));
        free(v);
        if (prc) return -1;
    }
    if (s->own_f) fclose(s->f);
    s->f = NULL, s->own_f = false;
    return rc;
}

void run_input_close(struct run_input *in)
{
    if (!in) return;
    for (size_t i = 0; i < in->nsrc; i++) {
        struct src *s = &in->src[i];
        for (size_t j = 0; j < s->n; j++) free(s->vals[j]);
        free(s->vals);
        free(s->line);
        if (s->own_f) fclose(s->f);
    }
    if (in->cur0)
        for (size_t i = 0; in->ngroups && i < in->group[1]; i++) free(in->cur0[i]);
    free(in->cur0);
    free(in->src);
    free(in->group);
    free(in->glen);
    free(in->idx);
    free(in);
}

int run_input_open(const struct run_opts *o, struct run_input **inp)
{
    struct run_input *in = calloc(1, sizeof *in);
    *inp = NULL;
    if (!in) goto oom;
    in->o = o;
    in->nsrc = o->nsources;
    in->src = calloc(in->nsrc, sizeof *in->src);
    in->group = calloc(in->nsrc + 1, sizeof *in->group);
    in->glen = calloc(in->nsrc + 1, sizeof *in->glen);
    in->idx = calloc(in->nsrc + 1, sizeof *in->idx);
    if (!in->src || !in->group || !in->glen || !in->idx) goto oom;
    for (size_t i = 0; i < in->nsrc; i++)
        if (i == 0 || !o->sources[i].linked) in->group[in->ngroups++] = i;
    in->group[in->ngroups] = in->nsrc;
    in->cur0 = calloc(in->group[1], sizeof *in->cur0);
    if (!in->cur0) goto oom;
    for (size_t i = 0; i < in->nsrc; i++) {
        in->src[i].pad = in->nsrc > 1;
        if (src_open(o, &o->sources[i], &in->src[i], i < in->group[1])) goto fail;
    }
    for (size_t g = 1; g < in->ngroups; g++) {
        size_t len = SIZE_MAX;
        for (size_t i = in->group[g]; i < in->group[g + 1]; i++) {
            struct src *s = &in->src[i];
            if (s->n == 0 && s->pad && src_push(s, "", 0)) goto oom;
            if (s->n < len) len = s->n;
        }
        in->glen[g] = len;
        if (len == 0) in->done = true;
    }
    *inp = in;
    return 0;
oom:
    fprintf(stderr, "%s: out of memory reading the inputs\n", cli_cmd);
fail:
    run_input_close(in);
    return -1;
}

/* Group 0's next values into cur0: 1, 0 at its end, -1 */
static int read_group0(struct run_input *in)
{
    for (size_t i = 0; i < in->group[1]; i++) {
        free(in->cur0[i]);
        in->cur0[i] = NULL;
    }
    for (size_t i = 0; i < in->group[1]; i++) {
        int rc = src_next(&in->src[i], in->o->delim, &in->cur0[i]);
        if (rc != 1) return rc;
    }
    return 1;
}

struct vals {
    char **v;
    size_t n, cap;
};

static int vals_push(struct vals *a, const char *s, size_t len)
{
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 8;
        char **v = realloc(a->v, cap * sizeof *v);
        if (!v) return -1;
        a->v = v, a->cap = cap;
    }
    a->v[a->n] = strndup(s, len);
    if (!a->v[a->n]) return -1;
    a->v[++a->n] = NULL;
    return 0;
}

/* V's columns (--colsep) into A. An empty match splits off one character
 * (Perl's split); a trailing empty column is kept (parallel's). */
static int push_columns(const struct run_opts *o, struct vals *a, const char *v)
{
    if (!o->colsep) return vals_push(a, v, strlen(v));
    const char *start = v, *p = v;
    regmatch_t m;
    while (*p && regexec(&o->colsep_re, p, 1, &m, p == v ? 0 : REG_NOTBOL) == 0) {
        const char *ms = p + m.rm_so, *me = p + m.rm_eo;
        if (ms == me) {
            if (!*ms) break;
            const char *cut = ms == start ? ms + 1 : ms;
            if (vals_push(a, start, (size_t)(cut - start))) return -1;
            start = p = cut;
            continue;
        }
        if (vals_push(a, start, (size_t)(ms - start))) return -1;
        start = p = me;
    }
    return vals_push(a, start, strlen(start));
}

/* The next record (one value per source) into A: 1, 0, -1 (a read error,
 * printed), -2 (out of memory) */
static int next_record(struct run_input *in, struct vals *a)
{
    if (in->done) return 0;
    if (!in->have0) {
        int rc = read_group0(in);
        if (rc != 1) {
            in->done = true;
            return rc < 0 && errno == ENOMEM ? -2 : rc;
        }
        in->have0 = true;
    }
    for (size_t i = 0; i < in->group[1]; i++)
        if (push_columns(in->o, a, in->cur0[i])) return -2;
    for (size_t g = 1; g < in->ngroups; g++)
        for (size_t i = in->group[g]; i < in->group[g + 1]; i++)
            if (push_columns(in->o, a, in->src[i].vals[in->idx[g]])) return -2;
    size_t g = in->ngroups; /* the odometer: the last group varies fastest */
    while (--g >= 1) {
        if (++in->idx[g] < in->glen[g]) return 1;
        in->idx[g] = 0;
    }
    in->have0 = false;
    return 1;
}

int run_input_next(struct run_input *in, struct run_args *args)
{
    struct vals a = { 0 };
    unsigned want = in->o->max_args ? in->o->max_args : 1, got = 0;
    int rc = 0;
    *args = (struct run_args){ 0 };
    while (got < want && (rc = next_record(in, &a)) == 1) got++;
    args->v = a.v;
    args->n = a.n;
    if (rc < 0 || got == 0) {
        if (rc == -2) fprintf(stderr, "%s: out of memory reading the inputs\n", cli_cmd);
        run_args_free(args);
        return rc < 0 ? -1 : 0;
    }
    args->seq = ++in->seq;
    return 1;
}

void run_args_free(struct run_args *args)
{
    for (size_t i = 0; i < args->n; i++) free(args->v[i]);
    free(args->v);
    *args = (struct run_args){ 0 };
}

/* ---- --dry-run ---- */

unsigned run_dry_slot(const struct run_opts *o, uint64_t seq)
{
    return (unsigned)((seq - 1) % (o->jobs ? o->jobs : 1)) + 1;
}

int run_dry_run(const struct run_opts *o, FILE *out)
{
    struct run_seqset skip = { 0 };
    if ((o->resume || o->resume_failed) &&
        run_joblog_load(o->joblog, o->resume_failed && !o->resume, &skip))
        return RUN_EXIT_ERROR;
    struct run_input *in;
    if (run_input_open(o, &in)) {
        run_seqset_free(&skip);
        return RUN_EXIT_ERROR;
    }
    struct run_args a;
    int rc, status = 0;
    while ((rc = run_input_next(in, &a)) == 1) {
        if (!run_seqset_has(&skip, a.seq)) {
            unsigned slot = run_dry_slot(o, a.seq);
            char *name = run_output_name(o, &a, a.seq, slot);
            char *tag = run_tag(o, &a, a.seq, slot);
            char *line = run_compose(o, &a, a.seq, slot, name);
            if (!line || (o->output && !name) || (o->tag && !tag)) {
                fprintf(stderr, "%s: out of memory composing job %llu\n", cli_cmd,
                        (unsigned long long)a.seq);
                status = RUN_EXIT_ERROR;
            } else {
                fprintf(out, "%s%s\n", tag ? tag : "", line);
            }
            free(name);
            free(tag);
            free(line);
        }
        run_args_free(&a);
        if (status) break;
    }
    if (rc < 0) status = RUN_EXIT_ERROR;
    run_input_close(in);
    run_seqset_free(&skip);
    if (fflush(out) == EOF) status = RUN_EXIT_ERROR;
    return status;
}
