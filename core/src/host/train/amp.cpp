#include "amp.h"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>

#include "bevt/error.h"

namespace bevt::host::train {

AutocastGuard::AutocastGuard(Precision p, const torch::Device& device) {
  if (p == Precision::Fp32 || p == Precision::Tf32) return;
  active_ = true;
  type_ = device.type();
  prev_enabled_ = at::autocast::is_autocast_enabled(type_);
  prev_dtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_dtype(type_, p == Precision::Bf16 ? at::kBFloat16 : at::kHalf);
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type_, prev_enabled_);
  at::autocast::set_autocast_dtype(type_, prev_dtype_);
}

void set_float32_math(Precision p) {
  const auto mode = p == Precision::Tf32 ? at::Float32Precision::TF32 : at::Float32Precision::IEEE;
  auto& ctx = at::globalContext();
  ctx.setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::CONV, mode);
  ctx.setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL, mode);
}

bool float32_math_is_tf32() {
  const auto& ctx = at::globalContext();
  return ctx.float32Precision(at::Float32Backend::CUDA, at::Float32Op::CONV) == at::Float32Precision::TF32 &&
         ctx.float32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL) == at::Float32Precision::TF32;
}

GradScaler::GradScaler(bool enabled, double init_scale, int64_t growth_interval, const torch::Device& device)
    : enabled_(enabled), growth_interval_(growth_interval) {
  auto f = torch::TensorOptions().device(device).dtype(torch::kFloat32);
  scale_ = torch::full({1}, init_scale, f);
  tracker_ = torch::zeros({1}, f.dtype(torch::kInt32));
  found_inf_ = torch::zeros({1}, f);
}

double GradScaler::scale() const { return scale_.item<double>(); }

bool GradScaler::unscale(const std::vector<NamedParam>& params) {
  if (!enabled_) return true;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params)
    if (p.param.grad().defined()) grads.push_back(p.param.mutable_grad());
  found_inf_.zero_();
  // The reciprocal in float64, as torch's GradScaler computes it.
  torch::Tensor inv = scale_.to(torch::kFloat64).reciprocal().to(torch::kFloat32);
  if (!grads.empty()) at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf_, inv);
  return found_inf_.item<float>() == 0.0f;
}

void GradScaler::update() {
  if (!enabled_) return;
  at::_amp_update_scale_(scale_, tracker_, found_inf_, growth_, backoff_, growth_interval_);
}

void GradScaler::save(TensorMap& s) const {
  if (!enabled_) return;
  s["__grad_scaler__"] = torch::cat({scale_.to(torch::kFloat64).cpu(), tracker_.to(torch::kFloat64).cpu()});
}

void GradScaler::load(const TensorMap& s) {
  auto it = s.find("__grad_scaler__");
  if (!enabled_ || it == s.end()) return;
  torch::NoGradGuard no_grad;
  scale_.fill_(it->second[0].item<double>());
  tracker_.fill_(static_cast<int64_t>(it->second[1].item<double>()));
}

}  // namespace bevt::host::train
