// SPDX-License-Identifier: MIT OR Apache-2.0
//
// zp_bench: is zeropool faster than what you use now, at the same level of
// safety? Every workload below runs, with the same code, over every
// implementation of bench/zpb_shim.h: zeropool (default pool, and pools
// built with ZP_EVICTION_LIFO and ZP_EVICTION_CLOCK_PRO, whichever the
// default is), glibc, mimalloc, jemalloc and tcmalloc (each as
// malloc and as calloc), libsodium's sodium_malloc and OpenSSL's secure heap.
// jemalloc, tcmalloc and mimalloc replace malloc, so each allocator family is
// its own executable built from this one source (zp_bench = glibc family,
// with zeropool, sodium and OpenSSL; zp_bench_mimalloc, zp_bench_jemalloc,
// zp_bench_tcmalloc). bench/zpb_run.py runs them all and writes BENCHMARKS.md.
//
// Like with like: a cycle is get(size) -> write `used` bytes (memset 0x5A)
// -> put(p, size, used), and every implementation leaves no written byte
// behind: zeropool wipes in zp_put / zp_put_used, the malloc families call
// explicit_bzero(used) before free, sodium and OpenSSL wipe the whole block
// themselves. The *-calloc variants (and zeropool) hand out zeroed memory;
// the *-malloc ones, sodium and OpenSSL do not. Pointers escape through
// benchmark::DoNotOptimize and ClobberMemory, and get/put are calls through
// the shim's function pointers, so no compiler can fold the work away.
//
// Names: <workload>/<implementation>/<parameter>, plus google-benchmark's
// /real_time and /threads:N. One iteration is one "op" of the tables.
// Every benchmark run opens a fresh instance (a new pool with the settings
// given, every default unless said otherwise) and closes it at the end, so
// that no workload inherits the idle buffers of another; peers have no
// per-instance state.
//
// 1. Single cycles, one thread, CPU time; sizes 1 KiB, 4 KiB, 64 KiB, 1 MiB,
//    16 MiB (the parameter). The instance is warmed with one cycle first.
//    cycle_full   the whole buffer written; zeropool puts with zp_put.
//    cycle_1k     1 KiB written, declared through zp_put_used(1 KiB) (a short
//                 read); peers wipe those 1 KiB only. Not at 1 KiB (= full).
//    cycle_10pct  the first size/10 bytes written, zp_put_used(size/10).
//    cycle_bare   nothing written: get + put(used 0), the allocator's own
//                 cost (calloc variants still zero on get).
//    floor_full, floor_1k, floor_10pct (implementation "floor"): the same
//                 write + one explicit_bzero of the written bytes on one
//                 pre-faulted buffer, no allocator: the physical floor of a
//                 zeroing pool. zpb_run.py runs it in zeropool's process,
//                 each floor benchmark just before zeropool's of the size.
//    bookkeeping  (the zeropool variants only, no shim) zp_get +
//                 zp_put_used(0) on a pool with default settings but its
//                 variant's policy: the pool's own cost, no byte touched.
//                 The policies run only under a shard's lock, so LIFO and
//                 CLOCK-Pro should not differ here (issue 4).
// 2. The Rust crate zeropool's cache_behavior benchmarks, same parameters
//    (pool settings apply to zeropool; peers run the same calls). A fresh
//    instance per benchmark; every buffer is written whole and put whole
//    (the crate zeroes the whole length on drop).
//    pingpong     pool: tls_cache_size 10, 20 x 1 MiB got and put first (the
//                 crate preallocates 20). Op: 100 x {get 1 KiB, get 1 MiB,
//                 write both, put both}.
//    hotcold      tls_cache_size 10, 10 x 64 KiB got and put first. Op: get
//                 3 x 64 KiB, write them, put them (the crate's 1000 no-op
//                 black_box uses in between are left out).
//    multisize    tls_cache_size 15. Op: 100 x for size in 4 KiB, 64 KiB,
//                 1 MiB {get, write, put}.
//    tcache       parameter k = 2, 4, 8; pool built with tls_cache_size k.
//                 Op: get k x 64 KiB, write them, put them.
//    eviction     the crate's pool: tls_cache_size 8, num_shards 4,
//                 max_buffers_per_shard 100. Op: get 10 x 64 KiB, write them,
//                 put them. With these settings nothing is evicted (the 2
//                 buffers the thread cache cannot hold go to a shard).
//    eviction_budget  the same plus max_pooled_bytes 320 KiB (parameter, in
//                 KiB), so that the pool really evicts: 10 x 64 KiB come
//                 back at once and there is room for 5 idle. Counter
//                 evictions/op.
//    rust_threads parameter T = 1, 4, 8, 16; pool tls_cache_size 1,
//                 num_shards 4. Op: start T threads that each do 1000 x
//                 {get 1 KiB, write it, put it}, and join them. CPU time of
//                 the whole process (all threads): on a shared machine wall
//                 time here mostly measures the scheduler.
// 3. Threads, default settings, real time.
//    threads_4k, threads_64k  T = 1, 2, 4, 8, 16 google-benchmark threads,
//                 each cycling get/write all/put on its own thread, all on
//                 one shared instance. ns/op is wall time / all threads'
//                 ops; total throughput = 1/that, per thread = total / T.
//                 "floor" runs the floor on T threads (each its own
//                 buffer): the scaling the machine allows.
//    prodcons     parameter 4 KiB or 64 KiB: this thread gets and writes a
//                 buffer and passes it through a lock-free single-producer
//                 single-consumer ring (64 slots) to a consumer thread that
//                 puts it. Counter hit_ratio. "floor": the same hand-off of
//                 writes and wipes over 128 fixed buffers, no allocator.
//                 Counter xcore_ns: one-way latency of a cache line
//                 between two threads (a ping-pong probe just before and
//                 just after the run, averaged). On a VM whose vCPUs the
//                 host moves it swings between ~40 and ~170 ns from one
//                 second to the next, and every hand-off pays it: the
//                 report shows it beside the times.
//    churn        op: start a thread that gets 4 x 64 KiB and writes them,
//                 puts 2, and exits holding the other 2, which this thread
//                 then puts. CPU time of the whole process, as rust_threads.
//                 Counter hit_ratio.
// 4. A realistic job, one thread, CPU time (system time included).
//    file_stream  a 64 MiB file (4 MiB with --quick) created in /tmp at
//                 start (and unlinked at once); op: read(2) it all from the
//                 page cache, each chunk into a fresh 64 KiB buffer that is
//                 put with the bytes read as `used`.
//    socket_echo  an AF_UNIX socketpair; op: write a 1 KiB message on one
//                 end, get a 64 KiB buffer, read the message into it from
//                 the other end, put it with used = 1 KiB.
// 5. Eviction under a byte budget (issue 4), the zeropool variants only, one
//    thread, CPU time. zp_sim's traces (tools/sim/traces.c), same
//    seeds and length (300000 demand steps, plus drains; 30000 with
//    --quick), replayed once on a fresh pool: one op = one get (then its
//    first 4 KiB written, put_used 4 KiB) or one put. Pool: one shard,
//    tls_cache_size 2 (the shard and its policy see nearly every op),
//    max_pooled_bytes = the trace's peak idle bytes (nothing released) /
//    the parameter (4 or 8), max_buffers_per_shard = budget / 4 KiB + 1.
//    evict_phase  8+32 KiB, then 128+512 KiB, then 8+32 KiB again
//    evict_scan   4+64 KiB steady; mid-way 1000 x 1 MiB used once (32 out)
//    evict_mixed  4 KiB / 64 KiB / 1 MiB, each with its own demand cycle
//    Counters: misses, misses_per_kget, evictions_total, budget_mib, and
//    from an untimed second replay reading the stats after every get:
//    os_mib / os_maps (bytes and mappings taken from the OS, the sum of
//    the rises of zp_stats.mapped_bytes / os_maps), peak_mapped_mib,
//    replay_equal (1 when both replays missed alike).
//
// Counters (google-benchmark user counters):
//   faults       minor page faults of the whole process per op (getrusage)
//   peak_rss_mib ru_maxrss of the process so far (one process per
//                implementation under zpb_run.py: its peak for the suite)
//   rss_hwm_mib  peak RSS during this benchmark (VmHWM, reset through
//                /proc/self/clear_refs at its start; -1 where not possible)
//   rss_growth_mib  that peak minus the RSS at the start of the timed part:
//                what the workload added (memory an allocator kept from
//                earlier benchmarks and reuses does not count again)
//   hit_ratio    zeropool only: hits / gets during the timed loop
//   evictions    zeropool only: idle buffers released per op
//   others_cpus  CPUs kept busy by other processes during the benchmark, on
//                average (/proc/stat busy time minus ours, over wall time)
//   steal_cpus   CPUs taken by the hypervisor (steal time over wall time):
//                on a shared machine the multi-thread rows depend on both
//
// Usage: zp_bench [--impl=NAME[,NAME...]] [--list-impls] [--quick]
//                 [google-benchmark flags]
//   --impl   run only these implementations ("floor" is the floor; the
//            default is every implementation of this executable)
//   --quick  a smoke run: --benchmark_min_time=0.001 unless given, 4 MiB
//            file
// A full, merged run with the report: make bench (bench/zpb_run.py).

