#include "model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

#include "bevt/error.h"
#include "bevt/module_device.h"
#include "bevt/state_dict.h"
#include "bevt/strings.h"

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

ModelLoadReport TrainModel::load_state(const TensorMap& tensors, const std::string& source) {
  ModelLoadReport rep;
  if (standalone) {
    LoadOptions so;
    so.source = source;
    so.strip_prefixes = {};
    rep.loaded = load_state_dict(*standalone, tensors, so).loaded;
    return rep;
  }
  // DDP's wrapper prefix, when every name has it.
  TensorMap file = tensors;
  if (!file.empty() && std::all_of(file.begin(), file.end(), [](const auto& kv) { return kv.first.rfind("module.", 0) == 0; }))
    file = strip_prefixes(file, {"module."});
  const TensorMap own = state();  // the tensors themselves (tied heads share one), under official names
  const LoadOptions defaults;
  auto rebuilt = [&](const std::string& k) {
    for (const auto& suf : defaults.optional_suffixes)
      if (k.size() >= suf.size() && k.compare(k.size() - suf.size(), suf.size(), suf) == 0) return true;
    return k.size() >= 9 && k.compare(k.size() - 9, 9, "attn_mask") == 0;
  };
  std::set<std::string> flat_names;  // what an ema_* buffer of this file may average
  for (const auto& [k, v] : file)
    if (!is_ema_buffer(k)) flat_names.insert(ema_buffer_name(k));

  LoadReport bad;  // strict failures, in the SDK's one-line summary
  torch::NoGradGuard no_grad;
  for (const auto& [name, target] : own) {
    auto it = file.find(name);
    if (it == file.end()) {
      if (rebuilt(name)) continue;
      if (!pretrain_only_group(name).empty())
        rep.kept_initial.push_back(name);
      else
        bad.missing.push_back(name);
      continue;
    }
    if (it->second.sizes() != target.sizes()) {
      bad.mismatched.push_back(fmt::format("{} (file [{}] vs model [{}])", name, fmt::join(it->second.sizes(), ","),
                                           fmt::join(target.sizes(), ",")));
      continue;
    }
    target.copy_(it->second.to(target.device(), target.scalar_type()));
    ++rep.loaded;
  }
  std::vector<std::string> own_names;
  for (const auto& kv : own) own_names.push_back(kv.first);
  for (const auto& [name, t] : file) {
    if (own.count(name) || rebuilt(name)) continue;
    if (is_ema_buffer(name)) {
      ++rep.ema_buffers;
      if (!flat_names.count(name)) rep.ema_orphans.push_back(name);
      continue;
    }
    std::string group = pretrain_only_group(name);
    if (!group.empty()) {
      ++rep.dropped_pretrain[group];
      continue;
    }
    std::string near = nearest_name(name, own_names);
    bad.unexpected.push_back(near.empty() ? name : fmt::format("{} (nearest: {})", name, near));
  }
  bad.loaded = rep.loaded;
  if (!bad.ok())
    throw UserError(fmt::format("{}: weights do not fit the model: {} (check the model config matches the "
                                "checkpoint)",
                                source, bad.summary()));
  return rep;
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
