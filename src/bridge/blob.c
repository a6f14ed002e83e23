/* bridge/blob.c - what the bridge puts into a result it posts to
 * KEY:results: the call's receipt, with the keys of `ember call --receipt`
 * (report.c), and a crash's cause in words. The blob itself, its JSON line
 * and its output bytes, is written by libember-redis beside its reader
 * (src/redis/blob.c; docs/ARCHITECTURE.md, "Across hosts: Redis Streams"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bridge.h"
#include "../redis/internal.h"
#include "../cli/cli.h"
#include "../cli/exec.h"

void bridge_cause(int status, int detail, char *buf, size_t len)
{
    const char *what = status == -EMBER_EPOISON ? "poison" : status == -EMBER_EOOM ? "oom" :
                       status == -EMBER_ECRASHED ? "crashed" : NULL;
    if (!what) {
        snprintf(buf, len, "%s", ember_errname(status));
    } else if (status == -EMBER_EOOM) {
        snprintf(buf, len, "oom");
    } else if (detail >= EMBER_CRASH_EXIT) {
        snprintf(buf, len, "%s: exit %d", what, detail - EMBER_CRASH_EXIT);
    } else if (detail > 0) {
        snprintf(buf, len, "%s: signal %d", what, detail);
    } else {
        snprintf(buf, len, "%s", what);
    }
}

/* The receipt's fields, as `ember call --receipt` gives them (report.c). */
static void receipt(FILE *f, const struct bridge_outcome *o)
{
    static const ember_result never = { .runner = EMBER_NONE, .node = -1 };
    struct cli_receipt rc = { .end = "exit", .start_wall = o->start_wall, .submit_ns = o->submit_ns,
                              .done_ns = o->done_ns, .call = o->call ? o->call : &never,
                              .runner_pid = o->runner_pid };
    struct exec_res x;
    int st = o->status;
    if (st == 0 && strcmp(o->handler, "exec") == 0 && exec_res_decode(o->out, o->out_len, &x) == 0) {
        rc.end = cli_exec_end_name(&x);
        rc.exec = &x;
        rc.exit = x.end == EXEC_SIGNALED ? 0 : exec_res_status(&x);
        rc.sig = x.end == EXEC_SIGNALED ? x.code : 0;
    } else if (st == -EMBER_EHANDLER) {
        rc.exit = o->detail & 0xff ? o->detail & 0xff : 1;
    } else if (st == -EMBER_ETIMEDOUT || st == -EMBER_ECANCELLED) {
        rc.end = st == -EMBER_ETIMEDOUT ? "timeout" : "cancelled", rc.exit = -1;
    } else if (st) {
        rc.end = st == -EMBER_ECRASHED || st == -EMBER_EPOISON ? "crashed" : st == -EMBER_EOOM ? "oom" : "error";
        rc.exit = 255;
        if ((st == -EMBER_ECRASHED || st == -EMBER_EOOM || st == -EMBER_EPOISON) && o->detail > 0 &&
            o->detail < EMBER_CRASH_EXIT)
            rc.sig = o->detail;
    }
    fputs("{\"handler\":", f);
    cli_json_str(f, o->handler);
    fputc(',', f);
    cli_receipt_fields(f, &rc);
    fputc('}', f);
}

char *bridge_blob(const struct bridge_outcome *o, const char *host, const char *consumer,
                  unsigned deliveries, size_t *len)
{
    char *rec = NULL;
    size_t rec_len = 0;
    FILE *f = open_memstream(&rec, &rec_len);
    if (!f) return NULL;
    receipt(f, o);
    if (fclose(f) != 0) {
        free(rec);
        return NULL;
    }
    struct ember_redis__post p = { .status = o->status, .detail = o->detail, .host = host,
                                   .consumer = consumer, .deliveries = deliveries, .cause = o->cause,
                                   .receipt = rec, .receipt_len = rec_len, .out = o->out,
                                   .out_len = o->out_len };
    char *blob = ember_redis__blob_write(&p, len);
    free(rec);
    return blob;
}
