// One stage (BasicLayer, `layers.i`): its blocks (shift on odd blocks) and the PatchMerging at its end
// (`downsample`: 2x2 spatial merge in the official x0,x1,x2,x3 order, LayerNorm(4C), Linear(4C,2C)).
#pragma once

#include <vector>

#include "block.h"
#include "window_plan.h"

namespace bevt::swin {

class PatchMergingImpl : public torch::nn::Module {
 public:
  PatchMergingImpl(int64_t dim, double eps);
  torch::Tensor forward(torch::Tensor x);  // [B,D,H,W,C] -> [B,D,ceil(H/2),ceil(W/2),2C]
  torch::nn::Linear reduction{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(PatchMerging);

class SwinStageImpl : public torch::nn::Module {
 public:
  SwinStageImpl(const BlockOptions& base, int64_t depth, const std::vector<double>& drop_path, bool downsample);
  // x: [B,D,H,W,C] channels-last; returns (stage output, after merging (or the same when none)).
  std::pair<torch::Tensor, torch::Tensor> forward(torch::Tensor x, const StagePlan& plan, bool checkpoint);

  torch::nn::ModuleList blocks;
  std::vector<SwinBlock3D> block_list;
  PatchMerging downsample{nullptr};
};
TORCH_MODULE(SwinStage);

}  // namespace bevt::swin
