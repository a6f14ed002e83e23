/* tests/test_run_args.c - ember run's front end: options, input sources,
 * composition and quoting, the shell-free split, the joblog.
 *
 * What GNU parallel itself does with the same invocations is checked by
 * test_run_parallel.sh; these pin the pieces one by one, including what
 * parallel cannot show (the errors' messages, streaming stdin, the words a
 * handler gets, which lines may skip the shell). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h" /* before cmocka.h, whose fail() macro would rename cli.h's fail */
#include "run.h"
#include <cmocka.h>

const char *cli_cmd = "ember run";

/* options.c's cli_parse_args reports through main.c's usage_error */
int usage_error(const char *fmt, ...)
{
    (void)fmt;
    return 2;
}

#define ARGV(...) ((char *[]){ __VA_ARGS__, NULL })
#define ARGC(v) ((int)(sizeof(v) / sizeof(v)[0]) - 1)
/* Parse these arguments into O (they live as long as the enclosing block) */
#define PARSE(o, ...) parse_ok(ARGC(ARGV(__VA_ARGS__)), ARGV(__VA_ARGS__), o)
#define PARSE_ERR(want, ...) parse_err(ARGC(ARGV(__VA_ARGS__)), ARGV(__VA_ARGS__), want)
#define WRITE(name, text) write_file(name, text, sizeof(text) - 1)

/* ---- stderr captured ---- */

static FILE *cap;
static int saved_err = -1;
static char errbuf[8192];

static void capture(void)
{
    fflush(stderr);
    cap = tmpfile();
    assert_non_null(cap);
    saved_err = dup(2);
    assert_true(dup2(fileno(cap), 2) >= 0);
}

static const char *captured(void)
{
    fflush(stderr);
    dup2(saved_err, 2);
    close(saved_err);
    rewind(cap);
    size_t n = fread(errbuf, 1, sizeof errbuf - 1, cap);
    errbuf[n] = 0;
    fclose(cap);
    return errbuf;
}

/* ---- helpers ---- */

/* Parse ARGV; fails the test on an error */
static void parse_ok(int argc, char **argv, struct run_opts *o)
{
    capture();
    int rc = run_parse(argc, argv, o);
    const char *err = captured();
    if (rc) fail_msg("run_parse: %d: %s", rc, err);
}

/* Parse ARGV, which is wrong: exit status 255 and a message holding WANT */
static void parse_err(int argc, char **argv, const char *want)
{
    struct run_opts o;
    capture();
    int rc = run_parse(argc, argv, &o);
    const char *err = captured();
    assert_int_equal(rc, RUN_EXIT_ERROR);
    if (!strstr(err, want)) fail_msg("message '%s' lacks '%s'", err, want);
    assert_non_null(strstr(err, "ember run: "));
}

/* Every job's command line (seq as {#}, slot 1, {out} the output name),
 * joined with '\n'; stdin is STDIN_TEXT (NULL: empty) */
static char *jobs_of(const struct run_opts *o, const char *stdin_text, size_t len)
{
    FILE *old = stdin;
    stdin = stdin_text ? fmemopen((void *)stdin_text, len, "r") : fopen("/dev/null", "r");
    assert_non_null(stdin);
    struct run_input *in;
    assert_int_equal(run_input_open(o, &in), 0);
    char *all = NULL;
    size_t alllen = 0;
    FILE *out = open_memstream(&all, &alllen);
    struct run_args a;
    int rc;
    bool first = true;
    while ((rc = run_input_next(in, &a)) == 1) {
        char *name = run_output_name(o, &a, a.seq, 1);
        char *line = run_compose(o, &a, a.seq, 1, name);
        assert_non_null(line);
        fprintf(out, "%s%s", first ? "" : "\n", line);
        first = false;
        free(line);
        free(name);
        run_args_free(&a);
    }
    assert_int_equal(rc, 0);
    run_input_close(in);
    fclose(stdin);
    stdin = old;
    fclose(out);
    return all;
}

#define ALLTEXT(o, text) jobs_of(o, text, sizeof(text) - 1)

/* The jobs of `ember run ARGV...` with no stdin equal WANT */
#define EXPECT_JOBS(want, ...)                                                                 \
    do {                                                                                       \
        char **argv_ = ARGV(__VA_ARGS__);                                                      \
        struct run_opts o_;                                                                    \
        parse_ok(ARGC(ARGV(__VA_ARGS__)), argv_, &o_);                                         \
        char *got_ = jobs_of(&o_, NULL, 0);                                                    \
        assert_string_equal(got_, want);                                                       \
        free(got_);                                                                            \
        run_opts_free(&o_);                                                                    \
    } while (0)

