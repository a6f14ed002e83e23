/* cgroup.c - the runners' memory cgroups (the layout is in cgroup.h).
 *
 * Everything here is a few small files under /sys/fs/cgroup read or
 * written at a runner's fork and death, never on a call's path. A host
 * without a writable cgroup carrying the memory controller gets none: the
 * pool then cannot tell an OOM kill from any other SIGKILL, and says so. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "lib/cgroup.h"

/* Up to LEN-1 bytes of file PATH into BUF, NUL-terminated: its length, or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = read(fd, buf, len - 1);
    int e = errno;
    close(fd);
    if (n < 0) return -e;
    buf[n] = 0;
    return n;
}

/* Write S to the cgroup file DIR/FILE: 0 or -errno. */
static int write_at(const char *dir, const char *file, const char *s)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path) return -ENAMETOOLONG;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = write(fd, s, strlen(s));
    int e = errno;
    close(fd);
    return n < 0 ? -e : 0;
}

/* Is WORD one of the blank- or comma-separated words of S? */
static bool has_word(const char *s, const char *word)
{
    size_t k = strlen(word);
    for (const char *p = s; (p = strstr(p, word)); p += k) {
        bool start = p == s || strchr(" ,\n", p[-1]);
        if (start && (!p[k] || strchr(" ,\n", p[k]))) return true;
    }
    return false;
}

/* Does DIR/FILE list WORD? */
static bool lists(const char *dir, const char *file, const char *word)
{
    char path[PATH_MAX], buf[512];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path) return false;
    return read_small(path, buf, sizeof buf) > 0 && has_word(buf, word);
}

/* The directory of this process's cgroup in the hierarchy of FSTYPE
 * ("cgroup2", or "cgroup" with the memory controller) into OUT; also the
 * mount's own directory into MNT. false when there is none. */
static bool own_dir(const char *fstype, char *out, char *mnt, size_t len)
{
    bool v2 = strcmp(fstype, "cgroup2") == 0;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) return false;
    char line[1024], root[PATH_MAX] = "", point[PATH_MAX] = "";
    while (fgets(line, sizeof line, f)) {
        char r[PATH_MAX], p[PATH_MAX];
        const char *dash = strstr(line, " - ");
        char type[32], src[256], opts[512] = "";
        if (!dash || sscanf(line, "%*s %*s %*s %4095s %4095s", r, p) != 2 ||
            sscanf(dash + 3, "%31s %255s %511s", type, src, opts) < 2 || strcmp(type, fstype) != 0)
            continue;
        if (!v2 && !has_word(opts, "memory")) continue;
        snprintf(root, sizeof root, "%s", r);
        snprintf(point, sizeof point, "%s", p);
        break;
    }
    fclose(f);
    if (!point[0] || !(f = fopen("/proc/self/cgroup", "re"))) return false;
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        line[strcspn(line, "\n")] = 0;
        c2[1 + strcspn(c2 + 1, "\n")] = 0;
        found = v2 ? c1 == line + 1 && line[0] == '0' && c1 + 1 == c2 : has_word(c1 + 1, "memory");
        if (!found) continue;
        /* the path is relative to the namespace's root, as the mount's root is */
        const char *path = c2 + 1;
        size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
        if (rl && (strncmp(path, root, rl) != 0 || (path[rl] && path[rl] != '/'))) found = false;
        else snprintf(out, len, "%s%s", point, path + rl);
    }
    fclose(f);
    size_t n = strlen(out);
    while (found && n > strlen(point) && out[n - 1] == '/') out[--n] = 0;
    snprintf(mnt, len, "%s", point);
    return found;
}

/* Where this process may make cgroups with the memory controller: into
 * BASE. Returns the version (2, 1), or -errno with WHY. */
