/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * zp_sim: replays get/put traces of a buffer pool through three eviction
 * policies under a byte budget on idle memory, and prints Markdown tables.
 *
 *   lifo      the pool's current policy (evict_lifo.c through
 *             zp__shard_give): a put that would exceed the budget releases
 *             idle buffers of the class held most of (by count) until it
 *             fits, or the incoming buffer when that class is its own
 *   clockpro  the real src/clockpro.c (compiled into this program, not a
 *             copy): idle buffers of every class share one clock
 *   belady    offline, knows the future: over budget, releases a buffer of
 *             the class whose next need is furthest away (never: first)
 *
 * One pool, one shard, no thread caches: the policies see every get and
 * put. Sizes go through the library's own size classes (min 4 KiB).
 * A get that finds an idle buffer of its class is a hit; else a miss, which
 * takes the class size from the OS. Budgets are fractions of the peak idle
 * bytes the trace reaches when nothing is ever released.
 *
 * Decay: the burst trace ends a burst at a known operation; the second
 * table gives each policy's idle bytes at fixed distances after it (LIFO
 * never releases an idle buffer under its budget, so its idle bytes cannot
 * fall; CLOCK-Pro's decay should bring them down to what demand uses).
 *
 * Usage: zp_sim [--quick] [--check] [--data PREFIX] [--detail TRACE FRAC]
 *               [--opt-size]
 *   --quick     shorter traces (a smoke test)
 *   --check     exit 1 unless CLOCK-Pro is within 1 % of LIFO everywhere
 *   --data      also write PREFIX-misses.dat (misses per trace and budget)
 *               and PREFIX-decay.dat (idle bytes after the burst, sampled),
 *               which tools/sim/clockpro.gp plots
 *   --detail    for one trace and budget fraction (e.g. mixed 0.125), print
 *               to stderr per class: misses, mean idle bytes, and misses by
 *               how long ago the class last lost an idle buffer; and
 *               CLOCK-Pro's mean cold target, hot and cold bytes, counters
 *   --opt-size  the offline column releases the class whose next need is
 *               furthest away times its size (a size-aware offline
 *               heuristic, not an optimum) instead of plain Belady
 */
#include "clockpro.h"
#include "size_class.h"
#include "traces.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIB ((size_t)1024)
#define MIB (KIB * 1024)

/* ---- traces (traces.c) --------------------------------------------------- */

typedef zps_op op;
typedef zps_trace trace;
enum { OP_GET = ZPS_GET, OP_PUT = ZPS_PUT };

static zp__size_classes g_sc;
static bool g_opt_size;      /* --opt-size */
static const char *g_detail; /* --detail TRACE FRAC */
static double g_detail_frac;

/* ---- replay -------------------------------------------------------------- */

enum { POL_LIFO, POL_CP, POL_OPT, NPOL };

/* Idle bytes are sampled every DECAY_EVERY ops after a burst, DECAY_N
 * times. */
enum { DECAY_EVERY = 1000, DECAY_N = 1000 };

typedef struct result {
  uint64_t misses, gets;
  uint64_t os_bytes;
  size_t peak_idle;
  uint64_t hand_steps, ops;   /* CLOCK-Pro only */
  uint64_t decay_evictions;   /* CLOCK-Pro only */
  uint64_t misses_at_burst;   /* misses before the burst ended */
  size_t idle_after[DECAY_N]; /* idle bytes k * DECAY_EVERY ops after it */
  /* --detail only: per class, misses; idle bytes summed over operations;
   * misses by operations since the class last lost an idle buffer (< 10,
   * < 100, < 1k, < 10k, more, never). CLOCK-Pro: cold target, hot and
   * cold bytes summed over operations, and its counters. */
  uint64_t cls_miss[ZP__CP_MAX_CLASSES];
  double cls_idle[ZP__CP_MAX_CLASSES];
  uint32_t miss_age[ZP__CP_MAX_CLASSES][6];
  double sum_mc, sum_hot, sum_cold;
  zp__cp_stats st;
} result;