/* ---- quoting ---- */

static void test_quote(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        { "plain", "plain" }, { "a-b_c.d/e+f", "a-b_c.d/e+f" }, { "A9", "A9" },
        { "a b", "'a b'" }, { "it's", "'it'\"'\"'s'" }, { "'", "\"'\"" }, { "''", "\"'\"''\"'\"" },
        { "'a", "\"'\"'a'" }, { "a'", "'a'\"'\"" }, { "$x", "'$x'" }, { "a*", "'a*'" },
        { "", "''" }, { "a\"b", "'a\"b'" }, { "x\ny", "'x\ny'" }, { "~", "'~'" },
        { "a\\b", "'a\\b'" }, { "a,b", "'a,b'" }, { "a:b", "'a:b'" }, { "a=b", "'a=b'" },
        { "a@b", "'a@b'" }, { "a%b", "'a%b'" }, { "\xc3\xa9", "'\xc3\xa9'" },
        { "`x`", "'`x`'" }, { "a;b", "'a;b'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *q = run_shell_quote(cases[i][0]);
        assert_string_equal(q, cases[i][1]);
        free(q);
    }
}

/* ---- replacement strings ---- */

static void test_replacement_strings(void **state)
{
    (void)state;
    EXPECT_JOBS("echo /a/b.c/d.e.f /a/b.c/d.e d.e.f /a/b.c d.e 1 1\n"
                "echo 's p/x y.z' 's p/x y' 'x y.z' 's p' 'x y' 2 1",
                "echo", "{}", "{.}", "{/}", "{//}", "{/.}", "{#}", "{%}", ":::", "/a/b.c/d.e.f",
                "s p/x y.z");
    /* the edges: no extension past a slash, dirname of a bare name, trailing slash */
    EXPECT_JOBS("echo .bashrc '' .bashrc . ''\n"
                "echo a/.b a/ .b a ''\n"
                "echo dir/ dir/ '' . ''\n"
                "echo / / '' / ''\n"
                "echo a//b a//b b a b\n"
                "echo .. . .. . .\n"
                "echo a.tar.gz a.tar a.tar.gz . a.tar",
                "echo", "{}", "{.}", "{/}", "{//}", "{/.}", ":::", ".bashrc", "a/.b", "dir/", "/",
                "a//b", "..", "a.tar.gz");
    /* inside a word, replaced in place, quoted in place */
    EXPECT_JOBS("echo ['a b.c'] x'a b'y", "echo", "[{}]", "x{.}y", ":::", "a b.c");
    /* the template's quotes are the shell's text: a value inside them is quoted all the same */
    EXPECT_JOBS("echo ''a b.c''1", "echo", "'{/}'{#}", ":::", "a b.c");
    /* not replacement strings: left as they are */
    EXPECT_JOBS("echo {foo} {1x} { } {0} a", "echo", "{foo}", "{1x}", "{ }", "{0}", "{}", ":::",
                "a");
    /* {#} alone takes the arguments' place (they are not appended) */
    EXPECT_JOBS("echo 1\necho 2", "echo", "{#}", ":::", "a", "b");
}

static void test_positional(void **state)
{
    (void)state;
    EXPECT_JOBS("echo x a/b.c a/b z.w y/z.w a z q/r", "echo", "{2}", "{1}", "{1.}", "{3/}",
                "{3}", "{1//}", "{3/.}", "{-1}", ":::", "a/b.c", ":::+", "x", ":::+", "y/z.w",
                ":::", "q/r");
    /* past the values: nothing at all, not '' */
    EXPECT_JOBS("echo a b\necho c ", "-n", "2", "echo", "{1}", "{2}", ":::", "a", "b", "c");
}

static void test_quoting_in_jobs(void **state)
{
    (void)state;
    EXPECT_JOBS("echo 'a b'\necho 'it'\"'\"'s'\necho '$x'\necho 'a*'\necho ''\necho '~'", "echo",
                ":::", "a b", "it's", "$x", "a*", "", "~");
    /* a value is split at newlines, as lines of a file (parallel's) */
    EXPECT_JOBS("echo 1 x\necho 2 y", "echo", "{#}", "{}", ":::", "x\ny");
    /* unless NUL ends values: then the newline is quoted */
    struct run_opts o;
    PARSE(&o, "-0", "echo", "[{}]");
    char *got = ALLTEXT(&o, "x\ny\0it's\0");
    assert_string_equal(got, "echo ['x\ny']\necho ['it'\"'\"'s']");
    free(got);
    run_opts_free(&o);
}

