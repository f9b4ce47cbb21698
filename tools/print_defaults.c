/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * zp_print_defaults: prints, as a Markdown table, the settings a default pool
 * (zp_pool_new(NULL)) resolves to on the six systems of the seed's "System
 * Scaling" table and on this machine. It calls the library's own formula,
 * zp__config_resolve(), so the table cannot drift from the code.
 *
 * Model of the seed's systems (an assumption, stated in the output):
 * 2 hardware threads per core, 1 MiB of L2 per core, one 32 MiB L3 per 8
 * cores (at least one), 4 GiB of RAM per core.
 */
#include "zp_testing.h"

#include <zeropool.h>

#include <stdio.h>

#define KIB ((size_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

/* Exact sizes as "64 MiB"; others rounded, as "~23.5 GiB". */
static const char *size_str(size_t n, char *out, size_t cap) {
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (n < KIB) {
    snprintf(out, cap, "%zu B", n);
    return out;
  }
  unsigned u = 0;
  size_t unit = KIB;
  while (u < 3 && n / unit >= 1024) {
    unit *= 1024;
    u++;
  }
  if (n % unit == 0)
    snprintf(out, cap, "%zu %s", n / unit, units[u]);
  else
    snprintf(out, cap, "~%.1f %s", (double)n / (double)unit, units[u]);
  return out;
}

static int print_row(const char *name, const zp__topology *t) {
  zp_builder defaults = {0}, out;
  const char *bad = NULL;
  int rc = zp__config_resolve(t, &defaults, &out, &bad);
  if (rc != 0) {
    fprintf(stderr,
            "zp_print_defaults: %s: zp__config_resolve failed (%d, %s)\n", name,
            rc, bad != NULL ? bad : "?");
    return -1;
  }
  char ram[32], pooled[32], minbuf[32];
  printf("| %s | %u | %u | %s | %zu | %zu | %zu | %s | %s |\n", name, t->cores,
         t->pus, t->ram_bytes ? size_str(t->ram_bytes, ram, sizeof ram) : "?",
         out.num_shards, out.tls_cache_size, out.max_buffers_per_shard,
         size_str(out.max_pooled_bytes, pooled, sizeof pooled),
         size_str(out.min_buffer_size, minbuf, sizeof minbuf));
  return 0;
}

int main(void) {
  static const struct {
    const char *name;
    unsigned cores;
  } systems[] = {
      {"Embedded", 4},      {"Laptop", 8},        {"Workstation", 16},
      {"Small Server", 32}, {"Large Server", 64}, {"Supercompute", 128},
  };
  int rc = 0;

  printf("| System | cores | logical CPUs | RAM | num_shards | tls_cache_size "
         "| max_buffers_per_shard | max_pooled_bytes | min_buffer_size |\n"
         "|---|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < sizeof systems / sizeof systems[0]; i++) {
    unsigned c = systems[i].cores;
    zp__topology t = {
        .pus = 2 * c,
        .cores = c,
        .l3_domains = c >= 8 ? c / 8 : 1,
        .l2_bytes = MIB,
        .l3_bytes = 32 * MIB,
        .ram_bytes = (size_t)c * 4 * GIB,
        .source = "model",
    };
    if (print_row(systems[i].name, &t) != 0)
      rc = 1;
  }

  zp__topology here;
  zp__topology_detect(&here);
  char name[64];
  snprintf(name, sizeof name, "This machine (%s)",
           here.source != NULL ? here.source : "?");
  if (print_row(name, &here) != 0)
    rc = 1;

  char l2[32], l3[32];
  printf("\nModel for the seed's systems: 2 logical CPUs per core, 1 MiB L2 "
         "per core, one 32 MiB L3 per 8 cores, 4 GiB RAM per core.\n"
         "This machine: L2 %s, L3 %s x %u.\n",
         here.l2_bytes ? size_str(here.l2_bytes, l2, sizeof l2) : "unknown",
         here.l3_bytes ? size_str(here.l3_bytes, l3, sizeof l3) : "unknown",
         here.l3_domains);
  return rc;
}
