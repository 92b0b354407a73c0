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
#include "modes.h"

namespace bevt::host {

int64_t Composition::parameter_count(const Component& c) const {
  const torch::nn::Module* m = nullptr;  // stays null for components not built, maskers and datasets
  if (auto b = component_cast<Backbone>(c.object)) m = b.get();
  if (auto t = component_cast<Tokenizer>(c.object)) m = t.get();
  if (auto h = component_cast<Head>(c.object)) m = h.get();
  if (!m) return 0;
  int64_t n = 0;
  for (const auto& p : m->parameters(true)) n += p.numel();
  return n;
}

namespace {
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

Composition compose(const Registry& registry, const Experiment& exp, bool build, ComposeScope scope) {
  const RunSettings& run = exp.run;
  Composition comp;
  for (const auto& t : exp.components) {
    if (scope == ComposeScope::ModelOnly && t.kind == Kind::Dataset) continue;
    Component c{t.path, t.cfg, t.kind, nullptr, AnyComponent{}};
    c.plugin = &registry.find(t.plugin, c.kind, c.cfg.where("plugin"));
    c.cfg.validate(c.plugin->info.keys);
    comp.components.push_back(std::move(c));
  }
  if (scope == ComposeScope::Experiment) check_mode_needs(exp);
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
    if (auto b = component_cast<Backbone>(c.object); b && !ctx.backbone) ctx.backbone = b->spec();
    if (auto t = component_cast<Tokenizer>(c.object); t && ctx.vocab_size == 0) ctx.vocab_size = t->vocab_size();
    if (auto d = component_cast<Dataset>(c.object); d && ctx.num_classes == 0)
      ctx.num_classes = static_cast<int64_t>(d->class_names().size());
  }
  return comp;
}

std::string describe(const Composition& comp) {
  std::string out = fmt::format("{:<28} {:<10} {:<20} {:>12}  {}\n", "component", "kind", "plugin", "parameters",
                                "library");
  for (const auto& c : comp.components) {
    std::string params = "-";
    const int64_t n = comp.parameter_count(c);
    if (n > 0) params = n >= 1000000 ? fmt::format("{:.2f}M", n / 1e6) : fmt::format("{}", n);
    if (auto d = component_cast<Dataset>(c.object)) params = fmt::format("{} samples", d->size());
    out += fmt::format("{:<28} {:<10} {:<20} {:>12}  {}\n", c.path, kind_name(c.plugin->info.kind), c.plugin->info.name,
                       params, std::filesystem::path(c.plugin->library).filename().string());
  }
  return out;
}

}  // namespace bevt::host
