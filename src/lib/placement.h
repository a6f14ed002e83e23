/* placement.h - where runners go: NUMA nodes, cores, CPU sets.
 *
 * A pure plan, computed once from the hwloc topology and the pool's
 * options when the pool starts, and a pure choice made for every runner the
 * supervisor boots (unit-tested on synthetic topologies, tests/test_placement.c):
 *
 *  - placement "numa" (default): the nodes used (all, or those named in
 *    `nodes`) each get runners in proportion to their cores; a runner binds
 *    its CPUs to its node's cpuset and its memory to the node.
 *  - placement "core": one runner per core, pinned to that core (max is
 *    capped at the number of cores of the nodes used); cores are shared out
 *    between nodes in the same proportion.
 *  - placement "none": no binding; one node, the whole machine.
 *
 * Quotas: for a pool of MAX runners, node i gets floor(MAX * cores_i / cores)
 * and the runners left go to the largest remainders (lower index first on a
 * tie), so any MAX is split as evenly as the cores are.
 * Choice: a runner boots on the node that has room under its quota and the
 * most queued calls; then the most room; then the lowest index. */
#ifndef EMBER_PLACEMENT_H
#define EMBER_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <hwloc.h>

#define EMBER__MAX_NODES 64

struct ember__pnode {
    int      os_index;          /* the NUMA node's P#; -1 with placement none */
    unsigned cores;
    hwloc_bitmap_t cpuset;      /* its PUs (the machine's with none) */
    hwloc_bitmap_t nodeset;     /* itself (empty with none) */
};

struct ember__place {           /* placement core: one core */
    unsigned node;              /* index in node[] */
    hwloc_bitmap_t cpuset;
};

struct ember__placement {
    int      mode;              /* EMBER_PLACEMENT_* */
    bool     bind;              /* bind for real: the topology is this machine's, and
                                   binding changes something (not one node with every CPU) */
    unsigned nnodes;            /* nodes used: one submission ring each */
    struct ember__pnode node[EMBER__MAX_NODES];
    unsigned nplaces;           /* placement core: the cores of the nodes used */
    struct ember__place *places;
};

/* Load the machine's topology (or the one HWLOC_SYNTHETIC / HWLOC_XMLFILE
 * name), keeping only what placement needs. NULL on failure. */
hwloc_topology_t ember__topology_load(void);

/* Plan for topology T, MODE and NODES (a list of NUMA node P#s such as
 * "0,2-3", or NULL for all). Returns 0, or -1 with the reason in ERR. */
int ember__placement_plan(hwloc_topology_t t, int mode, const char *nodes,
                          struct ember__placement *p, char *err, size_t errlen);
void ember__placement_free(struct ember__placement *p);

/* Runners per node for a pool of MAX (placement core: at most the cores). */
void ember__placement_quotas(const struct ember__placement *p, unsigned max, unsigned *quota);

/* Where the next runner goes, given the serving runners per node (LIVE) and
 * the calls queued per node (DEMAND): a node index, or -1 when every node
 * has its quota. With placement core, *PLACE is a core not in USED (else -1). */
int ember__placement_pick(const struct ember__placement *p, unsigned max, const unsigned *live,
                          const unsigned *demand, const bool *used, int *place);

#endif
