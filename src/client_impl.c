/* client_impl.c - the one compiled copy of client.h's public functions
 * inside libember; its other files use the same helpers (internal.h). */
#define EMBER_CLIENT_IMPLEMENTATION
#include "internal.h"
