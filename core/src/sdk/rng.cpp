#include "bevt/rng.h"

#include <stdexcept>

namespace bevt {

int64_t Rng::randint(int64_t lo, int64_t hi) {
  if (hi < lo) throw std::invalid_argument("Rng::randint: empty range");
  std::uniform_int_distribution<int64_t> d(lo, hi);
  return d(engine_);
}

uint64_t Rng::derive(uint64_t seed, std::initializer_list<uint64_t> parts) {
  auto mix = [](uint64_t z) {  // splitmix64 finaliser
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  uint64_t h = mix(seed);
  for (uint64_t p : parts) h = mix(h ^ mix(p + 0x632be59bd9b4e019ULL));
  return h;
}

}  // namespace bevt
