#include "block.h"

#include "row_permute.h"

namespace bevt::swin {

torch::Tensor drop_path(const torch::Tensor& x, double p, bool training) {
  if (p <= 0 || !training) return x;
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  auto keep = torch::empty(shape, x.options()).bernoulli_(1 - p).div_(1 - p);
  return x * keep;
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden, double drop_) : drop(drop_) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  auto h = torch::gelu(fc1->forward(x));
  if (drop > 0 && is_training()) h = torch::dropout(h, drop, true);
  h = fc2->forward(h);
  if (drop > 0 && is_training()) h = torch::dropout(h, drop, true);
  return h;
}

SwinBlock3DImpl::SwinBlock3DImpl(const BlockOptions& o) : drop_path_p(o.drop_path) {
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim}).eps(o.eps)));
  attn = register_module("attn", WindowAttention3D(o.dim, o.window, o.heads, o.qkv_bias, o.qk_scale, o.attn_drop, o.drop));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim}).eps(o.eps)));
  mlp = register_module("mlp", Mlp(o.dim, static_cast<int64_t>(static_cast<double>(o.dim) * o.mlp_ratio), o.drop));
}

torch::Tensor SwinBlock3DImpl::attention_part(const torch::Tensor& x, const WindowPlan& plan) {
  const int64_t C = x.size(-1);
  auto h = norm1->forward(x).view({-1, C});  // [B*L, C]
  torch::Tensor windows;
  if (plan.identity) {
    windows = h;
  } else {
    // norm1 comes before the zero padding: padded tokens read an appended zero row.
    windows = permute_rows(h, plan.gather, plan.pad, plan.scatter, false);
  }
  auto out = attn->forward(windows.view({-1, plan.tokens, C}), plan).view({-1, C});
  if (!plan.identity) out = permute_rows(out, plan.scatter, false, plan.gather, plan.pad);
  return out.view(x.sizes());
}

torch::Tensor SwinBlock3DImpl::forward(const torch::Tensor& x, const WindowPlan& plan) {
  const bool training = is_training();
  auto y = x + drop_path(attention_part(x, plan), drop_path_p, training);
  auto m = drop_path(mlp->forward(norm2->forward(y)), drop_path_p, training);
  if (!torch::GradMode::is_enabled()) return y.add_(m);
  return y + m;
}

}  // namespace bevt::swin
