/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Topology from sysconf(), and the detection order: hwloc first (when built
 * in, see topo_hwloc.c), else sysconf, else one core. */
#include "os.h"
#include "topology.h"

#include <unistd.h>

static size_t sysconf_bytes(int name) {
  long v = sysconf(name);
  return v > 0 ? (size_t)v : 0;
}

void zp__topology_sysconf(zp__topology *t) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  t->pus = n > 0 ? (unsigned)n : 1;
  t->cores = t->pus; /* sysconf cannot tell hardware threads from cores */
  t->l3_domains = 1;
#ifdef _SC_LEVEL2_CACHE_SIZE
  t->l2_bytes = sysconf_bytes(_SC_LEVEL2_CACHE_SIZE);
#endif
#ifdef _SC_LEVEL3_CACHE_SIZE
  t->l3_bytes = sysconf_bytes(_SC_LEVEL3_CACHE_SIZE);
#endif
  t->ram_bytes = zp__os_ram_bytes();
  t->source = "sysconf";
}

void zp__topology_detect(zp__topology *out) {
  zp__topology t = {0};
  if (zp__topology_hwloc(&t) != 0) {
    t = (zp__topology){0};
    zp__topology_sysconf(&t);
  }
  *out = t;
}
