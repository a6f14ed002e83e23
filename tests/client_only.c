/* Description: a program that uses only the header-only client (no
 * libember), built as strict C11 without _GNU_SOURCE and as C++17/20
 * (client_only.cpp): it attaches to the pool named on its command line,
 * makes calls, reads the snapshot and the error table, and exits 0 only if
 * everything answered as documented. */
#define EMBER_CLIENT_IMPLEMENTATION
#include <ember/client.h>
#include <ember/pool.h> /* declarations only: they compile in every dialect too */

#include <stdio.h>
#include <string.h>

static int failures;
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__,    \
                    #cond, ember_last_error());                                      \
            failures++;                                                              \
        }                                                                            \
    } while (0)

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s POOL\n", argv[0]);
        return 2;
    }
    ember_client *c = NULL;
    CHECK(ember_attach("no-such-pool-here", &c) == -EMBER_ENOPOOL);
    CHECK(strstr(ember_last_error(), "no-such-pool-here") != NULL);
    int rc = ember_attach(argv[1], &c);
    CHECK(rc == 0);
    if (rc) return 1;
    int h = ember_handler(c, "echo");
    CHECK(h >= 0);
    CHECK(ember_handler(c, "nope") == -EMBER_ENOHANDLER);
    CHECK(strstr(ember_last_error(), "nope") != NULL);

    ember_result r;
    const char msg[] = "from a header-only client";
    rc = ember_call(c, h, msg, sizeof msg, &r, EMBER_TIMEOUT_DEFAULT);
    CHECK(rc == 0 && r.len == sizeof msg && memcmp(r.data, msg, sizeof msg) == 0);
    ember_result_release(c, &r);

    /* a payload above max_payload is refused and loses nothing */
    rc = ember_call(c, h, msg, ember_max_payload(c) + 1, &r, EMBER_TIMEOUT_DEFAULT);
    CHECK(rc == -EMBER_ETOOBIG && r.status == rc);
    ember_result_release(c, &r);

    /* errno-valued codes keep errno's value; every code has a name and text */
    CHECK(EMBER_ETIMEDOUT == ETIMEDOUT && EMBER_EINVAL == EINVAL);
    CHECK(strcmp(ember_errname(-EMBER_ECRASHED), "EMBER_ECRASHED") == 0);
    CHECK(strcmp(ember_errname(-EMBER_ECANCELLED), "EMBER_ECANCELLED") == 0);
    CHECK(ember_strerror(-EMBER_EPOOLDOWN)[0] != 0);

    ember_stats st;
    ember_runner_stats rs[8];
    int n = ember_stats_read(c, &st, rs, 8);
    CHECK(n >= 1 && strcmp(st.pool, argv[1]) == 0 && st.state == EMBER_POOL_RUNNING);
    CHECK(n < 1 || (rs[0].pid > 0 && rs[0].calls >= 1) || (n > 1 && rs[1].calls >= 1));
    CHECK(strcmp(ember_pool_state_name(st.state), "running") == 0);
    CHECK(strcmp(ember_why_name(EMBER_WHY_DEMAND), "demand") == 0);
    CHECK(strcmp(ember_event_name(EMBER_EV_SHRINK), "shrink") == 0);
    ember_detach(c);
    if (failures) fprintf(stderr, "%d checks failed\n", failures);
    return failures ? 1 : 0;
}