#include <benchmark/benchmark.h>

#include "traces.h" // tools/sim: the eviction traces
#include "zpb_shim.h"
#include <zeropool.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t KiB = 1024;
constexpr std::size_t MiB = 1024 * KiB;
constexpr std::size_t kSizes[] = {1 * KiB, 4 * KiB, 64 * KiB, 1 * MiB,
                                  16 * MiB};
constexpr unsigned char kFill = 0x5A;

std::size_t g_file_bytes = 64 * MiB;

// ------------------------------------------------------------ measuring ----

long MinorFaults() {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : 0;
}

double PeakRssMiB() {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0
             ? static_cast<double>(ru.ru_maxrss) / 1024.0
             : -1.0;
}

// Resets the kernel's RSS high-water mark (VmHWM) of this process.
bool ResetHwm() {
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  bool ok = write(fd, "5", 1) == 1;
  close(fd);
  return ok;
}

// A "Vm...:" line of /proc/self/status (VmHWM, VmRSS) in MiB; -1 if none.
double StatusMiB(const char *key) {
  std::FILE *f = std::fopen("/proc/self/status", "r");
  if (f == nullptr)
    return -1.0;
  char line[256];
  double v = -1.0;
  const std::size_t n = std::strlen(key);
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::strncmp(line, key, n) == 0)
      v = std::strtod(line + n, nullptr) / 1024.0; // kB -> MiB
  std::fclose(f);
  return v;
}

// CPU time of the whole machine from /proc/stat: busy (user, nice, system,
// irq, softirq) and steal, in seconds. False when unreadable.
bool MachineCpu(double *busy, double *steal) {
  std::FILE *f = std::fopen("/proc/stat", "r");
  if (f == nullptr)
    return false;
  unsigned long long v[8] = {0};
  const int n =
      std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                  &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  std::fclose(f);
  if (n != 8)
    return false;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  *busy = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
  *steal = static_cast<double>(v[7]) / hz;
  return true;
}

