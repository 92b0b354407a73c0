#include "attention.h"

#include <cmath>

namespace bevt::swin {

WindowAttention3DImpl::WindowAttention3DImpl(int64_t dim_, Dims3 window_, int64_t heads_, bool qkv_bias,
                                             double qk_scale, double attn_drop_, double proj_drop_)
    : dim(dim_), heads(heads_), attn_drop(attn_drop_), proj_drop(proj_drop_), window(window_) {
  const int64_t head_dim = dim / heads;
  scale = qk_scale > 0 ? qk_scale : 1.0 / std::sqrt(static_cast<double>(head_dim));
  const int64_t rows = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1);
  relative_position_bias_table =
      register_parameter("relative_position_bias_table", torch::randn({rows, heads}).mul_(0.02).clamp_(-2, 2));
  relative_position_index = register_buffer("relative_position_index", swin::relative_position_index(window));
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(qkv_bias)));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
}

void WindowAttention3DImpl::clear_cache() { fused_cache_.clear(); }

torch::Tensor WindowAttention3DImpl::additive(const WindowPlan& plan) {
  const int64_t N = plan.tokens;
  const bool need_grad = torch::GradMode::is_enabled() && relative_position_bias_table.requires_grad();
  auto compute = [&]() {
    auto bias = relative_position_bias_table.index_select(0, plan.bias_index).view({N, N, heads}).permute({2, 0, 1});
    if (plan.mask.defined()) return (bias.unsqueeze(0) + plan.mask.unsqueeze(1)).contiguous();
    return bias.contiguous();
  };
  if (need_grad) return compute();
  auto& c = fused_cache_[plan.id];
  const int64_t version = static_cast<int64_t>(relative_position_bias_table._version());
  void* data = relative_position_bias_table.data_ptr();
  if (!c.value.defined() || c.version != version || c.data != data) {
    torch::NoGradGuard ng;
    c.value = compute();
    c.version = version;
    c.data = data;
  }
  return c.value;
}

torch::Tensor WindowAttention3DImpl::forward(const torch::Tensor& x, const WindowPlan& plan) {
  const int64_t Bw = x.size(0), N = x.size(1), C = x.size(2);
  const int64_t hd = C / heads;
  auto qkv_out = qkv->forward(x).view({Bw, N, 3, heads, hd}).permute({2, 0, 3, 1, 4});
  auto q = qkv_out[0] * scale;
  auto k = qkv_out[1];
  auto v = qkv_out[2];
  auto attn = torch::matmul(q, k.transpose(-2, -1));  // [Bw, nH, N, N]
  auto add = additive(plan);
  const bool inplace = !torch::GradMode::is_enabled();
  if (plan.mask.defined()) {
    auto a5 = attn.view({Bw / plan.num_windows, plan.num_windows, heads, N, N});
    attn = (inplace ? a5.add_(add) : a5 + add).view({Bw, heads, N, N});
  } else {
    attn = inplace ? attn.add_(add) : attn + add;
  }
  attn = torch::softmax(attn, -1);
  if (attn_drop > 0 && is_training()) attn = torch::dropout(attn, attn_drop, true);
  auto out = torch::matmul(attn, v).transpose(1, 2).reshape({Bw, N, C});
  out = proj->forward(out);
  if (proj_drop > 0 && is_training()) out = torch::dropout(out, proj_drop, true);
  return out;
}

}  // namespace bevt::swin
