/* lib/client.c - libember's one compiled copy of the client (client.h),
 * and the test hooks of lib/testing.h that need the client's handle. */
#define EMBER_CLIENT_IMPLEMENTATION
#include "ember/client.h"
#include "lib/testing.h"

struct ember__view *ember__client_view(ember_client *c) { return c ? &c->v : NULL; }

uint32_t ember__client_hot(ember_client *c)
{
    for (uint32_t k = 0; k < EMBER_SUBMIT_COUNTERS; k++)
        if (atomic_load(&c->hot[k]) != EMBER_NONE) return atomic_load(&c->hot[k]);
    return EMBER_NONE;
}
