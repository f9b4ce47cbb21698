// SPDX-License-Identifier: MIT OR Apache-2.0
/// @file zeropool.hpp
/// @brief C++17 wrapper over zeropool.h, header-only.
///
///     {
///       zeropool::pool pool;                    // defaults from the topology
///       zeropool::buffer buf = pool.get(65536); // every byte is zero
///       ssize_t n = read(fd, buf.data(), buf.size());
///       buf.set_used(n > 0 ? size_t(n) : 0);    // wipe only [0, n) on put
///       // ... use buf ...
///     } // buf goes back (zp_put_used), then the pool is destroyed
///
/// Two owning, move-only types:
///
/// - zeropool::pool owns a zp_pool * and destroys it (zp_pool_destroy) when
///   it dies. Several threads may use one pool object at the same time
///   (get, stats, trim, config), as the C API allows; destroying, assigning
///   or moving it must not race with other calls on it.
/// - zeropool::buffer owns one buffer handed out by a pool and puts it back
///   when it dies: zp_put, or zp_put_used(n) after set_used(n). A buffer
///   holds the raw zp_pool *, not a reference to the pool object: moving
///   the pool object does not invalidate it, and it may even outlive the
///   pool (zp_pool_destroy leaves buffers that are out valid; they are wiped
///   and freed when put). A buffer may be put back on any thread, but one
///   buffer object is not safe to use from two threads at once.
///
/// Errors: a failed get throws std::bad_alloc (the pool is out of memory,
/// or the size is above ZP_MAX_REQUEST); get(size, std::nothrow) returns an
/// empty buffer instead. An invalid zp_builder throws std::invalid_argument
/// naming the field. Misuse that the C library detects (a double put
/// through release(), a buffer put into another pool) still aborts.
///
/// The C API stays available: native_handle() and release() give the raw
/// handles, and pool::adopt() / the buffer adoption constructor take them
/// back.
#ifndef ZEROPOOL_HPP
#define ZEROPOOL_HPP

#include "zeropool.h"

#include <cerrno>
#include <cstddef>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace zeropool {

class buffer;
class pool;

/// A buffer handed out by a pool; puts itself back when it dies.
///
/// A view over the bytes in the style of std::span<unsigned char> (C++17
/// has none): data(), size(), begin(), end(), operator[]. Move-only: the
/// buffer is put back exactly once, by its last owner. A default-constructed
/// or moved-from buffer holds nothing (data() == nullptr, size() == 0,
/// `!buf`) and puts nothing.
class buffer {
public:
  /// The element type: raw bytes.
  using value_type = unsigned char;
  /// The type of sizes and indexes.
  using size_type = std::size_t;
  /// A mutable iterator: a plain pointer.
  using iterator = unsigned char *;
  /// A read-only iterator: a plain pointer.
  using const_iterator = const unsigned char *;

  /// An empty buffer: holds nothing, puts nothing.
  buffer() noexcept = default;

  /// Adopts a raw buffer: `data` must be what zp_get(`pool`, `size`)
  /// returned and not yet put; this object now puts it back. With
  /// `data` == nullptr the buffer is empty.
  buffer(zp_pool *pool, void *data, std::size_t size) noexcept
      : pool_(data != nullptr ? pool : nullptr),
        data_(static_cast<unsigned char *>(data)),
        size_(data != nullptr ? size : 0) {}

  /// Takes `other`'s buffer; `other` is left empty.
  buffer(buffer &&other) noexcept
      : pool_(other.pool_), data_(other.data_), size_(other.size_),
        used_(other.used_), has_used_(other.has_used_) {
    other.forget();
  }

  /// Puts back the buffer held now (if any), then takes `other`'s;
  /// `other` is left empty. Self-assignment does nothing.
  buffer &operator=(buffer &&other) noexcept {
    if (this != &other) {
      reset();
      pool_ = other.pool_;
      data_ = other.data_;
      size_ = other.size_;
      used_ = other.used_;
      has_used_ = other.has_used_;
      other.forget();
    }
    return *this;
  }

  /// Not copyable: one buffer, one owner, one put.
  buffer(const buffer &) = delete;
  /// Not copyable: one buffer, one owner, one put.
  buffer &operator=(const buffer &) = delete;

  /// Puts the buffer back (see reset()).
  ~buffer() { reset(); }

  /// The first byte, or nullptr when the buffer is empty.
  unsigned char *data() noexcept { return data_; }
  /// The first byte, or nullptr when the buffer is empty.
  const unsigned char *data() const noexcept { return data_; }

