/* segment.c - creating a pool's shared segment and laying it out.
 *
 * Only the process that starts a pool runs this. The layout is the one
 * described in ember/abi.h; everything is zero (tmpfs) except what is set
 * here. Attaching processes validate the result in ember__view_init(). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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

/* Is the supervisor the header of segment FD names gone: no such
 * process, another one under its pid (start time), or a zombie? False when
 * the header names none yet (a start in progress) or cannot be read. */
static bool named_supervisor_gone(int fd)
{
    uint32_t pid = 0;
    uint64_t ticks = 0;
    if (pread(fd, &pid, sizeof pid, offsetof(struct ember_shm_header, sup_pid)) != (ssize_t)sizeof pid ||
        pread(fd, &ticks, sizeof ticks, offsetof(struct ember_shm_header, sup_start_ticks)) !=
            (ssize_t)sizeof ticks ||
        pid == 0 || pid > INT32_MAX)
        return false;
    return !ember__proc_alive((pid_t)pid, ticks);
}

/* Is the segment SHM left by a supervisor that is gone? Neither its
 * supervisor nor an application starting it holds its lock (proc.h): a
 * zombie supervisor holds none. A runner holds the supervisor's lock
 * description too, from its fork until its first act closes it: when the
 * supervisor the header names is gone while the lock is held, that is such
 * a runner, forked just before its supervisor died and not yet run, and
 * the lock goes within moments; this waits for it, a second at most.
 *
 * Returns 1 when it is stale and now this process's to replace: *OLD is a
 * descriptor of it holding its starting byte, checked to be still the
 * object under the name, so that no other starter judges it stale too and
 * unlinks it, or the segment that replaced it (the caller unlinks the name,
 * creates the new one if it starts a pool, then closes *OLD). 0: it is a
 * live pool's (or one starting); -1: another process is replacing it right
 * now; ENOENT-like: 1 with *OLD = -1 (nothing there). */
