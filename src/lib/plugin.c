/* plugin.c - handler plugins (plugin.h): finding one, loading and checking
 * it, registering its handlers.
 *
 * A plugin is dlopen()ed RTLD_NOW, so a symbol it lacks is an error now and
 * not a crash in a runner later, and RTLD_LOCAL, so what it defines stays
 * its own (two plugins may both have a helper of the same name). Its
 * description is checked whole, the ABI first (with another ABI the rest of
 * the struct may not be what this file reads), then its names and
 * functions; then its handlers are registered, all or none. It stays loaded
 * for the life of the process: the runners forked later run its code.
 *
 * What a plugin calls of ember (ember_out_write, ember_job_cancelled...) it
 * finds in the program that loads it: libember.so exports those functions;
 * a program linked with libember.a must export them from itself
 * (-Wl,--export-dynamic-symbol=ember_[a-z]*), as the ember command does.
 *
 * Like ember_handler_register(), loading is for one thread of the program,
 * before it starts its pools. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/internal.h"

/* the install's plugin directory (meson passes it) */
#ifndef EMBER_PLUGIN_DIR
#define EMBER_PLUGIN_DIR "/usr/local/lib/ember/plugins"
#endif

#define EMBER__MAX_PLUGINS 64

/* The plugins registered in this process, so that a second load of one is
 * a no-op (dlopen gives the same handle for the same file). */
static struct { void *dl; const ember_plugin *desc; } loaded[EMBER__MAX_PLUGINS];
static unsigned nloaded;

/* A plugin being loaded: where it is, what messages call it, its handle. */
struct found {
    char path[PATH_MAX];
    char label[PATH_MAX + 48];   /* "'NAME' (PATH)", or the PATH given */
    void *dl;
    const ember_plugin *desc;
};

/* Append S (N bytes) to BUF (LEN bytes) at *AT, as far as it fits; *AT
 * counts all of it. */
static void put(char *buf, size_t len, size_t *at, const char *s, size_t n)
{
    if (*at < len) {
        size_t k = len - 1 - *at < n ? len - 1 - *at : n;
        memcpy(buf + *at, s, k);
        buf[*at + k] = 0;
    }
    *at += n;
}

