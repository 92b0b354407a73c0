#include "suite.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

#include <toml++/toml.h>

#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/strings.h"
#include "checkpoint.h"

namespace fs = std::filesystem;

namespace bevt::host::train {

namespace {

struct Entry {
  std::string name, file;  // as listed; the path
  std::string row, column;  // bevt-report's table layout (empty: its defaults)
};

struct SuiteSpec {
  std::vector<Entry> experiments;
  std::string work_dir, reference, title;
};

// work_dirs/<the folder's path below experiments/>, e.g. experiments/ablations/mini/strategy →
// work_dirs/ablations/mini/strategy; a folder outside experiments/ gets work_dirs/suites/<folder name>.
std::string default_work_dir(const fs::path& dir) {
  fs::path canon = fs::weakly_canonical(dir);
  std::vector<fs::path> parts(canon.begin(), canon.end());
  for (size_t i = parts.size(); i-- > 0;) {
    if (parts[i] != "experiments") continue;
    fs::path rel = "work_dirs";
    for (size_t j = i + 1; j < parts.size(); ++j) rel /= parts[j];
    if (i + 1 < parts.size()) return rel.string();
  }
  return (fs::path("work_dirs") / "suites" / canon.filename()).string();
}

std::string at(const fs::path& file, const toml::node& n) {
  return fmt::format("{}:{}", file.string(), n.source().begin.line);
}

// The string value of `key` in table t ("" when absent); other types are an error naming the line.
std::string string_of(const fs::path& file, const toml::table& t, const std::string& key) {
  const toml::node* n = t.get(key);
  if (!n) return "";
  if (!n->is_string()) throw UserError(fmt::format("{}: '{}' must be a string", at(file, *n), key));
  return n->as_string()->get();
}

void only_keys(const fs::path& file, const toml::table& t, const std::vector<std::string>& allowed,
               const std::string& what) {
  for (const auto& [k, v] : t) {
    std::string name(k.str());
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
      throw UserError(fmt::format("{}: unknown key '{}' in {} (known: {})", at(file, v), name, what, join(allowed)));
  }
}

// suite.toml: an optional [suite] table (work_dir, reference, title) and the experiments in order, each an
// [[experiment]] table: file (relative to the folder), and row / column, its place in bevt-report's tables.
SuiteSpec read_suite_file(const fs::path& dir, const fs::path& list) {
  toml::table root;
  try {
    root = toml::parse_file(list.string());
  } catch (const toml::parse_error& e) {
    throw UserError(fmt::format("{}:{}: invalid TOML: {}", list.string(), e.source().begin.line, e.description()));
  }
  only_keys(list, root, {"suite", "experiment"}, "suite.toml (tables: [suite], [[experiment]])");
  SuiteSpec s;
  s.work_dir = default_work_dir(dir);
  if (const toml::node* n = root.get("suite")) {
    if (!n->is_table()) throw UserError(fmt::format("{}: 'suite' must be a table", at(list, *n)));
    const toml::table& t = *n->as_table();
    only_keys(list, t, {"work_dir", "reference", "title"}, "[suite]");
    if (auto w = string_of(list, t, "work_dir"); !w.empty()) s.work_dir = w;
    s.title = string_of(list, t, "title");
    if (auto r = string_of(list, t, "reference"); !r.empty()) {
      fs::path rp = dir / r;
      if (!fs::is_regular_file(rp))
        throw UserError(fmt::format("{}: reference file '{}' not found ({})", at(list, *t.get("reference")), r,
                                    rp.string()));
      s.reference = rp.lexically_normal().string();
    }
  }
  const toml::node* ex = root.get("experiment");
  const toml::array* arr = ex ? ex->as_array() : nullptr;
  if (!arr || arr->empty())
    throw UserError(fmt::format("{}: lists no experiments (add [[experiment]] tables with file = \"x.toml\")",
                                list.string()));
  for (const auto& node : *arr) {
    const toml::table* t = node.as_table();
    if (!t) throw UserError(fmt::format("{}: each experiment entry must be a [[experiment]] table", at(list, node)));
    only_keys(list, *t, {"file", "row", "column"}, "[[experiment]]");
    Entry e;
    e.name = string_of(list, *t, "file");
    if (e.name.empty()) throw UserError(fmt::format("{}: [[experiment]] needs file = \"x.toml\"", at(list, *t)));
    fs::path f = dir / e.name;
    if (!fs::is_regular_file(f))
      throw UserError(fmt::format("{}: experiment file '{}' not found ({})", at(list, *t->get("file")), e.name,
                                  f.string()));
    e.file = f.lexically_normal().string();
    e.row = string_of(list, *t, "row");
    e.column = string_of(list, *t, "column");
    s.experiments.push_back(e);
  }
  return s;
}

SuiteSpec read_suite(const fs::path& dir) {
  if (!fs::is_directory(dir))
    throw UserError(fmt::format("--suite {}: no such folder (give a folder of experiment files, e.g. "
                                "experiments/ablations/mini/strategy)",
                                dir.string()));
  if (fs::exists(dir / "suite.toml")) return read_suite_file(dir, dir / "suite.toml");
  SuiteSpec s;
  s.work_dir = default_work_dir(dir);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (e.is_regular_file() && e.path().extension() == ".toml" && n[0] != '_') names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  if (names.empty())
    throw UserError(fmt::format("--suite {}: the folder has no suite.toml and no experiment files (*.toml)",
                                dir.string()));
  for (const auto& n : names) s.experiments.push_back({n, (dir / n).lexically_normal().string(), "", ""});
  return s;
}

std::string top1_of(const nlohmann::json& r) {
  if (r.contains("top1") && r["top1"].is_number()) return fmt::format("{:.3f}", r["top1"].get<double>());
  return "-";
}

}  // namespace

SuitePlan plan_suite(const std::string& dir_arg, const StageOptions& opts_in) {
  StageOptions opts = opts_in;
  opts.kind = "experiment";
  const fs::path dir(dir_arg);
  SuiteSpec spec = read_suite(dir);
  SuitePlan plan;
  plan.work_dir = spec.work_dir;
  plan.reference = spec.reference;
  plan.title = spec.title;
  // Check every experiment before the first runs, so a typo in the last one does not wait hours to surface.
  std::map<std::string, std::string> owner;  // work_dir → experiment
  for (const auto& e : spec.experiments) {
    plan.stages.push_back(plan_stage(e.name, e.file, opts));
    plan.labels.emplace_back(e.row, e.column);
    std::string wd = fs::weakly_canonical(plan.stages.back().work_dir).string();
    auto [it, fresh] = owner.emplace(wd, e.name);
    if (!fresh)
      throw UserError(fmt::format("{}: experiments {} and {} both write work_dir {} (give each its own run.work_dir)",
                                  dir.string(), it->second, e.name, plan.stages.back().work_dir));
  }
  return plan;
}

int run_suite(const std::string& dir_arg, const StageOptions& opts_in) {
  StageOptions opts = opts_in;
  opts.kind = "experiment";
  const fs::path dir(dir_arg);
  SuitePlan spec = plan_suite(dir_arg, opts);
  const std::vector<StagePlan>& plans = spec.stages;
  size_t done_before = 0;
  for (const auto& p : plans) done_before += finished_results(p).has_value();
  log_info("suite {}: {} experiments, {} finished earlier; results in {}", dir.string(), plans.size(), done_before,
           spec.work_dir);

  nlohmann::json results{{"mode", "suite"}, {"suite", dir.string()}, {"stages", nlohmann::json::array()},
                         {"complete", false}};
  if (!spec.reference.empty()) results["reference"] = spec.reference;
  if (!spec.title.empty()) results["title"] = spec.title;
  fs::create_directories(spec.work_dir);
  const std::string results_file = (fs::path(spec.work_dir) / "results.json").string();
  struct Row {
    std::string name, work_dir, status, top1;
  };
  std::vector<Row> rows;
  const auto t_suite = std::chrono::steady_clock::now();
  for (size_t i = 0; i < plans.size(); ++i) {
    const StagePlan& plan = plans[i];
    const auto t0 = std::chrono::steady_clock::now();
    StageOutcome o = run_stage(plan, opts);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json entry{{"stage", plan.name}, {"work_dir", plan.work_dir}, {"skipped", o.skipped},
                         {"results", o.results}};
    if (!o.skipped) entry["seconds"] = secs;
    if (!spec.labels[i].first.empty()) entry["row"] = spec.labels[i].first;
    if (!spec.labels[i].second.empty()) entry["column"] = spec.labels[i].second;
    results["stages"].push_back(entry);
    results["complete"] = results["stages"].size() == plans.size();
    write_text_atomic(results_file, results.dump(2) + "\n");
    rows.push_back({plan.name, plan.work_dir, o.skipped ? "finished earlier" : fmt::format("ran ({:.0f} s)", secs),
                    top1_of(o.results)});
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_suite).count();

  std::string table = "| # | experiment | status | work_dir | top-1 |\n|---|---|---|---|---|\n";
  for (size_t i = 0; i < rows.size(); ++i)
    table += fmt::format("| {} | {} | {} | {} | {} |\n", i + 1, rows[i].name, rows[i].status, rows[i].work_dir,
                         rows[i].top1);
  size_t skipped = 0;
  for (const auto& s : results["stages"]) skipped += s["skipped"].get<bool>();
  std::printf("\nsuite %s: %zu experiments, %zu ran, %zu finished earlier, %.0f s\n\n%s\ntables and plots: "
              "bevt-report %s --out %s/report\n",
              dir.string().c_str(), plans.size(), plans.size() - skipped, skipped, total, table.c_str(),
              spec.work_dir.c_str(), spec.work_dir.c_str());
  return 0;
}

}  // namespace bevt::host::train