static int claim_stale(const char *shm, int *old)
{
    *old = -1;
    int fd = shm_open(shm, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) return errno == ENOENT ? 1 : 0;
    int held = ember__ofd_locked(fd, EMBER__LOCK_SUPERVISOR, 2); /* both bytes */
    for (int k = 0; k < 200 && held > 0 && ember__ofd_locked(fd, EMBER__LOCK_STARTING, 1) == 0 &&
                    named_supervisor_gone(fd);
         k++) {
        struct timespec ts = { 0, 5000000 };
        nanosleep(&ts, NULL);
        held = ember__ofd_locked(fd, EMBER__LOCK_SUPERVISOR, 2);
    }
    if (held != 0) {
        close(fd);
        return 0;
    }
    /* ours to replace if we hold its starting byte (else another starter
     * does) and the name still names it (else it was replaced already) */
    struct stat a, b;
    int nf = -1;
    bool ours = ember__ofd_lock(fd, EMBER__LOCK_STARTING) == 0 &&
                ember__ofd_locked(fd, EMBER__LOCK_SUPERVISOR, 1) == 0 &&
                (nf = shm_open(shm, O_RDONLY | O_CLOEXEC, 0)) >= 0 && fstat(fd, &a) == 0 &&
                fstat(nf, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    if (nf >= 0) close(nf);
    if (!ours) {
        close(fd);
        return -1;
    }
    *old = fd;
    return 1;
}

void ember__unlink_if_stale(const char *name)
{
    char shm[96];
    int old;
    ember__shm_name(shm, sizeof shm, name);
    if (claim_stale(shm, &old) == 1 && old >= 0) {
        shm_unlink(shm);
        close(old);
    }
}

/* The geometry of a pool's segment: the header's sizes and offsets, to be
 * copied into it, and the segment's size. */
struct layout {
    struct ember_shm_header h;
    uint64_t size;
};

/* The geometry of CFG's segment (CFG normalized by check_config()). */
static void layout_plan(const struct ember_pool_config *cfg, struct layout *l)
{
    memset(l, 0, sizeof *l);
    struct ember_shm_header *h = &l->h;
    h->nslots = cfg->queue_capacity;
    h->ring_cap = 2 * cfg->queue_capacity;
    h->nrunners = cfg->max_limit;
    h->max_concurrency = cfg->max_concurrency;
    h->ncallers = cfg->max_callers;
    h->nhandlers = ember__nhandlers;
    h->page_size = 65536;
    uint64_t space = cfg->payload_space ? cfg->payload_space : 4 * (uint64_t)cfg->max_payload;
    if (space < cfg->max_payload) space = cfg->max_payload;
    h->npages = (uint32_t)((space + h->page_size - 1) / h->page_size);
    const struct ember__placement *pl = ember__plan;
    h->nrings = pl ? pl->nnodes : 1;
    h->ring_stride = align_up(ember__ring_bytes(h->ring_cap), 64);
    /* the CPU map covers every CPU a node of the plan has */
    h->ncpu_map = 1;
    for (uint32_t i = 0; pl && i < pl->nnodes; i++) {
        int last = hwloc_bitmap_last(pl->node[i].cpuset);
        if (last >= 0 && (uint32_t)last + 1 > h->ncpu_map) h->ncpu_map = (uint32_t)last + 1;
    }
    if (h->ncpu_map > 65536) h->ncpu_map = 65536;

    uint64_t off = align_up(sizeof *h, 64);
#define PART(field, bytes, align) (h->field = off, off = align_up(off + (uint64_t)(bytes), align))
    PART(off_handlers, h->nhandlers * sizeof(struct ember_handler_ent), 64);
    PART(off_runners, h->nrunners * sizeof(struct ember_runner_ent), 64);
    PART(off_workers, h->nrunners * h->max_concurrency * sizeof(struct ember_worker_ent), 64);
    PART(off_callers, h->ncallers * sizeof(struct ember_caller_ent), 64);
    PART(off_slots, h->nslots * sizeof(struct ember_slot), 64);
    PART(off_run_ring, h->ring_stride * h->nrings, 64);
    PART(off_free_ring, ember__ring_bytes(h->ring_cap), 64);
    PART(off_events, EMBER_EVENT_RING * sizeof(struct ember_event_ent), 64);
    PART(off_cpu_ring, (uint64_t)h->ncpu_map * 2, 64);
    h->done_stride = (uint32_t)align_up((h->nslots + 63) / 64 * 8, 64);
    PART(off_done, (uint64_t)h->ncallers * h->done_stride, 64);
    h->count_stride = (uint32_t)(sizeof(struct ember_count_ent) +
                                 h->nhandlers * sizeof(struct ember_handler_count));
    PART(off_counts, ((uint64_t)h->nrunners * h->max_concurrency + 1) * h->count_stride, 64);
    PART(off_page_owner, (uint64_t)h->npages * 4, 64);
    PART(off_page_len, (uint64_t)h->npages * 4, 4096);
    PART(off_pages, (uint64_t)h->npages * h->page_size, 1);
#undef PART
    l->size = off;
}

/* BYTES for a message: "12 MiB" (rounded up), or KiB below one MiB. */
static const char *size_text(char *buf, size_t len, uint64_t bytes)
{
    if (bytes >= 1024 * 1024)
        snprintf(buf, len, "%llu MiB", (unsigned long long)((bytes + 1048575) >> 20));
    else
        snprintf(buf, len, "%llu KiB", (unsigned long long)((bytes + 1023) >> 10));
    return buf;
}

/* Can the filesystem of FD (/dev/shm) hold the segment of plan L, payload
 * pages and all? The segment is sparse, so ftruncate would say yes to any
 * size; a page tmpfs cannot back would later be a SIGBUS. Refused unless
 * the whole of it fits in the space free now (others may take some later:
 * payload pages are reserved before their first use, ember__pages_alloc).
 * 0 or -EMBER_ENOSPC with the option to lower. */
static int space_check(const char *pool, int fd, const struct layout *l)
{
    struct statvfs fs;
    if (fstatvfs(fd, &fs) < 0) return 0; /* nothing to judge by: the reservations will say */
    uint64_t total = (uint64_t)fs.f_blocks * fs.f_frsize, avail = (uint64_t)fs.f_bavail * fs.f_frsize;
    if (l->size <= avail) return 0;
    char a[32], t[32], sz[32], ps[32];
    uint64_t payload = l->size - l->h.off_pages;
    size_text(sz, sizeof sz, l->size);
    size_text(ps, sizeof ps, payload);
    if (l->size > total)
        return ember__fail(-EMBER_ENOSPC, "pool '%s': /dev/shm holds %s in all, less than the pool's "
                           "%s segment (%s of payload_space): lower payload_space, or max_payload "
                           "(payload_space is 4 x max_payload by default)", pool,
                           size_text(t, sizeof t, total), sz, ps);
    return ember__fail(-EMBER_ENOSPC, "pool '%s': /dev/shm has %s free of %s, less than the pool's "
                       "%s segment (%s of payload_space): free some of it, or lower payload_space "
                       "or max_payload", pool, size_text(a, sizeof a, avail),
                       size_text(t, sizeof t, total), sz, ps);
}

/* Size FD, the new object SHM, for plan L, and allocate its fixed parts
 * (everything before the payload pages): a /dev/shm that cannot hold them
 * fails the start, not a later call. */
static int segment_size(const char *pool, const char *shm, int fd, const struct layout *l)
{
    char what[160];
    int rc = space_check(pool, fd, l);
    if (rc) return rc;
    if (ftruncate(fd, (off_t)l->size) < 0) {
        snprintf(what, sizeof what, "pool '%s': ftruncate %s to %llu bytes", pool, shm,
                 (unsigned long long)l->size);
        return ember__sys_fail(errno, what);
    }
    int e;
    do e = posix_fallocate(fd, 0, (off_t)l->h.off_pages);
    while (e == EINTR);
    if (e == ENOSPC) {
        char f[32];
        return ember__fail(-EMBER_ENOSPC, "pool '%s': /dev/shm has no room for the segment's %s of "
                           "rings, slots and tables: free some of it, or lower queue_capacity or "
                           "max_callers", pool, size_text(f, sizeof f, l->h.off_pages));
    }
    if (e) {
        snprintf(what, sizeof what, "pool '%s': posix_fallocate %s, %llu bytes", pool, shm,
                 (unsigned long long)l->h.off_pages);
        return ember__sys_fail(e, what);
    }
    return 0;
}

/* Take the starting lock of the segment SHM just created (open as FD) on a
 * description of its own, *FDP: never mapped, so that closing it drops the
 * lock (a mapping keeps its description, and any lock on it, alive). */
static int starting_lock(const char *pool, const char *shm, int fd, int *fdp)
{
    char what[160];
    *fdp = shm_open(shm, O_RDWR | O_CLOEXEC, 0);
    struct stat a, b;
    int rc = *fdp < 0 ? -errno : ember__ofd_lock(*fdp, EMBER__LOCK_STARTING);
    if (rc == 0 && (fstat(fd, &a) < 0 || fstat(*fdp, &b) < 0)) rc = -errno;
    if (rc == 0 && (a.st_dev != b.st_dev || a.st_ino != b.st_ino))
        rc = ember__fail(-EMBER_EEXIST, "pool '%s' was started by another process at the same time",
                         pool);
    else if (rc < 0) {
        snprintf(what, sizeof what, "pool '%s': starting lock of %s (F_OFD_SETLK)", pool, shm);
        rc = ember__sys_fail(-rc, what);
    }
    if (rc && *fdp >= 0) close(*fdp);
    return rc;
}

/* Create the shared object SHM for plan L (replacing a stale one), map it
 * at *BASE and leave its descriptor in *FD; *LOCKFD keeps it open with the
 * starting lock held. */
static int segment_open(const char *pool, const char *shm, const struct layout *l, void **base,
                        int *fd_out, int *lockfd)
{
    int fd = shm_open(shm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int old = -1; /* the stale segment replaced, held until the new one is locked */
    if (fd < 0 && errno == EEXIST) {
        int c = claim_stale(shm, &old);
        if (c == 0) return ember__fail(-EMBER_EEXIST, "pool '%s' is already running", pool);
        if (c < 0)
            return ember__fail(-EMBER_EEXIST, "pool '%s' was started by another process at the same time",
                               pool);
        if (old >= 0) shm_unlink(shm);
        fd = shm_open(shm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) { /* another start created it first */
            if (old >= 0) close(old);
            return ember__fail(-EMBER_EEXIST, "pool '%s' was started by another process at the same time",
                               pool);
        }
    }
    char what[160];
    if (fd < 0) {
        int e = errno;
        if (old >= 0) close(old);
        snprintf(what, sizeof what, "pool '%s': shm_open %s", pool, shm);
        return ember__sys_fail(e, what);
    }
    int rc = starting_lock(pool, shm, fd, lockfd);
    if (old >= 0) close(old);
    if (rc) {
        /* the name is ours to remove only while it still names our object
         * (starting_lock fails with EEXIST when another start replaced it) */
        if (rc != -EMBER_EEXIST) shm_unlink(shm);
        close(fd);
        return rc;
    }
    rc = segment_size(pool, shm, fd, l);
    if (rc) {
        close(fd);
        close(*lockfd);
        shm_unlink(shm);
        return rc;
    }
    *base = mmap(NULL, l->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (*base == MAP_FAILED) {
        int e = errno;
        close(fd);
        close(*lockfd);
        shm_unlink(shm);
        snprintf(what, sizeof what, "pool '%s': mmap %s", pool, shm);
        return ember__sys_fail(e, what);
    }
    *fd_out = fd;
    return 0;
}

/* Write the header of the fresh (zeroed) segment at BASE. */
static void header_fill(struct ember_shm_header *h, const struct layout *l,
                        const struct ember_pool_config *cfg)
{
    const struct ember__placement *pl = ember__plan;
    memcpy(h, &l->h, sizeof *h);
    h->magic = EMBER_MAGIC;
    h->abi_version = EMBER_ABI_VERSION;
    h->header_size = sizeof *h;
    h->segment_size = l->size;
    h->placement = pl ? (uint32_t)pl->mode : EMBER_PLACEMENT_NONE;
    uint16_t *map = (uint16_t *)((char *)h + h->off_cpu_ring);
    for (uint32_t i = 0; pl && i < pl->nnodes; i++) {
        int c;
        hwloc_bitmap_foreach_begin(c, pl->node[i].cpuset)
            if ((uint32_t)c < h->ncpu_map) map[c] = (uint16_t)i;
        hwloc_bitmap_foreach_end();
    }
    atomic_init(&h->min, cfg->min);
    atomic_init(&h->max, cfg->max);
    h->max_payload = cfg->max_payload;
    h->default_timeout_ns = (uint64_t)cfg->timeout_ns;
    h->ncpus = ember_online_cpus();
    snprintf(h->name, sizeof h->name, "%s", cfg->name);
    atomic_init(&h->stop_timeout_ns, -1);
    atomic_init(&h->spin, ((uint64_t)EMBER_SPIN_BIAS << 32) | EMBER_SPIN_BIAS);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init((pthread_mutex_t *)h->page_lock, &ma);
    pthread_mutexattr_destroy(&ma);
}

/* Fill the tables of view V: handler names, runner and worker entries,
 * the rings (every slot on the free ring). */
static void tables_init(struct ember__view *v)
{
    for (unsigned i = 0; i < ember__nhandlers; i++) {
        memcpy(v->handlers[i].name, ember__handlers[i].name, EMBER_NAME_MAX);
        v->handlers[i].id = i;
    }
    for (uint32_t r = 0; r < v->nrunners; r++) {
        v->runners[r].capacity = v->max_conc;
        v->runners[r].node = -1;
        for (uint32_t t = 0; t < v->max_conc; t++) v->workers[r * v->max_conc + t].runner = r;
    }
    for (uint32_t i = 0; i < v->nrings; i++) ember__ring_init(v->run[i].h, v->run[i].cap);
    ember__ring_init(v->free.h, v->free.cap);
    for (uint32_t i = 0; i < v->nslots; i++) {
        v->slots[i].args_page = v->slots[i].res_page = EMBER_NONE;
        ember__ring_push(&v->free, ember__entry(i, 0));
    }
}

int ember__segment_create_held(const struct ember_pool_config *cfg, struct ember__view *v,
                               int *lockfd)
{
    char shm[96];
    ember__shm_name(shm, sizeof shm, cfg->name);
    struct layout l;
    layout_plan(cfg, &l);
    void *base = NULL;
    int fd = -1;
    int rc = segment_open(cfg->name, shm, &l, &base, &fd, lockfd);
    if (rc) return rc;
    header_fill((struct ember_shm_header *)base, &l, cfg);
    rc = ember__view_init(v, base, l.size);
    if (rc) {
        munmap(base, l.size);
        close(fd);
        close(*lockfd);
        shm_unlink(shm);
        return rc;
    }
    v->shm_fd = fd; /* kept, for payload pages' space (detail/pages.h); runners inherit it */
    tables_init(v);
    return 0;
}

int ember__segment_create(const struct ember_pool_config *cfg, struct ember__view *v)
{
    int fd;
    int rc = ember__segment_create_held(cfg, v, &fd);
    if (rc == 0) close(fd);
    return rc;
}
