/* plugins/libav/output.c - outputs that appear whole or not at all.
 *
 * A handler writes its output under a temporary name in the final name's
 * directory, ".NAME.ember-PID-SEQ.part" (the pattern `ember run` uses for
 * for its own outputs: what a runner killed outright leaves is removed by
 * a later `ember run --output` into that directory, once PID is gone), then fsyncs it, renames it to its final name and fsyncs the
 * directory. On a failure or a cancel the temporary is removed, so a
 * caller sees the complete output or none. A directory output (thumbnails
 * into a folder that does not exist yet) is built the same way, as a
 * temporary directory renamed whole. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "libav.h"

/* Temporaries made by this process, for unique names (relaxed: only the
 * value matters, no other memory is published through it). */
static atomic_uint_fast64_t tmp_seq;

/* DIR/NAME into OUT (PATH_MAX): 0, or -ENAMETOOLONG. */
static int join(char *out, const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    if (a + 1 + b >= PATH_MAX) return -ENAMETOOLONG;
    memcpy(out, dir, a);
    out[a] = '/';
    memcpy(out + a + 1, name, b + 1);
    return 0;
}

int lav_mkdirs(const char *path)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return ENAMETOOLONG;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0777) < 0 && errno != EEXIST) return errno;
        *s = c;
        if (!c) break;
    }
    struct stat st;
    if (stat(p, &st) < 0) return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

int lav_output_prepare(struct lav_call *call, struct lav_output *out, const char *final)
{
    memset(out, 0, sizeof *out);
    snprintf(out->final, sizeof out->final, "%s", final);
    const char *slash = strrchr(final, '/');
    const char *base = slash ? slash + 1 : final;
    if (!*base) return lav_fail(call, EINVAL, "the output %s names a directory, not a file", final);
    int dirlen = slash ? (int)(slash - final) : 0;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", dirlen, final);
    int rc = dir[0] ? lav_mkdirs(dir) : 0;
    if (rc) return lav_fail(call, rc, "cannot make the output's directory %s: %s", dir, strerror(rc));
    uint64_t seq = atomic_fetch_add_explicit(&tmp_seq, 1, memory_order_relaxed);
    int n = snprintf(out->tmp, sizeof out->tmp, "%.*s.%s.ember-%ld-%llu.part", slash ? dirlen + 1 : 0, final,
                     base, (long)getpid(), (unsigned long long)seq);
    if (n >= (int)sizeof out->tmp) return lav_fail(call, ENAMETOOLONG, "the output name %s is too long", final);
    return 0;
}

int lav_output_prepare_dir(struct lav_call *call, struct lav_output *out, const char *final)
{
    char f[PATH_MAX];
    snprintf(f, sizeof f, "%s", final);
    size_t n = strlen(f);
    while (n > 1 && f[n - 1] == '/') f[--n] = 0;
    struct stat st;
    bool exists = stat(f, &st) == 0;
    if (exists && !S_ISDIR(st.st_mode))
        return lav_fail(call, ENOTDIR, "the output folder %s is a file, not a directory", f);
    if (exists) {
        char inner[PATH_MAX];
        if (snprintf(inner, sizeof inner, "%s/files", f) >= (int)sizeof inner)
            return lav_fail(call, ENAMETOOLONG, "the output name %s is too long", f);
        int rc = lav_output_prepare(call, out, inner);
        snprintf(out->final, sizeof out->final, "%s", f);
        out->into = true;
        if (rc) return rc;
    } else {
        int rc = lav_output_prepare(call, out, f);
        if (rc) return rc;
    }
    out->dir = true;
    if (mkdir(out->tmp, 0777) < 0) {
        int e = errno;
        out->tmp[0] = 0;
        return lav_fail(call, e, "cannot make a folder in %s: %s", f, strerror(e));
    }
    return 0;
}

/* Move the files of directory OUT->tmp into OUT->final, each fsync'd
 * first, then remove the emptied temporary: 0 or -errno. */
static int move_files_into(struct lav_output *out)
{
    DIR *d = opendir(out->tmp);
    if (!d) return -errno;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char from[PATH_MAX], to[PATH_MAX];
        rc = join(from, out->tmp, e->d_name);
        if (!rc) rc = join(to, out->final, e->d_name);
        if (!rc) rc = lav_fsync_path(from, false);
        if (!rc && rename(from, to) < 0) rc = -errno;
    }
    closedir(d);
    if (!rc && rmdir(out->tmp) < 0) rc = -errno;
    return rc ? rc : lav_fsync_path(out->final, true);
}

int lav_fsync_path(const char *path, bool dir)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
    if (fd < 0) return -errno;
    int rc = fsync(fd) < 0 && errno != EINVAL ? -errno : 0; /* EINVAL: a file system without fsync */
    close(fd);
    return rc;
}

/* The directory part of PATH into DIR ("/" or "." when it has none). */
static void dir_of(const char *path, char *dir)
{
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, PATH_MAX, ".");
    else if (slash == path) snprintf(dir, PATH_MAX, "/");
    else snprintf(dir, PATH_MAX, "%.*s", (int)(slash - path), path);
}

/* fsync every file in directory PATH, then PATH itself: 0 or -errno. */
static int fsync_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return -errno;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[PATH_MAX];
        rc = join(p, path, e->d_name);
        if (!rc) rc = lav_fsync_path(p, false);
    }
    closedir(d);
    return rc ? rc : lav_fsync_path(path, true);
}

int lav_output_publish(struct lav_call *call, struct lav_output *out)
{
    if (out->into) {
        int rc = move_files_into(out);
        if (rc) {
            lav_output_discard(out);
            return lav_fail(call, -rc, "cannot move the files into %s: %s", out->final, strerror(-rc));
        }
        return 0;
    }
    char dir[PATH_MAX];
    dir_of(out->final, dir);
    int rc = out->dir ? fsync_tree(out->tmp) : lav_fsync_path(out->tmp, false);
    if (!rc && rename(out->tmp, out->final) < 0) rc = -errno;
    if (!rc) rc = lav_fsync_path(dir, true);
    if (rc) {
        lav_output_discard(out);
        return lav_fail(call, -rc, "cannot publish %s: %s", out->final, strerror(-rc));
    }
    return 0;
}

void lav_output_discard(struct lav_output *out)
{
    if (!out->tmp[0]) return;
    if (out->dir) {
        DIR *d = opendir(out->tmp);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlinkat(dirfd(d), e->d_name, 0);
            closedir(d);
        }
        rmdir(out->tmp);
    } else {
        unlink(out->tmp);
    }
}

uint64_t lav_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}
