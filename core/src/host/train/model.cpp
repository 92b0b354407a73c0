#include "model.h"

#include <fmt/format.h>

#include <set>

#include "bevt/error.h"
#include "bevt/module_device.h"
#include "bevt/state_dict.h"

namespace bevt::host::train {

namespace {
std::string head_param_name(const std::string& n) { return n.rfind("cls_head.", 0) == 0 ? n : "backbone." + n; }
}  // namespace

TrainModel assemble_model(const Composition& comp, bool tie_lm_head) {
  TrainModel m;
  m.backbone = comp.get<Backbone>("model.backbone");
  if (!m.backbone)
    throw UserError("the experiment has no [model.backbone] table (add one with plugin = \"video_swin\", say)");
  for (const auto& c : comp.components) {
    const std::string prefix = "model.heads.";
    if (c.path.rfind(prefix, 0) != 0) continue;
    auto head = component_cast<Head>(c.object);
    if (!head) throw UserError(fmt::format("{}: [{}] must be a head plugin", c.cfg.where(), c.path));
    m.heads[c.path.substr(prefix.size())] = head;
  }
  if (tie_lm_head) tie_lm_heads(m);
  return m;
}

void tie_lm_heads(TrainModel& m) {
  torch::Tensor primary_w, primary_b;
  for (auto& [slot, head] : m.heads) {
    // find() points into the dictionary, which must outlive the pointers.
    auto params = head->named_parameters();
    torch::Tensor* w = params.find("cls_head.lm_head.weight");
    torch::Tensor* b = params.find("cls_head.lm_head.bias");
    if (!w || !b) continue;
    if (!primary_w.defined()) {
      primary_w = *w;
      primary_b = *b;
      continue;
    }
    if (w->sizes() != primary_w.sizes()) continue;
    torch::NoGradGuard no_grad;
    w->set_(primary_w);
    b->set_(primary_b);
    m.aliases.emplace_back(*w, primary_w);
    m.aliases.emplace_back(*b, primary_b);
  }
}

std::vector<NamedParam> TrainModel::parameters() const {
  std::vector<NamedParam> out;
  std::set<const void*> seen;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    if (!t.requires_grad()) return;
    // Tied parameters share a storage (not only an address: meta tensors have none).
    if (!seen.insert(t.unsafeGetTensorImpl()->storage().unsafeGetStorageImpl()).second) return;
    out.push_back({name, t});
  };
  if (standalone)
    for (const auto& p : standalone->named_parameters(true)) add(p.key(), p.value());
  if (backbone)
    for (const auto& p : backbone->named_parameters(true)) add("backbone." + p.key(), p.value());
  for (const auto& [slot, head] : heads)
    for (const auto& p : head->named_parameters(true)) add(head_param_name(p.key()), p.value());
  return out;
}

TensorMap TrainModel::state() const {
  TensorMap out;
  if (standalone) out = bevt::state_dict(*standalone);
  if (backbone)
    for (const auto& [k, v] : bevt::state_dict(*backbone)) out["backbone." + k] = v;
  for (const auto& [slot, head] : heads)
    for (const auto& [k, v] : bevt::state_dict(*head)) out.emplace(head_param_name(k), v);
  return out;
}

void TrainModel::load_state(const TensorMap& tensors, const std::string& source) {
  if (standalone) {
    LoadOptions so;
    so.source = source;
    so.strip_prefixes = {};
    load_state_dict(*standalone, tensors, so);
    return;
  }
  LoadOptions o;
  o.source = source;
  o.strip_prefixes = {"backbone."};
  TensorMap backbone_part;
  for (const auto& [k, v] : tensors)
    if (k.rfind("backbone.", 0) == 0) backbone_part[k] = v;
  // The backbone takes its own keys; decoder keys under backbone.* belong to heads.
  o.strict = false;
  LoadReport r = load_state_dict(*backbone, backbone_part, o);
  if (!r.missing.empty() || !r.mismatched.empty())
    throw UserError(fmt::format("{}: the backbone does not fit the checkpoint: {}", source, r.summary()));
  for (auto& [slot, head] : heads) {
    TensorMap mine;
    for (const auto& [k, v] : bevt::state_dict(*head)) {
      auto it = tensors.find(head_param_name(k));
      if (it != tensors.end()) mine[k] = it->second;
    }
    LoadOptions ho;
    ho.source = source;
    ho.strip_prefixes = {};
    load_state_dict(*head, mine, ho);
  }
}

void TrainModel::train(bool on) {
  if (standalone) standalone->train(on);
  if (backbone) backbone->train(on);
  for (auto& [slot, head] : heads) head->train(on);
}

void TrainModel::to(const torch::Device& device) {
  if (standalone) module_to(*standalone, device);
  if (backbone) module_to(*backbone, device);
  for (auto& [slot, head] : heads) module_to(*head, device);
  retie();
}

void TrainModel::to(torch::ScalarType dtype) {
  if (standalone) standalone->to(dtype);
  if (backbone) backbone->to(dtype);
  for (auto& [slot, head] : heads) head->to(dtype);
  retie();
}

void TrainModel::retie() {
  torch::NoGradGuard no_grad;
  for (auto& [alias, primary] : aliases)
    if (alias.unsafeGetTensorImpl()->storage().unsafeGetStorageImpl() !=
        primary.unsafeGetTensorImpl()->storage().unsafeGetStorageImpl())
      alias.set_(primary);
}

void TrainModel::fold_alias_grads() {
  torch::NoGradGuard no_grad;
  for (auto& [alias, primary] : aliases) {
    if (!alias.grad().defined()) continue;
    if (!primary.grad().defined())
      primary.mutable_grad() = alias.grad().clone();
    else
      primary.mutable_grad().add_(alias.grad());
    alias.mutable_grad().zero_();
  }
}

}  // namespace bevt::host::train
