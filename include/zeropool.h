/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * zeropool: a buffer pool that hands out zeroed I/O buffers fast and never
 * leaks data between their users.
 *
 *   zp_pool *pool = zp_pool_new(NULL);          // defaults from the topology
 *   char *buf = zp_get(pool, 65536);            // every byte is zero
 *   ssize_t n = read(fd, buf, 65536);
 *   ...
 *   zp_put_used(pool, buf, n > 0 ? (size_t)n : 0); // wipes [0, n) only
 *   zp_pool_destroy(pool);
 *
 * Threading: every function may be called from any thread at the same time
 * as any other, on the same pool or on different pools, with one exception:
 * zp_pool_destroy() must not run concurrently with any other call on the same
 * pool. Buffers that are still out when it returns stay valid and may be put
 * later, from any thread.
 *
 * Errors: allocating calls return NULL and set errno; control calls return 0
 * or a negative errno code. Detected misuse (a pointer the pool never handed
 * out, an interior pointer, a double put, a put into another pool) prints one
 * line starting with "zeropool:" on stderr and calls abort().
 */
#ifndef ZEROPOOL_H
#define ZEROPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZP_VERSION_MAJOR 0
#define ZP_VERSION_MINOR 1
#define ZP_VERSION_PATCH 0
#define ZP_VERSION_NUMBER                                                      \
  (ZP_VERSION_MAJOR * 10000 + ZP_VERSION_MINOR * 100 + ZP_VERSION_PATCH)
#define ZP_VERSION_STRING "0.1.0"

/* Exported symbols. The library is built with hidden visibility; only what
 * carries ZP_API leaves the shared object. Define ZP_API yourself to
 * override (for example to nothing when embedding the sources). */
#ifndef ZP_API
#if defined(__GNUC__) || defined(__clang__)
#define ZP_API __attribute__((visibility("default")))
#else
#define ZP_API
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ZP_NODISCARD __attribute__((warn_unused_result))
#define ZP_MALLOC __attribute__((malloc))
#define ZP_ALLOC_SIZE(n) __attribute__((alloc_size(n)))
#else
#define ZP_NODISCARD
#define ZP_MALLOC
#define ZP_ALLOC_SIZE(n)
#endif

/* The largest request zp_get() serves (1 TiB); larger ones fail with ENOMEM. */
#define ZP_MAX_REQUEST ((size_t)1 << 40)
/* The most shards a pool may have. */
#define ZP_MAX_SHARDS 256

/* A pool. Opaque; thread-safe (see the threading contract above). */
typedef struct zp_pool zp_pool;

/* Which idle buffers a pool keeps and which it releases. zp_pool_config()
 * reports the policy in effect (never ZP_EVICTION_DEFAULT). */
typedef enum zp_eviction {
  ZP_EVICTION_DEFAULT = 0, /* the library's choice: CLOCK-Pro */
  ZP_EVICTION_LIFO = 1,    /* keeps every idle buffer while the limits
                              allow; at a limit releases one of the class
                              the shard holds most of */
  ZP_EVICTION_CLOCK_PRO =
      2 /* CLOCK-Pro per shard: capacity of a size
           that is reused stays, capacity nobody asks
           for is released first at a limit, and idle
           memory decays toward what the workload uses
           without zp_pool_trim (see docs/architecture.md) */
} zp_eviction;

/* Checking, on get, that an idle buffer is still all zero: a write through a
 * stale pointer after zp_put is then caught (abort with a "zeropool:" line
 * naming the buffer) before the next user sees it. */
typedef enum zp_verify {
  ZP_VERIFY_OFF = 0,     /* no check (default) */
  ZP_VERIFY_SAMPLED = 1, /* the first 64 bytes of every page and the last 64
                            bytes: a cache line per page, cheap */
  ZP_VERIFY_FULL = 2     /* every byte of the buffer's capacity: costs about
                            one read pass over it */
} zp_verify;

/* What pinned_memory does when the kernel refuses mlock. */
typedef enum zp_pinning {
  ZP_PIN_BEST_EFFORT = 0, /* serve the buffer anyway, count pin_failures */
  ZP_PIN_STRICT = 1       /* zp_get fails with ENOMEM rather than hand out
                             memory that is not locked */
} zp_pinning;

