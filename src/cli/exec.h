/* cli/exec.h - the exec handler's request and result, as they travel in a
 * call.
 *
 * A request says what to run and how: an argv (run without a shell) or a
 * shell string, the caller's working directory and environment, stdin (bytes
 * or a file), limits on the captured output, the kill grace, and the output
 * files to publish atomically. The result says how it ended (exit status,
 * signal, or why it could not start), its captured stdout and stderr (with
 * the byte counts the command really wrote, so truncation shows), its CPU
 * time, peak RSS and pid.
 *
 * Both are encoded as a sequence of fields, each a tag byte, a 32-bit
 * little-endian length and that many bytes; a decoder refuses unknown tags,
 * truncated fields and missing required ones with a message. */
#ifndef EMBER_CLI_EXEC_H
#define EMBER_CLI_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An atomic output: the command writes TMP (in FINAL's directory); on exit
 * status 0 the handler renames TMP to FINAL (fsync'd), on anything else it
 * removes TMP. */
struct exec_output {
    const char *tmp, *final;
};

struct exec_req {
    const char *const *argv;  /* argv[0] is the program (searched in the job's PATH
                                 unless it holds a '/'); with SHELL, argv[0] is the
                                 shell command string and argv[1..] its $0, $1... */
    size_t argc;
    bool shell;               /* run argv[0] with SHELL_PATH -c */
    const char *shell_path;   /* NULL: /bin/sh */
    const char *cwd;          /* NULL: the runner's working directory */
    const char *const *env;   /* "NAME=VALUE"; used only when ENV_SET */
    size_t envc;
    bool env_set;             /* false: the runner's own environment */
    const char *stdin_file;   /* stdin from this file (opened by the runner), or */
    const void *stdin_data;   /* these bytes; neither: /dev/null */
    size_t stdin_len;
    uint64_t out_limit;       /* stdout bytes kept (0: the default, 16 MiB) */
    uint64_t err_limit;       /* stderr bytes kept (0: the default, 1 MiB) */
    int64_t kill_grace_ns;    /* SIGTERM to SIGKILL on cancel (0: the default, 2 s) */
    int64_t run_limit_ns;     /* the command's own time limit, from its start (0: none):
                                 past it, it is stopped as a cancel stops it and the
                                 result says EXEC_TIMEOUT, with what it wrote (unlike
                                 the call's deadline, queueing does not count) */
    const struct exec_output *outputs;
    size_t noutputs;
};
/* (A decoded request's argv and env arrays have a NULL after their last
 * entry, as execve() takes them.) */

/* How a job ended */
enum exec_end {
    EXEC_EXITED = 1,   /* code: its exit status */
    EXEC_SIGNALED = 2, /* code: the signal */
    EXEC_NOTFOUND = 3, /* code: ENOENT; msg names the program and the PATH searched */
    EXEC_NOEXEC = 4,   /* code: the errno (EACCES, ENOEXEC...); msg names the path */
    EXEC_FAILED = 5,   /* could not start (cwd, stdin file, fork...): code the errno, msg what */
    EXEC_TIMEOUT = 6,  /* stopped at its run_limit_ns: code the signal that ended it, or its
                          exit status if it exited on its own by then (status 124) */
};

struct exec_res {
    int end;                  /* EXEC_* */
    int code;
    int pid;                  /* the command's pid (0: never started) */
    int runner_pid;           /* the runner that ran it (0: not said) */
    uint64_t utime_ns, stime_ns; /* the command's CPU time (its waited-for children too) */
    uint64_t maxrss_bytes;    /* its peak resident memory */
    uint64_t wall_ns;         /* from its start to its end, as the runner measured */
    const char *out;          /* captured stdout (not NUL-terminated) */
    size_t out_len;
    uint64_t out_total;       /* bytes it wrote there: > out_len means truncated */
    const char *err;          /* captured stderr */
    size_t err_len;
    uint64_t err_total;
    const char *msg;          /* NUL-terminated; "" unless it could not start, or an
                                 output could not be published */
};

/* Encode REQ into a malloc'd buffer: 0 with *BUF (free it) and *LEN set,
 * or -ENOMEM, or -EINVAL (no argv) */
int exec_req_encode(const struct exec_req *req, void **buf, size_t *len);
/* Decode BUF[0..LEN) into REQ, whose pointers point into BUF or into
 * *STORE, a malloc'd block the caller frees (NULL when none was needed).
 * 0, or -EINVAL with a message in ERR. */
int exec_req_decode(const void *buf, size_t len, struct exec_req *req, void **store, char *err,
                    size_t errlen);
/* The size of RES encoded, and RES encoded into DST (that many bytes): the
 * exec handler reserves the room in its result and writes it in place. */
size_t exec_res_size(const struct exec_res *res);
void exec_res_write(const struct exec_res *res, void *dst);
/* Decode a result; RES's pointers point into BUF. 0 or -EINVAL. */
int exec_res_decode(const void *buf, size_t len, struct exec_res *res);
/* The job's status the way a shell gives it: the exit status, 128 + the
 * signal, 127 (not found), 126 (not executable, could not start), 124 (its
 * run limit passed). */
int exec_res_status(const struct exec_res *res);

#endif
