// One stage of a plan: an experiment file run in its own bevt-run process. A stage whose work_dir/results.json
// carries the experiment's hash, and whose weight inputs (init checkpoint, tokenizer...) are the files it read
// then, is finished and skipped; an interrupted one resumes from its last checkpoint when that checkpoint came
// from the same experiment. So rerunning a plan after a crash, a kill or a fixed input continues where it
// stopped.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "host/train/inputs.h"

namespace bevt::host::orchestrate {

struct StageOptions {
  std::vector<std::string> overrides;    // --set KEY=VALUE, applied to every stage (and part of its hash)
  std::vector<std::string> plugin_dirs;  // --plugin-dir, passed on to every stage
};

struct StagePlan {
  std::string name;      // as the plan lists it
  std::string file;      // the experiment file
  std::string hash;      // experiment_hash with the overrides applied (checkpoints: resume)
  std::string run_hash;  // the same with the run length (results.json: finished)
  std::string work_dir;  // resolved run.work_dir
  train::InputCandidates inputs;  // values that may name weight files it reads (compared when deciding to skip)
};

struct StageOutcome {
  nlohmann::json results;  // the stage's results.json
  bool skipped = false;    // finished earlier with the same experiment
};

// Loads and checks the experiment file (bases, overrides, host tables), so that a typo in a later stage fails
// before any earlier stage runs. Throws UserError naming the file and line.
StagePlan plan_stage(const std::string& name, const std::string& file, const StageOptions& opts);

// The results of a finished stage (results.json holding plan.run_hash, read from weight files that have not
// changed since), if there are any.
std::optional<nlohmann::json> finished_results(const StagePlan& plan);

// Runs the stage unless it has finished. A failed stage throws: UserError when it exited with status 2 (bad
// input), RunError otherwise, naming the stage and telling the user to rerun to resume.
StageOutcome run_stage(const StagePlan& plan, const StageOptions& opts);

}  // namespace bevt::host::orchestrate
