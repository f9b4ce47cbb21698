/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The implementations behind zpb_shim.h, one family per executable (see the
 * header). Every put leaves no written byte behind; the libraries that wipe
 * by themselves (zeropool, libsodium, OpenSSL) are not wiped twice.
 */
#include "zpb_shim.h"

#include <string.h>

#if defined(ZPB_SHIM_GLIBC)
#include <zeropool.h>

#include <openssl/crypto.h>
#include <sodium.h>
#include <stdlib.h>
#elif defined(ZPB_SHIM_MIMALLOC)
#include <mimalloc.h>
#elif defined(ZPB_SHIM_JEMALLOC)
#include <jemalloc/jemalloc.h>
#elif defined(ZPB_SHIM_TCMALLOC)
#include <gperftools/tcmalloc.h>
#else
#error "define one of ZPB_SHIM_GLIBC, _MIMALLOC, _JEMALLOC, _TCMALLOC"
#endif

/* Peers keep no per-instance state: every instance is this handle. */
static char peer_handle;

static void *peer_open(const zpb_config *cfg) {
  (void)cfg;
  return &peer_handle;
}

static void peer_close(void *inst) { (void)inst; }

/* The wipe a malloc-based cycle does before free: the written bytes. */
static void wipe(void *p, size_t used) {
  if (used)
    explicit_bzero(p, used);
}

#define PEER(nm, desc, fl, getter, freer)                                      \
  {                                                                            \
    .name = nm, .what = desc, .flags = (fl), .max_size = 0, .open = peer_open, \
    .close = peer_close, .get = getter, .put = freer, .stats = NULL            \
  }

#if defined(ZPB_SHIM_GLIBC)

/* ---- zeropool ---------------------------------------------------------- */

static void *pool_open_with(const zpb_config *cfg, zp_eviction eviction) {
  zp_builder b = {0};
  if (cfg) {
    b.tls_cache_size = cfg->tls_cache_size;
    b.num_shards = cfg->num_shards;
    b.max_buffers_per_shard = cfg->max_buffers_per_shard;
    b.max_pooled_bytes = cfg->max_pooled_bytes;
  }
  b.eviction_policy = eviction;
  return zp_pool_new(&b);
}

static void *pool_open(const zpb_config *cfg) {
  return pool_open_with(cfg, ZP_EVICTION_DEFAULT);
}

static void *pool_open_lifo(const zpb_config *cfg) {
  return pool_open_with(cfg, ZP_EVICTION_LIFO);
}

/* Named explicitly (like lifo) so that the report compares the two
 * policies whichever of them ZP_EVICTION_DEFAULT resolves to. */
static void *pool_open_clockpro(const zpb_config *cfg) {
  return pool_open_with(cfg, ZP_EVICTION_CLOCK_PRO);
}

static void pool_close(void *inst) { zp_pool_destroy(inst); }

static void *pool_get(void *inst, size_t size) { return zp_get(inst, size); }

static void pool_put(void *inst, void *p, size_t size, size_t used) {
  if (used == size)
    zp_put(inst, p);
  else
    zp_put_used(inst, p, used);
}

static int pool_stats(void *inst, zpb_stats *out) {
  zp_stats st;
  int rc = zp_pool_stats(inst, &st);
  if (rc == 0) {
    out->gets = st.gets;
    out->hits = st.hits;
    out->misses = st.misses;
    out->evictions = st.evictions;
    out->mapped_bytes = st.mapped_bytes;
    out->os_maps = st.os_maps;
  }
  return rc;
}

/* ---- glibc --------------------------------------------------------------- */

static void *glibc_malloc(void *inst, size_t size) {
  (void)inst;
  return malloc(size);
}

static void *glibc_calloc(void *inst, size_t size) {
  (void)inst;
  return calloc(1, size);
}

static void glibc_free(void *inst, void *p, size_t size, size_t used) {
  (void)inst;
  (void)size;
  wipe(p, used);
  free(p);
}

/* ---- libsodium ----------------------------------------------------------- */

static void *sodium_open(const zpb_config *cfg) {
  (void)cfg;
  return sodium_init() < 0 ? NULL : &peer_handle;
}

static void *sodium_get(void *inst, size_t size) {
  (void)inst;
  return sodium_malloc(size);
}

static void sodium_put(void *inst, void *p, size_t size, size_t used) {
  (void)inst;
  (void)size;
  (void)used;
  sodium_free(p); /* wipes the whole region, then unmaps it */
}

/* ---- OpenSSL secure heap ------------------------------------------------- */

/* One heap per process, a power of two, mapped, guarded and mlocked by
 * CRYPTO_secure_malloc_init. Its buddy allocator serves at most a quarter of
 * it here, so the largest size of the suite (16 MiB) fits with room for the
 * other buffers a workload holds at the same time. */
#define OSSL_HEAP ((size_t)64 << 20)
#define OSSL_MIN 64

static void *ossl_open(const zpb_config *cfg) {
  (void)cfg;
  if (!CRYPTO_secure_malloc_initialized() &&
      CRYPTO_secure_malloc_init(OSSL_HEAP, OSSL_MIN) == 0)
    return NULL;
  return &peer_handle;
}

