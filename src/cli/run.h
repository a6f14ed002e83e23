/* cli/run.h - the front end of `ember run`: GNU parallel's command line, as
 * pure code (no processes), shared by the execution engine (run.c) and the
 * tests.
 *
 *   run_parse      the options, the command template and the input sources
 *   run_input_*    the jobs' arguments, one job at a time, from the sources
 *                  (their product, linked sources zipped, -n, --colsep, -0, -d)
 *   run_compose    a job's command line as GNU parallel composes it for the
 *                  shell: replacement strings, quoting, -q, {out}
 *   run_split_simple  a command line's words when no shell is needed to run it
 *   run_joblog_*   --joblog's file in GNU parallel's format, and --resume from it
 *
 * Usage errors are GNU parallel's exit status, 255, with a message naming the
 * bad option or value. */
#ifndef EMBER_CLI_RUN_H
#define EMBER_CLI_RUN_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* GNU parallel's exit status for anything but failed jobs (usage errors too) */
#define RUN_EXIT_ERROR 255

/* --halt WHEN,WHAT=N or N%: stop the batch once that many jobs (or that
 * share of all jobs) failed / succeeded / finished. NOW kills the running
 * jobs, SOON lets them finish but starts no more. */
enum run_halt_when { RUN_HALT_NEVER = 0, RUN_HALT_SOON, RUN_HALT_NOW };
enum run_halt_on { RUN_HALT_FAIL = 0, RUN_HALT_SUCCESS, RUN_HALT_DONE };
struct run_halt {
    enum run_halt_when when;    /* NEVER: the default, and --halt never / --halt 0 */
    enum run_halt_on on;
    uint64_t count;             /* halt at COUNT jobs, unless PERCENT */
    bool percent;               /* COUNT is a percentage (1..100) of all jobs */
};

/* An input source: `::: ARGS` (RUN_SRC_ARGS), `:::: FILE` or `-a FILE`
 * (RUN_SRC_FILE, "-" for stdin), or stdin when no source is given
 * (RUN_SRC_STDIN). LINKED (`:::+`, `::::+`): zipped with the source before
 * it instead of multiplied. */
enum run_src_kind { RUN_SRC_ARGS, RUN_SRC_FILE, RUN_SRC_STDIN };
struct run_source {
    enum run_src_kind kind;
    char **args;                /* ARGS: pointers into argv */
    size_t nargs;
    const char *path;           /* FILE */
    bool linked;
};

struct run_opts {
    /* where and how jobs run (the engine's) */
    const char *pool;           /* --pool NAME, or NULL: a pool of its own */
    const char *redis, *stream; /* --redis URL --stream KEY: the jobs go through that
                                   Redis stream to the hosts' bridges (NULL: local) */
    unsigned jobs;              /* -j N, N%, +N, -N resolved against the online CPUs (>= 1) */
    const char *handler;        /* --handler NAME, or NULL: exec */
    const char *plugins[16];    /* --plugin NAME|PATH: loaded by the batch's own pool */
    size_t nplugins;
    bool shell;                 /* --shell: always run the line with the shell */
    int64_t timeout_ns;         /* --timeout (a bare number is seconds); 0: none */
    unsigned retries;           /* --retries N: a failing job is tried up to N times in
                                   all (0 and 1: once) */
    struct run_halt halt;       /* --halt */
    int64_t delay_ns;           /* --delay (a bare number is seconds); 0: none */
    /* output */
    bool keep_order;            /* -k, --keep-order */
    bool tag;                   /* --tag (or --tagstring) */
    const char *tagstring;      /* --tagstring STR, or NULL: the arguments */
    bool line_buffer;           /* --line-buffer */
    bool dry_run;               /* --dry-run */
    bool bar, eta, progress;    /* --bar, --eta, --progress */
    const char *joblog;         /* --joblog FILE */
    bool resume, resume_failed; /* --resume, --resume-failed (both need --joblog) */
    const char *receipts;       /* --receipts FILE */
    const char *output;         /* --output TEMPLATE: the job's output file (see run_output_name) */
    /* composition */
    bool quote;                 /* -q, --quote: the template's words are quoted too */
    bool uses_out;              /* the template has {out} (then OUTPUT is set) */
    /* input */
    const char *colsep;         /* --colsep REGEX, or NULL */
    regex_t colsep_re;          /* compiled when COLSEP */
    unsigned max_args;          /* -n N, --max-args N (0: one argument per job) */
    char delim;                 /* '\n'; '\0' with -0/--null; -d DELIM */
    char **cmd;                 /* the command template's words (pointers into argv) */
    size_t ncmd;
    struct run_source *sources; /* in order; at least one (stdin when none given) */
    size_t nsources;
    bool help;                  /* --help: print run_help, exit 0 (nothing else is set) */
};

/* Parse `ember run`'s ARGV (ARGV[0] is the first word after "run"): options,
 * then the command template, then input sources. 0 (with O->help set when
 * --help was asked: nothing else is then set), or RUN_EXIT_ERROR with the
 * message printed on stderr (O is then freed). ARGV must outlive O. */
int run_parse(int argc, char **argv, struct run_opts *o);
void run_opts_free(struct run_opts *o);
/* `ember run --help`'s text */
void run_help(FILE *f);

