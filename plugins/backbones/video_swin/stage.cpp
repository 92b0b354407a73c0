#include "stage.h"

#include "checkpoint.h"

namespace bevt::swin {

using torch::indexing::None;
using torch::indexing::Slice;

PatchMergingImpl::PatchMergingImpl(int64_t dim, double eps) {
  reduction = register_module("reduction", torch::nn::Linear(torch::nn::LinearOptions(4 * dim, 2 * dim).bias(false)));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4 * dim}).eps(eps)));
}

torch::Tensor PatchMergingImpl::forward(torch::Tensor x) {
  const int64_t H = x.size(2), W = x.size(3);
  if (H % 2 || W % 2) x = torch::constant_pad_nd(x, {0, 0, 0, W % 2, 0, H % 2}, 0);
  auto x0 = x.index({Slice(), Slice(), Slice(0, None, 2), Slice(0, None, 2)});
  auto x1 = x.index({Slice(), Slice(), Slice(1, None, 2), Slice(0, None, 2)});
  auto x2 = x.index({Slice(), Slice(), Slice(0, None, 2), Slice(1, None, 2)});
  auto x3 = x.index({Slice(), Slice(), Slice(1, None, 2), Slice(1, None, 2)});
  return reduction->forward(norm->forward(torch::cat({x0, x1, x2, x3}, -1)));
}

SwinStageImpl::SwinStageImpl(const BlockOptions& base, int64_t depth, const std::vector<double>& dp, bool down) {
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t j = 0; j < depth; ++j) {
    BlockOptions o = base;
    o.drop_path = dp[static_cast<size_t>(j)];
    SwinBlock3D b(o);
    blocks->push_back(b);
    block_list.push_back(b);
  }
  if (down) downsample = register_module("downsample", PatchMerging(base.dim, base.eps));
}

std::pair<torch::Tensor, torch::Tensor> SwinStageImpl::forward(torch::Tensor x, const StagePlan& plan, bool ckpt) {
  const bool use_ckpt = ckpt && is_training() && torch::GradMode::is_enabled();
  for (size_t j = 0; j < block_list.size(); ++j) {
    const WindowPlan& p = plan.plans[j % 2];
    x = use_ckpt ? checkpointed_block(*block_list[j], x, p) : block_list[j]->forward(x, p);
  }
  if (downsample.is_empty()) return {x, x};
  return {x, downsample->forward(x)};
}

}  // namespace bevt::swin
