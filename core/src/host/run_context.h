// What a run mode's function receives: the typed experiment, its built components and the registry.
#pragma once

#include <nlohmann/json.hpp>

#include "compose.h"
#include "host/config/experiment.h"
#include "registry.h"

namespace bevt::host {

struct RunContext {
  const Experiment& exp;
  const RunSettings& run;  // exp.run
  Composition& composition;
  const Registry& registry;
  bool resume = false;
  std::string resume_from;  // --resume PATH: a checkpoint folder or a work_dir ("": this run's work_dir)
  nlohmann::json inputs = nlohmann::json::object();  // weight files read, with digests (train/inputs.h)
  std::string run_dir;           // work_dir/runs/<stamp>: this run's log, metrics, events (rank 0; train/run_folder.h)
  std::string previous_run_dir;  // the run folder `latest` named before ("" when none): --resume continues its metrics
  std::string dump_path;         // test / probe: every video's probabilities to this JSONL file (--dump)
};

}  // namespace bevt::host
