/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Topology sources. zp__topology_detect (zp_testing.h) tries them in order. */
#ifndef ZP_TOPOLOGY_H
#define ZP_TOPOLOGY_H

#include "zp_testing.h"

/* From hwloc: 0, or a negative errno (-ENOSYS when built without hwloc). */
int zp__topology_hwloc(zp__topology *t);
/* From sysconf: always succeeds. */
void zp__topology_sysconf(zp__topology *t);

#endif /* ZP_TOPOLOGY_H */