/* Belady's look-ahead: for class k, P_k(t) = gets - puts of class k in
 * ops[0..t]. With h idle buffers of k at time t, the next one is needed at
 * the first t' > t with P_k(t') = P_k(t) + h (P moves by 1, so it reaches
 * that value exactly there). ups[k][v]: the times P_k steps up to v. */
typedef struct future {
  unsigned ncls;
  long *pnow;     /* [ncls] P_k at the current time */
  long *vmin;     /* [ncls] */
  long *vmax;     /* [ncls] */
  size_t **start; /* [ncls][values + 1] offsets into times */
  uint32_t *times;
} future;

static void future_build(future *f, const trace *t) {
  unsigned nc = g_sc.count;
  f->ncls = nc;
  f->pnow = calloc(nc, sizeof(long));
  f->vmin = calloc(nc, sizeof(long));
  long *vmax = calloc(nc, sizeof(long)), *p = calloc(nc, sizeof(long));
  f->vmax = vmax;
  f->start = calloc(nc, sizeof(size_t *));
  f->times = malloc((t->n + 1) * sizeof(uint32_t));
  if (!f->pnow || !f->vmin || !vmax || !p || !f->start || !f->times) {
    perror("malloc");
    exit(2);
  }
  for (size_t i = 0; i < t->n; i++) {
    unsigned k = t->ops[i].cls;
    p[k] += t->ops[i].kind == OP_GET ? 1 : -1;
    if (p[k] < f->vmin[k])
      f->vmin[k] = p[k];
    if (p[k] > vmax[k])
      vmax[k] = p[k];
  }
  size_t base = 0;
  size_t **fill = calloc(nc, sizeof(size_t *));
  for (unsigned k = 0; k < nc; k++) {
    size_t nv = (size_t)(vmax[k] - f->vmin[k] + 1);
    f->start[k] = calloc(nv + 1, sizeof(size_t));
    fill[k] = calloc(nv, sizeof(size_t));
    if (!f->start[k] || !fill[k]) {
      perror("calloc");
      exit(2);
    }
    p[k] = 0;
  }
  /* Count the up-steps per value, then place them. */
  for (size_t i = 0; i < t->n; i++) {
    unsigned k = t->ops[i].cls;
    p[k] += t->ops[i].kind == OP_GET ? 1 : -1;
    if (t->ops[i].kind == OP_GET)
      f->start[k][p[k] - f->vmin[k] + 1]++;
  }
  for (unsigned k = 0; k < nc; k++) {
    size_t nv = (size_t)(vmax[k] - f->vmin[k] + 1);
    f->start[k][0] = base;
    for (size_t v = 1; v <= nv; v++)
      f->start[k][v] += f->start[k][v - 1];
    base = f->start[k][nv];
    p[k] = 0;
  }
  for (size_t i = 0; i < t->n; i++) {
    unsigned k = t->ops[i].cls;
    p[k] += t->ops[i].kind == OP_GET ? 1 : -1;
    if (t->ops[i].kind == OP_GET) {
      size_t v = (size_t)(p[k] - f->vmin[k]);
      f->times[f->start[k][v] + fill[k][v]++] = (uint32_t)i;
    }
  }
  for (unsigned k = 0; k < nc; k++)
    free(fill[k]);
  free(fill);
  free(p);
}

static void future_free(future *f) {
  for (unsigned k = 0; k < f->ncls; k++)
    free(f->start[k]);
  free(f->start);
  free(f->times);
  free(f->pnow);
  free(f->vmin);
  free(f->vmax);
}

