/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The smallest correct use of zeropool: create a pool, borrow a zeroed
 * buffer, fill part of it, give it back saying how much was written (only
 * those bytes are wiped), destroy the pool.
 */
#include <zeropool.h>

#include <stdio.h>

int main(void) {
  zp_pool *pool = zp_pool_new(NULL); /* every default */
  if (pool == NULL) {
    perror("zp_pool_new");
    return 1;
  }

  char *buf = zp_get(pool, 4096); /* 4096 bytes, all zero */
  if (buf == NULL) {
    perror("zp_get");
    zp_pool_destroy(pool);
    return 1;
  }

  int n = snprintf(buf, 4096, "hello from zeropool %s\n", zp_version_string());
  if (n < 0 || n >= 4096) {
    zp_put(pool, buf); /* unsure what was written: wipe it all */
    zp_pool_destroy(pool);
    return 1;
  }
  fputs(buf, stdout);

  zp_put_used(pool, buf, (size_t)n + 1); /* wipes bytes [0, n] only */
  zp_pool_destroy(pool);
  return 0;
}
