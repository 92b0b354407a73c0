#include "sample_seed.h"

#include "bevt/digest.h"
#include "bevt/rng.h"

namespace bevt::host::train {

uint64_t sample_seed(uint64_t seed, const std::string& purpose, int64_t epoch, int64_t index) {
  return Rng::derive(seed, {murmur64(purpose), static_cast<uint64_t>(epoch),
                            static_cast<uint64_t>(index)});
}

}  // namespace bevt::host::train
