#include "row_permute.h"

namespace bevt::swin {

namespace {

torch::Tensor rows(const torch::Tensor& x, const torch::Tensor& index, bool pad) {
  const auto& src = pad ? torch::cat({x, torch::zeros({1, x.size(1)}, x.options())}, 0) : x;
  return src.index_select(0, index);
}

struct PermuteRows : torch::autograd::Function<PermuteRows> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& index, bool pad, const torch::Tensor& inverse, bool inverse_pad) {
    ctx->saved_data["inverse"] = inverse;
    ctx->saved_data["inverse_pad"] = inverse_pad;
    return rows(x, index, pad);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    auto g = rows(grad[0], ctx->saved_data["inverse"].toTensor(), ctx->saved_data["inverse_pad"].toBool());
    return {g, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor permute_rows(const torch::Tensor& x, const torch::Tensor& index, bool pad, const torch::Tensor& inverse,
                           bool inverse_pad) {
  if (!x.requires_grad() || !torch::GradMode::is_enabled()) return rows(x, index, pad);
  return PermuteRows::apply(x, index, pad, inverse, inverse_pad);
}

}  // namespace bevt::swin
