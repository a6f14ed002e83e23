/* Description: the placement plan and choice on synthetic hwloc topologies:
 * 1, 2 and 4 NUMA nodes with equal and unequal core counts; runners per node
 * in proportion to cores for any max; core placement (one core each, capped
 * at the cores) and none (one node, no binding); the nodes restriction and
 * its errors; growth goes to the node with the demand, within its quota. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "lib/testing.h"
#include "lib/placement.h"

/* A synthetic topology, optionally restricted to the PUs in KEEP. */
static hwloc_topology_t synth(const char *desc, const char *keep)
{
    hwloc_topology_t t;
    assert_int_equal(hwloc_topology_init(&t), 0);
    assert_int_equal(hwloc_topology_set_synthetic(t, desc), 0);
    assert_int_equal(hwloc_topology_load(t), 0);
    if (keep) {
        hwloc_bitmap_t set = hwloc_bitmap_alloc();
        assert_true(hwloc_bitmap_list_sscanf(set, keep) == 0);
        assert_int_equal(hwloc_topology_restrict(t, set, 0), 0);
        hwloc_bitmap_free(set);
    }
    return t;
}

static struct ember__placement plan(hwloc_topology_t t, int mode, const char *nodes)
{
    struct ember__placement p;
    char err[160];
    int rc = ember__placement_plan(t, mode, nodes, &p, err, sizeof err);
    if (rc) fail_msg("plan: %s", err);
    return p;
}

static void assert_cpus(hwloc_const_bitmap_t set, const char *want)
{
    char got[128];
    hwloc_bitmap_list_snprintf(got, sizeof got, set);
    assert_string_equal(got, want);
}

static void quotas_are(const struct ember__placement *p, unsigned max, const unsigned *want)
{
    unsigned q[EMBER__MAX_NODES];
    ember__placement_quotas(p, max, q);
    for (unsigned i = 0; i < p->nnodes; i++)
        if (q[i] != want[i]) fail_msg("max %u: node %u gets %u, not %u", max, i, q[i], want[i]);
}

static void one_node(void **st)
{
    (void)st;
    hwloc_topology_t t = synth("node:1 core:4 pu:2", NULL);
    struct ember__placement p = plan(t, EMBER_PLACEMENT_NUMA, NULL);
    assert_int_equal(p.nnodes, 1);
    assert_int_equal(p.node[0].os_index, 0);
    assert_int_equal(p.node[0].cores, 4);
    assert_cpus(p.node[0].cpuset, "0-7");
    assert_cpus(p.node[0].nodeset, "0");
    assert_false(p.bind); /* synthetic: not this machine */
    quotas_are(&p, 6, (unsigned[]){ 6 });
    ember__placement_free(&p);
    hwloc_topology_destroy(t);
}

static void two_equal_nodes(void **st)
{
    (void)st;
    hwloc_topology_t t = synth("node:2 core:4 pu:1", NULL);
    struct ember__placement p = plan(t, EMBER_PLACEMENT_NUMA, NULL);
    assert_int_equal(p.nnodes, 2);
    assert_cpus(p.node[0].cpuset, "0-3");
    assert_cpus(p.node[1].cpuset, "4-7");
    assert_cpus(p.node[1].nodeset, "1");
    quotas_are(&p, 1, (unsigned[]){ 1, 0 });
    quotas_are(&p, 2, (unsigned[]){ 1, 1 });
    quotas_are(&p, 3, (unsigned[]){ 2, 1 });
    quotas_are(&p, 8, (unsigned[]){ 4, 4 });
    quotas_are(&p, 16, (unsigned[]){ 8, 8 }); /* numa placement may exceed the cores */
    ember__placement_free(&p);
    hwloc_topology_destroy(t);
}

static void two_unequal_nodes(void **st)
{
    (void)st;
    /* node 0 keeps 6 cores, node 1 keeps 2 */
    hwloc_topology_t t = synth("node:2 core:6 pu:1", "0-5,6-7");
    struct ember__placement p = plan(t, EMBER_PLACEMENT_NUMA, NULL);
    assert_int_equal(p.nnodes, 2);
    assert_int_equal(p.node[0].cores, 6);
    assert_int_equal(p.node[1].cores, 2);
    quotas_are(&p, 4, (unsigned[]){ 3, 1 });
    quotas_are(&p, 8, (unsigned[]){ 6, 2 });
    quotas_are(&p, 2, (unsigned[]){ 2, 0 }); /* 1.5 / 0.5: equal remainders, the lower index */
    quotas_are(&p, 3, (unsigned[]){ 2, 1 }); /* 2.25 / 0.75 */
    ember__placement_free(&p);
    hwloc_topology_destroy(t);
}

