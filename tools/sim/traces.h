/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Get/put traces for the eviction policies: tools/sim/zp_sim replays them
 * through the policies, bench/zp_bench.cpp through real pools. Seeded per
 * trace: the same (index, steps, size classes) give the same operations.
 */
#ifndef ZPS_TRACES_H
#define ZPS_TRACES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* size_class.h too: the benchmark calls its init */
#endif

#include "size_class.h"

enum { ZPS_GET = 0, ZPS_PUT = 1 };

typedef struct zps_op {
  uint32_t id; /* buffer: a get creates it, its put ends it */
  uint8_t kind, cls;
} zps_op;

typedef struct zps_trace {
  const char *name, *what;
  zps_op *ops;
  size_t n, cap;
  uint32_t next_id;
  size_t burst_end; /* op index the burst ends at; 0: no burst */
} zps_trace;

typedef struct zps_trace_kind {
  const char *name, *what;
  void (*gen)(zps_trace *t, size_t steps);
  bool want_gain; /* issue 4 asks for >= 20 % fewer misses here */
} zps_trace_kind;

extern const zps_trace_kind zps_traces[];
extern const unsigned zps_ntraces;

/* Generates trace zps_traces[index], about steps operations long, with
 * classes of sc (which must outlive the call only). */
void zps_trace_gen(zps_trace *t, unsigned index, size_t steps,
                   const zp__size_classes *sc);
void zps_trace_free(zps_trace *t);

#ifdef __cplusplus
}
#endif

#endif /* ZPS_TRACES_H */
