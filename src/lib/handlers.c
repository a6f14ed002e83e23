/* handlers.c - the handler registry and the built-in handlers.
 *
 * Handlers are registered in the application before its pool starts; the
 * table is copied into the segment (names) and inherited by runners through
 * fork (function pointers), so an id means the same function everywhere.
 * A plugin's handlers (plugin.c) are entries like the others, with the
 * plugin's function, init and teardown; each runner fills in their
 * contexts (runner.c). */
#include <string.h>
#include "lib/internal.h"

struct ember__handler ember__handlers[EMBER_MAX_HANDLERS];
unsigned ember__nhandlers;

bool ember__handler_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= EMBER_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

int ember__handler_find(const char *name)
{
    ember__builtin_handlers();
    for (unsigned i = 0; i < ember__nhandlers; i++)
        if (strcmp(ember__handlers[i].name, name) == 0) return (int)i;
    return -1;
}

void ember__handler_add(const struct ember__handler *h)
{
    ember__handlers[ember__nhandlers++] = *h;
}

int ember_handler_register(const char *name, ember_handler_fn fn)
{
    if (!fn) return ember__fail(-EMBER_EINVAL, "ember_handler_register: fn is NULL");
    if (!ember__handler_name_ok(name))
        return ember__fail(-EMBER_EINVAL, "handler name '%s': 1-39 of [A-Za-z0-9_.-]",
                           name ? name : "(null)");
    if (ember__handler_find(name) >= 0)
        return ember__fail(-EMBER_EEXIST, "handler '%s' is already registered", name);
    if (ember__nhandlers == EMBER_MAX_HANDLERS)
        return ember__fail(-EMBER_EINVAL, "handler '%s': all %d handler places are taken", name,
                           EMBER_MAX_HANDLERS);
    struct ember__handler h = { .fn = fn };
    memcpy(h.name, name, strlen(name) + 1);
    ember__handler_add(&h);
    return 0;
}

/* "noop": returns nothing. The floor of a call's cost. */
static int h_noop(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)a, (void)n, (void)o, (void)j;
    return 0;
}

/* "echo": returns its arguments. */
static int h_echo(const void *a, size_t n, ember_out *o, const ember_job *j)
{
    (void)j;
    return ember_out_write(o, a, n);
}

void ember__builtin_handlers(void)
{
    if (ember__nhandlers) return;
    memcpy(ember__handlers[0].name, "noop", 5);
    ember__handlers[0].fn = h_noop;
    memcpy(ember__handlers[1].name, "echo", 5);
    ember__handlers[1].fn = h_echo;
    memcpy(ember__handlers[EMBER__FN_HANDLER].name, "ember.fn", 9);
    ember__handlers[EMBER__FN_HANDLER].fn = ember__fn_handler;
    ember__nhandlers = 3;
}
