// Plan files: experiment files run in order as the stages of one plan (a multi-stage pipeline such as the
// quickstart, or an ablation suite), each in its own bevt-run process (stage.h). One format, docs/plans.md:
//
//   [plan]
//   title = "..."        # optional: the heading bevt-report gives the plan's tables
//   work_dir = "..."     # optional: where the plan writes its results.json
//   reference = "x.csv"  # optional: bevt-report's reference numbers (relative to the plan file)
//   variant = ""         # optional: "" runs `stages`; a name runs variants.<name>.stages instead
//   stages = [
//     "quickstart/tokenizer.toml",                            # an experiment file, relative to the plan file
//     { file = "finetune.toml", row = "BEVT", column = "K400" },  # or a table with bevt-report's labels
//   ]
//   [plan.variants.timesformer]
//   stages = [...]
//
// `bevt-run PLAN.toml` reads a plan file; `bevt-run --suite DIR` reads DIR/suite.toml (a plan file), or, when the
// folder has none, makes a plan of every DIR/*.toml in name order (names starting with '_' are bases).
// `--set plan.<key>=VALUE` changes the plan; every other --set goes to every stage. This file only reads and
// checks plans (no experiment is loaded); runner.h loads the stages and runs them.
#pragma once

#include <string>
#include <vector>

namespace bevt::host::orchestrate {

struct PlanStageSpec {
  std::string name;         // as the plan lists it
  std::string file;         // the experiment file (resolved against the plan file's folder)
  std::string row, column;  // bevt-report's labels ("" = its defaults)
};

struct PlanSpec {
  std::string source;    // the plan file, or the folder of a suite without suite.toml
  std::string title;     // "" = none
  std::string work_dir;  // where results.json goes (default: work_dirs/<file stem>; suites: see default_work_dir)
  std::string reference;  // resolved reference file, "" = none
  std::string variant;    // "" = the plan's own stages
  std::vector<std::string> variants;  // the variant names the plan defines
  std::vector<PlanStageSpec> stages;  // of the selected variant, in order
};

// Whether `path` is a file whose top level has a [plan] table, or the old pipeline or suite format (which
// read_plan refuses with how to write it now). Other files, and files that are not valid TOML, are not plans.
bool is_plan_file(const std::string& path);

// The --set overrides split: plan.<key>=... change the plan, every other goes to every stage. An override of
// the old pipeline.* keys is a UserError saying what to write instead.
struct SplitOverrides {
  std::vector<std::string> plan, stages;
};
SplitOverrides split_overrides(const std::vector<std::string>& overrides);

// Reads a plan file with plan.<key> overrides applied. Throws UserError (one line, file:line) on invalid TOML,
// an unknown key (with the nearest known key), a wrong type, an undefined variant, a missing stage or
// reference file, and on the old formats.
PlanSpec read_plan(const std::string& file, const std::vector<std::string>& plan_overrides);

// `--suite DIR`: DIR/suite.toml, else every DIR/*.toml in name order (names starting with '_' left out).
PlanSpec read_suite(const std::string& dir, const std::vector<std::string>& plan_overrides);

// A suite folder's default work_dir: work_dirs/<the folder's path below experiments/>, e.g.
// experiments/ablations/mini/strategy -> work_dirs/ablations/mini/strategy; outside experiments/,
// work_dirs/suites/<folder name>.
std::string default_work_dir(const std::string& dir);

}  // namespace bevt::host::orchestrate
