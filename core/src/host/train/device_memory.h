// Peak memory of a run, in MiB: the CUDA caching allocator's peak of allocated bytes on a CUDA device (what
// torch.cuda.max_memory_allocated reports), the process's peak resident set on the CPU.
#pragma once

#include "bevt/torch.h"

namespace bevt::host::train {

double peak_memory_mb(const torch::Device& device);

}  // namespace bevt::host::train
