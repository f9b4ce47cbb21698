/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Built without hwloc: detection falls back to sysconf. */
#include "topology.h"

#include <errno.h>

int zp__topology_hwloc(zp__topology *t) {
  (void)t;
  return -ENOSYS;
}