// CPU time of this process, all threads, in seconds.
double SelfCpu() {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Takes the counters' first snapshot at construction and reports them. Only
// the benchmark's thread 0 measures (google-benchmark sums the counters of
// its threads; the snapshots are process-wide already).
class Meter {
public:
  Meter(const benchmark::State &state, const zpb_impl *im, void *inst)
      : active_(state.thread_index() == 0), im_(im), inst_(inst) {
    if (!active_)
      return;
    hwm_ok_ = ResetHwm();
    rss_start_ = StatusMiB("VmRSS:");
    faults_ = MinorFaults();
    cpu_ok_ = MachineCpu(&busy_, &steal_);
    self_ = SelfCpu();
    wall_ = Now();
    if (im_ != nullptr && im_->stats != nullptr)
      im_->stats(inst_, &stats_);
  }

  void Report(benchmark::State &state) const {
    if (!active_)
      return;
    using C = benchmark::Counter;
    state.counters["faults"] =
        C(static_cast<double>(MinorFaults() - faults_), C::kAvgIterations);
    state.counters["peak_rss_mib"] = PeakRssMiB();
    const double hwm = hwm_ok_ ? StatusMiB("VmHWM:") : -1.0;
    state.counters["rss_hwm_mib"] = hwm;
    state.counters["rss_growth_mib"] =
        hwm >= 0 && rss_start_ >= 0 ? hwm - rss_start_ : -1.0;
    double busy, steal;
    const double wall = Now() - wall_;
    if (cpu_ok_ && wall > 0 && MachineCpu(&busy, &steal)) {
      const double others = (busy - busy_) - (SelfCpu() - self_);
      state.counters["others_cpus"] = std::max(0.0, others / wall);
      state.counters["steal_cpus"] = (steal - steal_) / wall;
    }
    if (im_ == nullptr || im_->stats == nullptr)
      return;
    zpb_stats now;
    if (im_->stats(inst_, &now) != 0)
      return;
    const std::uint64_t gets = now.gets - stats_.gets;
    const std::uint64_t hits = now.hits - stats_.hits;
    state.counters["hit_ratio"] =
        gets ? static_cast<double>(hits) / static_cast<double>(gets) : 0.0;
    state.counters["evictions"] =
        C(static_cast<double>(now.evictions - stats_.evictions),
          C::kAvgIterations);
  }

private:
  bool active_;
  const zpb_impl *im_;
  void *inst_;
  bool hwm_ok_ = false;
  double rss_start_ = -1.0;
  long faults_ = 0;
  bool cpu_ok_ = false;
  double busy_ = 0, steal_ = 0, self_ = 0, wall_ = 0;
  zpb_stats stats_{};
};

// ------------------------------------------------------- implementations ----

// A fresh instance for one benchmark run, closed at the end.
class Instance {
public:
  Instance(const zpb_impl *im, const zpb_config &cfg)
      : im_(im), inst_(im->open(&cfg)) {}
  ~Instance() {
    if (inst_ != nullptr)
      im_->close(inst_);
  }
  Instance(const Instance &) = delete;
  Instance &operator=(const Instance &) = delete;
  void *get() const { return inst_; }

private:
  const zpb_impl *im_;
  void *inst_;
};

// One instance shared by the threads of a google-benchmark run with
// Threads(T): thread 0 opens it before the timed loop while the others wait
// for it, and closes it after the loop (whose end is a barrier of all the
// threads, so none uses it any more; their thread caches may outlive the
// pool, which zeropool allows). One benchmark runs at a time.
std::atomic<int> g_shared_state{0}; // 0 none, 1 open, 2 failed
void *g_shared_inst = nullptr;

void *SharedOpen(const benchmark::State &state, const zpb_impl *im) {
  if (state.thread_index() == 0) {
    zpb_config cfg{};
    g_shared_inst = im->open(&cfg);
    g_shared_state.store(g_shared_inst != nullptr ? 1 : 2,
                         std::memory_order_release);
  }
  int st;
  while ((st = g_shared_state.load(std::memory_order_acquire)) == 0)
    std::this_thread::yield();
  return st == 1 ? g_shared_inst : nullptr;
}

void SharedClose(const benchmark::State &state, const zpb_impl *im) {
  if (state.thread_index() != 0)
    return;
  if (g_shared_inst != nullptr)
    im->close(g_shared_inst);
  g_shared_inst = nullptr;
  g_shared_state.store(0, std::memory_order_release);
}

bool Fits(const zpb_impl *im, std::size_t size) {
  return im->max_size == 0 || size <= im->max_size;
}

inline void Write(void *p, std::size_t n) {
  if (n != 0)
    std::memset(p, kFill, n);
  benchmark::ClobberMemory();
}

// get + DoNotOptimize; on failure the benchmark is marked as skipped.
inline void *Get(benchmark::State &state, const zpb_impl *im, void *inst,
                 std::size_t size) {
  void *p = im->get(inst, size);
  benchmark::DoNotOptimize(p);
  if (p == nullptr)
    state.SkipWithError("get returned NULL (size does not fit)");
  return p;
}

// Gets n buffers of size, writes them whole and puts them back: a warm
// start in steady state (pages faulted in; the Rust crate's preallocate).
// False when a get failed.
bool Prefill(benchmark::State &state, const zpb_impl *im, void *inst,
             std::size_t n, std::size_t size) {
  std::vector<void *> held;
  bool ok = true;
  for (std::size_t i = 0; i < n && ok; ++i) {
    void *p = Get(state, im, inst, size);
    if (p != nullptr) {
      Write(p, size);
      held.push_back(p);
    }
    ok = p != nullptr;
  }
  for (void *p : held)
    im->put(inst, p, size, size);
  return ok;
}

bool OpenFailed(benchmark::State &state, void *inst) {
  if (inst != nullptr)
    return false;
  state.SkipWithError("open failed");
  return true;
}

// --------------------------------------------------------- 1. single ----

void BM_Cycle(benchmark::State &state, const zpb_impl *im, std::size_t size,
              std::size_t used) {
  Instance inst(im, zpb_config{});
  void *in = inst.get();
  if (OpenFailed(state, in) || !Prefill(state, im, in, 1, size))
    return;
  Meter meter(state, im, in);
  for (auto _ : state) {
    void *p = Get(state, im, in, size);
    if (p == nullptr)
      break;
    Write(p, used);
    im->put(in, p, size, used);
  }
  meter.Report(state);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(used));
}

