/* lib/exits.h - the exit statuses of a pool's own processes, one table.
 *
 * The supervisor and the runner end with one of these when ember itself
 * fails (never a user's code): the supervisor before it serves (then
 * ember_pool_start() reports the status and its meaning), the runner at any
 * time (its GROW_END or SHRINK event carries the status, and its entry's
 * message says the same as the table). The two ranges do not overlap, so a
 * status names its process and its cause. A runner's other non-zero
 * statuses are its runner_boot callback's or a plugin init's return
 * (1-255: the application's own numbering, which may reuse these; the
 * event's message tells them apart). */
#ifndef EMBER_LIB_EXITS_H
#define EMBER_LIB_EXITS_H

/* X(NAME, STATUS, MEANING) */
#define EMBER__EXITS(X)                                                                          \
    X(OK, 0, "ended normally (a stop, a drain, or a runner whose supervisor is gone)")           \
    X(SUP_NOMEM, 70, "supervisor: no memory or no signalfd for its own tables")                  \
    X(SUP_LOOP, 71, "supervisor: no event loop (neither io_uring nor ppoll could be set up)")    \
    X(SUP_SIGNALS, 72, "supervisor: its event loop refused the signalfd")                        \
    X(SUP_APP, 73, "supervisor: cannot watch the application (no pidfd, or the loop refused it)") \
    X(SUP_LOCK, 74, "supervisor: cannot take the segment's liveness lock (F_OFD_SETLK)")         \
    X(RUNNER_NOMEM, 76, "runner: no memory for its workers")                                      \
    X(RUNNER_THREAD, 77, "runner: cannot start a worker thread (pthread_create)")              \
    X(RUNNER_LIMITS, 78, "runner: cannot apply its limits (runner_rlimit_*, its memory cgroup)")

enum {
#define EMBER__EXIT_ENUM(name, status, meaning) EMBER__EXIT_##name = status,
    EMBER__EXITS(EMBER__EXIT_ENUM)
#undef EMBER__EXIT_ENUM
};

/* The meaning of exit STATUS of a pool process, or NULL for one that is
 * not in the table (a runner_boot callback's or a plugin init's). */
static inline const char *ember__exit_meaning(int status)
{
    switch (status) {
#define EMBER__EXIT_CASE(name, st, meaning) case st: return meaning;
        EMBER__EXITS(EMBER__EXIT_CASE)
#undef EMBER__EXIT_CASE
    default: return NULL;
    }
}

#endif
