/* Description: the libav plugin's handlers in a real pool: the plugin
 * (build/plugins/libav.so, its path in argv[1]) is dlopen'd and its
 * handlers registered through thin wrappers, their per-runner init run at
 * the runner's boot, as a loaded plugin's are. Clips made by the plugin's
 * synth handler (libav alone) are probed (frames, size, duration, streams),
 * transcoded (audio copied, AAC or none; mp4 and mkv; another codec) and
 * the outputs probed again; thumbnails into a new folder and an existing
 * one; arguments as NUL-separated words and as one string; each bad key or
 * value refused with a message naming it; a missing file and corrupt
 * inputs refused naming the file; a cancel and a deadline mid-transcode
 * leave neither the output nor a temporary. Without the plugin (FFmpeg's
 * development packages missing) the test says why and is skipped (77). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <ember/plugin.h>

#define MAXH 8

/* What a plugin takes from the program that loads it, kept in this one
 * (linked from libember.a and exported, export_dynamic) even where the
 * test itself does not call it. */
__attribute__((used)) static const struct {
    int (*out_write)(ember_out *, const void *, size_t);
    bool (*cancelled)(const ember_job *);
    uint64_t (*remaining)(const ember_job *);
} plugin_needs = { ember_out_write, ember_job_cancelled, ember_job_remaining_ns };

static const ember_plugin *P;
static void *ctxs[MAXH];            /* each runner's own, set at its boot */
static char dir[64];                /* the test's files */
static ember_pool *pool;
static ember_client *C;

/* The plugin's handlers as ember_handler_fn: handler I with its context. */
#define WRAP(i)                                                                       \
    static int wrap##i(const void *a, size_t n, ember_out *o, const ember_job *j)     \
    {                                                                                 \
        return P->handlers[i].fn(ctxs[i], a, n, o, j);                                \
    }
WRAP(0) WRAP(1) WRAP(2) WRAP(3) WRAP(4) WRAP(5) WRAP(6) WRAP(7)
static const ember_handler_fn wraps[MAXH] = { wrap0, wrap1, wrap2, wrap3, wrap4, wrap5, wrap6, wrap7 };

/* In each runner before its first call: every handler's init. */
static int boot(void *arg, char *msg, size_t msglen)
{
    (void)arg;
    for (size_t i = 0; i < P->nhandlers; i++)
        if (P->handlers[i].init && P->handlers[i].init(&ctxs[i]) != 0) {
            snprintf(msg, msglen, "init of %s failed", P->handlers[i].name);
            return -1;
        }
    return 0;
}

/* ---- calls ---- */

struct res {
    int rc, detail;
    char text[8192];
};

/* Call HANDLER with the words of FMT (blank-separated) sent NUL-separated,
 * cwd= the test's folder first, within TIMEOUT_NS. */
static void call_t(struct res *r, const char *handler, int64_t timeout_ns, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void call_t(struct res *r, const char *handler, int64_t timeout_ns, const char *fmt, ...)
{
    char words[2048], buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(words, sizeof words, fmt, ap);
    va_end(ap);
    size_t n = (size_t)snprintf(buf, sizeof buf, "cwd=%s", dir) + 1;
    for (char *w = strtok(words, " "); w; w = strtok(NULL, " ")) n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", w) + 1;
    int h = ember_handler(C, handler);
    assert_true(h >= 0);
    ember_result res;
    r->rc = ember_call(C, h, buf, n, &res, timeout_ns);
    r->detail = res.detail;
    snprintf(r->text, sizeof r->text, "%.*s", (int)res.len, res.data ? (const char *)res.data : "");
    ember_result_release(C, &res);
}
#define call(r, handler, ...) call_t(r, handler, 60 * EMBER_SECOND, __VA_ARGS__)

static void expect_ok(const struct res *r)
{
    if (r->rc != 0) fail_msg("call failed: %s (detail %d): %s", ember_strerror(r->rc), r->detail, r->text);
}

/* Failed with the handler's CODE and a message holding WHAT. */
static void expect_fail(const struct res *r, int code, const char *what)
{
    if (r->rc != -EMBER_EHANDLER || r->detail != code || !strstr(r->text, what))
        fail_msg("wanted EHANDLER/%d with '%s'; got %s/%d: %s", code, what, ember_strerror(r->rc), r->detail,
                 r->text);
}

/* ---- reading the JSON results (flat enough for strstr) ---- */

/* The number after "KEY": in JSON, from FROM on; NAN if null or absent. */
static double num_after(const char *from, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = from ? strstr(from, pat) : NULL;
    if (!p || strncmp(p + strlen(pat), "null", 4) == 0) return NAN;
    return strtod(p + strlen(pat), NULL);
}
static double num(const char *json, const char *key)
{
    return num_after(json, key);
}
/* KEY of the first stream of TYPE ("video", "audio"). */
static double stream_num(const char *json, const char *type, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"type\":\"%s\"", type);
    return num_after(strstr(json, pat), key);
}
static bool has_stream(const char *json, const char *type, const char *codec)
{
    char pat[96];
    snprintf(pat, sizeof pat, "\"type\":\"%s\",\"codec\":\"%s\"", type, codec);
    return strstr(json, pat) != NULL;
}

