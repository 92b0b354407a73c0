#include "ridge_probe.h"

#include <fmt/format.h>

#include <cmath>
#include <tuple>

#include "bevt/error.h"

namespace bevt::host::train {

torch::Tensor RidgeProbe::predict(const torch::Tensor& features) const {
  const torch::Tensor x = features.to(torch::kCPU, torch::kFloat64) - mean;
  return (x.mm(weight) + bias).argmax(1);
}

RidgeProbe fit_ridge_probe(const torch::Tensor& features, const torch::Tensor& labels, int64_t classes) {
  if (features.dim() != 2 || labels.dim() != 1 || labels.size(0) != features.size(0))
    throw UserError(fmt::format("linear probe: features must be [N, D] and labels [N], got {} and {} dimensions",
                                features.dim(), labels.dim()));
  const int64_t n = features.size(0);
  if (n < 2) throw UserError(fmt::format("linear probe: {} training sample(s); it needs at least 2", n));
  const torch::Tensor y = labels.to(torch::kCPU, torch::kLong);
  if (classes < 1 || y.min().item<int64_t>() < 0 || y.max().item<int64_t>() >= classes)
    throw UserError(fmt::format("linear probe: labels must lie in [0, {})", classes));

  RidgeProbe p;
  const torch::Tensor x = features.to(torch::kCPU, torch::kFloat64);
  p.mean = x.mean(0);
  const torch::Tensor onehot = torch::one_hot(y, classes).to(torch::kFloat64);
  p.bias = onehot.mean(0);
  const torch::Tensor yc = onehot - p.bias;
  // Thin SVD of the centred features: every ridge below is a reweighting of the same singular directions, so
  // the whole search and its leave-one-out errors cost one decomposition.
  torch::Tensor u, s, vh;
  std::tie(u, s, vh) = torch::linalg_svd(x - p.mean, /*full_matrices=*/false);
  torch::Tensor s2 = s * s;
  const double top = s2.numel() ? s2.max().item<double>() : 0.0;
  const torch::Tensor keep = s2 > top * 1e-12;  // directions the data does not span carry no fit
  u = u.index({torch::indexing::Slice(), keep});
  s = s.index({keep});
  vh = vh.index({keep});
  s2 = s2.index({keep});
  if (s2.numel() == 0) {  // constant features: the probe predicts the majority class
    p.weight = torch::zeros({x.size(1), classes}, torch::kFloat64);
    p.loo_top1 = onehot.mean(0).max().item<double>();
    return p;
  }
  const torch::Tensor uty = u.t().mm(yc);  // [r, C]
  const torch::Tensor u2 = u * u;          // [N, r]: the centred hat matrix's diagonal is u2 @ (s2 / (s2 + lambda))
  const double scale = s2.mean().item<double>();
  double best_lambda = 0, best_acc = -1;
  for (int k = 12; k >= 0; --k) {  // largest ridge first: a tie keeps the larger one
    const double lambda = scale * std::pow(10.0, -4.0 + 0.5 * k);
    const torch::Tensor f = s2 / (s2 + lambda);
    const torch::Tensor fitted = u.mm(f.unsqueeze(1) * uty) + p.bias;
    // The hat matrix of ridge with an unpenalised intercept is 11'/N plus that of the centred features; sample
    // i's leave-one-out prediction without refitting is (fitted_i - H_ii y_i) / (1 - H_ii), exact (the mean
    // and the intercept are those of the other N - 1 samples, as a refit would have them).
    const torch::Tensor h = u2.mv(f).unsqueeze(1) + 1.0 / static_cast<double>(n);
    const torch::Tensor loo = (fitted - h * onehot) / (1.0 - h);
    const double acc = loo.argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
    p.lambdas.insert(p.lambdas.begin(), lambda);
    p.loo.insert(p.loo.begin(), acc);
    if (acc > best_acc) {
      best_acc = acc;
      best_lambda = lambda;
    }
  }
  p.lambda = best_lambda;
  p.loo_top1 = best_acc;
  p.weight = vh.t().mm((s / (s2 + best_lambda)).unsqueeze(1) * uty);
  return p;
}

}  // namespace bevt::host::train
