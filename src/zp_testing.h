/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Internal hooks for zeropool's own tests, demo and tools. Not part of the
 * public API and not exported from the shared library: link the static
 * library (target zeropool_static) to use them.
 */
#ifndef ZP_TESTING_H
#define ZP_TESTING_H

#include "zeropool.h"

#include <stddef.h>

/* What the pool knows about the machine. Filled by hwloc when the library was
 * built with it and hwloc works at run time, else from sysconf(). */
typedef struct zp__topology {
  unsigned pus;        /* logical CPUs (hardware threads) */
  unsigned cores;      /* physical cores */
  unsigned l3_domains; /* last-level caches (CCX/sockets) */
  size_t l2_bytes;     /* L2 size of one core; 0 when unknown */
  size_t l3_bytes;     /* size of one last-level cache; 0 when unknown */
  size_t ram_bytes;    /* physical memory; 0 when unknown */
  const char *source;  /* "hwloc" or "sysconf" */
} zp__topology;

/* Detects the topology of this machine. Never fails: falls back to sysconf,
 * then to one core. */
void zp__topology_detect(zp__topology *out);

/* Validates *in and resolves every auto (zero) field for topology *t into
 * *out (in and out may alias). Returns 0, or -EINVAL with *bad_field (when
 * not NULL) naming the first invalid field. This is the formula documented in
 * the README; tools/print_defaults uses it for the seed's system sizes. */
int zp__config_resolve(const zp__topology *t, const zp_builder *in,
                       zp_builder *out, const char **bad_field);

/* Fault injection over every memory acquisition the library makes from the
 * OS or libc (mmap of spans and page-map leaves, metadata allocations).
 * zp__os_fail_nth(n), n >= 1: the n-th acquisition from now fails as if the
 * OS said ENOMEM (that one only); n == 0 disables. */
void zp__os_fail_nth(unsigned long n);
/* Number of acquisitions attempted since the process started. */
unsigned long zp__os_acquisitions(void);

/* The eviction policy in effect ("lifo", "clock-pro"). */
const char *zp__pool_eviction_name(zp_pool *pool);
/* Walks every shard under its lock: list lengths agree with the counts,
 * no shard holds more than max_buffers_per_shard, and the policy's state
 * agrees with the lists (for CLOCK-Pro: resident entries per class == idle
 * buffers per class, and every invariant of clockpro.c). NULL when all
 * hold, else what failed. O(idle buffers + policy entries). */
const char *zp__pool_check_eviction(zp_pool *pool);

/* Which sanitizer annotations the library was built with. */
#define ZP__MODE_ASAN 1u     /* ASan poisoning of idle buffers and slack */
#define ZP__MODE_VALGRIND 2u /* valgrind memcheck mempool client requests */
unsigned zp__sanitizer_mode(void);

#endif /* ZP_TESTING_H */