static int find_base(char *base, size_t len, char *why, size_t wlen)
{
    char own[PATH_MAX] = "", mnt[PATH_MAX];
    if (own_dir("cgroup2", own, mnt, sizeof own) && lists(mnt, "cgroup.controllers", "memory")) {
        if (lists(own, "cgroup.subtree_control", "memory") ||
            (strcmp(own, mnt) == 0 && write_at(own, "cgroup.subtree_control", "+memory") == 0)) {
            snprintf(base, len, "%s", own);
            return 2;
        }
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", own);
        char *slash = strrchr(parent, '/');
        if (slash && strlen(own) > strlen(mnt)) *slash = 0;
        if (strcmp(parent, own) != 0 && lists(parent, "cgroup.subtree_control", "memory") &&
            access(parent, W_OK) == 0) {
            snprintf(base, len, "%s", parent);
            return 2;
        }
        snprintf(why, wlen, "cgroup v2: neither %s (it has processes) nor its parent gives the "
                 "memory controller to its children where this process may write", own);
        return -EACCES;
    }
    if (own_dir("cgroup", own, mnt, sizeof own)) {
        if (access(own, W_OK) == 0) {
            snprintf(base, len, "%s", own);
            return 1;
        }
        snprintf(why, wlen, "cgroup v1 memory controller: %s is not writable by this process", own);
        return -EACCES;
    }
    snprintf(why, wlen, "no cgroup hierarchy with the memory controller is mounted");
    return -ENOENT;
}

/* Remove directory DIR's subdirectories (cgroups: rmdir only) and then DIR;
 * returns how many of them stayed (processes in them). */
static unsigned remove_tree(const char *dir)
{
    unsigned left = 0;
    DIR *d = opendir(dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            char sub[PATH_MAX];
            if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
            if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) < sizeof sub && rmdir(sub) < 0)
                left++;
        }
        closedir(d);
    }
    if (rmdir(dir) < 0 && errno != ENOENT) left++;
    return left;
}

int ember__cgroup_pool_open(struct ember__cgroup *cg, const char *name, pid_t pid, char *why,
                            size_t wlen)
{
    char base[PATH_MAX], prefix[128];
    cg->version = 0;
    int v = find_base(base, sizeof base, why, wlen);
    if (v < 0) return v;
    /* what killed supervisors left: of this pool (a live pool of that name
     * holds its segment, so none is live), and of any pool of this user
     * whose supervisor is gone; leaves with processes stay (rmdir refuses) */
    char user[32];
    snprintf(user, sizeof user, "ember.%u.", (unsigned)getuid());
    snprintf(prefix, sizeof prefix, "%s%s.", user, name);
    DIR *d = opendir(base);
    for (struct dirent *e; d && (e = readdir(d));) {
        char old[PATH_MAX];
        const char *dot = strrchr(e->d_name, '.');
        if (e->d_type != DT_DIR || strncmp(e->d_name, user, strlen(user)) != 0) continue;
        bool ours = strncmp(e->d_name, prefix, strlen(prefix)) == 0;
        bool gone = dot && atoi(dot + 1) > 0 && kill(atoi(dot + 1), 0) < 0 && errno == ESRCH;
        if ((ours || gone) && (size_t)snprintf(old, sizeof old, "%s/%s", base, e->d_name) < sizeof old)
            remove_tree(old);
    }
    if (d) closedir(d);
    if ((size_t)snprintf(cg->dir, sizeof cg->dir, "%s/%s%d", base, prefix, (int)pid) >= sizeof cg->dir) {
        snprintf(why, wlen, "the cgroup path under %s is too long", base);
        return -ENAMETOOLONG;
    }
    if (mkdir(cg->dir, 0755) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(why, wlen, "cannot make the pool's cgroup %s: %s", cg->dir, strerror(e));
        return -e;
    }
    int rc = v == 2 ? write_at(cg->dir, "cgroup.subtree_control", "+memory") : 0;
    if (rc < 0) {
        snprintf(why, wlen, "cannot give the memory controller to the leaves of %s: %s", cg->dir,
                 strerror(-rc));
        rmdir(cg->dir);
        return rc;
    }
    cg->version = v;
    return 0;
}

unsigned ember__cgroup_pool_close(struct ember__cgroup *cg)
{
    if (!cg->version) return 0;
    cg->version = 0;
    return remove_tree(cg->dir);
}

/* Make the leaf NAME of CG with MEMORY_MAX: the fd of its cgroup.procs,
 * or a negative errno with WHY. */
