/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* The eviction traces of tools/sim/zp_sim, shared with the benchmark that
 * replays them through real pools (bench/zp_bench.cpp): one generator, so
 * the two cannot drift apart. See traces.h. */
#include "traces.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define KIB ((size_t)1024)
#define MIB (KIB * 1024)

static const zp__size_classes *g_sc; /* of the trace being generated */
static uint64_t g_rng;

static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (g_rng += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

static double rndf(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static unsigned cls_of(size_t size) { return zp__class_of(g_sc, size); }

static void emit(zps_trace *t, uint8_t kind, uint8_t cls, uint32_t id) {
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 4096;
    t->ops = realloc(t->ops, t->cap * sizeof(zps_op));
    if (!t->ops) {
      perror("realloc");
      exit(2);
    }
  }
  t->ops[t->n++] = (zps_op){.id = id, .kind = kind, .cls = cls};
}

/* Buffers out, per class, removable at random in O(1). */
typedef struct outset {
  uint32_t *ids;
  size_t n, cap;
} outset;

static void out_add(outset *o, uint32_t id) {
  if (o->n == o->cap) {
    o->cap = o->cap ? 2 * o->cap : 64;
    o->ids = realloc(o->ids, o->cap * sizeof(uint32_t));
    if (!o->ids) {
      perror("realloc");
      exit(2);
    }
  }
  o->ids[o->n++] = id;
}

static uint32_t out_take_random(outset *o) {
  size_t k = (size_t)(rnd() % o->n);
  uint32_t id = o->ids[k];
  o->ids[k] = o->ids[--o->n];
  return id;
}

static uint32_t get(zps_trace *t, unsigned cls, outset *o) {
  uint32_t id = t->next_id++;
  emit(t, ZPS_GET, (uint8_t)cls, id);
  if (o)
    out_add(o, id);
  return id;
}

static void put_random(zps_trace *t, unsigned cls, outset *o) {
  emit(t, ZPS_PUT, (uint8_t)cls, out_take_random(o));
}

/* Demand-driven classes: each step picks a class by weight and moves its
 * buffers out toward a target that changes with time (gets when below,
 * puts of a random buffer when above, with some noise). */
typedef struct stream {
  size_t size;
  double weight;
  double lo, hi, period, phase; /* target: lo..hi, sinusoid */
} stream;

static double target(const stream *s, size_t step) {
  double x = 0.5 + 0.5 * sin(2 * M_PI * ((double)step / s->period + s->phase));
  return s->lo + (s->hi - s->lo) * x;
}

static void run_streams(zps_trace *t, const stream *s, unsigned ns,
                        size_t steps, size_t step0, outset *outs) {
  double wsum = 0;
  for (unsigned k = 0; k < ns; k++)
    wsum += s[k].weight;
  for (size_t i = 0; i < steps; i++) {
    double r = rndf() * wsum;
    unsigned k = 0;
    while (k + 1 < ns && r >= s[k].weight) {
      r -= s[k].weight;
      k++;
    }
    unsigned cls = cls_of(s[k].size);
    double d = target(&s[k], step0 + i);
    double pget = (double)outs[k].n < d ? 0.75 : 0.25;
    if (outs[k].n == 0 || rndf() < pget)
      get(t, cls, &outs[k]);
    else
      put_random(t, cls, &outs[k]);
  }
}

static void drain(zps_trace *t, const stream *s, unsigned ns, outset *outs) {
  for (unsigned k = 0; k < ns; k++)
    while (outs[k].n)
      put_random(t, cls_of(s[k].size), &outs[k]);
}

static void gen_one(zps_trace *t, size_t steps) {
  stream s[] = {{64 * KIB, 1, 8, 64, 50000, 0}};
  outset o[1] = {{0}};
  run_streams(t, s, 1, steps, 0, o);
  drain(t, s, 1, o);
  free(o[0].ids);
}

static void gen_mixed(zps_trace *t, size_t steps) {
  stream s[] = {{4 * KIB, 0.6, 16, 256, 60000, 0.0},
                {64 * KIB, 0.3, 4, 64, 37000, 0.3},
                {1 * MIB, 0.1, 1, 16, 23000, 0.6}};
  outset o[3] = {{0}};
  run_streams(t, s, 3, steps, 0, o);
  drain(t, s, 3, o);
  for (unsigned k = 0; k < 3; k++)
    free(o[k].ids);
}

static void gen_zipf(zps_trace *t, size_t steps) {
  enum { NZ = 16 };
  stream s[NZ];
  outset o[NZ] = {{0}};
  for (unsigned k = 0; k < NZ; k++) {
    /* 16 sizes from 4 KiB to 4 MiB, popularity 1/rank (Zipf, s = 1),
     * ranks shuffled over the sizes by a fixed permutation. */
    unsigned rank = (k * 7) % NZ + 1;
    s[k].size = (size_t)(4.0 * KIB * pow(1024.0, (double)k / (NZ - 1)));
    s[k].weight = 1.0 / rank;
    s[k].lo = 1;
    s[k].hi = 1 + 48.0 / rank;
    s[k].period = 20000 + 7919.0 * k;
    s[k].phase = (double)k / NZ;
  }
  run_streams(t, s, NZ, steps, 0, o);
  drain(t, s, NZ, o);
  for (unsigned k = 0; k < NZ; k++)
    free(o[k].ids);
}

static void gen_phase(zps_trace *t, size_t steps) {
  stream a[] = {{8 * KIB, 0.5, 32, 128, 20000, 0},
                {32 * KIB, 0.5, 16, 64, 13000, 0.5}};
  stream b[] = {{128 * KIB, 0.5, 8, 32, 17000, 0},
                {512 * KIB, 0.5, 4, 16, 11000, 0.5}};
  outset oa[2] = {{0}}, ob[2] = {{0}};
  run_streams(t, a, 2, steps / 3, 0, oa);
  drain(t, a, 2, oa);
  run_streams(t, b, 2, steps / 3, 0, ob);
  drain(t, b, 2, ob);
  run_streams(t, a, 2, steps / 3, 0, oa);
  drain(t, a, 2, oa);
  for (unsigned k = 0; k < 2; k++) {
    free(oa[k].ids);
    free(ob[k].ids);
  }
}

static void gen_scan(zps_trace *t, size_t steps) {
  stream s[] = {{4 * KIB, 0.7, 32, 128, 20000, 0},
                {64 * KIB, 0.3, 8, 32, 13000, 0.5}};
  outset o[2] = {{0}};
  run_streams(t, s, 2, steps / 2, 0, o);
  /* The scan: 1000 buffers of 1 MiB, 32 in flight, each used once. */
  unsigned big = cls_of(MIB);
  uint32_t ring[32];
  for (unsigned i = 0; i < 1000; i++) {
    if (i >= 32)
      emit(t, ZPS_PUT, (uint8_t)big, ring[i % 32]);
    ring[i % 32] = get(t, big, NULL);
  }
  for (unsigned i = 1000 - 32; i < 1000; i++)
    emit(t, ZPS_PUT, (uint8_t)big, ring[i % 32]);
  run_streams(t, s, 2, steps / 2, steps / 2, o);
  drain(t, s, 2, o);
  for (unsigned k = 0; k < 2; k++)
    free(o[k].ids);
}

static void gen_burst(zps_trace *t, size_t steps) {
  /* A small steady working set; once, a burst of 64 x 1 MiB and 256 x
   * 64 KiB, all out together, all back; then the small set again for
   * three times the usual length: long enough to see whether idle memory
   * returns to what it needs. */
  stream s[] = {{4 * KIB, 0.7, 16, 64, 20000, 0},
                {64 * KIB, 0.3, 4, 16, 13000, 0.5}};
  outset o[2] = {{0}};
  run_streams(t, s, 2, steps / 4, 0, o);
  unsigned big = cls_of(MIB), mid = cls_of(64 * KIB);
  outset ob = {0}, om = {0};
  for (unsigned i = 0; i < 64; i++)
    get(t, big, &ob);
  for (unsigned i = 0; i < 256; i++)
    get(t, mid, &om);
  while (ob.n)
    put_random(t, big, &ob);
  while (om.n)
    put_random(t, mid, &om);
  t->burst_end = t->n;
  run_streams(t, s, 2, 3 * steps, steps / 4, o);
  drain(t, s, 2, o);
  for (unsigned k = 0; k < 2; k++)
    free(o[k].ids);
  free(ob.ids);
  free(om.ids);
}

static void gen_bursty(zps_trace *t, size_t steps) {
  /* A producer gets a burst of buffers of one size; a consumer puts the
   * oldest ones (FIFO), some of the queue each time. */
  static const size_t sizes[3] = {4 * KIB, 64 * KIB, MIB};
  size_t qcap = 1 << 16, head = 0, tail = 0;
  uint32_t *q = malloc(qcap * sizeof(uint32_t));
  uint8_t *qc = malloc(qcap);
  if (!q || !qc) {
    perror("malloc");
    exit(2);
  }
  while (t->n < steps) {
    double r = rndf();
    unsigned cls = cls_of(sizes[r < 0.6 ? 0 : r < 0.9 ? 1 : 2]);
    size_t k = 1;
    while (k < 256 && rndf() < 31.0 / 32)
      k++;
    for (size_t i = 0; i < k && tail - head < qcap; i++) {
      q[tail % qcap] = get(t, cls, NULL);
      qc[tail % qcap] = (uint8_t)cls;
      tail++;
    }
    size_t m = (size_t)((double)(tail - head) * (0.3 + 0.7 * rndf()));
    for (size_t i = 0; i < m; i++, head++)
      emit(t, ZPS_PUT, qc[head % qcap], q[head % qcap]);
  }
  for (; head < tail; head++)
    emit(t, ZPS_PUT, qc[head % qcap], q[head % qcap]);
  free(q);
  free(qc);
}

const zps_trace_kind zps_traces[] = {
    {"one-size", "64 KiB only, demand 8..64 buffers out", gen_one, false},
    {"mixed", "4 KiB / 64 KiB / 1 MiB, each with its own demand cycle",
     gen_mixed, true},
    {"zipf", "16 sizes 4 KiB..4 MiB, popularity 1/rank", gen_zipf, false},
    {"phase", "8+32 KiB, then 128+512 KiB, then 8+32 KiB again", gen_phase,
     true},
    {"scan", "4+64 KiB steady; mid-way 1000 x 1 MiB used once (32 in flight)",
     gen_scan, true},
    {"bursty",
     "producer bursts (geometric, mean 32) of one size, FIFO "
     "consumer",
     gen_bursty, false},
    {"burst",
     "4+64 KiB steady; once, 64 x 1 MiB and 256 x 64 KiB out together "
     "and back; steady again",
     gen_burst, false},
};
const unsigned zps_ntraces = sizeof zps_traces / sizeof zps_traces[0];

void zps_trace_gen(zps_trace *t, unsigned index, size_t steps,
                   const zp__size_classes *sc) {
  *t = (zps_trace){.name = zps_traces[index].name,
                   .what = zps_traces[index].what};
  g_sc = sc;
  g_rng = 0x9E3779B97F4A7C15u + index; /* a seed per trace */
  zps_traces[index].gen(t, steps);
}

void zps_trace_free(zps_trace *t) {
  free(t->ops);
  t->ops = NULL;
  t->n = t->cap = 0;
}
