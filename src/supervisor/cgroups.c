/* supervisor/cgroups.c - the runners' memory cgroups as the supervisor
 * keeps them (lib/cgroup.h has the layout): the pool's made at start, a
 * leaf made before each runner's fork and read and removed after its death,
 * what could not be removed tried again at the housekeeping tick, all of it
 * removed at the stop. One spare leaf is kept made ahead (at the start, and
 * at the tick after a boot took it): a boot renames it rather than wait for
 * a mkdir. Without a writable memory cgroup (or with the option
 * runner_cgroup off) there are none, and the log says so once. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "supervisor/sup.h"

/* A spare leaf for the next boot, if there is none (lib/cgroup.h); one that
 * cannot be made is no error: the boot makes its leaf then. */
static void spare_make(struct sup *s)
{
    if (s->cg.version && s->cg_spare < 0) s->cg_spare = ember__cgroup_spare_make(&s->cg, s->cfg->runner_memory_max);
}

void sup_cgroup_open(struct sup *s)
{
    s->cg_spare = -1;
    if (!s->cfg->runner_cgroup && !s->cfg->runner_memory_max) return;
    char why[sizeof s->cg_why];
    if (ember__cgroup_pool_open(&s->cg, s->v->hdr->name, s->self, why, sizeof why) < 0) {
        snprintf(s->cg_why, sizeof s->cg_why, "%s", why);
        sup_log(1, "runners get no memory cgroup (%s): a runner the OOM killer kills is reported "
                "as a crash by SIGKILL", why);
        return;
    }
    sup_log(2, "runners' memory cgroups under %s (cgroup v%d)", s->cg.dir, s->cg.version);
    spare_make(s);
}

int sup_cgroup_leaf(struct sup *s, uint32_t r, uint32_t gen, int *fd, char *msg, size_t len)
{
    size_t max = s->cfg->runner_memory_max;
    *fd = -1;
    s->runners[r].in_cg = false;
    if (!s->cg.version) {
        if (!max) return 0;
        snprintf(msg, len, "runner_memory_max: %s", s->cg_why[0] ? s->cg_why : "no memory cgroup");
        return -1;
    }
    if (s->cg_spare >= 0) { /* the spare, renamed: no mkdir on the boot's path */
        int spare = s->cg_spare;
        s->cg_spare = -1;
        if (ember__cgroup_spare_take(&s->cg, r, gen) == 0) {
            *fd = spare;
            s->runners[r].in_cg = true;
            return 0;
        }
        close(spare);
    }
    char why[160];
    int rc = ember__cgroup_leaf_make(&s->cg, r, gen, max, why, sizeof why);
    if (rc >= 0) {
        *fd = rc;
        s->runners[r].in_cg = true;
        return 0;
    }
    if (max) {
        sup_warn("runner %u: runner_memory_max: %s", r, why);
        snprintf(msg, len, "runner_memory_max: %s", why);
        return -1;
    }
    if (!s->cg_said) sup_log(1, "runner %u gets no memory cgroup: %s", r, why);
    s->cg_said = true;
    return 0;
}

bool sup_cgroup_end(struct sup *s, uint32_t r, uint32_t gen)
{
    struct sup_runner *sr = &s->runners[r];
    if (!sr->in_cg) return false;
    sr->in_cg = false;
    bool left, oom = ember__cgroup_leaf_end(&s->cg, r, gen, &left);
    s->cg_left |= left;
    return oom;
}

static bool leaf_live(uint32_t r, uint32_t gen, void *arg)
{
    struct sup *s = arg;
    return r < s->v->nrunners && s->runners[r].in_cg && s->runners[r].gen == gen;
}

void sup_cgroup_tick(struct sup *s)
{
    if (s->cg_left) s->cg_left = ember__cgroup_sweep(&s->cg, leaf_live, s) != 0;
    spare_make(s);
}

void sup_cgroup_close(struct sup *s)
{
    char dir[sizeof s->cg.dir];
    memcpy(dir, s->cg.dir, sizeof dir);
    if (s->cg_spare >= 0) close(s->cg_spare);
    s->cg_spare = -1;
    unsigned left = ember__cgroup_pool_close(&s->cg);
    if (left)
        sup_warn("%u cgroups of %s still hold processes the runners' handlers left: not removed",
                 left, dir);
}