// A page-aligned buffer of the floor, mapped and faulted in before timing
// and unmapped after the run (so it adds nothing to the process's RSS
// afterwards).
class FloorBuffer {
public:
  explicit FloorBuffer(std::size_t size) : size_(size) {
    void *p = mmap(nullptr, size_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p_ = p == MAP_FAILED ? nullptr : static_cast<unsigned char *>(p);
    if (p_ != nullptr)
      std::memset(p_, 0, size_);
  }
  ~FloorBuffer() {
    if (p_ != nullptr)
      munmap(p_, size_);
  }
  FloorBuffer(const FloorBuffer &) = delete;
  FloorBuffer &operator=(const FloorBuffer &) = delete;
  unsigned char *get() const { return p_; }

private:
  std::size_t size_;
  unsigned char *p_;
};

// The floor: write `used` bytes and explicit_bzero them, on one buffer, no
// allocator. On T threads (threads_*), each thread has its own buffer.
void BM_Floor(benchmark::State &state, std::size_t used) {
  FloorBuffer buf(used);
  unsigned char *p = buf.get();
  if (p == nullptr) {
    state.SkipWithError("mmap failed");
    return;
  }
  Meter meter(state, nullptr, nullptr);
  for (auto _ : state) {
    benchmark::DoNotOptimize(p);
    std::memset(p, kFill, used);
    benchmark::ClobberMemory();
    explicit_bzero(p, used);
    benchmark::ClobberMemory();
  }
  meter.Report(state);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(used));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// The pool's own cost: zp_get + zp_put_used(0), direct calls, no byte
// touched.
void BM_Bookkeeping(benchmark::State &state, const zpb_impl *im,
                    std::size_t size) {
  Instance inst(im, zpb_config{});
  if (OpenFailed(state, inst.get()))
    return;
  zp_pool *pool = static_cast<zp_pool *>(inst.get()); // a ZPB_POOL instance
  void *warm = zp_get(pool, size);
  if (warm == nullptr) {
    state.SkipWithError("zp_get failed");
    return;
  }
  zp_put(pool, warm);
  Meter meter(state, im, pool);
  for (auto _ : state) {
    void *p = zp_get(pool, size);
    benchmark::DoNotOptimize(p);
    if (p == nullptr) {
      state.SkipWithError("zp_get failed");
      break;
    }
    benchmark::ClobberMemory();
    zp_put_used(pool, p, 0);
  }
  meter.Report(state);
}

// ------------------------------------------------- 2. the Rust crate's ----

void BM_PingPong(benchmark::State &state, const zpb_impl *im) {
  zpb_config cfg{};
  cfg.tls_cache_size = 10;
  Instance inst(im, cfg);
  void *in = inst.get();
  if (OpenFailed(state, in) || !Prefill(state, im, in, 20, 1 * MiB))
    return;
  Meter meter(state, im, in);
  for (auto _ : state) {
    for (int i = 0; i < 100; ++i) {
      void *a = Get(state, im, in, 1 * KiB);
      void *b = Get(state, im, in, 1 * MiB);
      if (a == nullptr || b == nullptr)
        return;
      Write(a, 1 * KiB);
      Write(b, 1 * MiB);
      im->put(in, a, 1 * KiB, 1 * KiB);
      im->put(in, b, 1 * MiB, 1 * MiB);
    }
  }
  meter.Report(state);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 200);
}

// Gets n buffers of size, writes them all, puts them all: one op of
// hotcold, tcache and eviction.
void BM_Batch(benchmark::State &state, const zpb_impl *im,
              const zpb_config &cfg, std::size_t prefill, std::size_t n,
              std::size_t size) {
  Instance inst(im, cfg);
  void *in = inst.get();
  if (OpenFailed(state, in) || !Prefill(state, im, in, prefill, size))
    return;
  std::vector<void *> bufs(n);
  Meter meter(state, im, in);
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) {
      bufs[i] = Get(state, im, in, size);
      if (bufs[i] == nullptr)
        return;
      Write(bufs[i], size);
    }
    for (std::size_t i = 0; i < n; ++i)
      im->put(in, bufs[i], size, size);
  }
  meter.Report(state);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(n));
}

void BM_MultiSize(benchmark::State &state, const zpb_impl *im) {
  zpb_config cfg{};
  cfg.tls_cache_size = 15;
  Instance inst(im, cfg);
  void *in = inst.get();
  if (OpenFailed(state, in))
    return;
  const std::size_t sizes[] = {4 * KiB, 64 * KiB, 1 * MiB};
  Meter meter(state, im, in);
  for (auto _ : state) {
    for (int i = 0; i < 100; ++i) {
      for (std::size_t size : sizes) {
        void *p = Get(state, im, in, size);
        if (p == nullptr)
          return;
        Write(p, size);
        im->put(in, p, size, size);
      }
    }
  }
  meter.Report(state);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 300);
}

void BM_RustThreads(benchmark::State &state, const zpb_impl *im, int nthreads) {
  zpb_config cfg{};
  cfg.tls_cache_size = 1;
  cfg.num_shards = 4;
  Instance inst(im, cfg);
  void *in = inst.get();
  if (OpenFailed(state, in))
    return;
  std::atomic<bool> failed{false};
  auto work = [&] {
    for (int i = 0; i < 1000; ++i) {
      void *p = im->get(in, 1 * KiB);
      benchmark::DoNotOptimize(p);
      if (p == nullptr) {
        failed.store(true);
        return;
      }
      Write(p, 1 * KiB);
      im->put(in, p, 1 * KiB, 1 * KiB);
    }
  };
  Meter meter(state, im, in);
  std::vector<std::thread> threads;
  for (auto _ : state) {
    threads.clear();
    for (int t = 0; t < nthreads; ++t)
      threads.emplace_back(work);
    for (std::thread &t : threads)
      t.join();
  }
  if (failed.load())
    state.SkipWithError("get returned NULL");
  meter.Report(state);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          nthreads * 1000);
}

// ----------------------------------------------------------- 3. threads ----

void BM_Threads(benchmark::State &state, const zpb_impl *im, std::size_t size) {
  void *in = SharedOpen(state, im);
  if (in == nullptr) {
    state.SkipWithError("open failed");
    SharedClose(state, im);
    return;
  }
  {
    Meter meter(state, im, in);
    for (auto _ : state) {
      void *p = Get(state, im, in, size);
      if (p == nullptr)
        break;
      Write(p, size);
      im->put(in, p, size, size);
    }
    meter.Report(state);
  }
  SharedClose(state, im);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// Spins briefly, then yields: two busy threads may share one core here.
class Backoff {
public:
  void Pause() {
    if (++spins_ < 64) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      return;
    }
    spins_ = 0;
    sched_yield();
  }

private:
  int spins_ = 0;
};

// A bounded lock-free ring for one producer and one consumer. Each side
// keeps a private copy of the other side's index and rereads the shared one
// only when the copy says full (empty), so most operations touch no line the
// other side writes.
class SpscRing {
public:
  bool TryPush(void *p) {
    const std::size_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_cache_ == kCap) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (t - head_cache_ == kCap)
        return false;
    }
    slots_[t & (kCap - 1)] = p;
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  bool TryPop(void **p) {
    const std::size_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (h == tail_cache_)
        return false;
    }
    *p = slots_[h & (kCap - 1)];
    head_.store(h + 1, std::memory_order_release);
    return true;
  }

  static constexpr std::size_t kCap = 64; // a power of two

private:
  alignas(64) std::atomic<std::size_t> head_{0};
  std::size_t tail_cache_ = 0; // the consumer's
  alignas(64) std::atomic<std::size_t> tail_{0};
  std::size_t head_cache_ = 0; // the producer's
  alignas(64) void *slots_[kCap] = {};
};

