#include "checkpoint.h"

#include "bevt/grad_checkpoint.h"

namespace bevt::swin {

torch::Tensor checkpointed_block(SwinBlock3DImpl& block, const torch::Tensor& x, const WindowPlan& plan) {
  return bevt::checkpoint([&block, &plan](const torch::Tensor& in) { return block.forward(in, plan); }, x,
                          block.norm1->weight);
}

}  // namespace bevt::swin