static int leaf_make_named(const struct ember__cgroup *cg, const char *name, size_t memory_max,
                           char *why, size_t wlen)
{
    char leaf[PATH_MAX], val[32];
    if ((size_t)snprintf(leaf, sizeof leaf, "%s/%s", cg->dir, name) >= sizeof leaf) {
        snprintf(why, wlen, "the cgroup path %s is too long", cg->dir);
        return -ENAMETOOLONG;
    }
    if (mkdir(leaf, 0755) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(why, wlen, "cannot make cgroup %s: %s", leaf, strerror(e));
        return -e;
    }
    int rc = 0;
    if (memory_max) {
        snprintf(val, sizeof val, "%zu", memory_max);
        rc = write_at(leaf, cg->version == 2 ? "memory.max" : "memory.limit_in_bytes", val);
        /* no swap beyond the limit: over it the runner is killed, not slowed
         * down (the file is missing where swap is not accounted) */
        if (rc == 0) write_at(leaf, cg->version == 2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes",
                              cg->version == 2 ? "0" : val);
        if (rc < 0) snprintf(why, wlen, "cannot set the memory limit of cgroup %s to %s: %s", leaf, val,
                             strerror(-rc));
    }
    char procs[PATH_MAX + 16];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", leaf);
    int fd = rc < 0 ? -1 : open(procs, O_WRONLY | O_CLOEXEC);
    if (rc == 0 && fd < 0) {
        rc = -errno;
        snprintf(why, wlen, "cannot open %s: %s", procs, strerror(-rc));
    }
    if (rc < 0) rmdir(leaf);
    return rc < 0 ? rc : fd;
}

int ember__cgroup_leaf_make(const struct ember__cgroup *cg, uint32_t r, uint32_t gen,
                            size_t memory_max, char *why, size_t wlen)
{
    char name[32];
    snprintf(name, sizeof name, "%u.%u", r, gen);
    return leaf_make_named(cg, name, memory_max, why, wlen);
}

#define EMBER__SPARE_LEAF "next" /* not R.GEN: sweeps leave it alone */

int ember__cgroup_spare_make(const struct ember__cgroup *cg, size_t memory_max)
{
    char why[8];
    return cg->version ? leaf_make_named(cg, EMBER__SPARE_LEAF, memory_max, why, sizeof why) : -ENOENT;
}

int ember__cgroup_spare_take(const struct ember__cgroup *cg, uint32_t r, uint32_t gen)
{
    char from[PATH_MAX], to[PATH_MAX];
    if ((size_t)snprintf(from, sizeof from, "%s/" EMBER__SPARE_LEAF, cg->dir) >= sizeof from ||
        (size_t)snprintf(to, sizeof to, "%s/%u.%u", cg->dir, r, gen) >= sizeof to)
        return -ENAMETOOLONG;
    if (rename(from, to) == 0) return 0;
    int e = errno;
    rmdir(from);
    return -e;
}

int ember__cgroup_join(int fd)
{
    ssize_t n = write(fd, "0", 1); /* 0: the writing process */
    int e = errno;
    close(fd);
    return n == 1 ? 0 : -e;
}

bool ember__cgroup_leaf_end(const struct ember__cgroup *cg, uint32_t r, uint32_t gen, bool *left)
{
    char leaf[PATH_MAX], path[PATH_MAX + 32], buf[1024];
    *left = false;
    if ((size_t)snprintf(leaf, sizeof leaf, "%s/%u.%u", cg->dir, r, gen) >= sizeof leaf) return false;
    /* v2's memory.events and v1's memory.oom_control both count the
     * processes of the cgroup the OOM killer killed, by its limit or the
     * whole machine's, in a line "oom_kill N" */
    snprintf(path, sizeof path, "%s/%s", leaf, cg->version == 2 ? "memory.events" : "memory.oom_control");
    unsigned long long kills = 0;
    if (read_small(path, buf, sizeof buf) > 0) {
        for (const char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
            if (strncmp(p, "oom_kill ", 9) == 0) kills = strtoull(p + 9, NULL, 10);
    }
    if (rmdir(leaf) < 0 && errno != ENOENT) *left = true;
    return kills > 0;
}

unsigned ember__cgroup_sweep(const struct ember__cgroup *cg,
                             bool (*live)(uint32_t r, uint32_t gen, void *arg), void *arg)
{
    unsigned left = 0;
    DIR *d = cg->version ? opendir(cg->dir) : NULL;
    for (struct dirent *e; d && (e = readdir(d));) {
        unsigned r, gen;
        char sub[PATH_MAX], end;
        if (e->d_type != DT_DIR || sscanf(e->d_name, "%u.%u%c", &r, &gen, &end) != 2 || live(r, gen, arg))
            continue;
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", cg->dir, e->d_name) < sizeof sub && rmdir(sub) < 0)
            left++;
    }
    if (d) closedir(d);
    return left;
}