static void test_quote_option(void **state)
{
    (void)state;
    EXPECT_JOBS("echo 'a b' 'c d'", "-q", "echo", "a b", "{}", ":::", "c d");
    EXPECT_JOBS("'echo a' 'b c'", "-q", "echo a", ":::", "b c");
    /* several values in a word: a word each */
    EXPECT_JOBS("echo a 'b c' xa 'b cy'", "-q", "-n", "2", "echo", "{}", "x{}y", ":::", "a",
                "b c");
    /* without -q the template's words are shell text */
    EXPECT_JOBS("echo \"a b\"; echo", "echo \"{}\"; echo", ":::", "a", ":::", "b");
}

static void test_appended_and_no_command(void **state)
{
    (void)state;
    EXPECT_JOBS("gzip -9 'a b'\ngzip -9 c", "gzip", "-9", ":::", "a b", "c");
    /* no command: the values are the commands, as they are */
    EXPECT_JOBS("echo a\nls \"x y\"", ":::", "echo a", "ls \"x y\"");
}

/* ---- inputs ---- */

static void test_product_and_linked(void **state)
{
    (void)state;
    EXPECT_JOBS("echo a 1 x\necho a 1 y\necho a 2 x\necho a 2 y\n"
                "echo b 1 x\necho b 1 y\necho b 2 x\necho b 2 y",
                "echo", ":::", "a", "b", ":::", "1", "2", ":::", "x", "y");
    /* linked: pairs, up to the shorter */
    EXPECT_JOBS("echo a 1\necho b 2", "echo", ":::", "a", "b", "c", ":::+", "1", "2");
    EXPECT_JOBS("echo a 1\necho b 2", "echo", ":::", "a", "b", ":::+", "1", "2", "3");
    /* a linked pair multiplied by a third source */
    EXPECT_JOBS("echo a 1 x\necho a 1 y\necho b 2 x\necho b 2 y", "echo", ":::", "a", "b",
                ":::+", "1", "2", ":::", "x", "y");
    /* an empty source among several is one empty value; alone, no jobs */
    EXPECT_JOBS("echo '' a", "echo", ":::", ":::", "a");
    EXPECT_JOBS("", "echo", ":::");
}

static char tmpdir[64];

static char *write_file(const char *name, const char *text, size_t len)
{
    char *path;
    assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite(text, 1, len, f);
    fclose(f);
    return path;
}

static void test_files(void **state)
{
    (void)state;
    char *ab = WRITE("ab", "a\nb\n"), *xy = WRITE("xy", "x\n\ny");
    /* each file a source of its own: multiplied */
    EXPECT_JOBS("echo a x\necho a ''\necho a y\necho b x\necho b ''\necho b y", "echo", "::::",
                ab, xy);
    EXPECT_JOBS("echo a x\necho b ''", "echo", "::::", ab, "::::+", xy);
    EXPECT_JOBS("echo a x\necho a ''\necho a y\necho b x\necho b ''\necho b y", "-a", ab, "-a",
                xy, "echo");
    EXPECT_JOBS("echo a Q\necho b Q", "--arg-file", ab, "echo", ":::", "Q");
    /* a file that cannot be read: an error naming it */
    struct run_opts o;
    PARSE(&o, "echo", "::::", "/no/such/file");
    struct run_input *in;
    capture();
    assert_int_equal(run_input_open(&o, &in), -1);
    assert_non_null(strstr(captured(), "cannot open input file '/no/such/file'"));
    run_opts_free(&o);
    free(ab);
    free(xy);
}

static void test_stdin_and_delimiters(void **state)
{
    (void)state;
    struct run_opts o;
    PARSE(&o, "echo");
    char *got = ALLTEXT(&o, "one\n\nthree");
    assert_string_equal(got, "echo one\necho ''\necho three");
    free(got);
    run_opts_free(&o);

    PARSE(&o, "-d", ",", "echo");
    got = ALLTEXT(&o, "p,q r,s\n");
    assert_string_equal(got, "echo p\necho 'q r'\necho 's\n'");
    free(got);
    run_opts_free(&o);

    PARSE(&o, "-d", "\\t", "echo");
    got = ALLTEXT(&o, "p\tq");
    assert_string_equal(got, "echo p\necho q");
    free(got);
    run_opts_free(&o);

    /* stdin as a source among others, and the commands themselves */
    PARSE(&o, "echo", "::::", "-", ":::", "X");
    got = ALLTEXT(&o, "a\nb\n");
    assert_string_equal(got, "echo a X\necho b X");
    free(got);
    run_opts_free(&o);
    PARSE(&o, "-k");
    got = ALLTEXT(&o, "echo 1\necho \"2 3\"\n");
    assert_string_equal(got, "echo 1\necho \"2 3\"");
    free(got);
    run_opts_free(&o);
}

