// WindowAttention3D (attn.*): qkv projection, then softmax(q·kᵀ·scale + bias)·v through
// at::scaled_dot_product_attention with one additive term as its attn_mask (relative-position bias gathered
// from the table, plus the shift mask when the plan has one), so CUDA gets its fused kernels; projection. The gathered
// bias and the fused term are cached per plan while the table is unchanged and no gradient is needed.
#pragma once

#include <array>
#include <map>
#include <string>

#include "bevt/torch.h"
#include "window_plan.h"

namespace bevt::swin {

class WindowAttention3DImpl : public torch::nn::Module {
 public:
  WindowAttention3DImpl(int64_t dim, Dims3 window, int64_t heads, bool qkv_bias, double qk_scale, double attn_drop,
                        double proj_drop);
  // x: [B*nW, N, C] windows of the plan.
  torch::Tensor forward(const torch::Tensor& x, const WindowPlan& plan);
  // Replaces the table (weight loading with a resized window); clears the caches.
  void clear_cache();

  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  torch::Tensor relative_position_bias_table, relative_position_index;
  int64_t dim, heads;
  double scale, attn_drop, proj_drop;
  Dims3 window;

 private:
  // [nH,N,N] (no mask) or [B*nW,nH,N,N] (with mask) additive term.
  torch::Tensor additive(const WindowPlan& plan);
  struct Cached {
    int64_t version = -1;
    void* data = nullptr;
    torch::Tensor value;
  };
  std::map<uint64_t, Cached> fused_cache_;
};
TORCH_MODULE(WindowAttention3D);

}  // namespace bevt::swin
