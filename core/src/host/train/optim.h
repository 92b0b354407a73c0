// Optimisation as the official BEVT/mmcv recipes do it: AdamW (PyTorch's update, through its fused kernel, with
// the state checkpointed by parameter name), parameter groups from mmcv's custom_keys (the longest key contained in a
// parameter's name wins) and BEVT's layer-wise lr decay, gradient clipping by global L2 norm, and mmcv's cosine
// schedule (per iteration, or per epoch as mmcv's by_epoch) with a linear per-iteration warmup that starts at
// warmup_ratio × lr.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "bevt/tensor_map.h"
#include "host/config/sections.h"

namespace bevt::host::train {

struct NamedParam {
  std::string name;  // official name (backbone.layers.0..., cls_head.fc_cls.weight)
  torch::Tensor param;
};

using host::OptimSettings;  // the typed [optim] table (host/config/sections.h)

// A backbone's depth levels (Backbone::num_layer_levels/layer_level), for layer-wise lr decay of the
// parameters named "backbone.<name>".
struct LayerLevels {
  int64_t count = 0;
  std::function<int64_t(const std::string&)> of;
};

class AdamW {
 public:
  AdamW(std::vector<NamedParam> params, const OptimSettings& s, const LayerLevels& levels = {});
  void zero_grad();
  // Clips (when set), then one AdamW step at base learning rate `lr`; returns the gradient norm before clipping
  // as a float64 scalar on the parameters' device (read it only when logging: reading waits for the device).
  torch::Tensor step(double lr);
  TensorMap state() const;                 // "<name>.exp_avg", "<name>.exp_avg_sq", "<name>.step"
  void load_state(const TensorMap& state);  // throws UserError when a parameter's state is missing or mis-shaped
  const std::vector<NamedParam>& params() const { return params_; }
  double lr_multiplier(size_t i) const { return lr_mult_[i]; }
  double weight_decay(size_t i) const { return wd_[i]; }

 private:
  void fused_update(double lr);

  // The parameters of one (lr multiplier, weight decay) pair, in order: one fused call each. Fixed at
  // construction; a step skips the members without a gradient.
  struct Group {
    double lr_mult, wd;
    std::vector<size_t> members;
  };
  std::vector<Group> groups_;

  std::vector<NamedParam> params_;
  std::vector<double> lr_mult_, wd_;
  std::vector<torch::Tensor> exp_avg_, exp_avg_sq_;
  std::vector<int64_t> steps_;
  std::vector<torch::Tensor> step_t_;  // the same counts as float32 scalars on the parameters' device (fused kernel)
  OptimSettings s_;
};

// mmcv CosineAnnealing (per iteration, or per epoch when s.by_epoch) with linear warmup from warmup_ratio.
double scheduled_lr(const OptimSettings& s, int64_t step, int64_t total_steps);

}  // namespace bevt::host::train
