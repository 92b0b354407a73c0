// Composition: resolves each component table of an Experiment to its plugin (the manifest's kind must be the
// slot's), checks the table against the plugin's keys, and builds the components in dependency order
// (backbones, tokenizers and datasets before the heads that need their spec, vocabulary and classes).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bevt/config.h"
#include "bevt/context.h"
#include "host/config/experiment.h"
#include "registry.h"

namespace bevt::host {

struct Component {
  std::string path;  // dotted table path ("model.backbone")
  Config cfg;
  Kind kind;
  const LoadedPlugin* plugin = nullptr;
  AnyComponent object;  // once built (empty before)
};

struct Composition {
  std::vector<Component> components;
  // The component at `path` as Interface; nullptr when absent (or not built).
  template <class Interface>
  std::shared_ptr<Interface> get(const std::string& path) const {
    for (const auto& c : components)
      if (c.path == path) return component_cast<Interface>(c.object);
    return nullptr;
  }
  int64_t parameter_count(const Component& c) const;  // 0 for components without parameters
};

// What compose() resolves: the whole experiment, or its model alone (backbone, tokenizer, maskers, heads), for
// tools that feed generated inputs (bench_pretrain_step) and so need neither dataset plugins nor the mode's
// dataset tables.
enum class ComposeScope { Experiment, ModelOnly };

// Resolves plugins and validates every component; with build = true also calls the factories.
Composition compose(const Registry& registry, const Experiment& exp, bool build,
                    ComposeScope scope = ComposeScope::Experiment);

// The table printed by --dry-run.
std::string describe(const Composition& comp);

}  // namespace bevt::host
