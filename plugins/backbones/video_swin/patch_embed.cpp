#include "patch_embed.h"

namespace bevt::swin {

PatchEmbed3DImpl::PatchEmbed3DImpl(std::array<int64_t, 3> p, int64_t in_chans, int64_t dim, bool use_norm, double eps)
    : patch(p) {
  proj = register_module(
      "proj", torch::nn::Conv3d(torch::nn::Conv3dOptions(in_chans, dim, {p[0], p[1], p[2]}).stride({p[0], p[1], p[2]})));
  if (use_norm) norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps)));
}

torch::Tensor PatchEmbed3DImpl::forward(torch::Tensor x) {
  // End padding, in the official order W, then H, then D (one pad call gives the same zeros).
  int64_t pd = (patch[0] - x.size(2) % patch[0]) % patch[0];
  int64_t ph = (patch[1] - x.size(3) % patch[1]) % patch[1];
  int64_t pw = (patch[2] - x.size(4) % patch[2]) % patch[2];
  if (pd || ph || pw) x = torch::constant_pad_nd(x, {0, pw, 0, ph, 0, pd}, 0);
  x = proj->forward(x).permute({0, 2, 3, 4, 1});
  if (!norm.is_empty()) return norm->forward(x);
  return x.contiguous();
}

PatchEmbed2DImpl::PatchEmbed2DImpl(std::array<int64_t, 2> p, int64_t in_chans, int64_t dim, bool use_norm, double eps)
    : patch(p) {
  proj = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_chans, dim, {p[0], p[1]}).stride({p[0], p[1]})));
  if (use_norm) norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps)));
}

torch::Tensor PatchEmbed2DImpl::forward(torch::Tensor x) {
  x = proj->forward(x).permute({0, 2, 3, 1});
  if (!norm.is_empty()) return norm->forward(x);
  return x.contiguous();
}

}  // namespace bevt::swin
