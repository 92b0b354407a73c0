// Seeds for per-sample random choices (masks, probe shuffles): pure functions of the experiment seed, so the
// same config and seed give the same masks on any machine, rank count or loader thread count.
#pragma once

#include <cstdint>
#include <string>

namespace bevt::host::train {

// Seed for the random choice `purpose` ("mask/video") of sample `index` in `epoch`.
uint64_t sample_seed(uint64_t seed, const std::string& purpose, int64_t epoch, int64_t index);

}  // namespace bevt::host::train