  /// The usable size: the size asked for in get(). Only these bytes may be
  /// written. 0 for an empty buffer (and for a get(0) buffer).
  std::size_t size() const noexcept { return size_; }

  /// True when size() is 0 (as for a container). Use `!buf` to ask
  /// whether the object holds a buffer at all.
  bool empty() const noexcept { return size_ == 0; }

  /// True when the object holds a buffer (a get(0) buffer included).
  explicit operator bool() const noexcept { return data_ != nullptr; }

  /// The first byte, as an iterator.
  iterator begin() noexcept { return data_; }
  /// One past the last usable byte.
  iterator end() noexcept { return data_ + size_; }
  /// The first byte, as a read-only iterator.
  const_iterator begin() const noexcept { return data_; }
  /// One past the last usable byte, read-only.
  const_iterator end() const noexcept { return data_ + size_; }
  /// The first byte, as a read-only iterator.
  const_iterator cbegin() const noexcept { return data_; }
  /// One past the last usable byte, read-only.
  const_iterator cend() const noexcept { return data_ + size_; }

  /// Byte `i`; `i` must be below size() (not checked).
  unsigned char &operator[](std::size_t i) noexcept { return data_[i]; }
  /// Byte `i`; `i` must be below size() (not checked).
  const unsigned char &operator[](std::size_t i) const noexcept {
    return data_[i];
  }

  /// Byte `i`; throws std::out_of_range when `i` >= size().
  unsigned char &at(std::size_t i) {
    if (i >= size_)
      throw std::out_of_range("zeropool::buffer::at: index out of range");
    return data_[i];
  }
  /// Byte `i`; throws std::out_of_range when `i` >= size().
  const unsigned char &at(std::size_t i) const {
    if (i >= size_)
      throw std::out_of_range("zeropool::buffer::at: index out of range");
    return data_[i];
  }

  /// Declares that only bytes [0, `n`) were written: when the buffer goes
  /// back it is put with zp_put_used(n), which wipes only those bytes (a
  /// short read into a large buffer costs little zeroing). The caller
  /// promises that no byte at or past `n` was written. May be called again
  /// to change `n`. Throws std::out_of_range when `n` > size().
  void set_used(std::size_t n) {
    if (n > size_)
      throw std::out_of_range("zeropool::buffer::set_used: more than size()");
    used_ = n;
    has_used_ = true;
  }

  /// The bytes the put will wipe: the `n` of set_used(), else size().
  std::size_t used() const noexcept { return has_used_ ? used_ : size_; }

  /// The pool the buffer goes back to, or nullptr when empty.
  zp_pool *pool_handle() const noexcept { return pool_; }

  /// Hands the raw pointer to the caller, who must put it back itself
  /// (zp_put or zp_put_used on pool_handle(), read before calling this).
  /// The buffer is left empty. Returns nullptr when it was empty.
  void *release() noexcept {
    void *d = data_;
    forget();
    return d;
  }

  /// Puts the buffer back now, with zp_put_used(used()) after set_used()
  /// and zp_put() otherwise, and leaves it empty. Does nothing when empty.
  void reset() noexcept {
    if (data_ == nullptr)
      return;
    if (has_used_)
      zp_put_used(pool_, data_, used_);
    else
      zp_put(pool_, data_);
    forget();
  }

  /// Exchanges the buffers of `*this` and `other`.
  void swap(buffer &other) noexcept {
    std::swap(pool_, other.pool_);
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(used_, other.used_);
    std::swap(has_used_, other.has_used_);
  }

  /// Exchanges the buffers of `a` and `b`.
  friend void swap(buffer &a, buffer &b) noexcept { a.swap(b); }

private:
  void forget() noexcept {
    pool_ = nullptr;
    data_ = nullptr;
    size_ = 0;
    used_ = 0;
    has_used_ = false;
  }

  zp_pool *pool_ = nullptr;
  unsigned char *data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t used_ = 0;
  bool has_used_ = false;
};

/// A fluent way to fill a zp_builder: every field left alone keeps its
/// default (0, resolved by the pool; see zeropool.h and docs/tuning.md).
///
///     auto pool = zeropool::builder().num_shards(8).max_pooled_bytes(
///                     256 << 20).build();
class builder {
public:
  /// Every field 0: every default.
  builder() noexcept = default;
  /// Starts from an existing zp_builder.
  explicit builder(const zp_builder &cfg) noexcept : cfg_(cfg) {}

