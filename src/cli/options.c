/* cli/options.c - values on the command line, and the pool options.
 *
 * The pool options come from pool.h's one table (EMBER_POOL_OPTIONS): the
 * command takes each as --NAME (or --NA-ME), parses it by its kind, and
 * lists it in its help with its default. */
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include "cli.h"

/* DURATION: a number with a unit (ns, us, ms, s, m, h); a bare number is
 * milliseconds, as FLAME's options; "never" for min_idle_shutdown_after. */
bool parse_duration(const char *s, int64_t *out)
{
    if (strcmp(s, "never") == 0 || strcmp(s, "infinity") == 0) {
        *out = EMBER_NEVER;
        return true;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0) return false;
    double mul = 1e6;
    if (*end == 0 || strcmp(end, "ms") == 0) mul = 1e6;
    else if (strcmp(end, "ns") == 0) mul = 1;
    else if (strcmp(end, "us") == 0) mul = 1e3;
    else if (strcmp(end, "s") == 0) mul = 1e9;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0) mul = 60e9;
    else if (strcmp(end, "h") == 0) mul = 3600e9;
    else return false;
    double ns = v * mul;
    if (ns >= 9.2e18) return false;
    *out = (int64_t)ns;
    return true;
}

/* SIZE: bytes, or with K, M, G (powers of 1024; an optional trailing B or iB). */
bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-') return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno) return false;
    uint64_t mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 0: break;
    case 'K': mul = 1ull << 10, end++; break;
    case 'M': mul = 1ull << 20, end++; break;
    case 'G': mul = 1ull << 30, end++; break;
    default: return false;
    }
    if (mul > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)) end += strlen(end);
    if (*end || v > UINT64_MAX / mul) return false;
    *out = v * mul;
    return true;
}

bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-' || !*s) return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v > max) return false;
    *out = v;
    return true;
}

bool option_name(const char *arg, char *name, size_t len)
{
    if (strncmp(arg, "--", 2) != 0 || !arg[2]) return false;
    size_t k = strcspn(arg + 2, "=");
    if (k >= len) k = len - 1;
    for (size_t j = 0; j < k; j++) name[j] = arg[2 + j] == '-' ? '_' : arg[2 + j];
    name[k] = 0;
    return true;
}

const char *option_value(int argc, char **argv, int *i, bool takes_value)
{
    const char *eq = strchr(argv[*i], '=');
    (*i)++;
    if (eq) return eq + 1;
    if (takes_value && *i < argc) return argv[(*i)++];
    return NULL;
}

/* The entry of OPTS named NAME (or, NAME NULL, whose letter is LETTER). */
static const struct cli_opt *cli_opt_find(const struct cli_opt *opts, const char *name, char letter)
{
    for (; opts->name; opts++)
        if (name ? strcmp(opts->name, name) == 0 : opts->letter == letter) return opts;
    return NULL;
}

int cli_parse_args(int argc, char **argv, const struct cli_opt *opts, const char **pos, int maxpos,
                   int *npos)
{
    *npos = 0;
    bool options_end = false; /* after "--", everything is an argument */
    for (int i = 0; i < argc;) {
        const char *a = argv[i];
        const struct cli_opt *letter = NULL;
        if (!options_end && a[0] == '-' && a[1] && a[1] != '-' && !a[2])
            letter = cli_opt_find(opts, NULL, a[1]);
        if (letter && letter->kind == CLI_FLAG) {
            *(bool *)letter->dst = true;
            i++;
            continue;
        }
        if (!options_end && strcmp(a, "--") == 0) {
            options_end = true;
            i++;
            continue;
        }
        if (options_end || strncmp(a, "--", 2) != 0) { /* "-x" and "-" are arguments too */
            if (*npos == maxpos) return usage_error("unexpected argument '%s'", a);
            pos[(*npos)++] = argv[i++];
            continue;
        }
        char name[64];
        option_name(a, name, sizeof name);
        const struct cli_opt *o = cli_opt_find(opts, name, 0);
        if (!o) return usage_error("unknown option --%s", name);
        const char *val = option_value(argc, argv, &i, o->kind != CLI_FLAG);
        if (o->kind == CLI_FLAG) {
            if (val) return usage_error("option --%s takes no value", name);
            *(bool *)o->dst = true;
        } else if (!val) {
            return usage_error("option --%s needs a value", name);
        } else if (o->kind == CLI_DURATION) {
            if (!parse_duration(val, (int64_t *)o->dst))
                return usage_error("option --%s: '%s' is not a duration (e.g. 250ms, 30s, 2m)",
                                   name, val);
        } else if (!parse_uint(val, o->max, (uint64_t *)o->dst)) {
            return usage_error("option --%s: '%s' is not a whole number up to %" PRIu64, name, val,
                               o->max);
        }
    }
    return 0;
}

struct pool_opt { const char *name; int kind; size_t off; const char *doc; };
static const struct pool_opt pool_opts[] = {
#define XOPT(name, field, kind, def, lo, hi, doc) \
    { #name, kind, offsetof(struct ember_pool_config, field), doc },
    EMBER_POOL_OPTIONS(XOPT)
#undef XOPT
};
#define NOPTS (sizeof pool_opts / sizeof pool_opts[0])

static const struct pool_opt *find_opt(const char *name)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(pool_opts[i].name, name) == 0) return &pool_opts[i];
    return NULL;
}

bool pool_option_is_flag(const char *name)
{
    const struct pool_opt *d = find_opt(name);
    return d && d->kind == EMBER_OPT_BOOL;
}

static const char *const placements[] = { "numa", "core", "none" };