// One-way latency, in ns, of a cache line handed back and forth between
// this thread and a new one (the cost every cross-thread hand-off pays).
double CrossCoreNs() {
  constexpr long kRounds = 2000;
  alignas(64) std::atomic<long> flag{0};
  std::thread other([&] {
    for (long i = 1; i < 2 * kRounds; i += 2) {
      while (flag.load(std::memory_order_acquire) != i) {
      }
      flag.store(i + 1, std::memory_order_release);
    }
  });
  // The clock starts once the other thread has answered (not its start).
  constexpr long kWarm = 100;
  std::chrono::steady_clock::time_point t0;
  for (long i = 0; i < 2 * kRounds; i += 2) {
    if (i == 2 * kWarm)
      t0 = std::chrono::steady_clock::now();
    while (flag.load(std::memory_order_acquire) != i) {
    }
    flag.store(i + 1, std::memory_order_release);
  }
  auto t1 = std::chrono::steady_clock::now();
  other.join();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() /
         (2.0 * (kRounds - kWarm));
}

void BM_ProdCons(benchmark::State &state, const zpb_impl *im,
                 std::size_t size) {
  Instance inst(im, zpb_config{});
  void *in = inst.get();
  if (OpenFailed(state, in))
    return;
  if (!Prefill(state, im, in, 1, size))
    return;
  const double xcore_before = CrossCoreNs();
  SpscRing ring;
  std::thread consumer([&] {
    Backoff backoff;
    for (;;) {
      void *p;
      while (!ring.TryPop(&p))
        backoff.Pause();
      if (p == nullptr)
        return; // the producer is done
      im->put(in, p, size, size);
    }
  });
  Meter meter(state, im, in);
  Backoff backoff;
  for (auto _ : state) {
    void *p = Get(state, im, in, size);
    if (p == nullptr)
      break;
    Write(p, size);
    while (!ring.TryPush(p))
      backoff.Pause();
  }
  while (!ring.TryPush(nullptr))
    backoff.Pause();
  consumer.join(); // at most 64 puts after the timed loop
  meter.Report(state);
  state.counters["xcore_ns"] = (xcore_before + CrossCoreNs()) / 2;
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// The floor of a hand-off: the same ring and the same writes and wipes on
// 2 x kCap buffers of one mapping, no allocator (the producer cannot lap the
// consumer: at most kCap + 2 buffers are in flight).
void BM_ProdConsFloor(benchmark::State &state, std::size_t size) {
  constexpr std::size_t kBufs = 2 * SpscRing::kCap;
  FloorBuffer buf(kBufs * size);
  if (buf.get() == nullptr) {
    state.SkipWithError("mmap failed");
    return;
  }
  const double xcore_before = CrossCoreNs();
  SpscRing ring;
  std::thread consumer([&] {
    Backoff backoff;
    for (;;) {
      void *p;
      while (!ring.TryPop(&p))
        backoff.Pause();
      if (p == nullptr)
        return;
      explicit_bzero(p, size);
    }
  });
  Meter meter(state, nullptr, nullptr);
  Backoff backoff;
  std::size_t i = 0;
  for (auto _ : state) {
    void *p = buf.get() + (i++ % kBufs) * size;
    benchmark::DoNotOptimize(p);
    Write(p, size);
    while (!ring.TryPush(p))
      backoff.Pause();
  }
  while (!ring.TryPush(nullptr))
    backoff.Pause();
  consumer.join();
  meter.Report(state);
  state.counters["xcore_ns"] = (xcore_before + CrossCoreNs()) / 2;
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_Churn(benchmark::State &state, const zpb_impl *im) {
  Instance inst(im, zpb_config{});
  void *in = inst.get();
  if (OpenFailed(state, in))
    return;
  constexpr std::size_t kSize = 64 * KiB;
  void *held[2] = {nullptr, nullptr};
  std::atomic<bool> failed{false};
  Meter meter(state, im, in);
  for (auto _ : state) {
    std::thread t([&] {
      void *b[4];
      for (void *&p : b) {
        p = im->get(in, kSize);
        benchmark::DoNotOptimize(p);
        if (p == nullptr) {
          failed.store(true);
          return;
        }
        Write(p, kSize);
      }
      im->put(in, b[0], kSize, kSize);
      im->put(in, b[1], kSize, kSize);
      held[0] = b[2]; // the thread exits holding these two
      held[1] = b[3];
    });
    t.join();
    if (failed.load()) {
      state.SkipWithError("get returned NULL");
      break;
    }
    im->put(in, held[0], kSize, kSize);
    im->put(in, held[1], kSize, kSize);
  }
  meter.Report(state);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 4);
}

// ------------------------------------------------------ 4. realistic job ----

int g_file_fd = -1;

// The streamed file: g_file_bytes of a byte pattern, created once in /tmp
// and unlinked at once (the descriptor keeps it). -1 on failure.
int StreamFile() {
  if (g_file_fd >= 0)
    return g_file_fd;
  char path[] = "/tmp/zp_bench_stream_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0)
    return -1;
  unlink(path);
  std::vector<unsigned char> chunk(1 * MiB);
  for (std::size_t i = 0; i < chunk.size(); ++i)
    chunk[i] = static_cast<unsigned char>(i * 131 + 7);
  for (std::size_t done = 0; done < g_file_bytes;) {
    std::size_t n = std::min(chunk.size(), g_file_bytes - done);
    ssize_t w = write(fd, chunk.data(), n);
    if (w <= 0) {
      close(fd);
      return -1;
    }
    done += static_cast<std::size_t>(w);
  }
  g_file_fd = fd;
  return fd;
}

void BM_FileStream(benchmark::State &state, const zpb_impl *im) {
  Instance inst(im, zpb_config{});
  void *in = inst.get();
  if (OpenFailed(state, in))
    return;
  constexpr std::size_t kChunk = 64 * KiB;
  const int fd = StreamFile();
  if (fd < 0) {
    state.SkipWithError("cannot create the file in /tmp");
    return;
  }
  Meter meter(state, im, in);
  for (auto _ : state) {
    if (lseek(fd, 0, SEEK_SET) != 0) {
      state.SkipWithError("lseek failed");
      break;
    }
    for (;;) {
      void *p = Get(state, im, in, kChunk);
      if (p == nullptr)
        return;
      ssize_t n = read(fd, p, kChunk);
      benchmark::ClobberMemory();
      im->put(in, p, kChunk, n > 0 ? static_cast<std::size_t>(n) : 0);
      if (n <= 0) {
        if (n < 0)
          state.SkipWithError("read failed");
        break;
      }
    }
  }
  meter.Report(state);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(g_file_bytes));
}