int ember_plugin_path(char *buf, size_t len)
{
    size_t at = 0;
    if (len) buf[0] = 0;
    const char *env = getenv("EMBER_PLUGIN_PATH");
    for (const char *d = env ? env : ""; *d;) {
        size_t n = strcspn(d, ":");
        if (n) { /* an empty entry stands for nothing */
            if (at) put(buf, len, &at, ":", 1);
            put(buf, len, &at, d, n);
        }
        d += n + (d[n] == ':');
    }
    if (at) put(buf, len, &at, ":", 1);
    put(buf, len, &at, EMBER_PLUGIN_DIR, strlen(EMBER_PLUGIN_DIR));
    /* plugins/ beside the program: the build tree's build/plugins for build/ember */
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    const char *slash = k > 0 ? memrchr(exe, '/', (size_t)k) : NULL;
    if (slash) {
        put(buf, len, &at, ":", 1);
        put(buf, len, &at, exe, (size_t)(slash - exe));
        put(buf, len, &at, "/plugins", 8);
    }
    return at > INT_MAX ? INT_MAX : (int)at;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

/* Where plugin ARG is: ARG itself when it has a '/', else ARG.so (ARG when
 * it ends in .so) in the first directory of the search path that has it.
 * Fills F's path and label. */
static int plugin_find(const char *arg, struct found *f)
{
    if (strchr(arg, '/')) {
        snprintf(f->label, sizeof f->label, "%s", arg);
        if ((size_t)snprintf(f->path, sizeof f->path, "%s", arg) >= sizeof f->path)
            return ember__fail(-EMBER_EINVAL, "plugin %.80s...: the path is too long", arg);
        if (access(f->path, F_OK) != 0) {
            char what[120];
            snprintf(what, sizeof what, "plugin %s", arg);
            return ember__sys_fail(errno, what);
        }
        return 0;
    }
    if (!arg[0]) return ember__fail(-EMBER_EINVAL, "plugin '': an empty name (give a NAME or a PATH)");
    char dirs[4 * PATH_MAX];
    ember_plugin_path(dirs, sizeof dirs);
    const char *suffix = ends_with(arg, ".so") ? "" : ".so";
    for (const char *d = dirs; *d;) {
        size_t n = strcspn(d, ":");
        if ((size_t)snprintf(f->path, sizeof f->path, "%.*s/%s%s", (int)n, d, arg, suffix) <
                sizeof f->path &&
            access(f->path, F_OK) == 0) {
            snprintf(f->label, sizeof f->label, "'%s' (%s)", arg, f->path);
            return 0;
        }
        d += n + (d[n] == ':');
    }
    char list[sizeof dirs + 256]; /* for the reader: "a, b" */
    size_t at = 0;
    for (const char *d = dirs; *d;) {
        size_t n = strcspn(d, ":");
        if (at) put(list, sizeof list, &at, ", ", 2);
        put(list, sizeof list, &at, d, n);
        d += n + (d[n] == ':');
    }
    return ember__fail(-EMBER_ENOENT, "plugin '%s': not found (looked in: %s)", arg, list);
}

/* Check the description P of plugin F. */
static int plugin_check(const struct found *f, const ember_plugin *p)
{
    const char *l = f->label;
    if (!p)
        return ember__fail(-EMBER_EINVAL, "plugin %s: " EMBER_PLUGIN_ENTRY_NAME "() returned NULL",
                           l);
    if (p->abi != EMBER_PLUGIN_ABI)
        return ember__fail(-EMBER_EABI, "plugin %s: ABI %u, this ember speaks %d: rebuild it "
                           "against this ember's <ember/plugin.h>", l, (unsigned)p->abi,
                           EMBER_PLUGIN_ABI);
    if (!ember__name_ok(p->name))
        return ember__fail(-EMBER_EINVAL, "plugin %s: its name '%s' is not 1-39 of [A-Za-z0-9_.-]",
                           l, p->name ? p->name : "(null)");
    if (!p->handlers || p->nhandlers == 0)
        return ember__fail(-EMBER_EINVAL, "plugin %s: it offers no handlers", l);
    if (p->nhandlers > EMBER_MAX_HANDLERS)
        return ember__fail(-EMBER_EINVAL, "plugin %s: %zu handlers, more than a pool has places for",
                           l, p->nhandlers);
    for (size_t i = 0; i < p->nhandlers; i++) {
        const ember_plugin_handler *h = &p->handlers[i];
        if (!ember__handler_name_ok(h->name))
            return ember__fail(-EMBER_EINVAL, "plugin %s: handler %zu's name '%s' is not 1-39 of "
                               "[A-Za-z0-9_.-]", l, i, h->name ? h->name : "(null)");
        if (!h->fn) return ember__fail(-EMBER_EINVAL, "plugin %s: handler '%s' has no function", l, h->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->handlers[j].name, h->name) == 0)
                return ember__fail(-EMBER_EINVAL, "plugin %s: handler '%s' is listed twice", l, h->name);
    }
    return 0;
}

/* dlopen's failure WHY for plugin F. */
static int load_failed(const struct found *f, const char *why)
{
    if (!why) why = "unknown reason";
    if (strstr(why, "undefined symbol: ember_"))
        return ember__fail(-EMBER_EINVAL, "plugin %s: %s (this program does not export libember's "
                           "functions: link it with libember.so, or with "
                           "-Wl,--export-dynamic-symbol=ember_[a-z]*)", f->label, why);
    return ember__fail(-EMBER_EINVAL, "plugin %s: cannot load it: %s", f->label, why);
}

