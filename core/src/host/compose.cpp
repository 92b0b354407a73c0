#include "compose.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "bevt/backbone.h"
#include "bevt/dataset.h"
#include "bevt/error.h"
#include "bevt/head.h"
#include "bevt/masker.h"
#include "bevt/strings.h"
#include "bevt/tokenizer.h"

namespace bevt::host {

std::optional<Kind> expected_kind(const std::string& path) {
  std::vector<std::string> segs;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    segs.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
    const std::string& s = *it;
    if (s.find("backbone") != std::string::npos || s == "encoder") return Kind::Backbone;
    if (s.find("tokenizer") != std::string::npos) return Kind::Tokenizer;
    if (s.find("mask") != std::string::npos) return Kind::Masker;
    if (s.find("head") != std::string::npos || s.find("decoder") != std::string::npos) return Kind::Head;
    if (s == "data" || s.find("dataset") != std::string::npos) return Kind::Dataset;
  }
  return std::nullopt;
}

namespace {
bool has_component(const Config& t) {
  if (t.has("plugin")) return true;
  for (const auto& k : t.keys())
    if (t.type_of(k) == ValueType::Table && has_component(t.get_table(k))) return true;
  return false;
}

void walk(const Config& t, std::vector<Component>& out) {
  for (const auto& k : t.keys()) {
    if (t.type_of(k) != ValueType::Table) {
      if (!t.path().empty())
        throw UserError(fmt::format("{}: key '{}' in [{}] belongs to no component (tables here group components; "
                                    "put it inside one that has plugin = ...)",
                                    t.where(k), k, t.path()));
      continue;
    }
    Config sub = t.get_table(k);
    if (sub.has("plugin")) {
      if (sub.type_of("plugin") != ValueType::String)
        throw UserError(fmt::format("{}: 'plugin' must be a plugin name (a string)", sub.where("plugin")));
      out.push_back({sub.path(), sub, expected_kind(sub.path()), nullptr, nullptr});
      continue;
    }
    if (!has_component(sub))
      throw UserError(fmt::format("{}: table [{}] has no 'plugin' key and holds no component (add plugin = \"<name>\"; "
                                  "bevt-run --list-plugins lists the names)",
                                  sub.where(), sub.path()));
    walk(sub, out);
  }
}

int kind_order(Kind k) {
  switch (k) {
    case Kind::Backbone: return 0;
    case Kind::Tokenizer: return 1;
    case Kind::Dataset: return 2;
    case Kind::Masker: return 3;
    case Kind::Head: return 4;
  }
  return 5;
}
}  // namespace

std::vector<Component> find_components(Config& root) {
  std::vector<Component> out;
  std::vector<std::string> host_names;
  for (const auto& s : host_sections()) host_names.push_back(s.first);
  for (const auto& k : root.keys()) {
    if (std::find(host_names.begin(), host_names.end(), k) != host_names.end()) continue;
    if (root.type_of(k) != ValueType::Table)
      throw UserError(fmt::format("{}: unknown top-level key '{}'{} (top-level keys are tables: {} or components)",
                                  root.where(k), k, did_you_mean(k, host_names), join(host_names)));
    Config sub = root.get_table(k);
    if (sub.has("plugin")) {
      if (sub.type_of("plugin") != ValueType::String)
        throw UserError(fmt::format("{}: 'plugin' must be a plugin name (a string)", sub.where("plugin")));
      out.push_back({sub.path(), sub, expected_kind(sub.path()), nullptr, nullptr});
      continue;
    }
    if (!has_component(sub)) {
      std::string hint = nearest_name(k, host_names);
      throw UserError(fmt::format("{}: table [{}] is not a host section ({}) and holds no component{}", sub.where(), k,
                                  join(host_names), hint.empty() ? "" : fmt::format(", did you mean [{}]?", hint)));
    }
    walk(sub, out);
  }
  return out;
}

int64_t Composition::parameter_count(const Component& c) const {
  if (!c.object || !c.plugin) return 0;
  const torch::nn::Module* m = nullptr;
  switch (c.plugin->info.kind) {
    case Kind::Backbone: m = static_cast<const Backbone*>(c.object.get()); break;
    case Kind::Tokenizer: m = static_cast<const Tokenizer*>(c.object.get()); break;
    case Kind::Head: m = static_cast<const Head*>(c.object.get()); break;
    default: return 0;
  }
  int64_t n = 0;
  for (const auto& p : m->parameters(true)) n += p.numel();
  return n;
}

Composition compose(const Registry& registry, Config& root, const RunSettings& run, bool build) {
  Composition comp;
  comp.components = find_components(root);
  for (auto& c : comp.components) {
    c.plugin = &registry.find(c.cfg.get_string("plugin"), c.expected, c.cfg.where("plugin"));
    c.cfg.validate(c.plugin->info.keys);
  }
  if (!build) return comp;

  std::stable_sort(comp.components.begin(), comp.components.end(), [](const Component& a, const Component& b) {
    return kind_order(a.plugin->info.kind) < kind_order(b.plugin->info.kind);
  });
  BuildContext ctx;
  ctx.device = run.device;
  ctx.seed = run.seed;
  ctx.work_dir = run.work_dir;
  ctx.cache_dir = (std::filesystem::path(run.work_dir).parent_path() / ".cache").string();
  ctx.build = [&registry](Kind kind, const Config& cfg) {
    Config copy = cfg;
    const auto& p = registry.find(copy.get_string("plugin"), kind, copy.where("plugin"));
    return registry.build(p, copy, BuildContext{});
  };
  for (auto& c : comp.components) {
    c.object = registry.build(*c.plugin, c.cfg, ctx);
    switch (c.plugin->info.kind) {
      case Kind::Backbone:
        if (!ctx.backbone) ctx.backbone = static_cast<Backbone*>(c.object.get())->spec();
        break;
      case Kind::Tokenizer:
        if (ctx.vocab_size == 0) ctx.vocab_size = static_cast<Tokenizer*>(c.object.get())->vocab_size();
        break;
      case Kind::Dataset:
        if (ctx.num_classes == 0)
          ctx.num_classes = static_cast<int64_t>(static_cast<Dataset*>(c.object.get())->class_names().size());
        break;
      default: break;
    }
  }
  return comp;
}

std::string describe(const Composition& comp) {
  std::string out = fmt::format("{:<28} {:<10} {:<20} {:>12}  {}\n", "component", "kind", "plugin", "parameters",
                                "library");
  for (const auto& c : comp.components) {
    std::string params = "-";
    if (c.object) {
      int64_t n = comp.parameter_count(c);
      if (n > 0) params = n >= 1000000 ? fmt::format("{:.2f}M", n / 1e6) : fmt::format("{}", n);
      if (c.plugin->info.kind == Kind::Dataset) {
        auto* d = static_cast<const Dataset*>(c.object.get());
        params = fmt::format("{} samples", d->size());
      }
    }
    out += fmt::format("{:<28} {:<10} {:<20} {:>12}  {}\n", c.path, kind_name(c.plugin->info.kind), c.plugin->info.name,
                       params, std::filesystem::path(c.plugin->library).filename().string());
  }
  return out;
}

}  // namespace bevt::host
