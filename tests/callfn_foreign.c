/* A program of another image: it attaches to the pool named in argv[1] and
 * asks it to run one of its own functions. Exits 0 when the pool refused with
 * EMBER_EIMAGE, 1 otherwise. */
#include <stdio.h>
#include <unistd.h>
#include "ember/pool.h"

static int foreign_fn(const void *ctx, size_t len, ember_out *out, const ember_job *job)
{
    (void)ctx, (void)len, (void)job;
    static const char msg[] = "ran";
    return ember_out_write(out, msg, sizeof msg);
}

int main(int argc, char **argv)
{
    ember_client *c;
    if (argc != 2 || ember_attach(argv[1], &c)) return 2;
    ember_result r;
    int rc = ember_call_fn(c, foreign_fn, "x", 1, &r, 5000000000ll);
    if (rc != -EMBER_EIMAGE) fprintf(stderr, "call_fn: %s\n", ember_errname(rc));
    ember_result_release(c, &r);
    ember_detach(c);
    return rc == -EMBER_EIMAGE ? 0 : 1;
}
