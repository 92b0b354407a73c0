// Optimisation as the official BEVT/mmcv recipes do it: AdamW (PyTorch's update, written out so its state
// checkpoints by parameter name), parameter groups (no weight decay on norms and position tables; per-prefix
// lr multipliers), gradient clipping by global L2 norm, and mmcv's cosine schedule per iteration with a linear
// warmup that starts at warmup_ratio × lr.
#pragma once

#include <string>
#include <vector>

#include "bevt/config.h"
#include "bevt/tensor_map.h"

namespace bevt::host::train {

struct NamedParam {
  std::string name;  // official name (backbone.layers.0..., cls_head.fc_cls.weight)
  torch::Tensor param;
};

struct OptimSettings {
  double lr = 5e-4, min_lr = 0, weight_decay = 0.05, eps = 1e-8;
  double beta1 = 0.9, beta2 = 0.999;
  double clip_grad = 3.0;  // 0 = off
  double warmup_ratio = 0.1;
  int64_t warmup_steps = 0;
  double warmup_epochs = 0;  // converted to steps by the runner when > 0
  int64_t accum_steps = 1;
  std::vector<std::string> no_decay_keys;           // substrings: no weight decay
  std::vector<std::pair<std::string, double>> lr_mult;  // name prefix → lr multiplier (longest prefix wins)
  static OptimSettings from(const Config& optim);
};

class AdamW {
 public:
  AdamW(std::vector<NamedParam> params, const OptimSettings& s);
  void zero_grad();
  // Clips (when set), then one AdamW step at base learning rate `lr`; returns the gradient norm before clipping.
  double step(double lr);
  TensorMap state() const;                 // "<name>.exp_avg", "<name>.exp_avg_sq", "<name>.step"
  void load_state(const TensorMap& state);  // throws UserError when a parameter's state is missing or mis-shaped
  const std::vector<NamedParam>& params() const { return params_; }
  double lr_multiplier(size_t i) const { return lr_mult_[i]; }
  double weight_decay(size_t i) const { return wd_[i]; }

 private:
  std::vector<NamedParam> params_;
  std::vector<double> lr_mult_, wd_;
  std::vector<torch::Tensor> exp_avg_, exp_avg_sq_;
  std::vector<int64_t> steps_;
  OptimSettings s_;
};

// mmcv CosineAnnealing (by iteration) with linear warmup from warmup_ratio.
double scheduled_lr(const OptimSettings& s, int64_t step, int64_t total_steps);

}  // namespace bevt::host::train
