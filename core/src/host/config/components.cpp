#include "components.h"

#include <fmt/format.h>

#include <algorithm>

#include "bevt/error.h"
#include "bevt/strings.h"
#include "sections.h"

namespace bevt::host {

const std::vector<SlotSpec>& component_slots() {
  static const std::vector<SlotSpec> slots = {
      {"model.backbone", Kind::Backbone, "the encoder"},
      {"model.heads.*", Kind::Head, "heads by role: image / video (BEVT decoders), cls (classifier)"},
      {"tokenizer", Kind::Tokenizer, "targets of masked modelling, or the model of run.mode = tokenizer"},
      {"masker.*", Kind::Masker, "masks by stream: image, video"},
      {"data.*", Kind::Dataset, "datasets by split or stream: train, val, test, image, video"},
  };
  return slots;
}

const SlotSpec* find_slot(const std::string& path) {
  for (const auto& s : component_slots()) {
    const std::string& p = s.pattern;
    if (p.size() > 2 && p.compare(p.size() - 2, 2, ".*") == 0) {
      const std::string prefix = p.substr(0, p.size() - 1);  // "model.heads."
      if (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
          path.find('.', prefix.size()) == std::string::npos)
        return &s;
    } else if (path == p) {
      return &s;
    }
  }
  return nullptr;
}

namespace {

std::vector<std::string> slot_names() {
  std::vector<std::string> out;
  for (const auto& s : component_slots()) out.push_back(s.pattern);
  return out;
}

std::string nearest_slot(const std::string& path) {
  // Compare with the slot names, "*" instantiated with the last segment of path.
  std::vector<std::string> candidates;
  const std::string last = path.substr(path.rfind('.') == std::string::npos ? 0 : path.rfind('.') + 1);
  for (const auto& s : component_slots()) {
    std::string p = s.pattern;
    if (p.size() > 2 && p.compare(p.size() - 2, 2, ".*") == 0) p = p.substr(0, p.size() - 1) + last;
    candidates.push_back(p);
  }
  return nearest_name(path, candidates);
}

bool has_component(const Config& t) {
  if (t.has("plugin")) return true;
  for (const auto& k : t.keys())
    if (t.type_of(k) == ValueType::Table && has_component(t.get_table(k))) return true;
  return false;
}

void add_component(const Config& sub, std::vector<ComponentTable>& out) {
  if (sub.type_of("plugin") != ValueType::String)
    throw UserError(fmt::format("{}: 'plugin' must be a plugin name (a string)", sub.where("plugin")));
  const SlotSpec* slot = find_slot(sub.path());
  if (!slot) {
    std::string hint = nearest_slot(sub.path());
    throw UserError(fmt::format("{}: [{}] is not a component slot{} (slots: {})", sub.where(), sub.path(),
                                hint.empty() ? "" : fmt::format(", did you mean [{}]?", hint), join(slot_names())));
  }
  out.push_back({sub.path(), sub.get_string("plugin"), sub, slot->kind});
}

void walk(const Config& t, std::vector<ComponentTable>& out) {
  for (const auto& k : t.keys()) {
    if (t.type_of(k) != ValueType::Table)
      throw UserError(fmt::format("{}: key '{}' in [{}] belongs to no component (tables here group components; "
                                  "put it inside one that has plugin = ...)",
                                  t.where(k), k, t.path()));
    Config sub = t.get_table(k);
    if (sub.has("plugin")) {
      add_component(sub, out);
      continue;
    }
    if (!has_component(sub))
      throw UserError(fmt::format("{}: table [{}] has no 'plugin' key and holds no component (add plugin = \"<name>\"; "
                                  "bevt-run --list-plugins lists the names)",
                                  sub.where(), sub.path()));
    walk(sub, out);
  }
}

}  // namespace

std::vector<ComponentTable> find_components(const Config& root) {
  std::vector<ComponentTable> out;
  const std::vector<std::string> host_names = host_section_names();
  for (const auto& k : root.keys()) {
    if (std::find(host_names.begin(), host_names.end(), k) != host_names.end()) continue;
    if (root.type_of(k) != ValueType::Table)
      throw UserError(fmt::format("{}: unknown top-level key '{}'{} (top-level keys are tables: {} or components)",
                                  root.where(k), k, did_you_mean(k, host_names), join(host_names)));
    Config sub = root.get_table(k);
    if (sub.has("plugin")) {
      add_component(sub, out);
      continue;
    }
    if (!has_component(sub)) {
      std::vector<std::string> names = host_names;
      for (const auto& s : component_slots()) names.push_back(s.pattern.substr(0, s.pattern.find('.')));
      std::string hint = nearest_name(k, names);
      throw UserError(fmt::format("{}: table [{}] is not a host section ({}) and holds no component{}", sub.where(), k,
                                  join(host_names), hint.empty() ? "" : fmt::format(", did you mean [{}]?", hint)));
    }
    walk(sub, out);
  }
  return out;
}

}  // namespace bevt::host
