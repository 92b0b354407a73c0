#include "optim.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "bevt/error.h"

namespace bevt::host::train {

AdamW::AdamW(std::vector<NamedParam> params, const OptimSettings& s, const LayerLevels& levels)
    : params_(std::move(params)), s_(s) {
  const bool decay_layers = s.layer_decay < 1.0;
  if (decay_layers && levels.count <= 0)
    throw UserError("optim.layer_decay < 1 needs a backbone that defines layer levels; this one defines none (set "
                    "optim.layer_decay = 1.0)");
  for (const auto& p : params_) {
    double lr_mult = 1.0, decay_mult = 1.0;
    bool custom = false;
    for (const auto& k : s.custom_keys)
      if (p.name.find(k.key) != std::string::npos) {
        lr_mult = k.lr_mult;
        decay_mult = k.decay_mult;
        custom = true;
        break;
      }
    if (!custom && decay_layers && p.name.rfind("backbone.", 0) == 0) {
      int64_t level = levels.of(p.name.substr(9));
      lr_mult = std::pow(s.layer_decay, static_cast<double>(levels.count - level));
    }
    wd_.push_back(s.weight_decay * decay_mult);
    lr_mult_.push_back(lr_mult);
    exp_avg_.push_back(torch::zeros_like(p.param));
    exp_avg_sq_.push_back(torch::zeros_like(p.param));
    steps_.push_back(0);
    step_t_.push_back(torch::zeros({}, p.param.options().dtype(torch::kFloat32)));
  }
  std::map<std::pair<double, double>, size_t> group_of;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto [it, added] = group_of.try_emplace({lr_mult_[i], wd_[i]}, groups_.size());
    if (added) groups_.push_back({lr_mult_[i], wd_[i], {}});
    groups_[it->second].members.push_back(i);
  }
}

void AdamW::zero_grad() {
  std::vector<torch::Tensor> grads;
  for (auto& p : params_)
    if (p.param.grad().defined()) grads.push_back(p.param.mutable_grad());
  if (!grads.empty()) at::_foreach_zero_(grads);
}

torch::Tensor AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  // Global L2 norm over every gradient and the clip coefficient, as torch.nn.utils.clip_grad_norm_ computes
  // them (the norm of the per-gradient norms, _foreach_norm), on the device: no value goes to the host inside
  // the step.
  std::vector<torch::Tensor> grads;
  for (const auto& p : params_)
    if (p.param.grad().defined()) grads.push_back(p.param.grad());
  if (grads.empty()) return torch::zeros({}, torch::kFloat64);
  torch::Tensor norm = torch::stack(at::_foreach_norm(grads, 2)).norm().to(torch::kFloat64);
  if (s_.clip_grad > 0) {
    // Scaled in place, as clip_grad_norm_ does.
    torch::Tensor coef = (s_.clip_grad / (norm + 1e-6)).clamp_max(1.0);
    at::_foreach_mul_(grads, coef.to(grads.front().scalar_type()));
  }
  fused_update(lr);  // CPU, CUDA, and the meta device of the placement tests
  return norm;
}

// torch's fused AdamW kernel (the update torch.optim.AdamW(fused=True) runs): one pass over each parameter, its
// gradient and its two moments, for every parameter of one (lr, weight decay) group in one call, instead of
// eight element-wise passes per parameter (step() has already clipped the gradients).
void AdamW::fused_update(double lr) {
  for (const auto& group : groups_) {
    std::vector<torch::Tensor> p, g, m, v, st;
    for (size_t i : group.members) {
      if (!params_[i].param.grad().defined()) continue;  // unused in this step (e.g. the other stream's decoder)
      p.push_back(params_[i].param);
      g.push_back(params_[i].param.mutable_grad());
      m.push_back(exp_avg_[i]);
      v.push_back(exp_avg_sq_[i]);
      steps_[i] += 1;
      st.push_back(step_t_[i]);
    }
    if (p.empty()) continue;
    at::_foreach_add_(st, 1);  // the kernel reads each parameter's step count from the device
    if (p.front().is_meta()) {
      // The fused kernel has no meta implementation in C++ (Python registers one). The placement tests need
      // what CUDA's kernel requires: every tensor of the call on the parameters' device.
      for (const auto* list : {&g, &m, &v, &st})
        for (const auto& t : *list)
          TORCH_CHECK(t.device() == p.front().device(), "AdamW: a tensor on ", t.device(), " beside parameters on ",
                      p.front().device());
      continue;
    }
    at::_fused_adamw_(p, g, m, v, /*max_exp_avg_sqs=*/{}, st, lr * group.lr_mult, s_.beta1, s_.beta2, group.wd,
                      s_.eps, /*amsgrad=*/false, /*maximize=*/false);
  }
}

TensorMap AdamW::state() const {
  TensorMap out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out[params_[i].name + ".exp_avg"] = exp_avg_[i];
    out[params_[i].name + ".exp_avg_sq"] = exp_avg_sq_[i];
    out[params_[i].name + ".step"] = torch::tensor(steps_[i], torch::kInt64);
  }
  return out;
}

void AdamW::load_state(const TensorMap& state) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& n = params_[i].name;
    auto a = state.find(n + ".exp_avg"), b = state.find(n + ".exp_avg_sq"), s = state.find(n + ".step");
    if (a == state.end() || b == state.end() || s == state.end())
      throw UserError(fmt::format("optimizer state has no entry for parameter '{}' (the model changed since the "
                                  "checkpoint?)",
                                  n));
    if (a->second.sizes() != exp_avg_[i].sizes())
      throw UserError(fmt::format("optimizer state of '{}' has another shape than the parameter", n));
    exp_avg_[i].copy_(a->second);
    exp_avg_sq_[i].copy_(b->second);
    steps_[i] = s->second.item<int64_t>();
    step_t_[i].fill_(static_cast<double>(steps_[i]));
  }
}

double scheduled_lr(const OptimSettings& s, int64_t step, int64_t total_steps) {
  const double pi = 3.14159265358979323846;
  double progress = total_steps > 0 ? static_cast<double>(step) / static_cast<double>(total_steps) : 0.0;
  if (s.by_epoch && s.steps_per_epoch > 0) {
    // mmcv by_epoch: the cosine moves once per epoch, at (epoch / max_epochs).
    int64_t epochs = (total_steps + s.steps_per_epoch - 1) / s.steps_per_epoch;
    progress = epochs > 0 ? static_cast<double>(step / s.steps_per_epoch) / static_cast<double>(epochs) : 0.0;
  }
  double lr = s.min_lr + (s.lr - s.min_lr) * 0.5 * (1 + std::cos(pi * std::min(progress, 1.0)));
  if (step < s.warmup_steps) {
    double k = (1 - static_cast<double>(step) / static_cast<double>(s.warmup_steps)) * (1 - s.warmup_ratio);
    lr *= (1 - k);
  }
  return lr;
}

}  // namespace bevt::host::train