void BM_SocketEcho(benchmark::State &state, const zpb_impl *im) {
  Instance inst(im, zpb_config{});
  void *in = inst.get();
  if (OpenFailed(state, in))
    return;
  constexpr std::size_t kMsg = 1 * KiB, kBuf = 64 * KiB;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    state.SkipWithError("socketpair failed");
    return;
  }
  unsigned char msg[kMsg];
  std::memset(msg, kFill, sizeof msg);
  Meter meter(state, im, in);
  for (auto _ : state) {
    if (write(sv[0], msg, kMsg) != static_cast<ssize_t>(kMsg)) {
      state.SkipWithError("write failed");
      break;
    }
    void *p = Get(state, im, in, kBuf);
    if (p == nullptr)
      break;
    std::size_t got = 0;
    while (got < kMsg) {
      ssize_t n = read(sv[1], static_cast<char *>(p) + got, kBuf - got);
      if (n <= 0)
        break;
      got += static_cast<std::size_t>(n);
    }
    benchmark::ClobberMemory();
    im->put(in, p, kBuf, got);
    if (got < kMsg) {
      state.SkipWithError("read failed");
      break;
    }
  }
  meter.Report(state);
  close(sv[0]);
  close(sv[1]);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(kMsg));
}

// ------------------------------------- 5. eviction under a byte budget ----

// The traces of tools/sim/zp_sim (mixed, phase, scan), generated by its
// very code (tools/sim/traces.c) with the same seeds and length, so that the
// real pool's misses can be set beside the simulator's (docs/clockpro.md).
// Generated once, at registration, outside any timed part. A buffer lives in a
// slot from its get to its put; slots are reused, so the replay's table stays
// as small as the most buffers out at once.
struct TraceOp {
  std::uint32_t slot;
  std::uint32_t size; // bytes requested (every size here < 4 GiB)
  bool get;
};

struct Trace {
  std::vector<TraceOp> ops;
  std::uint32_t slots = 0;   // table size for the replay
  std::size_t gets = 0;      // gets in ops
  std::size_t peak_idle = 0; // idle bytes at the worst moment when nothing
                             // is ever released: what the budgets divide
};

// A zp_sim trace as the replay wants it: buffer ids become reusable slots,
// classes become the bytes requested (every trace size is a class size),
// and the no-release idle accounting gives the budgets' base.
Trace FromSim(const char *name, std::size_t steps) {
  zp__size_classes sc;
  zp__size_classes_init(&sc, 4 * KiB); // as zp_sim
  unsigned index = 0;
  while (index < zps_ntraces && std::strcmp(zps_traces[index].name, name))
    index++;
  zps_trace sim;
  zps_trace_gen(&sim, index, steps, &sc);
  Trace t;
  std::vector<std::uint32_t> slot_of(sim.next_id), free_slots;
  struct Demand {
    std::size_t out = 0, most = 0;
  };
  std::map<std::size_t, Demand> demand;
  std::size_t idle = 0;
  for (std::size_t i = 0; i < sim.n; i++) {
    const zps_op &o = sim.ops[i];
    const std::size_t size = sc.size[o.cls];
    Demand &d = demand[size];
    std::uint32_t slot;
    if (o.kind == ZPS_GET) {
      if (free_slots.empty()) {
        slot = t.slots++;
      } else {
        slot = free_slots.back();
        free_slots.pop_back();
      }
      slot_of[o.id] = slot;
      t.gets++;
      // Every size's idle buffers are the most ever out minus those out
      // now: a get reuses one when it can.
      if (++d.out > d.most)
        d.most = d.out;
      else
        idle -= size;
    } else {
      slot = slot_of[o.id];
      free_slots.push_back(slot);
      d.out--;
      idle += size;
      t.peak_idle = std::max(t.peak_idle, idle);
    }
    t.ops.push_back(
        {slot, static_cast<std::uint32_t>(size), o.kind == ZPS_GET});
  }
  zps_trace_free(&sim);
  return t;
}

std::size_t g_trace_steps = 300000;

// Budgets, as fractions 1 / div of the trace's peak idle bytes: zp_sim's
// 1/4 and 1/8, where docs/clockpro.md reports its gains (and, for mixed at
// 1/8, its smallest one).
constexpr std::size_t kEvictDivs[] = {4, 8};

// The pool of the eviction workloads: one shard (the thread's shard is its
// CPU's, so with more the shard, and the misses, would follow the
// scheduler), a thread cache of 2 so that nearly every put and get reaches
// the shard and its policy, the budget = peak idle / div rounded up to a
// page as in zp_sim, and as many idle buffers per shard as zp_sim gives its
// CLOCK-Pro (budget / 4 KiB + 1): the byte budget is the limit that binds.
zpb_config EvictConfig(const Trace &t, std::size_t div) {
  zpb_config cfg{};
  cfg.tls_cache_size = 2;
  cfg.num_shards = 1;
  cfg.max_pooled_bytes = (t.peak_idle / div + 4095) & ~std::size_t{4095};
  cfg.max_buffers_per_shard =
      std::min<std::size_t>(cfg.max_pooled_bytes / (4 * KiB) + 1, 1u << 20);
  return cfg;
}

// Each get writes its first page (the whole buffer below 4 KiB) and puts
// with that as used: what is measured is the policy and the mappings its
// misses and evictions cost, not memset; writing whole 512 KiB and 1 MiB
// buffers would make each run seconds long, and would add the same cost
// per get to both policies (but not the page faults of a miss's fresh
// mapping beyond its first page: ns/op understates a miss for big sizes).
constexpr std::size_t kEvictTouch = 4 * KiB;

