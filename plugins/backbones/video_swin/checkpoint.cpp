#include "checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <mutex>

namespace bevt::swin {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng_state(const at::Tensor& s) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(s);
}

struct BlockCheckpoint : public torch::autograd::Function<BlockCheckpoint> {
  // `anchor` is a parameter of the block: it makes the output require grad even when x does not.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& anchor,
                               int64_t block_ptr, int64_t plan_ptr) {
    (void)anchor;
    ctx->save_for_backward({x});
    ctx->saved_data["block"] = block_ptr;
    ctx->saved_data["plan"] = plan_ptr;
    ctx->saved_data["rng"] = rng_state();
    auto* block = reinterpret_cast<SwinBlock3DImpl*>(block_ptr);
    auto* plan = reinterpret_cast<const WindowPlan*>(plan_ptr);
    torch::NoGradGuard ng;
    return block->forward(x, *plan);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto x = ctx->get_saved_variables()[0];
    auto* block = reinterpret_cast<SwinBlock3DImpl*>(ctx->saved_data["block"].toInt());
    auto* plan = reinterpret_cast<const WindowPlan*>(ctx->saved_data["plan"].toInt());
    auto saved_rng = ctx->saved_data["rng"].toTensor();
    auto now = rng_state();
    set_rng_state(saved_rng);
    torch::Tensor xd, y;
    {
      torch::AutoGradMode on(true);
      xd = x.detach().requires_grad_(x.requires_grad());
      y = block->forward(xd, *plan);
    }
    set_rng_state(now);
    torch::autograd::backward({y}, {grads[0]});
    return {xd.requires_grad() ? xd.grad() : torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor checkpointed_block(SwinBlock3DImpl& block, const torch::Tensor& x, const WindowPlan& plan) {
  return BlockCheckpoint::apply(x, block.norm1->weight, reinterpret_cast<int64_t>(&block),
                                reinterpret_cast<int64_t>(&plan));
}

}  // namespace bevt::swin
