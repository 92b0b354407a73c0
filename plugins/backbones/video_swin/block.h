// SwinTransformerBlock3D: x + drop_path(W-MSA(norm1(x))) then x + drop_path(mlp(norm2(x))), on channels-last
// [B, D, H, W, C]. The window plan decides padding, shift, partition and mask.
#pragma once

#include "attention.h"
#include "bevt/torch.h"
#include "window_plan.h"

namespace bevt::swin {

// Per-sample stochastic depth (timm DropPath): keeps a sample with probability 1-p and divides by 1-p.
torch::Tensor drop_path(const torch::Tensor& x, double p, bool training);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden, double drop);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  double drop;
};
TORCH_MODULE(Mlp);

struct BlockOptions {
  int64_t dim = 0, heads = 1;
  Dims3 window{};
  double mlp_ratio = 4, qk_scale = 0, drop = 0, attn_drop = 0, drop_path = 0, eps = 1e-5;
  bool qkv_bias = true;
};

class SwinBlock3DImpl : public torch::nn::Module {
 public:
  explicit SwinBlock3DImpl(const BlockOptions& o);
  torch::Tensor forward(const torch::Tensor& x, const WindowPlan& plan);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  WindowAttention3D attn{nullptr};
  Mlp mlp{nullptr};
  double drop_path_p;

 private:
  torch::Tensor attention_part(const torch::Tensor& x, const WindowPlan& plan);
};
TORCH_MODULE(SwinBlock3D);

}  // namespace bevt::swin
