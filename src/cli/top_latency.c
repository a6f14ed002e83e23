/* cli/top_latency.c - the latency line of `ember top`: percentiles of the
 * calls that ended in the last interval.
 *
 * The pool keeps no latency figures yet (no histograms in its shared
 * memory), so the line says "no data". This file is the one place to
 * change when it does: top_sample() calls top_latency() once per refresh
 * with the client it reads (a new client after top reattaches to a pool
 * restarted under the same name), and the frame prints LINE as it is. */
#include <stdio.h>
#include "top.h"

void top_latency(ember_client *c, char *line, size_t len)
{
    (void)c;
    snprintf(line, len, "no data");
}
