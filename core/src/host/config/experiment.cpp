#include "experiment.h"

#include <fmt/format.h>

#include <algorithm>

#include "bevt/error.h"
#include "bevt/strings.h"
#include "experiment_file.h"
#include "host/modes.h"  // the valid run.mode values

namespace bevt::host {

namespace {

// A host table of root, created empty when absent (its parser fills the defaults in).
Config table(Config& root, const std::string& name) {
  if (!root.has(name)) root.set_toml(name, "{}", "<default>");
  if (root.type_of(name) != ValueType::Table)
    throw UserError(fmt::format("{}: '{}' must be a table ([{}])", root.where(name), name, name));
  return root.get_table(name);
}

void collect_strings(const Config& t, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  for (const auto& k : t.keys()) {
    const std::string dotted = prefix.empty() ? k : prefix + "." + k;
    if (dotted == "run" || dotted == "data") continue;  // its own work_dir; datasets are the user's (large) files
    auto type = t.type_of(k);
    if (type == ValueType::Table) {
      collect_strings(t.get_table(k), dotted, out);
    } else if (type == ValueType::String) {
      std::string v = t.get_string(k);
      if (!v.empty()) out.emplace_back(dotted, std::move(v));
    }
  }
}

}  // namespace

Experiment Experiment::load(const std::string& file, const std::vector<std::string>& overrides) {
  Experiment e;
  e.file = file;
  e.tree_ = load_experiment(file, overrides);
  e.hashed_text = host::hashed_text(e.tree_);
  e.config_hash = experiment_hash(e.tree_);
  e.run_hash = experiment_hash(e.tree_, true);
  Config& root = e.tree_;
  // Every host table is parsed (and so checked) whether the mode reads it or not: a typo fails before any work.
  e.run = parse_run(table(root, "run"), file, mode_names());
  e.optim = parse_optim(table(root, "optim"));
  e.loader = parse_loader(table(root, "loader"));
  e.pretrain = parse_pretrain(table(root, "pretrain"));
  e.finetune = parse_finetune(table(root, "finetune"));
  e.init = parse_init(table(root, "init"));
  e.dist = parse_dist(table(root, "dist"));
  e.log = parse_log(table(root, "log"));
  e.components = find_components(root);
  collect_strings(root, "", e.weight_candidates);
  return e;
}

std::string Experiment::where(const std::string& dotted) const {
  const auto dot = dotted.rfind('.');
  Config t = tree_;
  std::string key = dotted;
  if (dot != std::string::npos) {
    for (const auto& seg : split(dotted.substr(0, dot), '.')) {
      if (!t.has(seg) || t.type_of(seg) != ValueType::Table) return file;
      t = t.get_table(seg);
    }
    key = dotted.substr(dot + 1);
  }
  const std::string w = !t.has(key) ? t.where()
                        : t.type_of(key) == ValueType::Table ? t.get_table(key).where() : t.where(key);
  return w.rfind("<default>", 0) == 0 ? file : w;  // a default the user did not write: name the file
}

}  // namespace bevt::host
