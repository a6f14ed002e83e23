/* ember/detail/error.h - failing: a code from client.h's table, and a message.
 *
 * Every failure goes through ember__fail() (or ember__sys_fail() for a
 * failed system call), which writes what was wrong into this thread's
 * message buffer, read back by ember_last_error(). The buffer lives in the
 * file that compiles the client (EMBER_CLIENT_IMPLEMENTATION: libember's
 * client.c, or the application's one file); every other file reaches it
 * through ember__errbuf_ptr(). */
#ifndef EMBER_DETAIL_ERROR_H
#define EMBER_DETAIL_ERROR_H

#include "base.h"

#define EMBER__ERRLEN 256
#ifdef EMBER_CLIENT_IMPLEMENTATION
static __thread char ember__errbuf_tls[EMBER__ERRLEN];
EMBER_API char *ember__errbuf_ptr(void);
EMBER_API char *ember__errbuf_ptr(void) { return ember__errbuf_tls; }
#define ember__errbuf ember__errbuf_tls
#else
EMBER_API char *ember__errbuf_ptr(void);
#define ember__errbuf (ember__errbuf_ptr())
#endif

/* Record the message (printf FMT) and return CODE. */
__attribute__((format(printf, 2, 3)))
static inline int ember__fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ember__errbuf, EMBER__ERRLEN, fmt, ap);
    va_end(ap);
    return code;
}

/* Record the fixed message LIT (a string literal) and return CODE: for
 * results a caller may meet in a loop (ember_poll's EAGAIN), where
 * formatting would cost more than the look itself. */
static inline int ember__fail_text(int code, const char *msg, size_t size)
{
    memcpy(ember__errbuf, msg, size < EMBER__ERRLEN ? size : EMBER__ERRLEN);
    ember__errbuf[EMBER__ERRLEN - 1] = 0;
    return code;
}
#define EMBER__FAIL_TEXT(code, lit) ember__fail_text((code), "" lit, sizeof(lit))

/* The code for system error ERR (an errno value): the table's own entry
 * when it has one (ember's own codes, 1000 and up, match no errno), else
 * EMBER_ESYSTEM; the message names WHAT and the
 * system's words for ERR. */
static inline int ember__sys_fail(int err, const char *what)
{
    int code = -EMBER_ESYSTEM;
    switch (err) {
#define EMBER__XSYS(name, val, msg) case val: code = -EMBER_##name; break;
        EMBER_ERROR_TABLE(EMBER__XSYS)
#undef EMBER__XSYS
    default: break;
    }
    return ember__fail(code, "%s: %s", what, strerror(err));
}

#endif /* EMBER_DETAIL_ERROR_H */
