// Gradient checkpointing of one block through the SDK's bevt::checkpoint (rerun in backward with the
// forward's RNG state, so drop-path and dropout masks match).
#pragma once

#include "block.h"

namespace bevt::swin {

// The block and plan must stay alive until backward has run (the model owns both).
torch::Tensor checkpointed_block(SwinBlock3DImpl& block, const torch::Tensor& x, const WindowPlan& plan);

}  // namespace bevt::swin