/* Jobs come from stdin as its lines arrive: the engine starts them before
 * stdin ends */
static void test_stdin_streams(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    FILE *old = stdin;
    stdin = fdopen(p[0], "r");
    struct run_opts o;
    PARSE(&o, "echo");
    struct run_input *in;
    assert_int_equal(run_input_open(&o, &in), 0);
    struct run_args a;
    assert_int_equal(write(p[1], "first\n", 6), 6);
    assert_int_equal(run_input_next(in, &a), 1); /* would block here if stdin were read whole */
    assert_string_equal(a.v[0], "first");
    assert_int_equal(a.seq, 1);
    run_args_free(&a);
    assert_int_equal(write(p[1], "second\n", 7), 7);
    assert_int_equal(run_input_next(in, &a), 1);
    assert_string_equal(a.v[0], "second");
    assert_int_equal(a.seq, 2);
    run_args_free(&a);
    close(p[1]);
    assert_int_equal(run_input_next(in, &a), 0);
    run_input_close(in);
    run_opts_free(&o);
    fclose(stdin);
    stdin = old;
}

static void test_max_args(void **state)
{
    (void)state;
    EXPECT_JOBS("echo a 'b c'\necho d", "-n", "2", "echo", ":::", "a", "b c", "d");
    EXPECT_JOBS("echo ['a b.x' c.y] ['a b' c]", "-n2", "echo", "[{}]", "[{.}]", ":::", "a b.x",
                "c.y");
    /* with two sources, -n takes whole records: {3} is the second's first value */
    EXPECT_JOBS("echo a 1 a 2\necho b 1 b 2", "-n", "2", "echo", "{1}", "{2}", "{3}", "{4}",
                ":::", "a", "b", ":::", "1", "2");
}

static void test_colsep(void **state)
{
    (void)state;
    struct run_opts o;
    PARSE(&o, "--colsep", "\\t", "echo", "{2}", "{1}");
    char *got = ALLTEXT(&o, "a b\tc\nd e\tf\n");
    assert_string_equal(got, "echo c 'a b'\necho f 'd e'");
    free(got);
    run_opts_free(&o);
    /* empty columns kept, trailing too; the columns appended when unused */
    EXPECT_JOBS("echo a '' b ''", "--colsep", ",", "echo", ":::", "a,,b,");
    /* a regex */
    EXPECT_JOBS("echo b", "--colsep", " +", "echo", "{2}", ":::", "a  b c");
    EXPECT_JOBS("echo c a", "-C", "[0-9]+", "echo", "{3}", "{1}", ":::", "a1b22c");
    EXPECT_JOBS("echo a b", "--colsep=\\s", "echo", ":::", "a b");
    EXPECT_JOBS("echo 1 2", "--colsep", "\\D+", "echo", ":::", "1xy2");
    /* columns of linked values flatten */
    EXPECT_JOBS("echo b c", "--colsep", ",", "echo", "{2}", "{3}", ":::", "a,b", ":::+", "c,d");
    /* an empty match splits off one character (Perl's split, as parallel) */
    EXPECT_JOBS("echo x '|' y ''", "--colsep", "|", "echo", ":::", "x|y");
    /* repetitions glibc's regcomp would take minutes to expand are refused
     * at once (nested +, multiplied counts); modest ones still work */
    PARSE_ERR("option --colsep: '((((((((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+' "
              "repeats too much", "--colsep", "((((((((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+",
              "echo");
    PARSE_ERR("repeats too much", "--colsep", "((((((\\d+)+)+)+)+)+", "echo");
    /* a repetition of a repetition: undefined in POSIX, and x??++++++++
     * alone kept glibc's regcomp busy for minutes */
    PARSE_ERR("option --colsep: 'x??++++++++' repeats a repetition", "--colsep", "x??++++++++", "echo");
    PARSE_ERR("repeats a repetition", "--colsep", "\\d++", "echo");
    PARSE_ERR("repeats a repetition", "--colsep", "a*{2}", "echo");
    EXPECT_JOBS("echo a b", "--colsep", "(,)+", "echo", ":::", "a,,b");
    EXPECT_JOBS("echo a b", "--colsep", "[+?]+|\\++", "echo", ":::", "a+?b");
    PARSE_ERR("repeats too much", "--colsep", "((a{1,100}){1,100}){1,100}", "echo");
    PARSE_ERR("repeats too much", "--colsep", "([[:space:],]{1,300}){1,300}", "echo");
    PARSE_ERR("repeats too much", "--colsep", "(a?){4000}", "echo");
    EXPECT_JOBS("echo a b", "--colsep", "((,+)+)+|(x{1,10}){1,10}", "echo", ":::", "a,,b");
}

