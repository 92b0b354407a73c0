// Mixed precision (run.precision): autocast through LibTorch's autocast state on the run's device type (bf16 on
// CPU and CUDA, fp16 on CUDA), and for fp16 a dynamic loss scaler as torch.amp.GradScaler runs it, on torch's own
// ops: _amp_foreach_non_finite_check_and_unscale_ unscales every gradient and flags an inf/NaN in one pass, and
// _amp_update_scale_ halves the scale on overflow and doubles it after growth_interval clean steps. The scale
// and the clean-step count live on the device, so nothing waits for the host but the one skip decision per
// step (as in torch's GradScaler).
#pragma once

#include <string>
#include <vector>

#include "host/config/sections.h"
#include "optim.h"

namespace bevt::host::train {

// run.precision is parsed by the config layer (host/config/sections.h).
using host::Precision;
using host::parse_precision;
using host::precision_name;

// How CUDA runs float32 matmuls and convolutions, for the whole process (backward passes included, so it is set
// once, where the run's precision is known, not around a forward): TF32 tensor cores for Precision::Tf32, IEEE
// float32 for every other precision. torch's own default runs convolutions in TF32 and matmuls in IEEE, which
// puts a ConvTranspose decoder or the DALL-E encoder 3e-4..6e-4 off the official float32 outputs on a GPU.
void set_float32_math(Precision p);
bool float32_math_is_tf32();  // both CUDA convolutions and matmuls in TF32

// Autocast on `device`'s type for the lifetime of the guard (nothing for Fp32 and Tf32); restores the previous state.
class AutocastGuard {
 public:
  AutocastGuard(Precision p, const torch::Device& device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  at::DeviceType type_ = at::kCPU;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kBFloat16;
};

class GradScaler {
 public:
  explicit GradScaler(bool enabled, double init_scale = 65536.0, int64_t growth_interval = 2000,
                      const torch::Device& device = torch::kCPU);
  bool enabled() const { return enabled_; }
  double scale() const;  // reads the device (logging only)
  torch::Tensor scale_loss(const torch::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }
  // Multiplies every gradient by 1/scale; false when one held an inf or NaN (the step must be skipped).
  bool unscale(const std::vector<NamedParam>& params);
  // After each optimiser step (or skipped step), with what unscale found.
  void update();
  // Round trip through the optimiser checkpoint ("__grad_scaler__": scale, clean steps).
  void save(TensorMap& optim_state) const;
  void load(const TensorMap& optim_state);

 private:
  bool enabled_;
  double growth_ = 2.0, backoff_ = 0.5;
  int64_t growth_interval_;
  torch::Tensor scale_;      // [1] float32
  torch::Tensor tracker_;    // [1] int32: clean steps since the last change
  torch::Tensor found_inf_;  // [1] float32
};

}  // namespace bevt::host::train
