/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Two builds of libzeropool side by side in one process, for a change whose
 * effect is smaller than this machine's noise between processes and runs.
 *
 *   zpb_pair LIB_A LIB_B [prodcons|cycle] [SIZE] [OPS] [ROUNDS]
 *   e.g. zpb_pair /tmp/before/libzeropool.so build/release/libzeropool.so
 *
 * Both libraries are dlopen'ed (RTLD_LOCAL: each keeps its own page map,
 * pools and thread caches). Each round runs OPS operations on a fresh pool
 * of each library, A then B or B then A in turn, so a slow moment of the
 * host falls on both; the verdict is the median of the per-round ratios
 * B / A, not a ratio of medians. prodcons (the default) passes SIZE-byte
 * buffers from this thread (get, write) to a consumer thread (put) through
 * a 64-slot ring, like zp_bench's prodcons; before each round a ping-pong
 * probe measures the cache-line latency between two threads, which the
 * host's placement of the vCPUs sets and every hand-off pays, and rounds
 * are also reported by it (near: under 100 ns). The probe is a hint, not a
 * label: the host may move the threads during the round. cycle: one
 * thread gets, writes and puts.
 */
#include "zeropool.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct lib {
  const char *path;
  zp_pool *(*pool_new)(const zp_builder *);
  void (*pool_destroy)(zp_pool *);
  void *(*get)(zp_pool *, size_t);
  void (*put)(zp_pool *, void *);
} lib;

#define RING 64
#define MAX_ROUNDS 1000

static struct {
  _Alignas(64) _Atomic size_t head; /* written by the producer */
  _Alignas(64) _Atomic size_t tail; /* written by the consumer */
  _Alignas(64) void *slot[RING];
} ring;

static const lib *g_lib;
static zp_pool *g_pool;
static _Alignas(64) _Atomic long g_flag; /* the probe's ping-pong */

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void load_lib(lib *l, const char *path) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "zpb_pair: %s\n", dlerror());
    exit(2);
  }
  l->path = path;
  *(void **)&l->pool_new = dlsym(h, "zp_pool_new");
  *(void **)&l->pool_destroy = dlsym(h, "zp_pool_destroy");
  *(void **)&l->get = dlsym(h, "zp_get");
  *(void **)&l->put = dlsym(h, "zp_put");
  if (!l->pool_new || !l->pool_destroy || !l->get || !l->put) {
    fprintf(stderr, "zpb_pair: %s: not a zeropool library\n", path);
    exit(2);
  }
}

static void *pong(void *arg) {
  long rounds = *(long *)arg;
  for (long i = 1; i < 2 * rounds; i += 2) {
    while (atomic_load_explicit(&g_flag, memory_order_acquire) != i) {
    }
    atomic_store_explicit(&g_flag, i + 1, memory_order_release);
  }
  return NULL;
}

/* One-way latency of a cache line between this thread and another. */
static double probe_ns(void) {
  long rounds = 2000, warm = 100;
  pthread_t t;
  double t0 = 0;
  atomic_store(&g_flag, 0);
  if (pthread_create(&t, NULL, pong, &rounds) != 0)
    return -1;
  for (long i = 0; i < 2 * rounds; i += 2) {
    if (i == 2 * warm)
      t0 = now_ns();
    while (atomic_load_explicit(&g_flag, memory_order_acquire) != i) {
    }
    atomic_store_explicit(&g_flag, i + 1, memory_order_release);
  }
  double t1 = now_ns();
  pthread_join(t, NULL);
  return (t1 - t0) / (2.0 * (double)(rounds - warm));
}

static void *consumer(void *arg) {
  size_t tail = 0;
  (void)arg;
  for (;;) {
    while (atomic_load_explicit(&ring.head, memory_order_acquire) == tail) {
    }
    void *p = ring.slot[tail % RING];
    atomic_store_explicit(&ring.tail, ++tail, memory_order_release);
    if (!p)
      return NULL;
    g_lib->put(g_pool, p);
  }
}

static void push(size_t *head, void *p) {
  while (*head - atomic_load_explicit(&ring.tail, memory_order_acquire) >=
         RING) {
  }
  ring.slot[*head % RING] = p;
  atomic_store_explicit(&ring.head, ++*head, memory_order_release);
}