/* ---- options ---- */

static void test_options(void **state)
{
    (void)state;
    struct run_opts o;
    PARSE(&o, "--pool", "P", "-j", "3", "--handler", "h", "-k", "--tag", "--line-buffer",
          "--timeout", "90", "--retries", "3", "--halt", "now,fail=2", "--delay", "250ms",
          "--dry-run", "--joblog", "jl", "--resume-failed", "--bar", "--eta", "--receipts",
          "r.json", "--shell", "--", "cmd", "-k", "{}", ":::", "x");
    assert_string_equal(o.pool, "P");
    assert_int_equal(o.jobs, 3);
    assert_string_equal(o.handler, "h");
    assert_true(o.keep_order && o.tag && o.line_buffer && o.dry_run && o.bar && o.eta && o.shell);
    assert_true(o.resume_failed && !o.resume && !o.quote);
    assert_int_equal(o.timeout_ns, 90000000000ll);
    assert_int_equal(o.retries, 3);
    assert_int_equal(o.halt.when, RUN_HALT_NOW);
    assert_int_equal(o.halt.on, RUN_HALT_FAIL);
    assert_int_equal(o.halt.count, 2);
    assert_false(o.halt.percent);
    assert_int_equal(o.delay_ns, 250000000ll);
    assert_string_equal(o.joblog, "jl");
    assert_string_equal(o.receipts, "r.json");
    /* options end at the command: its -k is a word of it */
    assert_int_equal(o.ncmd, 3);
    assert_string_equal(o.cmd[1], "-k");
    assert_int_equal(o.nsources, 1);
    assert_int_equal(o.sources[0].kind, RUN_SRC_ARGS);
    run_opts_free(&o);

    /* defaults: the online CPUs, stdin, no halt */
    PARSE(&o, "echo");
    assert_int_equal(o.jobs, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    assert_int_equal(o.nsources, 1);
    assert_int_equal(o.sources[0].kind, RUN_SRC_STDIN);
    assert_int_equal(o.halt.when, RUN_HALT_NEVER);
    assert_int_equal(o.timeout_ns, 0);
    assert_int_equal(o.delim, '\n');
    run_opts_free(&o);

    /* -j's forms, bundled flags, --name=value */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    static const struct { const char *arg; long want; } jobs[] = {
        { "-j7", 7 }, { "--jobs=5", 5 }, { "-P2", 2 }, { "-j200%", 0 }, { "-j+1", 0 },
        { "-j-1000", 1 },
    };
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++) {
        PARSE(&o, (char *)jobs[i].arg, "echo");
        long want = jobs[i].want ? jobs[i].want : i == 3 ? 2 * cpus : cpus + 1;
        assert_int_equal(o.jobs, want);
        run_opts_free(&o);
    }
    PARSE(&o, "-kqj4", "-0", "--max-args=2", "--halt", "soon,success=50%", "--timeout",
                    "1h30m", "echo");
    assert_true(o.keep_order && o.quote);
    assert_int_equal(o.jobs, 4);
    assert_int_equal(o.delim, 0);
    assert_int_equal(o.max_args, 2);
    assert_int_equal(o.halt.when, RUN_HALT_SOON);
    assert_int_equal(o.halt.on, RUN_HALT_SUCCESS);
    assert_int_equal(o.halt.count, 50);
    assert_true(o.halt.percent);
    assert_int_equal(o.timeout_ns, 5400000000000ll);
    run_opts_free(&o);
    /* --halt's short forms */
    static const struct { const char *s; enum run_halt_when when; enum run_halt_on on; } halts[] = {
        { "never", RUN_HALT_NEVER, RUN_HALT_FAIL }, { "0", RUN_HALT_NEVER, RUN_HALT_FAIL },
        { "1", RUN_HALT_SOON, RUN_HALT_FAIL }, { "2", RUN_HALT_NOW, RUN_HALT_FAIL },
        { "now,done=3", RUN_HALT_NOW, RUN_HALT_DONE }, { "10%", RUN_HALT_SOON, RUN_HALT_FAIL },
    };
    for (size_t i = 0; i < sizeof halts / sizeof halts[0]; i++) {
        PARSE(&o, "--halt", (char *)halts[i].s, "echo");
        assert_int_equal(o.halt.when, halts[i].when);
        assert_int_equal(o.halt.on, halts[i].on);
        run_opts_free(&o);
    }
    /* --help */
    PARSE(&o, "--help");
    assert_true(o.help);
    run_opts_free(&o);
}

