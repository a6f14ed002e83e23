/* plugins/libav/libav.h - what the libav plugin's files share: a call's
 * arguments (key=value words), its report (the JSON result or the error
 * message), outputs published atomically, and libav's error text.
 *
 * Every handler of the plugin runs the same way: parse the words against
 * its table of keys (a bad key or value fails the call with EINVAL and a
 * message naming it), do the work, checking ember_job_cancelled() between
 * frames, and write either its JSON (one line) or "HANDLER: message" (one
 * line) as the call's result. The return value is 0 or an errno: EINVAL (an
 * argument), ENOENT/EACCES/... (the system's, on a file), ECANCELED (the
 * caller gave up or the deadline passed), ENOMEM, EIO (libav refused: the
 * message carries its reason). */
#ifndef EMBER_PLUGIN_LIBAV_H
#define EMBER_PLUGIN_LIBAV_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ember/plugin.h>

/* ---- arguments ---- */

enum lav_kind {
    LAV_PATH,     /* a file name, relative to cwd= unless absolute */
    LAV_INT,      /* a decimal integer in [min, max] */
    LAV_NUM,      /* a decimal number in (min, max] (seconds...) */
    LAV_WORD,     /* one of the '|'-separated words of CHOICES */
    LAV_TEXT,     /* any non-empty text */
};

/* One key a handler takes. */
struct lav_key {
    const char *name;
    enum lav_kind kind;
    bool required;
    double min, max;          /* LAV_INT, LAV_NUM */
    const char *choices;      /* LAV_WORD: "png|jpg" */
};

#define LAV_MAXKEYS 16

/* The parsed words: VALUE[i] for KEYS[i] (NULL: not given), and the
 * caller's directory. Values point into BUF (a copy of the call's bytes). */
struct lav_args {
    const struct lav_key *keys;
    size_t nkeys;
    const char *value[LAV_MAXKEYS];
    const char *cwd;          /* cwd=, absolute, or NULL */
    char *buf;
};

/* ---- the call ---- */

struct lav_call {
    const char *handler;      /* "transcode" */
    const ember_job *job;
    struct lav_args args;
    char err[1024];           /* the failure's message, "" while none */
    char *json;               /* the result being built */
    size_t len, cap;
    bool oom;
    uint64_t cpu0_ns;         /* this thread's CPU time at the call's start */
};

/* Begin CALL of HANDLER with KEYS. */
void lav_call_init(struct lav_call *call, const char *handler, const ember_job *job,
                   const struct lav_key *keys, size_t nkeys);
/* Write the call's outcome (the JSON when RC is 0, else the message) to OUT
 * and free what the call holds. Returns RC, or ENOMEM/E2BIG when the
 * result could not be written. */
int lav_call_end(struct lav_call *call, int rc, ember_out *out);

/* Record a failure (the first one wins) and return CODE. */
int lav_fail(struct lav_call *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A libav failure AVERR while doing WHAT (on FILE, NULL: none): the
 * message has libav's reason and its last logged error; returns the errno
 * (AVERROR(e) gives e, libav's own codes EIO). */
int lav_fail_av(struct lav_call *call, int averr, const char *what, const char *file);
/* ECANCELED with "cancelled" or "deadline passed", when the job is
 * cancelled; 0 otherwise. Between frames. */
int lav_check_cancel(struct lav_call *call);

/* Split ARGS/LEN into words and match them against the call's keys.
 * Returns 0, EINVAL (message set), ENOMEM. */
int lav_args_parse(struct lav_call *call, const void *args, size_t len);
/* The value of KEY, or NULL when not given. */
const char *lav_arg(const struct lav_call *call, const char *key);
/* KEY as a number (given and valid: parse checked it), or DEF. */
long lav_arg_int(const struct lav_call *call, const char *key, long def);
double lav_arg_num(const struct lav_call *call, const char *key, double def);
/* KEY's path made absolute against cwd= into BUF (PATH_MAX). 0 or EINVAL. */
int lav_arg_path(struct lav_call *call, const char *key, char *buf);

/* JSON pieces appended to the result. */
void lav_json(struct lav_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lav_json_str(struct lav_call *call, const char *s);     /* a quoted, escaped string */

/* ---- outputs published whole ---- */

/* A file written under a temporary name beside its final one. */
struct lav_output {
    char final[PATH_MAX];
    char tmp[PATH_MAX];
    bool dir;                 /* a directory of files (thumbnails) */
    bool into;                /* DIR: FINAL existed; TMP is inside it, and its files
                                 are renamed into FINAL one by one */
};

/* Name OUT's temporary for FINAL (".NAME.ember-PID-SEQ.part" in its
 * directory), making that directory (and its parents) if missing.
 * Returns 0 or an errno (message set). */
int lav_output_prepare(struct lav_call *call, struct lav_output *out, const char *final);
/* The same for a directory FINAL: a temporary directory made beside it
 * when FINAL does not exist (renamed whole at the end), or inside it when it
 * does (its files renamed into FINAL at the end). */
int lav_output_prepare_dir(struct lav_call *call, struct lav_output *out, const char *final);
/* fsync the temporary, rename it to its final name, fsync the directory.
 * Returns 0 or an errno (message set; the temporary is removed). */
int lav_output_publish(struct lav_call *call, struct lav_output *out);
/* Remove the temporary (a file, or a directory and the files in it). */
void lav_output_discard(struct lav_output *out);
/* fsync PATH (a file or a directory): 0 or -errno. */
int lav_fsync_path(const char *path, bool dir);
/* mkdir -p PATH: 0 or an errno. */
int lav_mkdirs(const char *path);
/* Size of the file PATH in bytes (0 when it cannot be read). */
uint64_t lav_file_size(const char *path);

/* ---- libav ---- */

/* Once per process: libav's log routed so that a call's failure message can
 * carry the last error libav logged on that thread. */
void lav_log_setup(void);
/* The last error libav logged on this thread since lav_log_clear(). */
const char *lav_log_last(void);
void lav_log_clear(void);

/* Open the media file PATH (key KEY of the call, for messages) and read its
 * streams' parameters. Returns 0 with *IC set (avformat_close_input() it),
 * or an errno (message set: "cannot open in=PATH: reason"). */
struct AVFormatContext;
struct AVCodecContext;
int lav_open_input(struct lav_call *call, const char *path, struct AVFormatContext **ic);
/* Open a decoder for stream INDEX of IC with THREADS threads (its packets'
 * time base set). Returns 0 with *DEC set, or an errno (message set). */
int lav_open_decoder(struct lav_call *call, struct AVFormatContext *ic, int index, int threads,
                     struct AVCodecContext **dec);

/* The handlers. */
int lav_transcode(void *ctx, const void *args, size_t len, ember_out *out, const ember_job *job);
int lav_thumbnails(void *ctx, const void *args, size_t len, ember_out *out, const ember_job *job);
int lav_probe(void *ctx, const void *args, size_t len, ember_out *out, const ember_job *job);
int lav_synth(void *ctx, const void *args, size_t len, ember_out *out, const ember_job *job);

#endif
