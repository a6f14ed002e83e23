/* ember-demo - start a pool, make 100,000 calls to the built-in "echo"
 * handler from this process, and print what it measured.
 * Usage: ember-demo [calls] [runners] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "ember/pool.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long calls = argc > 1 ? atol(argv[1]) : 100000;
    unsigned runners = argc > 2 ? (unsigned)atoi(argv[2]) : 1;
    if (calls <= 0 || runners == 0) {
        fprintf(stderr, "usage: ember-demo [calls>0] [runners>0]\n");
        return 2;
    }
    struct ember_pool_config cfg;
    ember_pool_config_init(&cfg);
    char name[40];
    snprintf(name, sizeof name, "demo-%d", (int)getpid());
    cfg.name = name;
    cfg.min = cfg.max = runners;
    ember_pool *pool;
    int rc = ember_pool_start(&cfg, &pool);
    if (rc) {
        fprintf(stderr, "ember-demo: pool start: %s (%s)\n", ember_strerror(rc), ember_last_error());
        return 1;
    }
    ember_pool_wait_ready(pool, runners, 5000000000ll);
    ember_client *c;
    if ((rc = ember_attach(name, &c)) != 0) {
        fprintf(stderr, "ember-demo: attach: %s (%s)\n", ember_strerror(rc), ember_last_error());
        return 1;
    }
    int h = ember_handler(c, "echo");
    uint64_t *lat = malloc((size_t)calls * sizeof *lat);
    if (!lat) return 1;
    long ok = 0, bad = 0;
    uint64_t t0 = now_ns();
    for (long i = 0; i < calls; i++) {
        ember_result r;
        uint64_t a = now_ns();
        rc = ember_call(c, h, &i, sizeof i, &r, EMBER_TIMEOUT_DEFAULT);
        lat[i] = now_ns() - a;
        if (rc == 0 && r.len == sizeof i && memcmp(r.data, &i, sizeof i) == 0) ok++;
        else bad++;
        ember_result_release(c, &r);
    }
    uint64_t el = now_ns() - t0;
    qsort(lat, (size_t)calls, sizeof *lat, cmp_u64);
    printf("pool %s: %u runner(s), supervisor back-end %s\n", name, runners, ember_pool_backend(pool));
    printf("%ld calls to \"echo\": %ld correct, %ld failed, %.3f s, %.0f calls/s\n", calls, ok, bad,
           el / 1e9, calls / (el / 1e9));
    printf("round trip: p50 %.2f us, p99 %.2f us, max %.2f us\n", lat[calls / 2] / 1e3,
           lat[calls * 99 / 100] / 1e3, lat[calls - 1] / 1e3);
    ember_detach(c);
    ember_pool_stop(pool, 2000000000ll);
    free(lat);
    return bad ? 1 : 0;
}
