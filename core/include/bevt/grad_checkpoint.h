// Activation (gradient) checkpointing (LibTorch's C++ API has no torch.utils.checkpoint):
// `checkpoint(fn, x, anchor)` runs fn(x) without keeping its activations and reruns it during backward with
// the forward's random state (the CPU generator and, for a CUDA input, that device's generator) and the
// forward's autocast settings, so dropout and drop-path masks and the precision of every op repeat exactly. Parameters used by
// fn receive their gradients from the rerun. Shared by every backbone that offers grad_checkpointing.
#pragma once

#include <functional>

#include "bevt/torch.h"

namespace bevt {

// `anchor` is any tensor that requires grad when the block trains (one of its parameters): it makes the
// output require grad even when x does not. fn must stay valid until backward has run.
torch::Tensor checkpoint(std::function<torch::Tensor(const torch::Tensor&)> fn, const torch::Tensor& x,
                         const torch::Tensor& anchor);

// The default CPU generator's state (dropout, drop path, initialisation): saved in checkpoints for exact resume.
torch::Tensor cpu_rng_state();
void set_cpu_rng_state(const torch::Tensor& state);

}  // namespace bevt
