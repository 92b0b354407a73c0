// Exponential moving average of the weights, as mmcv's EMAHook (SSv2 fine-tune: momentum 2e-4, warm_up 100):
// after every optimiser step ema = (1 − m)·ema + m·param with m = min(momentum, (1 + step) / (warm_up + step)).
// Evaluation during training runs on the averaged weights (swap in, evaluate, swap back), and checkpoints
// carry them as ema.safetensors, which test/probe runs prefer when they load a checkpoint folder.
#pragma once

#include <string>
#include <vector>

#include "bevt/tensor_map.h"
#include "optim.h"

namespace bevt::host::train {

class Ema {
 public:
  Ema(const std::vector<NamedParam>& params, double momentum, int64_t warm_up);
  void update(int64_t step);  // step: optimiser steps done before this one (0-based)
  void swap();                // exchanges the averaged and the live weights
  TensorMap state() const;    // by official parameter name
  void load_state(const TensorMap& t, const std::string& source);  // UserError naming a missing tensor

 private:
  std::vector<NamedParam> params_;
  std::vector<torch::Tensor> avg_;
  double momentum_;
  int64_t warm_up_;
};

}  // namespace bevt::host::train
