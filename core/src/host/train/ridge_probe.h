// A linear probe fitted in closed form: ridge regression of one-hot labels on features, the ridge chosen by
// leave-one-out accuracy on the training set. It measures what a fixed representation (a tokenizer's targets)
// carries, without an optimiser, a learning rate or a seed to tune: the same features give the same probe.
#pragma once

#include <cstdint>
#include <vector>

#include "bevt/torch.h"

namespace bevt::host::train {

struct RidgeProbe {
  torch::Tensor mean;     // [D] training-feature mean (float64)
  torch::Tensor weight;   // [D, C] (float64)
  torch::Tensor bias;     // [C]: the training labels' one-hot mean (float64)
  double lambda = 0;      // the chosen ridge
  double loo_top1 = 0;    // its leave-one-out top-1 on the training set
  std::vector<double> lambdas, loo;  // every ridge tried and its leave-one-out top-1

  // Predicted class [M] (int64) of features [M, D].
  torch::Tensor predict(const torch::Tensor& features) const;
};

// Fits features [N, D] (any floating type; computed in float64 on the CPU) to labels [N] in [0, classes).
// The ridges tried are the mean squared singular value of the centred features times 10^-4 ... 10^2 in steps of
// 10^0.5; ties in leave-one-out top-1 go to the larger ridge (the simpler probe). Throws UserError for fewer
// than two samples or labels outside the classes.
RidgeProbe fit_ridge_probe(const torch::Tensor& features, const torch::Tensor& labels, int64_t classes);

}  // namespace bevt::host::train