static void four_nodes_and_restriction(void **st)
{
    (void)st;
    hwloc_topology_t t = synth("pack:2 node:2 core:3 pu:1", NULL);
    struct ember__placement p = plan(t, EMBER_PLACEMENT_NUMA, NULL);
    assert_int_equal(p.nnodes, 4);
    for (unsigned i = 0; i < 4; i++) assert_int_equal(p.node[i].os_index, (int)i);
    assert_cpus(p.node[2].cpuset, "6-8");
    quotas_are(&p, 4, (unsigned[]){ 1, 1, 1, 1 });
    quotas_are(&p, 6, (unsigned[]){ 2, 2, 1, 1 });
    quotas_are(&p, 12, (unsigned[]){ 3, 3, 3, 3 });
    ember__placement_free(&p);
    /* only nodes 1 and 3 */
    p = plan(t, EMBER_PLACEMENT_NUMA, "1,3");
    assert_int_equal(p.nnodes, 2);
    assert_int_equal(p.node[0].os_index, 1);
    assert_int_equal(p.node[1].os_index, 3);
    assert_cpus(p.node[1].cpuset, "9-11");
    quotas_are(&p, 5, (unsigned[]){ 3, 2 });
    ember__placement_free(&p);
    /* bad restrictions are refused with the option's name */
    char err[160];
    assert_int_equal(ember__placement_plan(t, EMBER_PLACEMENT_NUMA, "7", &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "option nodes"));
    assert_int_equal(ember__placement_plan(t, EMBER_PLACEMENT_NUMA, "x", &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "option nodes"));
    assert_int_equal(ember__placement_plan(t, 9, NULL, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "option placement"));
    hwloc_topology_destroy(t);
}

static void core_placement(void **st)
{
    (void)st;
    hwloc_topology_t t = synth("node:2 core:3 pu:2", NULL);
    struct ember__placement p = plan(t, EMBER_PLACEMENT_CORE, NULL);
    assert_int_equal(p.nplaces, 6);
    assert_cpus(p.places[0].cpuset, "0-1"); /* a core: its two hyperthreads */
    assert_cpus(p.places[4].cpuset, "8-9");
    assert_int_equal(p.places[4].node, 1);
    quotas_are(&p, 4, (unsigned[]){ 2, 2 });
    quotas_are(&p, 100, (unsigned[]){ 3, 3 }); /* capped at one runner per core */
    /* each runner gets a core of its own */
    bool used[6] = { false };
    unsigned live[2] = { 0, 0 }, demand[2] = { 0, 0 };
    for (int k = 0; k < 6; k++) {
        int place;
        int n = ember__placement_pick(&p, 6, live, demand, used, &place);
        assert_true(n >= 0 && place >= 0);
        assert_false(used[place]);
        assert_int_equal(p.places[place].node, (unsigned)n);
        used[place] = true;
        live[n]++;
    }
    int place;
    assert_int_equal(ember__placement_pick(&p, 6, live, demand, used, &place), -1);
    ember__placement_free(&p);
    hwloc_topology_destroy(t);
}

static void none_placement(void **st)
{
    (void)st;
    hwloc_topology_t t = synth("node:2 core:2 pu:1", NULL);
    struct ember__placement p = plan(t, EMBER_PLACEMENT_NONE, NULL);
    assert_int_equal(p.nnodes, 1);
    assert_int_equal(p.node[0].os_index, -1);
    assert_cpus(p.node[0].cpuset, "0-3");
    assert_false(p.bind);
    quotas_are(&p, 7, (unsigned[]){ 7 });
    ember__placement_free(&p);
    hwloc_topology_destroy(t);
}

static void growth_follows_demand(void **st)
{
    (void)st;
    hwloc_topology_t t = synth("node:2 core:2 pu:1", NULL);
    struct ember__placement p = plan(t, EMBER_PLACEMENT_NUMA, NULL);
    unsigned live[2] = { 0, 0 }, demand[2] = { 0, 5 };
    /* calls queue on node 1: it gets the runners its quota allows, then node 0 */
    assert_int_equal(ember__placement_pick(&p, 4, live, demand, NULL, NULL), 1);
    live[1] = 1;
    assert_int_equal(ember__placement_pick(&p, 4, live, demand, NULL, NULL), 1);
    live[1] = 2;
    assert_int_equal(ember__placement_pick(&p, 4, live, demand, NULL, NULL), 0);
    live[0] = 2;
    assert_int_equal(ember__placement_pick(&p, 4, live, demand, NULL, NULL), -1);
    /* no demand (min runners): the node with the most room, lower index first */
    live[0] = live[1] = 0;
    demand[1] = 0;
    assert_int_equal(ember__placement_pick(&p, 3, live, demand, NULL, NULL), 0);
    live[0] = 1;
    assert_int_equal(ember__placement_pick(&p, 3, live, demand, NULL, NULL), 0);
    live[0] = 2;
    assert_int_equal(ember__placement_pick(&p, 3, live, demand, NULL, NULL), 1);
    ember__placement_free(&p);
    hwloc_topology_destroy(t);
}

static void real_machine(void **st)
{
    (void)st;
    hwloc_topology_t t = ember__topology_load();
    assert_non_null(t);
    struct ember__placement p = plan(t, EMBER_PLACEMENT_NUMA, NULL);
    assert_true(p.nnodes >= 1);
    /* binding to the only node is skipped: it would change nothing */
    assert_true(p.bind == (p.nnodes > 1));
    ember__placement_free(&p);
    p = plan(t, EMBER_PLACEMENT_CORE, NULL);
    assert_true(p.bind);
    unsigned cores = 0;
    for (unsigned i = 0; i < p.nnodes; i++) cores += p.node[i].cores;
    assert_true(cores >= 1);
    ember__placement_free(&p);
    hwloc_topology_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_node),
        cmocka_unit_test(two_equal_nodes),
        cmocka_unit_test(two_unequal_nodes),
        cmocka_unit_test(four_nodes_and_restriction),
        cmocka_unit_test(core_placement),
        cmocka_unit_test(none_placement),
        cmocka_unit_test(growth_follows_demand),
        cmocka_unit_test(real_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
