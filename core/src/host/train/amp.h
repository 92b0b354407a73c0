// Mixed precision on CUDA (run.precision): bf16 autocast, or fp16 autocast with dynamic loss scaling as
// torch.cuda.amp.GradScaler does it (scale 2^16, ×0.5 and skip the step on an inf/NaN gradient, ×2 after 2000
// clean steps). fp32 everywhere else; asking for mixed precision on the CPU is a configuration error.
#pragma once

#include <string>
#include <vector>

#include "optim.h"

namespace bevt::host::train {

enum class Precision { Fp32, Bf16, Fp16 };

// Reads run.precision; `device` is the resolved run.device. Throws UserError (naming `where`) for an unknown
// value or mixed precision off CUDA.
Precision parse_precision(const std::string& value, const std::string& device, const std::string& where);

// Autocast on CUDA for the lifetime of the guard (nothing for Fp32).
class AutocastGuard {
 public:
  explicit AutocastGuard(Precision p);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  bool prev_enabled_ = false;
};

class GradScaler {
 public:
  explicit GradScaler(bool enabled, double init_scale = 65536.0, int64_t growth_interval = 2000);
  bool enabled() const { return enabled_; }
  double scale() const { return scale_; }
  torch::Tensor scale_loss(const torch::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }
  // Divides every gradient by the scale; false when one holds an inf or NaN (the step must be skipped).
  bool unscale(const std::vector<NamedParam>& params) const;
  // After each optimiser step (or skipped step): back off on overflow, grow after growth_interval clean steps.
  void update(bool found_inf);
  // Round trip through the optimiser checkpoint.
  void save(TensorMap& optim_state) const;
  void load(const TensorMap& optim_state);

 private:
  bool enabled_;
  double scale_;
  int64_t growth_interval_, clean_steps_ = 0;
};

}  // namespace bevt::host::train
