/* segment.c - creating a pool's shared segment and laying it out.
 *
 * Only the process that starts a pool runs this. The layout is the one
 * described in ember/abi.h; everything is zero (tmpfs) except what is set
 * here. Attaching processes validate the result in ember__view_init(). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include "lib/internal.h"
#include "lib/placement.h"

_Static_assert(sizeof(pthread_mutex_t) <= 64, "page lock room");

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

void ember__shm_unlink(const char *name)
{
    char shm[96];
    ember__shm_name(shm, sizeof shm, name);
    shm_unlink(shm);
}

/* Is the segment SHM left by a supervisor that is gone? */
static bool stale_segment(const char *shm)
{
    int fd = shm_open(shm, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return errno == ENOENT;
    struct ember_shm_header h;
    ssize_t n = pread(fd, &h, sizeof h, 0);
    close(fd);
    if (n != (ssize_t)sizeof h || h.magic != EMBER_MAGIC) return true;
    uint32_t pid = atomic_load(&h.sup_pid);
    return pid == 0 || ember__proc_start_ticks((pid_t)pid) != h.sup_start_ticks;
}

void ember__unlink_if_stale(const char *name)
{
    char shm[96];
    ember__shm_name(shm, sizeof shm, name);
    if (stale_segment(shm)) shm_unlink(shm);
}

int ember__segment_create(const struct ember_pool_config *cfg, struct ember__view *v)
{
    char shm[96];
    ember__shm_name(shm, sizeof shm, cfg->name);
    uint32_t nslots = cfg->queue_capacity, ring_cap = 2 * cfg->queue_capacity; /* normalized */
    uint32_t page_size = 65536;
    uint64_t space = cfg->payload_space ? cfg->payload_space : 4 * (uint64_t)cfg->max_payload;
    if (space < cfg->max_payload) space = cfg->max_payload;
    uint32_t npages = (uint32_t)((space + page_size - 1) / page_size);
    uint32_t nrunners = cfg->max_limit;
    uint32_t nworkers = nrunners * cfg->max_concurrency;
    const struct ember__placement *pl = ember__plan;
    uint32_t nrings = pl ? pl->nnodes : 1;
    uint64_t ring_stride = align_up(ember__ring_bytes(ring_cap), 64);
    /* the CPU map covers every CPU a node of the plan has */
    uint32_t ncpu_map = 1;
    for (uint32_t i = 0; pl && i < pl->nnodes; i++) {
        int last = hwloc_bitmap_last(pl->node[i].cpuset);
        if (last >= 0 && (uint32_t)last + 1 > ncpu_map) ncpu_map = (uint32_t)last + 1;
    }
    if (ncpu_map > 65536) ncpu_map = 65536;

    struct ember_shm_header tmp = { 0 };
    uint64_t off = align_up(sizeof tmp, 64);
    tmp.off_handlers = off;   off = align_up(off + (uint64_t)ember__nhandlers * sizeof(struct ember_handler_ent), 64);
    tmp.off_runners = off;    off = align_up(off + (uint64_t)nrunners * sizeof(struct ember_runner_ent), 64);
    tmp.off_workers = off;    off = align_up(off + (uint64_t)nworkers * sizeof(struct ember_worker_ent), 64);
    tmp.off_callers = off;    off = align_up(off + (uint64_t)cfg->max_callers * sizeof(struct ember_caller_ent), 64);
    tmp.off_slots = off;      off = align_up(off + (uint64_t)nslots * sizeof(struct ember_slot), 64);
    tmp.off_run_ring = off;   off = align_up(off + ring_stride * nrings, 64);
    tmp.off_free_ring = off;  off = align_up(off + ember__ring_bytes(ring_cap), 64);
    tmp.off_events = off;     off = align_up(off + EMBER_EVENT_RING * sizeof(struct ember_event_ent), 64);
    tmp.off_cpu_ring = off;   off = align_up(off + (uint64_t)ncpu_map * 2, 64);
    tmp.off_page_owner = off; off = align_up(off + (uint64_t)npages * 4, 64);
    tmp.off_page_len = off;   off = align_up(off + (uint64_t)npages * 4, 4096);
    tmp.off_pages = off;      off += (uint64_t)npages * page_size;
    uint64_t size = off;

    int fd = shm_open(shm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        if (!stale_segment(shm))
            return ember__fail(-EMBER_EEXIST, "pool '%s' is already running", cfg->name);
        shm_unlink(shm);
        fd = shm_open(shm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        char what[128];
        snprintf(what, sizeof what, "pool '%s': shm_open %s", cfg->name, shm);
        return ember__sys_fail(errno, what);
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        shm_unlink(shm);
        char what[160];
        snprintf(what, sizeof what, "pool '%s': ftruncate %s to %llu bytes", cfg->name, shm,
                 (unsigned long long)size);
        return ember__sys_fail(e, what);
    }
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (base == MAP_FAILED) {
        shm_unlink(shm);
        char what[128];
        snprintf(what, sizeof what, "pool '%s': mmap %s", cfg->name, shm);
        return ember__sys_fail(e, what);
    }
    struct ember_shm_header *h = base;
    *h = tmp;
    h->magic = EMBER_MAGIC;
    h->abi_version = EMBER_ABI_VERSION;
    h->header_size = sizeof *h;
    h->segment_size = size;
    h->nslots = nslots;
    h->ring_cap = ring_cap;
    h->nrunners = nrunners;
    h->nrings = nrings;
    h->ring_stride = ring_stride;
    h->ncpu_map = ncpu_map;
    h->placement = pl ? (uint32_t)pl->mode : EMBER_PLACEMENT_NONE;
    uint16_t *map = (uint16_t *)((char *)base + tmp.off_cpu_ring);
    for (uint32_t c = 0; c < ncpu_map; c++) map[c] = 0;
    for (uint32_t i = 0; pl && i < pl->nnodes; i++) {
        int c;
        hwloc_bitmap_foreach_begin(c, pl->node[i].cpuset)
            if ((uint32_t)c < ncpu_map) map[c] = (uint16_t)i;
        hwloc_bitmap_foreach_end();
    }
    atomic_init(&h->min, cfg->min);
    atomic_init(&h->max, cfg->max);
    h->max_concurrency = cfg->max_concurrency;
    h->ncallers = cfg->max_callers;
    h->nhandlers = ember__nhandlers;
    h->page_size = page_size;
    h->npages = npages;
    h->max_payload = cfg->max_payload;
    h->default_timeout_ns = (uint64_t)cfg->timeout_ns;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    h->ncpus = ncpu > 0 ? (uint32_t)ncpu : 1;
    snprintf(h->name, sizeof h->name, "%s", cfg->name);
    atomic_init(&h->stop_timeout_ns, -1);
    atomic_init(&h->spin, ((uint64_t)EMBER_SPIN_BIAS << 32) | EMBER_SPIN_BIAS);

    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init((pthread_mutex_t *)h->page_lock, &ma);
    pthread_mutexattr_destroy(&ma);

    int rc = ember__view_init(v, base, size);
    if (rc) {
        munmap(base, size);
        shm_unlink(shm);
        return rc;
    }
    for (unsigned i = 0; i < ember__nhandlers; i++) {
        memcpy(v->handlers[i].name, ember__handlers[i].name, EMBER_NAME_MAX);
        v->handlers[i].id = i;
    }
    for (uint32_t r = 0; r < nrunners; r++) {
        v->runners[r].capacity = cfg->max_concurrency;
        v->runners[r].node = -1;
        for (uint32_t t = 0; t < cfg->max_concurrency; t++)
            v->workers[r * cfg->max_concurrency + t].runner = r;
    }
    for (uint32_t i = 0; i < npages; i++) v->page_owner[i] = 0;
    for (uint32_t i = 0; i < nrings; i++) ember__ring_init(v->run[i].h, ring_cap);
    ember__ring_init(v->free.h, ring_cap);
    for (uint32_t i = 0; i < nslots; i++) {
        v->slots[i].args_page = v->slots[i].res_page = EMBER_NONE;
        ember__ring_push(&v->free, ember__entry(i, 0));
    }
    return 0;
}