// One iteration = one op of the trace (a get and its write, or a put);
// Iterations(trace length) replays it exactly once on a fresh pool. Then an
// untimed second replay on another fresh pool reads the pool's counters
// after every get, to add up the bytes and mappings taken from the OS and
// their peak (the gauges rise only when a get maps memory); zp_pool_stats
// locks the shard, so this cannot run in the timed replay. One thread and
// one shard make the replays identical (decay counts operations, not
// time); replay_equal says whether the two saw the same misses.
void BM_Evict(benchmark::State &state, const zpb_impl *im, const Trace *t,
              std::size_t div) {
  const zpb_config cfg = EvictConfig(*t, div);
  std::vector<void *> slots(t->slots, nullptr);
  zpb_stats before{}, after{};
  {
    Instance inst(im, cfg);
    void *in = inst.get();
    if (OpenFailed(state, in))
      return;
    im->stats(in, &before);
    Meter meter(state, im, in);
    std::size_t i = 0;
    for (auto _ : state) {
      const TraceOp &op = t->ops[i++];
      const std::size_t used = std::min<std::size_t>(op.size, kEvictTouch);
      if (op.get) {
        void *p = Get(state, im, in, op.size);
        if (p == nullptr)
          break;
        Write(p, used);
        slots[op.slot] = p;
      } else {
        im->put(in, slots[op.slot], op.size, used);
      }
    }
    meter.Report(state);
    im->stats(in, &after);
    // An aborted replay leaves buffers out: they would be put into a pool
    // that is gone. Only a finished one (every buffer back) is reported.
    if (i != t->ops.size())
      return;
  }
  double os_bytes = 0, os_maps = 0, peak_mapped = 0;
  std::uint64_t misses2 = 0;
  {
    Instance inst(im, cfg);
    void *in = inst.get();
    if (in == nullptr)
      return;
    zpb_stats first{}, last{}, now{};
    im->stats(in, &first);
    last = now = first;
    for (const TraceOp &op : t->ops) {
      const std::size_t used = std::min<std::size_t>(op.size, kEvictTouch);
      if (!op.get) {
        im->put(in, slots[op.slot], op.size, used);
        continue;
      }
      void *p = im->get(in, op.size);
      if (p == nullptr) {
        state.SkipWithError("get returned NULL (second replay)");
        return; // the pool is destroyed with buffers out: allowed
      }
      Write(p, used);
      slots[op.slot] = p;
      im->stats(in, &now);
      if (now.mapped_bytes > last.mapped_bytes)
        os_bytes += static_cast<double>(now.mapped_bytes - last.mapped_bytes);
      if (now.os_maps > last.os_maps)
        os_maps += static_cast<double>(now.os_maps - last.os_maps);
      peak_mapped =
          std::max(peak_mapped, static_cast<double>(now.mapped_bytes));
      last = now;
    }
    misses2 = now.misses - first.misses;
  }
  const double gets = static_cast<double>(after.gets - before.gets);
  const double misses = static_cast<double>(after.misses - before.misses);
  state.counters["budget_mib"] =
      static_cast<double>(cfg.max_pooled_bytes) / MiB;
  state.counters["misses"] = misses;
  state.counters["misses_per_kget"] = gets > 0 ? 1000 * misses / gets : 0;
  state.counters["evictions_total"] =
      static_cast<double>(after.evictions - before.evictions);
  state.counters["os_mib"] = os_bytes / MiB;
  state.counters["os_maps"] = os_maps;
  state.counters["peak_mapped_mib"] = peak_mapped / MiB;
  state.counters["replay_equal"] =
      misses2 == after.misses - before.misses ? 1 : 0;
}

// --------------------------------------------------------- registration ----

std::string Name(const char *workload, const char *impl, std::size_t param) {
  return std::string(workload) + "/" + impl + "/" + std::to_string(param);
}

// Registers every workload for the implementations in impls (workload by
// workload, so that a run over several implementations interleaves them);
// floor: the floor too.
void RegisterAll(const std::vector<const zpb_impl *> &impls, bool floor) {
  using benchmark::RegisterBenchmark;
  struct Used {
    const char *workload;
    std::function<std::size_t(std::size_t)> used; // 0: not at this size
  };
  const Used modes[] = {
      {"cycle_full", [](std::size_t s) { return s; }},
      {"cycle_1k", [](std::size_t s) { return s > KiB ? KiB : 0; }},
      {"cycle_10pct", [](std::size_t s) { return s / 10; }},
  };
  for (const Used &m : modes) {
    for (std::size_t size : kSizes) {
      const std::size_t used = m.used(size);
      if (used == 0)
        continue;
      if (floor) {
        std::string w = std::string("floor") + (m.workload + 5); // _full...
        RegisterBenchmark(Name(w.c_str(), "floor", size).c_str(), BM_Floor,
                          used);
      }
      for (const zpb_impl *im : impls)
        if (Fits(im, size))
          RegisterBenchmark(Name(m.workload, im->name, size).c_str(), BM_Cycle,
                            im, size, used);
    }
  }
  for (std::size_t size : kSizes) {
    for (const zpb_impl *im : impls) {
      if (!Fits(im, size))
        continue;
      RegisterBenchmark(Name("cycle_bare", im->name, size).c_str(), BM_Cycle,
                        im, size, std::size_t{0});
      if (im->flags & ZPB_POOL) // every policy: their fast paths compared
        RegisterBenchmark(Name("bookkeeping", im->name, size).c_str(),
                          BM_Bookkeeping, im, size);
    }
  }

  for (const zpb_impl *im : impls)
    RegisterBenchmark(Name("pingpong", im->name, 0).c_str(), BM_PingPong, im);
  for (const zpb_impl *im : impls) {
    zpb_config cfg{};
    cfg.tls_cache_size = 10;
    RegisterBenchmark(Name("hotcold", im->name, 0).c_str(), BM_Batch, im, cfg,
                      std::size_t{10}, std::size_t{3}, 64 * KiB);
  }
  for (const zpb_impl *im : impls)
    RegisterBenchmark(Name("multisize", im->name, 0).c_str(), BM_MultiSize, im);
  for (std::size_t k : {2, 4, 8}) {
    for (const zpb_impl *im : impls) {
      zpb_config cfg{};
      cfg.tls_cache_size = k;
      RegisterBenchmark(Name("tcache", im->name, k).c_str(), BM_Batch, im, cfg,
                        std::size_t{0}, k, 64 * KiB);
    }
  }
  for (std::size_t budget_kib : {0, 320}) {
    for (const zpb_impl *im : impls) {
      zpb_config cfg{};
      cfg.tls_cache_size = 8;
      cfg.num_shards = 4;
      cfg.max_buffers_per_shard = 100;
      cfg.max_pooled_bytes = budget_kib * KiB;
      const char *w = budget_kib ? "eviction_budget" : "eviction";
      RegisterBenchmark(Name(w, im->name, budget_kib).c_str(), BM_Batch, im,
                        cfg, std::size_t{0}, std::size_t{10}, 64 * KiB);
    }
  }
  for (int t : {1, 4, 8, 16})
    for (const zpb_impl *im : impls)
      RegisterBenchmark(Name("rust_threads", im->name, t).c_str(),
                        BM_RustThreads, im, t)
          ->MeasureProcessCPUTime();

  const struct {
    const char *workload;
    std::size_t size;
  } thread_sizes[] = {{"threads_4k", 4 * KiB}, {"threads_64k", 64 * KiB}};
  for (const auto &ts : thread_sizes) {
    for (int t : {1, 2, 4, 8, 16}) {
      if (floor)
        RegisterBenchmark(Name(ts.workload, "floor", ts.size).c_str(), BM_Floor,
                          ts.size)
            ->Threads(t)
            ->UseRealTime();
      for (const zpb_impl *im : impls)
        RegisterBenchmark(Name(ts.workload, im->name, ts.size).c_str(),
                          BM_Threads, im, ts.size)
            ->Threads(t)
            ->UseRealTime();
    }
  }
  for (std::size_t size : {4 * KiB, 64 * KiB}) {
    if (floor)
      RegisterBenchmark(Name("prodcons", "floor", size).c_str(),
                        BM_ProdConsFloor, size)
          ->UseRealTime();
    for (const zpb_impl *im : impls)
      RegisterBenchmark(Name("prodcons", im->name, size).c_str(), BM_ProdCons,
                        im, size)
          ->UseRealTime();
  }
  for (const zpb_impl *im : impls)
    RegisterBenchmark(Name("churn", im->name, 0).c_str(), BM_Churn, im)
        ->MeasureProcessCPUTime();

  // 5. The pools only: what each eviction policy keeps under a budget.
  static const struct {
    const char *workload;
    Trace trace;
  } evict[] = {{"evict_phase", FromSim("phase", g_trace_steps)},
               {"evict_scan", FromSim("scan", g_trace_steps)},
               {"evict_mixed", FromSim("mixed", g_trace_steps)}};
  for (const auto &e : evict)
    for (std::size_t div : kEvictDivs)
      for (const zpb_impl *im : impls)
        if (im->flags & ZPB_POOL)
          RegisterBenchmark(Name(e.workload, im->name, div).c_str(), BM_Evict,
                            im, &e.trace, div)
              ->Iterations(
                  static_cast<benchmark::IterationCount>(e.trace.ops.size()));

  for (const zpb_impl *im : impls)
    RegisterBenchmark(Name("file_stream", im->name, 64 * KiB).c_str(),
                      BM_FileStream, im);
  for (const zpb_impl *im : impls)
    RegisterBenchmark(Name("socket_echo", im->name, 64 * KiB).c_str(),
                      BM_SocketEcho, im);
}

