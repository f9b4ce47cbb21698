/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Topology from hwloc: cores and hardware threads told apart, cache sizes
 * and the number of last-level cache domains. */
#include "os.h"
#include "topology.h"

#include <errno.h>
#include <hwloc.h>

static unsigned count(hwloc_topology_t topo, hwloc_obj_type_t type) {
  int n = hwloc_get_nbobjs_by_type(topo, type);
  return n > 0 ? (unsigned)n : 0;
}

static size_t cache_size(hwloc_topology_t topo, hwloc_obj_type_t type) {
  hwloc_obj_t obj = hwloc_get_obj_by_type(topo, type, 0);
  return obj && obj->attr ? (size_t)obj->attr->cache.size : 0;
}

int zp__topology_hwloc(zp__topology *t) {
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) != 0)
    return -ENOSYS;
  if (hwloc_topology_load(topo) != 0) {
    hwloc_topology_destroy(topo);
    return -ENOSYS;
  }
  t->pus = count(topo, HWLOC_OBJ_PU);
  t->cores = count(topo, HWLOC_OBJ_CORE);
  t->l3_domains = count(topo, HWLOC_OBJ_L3CACHE);
  t->l2_bytes = cache_size(topo, HWLOC_OBJ_L2CACHE);
  t->l3_bytes = cache_size(topo, HWLOC_OBJ_L3CACHE);
  hwloc_topology_destroy(topo);
  if (!t->pus)
    return -ENOSYS;
  if (!t->cores)
    t->cores = t->pus;
  if (!t->l3_domains)
    t->l3_domains = 1;
  /* Not hwloc's NUMA memory: in VMs it can report a fraction of the RAM
   * the kernel gives us (seen: 4 of 23.5 GiB). */
  t->ram_bytes = zp__os_ram_bytes();
  t->source = "hwloc";
  return 0;
}
