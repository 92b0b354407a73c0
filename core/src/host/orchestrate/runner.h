// Running a plan (plan.h): every stage is loaded and checked before the first runs, then the stages run in
// order, each in its own bevt-run process (stage.h); finished ones are skipped, interrupted ones resume. The
// first failing stage stops the plan with its exit status (2: bad input, otherwise 1), naming it.
//
// After each stage the plan writes <plan work_dir>/results.json: {"mode": "plan", "plan", "variant", "title",
// "reference", "complete", "stages": [{"stage", "work_dir", "skipped", "seconds", "row", "column", "results"}],
// "tables"} (what bevt-report reads when given the plan's work_dir). At the end it prints a summary table and
// the tables the stages reported (the temporal probe's).
#pragma once

#include <string>
#include <vector>

#include "plan.h"
#include "stage.h"

namespace bevt::host::orchestrate {

struct PlanOptions {
  std::vector<std::string> overrides;    // --set: plan.<key> for the plan, the others for every stage
  std::vector<std::string> plugin_dirs;  // --plugin-dir, passed on to every stage
  bool dry_run = false;                  // check the plan and every stage, print them, run nothing
};

struct CheckedPlan {
  PlanSpec spec;
  std::vector<StagePlan> stages;  // spec.stages loaded (plan_stage), in order
};

// Loads and checks every stage (plan_stage) and that no two stages, nor a stage and the plan, write one
// work_dir, and that no stage is itself a plan. Throws UserError.
CheckedPlan check_plan(const PlanSpec& spec, const StageOptions& opts);

// `bevt-run PLAN.toml` (a file for which is_plan_file holds) and `bevt-run --suite DIR`. Returns 0, or throws
// the first failing stage's error.
int run_plan(const std::string& file, const PlanOptions& opts);
int run_suite(const std::string& dir, const PlanOptions& opts);

}  // namespace bevt::host::orchestrate
