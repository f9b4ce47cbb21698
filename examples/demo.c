/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * zp_demo: zeropool on an I/O-style workload.
 *
 * Prints what the library detected about this machine and the settings the
 * default pool resolved to, then runs the same work three ways on 2 x nproc
 * threads:
 *
 *   pool    zp_get(64 KiB) -> pread(2) 33 B..64 KiB of a temporary file into it
 *           -> checksum the bytes read -> zp_put_used(n)  (wipes n bytes)
 *   malloc  malloc(64 KiB) -> pread -> checksum -> explicit_bzero(n) -> free
 *   calloc  calloc(64 KiB) -> pread -> checksum -> free    (zeroes on get)
 *
 * Every thread draws the same read lengths and offsets in every mode, so the
 * three checksums must agree. Buffers that promise zeros (pool, calloc) are
 * spot-checked on get: their first and last 64 bytes must be zero. The demo
 * prints ops/s, the ratios and the pool's counters, and exits non-zero if a
 * checksum or a spot check fails.
 *
 * Usage: zp_demo [--quick] [--threads N] [--ops N]
 *   --quick      about a second in all (smoke test)
 *   --threads N  worker threads (default 2 x online CPUs)
 *   --ops N      cycles per mode, all threads together
 */
#define _DEFAULT_SOURCE /* explicit_bzero, pread under -std=c11 */

#include "zp_testing.h"

#include <zeropool.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE ((size_t)64 * 1024)
#define FILE_SIZE ((size_t)1024 * 1024 + BUF_SIZE)
#define SPOT 64
#define FULL_OPS 4000000UL
#define QUICK_OPS 400000UL

enum mode { MODE_POOL, MODE_MALLOC, MODE_CALLOC, MODE_COUNT };

static const char *const mode_names[MODE_COUNT] = {
    "zp_get + zp_put_used",
    "malloc + explicit_bzero + free",
    "calloc + free",
};

struct worker {
  pthread_t thread;
  enum mode mode;
  unsigned index;
  unsigned long ops;
  int fd;
  zp_pool *pool;
  /* results */
  uint64_t checksum;
  uint64_t bytes;
  unsigned long nonzero; /* spot checks that found a non-zero byte */
  unsigned long failures;
};

static uint64_t next_rand(uint64_t *s) {
  /* xorshift64* */
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * UINT64_C(0x2545F4914F6CDD1D);
}

static uint64_t checksum(const unsigned char *p, size_t n) {
  uint64_t a = 1, b = 0; /* Fletcher-like, 64-bit lanes */
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    a += w;
    b += a;
  }
  for (; i < n; i++) {
    a += p[i];
    b += a;
  }
  return a ^ (b << 1);
}

static int spot_zero(const unsigned char *p) {
  static const unsigned char zero[SPOT];
  return memcmp(p, zero, SPOT) == 0 &&
         memcmp(p + BUF_SIZE - SPOT, zero, SPOT) == 0;
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  uint64_t seed = UINT64_C(0x9E3779B97F4A7C15) * (w->index + 1);
  for (unsigned long op = 0; op < w->ops; op++) {
    /* Log-uniform length in [33 B, 64 KiB]: mostly small reads, as a
     * network or record reader sees them. Octave e: (2^(e-1), 2^e]. */
    uint64_t r = next_rand(&seed);
    size_t hi = (size_t)1 << (6 + r % 11); /* 64 B .. 64 KiB */
    size_t len = hi / 2 + 1 + (size_t)((r >> 8) % (hi / 2));
    off_t off = (off_t)(next_rand(&seed) % (FILE_SIZE - BUF_SIZE));
    unsigned char *buf;
    switch (w->mode) {
    case MODE_POOL:
      buf = zp_get(w->pool, BUF_SIZE);
      break;
    case MODE_MALLOC:
      buf = malloc(BUF_SIZE);
      break;
    default:
      buf = calloc(1, BUF_SIZE);
      break;
    }
    if (buf == NULL) {
      w->failures++;
      continue;
    }
    if (w->mode != MODE_MALLOC && !spot_zero(buf))
      w->nonzero++;

    ssize_t got = pread(w->fd, buf, len, off);
    size_t n = got > 0 ? (size_t)got : 0;
    if ((size_t)got != len)
      w->failures++;
    w->checksum += checksum(buf, n);
    w->bytes += n;

    switch (w->mode) {
    case MODE_POOL:
      zp_put_used(w->pool, buf, n);
      break;
    case MODE_MALLOC:
      explicit_bzero(buf, n);
      free(buf);
      break;
    default:
      free(buf);
      break;
    }
  }
  return NULL;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *human(size_t n, char *out, size_t cap) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  unsigned u = 0;
  double v = (double)n;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  if (u == 0)
    snprintf(out, cap, "%zu B", n);
  else
    snprintf(out, cap, "%.4g %s", v, units[u]);
  return out;
}

