/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Sanitizer-native mode: tells AddressSanitizer and valgrind memcheck which
 * bytes of pool memory the program may touch, so a read or write after
 * zp_put, or past the size asked for, is reported at the faulty line.
 *
 *   span mapped      all of it inaccessible
 *   zp_get(size)     [0, size) accessible (and defined: it is zero); the
 *                    slack up to the class size stays inaccessible
 *   zp_put           wiped first, then inaccessible again
 *
 * ASan: on when the library is compiled with -fsanitize=address. valgrind:
 * on when built with ZP_WITH_VALGRIND (CMake option). Otherwise every call
 * here compiles to nothing.
 */
#ifndef ZP_TRACK_H
#define ZP_TRACK_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define ZP__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZP__ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define ZP__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ZP__TSAN 1
#endif
#endif

#ifdef ZP__ASAN
#include <sanitizer/asan_interface.h>
#define ZP__POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define ZP__UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ZP__POISON(p, n) ((void)(p), (void)(n))
#define ZP__UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#ifdef ZP_WITH_VALGRIND
#include <valgrind/memcheck.h>
#define ZP__VG(stmt) stmt
#else
#define ZP__VG(stmt) ((void)0)
#endif

/* Whether mlock really locks here: ASan and TSan intercept it and lock
 * nothing, so pinning is reported as refused rather than pretended. */
#if defined(ZP__ASAN) || defined(ZP__TSAN)
#define ZP__MLOCK_WORKS 0
#else
#define ZP__MLOCK_WORKS 1
#endif

static inline void zp__track_pool_new(const void *pool) {
  (void)pool;
  ZP__VG(VALGRIND_CREATE_MEMPOOL(pool, 0, 1));
}

static inline void zp__track_pool_free(const void *pool) {
  (void)pool;
  ZP__VG(VALGRIND_DESTROY_MEMPOOL(pool));
}

static inline void zp__track_span_new(void *base, size_t bytes) {
  ZP__POISON(base, bytes);
  ZP__VG(VALGRIND_MAKE_MEM_NOACCESS(base, bytes));
}

/* Before munmap: the shadow must not outlive the mapping. */
static inline void zp__track_span_free(void *base, size_t bytes) {
  ZP__UNPOISON(base, bytes);
  (void)base;
  (void)bytes;
}

static inline void zp__track_hand_out(const void *pool, void *p, size_t size) {
  (void)pool;
  ZP__UNPOISON(p, size);
  ZP__VG(VALGRIND_MEMPOOL_ALLOC(pool, p, size));
}

/* After the wipe. */
static inline void zp__track_put(const void *pool, void *p, size_t size,
                                 size_t capacity) {
  (void)pool;
  (void)size;
  ZP__POISON(p, capacity);
  ZP__VG(VALGRIND_MEMPOOL_FREE(pool, p));
}

/* Lets the pool itself read an idle buffer (verify-on-get), then hides it
 * again. */
static inline void zp__track_peek_begin(void *p, size_t n) {
  ZP__UNPOISON(p, n);
  ZP__VG(VALGRIND_MAKE_MEM_DEFINED(p, n));
}

static inline void zp__track_peek_end(void *p, size_t n) {
  ZP__POISON(p, n);
  ZP__VG(VALGRIND_MAKE_MEM_NOACCESS(p, n));
}

#endif /* ZP_TRACK_H */
