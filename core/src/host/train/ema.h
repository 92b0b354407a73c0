// Exponential moving average of the weights, as mmcv 1.x's EMAHook (mmcv/runner/hooks/ema.py; BEVT's SSv2
// fine-tune registers it with its defaults: momentum 2e-4, warm_up 100, interval 1).
//
// What the hook does, and so what this class does:
//  * it runs after every training *iteration* (runner.iter, 0-based, counted in micro-batches): with gradient
//    accumulation over k iterations the weights change only at every k-th, so k − 1 of k updates average the
//    same weights again;
//  * the momentum is the weight of the NEW value: avg = (1 − m)·avg + m·param with
//    m = min(momentum, (1 + iter) / (warm_up + iter)). The ratio starts at 1/warm_up and rises towards 1, so it
//    only bites when momentum > 1/warm_up; with the official 2e-4 and 100, m is 2e-4 from the first iteration;
//  * it averages parameters only: it registers a buffer ema_<name with '.' as '_'> for every named parameter;
//    the model's own buffers (relative_position_index) are neither averaged nor swapped;
//  * the averages start as copies of the weights the run starts from.
// Evaluation during training runs on the averaged weights (swap in, evaluate, swap back) and checkpoints carry
// them as ema.safetensors, which test/probe runs prefer when they load a checkpoint folder (docs/training.md).
#pragma once

#include <string>
#include <vector>

#include "bevt/tensor_map.h"
#include "optim.h"

namespace bevt::host::train {

class Ema {
 public:
  Ema(const std::vector<NamedParam>& params, double momentum, int64_t warm_up);
  // The hook's momentum at an iteration.
  static double momentum_at(double momentum, int64_t warm_up, int64_t iter);
  void update(int64_t iter);  // iter: training iterations (micro-batches) done before this one, 0-based
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
