/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Small helpers every module uses: branch hints, single-writer counters, the
 * one wipe primitive and the misuse report. */
#ifndef ZP_COMMON_H
#define ZP_COMMON_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define zp__likely(x) __builtin_expect(!!(x), 1)
#define zp__unlikely(x) __builtin_expect(!!(x), 0)
/* Keeps slow paths out of line so the fast path needs no stack frame. */
#define ZP__SLOW __attribute__((noinline, cold))
#define ZP__CACHE_LINE 64
#define ZP__PAGE 4096u

/* A counter written by one thread and read by others (stats). A relaxed load
 * plus store compiles to plain moves: no lock prefix on the fast path, yet
 * readers on other threads see no torn values and TSan sees no race. */
typedef _Atomic uint64_t zp__counter;
static inline void zp__counter_add(zp__counter *c, uint64_t v) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                        memory_order_relaxed);
}
static inline void zp__counter_sub(zp__counter *c, uint64_t v) {
  zp__counter_add(c, (uint64_t)0 - v);
}
static inline uint64_t zp__counter_get(const zp__counter *c) {
  return atomic_load_explicit((zp__counter *)c, memory_order_relaxed);
}
/* For counters several threads update (slow paths only). */
static inline void zp__counter_add_shared(zp__counter *c, uint64_t v) {
  atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

/* The one wipe primitive: explicit_bzero cannot be removed as a dead store. */
static inline void zp__wipe(void *p, size_t n) {
  if (n)
    explicit_bzero(p, n);
}

static inline size_t zp__align_up(size_t n, size_t a) {
  return (n + a - 1) & ~(a - 1);
}

static inline int zp__is_pow2(size_t n) { return n && !(n & (n - 1)); }

/* Reports detected misuse on one stderr line starting with "zeropool:" and
 * aborts. Never returns. */
__attribute__((noreturn, format(printf, 1, 2))) void zp__misuse(const char *fmt,
                                                                ...);

#endif /* ZP_COMMON_H */
