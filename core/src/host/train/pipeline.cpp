// run.mode = "pipeline": runs experiment files in order (pipeline.stages, relative to this file), each in
// its own bevt-run process, skipping stages already finished with the same config (their results.json holds
// the config hash), so an interrupted pipeline resumes where it stopped. Tables the stages report (the probe)
// are printed at the end and collected in this run's results.json.
//
// Variants: pipeline.variant = "<name>" runs pipeline.variants.<name>.stages instead of pipeline.stages, so
// one --set switches a whole pipeline (the quickstart with TimeSformer). A variant's stage files name their
// own work_dirs, so its results neither overwrite another variant's nor are mistaken for them.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/strings.h"
#include "host/sections.h"
#include "runners_internal.h"
#include "stages.h"

namespace fs = std::filesystem;

namespace bevt::host::train {

namespace {

// The stage list: pipeline.stages, or that of the variant pipeline.variant names.
std::vector<std::string> pipeline_stages(const Config& pc, const std::string& variant) {
  if (variant.empty()) {
    auto stages = pc.get_string_list("stages");
    if (stages.empty()) throw UserError(fmt::format("{}: pipeline.stages is empty", pc.where()));
    return stages;
  }
  std::vector<std::string> names;
  if (pc.has("variants")) names = pc.get_table("variants").keys();
  if (std::find(names.begin(), names.end(), variant) == names.end())
    throw UserError(fmt::format("{}: pipeline.variant '{}' is not defined in [pipeline.variants] (defined: {}){}",
                                pc.where("variant"), variant, names.empty() ? "none" : join(names),
                                did_you_mean(variant, names)));
  Config variants = pc.get_table("variants");
  if (variants.type_of(variant) != ValueType::Table)
    throw UserError(fmt::format("{}: pipeline.variants.{} must be a table {{stages = [...]}}", variants.where(variant),
                                variant));
  Config v = variants.get_table(variant);
  v.validate({key("stages", std::vector<std::string>{}, "experiment files of this variant, run in order")}, {});
  auto stages = v.get_string_list("stages");
  if (stages.empty()) throw UserError(fmt::format("{}: pipeline.variants.{}.stages is empty", v.where(), variant));
  return stages;
}

int run_pipeline(const RunContext& ctx) {
  Config pc = host_section(ctx.root, "pipeline");
  const std::string variant = pc.get_string("variant");
  auto stages = pipeline_stages(pc, variant);
  if (!variant.empty()) log_info("pipeline variant '{}': {}", variant, join(stages));
  fs::path base = fs::path(ctx.experiment_path).parent_path();
  StageOptions opts;
  opts.kind = "stage";
  std::vector<StagePlan> plans;
  for (const auto& stage : stages) {
    fs::path file = base / stage;
    if (!fs::exists(file)) throw UserError(fmt::format("{}: stage '{}' not found ({})", pc.where("stages"), stage, file.string()));
    plans.push_back(plan_stage(stage, file.string(), opts));
  }
  nlohmann::json results{{"mode", "pipeline"}, {"variant", variant}, {"stages", nlohmann::json::array()}};
  std::string tables;
  for (const auto& plan : plans) {
    nlohmann::json stage_res = run_stage(plan, opts).results;
    results["stages"].push_back({{"stage", plan.name}, {"work_dir", plan.work_dir}, {"results", stage_res}});
    if (stage_res.contains("table"))
      tables += fmt::format("{} ({})\n\n{}\n", plan.name, plan.work_dir, stage_res["table"].get<std::string>());
  }
  if (!tables.empty()) {
    results["tables"] = tables;
    std::printf("\n%s", tables.c_str());
  }
  write_results(ctx, results);
  return 0;
}

}  // namespace

void register_pipeline_runner() { register_runner("pipeline", run_pipeline); }

}  // namespace bevt::host::train
