#include "runner.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/progress.h"
#include "bevt/strings.h"
#include "host/train/checkpoint.h"

namespace fs = std::filesystem;

namespace bevt::host::orchestrate {

namespace {

std::string top1_of(const nlohmann::json& r) {
  if (r.contains("top1") && r["top1"].is_number()) return fmt::format("{:.3f}", r["top1"].get<double>());
  return "-";
}

std::string canonical(const std::string& dir) { return fs::weakly_canonical(dir).string(); }

int run(const PlanSpec& spec, const PlanOptions& opts, const StageOptions& sopts) {
  // Every stage is checked before the first runs, so a typo in the last one does not wait hours to surface.
  const CheckedPlan plan = check_plan(spec, sopts);
  const std::vector<StagePlan>& stages = plan.stages;
  const std::string variant = spec.variant.empty() ? "" : fmt::format(" (variant {})", spec.variant);
  size_t done_before = 0;
  for (const auto& s : stages) done_before += finished_results(s).has_value();
  if (opts.dry_run) {
    std::string table = "| # | stage | work_dir | status |\n|---|---|---|---|\n";
    for (size_t i = 0; i < stages.size(); ++i)
      table += fmt::format("| {} | {} | {} | {} |\n", i + 1, stages[i].name, stages[i].work_dir,
                           finished_results(stages[i]) ? "finished earlier" : "to run");
    std::printf("plan %s%s: %zu stages, %zu finished earlier; results in %s\n\n%s", spec.source.c_str(),
                variant.c_str(), stages.size(), done_before, spec.work_dir.c_str(), table.c_str());
    return 0;
  }
  log_info("plan {}{}: {} stages, {} finished earlier; results in {}", spec.source, variant, stages.size(),
           done_before, spec.work_dir);

  nlohmann::json results{{"mode", "plan"}, {"plan", spec.source}, {"variant", spec.variant},
                         {"stages", nlohmann::json::array()}, {"complete", false}};
  if (!spec.reference.empty()) results["reference"] = spec.reference;
  if (!spec.title.empty()) results["title"] = spec.title;
  fs::create_directories(spec.work_dir);
  const std::string results_file = (fs::path(spec.work_dir) / "results.json").string();
  std::string summary = "| # | stage | status | work_dir | top-1 |\n|---|---|---|---|---|\n", tables;
  size_t skipped = 0;
  const auto t_plan = std::chrono::steady_clock::now();
  for (size_t i = 0; i < stages.size(); ++i) {
    const StagePlan& stage = stages[i];
    const PlanStageSpec& listed = spec.stages[i];
    const auto t0 = std::chrono::steady_clock::now();
    const StageOutcome o = run_stage(stage, sopts);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json entry{{"stage", stage.name}, {"work_dir", stage.work_dir}, {"skipped", o.skipped},
                         {"results", o.results}};
    if (!o.skipped) entry["seconds"] = secs;
    if (!listed.row.empty()) entry["row"] = listed.row;
    if (!listed.column.empty()) entry["column"] = listed.column;
    results["stages"].push_back(entry);
    results["complete"] = results["stages"].size() == stages.size();
    if (o.results.contains("table") && o.results["table"].is_string()) {
      tables += fmt::format("{} ({})\n\n{}\n", stage.name, stage.work_dir, o.results["table"].get<std::string>());
      results["tables"] = tables;
    }
    train::write_text_atomic(results_file, results.dump(2) + "\n");
    skipped += o.skipped;
    // Progress over the plan (each stage prints its own progress line while it runs): the mean time of the
    // stages that ran so far, times the stages left.
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_plan).count();
    const size_t ran = i + 1 - skipped, left = stages.size() - i - 1;
    log_info("plan: {}/{} stages done ({} ran, {} finished earlier) | elapsed {} | eta {}", i + 1, stages.size(), ran,
             skipped, Progress::format_duration(elapsed),
             left == 0 ? "0s" : ran == 0 ? "?" : Progress::format_duration(elapsed / ran * static_cast<double>(left)));
    summary += fmt::format("| {} | {} | {} | {} | {} |\n", i + 1, stage.name,
                           o.skipped ? "finished earlier" : fmt::format("ran ({:.0f} s)", secs), stage.work_dir,
                           top1_of(o.results));
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_plan).count();
  std::printf("\nplan %s%s: %zu stages, %zu ran, %zu finished earlier, %.0f s\n\n%s\n%stables and plots: "
              "bevt-report %s --out %s/report\n",
              spec.source.c_str(), variant.c_str(), stages.size(), stages.size() - skipped, skipped, total,
              summary.c_str(), tables.c_str(), spec.work_dir.c_str(),
              spec.work_dir.c_str());
  return 0;
}

}  // namespace

CheckedPlan check_plan(const PlanSpec& spec, const StageOptions& opts) {
  CheckedPlan out;
  out.spec = spec;
  std::map<std::string, std::string> owner;  // canonical work_dir → stage
  owner.emplace(canonical(spec.work_dir), "");
  for (const auto& s : spec.stages) {
    if (is_plan_file(s.file))
      throw UserError(fmt::format("{}: stage {} is itself a plan; plans do not nest (list its stages instead)",
                                  spec.source, s.name));
    out.stages.push_back(plan_stage(s.name, s.file, opts));
    const std::string& wd = out.stages.back().work_dir;
    auto [it, fresh] = owner.emplace(canonical(wd), s.name);
    if (fresh) continue;
    if (it->second.empty())
      throw UserError(fmt::format("{}: stage {} writes work_dir {}, where the plan writes its results.json (give "
                                  "the stage another run.work_dir, or the plan another plan.work_dir)",
                                  spec.source, s.name, wd));
    throw UserError(fmt::format("{}: stages {} and {} both write work_dir {} (give each its own run.work_dir)",
                                spec.source, it->second, s.name, wd));
  }
  return out;
}

int run_plan(const std::string& file, const PlanOptions& opts) {
  const SplitOverrides o = split_overrides(opts.overrides);
  return run(read_plan(file, o.plan), opts, StageOptions{o.stages, opts.plugin_dirs});
}

int run_suite(const std::string& dir, const PlanOptions& opts) {
  const SplitOverrides o = split_overrides(opts.overrides);
  return run(read_suite(dir, o.plan), opts, StageOptions{o.stages, opts.plugin_dirs});
}

}  // namespace bevt::host::orchestrate
