/* lib/testing.h - libember's internals as its own tests see them.
 *
 * For tests and benchmarks only, never for programs: everything here may
 * change with any release. A test that needs to look inside a pool (its
 * runners' entries, slot states, counters not in ember_stats) gets the
 * process-local view of the pool's segment from these, never by casting a
 * handle. The helpers of the runtime (ember__now_ns, ember__futex_wait...)
 * and libember's internal entry points (lib/internal.h: the segment's
 * creation, the handler table) come with it. */
#ifndef EMBER_LIB_TESTING_H
#define EMBER_LIB_TESTING_H

#include "lib/internal.h"

/* The view of POOL's (or client C's) segment; NULL for NULL. */
struct ember__view *ember__pool_view(ember_pool *pool);
struct ember__view *ember__client_view(ember_client *c);
/* Fault injection: ember__test_fail_watch (lib/internal.h), set before
 * ember_pool_start(), makes the supervisor's watches of chosen pids fail
 * as the kernel fails them. */

/* The entry of a slot client C's threads keep at hand (EMBER_NONE: none). */
uint32_t ember__client_hot(ember_client *c);

#endif