/* One job's arguments: a flat list of values. With several sources, each
 * source's value in order; with -n N, N records (the last job may have
 * fewer); with --colsep, the columns. {1}, {2}... number them from 1. */
struct run_args {
    char **v;                   /* NUL-terminated strings */
    size_t n;
    uint64_t seq;               /* the job's number, {#}: 1, 2, ... in input order */
};
struct run_input;
/* Open O's sources. Stdin (and the first source) are read as jobs are taken,
 * so the engine can start jobs before stdin ends; the other sources are read
 * whole here. 0, or -1 with the error printed (a file that cannot be read). */
int run_input_open(const struct run_opts *o, struct run_input **in);
/* The next job's arguments into ARGS (free them with run_args_free): 1; 0 at
 * the end of the input; -1 with the error printed (a read error). */
int run_input_next(struct run_input *in, struct run_args *args);
void run_args_free(struct run_args *args);
void run_input_close(struct run_input *in);

/* The job's command line as GNU parallel composes it for the shell: the
 * template's replacement strings ({} {.} {/} {//} {/.} {#} {%}, {N} {N.}
 * {N/} {N//} {N/.}, {out}) replaced by the values quoted for the shell; with
 * no replacement string, the arguments appended. SEQ is {#}, SLOT {%},
 * OUT_TMP {out} (NULL unless O->uses_out). malloc'd, or NULL when out of
 * memory. */
char *run_compose(const struct run_opts *o, const struct run_args *args, uint64_t seq,
                  unsigned slot, const char *out_tmp);
/* The same words unquoted, for a handler (--handler) or a command that needs
 * no shell: each template word with its replacement strings applied (the
 * arguments appended as words of their own when the template has none).
 * NULL-terminated, malloc'd (free with run_words_free), *N words; NULL when
 * out of memory. */
char **run_compose_words(const struct run_opts *o, const struct run_args *args, uint64_t seq,
                         unsigned slot, const char *out_tmp, size_t *n);
void run_words_free(char **words);
/* --output's TEMPLATE with its replacement strings applied, unquoted: the
 * job's output file's name. malloc'd; NULL without --output or out of memory. */
char *run_output_name(const struct run_opts *o, const struct run_args *args, uint64_t seq,
                      unsigned slot);
/* --tag's prefix of each output line, as GNU parallel prints it: the
 * arguments joined by spaces (or --tagstring with its replacement strings
 * applied, unquoted), then a TAB. malloc'd; NULL without --tag. */
char *run_tag(const struct run_opts *o, const struct run_args *args, uint64_t seq, unsigned slot);
/* VALUE quoted for the shell as GNU parallel quotes it: as it is when it has
 * only characters the shell takes literally, else in single quotes (a single
 * quote as '"'"'), '' when empty. malloc'd. */
char *run_shell_quote(const char *value);

/* When LINE is a plain command (words with single quotes, double quotes and
 * backslashes only; no expansion, redirection, operator, comment, glob,
 * assignment, nor a shell builtin or keyword as its first word), its words
 * unquoted: NULL-terminated, malloc'd (free with run_words_free), *ARGC
 * words. NULL: LINE needs the shell (or out of memory); run it with
 * /bin/sh -c. */
char **run_split_simple(const char *line, size_t *argc);

/* --dry-run: print each job's command line (after its --tag prefix) on OUT,
 * skipping what --resume/--resume-failed skip; {out} shows the output's
 * final name. 0, or RUN_EXIT_ERROR with the error printed. */
int run_dry_run(const struct run_opts *o, FILE *out);
/* The {%} a dry run shows for job SEQ: 1 + (SEQ - 1) % jobs (GNU parallel's
 * depends on timing when -j > 1; with -j 1 both are 1). */
unsigned run_dry_slot(const struct run_opts *o, uint64_t seq);

/* --joblog: GNU parallel's columns, tab-separated */
struct run_joblog_entry {
    uint64_t seq;
    const char *host;           /* ":" for this machine (parallel's) */
    double start;               /* Starttime: seconds since the epoch */
    double runtime;             /* JobRuntime: seconds */
    uint64_t send, receive;     /* bytes to the job's stdin, from its stdout */
    int exitval;                /* the exit status (0 when killed by a signal) */
    int signal;                 /* the signal that killed it, or 0 */
    const char *command;        /* the composed command line (newlines kept as they are) */
};
/* The header line "Seq\tHost\t...\tCommand\n". 0, or -errno. */
int run_joblog_header(FILE *f);
/* One job's line. 0, or -errno. */
int run_joblog_write(FILE *f, const struct run_joblog_entry *e);

/* A set of job numbers (--resume's jobs to skip) */
struct run_seqset {
    uint64_t *v;                /* sorted, no duplicates once loaded */
    size_t n, cap;
};
/* Add the jobs of the joblog at PATH to SKIP: every job in it, or with
 * ONLY_SUCCEEDED (--resume-failed) only those with exit status 0 and no
 * signal, so the failed ones run again. A missing file adds nothing. 0, or
 * -1 with the error printed (unreadable, or a malformed line: its number). */
int run_joblog_load(const char *path, bool only_succeeded, struct run_seqset *skip);
bool run_seqset_has(const struct run_seqset *s, uint64_t seq);
void run_seqset_free(struct run_seqset *s);

#endif