static void *ossl_get(void *inst, size_t size) {
  (void)inst;
  return OPENSSL_secure_malloc(size);
}

static void ossl_put(void *inst, void *p, size_t size, size_t used) {
  (void)inst;
  (void)size;
  OPENSSL_secure_clear_free(p, used); /* cleanses the whole block */
}

static const zpb_impl impls[] = {
    {.name = "zeropool",
     .what = "zp_get; zp_put / zp_put_used(used) wipe what was used; "
             "default pool",
     .flags = ZPB_POOL | ZPB_ZEROED,
     .open = pool_open,
     .close = pool_close,
     .get = pool_get,
     .put = pool_put,
     .stats = pool_stats},
    {.name = "zeropool-lifo",
     .what = "the same on a pool built with ZP_EVICTION_LIFO",
     .flags = ZPB_POOL | ZPB_ZEROED,
     .open = pool_open_lifo,
     .close = pool_close,
     .get = pool_get,
     .put = pool_put,
     .stats = pool_stats},
    {.name = "zeropool-clockpro",
     .what = "the same on a pool built with ZP_EVICTION_CLOCK_PRO",
     .flags = ZPB_POOL | ZPB_ZEROED,
     .open = pool_open_clockpro,
     .close = pool_close,
     .get = pool_get,
     .put = pool_put,
     .stats = pool_stats},
    PEER("glibc-malloc", "malloc; explicit_bzero(used) + free", ZPB_GENERAL,
         glibc_malloc, glibc_free),
    PEER("glibc-calloc", "calloc; explicit_bzero(used) + free",
         ZPB_GENERAL | ZPB_ZEROED, glibc_calloc, glibc_free),
    {.name = "sodium",
     .what = "sodium_malloc; sodium_free (wipes all, munmap)",
     .flags = ZPB_SECURE,
     .open = sodium_open,
     .close = peer_close,
     .get = sodium_get,
     .put = sodium_put},
    {.name = "openssl-secure",
     .what = "CRYPTO_secure_malloc; CRYPTO_secure_clear_free (64 MiB heap)",
     .flags = ZPB_SECURE,
     .max_size = OSSL_HEAP / 4,
     .open = ossl_open,
     .close = peer_close,
     .get = ossl_get,
     .put = ossl_put},
};

const char *zpb_family(void) { return "glibc"; }

#elif defined(ZPB_SHIM_MIMALLOC)

static void *mi_get(void *inst, size_t size) {
  (void)inst;
  return mi_malloc(size);
}

static void *mi_get_zeroed(void *inst, size_t size) {
  (void)inst;
  return mi_calloc(1, size);
}

static void mi_put(void *inst, void *p, size_t size, size_t used) {
  (void)inst;
  (void)size;
  wipe(p, used);
  mi_free(p);
}

static const zpb_impl impls[] = {
    PEER("mimalloc-malloc", "mi_malloc; explicit_bzero(used) + mi_free",
         ZPB_GENERAL, mi_get, mi_put),
    PEER("mimalloc-calloc", "mi_calloc; explicit_bzero(used) + mi_free",
         ZPB_GENERAL | ZPB_ZEROED, mi_get_zeroed, mi_put),
};

const char *zpb_family(void) { return "mimalloc"; }

#elif defined(ZPB_SHIM_JEMALLOC)

static void *je_get(void *inst, size_t size) {
  (void)inst;
  return mallocx(size, 0);
}

static void *je_get_zeroed(void *inst, size_t size) {
  (void)inst;
  return mallocx(size, MALLOCX_ZERO);
}

static void je_put(void *inst, void *p, size_t size, size_t used) {
  (void)inst;
  (void)size;
  wipe(p, used);
  dallocx(p, 0);
}

static const zpb_impl impls[] = {
    PEER("jemalloc-malloc", "mallocx; explicit_bzero(used) + dallocx",
         ZPB_GENERAL, je_get, je_put),
    PEER("jemalloc-calloc",
         "mallocx(MALLOCX_ZERO); explicit_bzero(used) + dallocx",
         ZPB_GENERAL | ZPB_ZEROED, je_get_zeroed, je_put),
};

const char *zpb_family(void) { return "jemalloc"; }

#elif defined(ZPB_SHIM_TCMALLOC)

static void *tc_get(void *inst, size_t size) {
  (void)inst;
  return tc_malloc(size);
}

static void *tc_get_zeroed(void *inst, size_t size) {
  (void)inst;
  return tc_calloc(1, size);
}

static void tc_put(void *inst, void *p, size_t size, size_t used) {
  (void)inst;
  (void)size;
  wipe(p, used);
  tc_free(p);
}

static const zpb_impl impls[] = {
    PEER("tcmalloc-malloc", "tc_malloc; explicit_bzero(used) + tc_free",
         ZPB_GENERAL, tc_get, tc_put),
    PEER("tcmalloc-calloc", "tc_calloc; explicit_bzero(used) + tc_free",
         ZPB_GENERAL | ZPB_ZEROED, tc_get_zeroed, tc_put),
};

const char *zpb_family(void) { return "tcmalloc"; }

#endif

const zpb_impl *zpb_impls(size_t *count) {
  *count = sizeof impls / sizeof impls[0];
  return impls;
}