static void test_option_errors(void **state)
{
    (void)state;
    PARSE_ERR("unknown option '--bogus'", "--bogus", "echo");
    PARSE_ERR("unknown option '-X'", "-X", "echo");
    PARSE_ERR("option -j needs a value", "-j");
    PARSE_ERR("option --pool needs a value", "--pool");
    PARSE_ERR("option --keep-order takes no value", "--keep-order=1", "echo");
    PARSE_ERR("option -j: 'abc' is not a number of jobs", "-j", "abc", "echo");
    PARSE_ERR("'4x' is not a number of jobs", "-j", "4x", "echo");
    PARSE_ERR("0 (as many as possible) is not supported", "-j", "0", "echo");
    PARSE_ERR("option --timeout: 'soon' is not a duration", "--timeout", "soon", "echo");
    PARSE_ERR("option --delay: '-1' is not a duration", "--delay", "-1", "echo");
    PARSE_ERR("option --retries: 'x' is not a whole number", "--retries", "x", "echo");
    PARSE_ERR("option --halt: 'bogus' is not", "--halt", "bogus", "echo");
    PARSE_ERR("the count must be a whole number from 1", "--halt", "now,fail=0", "echo");
    PARSE_ERR("from 1 to 100%", "--halt", "now,fail=101%", "echo");
    PARSE_ERR("option --halt: 'now,crash=1' is not", "--halt", "now,crash=1", "echo");
    PARSE_ERR("option -n: '0' is not a number of arguments", "-n", "0", "echo");
    PARSE_ERR("option -d: 'ab' is not one character", "-d", "ab", "echo");
    PARSE_ERR("option --colsep: '(' is not a regular expression", "--colsep", "(", "echo");
    PARSE_ERR("--resume and --resume-failed need --joblog", "--resume", "echo");
    PARSE_ERR("uses {out} but no --output", "echo", "{out}");
    PARSE_ERR("--output needs the command to write {out}", "--output", "o/{}", "echo");
    PARSE_ERR("option --output: the file name template is empty", "--output", "", "echo");
    PARSE_ERR("'::::' needs a file name", "echo", "::::");
}

/* ---- --output, --tag, the handler's words ---- */

static void test_output_tag_words(void **state)
{
    (void)state;
    struct run_opts o;
    PARSE(&o, "--output", "out/{/.}.mp4", "ffmpeg", "-i", "{}", "{out}", ":::",
                    "in/a b.mkv");
    assert_true(o.uses_out);
    struct run_args args = { (char *[]){ "in/a b.mkv", NULL }, 1, 1 };
    char *name = run_output_name(&o, &args, 1, 1);
    assert_string_equal(name, "out/a b.mp4");
    char *line = run_compose(&o, &args, 1, 1, "out/.a b.mp4.ember-7");
    assert_string_equal(line, "ffmpeg -i 'in/a b.mkv' 'out/.a b.mp4.ember-7'");
    size_t n;
    char **w = run_compose_words(&o, &args, 1, 1, "out/t", &n);
    assert_int_equal(n, 4);
    assert_string_equal(w[2], "in/a b.mkv");
    assert_string_equal(w[3], "out/t");
    assert_null(w[4]);
    run_words_free(w);
    free(name);
    free(line);
    assert_null(run_tag(&o, &args, 1, 1));
    run_opts_free(&o);

    /* {out} alone leaves the arguments appended */
    PARSE(&o, "--output", "{}.gz", "gzip", "-c", "-o", "{out}");
    line = run_compose(&o, &args, 1, 1, "t");
    assert_string_equal(line, "gzip -c -o t 'in/a b.mkv'");
    free(line);
    run_opts_free(&o);

    /* the words of a handler's call: no quoting, {} of several values a word each */
    PARSE(&o, "-n", "2", "transcode", "{}", "x{#}", ":::", "a b", "c");
    struct run_args two = { (char *[]){ "a b", "c", NULL }, 2, 3 };
    w = run_compose_words(&o, &two, 3, 2, NULL, &n);
    assert_int_equal(n, 4);
    assert_string_equal(w[0], "transcode");
    assert_string_equal(w[1], "a b");
    assert_string_equal(w[2], "c");
    assert_string_equal(w[3], "x3");
    run_words_free(w);
    run_opts_free(&o);
    PARSE(&o, "transcode");
    w = run_compose_words(&o, &two, 3, 2, NULL, &n);
    assert_int_equal(n, 3);
    assert_string_equal(w[1], "a b");
    run_words_free(w);
    run_opts_free(&o);

    /* --tag: the values as they are, then a TAB; --tagstring's replaced */
    PARSE(&o, "--tag", "echo");
    char *tag = run_tag(&o, &two, 3, 2);
    assert_string_equal(tag, "a b c\t");
    free(tag);
    run_opts_free(&o);
    PARSE(&o, "--tagstring", "{1}-{#}/{%}", "echo");
    assert_true(o.tag);
    tag = run_tag(&o, &two, 3, 2);
    assert_string_equal(tag, "a b-3/2\t");
    free(tag);
    run_opts_free(&o);
}

