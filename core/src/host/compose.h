// Composition: finds every component table (`plugin = "<name>"`) of an experiment, checks it against its
// plugin's keys, and builds the components in dependency order (backbones, tokenizers and datasets before the
// heads that need their spec, vocabulary and classes).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bevt/config.h"
#include "registry.h"
#include "sections.h"

namespace bevt::host {

struct Component {
  std::string path;       // dotted table path ("model.backbone")
  Config cfg;
  std::optional<Kind> expected;  // from the slot's name, when it says
  const LoadedPlugin* plugin = nullptr;
  std::shared_ptr<void> object;  // a shared_ptr<Interface> of the plugin's kind, once built
};

// The kind a slot's name implies ("model.backbone" → backbone, "data.train" → dataset, ...), if any.
std::optional<Kind> expected_kind(const std::string& path);

// Every component table; a table that is neither a host section, a component nor a group of components is an
// error naming its file:line.
std::vector<Component> find_components(Config& root);

struct Composition {
  std::vector<Component> components;
  int64_t parameter_count(const Component& c) const;  // 0 for components without parameters
};

// Resolves plugins and validates every component; with build = true also calls the factories.
Composition compose(const Registry& registry, Config& root, const RunSettings& run, bool build);

// The table printed by --dry-run.
std::string describe(const Composition& comp);

}  // namespace bevt::host
