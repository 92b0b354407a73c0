// The one random source of samplers, maskers and transforms: a 64-bit Mersenne Twister with Python-like
// helpers (so ports of Python samplers keep their structure), and seed derivation so that every random choice
// is a pure function of (experiment seed, purpose, epoch, index, ...) whatever the thread timing.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <random>

namespace bevt {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : engine_(seed) {}

  uint64_t next() { return engine_(); }
  double uniform() { return std::generate_canonical<double, 53>(engine_); }  // [0, 1)
  double uniform(double a, double b) { return a + (b - a) * uniform(); }    // like random.uniform
  int64_t randint(int64_t lo, int64_t hi);                                    // inclusive, like random.randint
  bool bernoulli(double p) { return uniform() < p; }
  std::mt19937_64& engine() { return engine_; }

  // A well-mixed seed from parts (splitmix64 chain): Rng::derive(seed, {epoch, index}).
  static uint64_t derive(uint64_t seed, std::initializer_list<uint64_t> parts);

 private:
  std::mt19937_64 engine_;
};

}  // namespace bevt
