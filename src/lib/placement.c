/* placement.c - the placement plan and choice (see placement.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/internal.h"
#include "lib/placement.h"

hwloc_topology_t ember__topology_load(void)
{
    hwloc_topology_t t;
    if (hwloc_topology_init(&t) < 0) return NULL;
    /* caches and I/O cost most of the load and say nothing about placement;
     * groups keep the structure that ties NUMA nodes to their cores */
    hwloc_topology_set_all_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
    hwloc_topology_set_type_filter(t, HWLOC_OBJ_PACKAGE, HWLOC_TYPE_FILTER_KEEP_ALL);
    hwloc_topology_set_type_filter(t, HWLOC_OBJ_CORE, HWLOC_TYPE_FILTER_KEEP_ALL);
    hwloc_topology_set_type_filter(t, HWLOC_OBJ_GROUP, HWLOC_TYPE_FILTER_KEEP_STRUCTURE);
    if (hwloc_topology_load(t) < 0) {
        hwloc_topology_destroy(t);
        return NULL;
    }
    return t;
}

static unsigned cores_in(hwloc_topology_t t, hwloc_const_cpuset_t set)
{
    int n = hwloc_get_nbobjs_inside_cpuset_by_type(t, set, HWLOC_OBJ_CORE);
    if (n <= 0) n = hwloc_get_nbobjs_inside_cpuset_by_type(t, set, HWLOC_OBJ_PU);
    return n > 0 ? (unsigned)n : 0;
}

void ember__placement_free(struct ember__placement *p)
{
    for (unsigned i = 0; i < p->nnodes; i++) {
        hwloc_bitmap_free(p->node[i].cpuset);
        hwloc_bitmap_free(p->node[i].nodeset);
    }
    for (unsigned i = 0; i < p->nplaces; i++) hwloc_bitmap_free(p->places[i].cpuset);
    free(p->places);
    memset(p, 0, sizeof *p);
}

int ember__placement_plan(hwloc_topology_t t, int mode, const char *nodes,
                          struct ember__placement *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->bind = hwloc_topology_is_thissystem(t) && mode != EMBER_PLACEMENT_NONE;
    if (mode != EMBER_PLACEMENT_NUMA && mode != EMBER_PLACEMENT_CORE && mode != EMBER_PLACEMENT_NONE) {
        snprintf(err, errlen, "option placement: %d is not numa, core or none", mode);
        return -1;
    }
    hwloc_bitmap_t want = NULL;
    if (nodes) {
        want = hwloc_bitmap_alloc();
        if (!*nodes || hwloc_bitmap_list_sscanf(want, nodes) < 0 || hwloc_bitmap_iszero(want) ||
            hwloc_bitmap_weight(want) < 0) {
            snprintf(err, errlen, "option nodes: '%s' is not a list of NUMA nodes such as 0,2-3", nodes);
            hwloc_bitmap_free(want);
            return -1;
        }
    }
    int nn = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    if (mode == EMBER_PLACEMENT_NONE || nn <= 0) {
        /* one node: the whole machine (a machine hwloc reports no node for) */
        struct ember__pnode *n = &p->node[0];
        n->os_index = mode == EMBER_PLACEMENT_NONE ? -1 : 0;
        n->cpuset = hwloc_bitmap_dup(hwloc_topology_get_topology_cpuset(t));
        n->nodeset = hwloc_bitmap_alloc();
        if (mode != EMBER_PLACEMENT_NONE) hwloc_bitmap_set(n->nodeset, 0);
        n->cores = cores_in(t, n->cpuset);
        p->nnodes = 1;
        if (want && mode != EMBER_PLACEMENT_NONE && !hwloc_bitmap_isset(want, 0)) {
            snprintf(err, errlen, "option nodes: '%s' names no NUMA node of this machine (0)", nodes);
            hwloc_bitmap_free(want);
            ember__placement_free(p);
            return -1;
        }
    } else {
        for (int i = 0; i < nn; i++) {
            hwloc_obj_t o = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)i);
            if (want && !hwloc_bitmap_isset(want, o->os_index)) continue;
            if (!o->cpuset || hwloc_bitmap_iszero(o->cpuset)) continue; /* memory only */
            if (p->nnodes == EMBER__MAX_NODES) break;
            struct ember__pnode *n = &p->node[p->nnodes++];
            n->os_index = (int)o->os_index;
            n->cpuset = hwloc_bitmap_dup(o->cpuset);
            n->nodeset = hwloc_bitmap_alloc();
            hwloc_bitmap_only(n->nodeset, o->os_index);
            n->cores = cores_in(t, n->cpuset);
        }
        if (p->nnodes == 0) {
            snprintf(err, errlen, "option nodes: '%s' names no NUMA node with CPUs on this machine",
                     nodes ? nodes : "");
            hwloc_bitmap_free(want);
            ember__placement_free(p);
            return -1;
        }
    }
    hwloc_bitmap_free(want);
    /* one node with every CPU: binding to it changes nothing, skip the cost */
    if (mode == EMBER_PLACEMENT_NUMA && p->nnodes == 1 && nn <= 1 &&
        hwloc_bitmap_isequal(p->node[0].cpuset, hwloc_topology_get_topology_cpuset(t)))
        p->bind = false;
    if (mode == EMBER_PLACEMENT_CORE) {
        unsigned total = 0;
        for (unsigned i = 0; i < p->nnodes; i++) total += p->node[i].cores;
        p->places = calloc(total ? total : 1, sizeof *p->places);
        for (unsigned i = 0; p->places && i < p->nnodes; i++) {
            hwloc_obj_type_t ty = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE
                                                                                  : HWLOC_OBJ_PU;
            hwloc_obj_t c = NULL;
            while ((c = hwloc_get_next_obj_inside_cpuset_by_type(t, p->node[i].cpuset, ty, c)) &&
                   p->nplaces < total) {
                p->places[p->nplaces].node = i;
                p->places[p->nplaces].cpuset = hwloc_bitmap_dup(c->cpuset);
                p->nplaces++;
            }
        }
    }
    return 0;
}

