// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Tests of include/zeropool.hpp, the C++17 wrapper. A tiny harness: CHECK
// records a failure and goes on, each test is a function, main runs them
// all and fails when any check did. The counters of zp_stats are exact here
// (one thread), so every put the wrapper makes, or does not make, shows.
#include <zeropool.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace {

int failures = 0;

void check(bool ok, const char *what, int line) {
  if (!ok) {
    std::fprintf(stderr, "test_cpp.cpp:%d: check failed: %s\n", line, what);
    failures++;
  }
}

#define CHECK(x) check((x), #x, __LINE__)

// Runs `expr` and checks that it throws an exception of type `type`.
#define CHECK_THROWS(expr, type)                                               \
  do {                                                                         \
    bool caught_ = false;                                                      \
    try {                                                                      \
      (void)(expr);                                                            \
    } catch (const type &) {                                                   \
      caught_ = true;                                                          \
    } catch (...) {                                                            \
    }                                                                          \
    check(caught_, #expr " throws " #type, __LINE__);                          \
  } while (0)

bool all_zero(const zeropool::buffer &b) {
  return std::all_of(b.begin(), b.end(),
                     [](unsigned char c) { return c == 0; });
}

// The types are what the header promises: move-only owners.
static_assert(!std::is_copy_constructible_v<zeropool::buffer>);
static_assert(!std::is_copy_assignable_v<zeropool::buffer>);
static_assert(std::is_nothrow_move_constructible_v<zeropool::buffer>);
static_assert(std::is_nothrow_move_assignable_v<zeropool::buffer>);
static_assert(!std::is_copy_constructible_v<zeropool::pool>);
static_assert(!std::is_copy_assignable_v<zeropool::pool>);
static_assert(std::is_nothrow_move_constructible_v<zeropool::pool>);
static_assert(std::is_nothrow_move_assignable_v<zeropool::pool>);

// A buffer that leaves its scope is put back: puts + 1, nothing out, and
// the bytes handed out (not the class size) were wiped.
void test_raii_put_on_scope_exit() {
  zeropool::pool p;
  const zp_stats s0 = p.stats();
  {
    zeropool::buffer b = p.get(1000);
    CHECK(static_cast<bool>(b));
    CHECK(b.size() == 1000);
    CHECK(b.data() != nullptr);
    CHECK(b.pool_handle() == p.native_handle());
    CHECK(p.buffer_size(b.data()) == 1000);
    CHECK(all_zero(b));
    CHECK(p.stats().outstanding_buffers == s0.outstanding_buffers + 1);
    CHECK(p.stats().puts == s0.puts);
    std::fill(b.begin(), b.end(), static_cast<unsigned char>(0xA5));
  }
  const zp_stats s1 = p.stats();
  CHECK(s1.gets == s0.gets + 1);
  CHECK(s1.puts == s0.puts + 1);
  CHECK(s1.outstanding_buffers == 0);
  CHECK(s1.bytes_zeroed == s0.bytes_zeroed + 1000);
  // The same buffer comes back clean.
  zeropool::buffer again = p.get(1000);
  CHECK(all_zero(again));
}

// Moving a buffer moves the duty to put it: the moved-from object is empty
// and puts nothing; assigning over a buffer puts the one it held first.
void test_move_semantics() {
  zeropool::pool p;
  const zp_stats s0 = p.stats();
  {
    zeropool::buffer a = p.get(4096);
    unsigned char *const ptr = a.data();
    zeropool::buffer b(std::move(a));
    CHECK(!a); // NOLINT(bugprone-use-after-move): the moved-from state
    CHECK(a.data() == nullptr);
    CHECK(a.size() == 0);
    CHECK(a.pool_handle() == nullptr);
    CHECK(b.data() == ptr);
    CHECK(b.size() == 4096);
    CHECK(p.stats().puts == s0.puts);

    zeropool::buffer c = p.get(100);
    c = std::move(b); // c's own buffer goes back now
    CHECK(p.stats().puts == s0.puts + 1);
    CHECK(!b); // NOLINT(bugprone-use-after-move)
    CHECK(c.data() == ptr);
    CHECK(c.size() == 4096);

    a.reset(); // empty: puts nothing
    b = zeropool::buffer();
    CHECK(p.stats().puts == s0.puts + 1);

    zeropool::buffer d = p.get(200);
    unsigned char *const dptr = d.data();
    swap(c, d);
    CHECK(c.data() == dptr && c.size() == 200);
    CHECK(d.data() == ptr && d.size() == 4096);
  }
  const zp_stats s1 = p.stats();
  CHECK(s1.gets == s0.gets + 3);
  CHECK(s1.puts == s0.puts + 3); // each buffer exactly once
  CHECK(s1.outstanding_buffers == 0);
}

// set_used(n) makes the put wipe only [0, n): bytes_zeroed grows by n,
// not by the size; the next get of that buffer is still all zero.
void test_set_used_wipes_prefix() {
  zeropool::pool p;
  const zp_stats s0 = p.stats();
  unsigned char *ptr = nullptr;
  {
    zeropool::buffer b = p.get(65536);
    ptr = b.data();
    std::memset(b.data(), 0x5A, 100);
    CHECK(b.used() == 65536);
    b.set_used(100);
    CHECK(b.used() == 100);
    CHECK_THROWS(b.set_used(65537), std::out_of_range);
    CHECK(b.used() == 100); // unchanged by the failed call
  }
  const zp_stats s1 = p.stats();
  CHECK(s1.puts == s0.puts + 1);
  CHECK(s1.bytes_zeroed == s0.bytes_zeroed + 100);

  zeropool::buffer again = p.get(65536);
  CHECK(again.data() == ptr); // the thread cache hands it back
  CHECK(all_zero(again));

  // set_used(0): nothing written, nothing wiped.
  {
    zeropool::buffer b = p.get(8192);
    b.set_used(0);
  }
  CHECK(p.stats().bytes_zeroed == s1.bytes_zeroed);
}

// A request the pool cannot serve throws std::bad_alloc; the nothrow
// overload returns an empty buffer with errno ENOMEM. Nothing is counted.
void test_bad_alloc_on_huge_request() {
  zeropool::pool p;
  const zp_stats s0 = p.stats();
  CHECK_THROWS(p.get(ZP_MAX_REQUEST + 1), std::bad_alloc);
  errno = 0;
  zeropool::buffer b = p.get(ZP_MAX_REQUEST + 1, std::nothrow);
  CHECK(!b);
  CHECK(b.size() == 0);
  CHECK(errno == ENOMEM);
  const zp_stats s1 = p.stats();
  CHECK(s1.gets == s0.gets);
  CHECK(s1.outstanding_buffers == 0);
  // The pool still serves.
  zeropool::buffer ok = p.get(4096, std::nothrow);
  CHECK(static_cast<bool>(ok));
}

// Moving a pool moves the zp_pool: buffers handed out before go back to
// it; the moved-from pool is empty and every call on it is harmless.
void test_pool_move() {
  zeropool::pool a;
  zp_pool *const raw = a.native_handle();
  CHECK(raw != nullptr);
  zeropool::buffer b = a.get(512);

  zeropool::pool c(std::move(a));
  CHECK(!a); // NOLINT(bugprone-use-after-move)
  CHECK(a.native_handle() == nullptr);
  CHECK(c.native_handle() == raw);
  CHECK(b.pool_handle() == raw);
  b.reset();
  CHECK(c.stats().puts == 1);
  CHECK(c.stats().outstanding_buffers == 0);

  // The empty pool: zero stats and config, trim does nothing, get throws
  // std::logic_error, or gives an empty buffer with EINVAL.
  CHECK(a.stats().gets == 0);
  CHECK(a.config().num_shards == 0);
  a.trim();
  CHECK(a.buffer_size(nullptr) == 0);
  CHECK_THROWS(a.get(1), std::logic_error);
  errno = 0;
  CHECK(!a.get(1, std::nothrow));
  CHECK(errno == EINVAL);

  // Move assignment destroys the pool the target held.
  zeropool::pool d;
  zeropool::buffer kept = d.get(64); // outlives d's old pool: still valid
  d = std::move(c);
  CHECK(d.native_handle() == raw);
  CHECK(!c); // NOLINT(bugprone-use-after-move)
  kept[0] = 1;
  kept.reset(); // put after its pool was destroyed: wiped and freed

  // release() and adopt() hand the zp_pool * out and back.
  zp_pool *out = d.release();
  CHECK(!d);
  CHECK(out == raw);
  zeropool::pool e = zeropool::pool::adopt(out);
  CHECK(e.native_handle() == raw);
  CHECK(!zeropool::pool::adopt(nullptr));

  zeropool::pool f;
  zp_pool *const fraw = f.native_handle();
  swap(e, f);
  CHECK(e.native_handle() == fraw && f.native_handle() == raw);
}

// config() reports the settings in effect, trim() empties every cache and
// shard, stats() sees both; a bad builder throws std::invalid_argument
// naming the field.
void test_trim_stats_config() {
  zeropool::pool p = zeropool::builder()
                         .num_shards(2)
                         .tls_cache_size(4)
                         .max_buffers_per_shard(16)
                         .min_buffer_size(256)
                         .eviction_policy(ZP_EVICTION_LIFO)
                         .verify_on_get(ZP_VERIFY_SAMPLED)
                         .zero_on_get(false)
                         .pin_policy(ZP_PIN_BEST_EFFORT)
                         .fork_policy(ZP_FORK_COPY)
                         .backing(ZP_BACKING_ANONYMOUS)
                         .build();
  const zp_builder cfg = p.config();
  CHECK(cfg.num_shards == 2);
  CHECK(cfg.tls_cache_size == 4);
  CHECK(cfg.max_buffers_per_shard == 16);
  CHECK(cfg.min_buffer_size == 256);
  CHECK(cfg.max_pooled_bytes >= 256); // resolved from 0
  CHECK(cfg.eviction_policy == ZP_EVICTION_LIFO);
  CHECK(!cfg.pinned_memory);
  CHECK(cfg.verify_on_get == ZP_VERIFY_SAMPLED);
  CHECK(cfg.backing == ZP_BACKING_ANONYMOUS);

  {
    zeropool::buffer bufs[10];
    for (zeropool::buffer &b : bufs)
      b = p.get(3000);
    CHECK(p.stats().outstanding_buffers == 10);
  }
  zp_stats st = p.stats();
  CHECK(st.gets == 10);
  CHECK(st.puts == 10);
  CHECK(st.idle_buffers == 10); // in this thread's cache and the shards
  CHECK(st.idle_bytes > 0);
  CHECK(st.mapped_bytes > 0);
  p.trim();
  st = p.stats();
  CHECK(st.idle_buffers == 0);
  CHECK(st.idle_bytes == 0);
  CHECK(st.mapped_bytes == 0); // every span released

  zeropool::builder bad;
  bad.num_shards(3);
  CHECK(bad.invalid_field() != nullptr &&
        std::string(bad.invalid_field()) == "num_shards");
  CHECK(zeropool::builder().invalid_field() == nullptr);
  bool named = false;
  try {
    zeropool::pool q(bad);
  } catch (const std::invalid_argument &e) {
    named = std::string(e.what()).find("num_shards") != std::string::npos;
  }
  CHECK(named);
  zp_builder raw{};
  raw.min_buffer_size = 100; // not a power of two
  CHECK_THROWS(zeropool::pool(raw), std::invalid_argument);
}

// The span-like view, release() and adoption of a raw buffer.
void test_view_release_adopt() {
  zeropool::pool p;
  zeropool::buffer b = p.get(300);
  CHECK(b.end() - b.begin() == 300);
  CHECK(b.cend() - b.cbegin() == 300);
  for (std::size_t i = 0; i < b.size(); i++)
    b[i] = static_cast<unsigned char>(i);
  const zeropool::buffer &cb = b;
  CHECK(cb[299] == static_cast<unsigned char>(299));
  CHECK(cb.at(10) == 10);
  CHECK_THROWS(b.at(300), std::out_of_range);
  CHECK(!b.empty());

  zeropool::buffer zero = p.get(0); // a valid buffer of size 0
  CHECK(static_cast<bool>(zero));
  CHECK(zero.empty());
  CHECK(zero.begin() == zero.end());

  const zp_stats s0 = p.stats();
  zp_pool *const owner = b.pool_handle();
  void *raw = b.release();
  CHECK(!b);
  CHECK(raw != nullptr);
  CHECK(p.stats().puts == s0.puts); // release does not put
  CHECK(zp_buffer_size(owner, raw) == 300);
  {
    zeropool::buffer adopted(owner, raw, 300);
    CHECK(adopted.size() == 300);
    adopted.set_used(300);
  }
  CHECK(p.stats().puts == s0.puts + 1);
  CHECK(zp_buffer_size(owner, raw) == 0); // back in the pool

  zeropool::buffer none(p.native_handle(), nullptr, 123);
  CHECK(!none);
  CHECK(none.size() == 0);
}

} // namespace

int main() {
  test_raii_put_on_scope_exit();
  test_move_semantics();
  test_set_used_wipes_prefix();
  test_bad_alloc_on_huge_request();
  test_pool_move();
  test_trim_stats_config();
  test_view_release_adopt();
  if (failures != 0) {
    std::fprintf(stderr, "test_cpp: %d check(s) failed\n", failures);
    return 1;
  }
  std::puts("test_cpp: all checks passed");
  return 0;
}
