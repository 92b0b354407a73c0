// Default behaviour of the SDK interfaces.
#include <fmt/format.h>

#include "bevt/backbone.h"
#include "bevt/error.h"
#include "bevt/features.h"
#include "bevt/head.h"
#include "bevt/strings.h"
#include "bevt/tokenizer.h"

namespace bevt {

bool Features::has(const std::string& name) const {
  for (const auto& kv : items_)
    if (kv.first == name) return true;
  return false;
}

const torch::Tensor& Features::at(const std::string& name) const {
  for (const auto& kv : items_)
    if (kv.first == name) return kv.second;
  auto n = names();
  throw UserError(fmt::format("no feature '{}' (available: {}){}", name, join(n), did_you_mean(name, n)));
}

std::vector<std::string> Features::names() const {
  std::vector<std::string> out;
  for (const auto& kv : items_) out.push_back(kv.first);
  return out;
}

Features Backbone::forward_image(const torch::Tensor&, const torch::Tensor&) {
  throw UserError("this backbone has no image path (spec().has_image_path is false); use a video-only stream");
}

torch::Tensor Backbone::final_norm(const torch::Tensor& x) { return x; }

LoadReport Backbone::load_weights(const TensorMap& tensors, const LoadOptions& opts) {
  return load_state_dict(*this, tensors, opts);
}
TensorMap Backbone::export_weights() const { return state_dict(*this); }
int64_t Backbone::layer_level(const std::string& param_name) const {
  throw UserError("this backbone defines no layer levels for layer-wise lr decay (asked for '" + param_name +
                  "'); set optim.layer_decay = 1.0");
}

torch::Tensor Head::forward_at(const Features& features, Backbone& backbone, const torch::Tensor& cells,
                               int64_t positions) {
  const torch::Tensor out = forward(features, backbone);
  check_head_positions(out.dim() == 3 ? out.size(1) : -1, positions);
  return out.reshape({-1, out.size(-1)}).index_select(0, cells);
}

void check_head_positions(int64_t predicted, int64_t positions) {
  if (predicted != positions)
    throw UserError(fmt::format("the decoder predicts {} positions per sample but the targets have {} (make the "
                                "tokenizer view size / the tokenizer's downsample equal the decoder grid: e.g. set "
                                "data.<stream>.tokenizer_size)",
                                predicted, positions));
}

LoadReport Head::load_weights(const TensorMap& tensors, const LoadOptions& opts) {
  return load_state_dict(*this, tensors, opts);
}
TensorMap Head::export_weights() const { return state_dict(*this); }

torch::Tensor Tokenizer::tokenize(const torch::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != 3)
    throw UserError(fmt::format("tokenizer input must be [N,3,H,W] images, got {} dims", images.dim()));
  check_unit_range(images, "tokenizer input");
  torch::NoGradGuard no_grad;
  return logits(prepare(images)).argmax(1);
}

void check_unit_range(const torch::Tensor& images, const std::string& who) {
  if (images.numel() == 0 || !images.is_cpu()) return;
  auto [lo_t, hi_t] = torch::aminmax(images);
  const double lo = lo_t.item<double>(), hi = hi_t.item<double>();
  if (!(lo >= -1e-6 && hi <= 1 + 1e-6))  // also NaN
    throw UserError(fmt::format("{} must be in [0,1], got values in [{:.3g},{:.3g}] (pass images before "
                                "normalisation, divided by 255)",
                                who, lo, hi));
}

torch::Tensor luminance(const torch::Tensor& images) {
  return (images.select(1, 0) * 0.299 + images.select(1, 1) * 0.587 + images.select(1, 2) * 0.114).unsqueeze(1);
}

torch::Tensor Tokenizer::targets(const torch::Tensor&) {
  throw UserError("this tokenizer gives token ids, not regression targets (target_dim() is 0)");
}

TokenizerLoss Tokenizer::training_loss(const torch::Tensor&) {
  throw UserError("this tokenizer is frozen and cannot be trained (run.mode = \"tokenizer\" needs a trainable one)");
}

LoadReport Tokenizer::load_weights(const TensorMap& tensors, const LoadOptions& opts) {
  return load_state_dict(*this, tensors, opts);
}
TensorMap Tokenizer::export_weights() const { return state_dict(*this); }

torch::Tensor upsample_mask(const torch::Tensor& mask, const std::vector<int64_t>& grid) {
  const int64_t nd = static_cast<int64_t>(grid.size());
  if (mask.dim() != nd + 1)
    throw UserError(fmt::format("mask must have {} dims [B,{}], got {}", nd + 1, nd == 3 ? "t,h,w" : "h,w", mask.dim()));
  torch::Tensor m = mask.to(torch::kBool);
  for (int64_t i = 0; i < nd; ++i) {
    int64_t have = m.size(i + 1), want = grid[static_cast<size_t>(i)];
    if (have == want) continue;
    if (want % have != 0)
      throw UserError(fmt::format("mask grid {} does not divide token grid {} (dim {})", have, want, i));
    m = m.repeat_interleave(want / have, i + 1);
  }
  return m;
}

}  // namespace bevt