/* Find, open and check plugin ARG into F; on failure nothing stays open. */
static int plugin_open(const char *arg, struct found *f)
{
    if (!arg) return ember__fail(-EMBER_EINVAL, "plugin: the name or path is NULL");
    int rc = plugin_find(arg, f);
    if (rc) return rc;
    dlerror();
    f->dl = dlopen(f->path, RTLD_NOW | RTLD_LOCAL);
    if (!f->dl) return load_failed(f, dlerror());
    void *sym = dlsym(f->dl, EMBER_PLUGIN_ENTRY_NAME);
    if (!sym) {
        rc = ember__fail(-EMBER_EINVAL, "plugin %s: no " EMBER_PLUGIN_ENTRY_NAME
                         " (not an ember plugin)", f->label);
    } else {
        const ember_plugin *(*entry)(void);
        memcpy(&entry, &sym, sizeof entry); /* ISO C has no cast from data to function pointer */
        f->desc = entry();
        rc = plugin_check(f, f->desc);
    }
    if (rc) dlclose(f->dl); /* the message is written: nothing of the plugin is read after */
    return rc;
}

/* Register the handlers of plugin F: all, or none with the failure. */
static int plugin_register(const struct found *f)
{
    const ember_plugin *p = f->desc;
    if (nloaded == EMBER__MAX_PLUGINS)
        return ember__fail(-EMBER_EINVAL, "plugin %s: this program has %d plugins loaded, the most "
                           "it takes", f->label, EMBER__MAX_PLUGINS);
    for (size_t i = 0; i < p->nhandlers; i++)
        if (ember__handler_find(p->handlers[i].name) >= 0)
            return ember__fail(-EMBER_EEXIST, "plugin %s: handler '%s' is already registered",
                               f->label, p->handlers[i].name);
    if (ember__nhandlers + p->nhandlers > EMBER_MAX_HANDLERS)
        return ember__fail(-EMBER_EINVAL, "plugin %s: its %zu handlers do not fit (%u of the %d "
                           "handler places are taken)", f->label, p->nhandlers, ember__nhandlers,
                           EMBER_MAX_HANDLERS);
    for (size_t i = 0; i < p->nhandlers; i++) {
        const ember_plugin_handler *h = &p->handlers[i];
        struct ember__handler e = { .pfn = h->fn, .init = h->init, .fini = h->fini };
        memcpy(e.name, h->name, strlen(h->name) + 1);
        ember__handler_add(&e);
    }
    loaded[nloaded].dl = f->dl;
    loaded[nloaded].desc = p;
    nloaded++;
    return 0;
}

int ember_plugin_load(const char *name_or_path, const ember_plugin **out)
{
    if (out) *out = NULL;
    struct found f;
    int rc = plugin_open(name_or_path, &f);
    if (rc) return rc;
    for (unsigned i = 0; i < nloaded; i++)
        if (loaded[i].dl == f.dl) { /* this file again: its handlers are ours already */
            dlclose(f.dl);
            if (out) *out = loaded[i].desc;
            return 0;
        }
    rc = plugin_register(&f);
    if (rc) {
        dlclose(f.dl);
        return rc;
    }
    if (out) *out = f.desc;
    return 0;
}

int ember_plugin_inspect(const char *name_or_path, const ember_plugin **out)
{
    if (out) *out = NULL;
    struct found f;
    int rc = plugin_open(name_or_path, &f);
    if (rc == 0 && out) *out = f.desc;
    return rc;
}

int ember__plugins_load(const char *list)
{
    for (const char *s = list ? list : ""; *s;) {
        size_t n = strcspn(s, ",");
        char one[PATH_MAX];
        if (n >= sizeof one)
            return ember__fail(-EMBER_EINVAL, "option plugins: '%.60s...' is too long", s);
        memcpy(one, s, n);
        one[n] = 0;
        s += n + (s[n] == ',');
        int rc = one[0] ? ember_plugin_load(one, NULL) : 0; /* "a,,b": no third name */
        if (rc) return rc;
    }
    return 0;
}
