// Named tensors in key order: state dicts, safetensors files, fixture inputs and outputs.
#pragma once

#include <map>
#include <string>

#include "bevt/torch.h"

namespace bevt {
using TensorMap = std::map<std::string, torch::Tensor>;
}  // namespace bevt
