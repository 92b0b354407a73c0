// Run modes (run.mode) and the functions that carry them out. Each trainer registers its runner here; the
// host looks the mode up before it writes anything into work_dir.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compose.h"

namespace bevt::host {

struct RunContext {
  Config& root;
  const RunSettings& run;
  Composition& composition;
  const Registry& registry;
  std::string experiment_path;
  bool resume = false;
  std::string config_hash;  // experiment_hash of the experiment as written
  std::string run_hash;     // the same with the run length (results.json: what pipelines and suites compare)
  nlohmann::json inputs = nlohmann::json::object();  // weight files read, with digests (train/inputs.h)
};

// Registers the built-in run modes (pretrain, finetune, test, probe, tokenizer).
void register_builtin_runners();

using Runner = std::function<int(const RunContext&)>;

void register_runner(const std::string& mode, Runner runner);
// Throws UserError naming the modes this build can run.
const Runner* find_runner(const std::string& mode, const std::string& where);

}  // namespace bevt::host
