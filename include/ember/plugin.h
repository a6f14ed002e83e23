/* ember/plugin.h - handler plugins: shared objects a pool loads before its
 * runners fork.
 *
 * A plugin exports one function, EMBER_PLUGIN_ENTRY (ember_plugin_v1), that
 * returns a static description: its name, and its handlers. Each handler may
 * have a per-runner init, run in each runner after the fork and before its
 * first call (a codec opened once, a model loaded once), whose context is
 * handed to every call of that handler in that runner, and a teardown run
 * when the runner exits normally. A handler runs like any other: in a
 * runner, max_concurrency calls at once, with ember_job_cancelled() to look
 * at between steps.
 *
 * Loading (ember_plugin_load, or the pool option `plugins`, or
 * `ember pool start --plugin NAME|PATH`) happens in the program that starts
 * the pool, before the supervisor forks: a missing file, a missing entry
 * point, another EMBER_PLUGIN_ABI or a handler name already registered is an
 * error, and the pool does not start. A NAME without '/' is looked for as
 * NAME.so in $EMBER_PLUGIN_PATH (':'-separated), then in the install's
 * plugin directory, then in plugins/ beside the running program (the build
 * tree).
 *
 * Threads: a runner runs its calls on max_concurrency worker threads, and
 * INIT runs once per runner (on its main thread, before the workers start),
 * not once per worker: the context it makes is shared by every call of that
 * handler in the runner, up to max_concurrency at once. A handler changes
 * what it shares with atomics or a lock, or keeps a call's state on its
 * own stack (or per thread). FINI runs once all the workers have ended.
 * "Exits normally": the runner drained (idle shutdown, max_jobs, max_rss, a
 * resize or a pool stop); a runner killed or crashed runs no FINI.
 *
 * A failing INIT (nonzero) ends its runner before it is ready, with that
 * value as exit status (1-255, else 1) and "handler 'NAME': its init
 * returned N" as the failed boot's message (ember events, EMBER_EBOOT).
 *
 * A plugin links against nothing of ember's: the handler writes its result
 * with ember_out_write()/ember_out_reserve() and reads its job with
 * ember_job_cancelled()/ember_job_remaining_ns(), which the loading program
 * (libember) provides. Built outside ember's tree:
 *   cc -shared -fPIC -o NAME.so NAME.c $(pkg-config --cflags ember)
 * and installed into $(pkg-config --variable=plugindir ember). */
#ifndef EMBER_PLUGIN_H
#define EMBER_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include "pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when struct ember_plugin or ember_plugin_handler change. */
#define EMBER_PLUGIN_ABI 1

/* A plugin's handler. CTX is what INIT stored in this runner (NULL without
 * INIT). Returns as ember_handler_fn: 0, or a value that fails the call with
 * EMBER_EHANDLER and that detail. */
typedef int (*ember_plugin_fn)(void *ctx, const void *args, size_t len, ember_out *out,
                               const ember_job *job);

typedef struct ember_plugin_handler {
    const char *name;          /* 1-39 of [A-Za-z0-9_.-], unique in the pool */
    ember_plugin_fn fn;
    /* per runner, after the fork, before its first call: 0 with *CTX set,
     * or nonzero: the runner's boot fails (the pool's boot failure path) */
    int (*init)(void **ctx);
    void (*fini)(void *ctx);   /* per runner at its exit; NULL: none */
    const char *usage;         /* its arguments in one line, for `ember plugins` */
    const char *description;   /* what it does, one line */
} ember_plugin_handler;

typedef struct ember_plugin {
    uint32_t abi;              /* EMBER_PLUGIN_ABI */
    const char *name;          /* "libav" */
    const char *version;
    const char *description;
    const ember_plugin_handler *handlers;
    size_t nhandlers;
} ember_plugin;

#define EMBER_PLUGIN_ENTRY ember_plugin_v1
#define EMBER_PLUGIN_ENTRY_NAME "ember_plugin_v1"
/* What a plugin defines (with default visibility): */
const ember_plugin *ember_plugin_v1(void);

/* Load the plugin NAME (looked for as above) or PATH and register its
 * handlers, before ember_pool_start(), from one thread (as
 * ember_handler_register()). The plugin stays loaded. Returns 0 with *OUT
 * (OUT may be NULL) describing it; -EMBER_ENOENT (not found:
 * ember_last_error() names where it looked), -EMBER_EINVAL (not a plugin:
 * no entry point, a file dlopen refuses, or a malformed description),
 * -EMBER_EABI (another EMBER_PLUGIN_ABI), -EMBER_EEXIST (a handler name
 * already registered); on any failure nothing of it is registered. Loading
 * the same file twice is a no-op (0, the same description).
 *
 * The program that loads plugins must provide ember's functions to them:
 * linked with libember.so it does; linked with libember.a, it exports them
 * with -Wl,--export-dynamic-symbol=ember_[a-z]* (else the load fails with
 * -EMBER_EINVAL naming the missing function). */
int ember_plugin_load(const char *name_or_path, const ember_plugin **out);

/* Open the plugin NAME or PATH and check it as ember_plugin_load() does,
 * without registering its handlers: what `ember plugins` lists. It stays
 * loaded. Returns as ember_plugin_load(), never -EMBER_EEXIST. */
int ember_plugin_inspect(const char *name_or_path, const ember_plugin **out);

/* The directories searched for a plugin NAME, in order and ':'-separated
 * ($EMBER_PLUGIN_PATH's, the install's, plugins/ beside the program), into
 * BUF of LEN bytes (NUL-terminated when LEN > 0). Returns the length of the
 * whole list, as snprintf: LEN or more means BUF holds its beginning. */
int ember_plugin_path(char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
