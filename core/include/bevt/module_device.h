// Moving a module to a device, the meta device included. LibTorch's Module::to replaces each parameter's data
// with set_data, which refuses a tensor of another kind (CPU -> meta): Python's Module.to replaces the
// Parameter object instead, which C++ cannot do (submodules hold their own handles to each parameter). So for
// such a move the tensor's metadata (storage, sizes, device) is taken over in place, keeping every handle,
// requires_grad and the version counter: the device-placement tests run whole models on `meta` this way.
#pragma once

#include "bevt/torch.h"

namespace bevt {

void module_to(torch::nn::Module& module, const torch::Device& device);

}  // namespace bevt