int set_pool_option(struct ember_pool_config *cfg, const char *name, const char *val)
{
    const struct pool_opt *d = find_opt(name);
    if (!d) return usage_error("unknown option --%s", name);
    void *p = (char *)cfg + d->off;
    uint64_t u;
    int64_t dur;
    if (d->kind == EMBER_OPT_BOOL) {
        if (!val || strcmp(val, "true") == 0 || strcmp(val, "1") == 0) *(bool *)p = true;
        else if (strcmp(val, "false") == 0 || strcmp(val, "0") == 0) *(bool *)p = false;
        else return usage_error("option --%s: '%s' is not true or false", name, val);
        return 0;
    }
    if (!val) return usage_error("option --%s needs a value", name);
    switch (d->kind) {
    case EMBER_OPT_UINT:
    case EMBER_OPT_INT:
    case EMBER_OPT_U64:
        if (!parse_uint(val, d->kind == EMBER_OPT_U64 ? UINT64_MAX : d->kind == EMBER_OPT_INT ? INT32_MAX : UINT32_MAX, &u))
            return usage_error("option --%s: '%s' is not a whole number", name, val);
        if (d->kind == EMBER_OPT_UINT) *(unsigned *)p = (unsigned)u;
        else if (d->kind == EMBER_OPT_INT) *(int *)p = (int)u;
        else *(uint64_t *)p = u;
        return 0;
    case EMBER_OPT_SIZE:
        if (!parse_size(val, &u) || u > SIZE_MAX)
            return usage_error("option --%s: '%s' is not a size (bytes, or with K, M, G)", name, val);
        *(size_t *)p = (size_t)u;
        return 0;
    case EMBER_OPT_DURATION:
        if (!parse_duration(val, &dur))
            return usage_error("option --%s: '%s' is not a duration (e.g. 250ms, 30s, 2m, never)",
                               name, val);
        *(int64_t *)p = dur;
        return 0;
    case EMBER_OPT_PLACEMENT:
        for (int i = 0; i < 3; i++)
            if (strcmp(val, placements[i]) == 0) {
                *(int *)p = i;
                return 0;
            }
        return usage_error("option --%s: '%s' is not numa, core or none", name, val);
    default: /* EMBER_OPT_STRING */
        *(const char **)p = val;
        return 0;
    }
}

/* The value of option D in CFG as text. */
static void opt_value(const struct pool_opt *d, const struct ember_pool_config *cfg, char *buf,
                      size_t len)
{
    const void *p = (const char *)cfg + d->off;
    switch (d->kind) {
    case EMBER_OPT_UINT: snprintf(buf, len, "%u", *(const unsigned *)p); break;
    case EMBER_OPT_INT: snprintf(buf, len, "%d", *(const int *)p); break;
    case EMBER_OPT_U64: snprintf(buf, len, "%" PRIu64, *(const uint64_t *)p); break;
    case EMBER_OPT_SIZE: {
        size_t z = *(const size_t *)p;
        static const char units[] = "GMK";
        for (int u = 0; z && u < 3; u++) {
            size_t m = (size_t)1 << (30 - 10 * u);
            if (z % m == 0) {
                snprintf(buf, len, "%zu%c", z / m, units[u]);
                return;
            }
        }
        snprintf(buf, len, "%zu", z);
        break;
    }
    case EMBER_OPT_BOOL: snprintf(buf, len, "%s", *(const bool *)p ? "true" : "false"); break;
    case EMBER_OPT_PLACEMENT: snprintf(buf, len, "%s", placements[*(const int *)p % 3]); break;
    case EMBER_OPT_DURATION: {
        int64_t ns = *(const int64_t *)p;
        if (ns == EMBER_NEVER) snprintf(buf, len, "never");
        else if (ns % 1000000000ll == 0) snprintf(buf, len, "%llds", (long long)(ns / 1000000000ll));
        else snprintf(buf, len, "%lldms", (long long)(ns / 1000000));
        break;
    }
    default: {
        const char *s = *(const char *const *)p;
        snprintf(buf, len, "%s", s ? s : strcmp(d->name, "nodes") == 0 ? "all" : "none");
    }
    }
}

void cli_pool_config_init(struct ember_pool_config *cfg)
{
    ember_pool_config_init(cfg);
    /* a job from the shell takes as long as it takes: a deadline is asked
     * for (--timeout), not imposed */
    cfg->timeout_ns = EMBER_NEVER;
    /* a standing pool tells its operator what happens to it (pool events,
     * deaths, reclaimed callers, refused calls) */
    cfg->log = 1;
}

void pool_options_help(FILE *f)
{
    static const char *const kinds[] = { "N", "N", "N", "SIZE", "DURATION", "", "numa|core|none",
                                         "LIST" };
    struct ember_pool_config cfg, lib;
    cli_pool_config_init(&cfg);
    ember_pool_config_init(&lib);
    fprintf(f, "pool options (struct ember_pool_config's names; '-' may stand for '_'):\n");
    for (size_t i = 0; i < NOPTS; i++) {
        const struct pool_opt *d = &pool_opts[i];
        char arg[64], def[32], libdef[32];
        snprintf(arg, sizeof arg, "--%s%s%s", d->name, kinds[d->kind][0] ? " " : "", kinds[d->kind]);
        opt_value(d, &cfg, def, sizeof def);
        opt_value(d, &lib, libdef, sizeof libdef);
        if (strcmp(def, libdef) == 0)
            fprintf(f, "  %-36s %s (default %s)\n", arg, d->doc, def);
        else /* the command's own default */
            fprintf(f, "  %-36s %s (default %s; %s in a pool a program starts)\n", arg, d->doc, def,
                    libdef);
    }
}
