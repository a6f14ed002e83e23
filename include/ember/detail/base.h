/* ember/detail/base.h - what every part of ember's runtime builds on.
 *
 * The runtime (rings, slots, pages, waits, the segment view, the call path)
 * is header-only: the client compiles it into the one file that defines
 * EMBER_CLIENT_IMPLEMENTATION, and libember's supervisor, runner and pool
 * code include the same headers. Everything here is static inline, so a
 * file that uses only some of it pays for nothing else.
 *
 * System headers: the runtime needs POSIX 2008 and a few Linux calls
 * (syscall, sched_getcpu). client.h defines _GNU_SOURCE itself when it is
 * included before any system header; a file that included system headers
 * first in strict ISO mode (-std=c11 without _DEFAULT_SOURCE) gets an error
 * saying so rather than a page of undeclared functions.
 *
 * In C++, the C11 atomic operations are taken from <atomic> under their C
 * names, so that one text serves both languages. */
#ifndef EMBER_DETAIL_BASE_H
#define EMBER_DETAIL_BASE_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include "../client.h" /* the error table, abi.h */

#if defined(__GLIBC__) && !defined(__USE_MISC)
#error "ember's client needs POSIX 2008 and syscall(): include <ember/client.h> with EMBER_CLIENT_IMPLEMENTATION before any system header, or compile with -D_GNU_SOURCE (or _DEFAULT_SOURCE)"
#endif
#if defined(__GLIBC__) && !defined(__USE_GNU) && !defined(__cplusplus)
int sched_getcpu(void); /* glibc has it in every mode; only the declaration is GNU's */
#endif

#ifndef EMBER_API
#define EMBER_API extern
#endif

#ifndef EMBER_ASSERT
#include <assert.h>
#define EMBER_ASSERT(x) assert(x)
#endif

#ifdef __cplusplus
using std::atomic_compare_exchange_strong;
using std::atomic_compare_exchange_strong_explicit;
using std::atomic_compare_exchange_weak_explicit;
using std::atomic_exchange;
using std::atomic_exchange_explicit;
using std::atomic_fetch_add;
using std::atomic_fetch_add_explicit;
using std::atomic_fetch_sub;
using std::atomic_fetch_sub_explicit;
using std::atomic_load;
using std::atomic_load_explicit;
using std::atomic_store;
using std::atomic_store_explicit;
using std::atomic_thread_fence;
using std::memory_order_acq_rel;
using std::memory_order_acquire;
using std::memory_order_relaxed;
using std::memory_order_release;
using std::memory_order_seq_cst;
#endif

/* Start fetching the line at P for writing (a hint: it never faults).
 * On x86-64 PREFETCHW asks for the line exclusive, so the store or CAS
 * that follows does not have to upgrade it; __builtin_prefetch(p, 1)
 * would be a plain read prefetch there without -mprfchw (processors that
 * predate PREFETCHW run it as a NOP). */
static inline void ember__prefetch_w(const volatile void *p)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __asm__ __volatile__("prefetchw %0" : : "m"(*(const volatile char *)p));
#else
    __builtin_prefetch((const void *)p, 1, 3);
#endif
}

#endif /* EMBER_DETAIL_BASE_H */
