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
    if (!plan.mask.defined()) return bias.contiguous();
    // The fused kernels take a 4-D mask broadcastable to [B*nW, nH, N, N]; windows are batch-major, so the
    // shift mask [nW, nH, N, N] repeats once per sample (done here, so the no-grad cache holds it repeated).
    auto fused = bias.unsqueeze(0) + plan.mask.unsqueeze(1);
    if (plan.batch > 1)
      return fused.unsqueeze(0).expand({plan.batch, plan.num_windows, heads, N, N}).reshape({-1, heads, N, N});
    return fused.contiguous();
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
  auto q = qkv_out[0], k = qkv_out[1], v = qkv_out[2];
  torch::Tensor add = additive(plan);
  // Under autocast q is bf16/fp16: the mask follows it (a float32 mask would make the kernels fall back).
  if (add.scalar_type() != q.scalar_type()) add = add.to(q.scalar_type());
  const double p = (attn_drop > 0 && is_training()) ? attn_drop : 0.0;
  // CUDA: the fused kernels (memory-efficient takes the additive term and its gradient). CPU: the official
  // arithmetic, (q·scale)·kᵀ + term, softmax, ·v, the same kernels whether or not autograd records (the fused CPU
  // kernel serves only no-grad calls and rounds differently, which would make a checkpointed block's rerun
  // differ from its first pass). Not torch's math SDPA: its _safe_softmax guards fully masked rows (all, where,
  // isneginf: ~10% of a Swin-T eval forward), which cannot occur here, as every token sees its own window.
  torch::Tensor out;
  if (q.is_cpu()) {
    auto a = torch::matmul(q * scale, k.transpose(-2, -1));
    a = torch::GradMode::is_enabled() ? a + add : a.add_(add);
    a = torch::softmax(a, -1);
    if (p > 0) a = torch::dropout(a, p, /*train=*/true);
    out = torch::matmul(a, v);
  } else {
    out = at::scaled_dot_product_attention(q, k, v, add, p, /*is_causal=*/false, scale);
  }
  out = proj->forward(out.transpose(1, 2).reshape({Bw, N, C}));
  if (proj_drop > 0 && is_training()) out = torch::dropout(out, proj_drop, true);
  return out;
}

}  // namespace bevt::swin
