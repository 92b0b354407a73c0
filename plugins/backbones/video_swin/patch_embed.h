// Patch embeddings: PatchEmbed3D (Conv3d k=s=patch, end-padding W, H, D) and the BEVT image embedding
// patch_embed_2d (Conv2d k=s=patch[1:]), each followed by LayerNorm over channels when patch_norm is on.
// Outputs are channels-last ([B,T,H,W,C] / [B,H,W,C]).
#pragma once

#include <array>

#include "bevt/torch.h"

namespace bevt::swin {

class PatchEmbed3DImpl : public torch::nn::Module {
 public:
  PatchEmbed3DImpl(std::array<int64_t, 3> patch, int64_t in_chans, int64_t dim, bool norm, double eps);
  torch::Tensor forward(torch::Tensor x);  // [B,Cin,T,H,W] -> [B,T',H',W',C]

  torch::nn::Conv3d proj{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  std::array<int64_t, 3> patch;
};
TORCH_MODULE(PatchEmbed3D);

class PatchEmbed2DImpl : public torch::nn::Module {
 public:
  PatchEmbed2DImpl(std::array<int64_t, 2> patch, int64_t in_chans, int64_t dim, bool norm, double eps);
  torch::Tensor forward(torch::Tensor x);  // [B,Cin,H,W] -> [B,H',W',C]

  torch::nn::Conv2d proj{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  std::array<int64_t, 2> patch;
};
TORCH_MODULE(PatchEmbed2D);

}  // namespace bevt::swin