void ember__placement_quotas(const struct ember__placement *p, unsigned max, unsigned *quota)
{
    unsigned total = 0;
    for (unsigned i = 0; i < p->nnodes; i++) total += p->node[i].cores;
    if (p->mode == EMBER_PLACEMENT_CORE && max > p->nplaces) max = p->nplaces;
    if (total == 0 || p->nnodes == 1) {
        for (unsigned i = 0; i < p->nnodes; i++) quota[i] = i == 0 ? max : 0;
        return;
    }
    unsigned given = 0;
    uint64_t rem[EMBER__MAX_NODES];
    for (unsigned i = 0; i < p->nnodes; i++) {
        uint64_t share = (uint64_t)max * p->node[i].cores;
        quota[i] = (unsigned)(share / total);
        rem[i] = share % total;
        given += quota[i];
    }
    /* the remainders sum to total x (max - given): at least that many are
     * non-zero, so each runner left finds one */
    while (given < max) { /* largest remainder first, lower index on a tie */
        unsigned best = 0;
        for (unsigned i = 1; i < p->nnodes; i++)
            if (rem[i] > rem[best]) best = i;
        quota[best]++;
        rem[best] = 0;
        given++;
    }
}

int ember__placement_pick(const struct ember__placement *p, unsigned max, const unsigned *live,
                          const unsigned *demand, const bool *used, int *place)
{
    unsigned quota[EMBER__MAX_NODES];
    ember__placement_quotas(p, max, quota);
    int best = -1;
    for (unsigned i = 0; i < p->nnodes; i++) {
        if (live[i] >= quota[i]) continue;
        if (best < 0) { best = (int)i; continue; }
        unsigned b = (unsigned)best;
        if (demand[i] != demand[b]) {
            if (demand[i] > demand[b]) best = (int)i;
        } else if (quota[i] - live[i] > quota[b] - live[b]) {
            best = (int)i;
        }
    }
    if (place) *place = -1;
    if (best >= 0 && p->mode == EMBER_PLACEMENT_CORE) {
        for (unsigned k = 0; k < p->nplaces; k++)
            if (p->places[k].node == (unsigned)best && !(used && used[k])) {
                if (place) *place = (int)k;
                return best;
            }
        return -1; /* its cores are all taken (runners still draining) */
    }
    return best;
}