/* ---- files ---- */

static bool exists(const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* Temporaries (".*.ember-*.part") left in the folder SUB ("" the test's). */
static int partials(const char *sub)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    DIR *d = opendir(p);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strstr(e->d_name, ".ember-") != NULL;
    closedir(d);
    return n;
}

static void write_file(const char *name, const void *data, size_t len)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static size_t read_file(const char *name, void *buf, size_t cap)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, cap);
    close(fd);
    assert_true(n >= 0);
    return (size_t)n;
}

static long long file_size(const char *name)
{
    char p[256];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* ---- the tests ---- */

/* The clip every test starts from: 1.5 s, 320x240 at 30 fps, a tone. */
static void synth_and_probe(void **st)
{
    (void)st;
    struct res r;
    call(&r, "synth", "out=clip.mp4 seconds=1.5 width=320 height=240 fps=30 tone=440");
    expect_ok(&r);
    assert_int_equal((int)num(r.text, "frames"), 45);
    assert_int_equal((long long)num(r.text, "bytes"), file_size("clip.mp4"));
    call(&r, "probe", "in=clip.mp4");
    expect_ok(&r);
    assert_true(has_stream(r.text, "video", "h264"));
    assert_true(has_stream(r.text, "audio", "aac"));
    assert_int_equal((int)stream_num(r.text, "video", "width"), 320);
    assert_int_equal((int)stream_num(r.text, "video", "height"), 240);
    assert_int_equal((int)stream_num(r.text, "video", "frames"), 45);
    assert_true(fabs(stream_num(r.text, "video", "frame_rate") - 30) < 1e-6);
    assert_true(fabs(num(r.text, "duration") - 1.5) < 0.05);
    assert_int_equal((long long)num(r.text, "size"), file_size("clip.mp4"));
    assert_int_equal((int)stream_num(r.text, "audio", "sample_rate"), 48000);
    /* counting packets agrees with the index */
    call(&r, "probe", "in=clip.mp4 count=yes");
    expect_ok(&r);
    assert_int_equal((int)stream_num(r.text, "video", "frames"), 45);
    assert_int_equal(partials(""), 0);
}

static void transcode_copies_audio(void **st)
{
    (void)st;
    struct res r;
    call(&r, "transcode", "in=clip.mp4 out=out/half.mp4 height=120");
    expect_ok(&r);
    assert_int_equal((int)num(r.text, "frames"), 45);
    assert_int_equal((int)num(r.text, "width"), 160);
    assert_true(fabs(num(r.text, "duration") - 1.5) < 0.1);
    assert_int_equal((long long)num(r.text, "bytes"), file_size("out/half.mp4"));
    assert_non_null(strstr(r.text, "\"audio\":\"copy\""));
    call(&r, "probe", "in=out/half.mp4");
    expect_ok(&r);
    assert_true(has_stream(r.text, "video", "h264"));
    assert_true(has_stream(r.text, "audio", "aac"));
    assert_int_equal((int)stream_num(r.text, "video", "width"), 160);
    assert_int_equal((int)stream_num(r.text, "video", "height"), 120);
    assert_int_equal((int)stream_num(r.text, "video", "frames"), 45);
    assert_true(fabs(num(r.text, "duration") - 1.5) < 0.1);
    assert_int_equal(partials("out"), 0);
}

static void transcode_other_codecs_and_containers(void **st)
{
    (void)st;
    struct res r;
    call(&r, "transcode", "in=clip.mp4 out=b.mkv height=120 width=200 codec=mpeg4 audio=aac threads=2");
    expect_ok(&r);
    assert_non_null(strstr(r.text, "\"audio\":\"aac\""));
    assert_true(num(r.text, "audio_frames") > 60); /* 1.5 s of 1024-sample frames at 48 kHz */
    call(&r, "probe", "in=b.mkv count=yes");
    expect_ok(&r);
    assert_non_null(strstr(r.text, "\"format\":\"matroska,webm\""));
    assert_true(has_stream(r.text, "video", "mpeg4"));
    assert_true(has_stream(r.text, "audio", "aac"));
    assert_int_equal((int)stream_num(r.text, "video", "width"), 200);
    assert_int_equal((int)stream_num(r.text, "video", "frames"), 45);
    call(&r, "transcode", "in=clip.mp4 out=silent.mp4 height=60 audio=none crf=30 preset=ultrafast");
    expect_ok(&r);
    call(&r, "probe", "in=silent.mp4");
    expect_ok(&r);
    assert_null(strstr(r.text, "\"type\":\"audio\""));
    assert_int_equal((int)stream_num(r.text, "video", "width"), 80);
    assert_int_equal((int)stream_num(r.text, "video", "frames"), 45);
}

/* One string of blank-separated words (what a program may send), absolute
 * paths, no cwd=. */
static void one_string_of_words(void **st)
{
    (void)st;
    char args[512];
    int n = snprintf(args, sizeof args, "in=%s/clip.mp4  out=%s/str.mp4\theight=96\n", dir, dir);
    ember_result res;
    int rc = ember_call(C, ember_handler(C, "transcode"), args, (size_t)n, &res, 60 * EMBER_SECOND);
    if (rc) fail_msg("%s: %.*s", ember_strerror(rc), (int)res.len, (const char *)res.data);
    ember_result_release(C, &res);
    assert_true(exists("str.mp4"));
    /* a relative path needs the caller's directory */
    n = snprintf(args, sizeof args, "in=clip.mp4 out=%s/rel.mp4 height=96", dir);
    rc = ember_call(C, ember_handler(C, "transcode"), args, (size_t)n, &res, 60 * EMBER_SECOND);
    assert_int_equal(rc, -EMBER_EHANDLER);
    assert_int_equal(res.detail, EINVAL);
    assert_non_null(res.data);
    assert_non_null(memmem(res.data, res.len, "in=clip.mp4 is a relative path", 30));
    ember_result_release(C, &res);
    assert_false(exists("rel.mp4"));
}

static void bad_arguments_are_named(void **st)
{
    (void)st;
    static const struct {
        const char *handler, *words, *says;
    } cases[] = {
        { "transcode", "in=clip.mp4 out=x.mp4 height=120 fps=3", "unknown key fps= (transcode takes in= out=" },
        { "transcode", "in=clip.mp4 out=x.mp4 height=abc", "height=abc: not an integer" },
        { "transcode", "in=clip.mp4 out=x.mp4 height=0", "height=0: not an integer from 2" },
        { "transcode", "out=x.mp4 height=120", "in= is missing" },
        { "transcode", "in=clip.mp4 out=x.mp4", "height= or width= is needed" },
        { "transcode", "in=clip.mp4 out=x.mp4 height=120 loud", "'loud' is not KEY=VALUE" },
        { "transcode", "in=clip.mp4 out=x.mp4 height=120 audio=mp3", "audio=mp3: not one of auto|copy|aac|none" },
        { "transcode", "in=clip.mp4 out=x.mp4 height=120 codec=mpeg4 crf=20", "crf=20: the mpeg4 encoder has no" },
        { "transcode", "in=clip.mp4 out=x.mp4 height=121", "size 162x121 (height=121 width=(kept in proportion)): yuv420p needs even sides" },
        { "transcode", "in=clip.mp4 out=x.mp4 height=120 height=60", "height= is given twice" },
        { "transcode", "in=clip.mp4 out=x.mp4 height=", "height= needs a value" },
        { "transcode", "in=clip.mp4 out=x.nosuchformat height=120", "out=x.nosuchformat: no container" },
        { "thumbnails", "in=clip.mp4 out=th every=0", "every=0: not a number above 0" },
        { "thumbnails", "in=clip.mp4 out=th every=1 format=gif", "format=gif: not one of png|jpg" },
        { "probe", "in=clip.mp4 count=maybe", "count=maybe: not one of no|yes" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct res r;
        call(&r, cases[i].handler, "%s", cases[i].words);
        expect_fail(&r, EINVAL, cases[i].says);
        assert_int_equal(strncmp(r.text, cases[i].handler, strlen(cases[i].handler)), 0);
    }
    assert_false(exists("x.mp4"));
    assert_false(exists("th"));
    assert_int_equal(partials(""), 0);
    /* cwd= must be absolute */
    ember_result res;
    static const char rel[] = "cwd=here\0in=clip.mp4";
    assert_int_equal(ember_call(C, ember_handler(C, "probe"), rel, sizeof rel, &res, 10 * EMBER_SECOND),
                     -EMBER_EHANDLER);
    static const char says[] = "cwd=here: the caller's directory must be an absolute path";
    assert_non_null(memmem(res.data, res.len, says, sizeof says - 1));
    ember_result_release(C, &res);
}

static void missing_file(void **st)
{
    (void)st;
    struct res r;
    char want[128];
    snprintf(want, sizeof want, "cannot open %s/nope.mp4: No such file or directory", dir);
    call(&r, "transcode", "in=nope.mp4 out=never.mp4 height=120");
    expect_fail(&r, ENOENT, want);
    call(&r, "probe", "in=nope.mp4");
    expect_fail(&r, ENOENT, want);
    call(&r, "thumbnails", "in=nope.mp4 out=never every=1");
    expect_fail(&r, ENOENT, want);
    assert_false(exists("never.mp4"));
    assert_false(exists("never"));
    assert_int_equal(partials(""), 0);
}

static void corrupt_inputs(void **st)
{
    (void)st;
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(i * 7919 % 251);
    write_file("junk.mp4", junk, sizeof junk);
    /* the clip cut in half: its index (written last) is gone */
    static char clip[1 << 20];
    size_t n = read_file("clip.mp4", clip, sizeof clip);
    assert_true(n > 1000 && n < sizeof clip);
    write_file("cut.mp4", clip, n / 2);
    static const char *const bad[] = { "junk.mp4", "cut.mp4" };
    for (size_t i = 0; i < 2; i++) {
        struct res r;
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, bad[i]);
        call(&r, "transcode", "in=%s out=fromjunk.mp4 height=120", bad[i]);
        if (r.rc != -EMBER_EHANDLER || !strstr(r.text, path) || !strstr(r.text, "transcode: cannot "))
            fail_msg("%s: %s/%d: %s", bad[i], ember_strerror(r.rc), r.detail, r.text);
        call(&r, "thumbnails", "in=%s out=fromjunk every=1", bad[i]);
        assert_int_equal(r.rc, -EMBER_EHANDLER);
        assert_non_null(strstr(r.text, path));
        call(&r, "probe", "in=%s", bad[i]);
        assert_int_equal(r.rc, -EMBER_EHANDLER);
        assert_non_null(strstr(r.text, path));
    }
    assert_false(exists("fromjunk.mp4"));
    assert_false(exists("fromjunk"));
    assert_int_equal(partials(""), 0);
}

static void thumbnails_into_folders(void **st)
{
    (void)st;
    struct res r;
    call(&r, "thumbnails", "in=clip.mp4 out=thumbs/new every=0.5");
    expect_ok(&r);
    assert_int_equal((int)num(r.text, "frames"), 3); /* 0, 0.5 and 1 s of a 1.5 s clip */
    /* frames far from every picture's time and referred to by none are skipped */
    assert_true(num(r.text, "decoded") > 3 && num(r.text, "decoded") <= 45);
    assert_true(exists("thumbs/new/0001.png") && exists("thumbs/new/0003.png") && !exists("thumbs/new/0004.png"));
    assert_int_equal((long long)num(r.text, "bytes"),
                     file_size("thumbs/new/0001.png") + file_size("thumbs/new/0002.png") +
                         file_size("thumbs/new/0003.png"));
    char sig[8];
    assert_int_equal(read_file("thumbs/new/0002.png", sig, 8), 8);
    assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
    call(&r, "probe", "in=thumbs/new/0001.png");
    expect_ok(&r);
    assert_int_equal((int)stream_num(r.text, "video", "width"), 320);
    assert_int_equal((int)stream_num(r.text, "video", "height"), 240);
    assert_int_equal(partials("thumbs"), 0);
    /* into a folder that exists: its other files stay */
    assert_int_equal(mkdir(strcat(strcpy((char[128]){ 0 }, dir), "/have"), 0755), 0);
    write_file("have/keep.txt", "x", 1);
    call(&r, "thumbnails", "in=clip.mp4 out=have every=1 format=jpg height=60");
    expect_ok(&r);
    assert_int_equal((int)num(r.text, "frames"), 2);
    assert_int_equal((int)num(r.text, "width"), 80);
    assert_true(exists("have/keep.txt") && exists("have/0001.jpg") && exists("have/0002.jpg"));
    assert_int_equal(read_file("have/0001.jpg", sig, 2), 2);
    assert_memory_equal(sig, "\xff\xd8", 2);
    call(&r, "probe", "in=have/0002.jpg");
    expect_ok(&r);
    assert_int_equal((int)stream_num(r.text, "video", "height"), 60);
    assert_int_equal(partials("have"), 0);
}

/* Wait until the folder has a temporary (the handler is writing), at most
 * 20 s; false if none appeared. */
static bool await_partial(void)
{
    for (int i = 0; i < 20000; i++) {
        if (partials("")) return true;
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
    return false;
}

/* A slow transcode of a longer clip, cancelled while it writes, or past its
 * deadline: no output, no temporary once the runner is free again (the
 * runner is the pool's only one: the probe after it runs after it). */
static void cancel_and_deadline_leave_nothing(void **st)
{
    (void)st;
    struct res r;
    call(&r, "synth", "out=long.mp4 seconds=4 width=320 height=240");
    expect_ok(&r);
    char args[512];
    int n = snprintf(args, sizeof args, "cwd=%s%cin=long.mp4%cout=cancelled.mp4%cheight=240%cpreset=veryslow", dir,
                     0, 0, 0, 0);
    ember_call_id id;
    assert_int_equal(ember_submit(C, ember_handler(C, "transcode"), args, (size_t)n + 1, 60 * EMBER_SECOND, &id), 0);
    assert_true(await_partial());
    assert_int_equal(ember_cancel(C, id), 0);
    ember_result res;
    assert_int_equal(ember_wait(C, id, &res), -EMBER_ECANCELLED);
    ember_result_release(C, &res);
    call(&r, "probe", "in=long.mp4");
    expect_ok(&r);
    assert_false(exists("cancelled.mp4"));
    assert_int_equal(partials(""), 0);

    call_t(&r, "transcode", 300 * 1000000ll, "in=long.mp4 out=late.mp4 height=240 preset=veryslow");
    assert_int_equal(r.rc, -EMBER_ETIMEDOUT);
    call(&r, "probe", "in=long.mp4");
    expect_ok(&r);
    assert_false(exists("late.mp4"));
    assert_int_equal(partials(""), 0);
}

/* ---- setup ---- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **st)
{
    (void)st;
    struct ember_pool_config cfg;
    static char name[40];
    ember_pool_config_init(&cfg);
    snprintf(name, sizeof name, "tlibav-%d", (int)getpid());
    cfg.name = name;
    cfg.min = cfg.max = 1;
    cfg.queue_capacity = 16;
    cfg.max_payload = 1 << 20;
    cfg.runner_boot = boot;
    int rc = ember_pool_start(&cfg, &pool);
    if (rc) fail_msg("pool start: %s: %s", ember_strerror(rc), ember_last_error());
    assert_int_equal(ember_pool_wait_ready(pool, 1, 30 * EMBER_SECOND), 0);
    assert_int_equal(ember_attach(name, &C), 0);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    ember_detach(C);
    ember_pool_stop(pool, EMBER_SECOND);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !argv[1][0]) {
        printf("skipped: the libav plugin was not built (configured with -Dlibav=disabled, or FFmpeg's "
               "development packages are missing: apt-get install -y libavformat-dev libavcodec-dev "
               "libswscale-dev libswresample-dev libavutil-dev, then reconfigure)\n");
        return 77;
    }
    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
        return 1;
    }
    const ember_plugin *(*entry)(void) = (const ember_plugin *(*)(void))dlsym(so, EMBER_PLUGIN_ENTRY_NAME);
    if (!entry || !(P = entry()) || P->abi != EMBER_PLUGIN_ABI || P->nhandlers > MAXH) {
        fprintf(stderr, "%s: not a plugin of this ABI\n", argv[1]);
        return 1;
    }
    for (size_t i = 0; i < P->nhandlers; i++) {
        if (!P->handlers[i].usage || !P->handlers[i].description) {
            fprintf(stderr, "%s: handler %s has no usage or description\n", argv[1], P->handlers[i].name);
            return 1;
        }
        if (ember_handler_register(P->handlers[i].name, wraps[i]) != 0) {
            fprintf(stderr, "cannot register %s: %s\n", P->handlers[i].name, ember_last_error());
            return 1;
        }
    }
    snprintf(dir, sizeof dir, "/tmp/ember-libav-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(synth_and_probe),
        cmocka_unit_test(transcode_copies_audio),
        cmocka_unit_test(transcode_other_codecs_and_containers),
        cmocka_unit_test(one_string_of_words),
        cmocka_unit_test(bad_arguments_are_named),
        cmocka_unit_test(missing_file),
        cmocka_unit_test(corrupt_inputs),
        cmocka_unit_test(thumbnails_into_folders),
        cmocka_unit_test(cancel_and_deadline_leave_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
