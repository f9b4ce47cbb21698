/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * API-sequence fuzzer against a shadow model.
 *
 * The input is a program: each op is one byte (low 5 bits: which op, high 3
 * bits: which pool slot) followed by its operands; a missing operand reads
 * as 0 and the program ends with the bytes (or after MAX_OPS ops). The ops
 * create pools from builders drawn from the bytes, get, write, put
 * (zp_put or zp_put_used), trim, read the counters, hop to a second thread
 * for a few ops, destroy a pool with buffers still out (they are put
 * later), and fail an OS acquisition on purpose (zp__os_fail_nth).
 *
 * The model knows every buffer that is out (its pool, its size, which
 * bytes were written and with what) and checks:
 *   - every zp_get returns size bytes, all zero, with the documented
 *     alignment, and zp_buffer_size says size;
 *   - no two buffers out overlap, in any pool, and no other pool claims one;
 *   - a buffer's bytes are what its user wrote until it is put;
 *   - the counters: gets and puts as counted here, gets == hits + misses,
 *     outstanding == buffers out of that pool, bytes_zeroed grew by exactly
 *     what each put declared, idle_bytes <= max_pooled_bytes, mapped_bytes
 *     covers idle and out bytes, guard_pages matches the guard setting;
 *     after a trim nothing is idle and a pool with nothing out maps nothing;
 *   - no get returns a buffer its thread put less than `quarantine` puts
 *     ago (where the pool's budgets cannot bind, see quarantine_checked);
 *   - zp_pool_config reports what was asked; an invalid builder is refused
 *     with EINVAL and its first bad field named;
 *   - a get fails only with ENOMEM and only where it may (an injected
 *     failure, strict pinning).
 * The program never misuses the API (misuse aborts by design): a put
 * declares at least every byte written, each buffer is put once, into its
 * own pool, and nothing runs concurrently with zp_pool_destroy. Every op on
 * the worker thread runs while the main thread waits, so a run is
 * deterministic apart from the CPU a thread runs on. At the end everything
 * is put and every pool destroyed: LeakSanitizer finds what is left.
 *
 * ZP_FUZZ_TRACE=1 in the environment prints each op on stderr;
 * ZP_FUZZ_STRICT_QUARANTINE=1 checks the quarantine in every pool (see
 * quarantine_checked).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "fuzz.h"
#include "zeropool.h"
#include "zp_testing.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NPOOLS 3    /* pool slots */
#define NHELD 40    /* buffers out at once, all pools */
#define MAX_OPS 600 /* ops per input */
#define MAX_HELD_BYTES (24u << 20)
#define QMAX 64 /* the largest quarantine the builders ask for */

/* ---- the model -------------------------------------------------------- */

typedef struct fz_pool {
  zp_pool *pool;      /* NULL: the slot is empty */
  zp_builder asked;   /* the builder it was created with */
  zp_builder cfg;     /* zp_pool_config's answer */
  bool gets_may_fail; /* strict pinning: a get may fail with ENOMEM */
  uint64_t gets, puts, bytes_zeroed;
  size_t held; /* buffers out */
  /* Quarantine: the last cfg.quarantine buffers each thread (0 main,
   * 1 worker) put, which no get may return yet. Forgotten where the pool
   * may legitimately let them go early (trim, thread exit). */
  unsigned char *qring[2][QMAX];
  unsigned qhead[2], qlen[2];
  bool only_small; /* every get so far asked for 64 KiB or less */
} fz_pool;

typedef struct fz_buf {
  unsigned char *p;
  size_t size;    /* asked for */
  zp_pool *owner; /* the pool it came from, destroyed or not */
  int slot;       /* its pool's slot, -1 once that pool was destroyed */
  unsigned char seed;
  size_t wlo, whi; /* [wlo, whi) holds the pattern; the rest is zero */
} fz_buf;

typedef struct fz_state {
  const uint8_t *data;
  size_t left;
  unsigned long op; /* ops started, for messages */
  const char *op_name;
  bool on_worker;
  bool worker_destroyed; /* the worker destroyed a pool (see cleanup) */
  fz_pool pools[NPOOLS];
  fz_buf held[NHELD];
  size_t nheld, held_bytes;
} fz_state;

static fz_state S;

/* ---- the worker thread -------------------------------------------------- */

enum { W_IDLE, W_JOB, W_DONE, W_QUIT };
static pthread_mutex_t w_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t w_cv = PTHREAD_COND_INITIALIZER;
static int w_state;
static bool w_started;
static pthread_t w_thread;

/* ---- failures and tracing ---------------------------------------------- */

static bool trace_on;
static pthread_once_t trace_once = PTHREAD_ONCE_INIT;
static bool env_flag(const char *name) {
  const char *e = getenv(name);
  return e && e[0] && strcmp(e, "0") != 0;
}
static bool strict_quarantine;
static void read_trace_env(void) {
  trace_on = env_flag("ZP_FUZZ_TRACE");
  strict_quarantine = env_flag("ZP_FUZZ_STRICT_QUARANTINE");
}

__attribute__((format(printf, 1, 2))) static void trace(const char *fmt, ...) {
  if (!trace_on)
    return;
  va_list ap;
  fprintf(stderr, "fuzz_api: %4lu %s ", S.op, S.on_worker ? "W" : "M");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

__attribute__((noreturn, format(printf, 3, 4))) static void
fz_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "fuzz_api: op %lu (%s, %s thread) %s:%d: ", S.op,
          S.op_name ? S.op_name : "cleanup", S.on_worker ? "worker" : "main",
          file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  abort();
}

#define FZ_FAIL(...) fz_fail(__FILE__, __LINE__, __VA_ARGS__)
#define FZ_CHECK(cond)                                                         \
  do {                                                                         \
    if (!(cond))                                                               \
      FZ_FAIL("check failed: %s", #cond);                                      \
  } while (0)
#define FZ_EQ(what, got, want)                                                 \
  do {                                                                         \
    unsigned long long g_ = (unsigned long long)(got);                         \
    unsigned long long w_ = (unsigned long long)(want);                        \
    if (g_ != w_)                                                              \
      FZ_FAIL("%s is %llu, the model says %llu", what, g_, w_);                \
  } while (0)

/* ---- reading the program ------------------------------------------------ */

static uint8_t rd8(void) {
  if (!S.left)
    return 0;
  S.left--;
  return *S.data++;
}

static uint16_t rd16(void) {
  uint16_t lo = rd8();
  return (uint16_t)(lo | (uint16_t)rd8() << 8);
}

/* v * n / 65536: an operand scaled to [0, n). */
static size_t scale16(uint16_t v, size_t n) {
  return (size_t)(((unsigned __int128)v * n) >> 16);
}

/* ---- helpers ------------------------------------------------------------ */

static bool all_zero(const unsigned char *p, size_t n) {
  return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static unsigned char pattern(unsigned char seed, size_t i) {
  return (unsigned char)((seed + i * 0x9Du) | 1u); /* never zero */
}

/* Whether zp_pool_trim can empty other threads' caches at once (it needs
 * membarrier); without it each owner empties its own at its next call. */
static bool membarrier_ok;
static void probe_membarrier(void) {
  long r = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  membarrier_ok = r > 0 && (r & MEMBARRIER_CMD_PRIVATE_EXPEDITED);
}

static bool membarrier_works(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, probe_membarrier);
  return membarrier_ok;
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* ---- the quarantine model ------------------------------------------------ */

static void quarantine_push(fz_pool *fp, unsigned char *p) {
  unsigned t = S.on_worker, cap = (unsigned)fp->cfg.quarantine;
  if (!cap)
    return;
  if (fp->qlen[t] == cap) {
    fp->qhead[t] = (fp->qhead[t] + 1) % cap;
    fp->qlen[t]--;
  }
  fp->qring[t][(fp->qhead[t] + fp->qlen[t]) % cap] = p;
  fp->qlen[t]++;
}

/* Whether the quarantine promise is checked for this pool. The pool keeps
 * quarantined buffers within its byte budgets (max_pooled_bytes, and a
 * thread cache's share of it), and a put that does not fit there bypasses
 * the quarantine (see tests/fuzz/README.md). By default the check runs
 * only where those budgets cannot bind: a budget of 64 MiB or more, no
 * buffer over 64 KiB, a quarantine of at most 8.
 * ZP_FUZZ_STRICT_QUARANTINE=1 checks every pool. */
static bool quarantine_checked(const fz_pool *fp) {
  return fp->cfg.quarantine &&
         (strict_quarantine ||
          (fp->cfg.max_pooled_bytes >= ((size_t)64 << 20) && fp->only_small &&
           fp->cfg.quarantine <= 8));
}

static bool quarantined(const fz_pool *fp, const unsigned char *p) {
  unsigned cap = (unsigned)fp->cfg.quarantine;
  if (!quarantine_checked(fp))
    return false;
  for (unsigned t = 0; t < 2; t++)
    for (unsigned k = 0; k < fp->qlen[t]; k++)
      if (fp->qring[t][(fp->qhead[t] + k) % cap] == p)
        return true;
  return false;
}

static void quarantine_forget(fz_pool *fp, unsigned t) {
  fp->qlen[t] = 0;
  fp->qhead[t] = 0;
}

/* ---- checks ----------------------------------------------------------- */

/* The bytes of b are exactly what its user wrote. */
static void check_contents(const fz_buf *b) {
  if (!all_zero(b->p, b->wlo))
    FZ_FAIL("buffer %p (%zu bytes): a byte below %zu is not zero", (void *)b->p,
            b->size, b->wlo);
  for (size_t i = b->wlo; i < b->whi; i++)
    if (b->p[i] != pattern(b->seed, i))
      FZ_FAIL("buffer %p (%zu bytes): byte %zu is 0x%02x, written 0x%02x",
              (void *)b->p, b->size, i, b->p[i], pattern(b->seed, i));
  if (!all_zero(b->p + b->whi, b->size - b->whi))
    FZ_FAIL("buffer %p (%zu bytes): a byte at or above %zu is not zero",
            (void *)b->p, b->size, b->whi);
}

/* p, just handed out with size n, overlaps no other buffer out. */
static void check_no_overlap(const unsigned char *p, size_t n) {
  uintptr_t a = (uintptr_t)p, a_end = a + max_size(n, 1);
  for (size_t i = 0; i < S.nheld; i++) {
    const fz_buf *h = &S.held[i];
    uintptr_t b = (uintptr_t)h->p, b_end = b + max_size(h->size, 1);
    if (a < b_end && b < a_end)
      FZ_FAIL("buffer %p (%zu bytes) overlaps buffer %p (%zu bytes) of %s "
              "pool, which is still out",
              (void *)p, n, (void *)h->p, h->size,
              h->slot < 0 ? "a destroyed" : "a live");
  }
}

/* No live pool but the one in slot `mine` (-1: none) claims p. */
static void check_not_claimed(const void *p, int mine) {
  for (int i = 0; i < NPOOLS; i++)
    if (i != mine && S.pools[i].pool)
      FZ_EQ("zp_buffer_size of another pool",
            zp_buffer_size(S.pools[i].pool, p), 0);
}

static zp_stats read_stats(zp_pool *pool) {
  zp_stats st;
  memset(&st, 0, sizeof st);
  FZ_EQ("zp_pool_stats", zp_pool_stats(pool, &st), 0);
  return st;
}

static void check_stats(int slot) {
  const fz_pool *fp = &S.pools[slot];
  zp_stats st = read_stats(fp->pool);
  uint64_t out_bytes = 0;
  for (size_t i = 0; i < S.nheld; i++)
    if (S.held[i].slot == slot)
      out_bytes += S.held[i].size;
  FZ_EQ("gets", st.gets, fp->gets);
  FZ_EQ("puts", st.puts, fp->puts);
  FZ_EQ("hits + misses", st.hits + st.misses, st.gets);
  FZ_EQ("outstanding_buffers", st.outstanding_buffers, fp->held);
  FZ_EQ("bytes_zeroed", st.bytes_zeroed, fp->bytes_zeroed);
  if (st.idle_bytes > fp->cfg.max_pooled_bytes)
    FZ_FAIL("idle_bytes %llu > max_pooled_bytes %zu",
            (unsigned long long)st.idle_bytes, fp->cfg.max_pooled_bytes);
  FZ_CHECK((st.idle_buffers == 0) == (st.idle_bytes == 0));
  FZ_CHECK(st.idle_bytes >= st.idle_buffers * fp->cfg.min_buffer_size);
  if (st.mapped_bytes < st.idle_bytes + out_bytes)
    FZ_FAIL("mapped_bytes %llu < idle_bytes %llu + %llu bytes out",
            (unsigned long long)st.mapped_bytes,
            (unsigned long long)st.idle_bytes, (unsigned long long)out_bytes);
  FZ_CHECK((st.os_maps == 0) == (st.mapped_bytes == 0));
  /* Shard lists, limits and the policy's state agree (CLOCK-Pro: idle
   * buffers per class == resident entries per class). */
  const char *bad = zp__pool_check_eviction(fp->pool);
  if (bad)
    FZ_FAIL("eviction invariant: %s", bad);
  FZ_CHECK(st.pinned_bytes <= st.mapped_bytes);
  FZ_CHECK(st.secret_bytes <= st.mapped_bytes);
  if (fp->cfg.backing != ZP_BACKING_SECRET)
    FZ_EQ("secret_bytes", st.secret_bytes, 0);
  if (!fp->cfg.pinned_memory)
    FZ_EQ("pinned_bytes", st.pinned_bytes, 0);
  /* Guard pages: none when off, two per mapping for spans, more with
   * per-buffer guards. */
  if (fp->cfg.guard_pages == ZP_GUARD_OFF)
    FZ_EQ("guard_pages (off)", st.guard_pages, 0);
  else if (fp->cfg.guard_pages == ZP_GUARD_SPANS)
    FZ_EQ("guard_pages (spans)", st.guard_pages, 2 * st.os_maps);
  else
    FZ_CHECK(st.guard_pages >= 2 * st.os_maps);
}

/* ---- builders ----------------------------------------------------------- */

static void draw_builder(zp_builder *b) {
  static const size_t min_sizes[4] = {0, 64, 4096, 256};
  static const size_t shards[8] = {0, 1, 2, 4, 8, 1, 2, 4};
  static const zp_guard guards[4] = {ZP_GUARD_SPANS, ZP_GUARD_OFF,
                                     ZP_GUARD_BUFFERS, ZP_GUARD_SPANS};
  static const size_t quarantines[8] = {0, 0, 0, 0, 1, 2, 5, 64};
  uint8_t f = rd8(), g = rd8(), h = rd8(), flags = rd8(), q = rd8();
  memset(b, 0, sizeof *b);
  b->min_buffer_size = min_sizes[f & 3];
  b->num_shards = shards[(f >> 2) & 7];
  b->tls_cache_size = (size_t)(f >> 5) * 2 + (g & 1); /* 0 = auto, 1..15 */
  b->max_buffers_per_shard = (g >> 1) & 3 ? (size_t)(g >> 3) + 1 : 0;
  size_t unit = b->min_buffer_size ? b->min_buffer_size : 4096;
  switch (h & 3) {
  case 0:
    b->max_pooled_bytes = 0; /* auto */
    break;
  case 1: /* tiny: one to four buffers of the smallest class */
    b->max_pooled_bytes = unit * (1 + ((h >> 2) & 3));
    break;
  case 2:
    b->max_pooled_bytes = ((size_t)64 << 10) * (1 + (h >> 2));
    break;
  default:
    b->max_pooled_bytes = unit + (size_t)(h >> 2) * 4096 + 1000;
    break;
  }
  b->verify_on_get = (zp_verify)((flags & 3) % 3);
  b->zero_on_get = (flags >> 2) & 1;
  b->pinned_memory = (flags >> 3) & 1;
  b->pin_policy = (flags >> 4) & 1 ? ZP_PIN_STRICT : ZP_PIN_BEST_EFFORT;
  b->fork_policy = (zp_fork)(((flags >> 5) & 3) % 3);
  /* Every policy, the default included (the top bit, else q's bit 5). */
  b->eviction_policy = (flags >> 7)   ? ZP_EVICTION_LIFO
                       : (q >> 5) & 1 ? ZP_EVICTION_DEFAULT
                                      : ZP_EVICTION_CLOCK_PRO;
  /* memfd_secret, rarely: its pages cost a fault each. */
  b->backing = (g & 7) == 7 && (h & 0x30) == 0x30 ? ZP_BACKING_SECRET
                                                  : ZP_BACKING_ANONYMOUS;
  b->guard_pages = guards[q & 3];
  b->quarantine = quarantines[(q >> 2) & 7];
}

/* zp_pool_config agrees with what was asked. */
static void check_config(const fz_pool *fp) {
  const zp_builder *a = &fp->asked, *c = &fp->cfg;
  FZ_EQ("config min_buffer_size", c->min_buffer_size,
        a->min_buffer_size ? a->min_buffer_size : 4096);
  if (a->num_shards)
    FZ_EQ("config num_shards", c->num_shards, a->num_shards);
  if (a->tls_cache_size)
    FZ_EQ("config tls_cache_size", c->tls_cache_size, a->tls_cache_size);
  if (a->max_buffers_per_shard)
    FZ_EQ("config max_buffers_per_shard", c->max_buffers_per_shard,
          a->max_buffers_per_shard);
  if (a->max_pooled_bytes)
    FZ_EQ("config max_pooled_bytes", c->max_pooled_bytes, a->max_pooled_bytes);
  FZ_CHECK(c->num_shards >= 1 && c->num_shards <= ZP_MAX_SHARDS &&
           (c->num_shards & (c->num_shards - 1)) == 0);
  FZ_CHECK(c->tls_cache_size >= 1 && c->tls_cache_size <= 4096);
  FZ_CHECK(c->max_pooled_bytes >= c->min_buffer_size);
  /* The policy asked for; the default resolves to a real one. */
  if (a->eviction_policy == ZP_EVICTION_DEFAULT)
    FZ_CHECK(c->eviction_policy == ZP_EVICTION_LIFO ||
             c->eviction_policy == ZP_EVICTION_CLOCK_PRO);
  else
    FZ_EQ("config eviction_policy", c->eviction_policy, a->eviction_policy);
  FZ_EQ("config verify_on_get", c->verify_on_get, a->verify_on_get);
  FZ_EQ("config zero_on_get", c->zero_on_get, a->zero_on_get);
  FZ_EQ("config pin_policy", c->pin_policy, a->pin_policy);
  FZ_EQ("config fork_policy", c->fork_policy, a->fork_policy);
  if (a->backing == ZP_BACKING_SECRET)
    FZ_CHECK(c->pinned_memory); /* the fallback is pinned memory */
  else
    FZ_EQ("config backing", c->backing, ZP_BACKING_ANONYMOUS);
  if (a->pinned_memory)
    FZ_CHECK(c->pinned_memory);
  FZ_EQ("config guard_pages", c->guard_pages, a->guard_pages);
  FZ_EQ("config quarantine", c->quarantine, a->quarantine);
}

/* Takes pool, just created from *b, into the empty slot. */
static void adopt_pool(int slot, zp_pool *pool, const zp_builder *b) {
  fz_pool *fp = &S.pools[slot];
  memset(fp, 0, sizeof *fp);
  fp->pool = pool;
  fp->asked = *b;
  fp->only_small = true;
  FZ_EQ("zp_pool_config", zp_pool_config(pool, &fp->cfg), 0);
  fp->gets_may_fail =
      fp->cfg.pinned_memory && fp->cfg.pin_policy == ZP_PIN_STRICT;
  check_config(fp);
  check_stats(slot);
}

static void new_pool(int slot) {
  zp_builder b;
  draw_builder(&b);
  trace("new slot %d min %zu shards %zu tls %zu per_shard %zu budget %zu "
        "verify %d zero %d pinned %d strict %d fork %d backing %d guard %d "
        "quarantine %zu eviction %d",
        slot, b.min_buffer_size, b.num_shards, b.tls_cache_size,
        b.max_buffers_per_shard, b.max_pooled_bytes, (int)b.verify_on_get,
        (int)b.zero_on_get, (int)b.pinned_memory, (int)b.pin_policy,
        (int)b.fork_policy, (int)b.backing, (int)b.guard_pages, b.quarantine,
        (int)b.eviction_policy);
  const char *bad = NULL;
  FZ_EQ("zp_builder_validate", zp_builder_validate(&b, &bad), 0);
  zp_pool *pool = zp_pool_new(&b);
  if (!pool)
    FZ_FAIL("zp_pool_new failed: %s", strerror(errno));
  adopt_pool(slot, pool, &b);
}

/* The pool of a slot, created (from the next bytes) when the slot is empty,
 * so that most inputs do something. */
static fz_pool *pool_at(int slot) {
  if (!S.pools[slot].pool)
    new_pool(slot);
  return &S.pools[slot];
}

/* ---- buffers ------------------------------------------------------------ */

static size_t draw_size(void) {
  uint8_t m = rd8();
  switch (m & 7) {
  case 0:
    return m >> 3; /* 0..31 */
  case 1:
  case 2:
    return (size_t)(m >> 3) << 8 | rd8(); /* 0..8191 */
  case 3:
  case 4:
    return rd16(); /* 0..65535 */
  case 5:
    return (size_t)4096 * (1 + (m >> 3)); /* whole pages, to 128 KiB */
  case 6:
    return ((size_t)64 << 10) + (size_t)rd16() * 8; /* 64..576 KiB */
  default:
    return (size_t)rd16() << 5; /* to 2 MiB */
  }
}

/* Writes the pattern over [lo, hi) of b, and over the gap to what was
 * written before: the written bytes stay one range. */
static void write_range(fz_buf *b, size_t lo, size_t hi) {
  if (lo >= hi)
    return;
  if (b->whi > b->wlo) {
    lo = lo < b->wlo ? lo : b->wlo;
    hi = hi > b->whi ? hi : b->whi;
  }
  for (size_t i = lo; i < hi; i++)
    b->p[i] = pattern(b->seed, i);
  b->wlo = lo;
  b->whi = hi;
}

/* Gets a buffer of n bytes from the slot's pool and checks it; injected:
 * an OS failure was armed, so the get may fail. */
static void get_one(int slot, size_t n, bool injected) {
  fz_pool *fp = pool_at(slot);
  if (S.nheld == NHELD || S.held_bytes + n > MAX_HELD_BYTES)
    return;
  if (n > ((size_t)64 << 10))
    fp->only_small = false;
  errno = 0;
  unsigned char *p = zp_get(fp->pool, n);
  int err = errno;
  trace("get slot %d size %zu -> %p", slot, n, (void *)p);
  if (!p) {
    if (err != ENOMEM)
      FZ_FAIL("zp_get(%zu) failed with errno %d, not ENOMEM", n, err);
    if (!injected && !fp->gets_may_fail)
      FZ_FAIL("zp_get(%zu) failed (ENOMEM) with no reason to", n);
    return;
  }
  uintptr_t align = n >= 4096 ? 4096 : 64;
  if ((uintptr_t)p % align)
    FZ_FAIL("zp_get(%zu) = %p, not %zu-byte aligned", n, (void *)p,
            (size_t)align);
  if (!all_zero(p, n))
    FZ_FAIL("zp_get(%zu) = %p: the buffer is not all zero", n, (void *)p);
  FZ_EQ("zp_buffer_size after get", zp_buffer_size(fp->pool, p), n);
  if (quarantined(fp, p))
    FZ_FAIL("zp_get(%zu) = %p, a buffer put less than %zu puts ago "
            "(quarantine)",
            n, (void *)p, fp->cfg.quarantine);
  check_no_overlap(p, n);
  check_not_claimed(p, slot);
  fz_buf *b = &S.held[S.nheld++];
  b->p = p;
  b->size = n;
  b->owner = fp->pool;
  b->slot = slot;
  b->seed = rd8();
  b->wlo = b->whi = 0;
  S.held_bytes += n;
  fp->gets++;
  fp->held++;
  /* Most users fill what they get: a third of the buffers are written at
   * once, whole or in part, so that dirty buffers are common. */
  if (b->seed % 3 == 1)
    write_range(b, 0, b->seed & 8 ? n : n / 2);
  check_stats(slot);
}

/* Puts held buffer i; used: SIZE_MAX for zp_put, else for zp_put_used (it
 * is raised to cover every written byte). */
static void put_one(size_t i, bool whole, uint16_t used_operand) {
  fz_buf b = S.held[i];
  check_contents(&b);
  S.held[i] = S.held[--S.nheld];
  S.held_bytes -= b.size;
  size_t declared;
  if (whole) {
    declared = b.size;
    trace("put %p (%zu bytes, %s pool)", (void *)b.p, b.size,
          b.slot < 0 ? "destroyed" : "live");
    zp_put(b.owner, b.p);
  } else {
    declared = b.whi + scale16(used_operand, b.size - b.whi + 1);
    trace("put_used %p (%zu bytes, written to %zu) used %zu, %s pool",
          (void *)b.p, b.size, b.whi, declared,
          b.slot < 0 ? "destroyed" : "live");
    zp_put_used(b.owner, b.p, declared);
  }
  if (b.slot < 0)
    return; /* its pool is gone: no counters to read */
  fz_pool *fp = &S.pools[b.slot];
  fp->puts++;
  fp->held--;
  fp->bytes_zeroed += declared;
  quarantine_push(fp, b.p);
  FZ_EQ("zp_buffer_size after put", zp_buffer_size(fp->pool, b.p), 0);
  check_stats(b.slot);
}

/* ---- ops ---------------------------------------------------------------- */

enum {
  OP_NEW,
  OP_GET,
  OP_WRITE,
  OP_PUT,
  OP_TRIM,
  OP_STATS,
  OP_HOP,
  OP_DESTROY,
  OP_CHECK,
  OP_FAULT_GET,
  OP_FAULT_NEW,
  OP_EDGE,
  OP_BURST,
  OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "new",     "get",   "write",     "put",       "trim", "stats", "hop",
    "destroy", "check", "fault_get", "fault_new", "edge", "burst"};

/* 32 entries: the low 5 bits of an op byte. */
static const uint8_t op_table[32] = {
    OP_NEW,     OP_NEW,    OP_GET,       OP_GET,       OP_GET,   OP_GET,
    OP_GET,     OP_GET,    OP_GET,       OP_WRITE,     OP_WRITE, OP_WRITE,
    OP_WRITE,   OP_PUT,    OP_PUT,       OP_PUT,       OP_PUT,   OP_PUT,
    OP_PUT,     OP_TRIM,   OP_STATS,     OP_STATS,     OP_HOP,   OP_HOP,
    OP_DESTROY, OP_CHECK,  OP_FAULT_GET, OP_FAULT_NEW, OP_EDGE,  OP_BURST,
    OP_BURST,   OP_DESTROY};

static void destroy_slot(int slot) {
  fz_pool *fp = &S.pools[slot];
  if (!fp->pool)
    return;
  check_stats(slot);
  trace("destroy slot %d with %zu buffers out", slot, fp->held);
  zp_pool_destroy(fp->pool);
  for (size_t i = 0; i < S.nheld; i++)
    if (S.held[i].slot == slot)
      S.held[i].slot = -1; /* out of a destroyed pool: put it later */
  memset(fp, 0, sizeof *fp);
  if (S.on_worker)
    S.worker_destroyed = true;
}

static void op_trim(int slot) {
  fz_pool *fp = pool_at(slot);
  trace("trim slot %d", slot);
  FZ_EQ("zp_pool_trim", zp_pool_trim(fp->pool), 0);
  quarantine_forget(fp, 0); /* trim releases what quarantines hold */
  quarantine_forget(fp, 1);
  check_stats(slot);
  if (!membarrier_works())
    return; /* other threads' caches are emptied later, by their owners */
  zp_stats st = read_stats(fp->pool);
  FZ_EQ("idle_buffers after trim", st.idle_buffers, 0);
  FZ_EQ("idle_bytes after trim", st.idle_bytes, 0);
  if (fp->held == 0) {
    FZ_EQ("mapped_bytes after trim, nothing out", st.mapped_bytes, 0);
    FZ_EQ("os_maps after trim, nothing out", st.os_maps, 0);
  }
}

/* Every buffer out, whole: contents, overlap, sizes, no other claimant. */
static void op_check(void) {
  trace("check %zu buffers", S.nheld);
  for (size_t i = 0; i < S.nheld; i++) {
    const fz_buf *b = &S.held[i];
    check_contents(b);
    for (size_t j = i + 1; j < S.nheld; j++) {
      const fz_buf *c = &S.held[j];
      uintptr_t a0 = (uintptr_t)b->p, a1 = a0 + max_size(b->size, 1);
      uintptr_t c0 = (uintptr_t)c->p, c1 = c0 + max_size(c->size, 1);
      FZ_CHECK(a1 <= c0 || c1 <= a0);
    }
    if (b->slot >= 0) {
      zp_pool *pool = S.pools[b->slot].pool;
      FZ_EQ("zp_buffer_size", zp_buffer_size(pool, b->p), b->size);
      /* An interior pointer is not a buffer (and does not abort here). */
      if (b->size > 64)
        FZ_EQ("zp_buffer_size of an interior pointer",
              zp_buffer_size(pool, b->p + 64), 0);
    }
    check_not_claimed(b->p, b->slot);
  }
  for (int s = 0; s < NPOOLS; s++)
    if (S.pools[s].pool)
      check_stats(s);
}

/* Invalid builders are refused with EINVAL and the field named; NULL and
 * oversized arguments are refused without aborting. */
/* Fields in struct order, which is the order zp_builder_validate names
 * the first invalid one in. */
static const char *const builder_fields[] = {
    "tls_cache_size", "min_buffer_size",  "max_buffers_per_shard",
    "num_shards",     "max_pooled_bytes", "eviction_policy",
    "verify_on_get",  "pin_policy",       "fork_policy",
    "backing",        "guard_pages",      "quarantine",
    "reserved"};
#define NFIELDS (sizeof builder_fields / sizeof builder_fields[0])

/* Makes field i of b invalid; v varies how. */
static void break_field(zp_builder *b, unsigned i, unsigned v) {
  switch (i) {
  case 0:
    b->tls_cache_size = 4097 + v;
    break;
  case 1:
    b->min_buffer_size = v & 1 ? 32 : 100 + v;
    break;
  case 2:
    b->max_buffers_per_shard = ((size_t)1 << 20) + 1 + v;
    break;
  case 3:
    b->num_shards = v & 1 ? 512 : 3 + (size_t)v * 2; /* too many, or odd */
    break;
  case 4:
    b->max_pooled_bytes = 1 + v; /* below any min_buffer_size */
    break;
  case 5:
    b->eviction_policy = (zp_eviction)(3 + v);
    break;
  case 6:
    b->verify_on_get = (zp_verify)(3 + v);
    break;
  case 7:
    b->pin_policy = (zp_pinning)(2 + v);
    break;
  case 8:
    b->fork_policy = (zp_fork)(3 + v);
    break;
  case 9:
    b->backing = (zp_backing)(2 + v);
    break;
  case 10:
    b->guard_pages = (zp_guard)(3 + v);
    break;
  case 11:
    b->quarantine = 4097 + v;
    break;
  default:
    b->reserved[v % 6] = 1;
    break;
  }
}

/* Invalid builders are refused with EINVAL and the first bad field named;
 * NULL and oversized arguments are refused without aborting. */
static void op_edge(int slot) {
  uint8_t which = rd8(), other = rd8();
  unsigned i1 = which % NFIELDS, i2 = other % NFIELDS;
  zp_builder b;
  memset(&b, 0, sizeof b);
  break_field(&b, i1, which >> 4);
  if (other & 0x80) {
    break_field(&b, i2, other >> 4 & 7); /* two bad fields */
    i1 = i1 < i2 ? i1 : i2;
  }
  const char *bad = NULL;
  trace("edge: bad %s%s", builder_fields[i1],
        other & 0x80 ? " (and more)" : "");
  FZ_EQ("zp_builder_validate of a bad builder", zp_builder_validate(&b, &bad),
        -EINVAL);
  if (!bad || strcmp(bad, builder_fields[i1]) != 0)
    FZ_FAIL("zp_builder_validate named %s, not %s", bad ? bad : "nothing",
            builder_fields[i1]);
  errno = 0;
  FZ_CHECK(zp_pool_new(&b) == NULL && errno == EINVAL);
  errno = 0;
  FZ_CHECK(zp_get(NULL, 1) == NULL && errno == EINVAL);
  zp_stats st;
  zp_builder cfg;
  FZ_EQ("zp_pool_stats(NULL)", zp_pool_stats(NULL, &st), -EINVAL);
  FZ_EQ("zp_pool_trim(NULL)", zp_pool_trim(NULL), -EINVAL);
  FZ_EQ("zp_pool_config(NULL)", zp_pool_config(NULL, &cfg), -EINVAL);
  zp_pool_destroy(NULL);
  fz_pool *fp = pool_at(slot);
  zp_put(fp->pool, NULL);
  zp_put_used(fp->pool, NULL, 5);
  FZ_EQ("zp_buffer_size(NULL)", zp_buffer_size(fp->pool, NULL), 0);
  FZ_EQ("zp_buffer_size(stack)", zp_buffer_size(fp->pool, &b), 0);
  errno = 0;
  FZ_CHECK(zp_get(fp->pool, ZP_MAX_REQUEST + 1) == NULL && errno == ENOMEM);
  check_stats(slot);
}

static void run_op(void);

static void *worker_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&w_lock);
  for (;;) {
    while (w_state != W_JOB && w_state != W_QUIT)
      pthread_cond_wait(&w_cv, &w_lock);
    if (w_state == W_QUIT)
      break;
    pthread_mutex_unlock(&w_lock);
    S.on_worker = true;
    run_op();
    S.on_worker = false;
    pthread_mutex_lock(&w_lock);
    w_state = W_DONE;
    pthread_cond_broadcast(&w_cv);
  }
  pthread_mutex_unlock(&w_lock);
  return NULL;
}

/* Runs the next op on the worker thread while this one waits. */
static void hop_one(void) {
  if (!w_started) {
    w_state = W_IDLE;
    if (pthread_create(&w_thread, NULL, worker_main, NULL) != 0)
      FZ_FAIL("pthread_create failed");
    w_started = true;
  }
  pthread_mutex_lock(&w_lock);
  w_state = W_JOB;
  pthread_cond_broadcast(&w_cv);
  while (w_state != W_DONE)
    pthread_cond_wait(&w_cv, &w_lock);
  w_state = W_IDLE;
  pthread_mutex_unlock(&w_lock);
}

/* Ends the worker thread: its caches go back to their pools' shards. */
static void worker_join(void) {
  if (!w_started)
    return;
  pthread_mutex_lock(&w_lock);
  w_state = W_QUIT;
  pthread_cond_broadcast(&w_cv);
  pthread_mutex_unlock(&w_lock);
  if (pthread_join(w_thread, NULL) != 0)
    FZ_FAIL("pthread_join failed");
  w_started = false;
  for (int s = 0; s < NPOOLS; s++)
    quarantine_forget(&S.pools[s], 1); /* its exit flushed them to shards */
}

static void run_op(void) {
  uint8_t code = rd8();
  unsigned kind = op_table[code & 31];
  int slot = (code >> 5) % NPOOLS;
  S.op++;
  S.op_name = op_names[kind];
  switch (kind) {
  case OP_NEW:
    if (S.pools[slot].pool)
      destroy_slot(slot);
    new_pool(slot);
    break;
  case OP_GET:
    get_one(slot, draw_size(), false);
    break;
  case OP_WRITE: {
    uint8_t i = rd8();
    uint16_t off = rd16(), len = rd16();
    if (!S.nheld)
      break;
    fz_buf *b = &S.held[i % S.nheld];
    size_t lo = scale16(off, b->size);
    size_t hi = lo + 1 + scale16(len, b->size - lo);
    if (b->size == 0)
      break;
    trace("write %p [%zu, %zu)", (void *)b->p, lo, hi);
    write_range(b, lo, hi);
    break;
  }
  case OP_PUT: {
    uint8_t i = rd8(), mode = rd8();
    uint16_t used = rd16();
    if (S.nheld)
      put_one(i % S.nheld, mode & 1, used);
    break;
  }
  case OP_TRIM:
    op_trim(slot);
    break;
  case OP_STATS:
    pool_at(slot);
    trace("stats slot %d", slot);
    check_stats(slot);
    break;
  case OP_HOP: {
    unsigned n = 1 + rd8() % 4;
    if (S.on_worker)
      break; /* already there */
    trace("hop %u ops", n);
    for (unsigned k = 0; k < n && S.left; k++)
      hop_one();
    break;
  }
  case OP_DESTROY:
    destroy_slot(slot);
    break;
  case OP_CHECK:
    op_check();
    break;
  case OP_FAULT_GET: {
    unsigned long nth = 1 + rd8() % 4;
    size_t n = draw_size();
    pool_at(slot);
    trace("fault: acquisition %lu from now fails", nth);
    zp__os_fail_nth(nth);
    get_one(slot, n, true);
    zp__os_fail_nth(0);
    break;
  }
  case OP_FAULT_NEW: {
    unsigned long nth = 1 + rd8() % 6;
    zp_builder b;
    draw_builder(&b);
    if (S.pools[slot].pool)
      break;
    trace("fault: acquisition %lu from now fails, then zp_pool_new", nth);
    zp__os_fail_nth(nth);
    errno = 0;
    zp_pool *pool = zp_pool_new(&b);
    int err = errno;
    zp__os_fail_nth(0);
    if (!pool) {
      FZ_EQ("errno of a failed zp_pool_new", err, ENOMEM);
      break;
    }
    adopt_pool(slot, pool, &b);
    break;
  }
  case OP_EDGE:
    op_edge(slot);
    break;
  case OP_BURST: {
    uint8_t mode = rd8();
    if (mode & 1) {
      /* Puts every buffer of this pool, newest first. */
      trace("burst: put all of slot %d", slot);
      for (size_t k = S.nheld; k-- > 0;)
        if (S.held[k].slot == slot)
          put_one(k, mode & 2, (uint16_t)(mode << 8));
    } else {
      /* Many of one size: overflows the thread cache into a shard. */
      size_t n = draw_size(), count = 2 + (mode >> 1) % 15;
      trace("burst: %zu gets of %zu bytes", count, n);
      for (size_t k = 0; k < count; k++)
        get_one(slot, n, false);
    }
    break;
  }
  default:
    break;
  }
  S.op_name = NULL;
}

/* Puts every buffer still out and destroys every pool, in the order the
 * input's last byte picks; afterwards no memory of this input remains. */
static void cleanup(uint8_t mode) {
  trace("cleanup mode %u", mode);
  if (mode & 1)
    worker_join(); /* its caches go back to live pools */
  if (mode & 2) {
    for (int s = 0; s < NPOOLS; s++)
      destroy_slot(s); /* buffers out become a destroyed pool's */
  }
  while (S.nheld)
    put_one(S.nheld - 1, mode & 4, (uint16_t)(mode << 8));
  for (int s = 0; s < NPOOLS; s++) {
    if (S.pools[s].pool) {
      FZ_EQ("outstanding at the end",
            read_stats(S.pools[s].pool).outstanding_buffers, 0);
      destroy_slot(s);
    }
  }
  worker_join(); /* after destroy: it frees its orphaned caches */
  if (S.worker_destroyed) {
    /* The worker destroyed a pool this thread has a cache of: the cache is
     * freed at this thread's next zp_pool_destroy. Make it now. */
    zp_pool *sweep = zp_pool_new(NULL);
    FZ_CHECK(sweep != NULL);
    zp_pool_destroy(sweep);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pthread_once(&trace_once, read_trace_env);
  memset(&S, 0, sizeof S);
  S.data = data;
  S.left = size;
  trace("input of %zu bytes", size);
  while (S.left && S.op < MAX_OPS)
    run_op();
  cleanup(size ? data[size - 1] : 0);
  return 0;
}