  /// Sets zp_builder::tls_cache_size (idle buffers one thread keeps).
  builder &tls_cache_size(std::size_t n) noexcept {
    cfg_.tls_cache_size = n;
    return *this;
  }
  /// Sets zp_builder::min_buffer_size (a power of two in [64, 1 GiB]).
  builder &min_buffer_size(std::size_t n) noexcept {
    cfg_.min_buffer_size = n;
    return *this;
  }
  /// Sets zp_builder::max_buffers_per_shard (idle buffers one shard keeps).
  builder &max_buffers_per_shard(std::size_t n) noexcept {
    cfg_.max_buffers_per_shard = n;
    return *this;
  }
  /// Sets zp_builder::num_shards (a power of two, 1..ZP_MAX_SHARDS).
  builder &num_shards(std::size_t n) noexcept {
    cfg_.num_shards = n;
    return *this;
  }
  /// Sets zp_builder::max_pooled_bytes (the budget for idle memory).
  builder &max_pooled_bytes(std::size_t n) noexcept {
    cfg_.max_pooled_bytes = n;
    return *this;
  }
  /// Sets zp_builder::pinned_memory (mlock the pool's memory).
  builder &pinned_memory(bool on = true) noexcept {
    cfg_.pinned_memory = on;
    return *this;
  }
  /// Sets zp_builder::eviction_policy.
  builder &eviction_policy(zp_eviction policy) noexcept {
    cfg_.eviction_policy = policy;
    return *this;
  }
  /// Sets zp_builder::verify_on_get (check on get that an idle buffer is
  /// still zero; catches writes after put).
  builder &verify_on_get(zp_verify mode) noexcept {
    cfg_.verify_on_get = mode;
    return *this;
  }
  /// Sets zp_builder::zero_on_get (wipe again on get).
  builder &zero_on_get(bool on = true) noexcept {
    cfg_.zero_on_get = on;
    return *this;
  }
  /// Sets zp_builder::pin_policy (with ZP_PIN_STRICT, a get that cannot
  /// lock its memory fails: pool::get throws std::bad_alloc).
  builder &pin_policy(zp_pinning policy) noexcept {
    cfg_.pin_policy = policy;
    return *this;
  }
  /// Sets zp_builder::fork_policy (what a fork() child sees of the pool).
  builder &fork_policy(zp_fork policy) noexcept {
    cfg_.fork_policy = policy;
    return *this;
  }
  /// Sets zp_builder::backing (anonymous memory or memfd_secret).
  builder &backing(zp_backing kind) noexcept {
    cfg_.backing = kind;
    return *this;
  }

  /// The zp_builder filled so far.
  const zp_builder &raw() const noexcept { return cfg_; }

  /// nullptr when the settings are valid, else the name of the first
  /// invalid field ("num_shards", ...), as zp_builder_validate() reports.
  const char *invalid_field() const noexcept {
    const char *field = nullptr;
    return zp_builder_validate(&cfg_, &field) == 0
               ? nullptr
               : (field != nullptr ? field : "?");
  }

  /// Creates a pool with these settings (see pool::pool(const zp_builder&)
  /// for the exceptions).
  pool build() const;

private:
  zp_builder cfg_{};
};

/// Owns a zp_pool: creates it, destroys it when it dies. Move-only; a
/// moved-from pool is empty (native_handle() == nullptr, `!pool`).
class pool {
public:
  /// A pool with every default (zp_pool_new(NULL)). Throws std::bad_alloc
  /// when out of memory.
  pool() : p_(create(nullptr)) {}

  /// A pool with the settings of `cfg` (zp_pool_new(&cfg)). Throws
  /// std::invalid_argument, whose what() names the first invalid field,
  /// when zp_builder_validate() rejects `cfg`, and std::bad_alloc when out
  /// of memory.
  explicit pool(const zp_builder &cfg) : p_(create(&cfg)) {}

  /// A pool with the settings of `b`; as pool(b.raw()).
  explicit pool(const builder &b) : p_(create(&b.raw())) {}

  /// Takes ownership of `raw` (from zp_pool_new, or release()); nullptr
  /// gives an empty pool.
  static pool adopt(zp_pool *raw) noexcept { return pool(raw, adopt_tag{}); }

  /// Takes `other`'s pool; `other` is left empty. Buffers handed out
  /// before the move stay valid and go back to the same zp_pool.
  pool(pool &&other) noexcept : p_(other.p_) { other.p_ = nullptr; }

