// Gradient checkpointing of one block: LibTorch 1.13 has no torch.utils.checkpoint in C++, so a custom
// autograd Function runs the block without saving activations and reruns it (same CPU RNG state, so
// drop-path and dropout masks match) during backward.
#pragma once

#include "block.h"

namespace bevt::swin {

// The block and plan must stay alive until backward has run (the model owns both).
torch::Tensor checkpointed_block(SwinBlock3DImpl& block, const torch::Tensor& x, const WindowPlan& plan);

}  // namespace bevt::swin