bool Selected(const std::string &list, const char *name) {
  if (list.empty())
    return true;
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t end = list.find(',', start);
    if (end == std::string::npos)
      end = list.size();
    if (list.compare(start, end - start, name) == 0)
      return true;
    start = end + 1;
  }
  return false;
}

} // namespace

int main(int argc, char **argv) {
  std::vector<char *> args;
  static char quick_time[] = "--benchmark_min_time=0.001";
  std::string impl_list;
  bool quick = false, list = false, min_time_given = false;
  for (int i = 0; i < argc; ++i) {
    const char *a = argv[i];
    if (i > 0 && std::strcmp(a, "--quick") == 0) {
      quick = true;
      continue;
    }
    if (i > 0 && std::strcmp(a, "--list-impls") == 0) {
      list = true;
      continue;
    }
    if (i > 0 && std::strncmp(a, "--impl=", 7) == 0) {
      impl_list = a + 7;
      continue;
    }
    if (std::strncmp(a, "--benchmark_min_time=", 21) == 0)
      min_time_given = true;
    args.push_back(argv[i]);
  }
  if (quick) {
    g_file_bytes = 4 * MiB;
    g_trace_steps = 30000;
    if (!min_time_given)
      args.push_back(quick_time);
  }

  std::size_t count = 0;
  const zpb_impl *all = zpb_impls(&count);
  const bool glibc = std::strcmp(zpb_family(), "glibc") == 0;
  if (list) {
    if (glibc)
      std::printf("floor\t\tone buffer: write + explicit_bzero\n");
    for (std::size_t i = 0; i < count; ++i)
      std::printf("%s\t%u\t%s\n", all[i].name, all[i].flags, all[i].what);
    return 0;
  }

  int nargs = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&nargs, args.data());
  if (benchmark::ReportUnrecognizedArguments(nargs, args.data()))
    return 1;

  // Every selected implementation must open: fail now rather than skip
  // each of its benchmarks.
  std::vector<const zpb_impl *> impls;
  for (std::size_t i = 0; i < count; ++i) {
    if (!Selected(impl_list, all[i].name))
      continue;
    zpb_config defaults{};
    void *inst = all[i].open(&defaults);
    if (inst == nullptr) {
      std::fprintf(stderr, "zp_bench: cannot open %s: %s\n", all[i].name,
                   std::strerror(errno));
      return 1;
    }
    all[i].close(inst);
    impls.push_back(&all[i]);
  }
  const bool floor = glibc && Selected(impl_list, "floor");
  if (impls.empty() && !floor) {
    std::fprintf(stderr,
                 "zp_bench: no implementation selected (%s has:", zpb_family());
    for (std::size_t i = 0; i < count; ++i)
      std::fprintf(stderr, " %s", all[i].name);
    std::fprintf(stderr, ")\n");
    return 1;
  }
  benchmark::AddCustomContext("zpb_family", zpb_family());
  // What a default zeropool resolves to on this machine, for the report.
  if (zp_pool *pool = zp_pool_new(nullptr)) {
    zp_builder cfg;
    if (zp_pool_config(pool, &cfg) == 0) {
      char buf[160];
      std::snprintf(buf, sizeof buf,
                    "tls_cache_size %zu, num_shards %zu, "
                    "max_buffers_per_shard %zu, max_pooled_bytes %zu MiB, "
                    "eviction %s",
                    cfg.tls_cache_size, cfg.num_shards,
                    cfg.max_buffers_per_shard, cfg.max_pooled_bytes >> 20,
                    cfg.eviction_policy == ZP_EVICTION_LIFO ? "lifo"
                                                            : "clock-pro");
      benchmark::AddCustomContext("zeropool_defaults", buf);
    }
    zp_pool_destroy(pool);
  }
  RegisterAll(impls, floor);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (g_file_fd >= 0)
    close(g_file_fd);
  return 0;
}