  /// Destroys the pool held now (if any), then takes `other`'s; `other`
  /// is left empty. Self-assignment does nothing.
  pool &operator=(pool &&other) noexcept {
    if (this != &other) {
      reset();
      p_ = other.p_;
      other.p_ = nullptr;
    }
    return *this;
  }

  /// Not copyable: one pool, one owner, one zp_pool_destroy.
  pool(const pool &) = delete;
  /// Not copyable: one pool, one owner, one zp_pool_destroy.
  pool &operator=(const pool &) = delete;

  /// Destroys the pool (see reset()).
  ~pool() { reset(); }

  /// A buffer of `size` usable bytes, every one zero (zp_get): page
  /// aligned from 4 KiB, 64-byte aligned below. Throws std::bad_alloc when
  /// the pool is out of memory or `size` > ZP_MAX_REQUEST, and
  /// std::logic_error when this pool is empty.
  [[nodiscard]] buffer get(std::size_t size) {
    if (p_ == nullptr)
      throw std::logic_error("zeropool::pool::get: empty (moved-from) pool");
    void *d = zp_get(p_, size);
    if (d == nullptr)
      throw std::bad_alloc();
    return buffer(p_, d, size);
  }

  /// As get(size), but returns an empty buffer on failure (errno tells
  /// why: ENOMEM, or EINVAL for an empty pool) instead of throwing.
  [[nodiscard]] buffer get(std::size_t size, const std::nothrow_t &) noexcept {
    return buffer(p_, zp_get(p_, size), size);
  }

  /// The pool's counters (zp_pool_stats); all zero for an empty pool.
  zp_stats stats() const noexcept {
    zp_stats st{};
    if (p_ != nullptr)
      (void)zp_pool_stats(p_, &st);
    return st;
  }

  /// Wipes and releases every idle buffer, other threads' caches included
  /// (zp_pool_trim). Does nothing for an empty pool.
  void trim() noexcept {
    if (p_ != nullptr)
      (void)zp_pool_trim(p_);
  }

  /// The settings in effect, every default resolved (zp_pool_config); all
  /// zero for an empty pool.
  zp_builder config() const noexcept {
    zp_builder cfg{};
    if (p_ != nullptr)
      (void)zp_pool_config(p_, &cfg);
    return cfg;
  }

  /// The size `p` was handed out with, or 0 when `p` is not one of this
  /// pool's buffers that are out (zp_buffer_size).
  std::size_t buffer_size(const void *p) const noexcept {
    return p_ != nullptr ? zp_buffer_size(p_, p) : 0;
  }

  /// The zp_pool *, for the C API; still owned by this object.
  zp_pool *native_handle() const noexcept { return p_; }

  /// Gives up ownership: returns the zp_pool * (the caller now calls
  /// zp_pool_destroy) and leaves this pool empty.
  zp_pool *release() noexcept {
    zp_pool *p = p_;
    p_ = nullptr;
    return p;
  }

  /// Destroys the pool now (zp_pool_destroy) and leaves this object
  /// empty. Buffers still out stay valid; each is wiped and freed when it
  /// is put. Must not race with other calls on this pool.
  void reset() noexcept {
    zp_pool_destroy(p_);
    p_ = nullptr;
  }

  /// True when the object holds a pool.
  explicit operator bool() const noexcept { return p_ != nullptr; }

  /// Exchanges the pools of `*this` and `other`.
  void swap(pool &other) noexcept { std::swap(p_, other.p_); }

  /// Exchanges the pools of `a` and `b`.
  friend void swap(pool &a, pool &b) noexcept { a.swap(b); }

private:
  struct adopt_tag {};
  pool(zp_pool *raw, adopt_tag) noexcept : p_(raw) {}

  static zp_pool *create(const zp_builder *cfg) {
    zp_pool *p = zp_pool_new(cfg);
    if (p != nullptr)
      return p;
    if (errno == EINVAL) {
      const char *field = nullptr;
      (void)zp_builder_validate(cfg, &field);
      throw std::invalid_argument(
          std::string("zeropool: invalid zp_builder field: ") +
          (field != nullptr ? field : "?"));
    }
    throw std::bad_alloc();
  }

  zp_pool *p_ = nullptr;
};

inline pool builder::build() const { return pool(*this); }

} // namespace zeropool

#endif // ZEROPOOL_HPP
