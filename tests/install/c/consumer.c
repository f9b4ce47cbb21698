/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * A consumer of an installed zeropool, written in the common subset of C
 * and C++ so that it checks zeropool.h both ways (tests/install/run.sh
 * compiles it as C11 and as C++17). Exits 0 and prints "ok" when the
 * header and the library agree and a get/put cycle behaves.
 */
#include <zeropool.h>

#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
#define LANG "C++"
#else
#define LANG "C"
#endif

int main(void) {
  /* The header and the library it was linked with are the same version. */
  if (zp_version_number() != ZP_VERSION_NUMBER ||
      strcmp(zp_version_string(), ZP_VERSION_STRING) != 0) {
    fprintf(stderr, "consumer: header %s, library %s\n", ZP_VERSION_STRING,
            zp_version_string());
    return 1;
  }

  zp_builder cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.num_shards = 4;
  const char *bad = NULL;
  if (zp_builder_validate(&cfg, &bad) != 0) {
    fprintf(stderr, "consumer: builder rejected: %s\n", bad ? bad : "?");
    return 1;
  }
  zp_pool *pool = zp_pool_new(&cfg);
  if (pool == NULL) {
    perror("consumer: zp_pool_new");
    return 1;
  }

  char *buf = (char *)zp_get(pool, 4096);
  if (buf == NULL) {
    perror("consumer: zp_get");
    zp_pool_destroy(pool);
    return 1;
  }
  for (size_t i = 0; i < 4096; i++) {
    if (buf[i] != 0) {
      fprintf(stderr, "consumer: byte %zu of a fresh buffer is not zero\n", i);
      return 1;
    }
  }
  int n = snprintf(buf, 4096, "hello from zeropool %s", zp_version_string());
  zp_put_used(pool, buf, (size_t)n + 1);

  zp_stats st;
  zp_builder in_effect;
  if (zp_pool_stats(pool, &st) != 0 || zp_pool_config(pool, &in_effect) != 0 ||
      st.gets != 1 || st.puts != 1 || st.bytes_zeroed != (size_t)n + 1 ||
      in_effect.num_shards != 4) {
    fprintf(stderr, "consumer: unexpected stats or config\n");
    zp_pool_destroy(pool);
    return 1;
  }
  zp_pool_destroy(pool);
  printf("consumer (%s): zeropool %s ok\n", LANG, zp_version_string());
  return 0;
}
