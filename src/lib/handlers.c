/* handlers.c - the handler registry and the built-in handlers.
 *
 * Handlers are registered in the application before its pool starts; the
 * table is copied into the segment (names) and inherited by runners through
 * fork (function pointers), so an id means the same function everywhere. */
#include <string.h>
#include "lib/internal.h"

struct ember__handler ember__handlers[EMBER_MAX_HANDLERS];
unsigned ember__nhandlers;

int ember_handler_register(const char *name, ember_handler_fn fn)
{
    size_t n = name ? strlen(name) : 0;
    if (!fn) return ember__fail(-EMBER_EINVAL, "ember_handler_register: fn is NULL");
    if (n == 0 || n >= EMBER_NAME_MAX)
        return ember__fail(-EMBER_EINVAL, "handler name '%s': 1-39 of [A-Za-z0-9_.-]",
                           name ? name : "(null)");
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return ember__fail(-EMBER_EINVAL, "handler name '%s': 1-39 of [A-Za-z0-9_.-]", name);
    }
    ember__builtin_handlers();
    for (unsigned i = 0; i < ember__nhandlers; i++)
        if (strcmp(ember__handlers[i].name, name) == 0)
            return ember__fail(-EMBER_EEXIST, "handler '%s' is already registered", name);
    if (ember__nhandlers == EMBER_MAX_HANDLERS)
        return ember__fail(-EMBER_EINVAL, "handler '%s': all %d handler places are taken", name,
                           EMBER_MAX_HANDLERS);
    memcpy(ember__handlers[ember__nhandlers].name, name, n + 1);
    ember__handlers[ember__nhandlers].fn = fn;
    ember__nhandlers++;
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
