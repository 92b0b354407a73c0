// `bevt-run --suite DIR`: the experiments of a folder, run in order, each in its own bevt-run process (the
// pipeline's machinery, stages.h). The order is DIR/suite.toml's [[experiment]] tables when the folder has
// one (file = path relative to DIR; row / column = the cell bevt-report puts its result in; an optional
// [suite] table with work_dir, reference, title), otherwise every DIR/*.toml sorted by name (files starting
// with '_' are bases, not experiments).
// Finished experiments (results.json with the same experiment hash) are skipped, interrupted ones resume from
// their last checkpoint, so an interrupted suite continues where it stopped. The first failing experiment
// stops the suite with its exit status (2: bad input, otherwise 1), naming it.
//
// After each experiment the suite writes <suite work_dir>/results.json: the experiments finished so far, their
// work_dirs, labels and results (what bevt-report reads when given the suite's work_dir).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "stages.h"

namespace bevt::host::train {

struct SuitePlan {
  std::vector<StagePlan> stages;                            // in the order they run
  std::vector<std::pair<std::string, std::string>> labels;  // (row, column) per stage; "" = bevt-report's default
  std::string work_dir, reference, title;
};

// Reads the suite and loads and checks every experiment (plan_stage), and that no two write one work_dir.
// Throws UserError naming the file and line.
SuitePlan plan_suite(const std::string& dir, const StageOptions& opts);

// Runs the suite; returns 0, or throws the first failing experiment's error.
int run_suite(const std::string& dir, const StageOptions& opts);

}  // namespace bevt::host::train
