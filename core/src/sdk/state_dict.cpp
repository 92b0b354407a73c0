#include "bevt/state_dict.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bevt/error.h"
#include "bevt/strings.h"

namespace bevt {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool optional_key(const std::string& name, const LoadOptions& o) {
  for (const auto& s : o.optional_suffixes)
    if (ends_with(name, s)) return true;
  return false;
}
std::string list_some(const std::vector<std::string>& v, size_t n = 4) {
  std::vector<std::string> head(v.begin(), v.begin() + static_cast<long>(std::min(n, v.size())));
  std::string s = join(head);
  if (v.size() > n) s += fmt::format(", ... ({} more)", v.size() - n);
  return s;
}
}  // namespace

TensorMap strip_prefixes(const TensorMap& tensors, const std::vector<std::string>& prefixes) {
  TensorMap cur = tensors;
  for (const auto& p : prefixes) {
    bool any = false;
    for (const auto& kv : cur)
      if (kv.first.rfind(p, 0) == 0) any = true;
    if (!any) continue;
    TensorMap next;
    for (const auto& [k, v] : cur)
      if (k.rfind(p, 0) == 0) next.emplace(k.substr(p.size()), v);
    cur = std::move(next);
  }
  return cur;
}

TensorMap state_dict(const torch::nn::Module& module) {
  TensorMap out;
  for (const auto& p : module.named_parameters(true)) out.emplace(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) out.emplace(b.key(), b.value());
  return out;
}

std::string LoadReport::summary() const {
  std::vector<std::string> parts;
  if (!missing.empty()) parts.push_back(fmt::format("{} missing: {}", missing.size(), list_some(missing)));
  if (!unexpected.empty())
    parts.push_back(fmt::format("{} unexpected: {}", unexpected.size(), list_some(unexpected)));
  if (!mismatched.empty())
    parts.push_back(fmt::format("{} mis-shaped: {}", mismatched.size(), list_some(mismatched, 3)));
  if (parts.empty()) return fmt::format("all {} tensors loaded", loaded);
  return fmt::format("{} loaded; {}", loaded, join(parts, "; "));
}

LoadReport load_state_dict(torch::nn::Module& module, const TensorMap& tensors, const LoadOptions& opts) {
  TensorMap file = strip_prefixes(tensors, opts.strip_prefixes);
  TensorMap own = state_dict(module);
  std::vector<std::string> own_names;
  for (const auto& kv : own) own_names.push_back(kv.first);

  LoadReport r;
  torch::NoGradGuard no_grad;
  for (const auto& [name, target] : own) {
    auto it = file.find(name);
    if (it == file.end()) {
      if (!optional_key(name, opts)) r.missing.push_back(name);
      continue;
    }
    const auto& src = it->second;
    if (src.sizes() != target.sizes()) {
      r.mismatched.push_back(fmt::format("{} (file [{}] vs model [{}])", name, fmt::join(src.sizes(), ","),
                                         fmt::join(target.sizes(), ",")));
      continue;
    }
    target.copy_(src.to(target.device(), target.scalar_type()));
    ++r.loaded;
  }
  for (const auto& [name, t] : file) {
    if (own.count(name) || optional_key(name, opts)) continue;
    std::string near = nearest_name(name, own_names);
    r.unexpected.push_back(near.empty() ? name : fmt::format("{} (nearest: {})", name, near));
  }
  if (opts.strict && !r.ok())
    throw UserError(fmt::format("{}: weights do not fit the model: {} (check the model config matches the "
                                "checkpoint, or load leniently)",
                                opts.source.empty() ? "<weights>" : opts.source, r.summary()));
  return r;
}

}  // namespace bevt