/* ---- the shell-free path ---- */

static void expect_split(const char *line, const char *const *want)
{
    size_t n;
    char **w = run_split_simple(line, &n);
    if (!w) fail_msg("'%s' was refused", line);
    size_t k = 0;
    for (; want[k]; k++) {
        if (k >= n) fail_msg("'%s': %zu words, want more", line, n);
        if (strcmp(w[k], want[k]) != 0) fail_msg("'%s': word %zu is '%s', want '%s'", line, k, w[k], want[k]);
    }
    assert_int_equal(n, k);
    assert_null(w[n]);
    run_words_free(w);
}

static void test_split_simple(void **state)
{
    (void)state;
    expect_split("true", (const char *const[]){ "true", NULL });
    expect_split("  ffmpeg -i 'in/a b.mkv'\t-c:v libx264 'out/x.mp4' ",
                 (const char *const[]){ "ffmpeg", "-i", "in/a b.mkv", "-c:v", "libx264",
                                        "out/x.mp4", NULL });
    expect_split("echo 'it'\"'\"'s'", (const char *const[]){ "echo", "it's", NULL });
    expect_split("echo \"a b\" c\\ d ''", (const char *const[]){ "echo", "a b", "c d", "", NULL });
    expect_split("printf \"%s\\\\n\" \"\\$x\"",
                 (const char *const[]){ "printf", "%s\\n", "$x", NULL });
    expect_split("cat a%b +x ,y @z x=y ^", (const char *const[]){ "cat", "a%b", "+x", ",y", "@z",
                                                                "x=y", "^", NULL });
    /* a quoted newline or glob is a plain character */
    expect_split("printf 'x\ny' '*'", (const char *const[]){ "printf", "x\ny", "*", NULL });
    expect_split("/bin/echo 'a\\b'", (const char *const[]){ "/bin/echo", "a\\b", NULL });

    static const char *const refused[] = {
        "", "   ", "echo $x", "echo \"$x\"", "echo `date`", "echo \"`date`\"", "a; b", "a && b",
        "a | b", "a > f", "a < f", "a 2>&1", "(a)", "a &", "ls *.c", "ls ?", "ls [ab]", "cd ~",
        "echo a # comment", "a\nb", "X=1 cmd", "=x", "cd /tmp", "export A=1", "exit 3",
        "source f", ". f", "eval x", "exec x", "set -e", "unset A", "alias a=b", "if true",
        "for i", "while true", "case x", "{ a; }", "! a", "time sleep 1", "echo 'open",
        "echo \"open", "echo a\\", "echo \\", "echo 'a\\b'", "echo \"a\\tb\"", "kill 1", "pwd",
        "read x", "trap x", "echo {a,b}", "echo a!b", "echo \"a!b\"", "wait", "ulimit -n",
        "umask 0", "local x", "echo a\rb",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        size_t n;
        char **w = run_split_simple(refused[i], &n);
        if (w) fail_msg("'%s' was taken without the shell", refused[i]);
    }
}

/* ---- the joblog ---- */

