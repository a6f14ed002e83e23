/* tests/fuzz/fuzz_run_args.c - `ember run`'s command line
 * (src/cli/run_args.c): its options, the command template, the input
 * sources (`:::`, `::::`, `:::+`, `::::+`, -a), and each job's command
 * composed from replacement strings ({} {.} {/} {//} {/.} {#} {%}, {N} and
 * its forms, {out}) and --colsep's columns.
 *
 * Feeds: the input up to its first pair of NULs is the argument vector
 * (words separated by a NUL); what follows it is the content of every
 * input file and of stdin (a memfd, read through /proc/self/fd: nothing is
 * left behind, nothing waits on a terminal). The options are parsed as
 * `ember run` parses them; when they parse, the input is opened and up to
 * 32 jobs are taken from it, and each is composed for the shell, as words,
 * as --output's name and as --tag's prefix.
 *
 * Asserts: no crash, leak or undefined behaviour on any command line;
 * run_parse returns 0 or RUN_EXIT_ERROR (parallel's usage status), and on
 * 0 leaves at least one source and one job slot; every composition of a
 * job that was taken exists; and every argument, quoted for the shell,
 * reads back as itself through run_split_simple whenever that takes the
 * line without a shell. Usage messages go to stderr (tools/fuzz closes
 * it). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "cli.h"
#include "run.h"

const char *cli_cmd = "ember run";

/* options.c (parse_uint, parse_duration) reports through main.c's usage_error */
int usage_error(const char *fmt, ...)
{
    (void)fmt;
    return 2;
}

static int memfd = -1;
static char memfd_path[64];

/* Quoting VALUE and splitting it again gives VALUE (or needs a shell). */
static void check_quote(const char *value)
{
    char *q = run_shell_quote(value);
    assert(q);
    size_t n = 0;
    char **w = run_split_simple(q, &n);
    if (w) {
        assert(n == 1 && strcmp(w[0], value) == 0);
        run_words_free(w);
    }
    free(q);
}

static void jobs(struct run_opts *o)
{
    struct run_input *in = NULL;
    if (run_input_open(o, &in)) return;
    struct run_args a;
    for (unsigned k = 0; k < 32 && run_input_next(in, &a) == 1; k++) {
        for (size_t i = 0; i < a.n; i++) check_quote(a.v[i]);
        char *line = run_compose(o, &a, a.seq, 1 + k % 4, o->uses_out ? "out.tmp" : NULL);
        assert(line);
        free(line);
        size_t n = 0;
        char **w = run_compose_words(o, &a, a.seq, 1 + k % 4, o->uses_out ? "out.tmp" : NULL, &n);
        assert(w);
        run_words_free(w);
        free(run_output_name(o, &a, a.seq, 1));
        char *tag = run_tag(o, &a, a.seq, 1);
        assert(!o->tag == !tag);
        free(tag);
        run_args_free(&a);
    }
    run_input_close(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    if (memfd < 0) {
        memfd = memfd_create("fuzz_run_args", 0);
        assert(memfd >= 0);
        snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    }
    /* the words, up to the first pair of NULs; the files' content after it */
    size_t end = 0;
    while (end + 1 < n && !(data[end] == 0 && data[end + 1] == 0)) end++;
    if (end + 1 >= n) end = n;
    char *buf = malloc(end + 1);
    memcpy(buf, data, end);
    buf[end] = 0;
    size_t nw = 1;
    for (size_t i = 0; i < end; i++) nw += buf[i] == 0;
    char **argv = calloc(nw + 1, sizeof *argv);
    int argc = 0;
    for (size_t i = 0; end && i <= end; i += strlen(buf + i) + 1) argv[argc++] = buf + i;
    argv[argc] = NULL;
    const uint8_t *file = end + 2 <= n ? data + end + 2 : data + n;
    size_t flen = (size_t)(data + n - file);
    if (ftruncate(memfd, 0) || pwrite(memfd, file, flen, 0) != (ssize_t)flen) abort();

    struct run_opts o;
    int rc = run_parse(argc, argv, &o);
    assert(rc == 0 || rc == RUN_EXIT_ERROR);
    if (rc == 0) {
        if (!o.help) {
            assert(o.nsources >= 1 && o.jobs >= 1);
            /* every file (and stdin) is the memfd, read from its start */
            for (size_t i = 0; i < o.nsources; i++)
                if (o.sources[i].kind != RUN_SRC_ARGS) {
                    o.sources[i].kind = RUN_SRC_FILE;
                    o.sources[i].path = memfd_path;
                }
            jobs(&o);
        }
        run_opts_free(&o);
    }
    free(argv);
    free(buf);
    return 0;
}