static int make_data_file(void) {
  const char *dir = getenv("TMPDIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/zp_demo.XXXXXX",
           dir != NULL && *dir != '\0' ? dir : "/tmp");
  int fd = mkstemp(path);
  if (fd < 0) {
    fprintf(stderr, "zp_demo: mkstemp %s: %s\n", path, strerror(errno));
    return -1;
  }
  unlink(path); /* gone when the demo exits */
  unsigned char *data = malloc(FILE_SIZE);
  if (data == NULL) {
    close(fd);
    return -1;
  }
  uint64_t seed = 42;
  for (size_t i = 0; i < FILE_SIZE; i += 8) {
    uint64_t r = next_rand(&seed);
    memcpy(data + i, &r, 8);
  }
  size_t done = 0;
  while (done < FILE_SIZE) {
    ssize_t k = write(fd, data + done, FILE_SIZE - done);
    if (k <= 0) {
      fprintf(stderr, "zp_demo: write: %s\n", strerror(errno));
      free(data);
      close(fd);
      return -1;
    }
    done += (size_t)k;
  }
  free(data);
  return fd;
}

struct result {
  double seconds;
  uint64_t checksum;
  uint64_t bytes;
  unsigned long nonzero;
  unsigned long failures;
};

static int run_mode(enum mode mode, unsigned nthreads, unsigned long ops,
                    int fd, zp_pool *pool, struct result *res) {
  struct worker *ws = calloc(nthreads, sizeof *ws);
  if (ws == NULL)
    return -1;
  memset(res, 0, sizeof *res);
  unsigned started = 0;
  double t0 = now_seconds();
  for (unsigned i = 0; i < nthreads; i++) {
    ws[i].mode = mode;
    ws[i].index = i;
    ws[i].ops = ops / nthreads + (i < ops % nthreads ? 1 : 0);
    ws[i].fd = fd;
    ws[i].pool = pool;
    int err = pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
    if (err != 0) {
      fprintf(stderr, "zp_demo: pthread_create: %s\n", strerror(err));
      break;
    }
    started++;
  }
  for (unsigned i = 0; i < started; i++) {
    pthread_join(ws[i].thread, NULL);
    res->checksum += ws[i].checksum;
    res->bytes += ws[i].bytes;
    res->nonzero += ws[i].nonzero;
    res->failures += ws[i].failures;
  }
  res->seconds = now_seconds() - t0;
  free(ws);
  return started == nthreads ? 0 : -1;
}

static void print_topology(const zp__topology *t) {
  char l2[32], l3[32], ram[32];
  printf("Topology (%s)\n", t->source != NULL ? t->source : "?");
  printf("  logical CPUs %u, cores %u, L3 domains %u\n", t->pus, t->cores,
         t->l3_domains);
  printf("  L2 per core %s, L3 %s, RAM %s\n",
         t->l2_bytes ? human(t->l2_bytes, l2, sizeof l2) : "unknown",
         t->l3_bytes ? human(t->l3_bytes, l3, sizeof l3) : "unknown",
         t->ram_bytes ? human(t->ram_bytes, ram, sizeof ram) : "unknown");
}

static void print_config(const zp_builder *c) {
  char b1[32], b2[32];
  printf("Pool settings (zp_pool_new(NULL), resolved)\n");
  printf("  num_shards %zu, tls_cache_size %zu, max_buffers_per_shard %zu\n",
         c->num_shards, c->tls_cache_size, c->max_buffers_per_shard);
  printf("  max_pooled_bytes %s, min_buffer_size %s\n",
         human(c->max_pooled_bytes, b1, sizeof b1),
         human(c->min_buffer_size, b2, sizeof b2));
  printf("  pinned_memory %s, eviction %s\n", c->pinned_memory ? "yes" : "no",
         c->eviction_policy == ZP_EVICTION_LIFO ? "LIFO" : "CLOCK-Pro");
}

static void print_stats(const char *title, const zp_stats *s) {
  char b1[32], b2[32], b3[32], b4[32];
  uint64_t lookups = s->hits + s->misses;
  printf("%s\n", title);
  printf("  gets %" PRIu64 ", puts %" PRIu64 ", hits %" PRIu64
         ", misses %" PRIu64 ", hit ratio %.4f\n",
         s->gets, s->puts, s->hits, s->misses,
         lookups ? (double)s->hits / (double)lookups : 0.0);
  printf("  bytes_zeroed %s, evictions %" PRIu64 ", outstanding %" PRIu64 "\n",
         human((size_t)s->bytes_zeroed, b1, sizeof b1), s->evictions,
         s->outstanding_buffers);
  printf("  idle %" PRIu64 " buffers (%s), mapped %s in %" PRIu64
         " mappings, pinned %s\n",
         s->idle_buffers, human((size_t)s->idle_bytes, b2, sizeof b2),
         human((size_t)s->mapped_bytes, b3, sizeof b3), s->os_maps,
         human((size_t)s->pinned_bytes, b4, sizeof b4));
}

