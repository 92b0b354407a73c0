#include "amp.h"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>

#include <cmath>

#include "bevt/error.h"

namespace bevt::host::train {

Precision parse_precision(const std::string& value, const std::string& device, const std::string& where) {
  Precision p;
  if (value == "fp32")
    p = Precision::Fp32;
  else if (value == "bf16")
    p = Precision::Bf16;
  else if (value == "fp16")
    p = Precision::Fp16;
  else
    throw UserError(fmt::format("{}: run.precision '{}' is not one of fp32, bf16, fp16", where, value));
  if (p != Precision::Fp32 && device.rfind("cuda", 0) != 0)
    throw UserError(fmt::format("{}: run.precision = '{}' needs a CUDA device (run.device resolved to '{}'); use "
                                "fp32 on the CPU",
                                where, value, device));
  return p;
}

namespace {
// LibTorch 2.4 replaced the CUDA-specific autocast calls by device-type ones.
#if (TORCH_VERSION_MAJOR > 2) || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool cuda_autocast_enabled() { return at::autocast::is_autocast_enabled(at::kCUDA); }
void set_cuda_autocast(bool on) { at::autocast::set_autocast_enabled(at::kCUDA, on); }
void set_cuda_autocast_dtype(at::ScalarType t) { at::autocast::set_autocast_dtype(at::kCUDA, t); }
#else
bool cuda_autocast_enabled() { return at::autocast::is_enabled(); }
void set_cuda_autocast(bool on) { at::autocast::set_enabled(on); }
void set_cuda_autocast_dtype(at::ScalarType t) { at::autocast::set_autocast_gpu_dtype(t); }
#endif
}  // namespace

AutocastGuard::AutocastGuard(Precision p) {
  if (p == Precision::Fp32) return;
  active_ = true;
  prev_enabled_ = cuda_autocast_enabled();
  set_cuda_autocast_dtype(p == Precision::Bf16 ? at::kBFloat16 : at::kHalf);
  set_cuda_autocast(true);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_cuda_autocast(prev_enabled_);
}

GradScaler::GradScaler(bool enabled, double init_scale, int64_t growth_interval)
    : enabled_(enabled), scale_(init_scale), growth_interval_(growth_interval) {}

bool GradScaler::unscale(const std::vector<NamedParam>& params) const {
  if (!enabled_) return true;
  torch::NoGradGuard no_grad;
  bool finite = true;
  for (const auto& p : params) {
    if (!p.param.grad().defined()) continue;
    p.param.mutable_grad().div_(scale_);
    if (finite && !torch::isfinite(p.param.grad()).all().item<bool>()) finite = false;
  }
  return finite;
}

void GradScaler::update(bool found_inf) {
  if (!enabled_) return;
  if (found_inf) {
    scale_ *= 0.5;
    clean_steps_ = 0;
  } else if (++clean_steps_ >= growth_interval_) {
    scale_ *= 2.0;
    clean_steps_ = 0;
  }
}

void GradScaler::save(TensorMap& s) const {
  if (!enabled_) return;
  s["__grad_scaler__"] = torch::tensor({scale_, static_cast<double>(clean_steps_)}, torch::kFloat64);
}

void GradScaler::load(const TensorMap& s) {
  auto it = s.find("__grad_scaler__");
  if (!enabled_ || it == s.end()) return;
  scale_ = it->second[0].item<double>();
  clean_steps_ = static_cast<int64_t>(it->second[1].item<double>());
}

}  // namespace bevt::host::train
