/* lib/cgroup.h - the runners' memory cgroups: where a pool can make them,
 * one per pool with a leaf per runner, and what a leaf says after its
 * runner died.
 *
 * Layout: BASE/ember.UID.POOL.PID (PID: the supervisor's) holds one leaf
 * per runner life, R.GEN, made before the runner's fork and removed after
 * its death. BASE is, with cgroup v2's memory controller, the supervisor's
 * own cgroup when children can have the controller there (the root, or a
 * cgroup that already gives it to its children), else its parent when that
 * one gives it (the "no internal processes" rule keeps a cgroup with
 * processes from giving it itself); with the memory controller on a cgroup
 * v1 hierarchy instead (hybrid hosts), the supervisor's memory cgroup.
 * Nothing else: no cgroup is made elsewhere, and none where these are not
 * writable. */
#ifndef EMBER_LIB_CGROUP_H
#define EMBER_LIB_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ember__cgroup {
    int version;            /* 2, 1 (v1's memory controller), 0: none */
    char dir[PATH_MAX];     /* the pool's cgroup */
};

/* Make the pool's cgroup for pool NAME of supervisor PID into *CG (and
 * remove what killed supervisors left: of this pool, and of any pool of this
 * user whose supervisor's pid is gone). Returns 0,
 * or a negative errno with WHY saying what is missing or refused (then
 * CG->version is 0). */
int ember__cgroup_pool_open(struct ember__cgroup *cg, const char *name, pid_t pid, char *why,
                            size_t wlen);
/* Remove the pool's cgroup and its leaves; the leaves that still hold
 * processes (a handler's daemon) stay, and so does the pool's. Returns how
 * many stayed. */
unsigned ember__cgroup_pool_close(struct ember__cgroup *cg);
/* Make runner R's leaf for its life GEN, with MEMORY_MAX bytes (0: no
 * limit; swap none beyond it); returns an fd of its cgroup.procs for the
 * runner to join with (ember__cgroup_join), or a negative errno with WHY. */
int ember__cgroup_leaf_make(const struct ember__cgroup *cg, uint32_t r, uint32_t gen,
                            size_t memory_max, char *why, size_t wlen);
/* The spare leaf: made ahead of need, while the supervisor has nothing
 * else to do, so that a runner's boot does not wait for a mkdir (0.1-0.3 ms
 * on cgroup v1). ember__cgroup_spare_make makes it (empty, MEMORY_MAX as a
 * leaf's) and returns the fd of its cgroup.procs, or a negative errno;
 * ember__cgroup_spare_take renames it to runner R's leaf for life GEN
 * (0, or a negative errno, and then the spare is removed: make the leaf
 * with ember__cgroup_leaf_make instead). The spare is no runner's leaf to
 * the sweeps, and the pool's close removes it. */
int ember__cgroup_spare_make(const struct ember__cgroup *cg, size_t memory_max);
int ember__cgroup_spare_take(const struct ember__cgroup *cg, uint32_t r, uint32_t gen);
/* In the runner, right after its fork: move this process into the leaf
 * whose cgroup.procs FD is. 0 or a negative errno. */
int ember__cgroup_join(int fd);
/* After runner R of life GEN died: did the kernel's OOM killer kill a
 * process of its leaf? Then removes the leaf; false when it cannot tell.
 * *LEFT is set when the leaf could not be removed (processes remain). */
bool ember__cgroup_leaf_end(const struct ember__cgroup *cg, uint32_t r, uint32_t gen, bool *left);
/* Remove the leaves of CG whose runner is gone (LIVE(r, gen, arg) false);
 * returns how many are left. */
unsigned ember__cgroup_sweep(const struct ember__cgroup *cg,
                             bool (*live)(uint32_t r, uint32_t gen, void *arg), void *arg);

#endif