/* What a child created by fork() sees of the pool's memory. */
typedef enum zp_fork {
  ZP_FORK_COPY = 0, /* a private copy, as for any memory (default); the
                       child may keep using the pool (pthread_atfork) */
  ZP_FORK_WIPE = 1, /* MADV_WIPEONFORK: the child reads zeros everywhere in
                       the pool, buffers it inherited included; it may keep
                       using the pool */
  ZP_FORK_DROP = 2  /* MADV_DONTFORK: the child has none of the pool's
                       memory; zp_get fails there with ENOMEM */
} zp_fork;

/* Where buffers live. */
typedef enum zp_backing {
  ZP_BACKING_ANONYMOUS = 0, /* private anonymous mappings (default) */
  ZP_BACKING_SECRET = 1     /* memfd_secret(2): pages removed from the
                               kernel's direct map, unreadable through
                               /proc/pid/mem, locked, never swapped; kept
                               out of fork children whatever fork_policy
                               says (they are shared memory). Where
                               the kernel lacks it, falls back to anonymous +
                               pinned_memory; zp_pool_config() reports the
                               backing really used, zp_stats.secret_bytes
                               how much */
} zp_backing;

/* Inaccessible (PROT_NONE) pages that stop a linear overflow or underflow
 * with SIGSEGV instead of letting it reach other memory. */
typedef enum zp_guard {
  ZP_GUARD_SPANS = 0,  /* a guard page before and after every mapping the
                          pool makes (default): a buffer larger than 64 KiB
                          has its own mapping, so it is guarded on both
                          sides; smaller buffers share a slab guarded at its
                          ends. Costs 2 extra kernel mappings (VMAs) per
                          mapping */
  ZP_GUARD_OFF = 1,    /* none */
  ZP_GUARD_BUFFERS = 2 /* as SPANS, plus a guard page after every buffer of
                          4 to 64 KiB: 2 more VMAs per buffer, within a
                          budget of a quarter of vm.max_map_count for the
                          process; slabs made beyond it have none (see
                          zp_stats.guard_pages) */
} zp_guard;

/* Tuning. The all-zero value means "every default"; zp_pool_config() tells
 * what each 0 resolved to on this machine. */
typedef struct zp_builder {
  /* Idle buffers one thread keeps for this pool, all sizes together;
   * 0 = auto (from the L2 cache size, 4..16). At most 4096. */
  size_t tls_cache_size;
  /* Smallest buffer: smaller requests round up to it. A power of two in
   * [64, 1 GiB]; 0 = 4 KiB. */
  size_t min_buffer_size;
  /* Idle buffers one shard keeps, all sizes together; 0 = auto (64).
   * At most 1 << 20. */
  size_t max_buffers_per_shard;
  /* Number of shards: a power of two in [1, ZP_MAX_SHARDS]; 0 = auto
   * (next power of two >= 2 x cores, clamped to [4, 256]). */
  size_t num_shards;
  /* Budget for idle memory in the whole pool, thread caches included; 0 =
   * auto (16 MiB per core, at least 64 MiB, at most 1/8 of RAM). When
   * nonzero it must be >= min_buffer_size. */
  size_t max_pooled_bytes;
  /* mlock the pool's memory and keep it out of core dumps. Best effort:
   * where the kernel refuses (RLIMIT_MEMLOCK), the buffer is still served and
   * zp_stats.pin_failures counts it. */
  bool pinned_memory;
  zp_eviction eviction_policy;
  /* Hardening (see the enums above). */
  zp_verify verify_on_get;
  bool zero_on_get; /* wipe [0, size) again on get: defence in depth for
                       memory written by something other than the pool's
                       users; costs one more write pass per get */
  zp_pinning pin_policy;
  zp_fork fork_policy;
  zp_backing backing;
  zp_guard guard_pages;
  /* Delayed reuse: each thread holds back its last `quarantine` put buffers
   * (wiped, idle) before they can be handed out again, so a second put or a
   * write through a stale pointer meets an idle buffer and is caught rather
   * than hitting the next user's data. 0 = none (default); at most 4096. */
  size_t quarantine;
  /* Must be zero: room for options to come. */
  uint64_t reserved[6];
} zp_builder;

