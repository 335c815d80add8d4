#pragma once
// A counter-based generator: value i of a draw is a hash of (seed, offset + i),
// so the same stream can be produced on the CPU and by a CUDA grid, in any
// order, and a draw of n values advances the offset by n.
#include <cmath>
#include <cstdint>

#include "framework/hd.h"

namespace neurn {

NEURN_HD uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) with 53 random bits.
NEURN_HD double counter_uniform(uint64_t seed, uint64_t counter) {
  uint64_t h = splitmix64(splitmix64(seed) ^ (counter * 0xD6E8FEB86659FD93ull));
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
}

// Standard normal (Box-Muller over two counter draws).
NEURN_HD double counter_normal(uint64_t seed, uint64_t counter) {
  double u1 = counter_uniform(seed, 2 * counter);
  double u2 = counter_uniform(seed, 2 * counter + 1);
  if (u1 < 1e-300) u1 = 1e-300;
  return ::sqrt(-2.0 * ::log(u1)) * ::cos(6.283185307179586 * u2);
}

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(uint64_t seed) { seed_ = seed; offset_ = 0; }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t o) { offset_ = o; }
  // Reserves n counters and returns the first.
  uint64_t advance(uint64_t n) { uint64_t o = offset_; offset_ += n; return o; }
  double uniform() { return counter_uniform(seed_, advance(1)); }
  double normal() { return counter_normal(seed_, advance(1)); }
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n) { return static_cast<uint64_t>(uniform() * static_cast<double>(n)) % n; }

 private:
  uint64_t seed_ = 0;
  uint64_t offset_ = 0;
};

// The process-wide default generator (seeded by manual_seed).
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace neurn