static int parse_ulong(const char *s, unsigned long *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v == 0)
    return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  unsigned long ops = FULL_OPS, threads = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) {
      /* Under valgrind and TSan (ZP_TEST_QUICK=1) a smoke run is smaller. */
      const char *q = getenv("ZP_TEST_QUICK");
      ops = q && *q && strcmp(q, "0") != 0 ? QUICK_OPS / 40 : QUICK_OPS;
    } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc &&
               parse_ulong(argv[i + 1], &threads) == 0 && threads <= 4096) {
      i++;
    } else if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc &&
               parse_ulong(argv[i + 1], &ops) == 0) {
      i++;
    } else {
      fprintf(stderr, "usage: %s [--quick] [--threads N] [--ops N]\n", argv[0]);
      return 2;
    }
  }

  printf("zeropool %s demo\n\n", zp_version_string());
  zp__topology topo;
  zp__topology_detect(&topo);
  print_topology(&topo);

  zp_pool *pool = zp_pool_new(NULL);
  if (pool == NULL) {
    perror("zp_demo: zp_pool_new");
    return 1;
  }
  zp_builder cfg;
  if (zp_pool_config(pool, &cfg) == 0)
    print_config(&cfg);

  if (threads == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    threads = 2 * (unsigned long)(n > 0 ? n : 1);
  }
  int fd = make_data_file();
  if (fd < 0) {
    zp_pool_destroy(pool);
    return 1;
  }

  printf("\nWorkload: %lu threads, %lu cycles per mode, 64 KiB buffers, "
         "reads of 33 B..64 KiB (log-uniform)\n\n",
         threads, ops);
  printf("| mode | seconds | cycles/s | GiB/s read | vs pool |\n"
         "|---|---|---|---|---|\n");
  struct result res[MODE_COUNT];
  int ok = 1;
  for (int m = 0; m < MODE_COUNT; m++) {
    if (run_mode((enum mode)m, (unsigned)threads, ops, fd, pool, &res[m]) !=
        0) {
      ok = 0;
      break;
    }
    double rate = (double)ops / res[m].seconds;
    printf("| %s | %.3f | %.0f | %.2f | %.2fx |\n", mode_names[m],
           res[m].seconds, rate,
           (double)res[m].bytes / res[m].seconds / (1024.0 * 1024 * 1024),
           res[0].seconds / res[m].seconds);
    fflush(stdout);
  }
  close(fd);

  if (ok) {
    printf("\npool cycles/s are %.2fx malloc+explicit_bzero+free and %.2fx "
           "calloc+free\n",
           res[MODE_MALLOC].seconds / res[MODE_POOL].seconds,
           res[MODE_CALLOC].seconds / res[MODE_POOL].seconds);
    for (int m = 0; m < MODE_COUNT; m++) {
      if (res[m].checksum != res[MODE_POOL].checksum) {
        fprintf(stderr, "zp_demo: checksum of '%s' differs from the pool's\n",
                mode_names[m]);
        ok = 0;
      }
      if (res[m].failures != 0) {
        fprintf(stderr, "zp_demo: '%s': %lu failed allocations or reads\n",
                mode_names[m], res[m].failures);
        ok = 0;
      }
    }
    if (res[MODE_POOL].nonzero != 0 || res[MODE_CALLOC].nonzero != 0) {
      fprintf(stderr,
              "zp_demo: buffers not zero on get: pool %lu, calloc %lu\n",
              res[MODE_POOL].nonzero, res[MODE_CALLOC].nonzero);
      ok = 0;
    }
    printf("checksums %s; zero spot checks on get: pool %lu, calloc %lu "
           "failures\n\n",
           ok ? "agree" : "DIFFER", res[MODE_POOL].nonzero,
           res[MODE_CALLOC].nonzero);
  }

  zp_stats st;
  if (zp_pool_stats(pool, &st) == 0)
    print_stats("Pool stats after the run", &st);
  if (zp_pool_trim(pool) == 0 && zp_pool_stats(pool, &st) == 0)
    print_stats("Pool stats after zp_pool_trim", &st);
  zp_pool_destroy(pool);
  return ok ? 0 : 1;
}