static void test_joblog(void **state)
{
    (void)state;
    char *path;
    assert_true(asprintf(&path, "%s/joblog", tmpdir) > 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(run_joblog_header(f), 0);
    struct run_joblog_entry e[] = {
        { 1, ":", 1796461790.8994, 0.019, 0, 0, 0, 0, "sleep 0.0; exit 0" },
        { 2, ":", 1796461790.917, 12345.1164, 0, 17, 1, 0, "exit 1" },
        { 3, ":", 1796461790.966, 0.2, 0, 0, 0, 9, "kill -9 $$" },
        { 4, ":", 1796461791, 0, 3, 4, 0, 0, "echo 'a\tb\nc'" },
        { 6, NULL, 1796461791.5, 0.5, 0, 0, 0, 0, "echo x" },
    };
    for (size_t i = 0; i < 5; i++) assert_int_equal(run_joblog_write(f, &e[i]), 0);
    fclose(f);
    static const char want[] =
        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
        "1\t:\t1796461790.899\t     0.019\t0\t0\t0\t0\tsleep 0.0; exit 0\n"
        "2\t:\t1796461790.917\t 12345.116\t0\t17\t1\t0\texit 1\n"
        "3\t:\t1796461790.966\t     0.200\t0\t0\t0\t9\tkill -9 $$\n"
        "4\t:\t1796461791.000\t     0.000\t3\t4\t0\t0\techo 'a\tb\0c'\n"
        "6\t:\t1796461791.500\t     0.500\t0\t0\t0\t0\techo x\n";
    char got[1024];
    f = fopen(path, "r");
    size_t n = fread(got, 1, sizeof got, f);
    fclose(f);
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(got, want, n);

    /* --resume skips every job in the log; --resume-failed only those that succeeded */
    struct run_seqset s = { 0 };
    assert_int_equal(run_joblog_load(path, false, &s), 0);
    for (uint64_t q = 1; q <= 7; q++) assert_int_equal(run_seqset_has(&s, q), q != 5 && q != 7);
    run_seqset_free(&s);
    assert_int_equal(run_joblog_load(path, true, &s), 0);
    for (uint64_t q = 1; q <= 7; q++)
        assert_int_equal(run_seqset_has(&s, q), q == 1 || q == 4 || q == 6);
    /* a job that failed and then succeeded on a resumed run is done */
    f = fopen(path, "a");
    struct run_joblog_entry again = { 2, ":", 1796461800, 1, 0, 0, 0, 0, "exit 0" };
    assert_int_equal(run_joblog_write(f, &again), 0);
    fclose(f);
    run_seqset_free(&s);
    assert_int_equal(run_joblog_load(path, true, &s), 0);
    assert_true(run_seqset_has(&s, 2));
    assert_false(run_seqset_has(&s, 3));
    run_seqset_free(&s);

    /* no log yet: nothing to skip */
    assert_int_equal(run_joblog_load("/nonexistent/joblog", false, &s), 0);
    assert_int_equal(s.n, 0);
    /* a malformed line: an error with its number */
    char *bad = WRITE("badlog",
                           "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
                           "1\t:\t1.000\t 0.1\t0\t0\t0\t0\tok\n"
                           "x\t:\t1.000\t 0.1\t0\t0\t0\t0\tbad\n");
    capture();
    assert_int_equal(run_joblog_load(bad, false, &s), -1);
    const char *err = captured();
    if (!strstr(err, "line 3 is not a job")) fail_msg("message: %s", err);
    run_seqset_free(&s);
    char *short_line = WRITE("shortlog", "1\t:\t1.000\n");
    capture();
    assert_int_equal(run_joblog_load(short_line, false, &s), -1);
    assert_non_null(strstr(captured(), "line 1 is not a job"));
    run_seqset_free(&s);
    free(bad);
    free(short_line);
    free(path);
}

/* --dry-run prints the jobs with their tag, skipping what --resume skips */
static void test_dry_run(void **state)
{
    (void)state;
    char *log = WRITE("drylog",
                           "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
                           "2\t:\t1.000\t 0.1\t0\t0\t0\t0\tx\n");
    struct run_opts o;
    PARSE(&o, "--tag", "-j", "2", "--joblog", log, "--resume-failed", "echo", "{%}", ":::",
                    "a", "b", "c");
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_int_equal(run_dry_run(&o, f), 0);
    fclose(f);
    assert_string_equal(out, "a\techo 1\nc\techo 1\n"); /* job 2 succeeded */
    free(out);
    run_opts_free(&o);
    free(log);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ember-run-args-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_replacement_strings),
        cmocka_unit_test(test_positional),
        cmocka_unit_test(test_quoting_in_jobs),
        cmocka_unit_test(test_quote_option),
        cmocka_unit_test(test_appended_and_no_command),
        cmocka_unit_test(test_product_and_linked),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_stdin_and_delimiters),
        cmocka_unit_test(test_stdin_streams),
        cmocka_unit_test(test_max_args),
        cmocka_unit_test(test_colsep),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_option_errors),
        cmocka_unit_test(test_output_tag_words),
        cmocka_unit_test(test_split_simple),
        cmocka_unit_test(test_joblog),
        cmocka_unit_test(test_dry_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
