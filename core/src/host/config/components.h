// Component tables of an experiment: every table with `plugin = "<name>"`, at one of the slots below. The
// slot says which kind of plugin it takes (checked against the plugin's manifest when it is resolved); the
// plugin's own keys are checked by the registry against the plugin's manifest.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bevt/config.h"
#include "bevt/context.h"

namespace bevt::host {

struct SlotSpec {
  std::string pattern;  // "model.backbone", or "<prefix>.*": one table per name under prefix
  Kind kind;
  std::string doc;
};

// The slots runners read: model.backbone, model.heads.*, tokenizer, masker.*, data.*.
const std::vector<SlotSpec>& component_slots();
// The slot `path` fills, if any.
const SlotSpec* find_slot(const std::string& path);

struct ComponentTable {
  std::string path;    // dotted table path ("model.backbone")
  std::string plugin;  // its plugin's name
  Config cfg;          // the table as written (the plugin validates and reads it)
  Kind kind;         // what the slot takes
};

// Every component table of root (every top-level table that is not a host section). A table that is neither
// a host section, a component at a known slot nor a group of components is an error naming its file:line and
// the nearest valid name.
std::vector<ComponentTable> find_components(const Config& root);

}  // namespace bevt::host
