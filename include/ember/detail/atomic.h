/* ember/detail/atomic.h - the shared-memory types that mean the same in C and C++.
 *
 * The segment's words are C11 atomics; a C++ program sees the same words as
 * std::atomic of the same type, which GCC and Clang lay out identically for
 * the lock-free integer types used here (abi.h asserts the sizes).
 *   EMBER_ATOMIC(T)         an atomic T in the segment
 *   EMBER_ALIGNAS(N)        _Alignas / alignas
 *   EMBER_STATIC_ASSERT     _Static_assert / static_assert
 * The operations (atomic_load_explicit and the rest, with C11's names) are
 * brought in by base.h, for the implementation only. */
#ifndef EMBER_DETAIL_ATOMIC_H
#define EMBER_DETAIL_ATOMIC_H

#ifdef __cplusplus
#include <atomic>
#define EMBER_ATOMIC(T)              std::atomic<T>
#define EMBER_ALIGNAS(n)             alignas(n)
#define EMBER_STATIC_ASSERT(c, msg)  static_assert(c, msg)
#else
#include <stdatomic.h>
#define EMBER_ATOMIC(T)              _Atomic(T)
#define EMBER_ALIGNAS(n)             _Alignas(n)
#define EMBER_STATIC_ASSERT(c, msg)  _Static_assert(c, msg)
#endif

#endif /* EMBER_DETAIL_ATOMIC_H */
