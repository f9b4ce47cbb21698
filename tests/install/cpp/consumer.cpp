// SPDX-License-Identifier: MIT OR Apache-2.0
//
// A C++17 consumer of an installed zeropool through zeropool.hpp. Exits 0
// and prints "ok" when a pool built with the builder hands out a zeroed
// buffer and takes it back when the buffer leaves its scope.
#include <zeropool.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>

int main() {
  try {
    zeropool::pool pool = zeropool::builder().num_shards(4).build();
    {
      zeropool::buffer buf = pool.get(4096);
      if (!std::all_of(buf.begin(), buf.end(),
                       [](unsigned char c) { return c == 0; })) {
        std::fprintf(stderr, "consumer: a fresh buffer is not zero\n");
        return 1;
      }
      const char msg[] = "hello from zeropool";
      std::memcpy(buf.data(), msg, sizeof msg);
      buf.set_used(sizeof msg);
    } // put back here, only sizeof msg bytes wiped
    const zp_stats st = pool.stats();
    if (st.gets != 1 || st.puts != 1 || st.bytes_zeroed != 20 ||
        pool.config().num_shards != 4) {
      std::fprintf(stderr, "consumer: unexpected stats or config\n");
      return 1;
    }
  } catch (const std::bad_alloc &) {
    std::fprintf(stderr, "consumer: out of memory\n");
    return 1;
  }
  std::printf("consumer (C++ wrapper): zeropool %s ok\n", zp_version_string());
  return 0;
}
