/* tests/plugins/bad.c - plugins that must not load (or not boot), one per
 * build of this file (tests/plugins/meson.build defines which):
 *   BAD_ENTRY  no ember_plugin_v1: not an ember plugin
 *   BAD_ABI    EMBER_PLUGIN_ABI + 1
 *   BAD_CLASH  "bad_clash.ok", then "echo", a built-in's name: nothing of
 *              it may be registered
 *   BAD_INIT   "bad_init.x", whose init fails with 7: runners never boot */
#include <ember/plugin.h>

#if defined(BAD_ENTRY)
const ember_plugin *ember_plugin_v0(void);
const ember_plugin *ember_plugin_v0(void) { return 0; }
#else
static int ok(void *ctx, const void *args, size_t len, ember_out *out, const ember_job *job)
{
    (void)ctx, (void)job;
    return ember_out_write(out, args, len);
}

#if defined(BAD_INIT)
static int init_fails(void **ctx)
{
    (void)ctx;
    return 7;
}
#endif

static const ember_plugin_handler handlers[] = {
#if defined(BAD_CLASH)
    { "bad_clash.ok", ok, 0, 0, "ARG", "ARG back" },
    { "echo", ok, 0, 0, "ARG", "the built-in's name" },
#elif defined(BAD_INIT)
    { "bad_init.x", ok, init_fails, 0, "", "its init fails" },
#else
    { "bad_abi.x", ok, 0, 0, "", "never registered" },
#endif
};

static const ember_plugin plugin = {
#if defined(BAD_ABI)
    EMBER_PLUGIN_ABI + 1,
#else
    EMBER_PLUGIN_ABI,
#endif
    "bad", "0", "a plugin that must fail", handlers, sizeof handlers / sizeof handlers[0],
};

const ember_plugin *EMBER_PLUGIN_ENTRY(void) { return &plugin; }
#endif