/* ns per operation of one round on a fresh pool of l. */
static double run(const lib *l, int prodcons, size_t size, long ops) {
  pthread_t t;
  size_t head = 0;
  g_lib = l;
  g_pool = l->pool_new(NULL);
  if (!g_pool) {
    fprintf(stderr, "zpb_pair: %s: zp_pool_new failed\n", l->path);
    exit(1);
  }
  atomic_store(&ring.head, 0);
  atomic_store(&ring.tail, 0);
  if (prodcons && pthread_create(&t, NULL, consumer, NULL) != 0)
    exit(1);
  double t0 = now_ns();
  for (long i = 0; i < ops; i++) {
    void *p = l->get(g_pool, size);
    if (!p) {
      fprintf(stderr, "zpb_pair: %s: zp_get failed\n", l->path);
      exit(1);
    }
    memset(p, 0x5a, size);
    __asm__ volatile("" : : "r"(p) : "memory");
    if (prodcons)
      push(&head, p);
    else
      l->put(g_pool, p);
  }
  if (prodcons) {
    push(&head, NULL);
    pthread_join(t, NULL);
  }
  double ns = (now_ns() - t0) / (double)ops;
  l->pool_destroy(g_pool);
  return ns;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The q-quantile of sorted v[0..n), interpolated between neighbours. */
static double quantile(const double *v, int n, double q) {
  double pos = q * (n - 1);
  int i = (int)pos;
  return i + 1 < n ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[i];
}

/* Sorts v[0..n) and prints its median and quartiles. */
static void summary(const char *what, double *v, int n) {
  if (n == 0)
    return;
  qsort(v, (size_t)n, sizeof *v, by_value);
  printf("  %-22s n=%-4d median %9.3f   q1 %9.3f   q3 %9.3f\n", what, n,
         quantile(v, n, 0.5), quantile(v, n, 0.25), quantile(v, n, 0.75));
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: zpb_pair LIB_A LIB_B [prodcons|cycle] [SIZE] "
                    "[OPS] [ROUNDS]\n");
    return 2;
  }
  lib l[2];
  load_lib(&l[0], argv[1]);
  load_lib(&l[1], argv[2]);
  int prodcons = argc < 4 || strcmp(argv[3], "cycle") != 0;
  size_t size = argc > 4 ? strtoul(argv[4], NULL, 0) : 4096;
  long ops = argc > 5 ? atol(argv[5]) : 100000;
  int rounds = argc > 6 ? atoi(argv[6]) : 30;
  if (size == 0 || ops <= 0 || rounds <= 0 || rounds > MAX_ROUNDS) {
    fprintf(stderr, "zpb_pair: bad SIZE, OPS or ROUNDS (at most %d)\n",
            MAX_ROUNDS);
    return 2;
  }
  static double a[MAX_ROUNDS], b[MAX_ROUNDS], ratio[MAX_ROUNDS],
      probe[MAX_ROUNDS], near[MAX_ROUNDS], far[MAX_ROUNDS];
  int nnear = 0, nfar = 0;
  for (int r = 0; r < rounds; r++) {
    probe[r] = prodcons ? probe_ns() : 0;
    if (r % 2 == 0) {
      a[r] = run(&l[0], prodcons, size, ops);
      b[r] = run(&l[1], prodcons, size, ops);
    } else {
      b[r] = run(&l[1], prodcons, size, ops);
      a[r] = run(&l[0], prodcons, size, ops);
    }
    ratio[r] = b[r] / a[r];
    if (prodcons && probe[r] >= 0 && probe[r] < 100)
      near[nnear++] = ratio[r];
    else if (prodcons && probe[r] >= 100)
      far[nfar++] = ratio[r]; /* a failed probe (< 0) goes in neither */
  }
  printf("%s, %zu bytes, %ld ops x %d rounds\n  A = %s\n  B = %s\n",
         prodcons ? "producer/consumer" : "one-thread cycle", size, ops, rounds,
         argv[1], argv[2]);
  summary("A, ns per op", a, rounds);
  summary("B, ns per op", b, rounds);
  if (prodcons) {
    summary("cross-core probe, ns", probe, rounds);
    summary("B / A, probe < 100 ns", near, nnear);
    summary("B / A, probe >= 100 ns", far, nfar);
  }
  summary("B / A, every round", ratio, rounds);
  return 0;
}
