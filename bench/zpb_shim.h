/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * zpb: one C interface over every buffer source the benchmarks compare, so
 * that the driver (zp_bench.cpp) runs the very same workload code over each.
 *
 * A secure cycle is get(size) -> the caller writes `used` bytes from the
 * start -> put(p, size, used). Every implementation hands out at least size
 * writable bytes and leaves no written byte behind once put returns:
 *   zeropool          zp_get; zp_put (used == size) or zp_put_used(used),
 *                     which wipe what was handed out / what was used
 *   *-malloc          malloc-like get; explicit_bzero(used) + free-like put
 *   *-calloc          the same with a zeroing get (calloc, mi_calloc,
 *                     mallocx(MALLOCX_ZERO), tc_calloc): hands out zeroed
 *                     memory, like zeropool
 *   sodium            sodium_malloc / sodium_free (wipes the whole region)
 *   openssl-secure    CRYPTO_secure_malloc / CRYPTO_secure_clear_free
 *                     (cleanses the whole block)
 *
 * jemalloc, tcmalloc and mimalloc replace malloc itself, so each family is
 * its own executable: the compile definition ZPB_SHIM_GLIBC, _MIMALLOC,
 * _JEMALLOC or _TCMALLOC selects which implementations zpb_shim.c builds.
 */
#ifndef ZPB_SHIM_H
#define ZPB_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  ZPB_ZEROED = 1u << 0,  /* get returns zeroed bytes */
  ZPB_POOL = 1u << 1,    /* a zeropool: the instance is a zp_pool *, the
                            config is honoured and stats are available */
  ZPB_GENERAL = 1u << 2, /* a general-purpose malloc (the peers) */
  ZPB_SECURE = 1u << 3   /* a secure-memory allocator (guard pages, mlock) */
};

/* Pool settings for one instance; 0 = the pool's default. Only ZPB_POOL
 * implementations use them. */
typedef struct zpb_config {
  size_t tls_cache_size;
  size_t num_shards;
  size_t max_buffers_per_shard;
  size_t max_pooled_bytes;
} zpb_config;

/* Counters of a ZPB_POOL instance since open (zp_stats): the cumulative
 * ones, and the two gauges of what the pool holds from the OS right now
 * (the eviction workloads sum their rises to get the bytes it mapped). */
typedef struct zpb_stats {
  uint64_t gets, hits, misses, evictions;
  uint64_t mapped_bytes, os_maps; /* gauges */
} zpb_stats;

typedef struct zpb_impl {
  const char *name; /* "zeropool", "glibc-malloc", ... */
  const char *what; /* one line: what get and put do */
  unsigned flags;   /* ZPB_* */
  size_t max_size;  /* largest request it can serve; 0 = no limit */
  /* An instance (a fresh pool for ZPB_POOL implementations; a shared
   * handle otherwise). NULL on failure. */
  void *(*open)(const zpb_config *cfg);
  void (*close)(void *inst);
  /* NULL when the request cannot be served. */
  void *(*get)(void *inst, size_t size);
  /* p came from get(inst, size); [0, used) was written. */
  void (*put)(void *inst, void *p, size_t size, size_t used);
  /* Counters since open; NULL when the implementation has none. */
  int (*stats)(void *inst, zpb_stats *out);
} zpb_impl;

/* The family this executable measures: "glibc", "mimalloc", ... */
const char *zpb_family(void);

/* The implementations of this executable; *count receives their number. */
const zpb_impl *zpb_impls(size_t *count);

#ifdef __cplusplus
}
#endif

#endif /* ZPB_SHIM_H */