/* Counters of one pool. Exact whenever no other thread is inside a zp_ call
 * on the pool (thread caches included). */
typedef struct zp_stats {
  uint64_t gets;                /* successful zp_get calls */
  uint64_t puts;                /* zp_put and zp_put_used calls */
  uint64_t hits;                /* gets served from a thread cache or shard */
  uint64_t misses;              /* gets that needed fresh memory */
  uint64_t evictions;           /* idle buffers released to respect a limit */
  uint64_t bytes_zeroed;        /* bytes wiped by puts */
  uint64_t idle_buffers;        /* buffers waiting, zeroed, in caches/shards */
  uint64_t idle_bytes;          /* their capacity in bytes */
  uint64_t outstanding_buffers; /* handed out and not yet put */
  uint64_t pinned_bytes;        /* bytes mlocked right now */
  uint64_t pin_failures;        /* mlock calls the kernel refused */
  uint64_t mapped_bytes;        /* bytes mapped from the OS right now */
  uint64_t os_maps;             /* OS mappings held right now */
  uint64_t secret_bytes;        /* of mapped_bytes, backed by memfd_secret */
  uint64_t guard_pages;         /* guard pages mapped right now */
} zp_stats;

/* Creates a pool. builder may be NULL (all defaults). Returns NULL with errno
 * EINVAL for an invalid builder (zp_builder_validate() names the field) or
 * ENOMEM. */
ZP_API ZP_NODISCARD zp_pool *zp_pool_new(const zp_builder *builder);

/* Destroys a pool: wipes and releases every idle buffer, including those in
 * other threads' caches. Buffers still out stay valid; each is wiped and
 * released when it is put. NULL is a no-op. */
ZP_API void zp_pool_destroy(zp_pool *pool);

/* Returns a buffer of at least size usable bytes, every one of them zero.
 * Buffers of 4 KiB and more are page aligned, smaller ones 64-byte aligned.
 * size 0 returns a valid (minimum-size) buffer, as malloc(0) may. Returns
 * NULL with errno EINVAL (pool is NULL) or ENOMEM (size > ZP_MAX_REQUEST, or
 * out of memory). Only the first size bytes may be written. */
ZP_API ZP_NODISCARD ZP_MALLOC ZP_ALLOC_SIZE(2) void *zp_get(zp_pool *pool,
                                                            size_t size);

/* Wipes every byte the buffer was handed out with and recycles it. NULL is a
 * no-op. May be called on any thread. */
ZP_API void zp_put(zp_pool *pool, void *buf);

/* As zp_put, for a caller that wrote only [0, used): only those bytes are
 * wiped. used larger than the size handed out is misuse (abort). */
ZP_API void zp_put_used(zp_pool *pool, void *buf, size_t used);

/* Fills *out with the pool's counters. 0, or -EINVAL for a NULL argument.
 * Idle buffers a thread left for another in a hand-off slot move to the
 * shards first, where they are counted (and subject to the limits, so a
 * call can count evictions); under concurrent use the figures are a
 * snapshot, not an atomic one. */
ZP_API int zp_pool_stats(zp_pool *pool, zp_stats *out);

/* Wipes and releases every idle buffer: thread caches of all threads and the
 * shards. 0, or -EINVAL. */
ZP_API int zp_pool_trim(zp_pool *pool);

/* Fills *out with the settings in effect, every auto value resolved.
 * 0, or -EINVAL. */
ZP_API int zp_pool_config(zp_pool *pool, zp_builder *out);

/* Checks a builder without creating a pool. Returns 0, or -EINVAL and, when
 * bad_field is not NULL, points *bad_field at the name of the first invalid
 * field ("num_shards", ...). */
ZP_API int zp_builder_validate(const zp_builder *builder,
                               const char **bad_field);

/* The usable size of a buffer this pool handed out (the size asked for), or
 * 0 when buf is not one of its outstanding buffers. Does not abort. */
ZP_API size_t zp_buffer_size(zp_pool *pool, const void *buf);

/* The library's version, "MAJOR.MINOR.PATCH", and as a number. */
ZP_API const char *zp_version_string(void);
ZP_API unsigned zp_version_number(void);

#ifdef __cplusplus
}
#endif

#endif /* ZEROPOOL_H */
