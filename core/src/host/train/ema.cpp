#include "ema.h"

#include <fmt/format.h>

#include <algorithm>

#include "bevt/error.h"

namespace bevt::host::train {

Ema::Ema(const std::vector<NamedParam>& params, double momentum, int64_t warm_up)
    : params_(params), momentum_(momentum), warm_up_(warm_up) {
  torch::NoGradGuard no_grad;
  for (const auto& p : params_) avg_.push_back(p.param.detach().clone());
}

double Ema::momentum_at(double momentum, int64_t warm_up, int64_t iter) {
  const double i = static_cast<double>(iter);
  const double w = static_cast<double>(warm_up);
  // warm_up 0 at iteration 0 is a division by zero in the hook (Python raises); without warm-up the momentum
  // applies from the start.
  if (w + i <= 0) return momentum;
  return std::min(momentum, (1.0 + i) / (w + i));
}

void Ema::update(int64_t iter) {
  torch::NoGradGuard no_grad;
  const double m = momentum_at(momentum_, warm_up_, iter);
  for (size_t i = 0; i < params_.size(); ++i) avg_[i].mul_(1.0 - m).add_(params_[i].param.detach(), m);
}

void Ema::swap() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor live = params_[i].param.detach().clone();
    params_[i].param.copy_(avg_[i]);
    avg_[i].copy_(live);
  }
}

TensorMap Ema::state() const {
  TensorMap out;
  for (size_t i = 0; i < params_.size(); ++i) out[params_[i].name] = avg_[i];
  return out;
}

void Ema::load_state(const TensorMap& t, const std::string& source) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto it = t.find(params_[i].name);
    if (it == t.end() || it->second.sizes() != avg_[i].sizes())
      throw UserError(fmt::format("{}: no averaged weight of the right shape for '{}' (optim.ema changed since "
                                  "this checkpoint?)",
                                  source, params_[i].name));
    avg_[i].copy_(it->second);
  }
}

}  // namespace bevt::host::train