/* When, after time now, class k needs its h-th idle buffer; SIZE_MAX: never. */
static size_t next_need(const future *f, unsigned k, size_t now, size_t h) {
  long v = f->pnow[k] + (long)h;
  if (v > f->vmax[k])
    return SIZE_MAX;
  size_t lo = f->start[k][v - f->vmin[k]], hi = f->start[k][v - f->vmin[k] + 1];
  while (lo < hi) { /* first time > now */
    size_t mid = (lo + hi) / 2;
    if (f->times[mid] <= now)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < f->start[k][v - f->vmin[k] + 1] ? f->times[lo] : SIZE_MAX;
}

static result replay(const trace *t, int pol, size_t budget, future *f) {
  result r = {0};
  unsigned nc = g_sc.count;
  const size_t *csize = g_sc.size;
  uint32_t *idle = calloc(nc, sizeof(uint32_t));
  zp__clockpro cp;
  void *mem = NULL;
  size_t idle_bytes = 0;
  size_t *lost = calloc(nc, sizeof(size_t)); /* op + 1 of the last release */
  if (!idle || !lost) {
    perror("calloc");
    exit(2);
  }
  if (pol == POL_OPT)
    memset(f->pnow, 0, nc * sizeof(long));
  if (pol == POL_CP) {
    size_t maxres = budget / g_sc.min_size + 1;
    if (maxres > ZP__CP_MAX_ENTRIES / 2 - 1)
      maxres = ZP__CP_MAX_ENTRIES / 2 - 1;
    mem = malloc(zp__cp_mem_size(nc, maxres));
    if (!mem || zp__cp_init(&cp, mem, csize, nc, budget, maxres) != 0) {
      fprintf(stderr, "zp_sim: clockpro init failed\n");
      exit(2);
    }
  }
  for (size_t i = 0; i < t->n; i++) {
    const op *o = &t->ops[i];
    size_t s = csize[o->cls];
    if (o->kind == OP_GET) {
      r.gets++;
      bool hit = idle[o->cls] > 0;
      if (hit) {
        idle[o->cls]--;
        idle_bytes -= s;
      } else {
        r.misses++;
        r.os_bytes += s;
        if (g_detail) {
          size_t a = lost[o->cls] ? i + 1 - lost[o->cls] : SIZE_MAX;
          unsigned b = a < 10         ? 0
                       : a < 100      ? 1
                       : a < 1000     ? 2
                       : a < 10000    ? 3
                       : lost[o->cls] ? 4
                                      : 5;
          r.cls_miss[o->cls]++;
          r.miss_age[o->cls][b]++;
        }
      }
      if (pol == POL_CP) {
        if (hit)
          zp__cp_hit(&cp, o->cls);
        else
          zp__cp_miss(&cp, o->cls);
      }
    } else if (pol == POL_LIFO) {
      /* zp__shard_give with evict_lifo.c: while the incoming buffer does
       * not fit, release a buffer of the class held most of (by count, the
       * incoming class winning ties); when that is the incoming class,
       * release the incoming buffer instead. */
      while (idle_bytes + s > budget) {
        unsigned most = o->cls;
        for (unsigned c = 0; c < nc; c++)
          if (idle[c] > idle[most])
            most = c;
        if (most == o->cls || !idle[most])
          break;
        idle[most]--;
        idle_bytes -= csize[most];
        lost[most] = i + 1;
      }
      if (idle_bytes + s <= budget) {
        idle[o->cls]++;
        idle_bytes += s;
      } else {
        lost[o->cls] = i + 1;
      }
    } else if (pol == POL_CP) {
      if (zp__cp_put(&cp, o->cls)) {
        idle[o->cls]++;
        idle_bytes += s;
        int v;
        while ((v = zp__cp_victim(&cp)) >= 0) {
          idle[v]--;
          idle_bytes -= csize[v];
          lost[v] = i + 1;
        }
      } else {
        lost[o->cls] = i + 1;
      }
      if (idle_bytes != zp__cp_resident_bytes(&cp)) {
        fprintf(stderr, "zp_sim: clockpro lost count at op %zu\n", i);
        exit(2);
      }
    } else {
      idle[o->cls]++;
      idle_bytes += s;
    }
    if (pol == POL_OPT) {
      f->pnow[o->cls] += o->kind == OP_GET ? 1 : -1;
      while (idle_bytes > budget) {
        unsigned best = 0;
        size_t far = 0;
        bool any = false;
        for (unsigned k = 0; k < nc; k++) {
          if (!idle[k])
            continue;
          size_t when = next_need(f, k, i, idle[k]);
          if (g_opt_size && when != SIZE_MAX)
            when = (when - i) * (csize[k] / g_sc.min_size);
          if (!any || when > far || (when == far && csize[k] > csize[best])) {
            best = k;
            far = when;
            any = true;
          }
        }
        idle[best]--;
        idle_bytes -= csize[best];
        lost[best] = i + 1;
      }
    }
    if (idle_bytes > r.peak_idle)
      r.peak_idle = idle_bytes;
    if (g_detail) {
      for (unsigned c = 0; c < nc; c++)
        r.cls_idle[c] += (double)idle[c] * (double)csize[c];
      if (pol == POL_CP) {
        r.sum_mc += (double)cp.cold_target;
        r.sum_hot += (double)cp.hot_bytes;
        r.sum_cold += (double)cp.cold_bytes;
      }
    }
    if (t->burst_end && i + 1 >= t->burst_end &&
        (i + 1 - t->burst_end) % DECAY_EVERY == 0 &&
        (i + 1 - t->burst_end) / DECAY_EVERY < DECAY_N) {
      if (i + 1 == t->burst_end)
        r.misses_at_burst = r.misses;
      r.idle_after[(i + 1 - t->burst_end) / DECAY_EVERY] = idle_bytes;
    }
  }
  if (pol == POL_CP) {
    r.hand_steps = cp.st.hand_steps;
    r.ops = t->n;
    r.decay_evictions = cp.st.decay_evictions;
    r.st = cp.st;
    free(mem);
  }
  free(idle);
  free(lost);
  return r;
}

/* ---- main ---------------------------------------------------------------- */

static double mib(uint64_t b) { return (double)b / (double)MIB; }

/* --detail: one trace and budget, per class and CLOCK-Pro's state. */
static void print_detail(const result *r, size_t n) {
  static const char *pol[NPOL] = {"LIFO", "CLOCK-Pro", "offline"};
  const double dn = (double)n * (double)MIB;
  for (unsigned c = 0; c < g_sc.count; c++) {
    if (!r[POL_LIFO].cls_miss[c] && !r[POL_CP].cls_miss[c] &&
        !r[POL_OPT].cls_miss[c])
      continue;
    fprintf(stderr, "class %zu KiB\n", g_sc.size[c] / KIB);
    for (int p = 0; p < NPOL; p++)
      fprintf(stderr,
              "  %-9s misses %6llu  mean idle %6.2f MiB  misses by ops "
              "since the class lost a buffer: <10 %u, <100 %u, <1k %u, "
              "<10k %u, more %u, never %u\n",
              pol[p], (unsigned long long)r[p].cls_miss[c],
              r[p].cls_idle[c] / dn, r[p].miss_age[c][0], r[p].miss_age[c][1],
              r[p].miss_age[c][2], r[p].miss_age[c][3], r[p].miss_age[c][4],
              r[p].miss_age[c][5]);
  }
  const result *q = &r[POL_CP];
  fprintf(stderr,
          "CLOCK-Pro means: cold target %.2f MiB, hot %.2f MiB, cold %.2f "
          "MiB; refaults %llu, promotions %llu, demotions %llu, tests "
          "expired %llu, evictions %llu, credit passes %llu\n",
          q->sum_mc / dn, q->sum_hot / dn, q->sum_cold / dn,
          (unsigned long long)q->st.refaults,
          (unsigned long long)q->st.promotions,
          (unsigned long long)q->st.demotions,
          (unsigned long long)q->st.test_expired,
          (unsigned long long)q->st.evictions,
          (unsigned long long)q->st.credit_passes);
}

int main(int argc, char **argv) {
  bool quick = false, check = false;
  const char *data = NULL;
  for (int a = 1; a < argc; a++) {
    if (!strcmp(argv[a], "--quick"))
      quick = true;
    else if (!strcmp(argv[a], "--check"))
      check = true;
    else if (!strcmp(argv[a], "--data") && a + 1 < argc)
      data = argv[++a];
    else if (!strcmp(argv[a], "--detail") && a + 2 < argc) {
      g_detail = argv[++a];
      g_detail_frac = atof(argv[++a]);
    } else if (!strcmp(argv[a], "--opt-size"))
      g_opt_size = true;
    else {
      fprintf(stderr, "usage: zp_sim [--quick] [--check] [--data PREFIX] "
                      "[--detail TRACE FRAC] [--opt-size]\n");
      return 2;
    }
  }
  FILE *fmiss = NULL, *fdecay = NULL;
  if (data) {
    char path[1024];
    snprintf(path, sizeof path, "%s-misses.dat", data);
    fmiss = fopen(path, "w");
    snprintf(path, sizeof path, "%s-decay.dat", data);
    fdecay = fopen(path, "w");
    if (!fmiss || !fdecay) {
      perror(path);
      return 2;
    }
    fprintf(fmiss, "# trace budget_fraction lifo clockpro belady\n");
    fprintf(fdecay, "# ops_after_burst then idle MiB LIFO, CLOCK-Pro at "
                    "budget fractions 1/4, 1/2, 1\n");
  }
  zp__size_classes_init(&g_sc, 4 * KIB);
  size_t steps = quick ? 30000 : 300000;
  static const double frac[] = {0.0625, 0.125, 0.25, 0.5, 1.0};
  const unsigned nfrac = sizeof frac / sizeof frac[0];
  bool within_1pct = true, gains = true;
  /* The burst trace's results at the budgets the decay table shows. */
  enum { NDECAY = 3 };
  static const double decay_frac[NDECAY] = {0.25, 0.5, 1.0};
  result decay[NDECAY][NPOL];
  size_t decay_budget[NDECAY] = {0}, decay_len = 0;

  printf("| trace | budget | LIFO misses | CLOCK-Pro misses | Belady misses "
         "| CLOCK-Pro vs LIFO | OS MiB LIFO / CP / Belady "
         "| peak idle MiB LIFO / CP / Belady | hand steps / op |\n");
  printf("|---|---|---|---|---|---|---|---|---|\n");
  for (unsigned ti = 0; ti < zps_ntraces; ti++) {
    trace t;
    zps_trace_gen(&t, ti, steps, &g_sc);
    future fut;
    future_build(&fut, &t);
    result inf = replay(&t, POL_LIFO, SIZE_MAX, &fut);
    for (unsigned fi = 0; fi < nfrac; fi++) {
      size_t budget = (size_t)((double)inf.peak_idle * frac[fi]);
      budget = (budget + 4095) & ~(size_t)4095;
      result r[NPOL];
      for (int p = 0; p < NPOL; p++)
        r[p] = replay(&t, p, budget, &fut);
      double rel =
          r[POL_LIFO].misses
              ? 100.0 *
                    ((double)r[POL_CP].misses - (double)r[POL_LIFO].misses) /
                    (double)r[POL_LIFO].misses
              : 0.0;
      if ((double)r[POL_CP].misses > 1.01 * (double)r[POL_LIFO].misses)
        within_1pct = false;
      if (zps_traces[ti].want_gain && frac[fi] <= 0.25 && rel > -20.0)
        gains = false;
      printf("| %s | %.1f MiB (%g) | %llu | %llu | %llu | %+.1f %% "
             "| %.0f / %.0f / %.0f | %.1f / %.1f / %.1f | %.2f |\n",
             t.name, mib(budget), frac[fi],
             (unsigned long long)r[POL_LIFO].misses,
             (unsigned long long)r[POL_CP].misses,
             (unsigned long long)r[POL_OPT].misses, rel,
             mib(r[POL_LIFO].os_bytes), mib(r[POL_CP].os_bytes),
             mib(r[POL_OPT].os_bytes), mib(r[POL_LIFO].peak_idle),
             mib(r[POL_CP].peak_idle), mib(r[POL_OPT].peak_idle),
             (double)r[POL_CP].hand_steps / (double)r[POL_CP].ops);
      if (g_detail && !strcmp(g_detail, t.name) && frac[fi] == g_detail_frac)
        print_detail(r, t.n);
      if (fmiss)
        fprintf(fmiss, "%s %g %llu %llu %llu\n", t.name, frac[fi],
                (unsigned long long)r[POL_LIFO].misses,
                (unsigned long long)r[POL_CP].misses,
                (unsigned long long)r[POL_OPT].misses);
      for (unsigned d = 0; t.burst_end && d < NDECAY; d++)
        if (frac[fi] == decay_frac[d]) {
          memcpy(decay[d], r, sizeof r);
          decay_budget[d] = budget;
          decay_len = (t.n - t.burst_end) / DECAY_EVERY;
        }
    }
    if (fmiss)
      fprintf(fmiss, "\n\n"); /* one gnuplot data block per trace */
    future_free(&fut);
    zps_trace_free(&t);
  }
  printf("\nBudgets are fractions of each trace's peak idle bytes when "
         "nothing is released. Traces:\n\n");
  for (unsigned ti = 0; ti < zps_ntraces; ti++)
    printf("- **%s**: %s\n", zps_traces[ti].name, zps_traces[ti].what);
  printf("\nCLOCK-Pro within 1 %% of LIFO on every trace and budget: %s\n",
         within_1pct ? "yes" : "NO");
  printf("CLOCK-Pro >= 20 %% fewer misses than LIFO on mixed, phase, scan at "
         "budgets <= 1/4: %s\n",
         gains ? "yes" : "NO");

  /* Decay: idle bytes at fixed distances after the burst. */
  static const size_t probe[] = {0, 10, 100, 200, 400, 600, 800};
  if (decay_len > DECAY_N)
    decay_len = DECAY_N;
  printf("\nIdle MiB after the burst (burst trace), by operations since it "
         "ended:\n\n| budget | policy |");
  for (size_t k = 0; k < sizeof probe / sizeof probe[0]; k++)
    if (probe[k] < decay_len)
      printf(" +%zuk |", probe[k]);
  printf(" misses after the burst | decay releases |\n|---|---|");
  for (size_t k = 0; k < sizeof probe / sizeof probe[0]; k++)
    if (probe[k] < decay_len)
      printf("---|");
  printf("---|---|\n");
  for (unsigned d = 0; d < NDECAY; d++)
    for (int p = POL_LIFO; p <= POL_CP; p++) {
      const result *r = &decay[d][p];
      printf("| %.1f MiB (%g) | %s |", mib(decay_budget[d]), decay_frac[d],
             p == POL_LIFO ? "LIFO" : "CLOCK-Pro");
      for (size_t k = 0; k < sizeof probe / sizeof probe[0]; k++)
        if (probe[k] < decay_len)
          printf(" %.2f |", mib(r->idle_after[probe[k]]));
      printf(" %llu | %llu |\n",
             (unsigned long long)(r->misses - r->misses_at_burst),
             (unsigned long long)r->decay_evictions);
    }
  if (fdecay) {
    for (size_t k = 0; k < decay_len; k++) {
      fprintf(fdecay, "%zu", k * DECAY_EVERY);
      for (unsigned d = 0; d < NDECAY; d++)
        fprintf(fdecay, " %.3f %.3f", mib(decay[d][POL_LIFO].idle_after[k]),
                mib(decay[d][POL_CP].idle_after[k]));
      fprintf(fdecay, "\n");
    }
    fclose(fdecay);
    fclose(fmiss);
  }
  return check && !within_1pct ? 1 : 0;
}
