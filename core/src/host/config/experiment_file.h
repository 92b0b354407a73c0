// Experiment files: TOML with `base = [...]` inheritance (deep merge; a table holding `_delete_ = true`
// replaces the inherited one instead of merging, as in mmengine), then `--set a.b.c=value` overrides, in that
// order. Source locations (file:line) survive merging so that validation errors name the line a user wrote.
#pragma once

#include <string>
#include <vector>

#include "bevt/config.h"

namespace bevt::host {

// Loads `path` with its bases and applies `overrides` ("dotted.key=value", value a TOML literal or a bare word).
Config load_experiment(const std::string& path, const std::vector<std::string>& overrides);

// A stable hash of an experiment as written (bases merged, overrides applied, before defaults are filled in),
// without the keys that do not change what a step computes (run.max_steps, epochs, work_dir, logging,
// checkpoint cadence, threads). Checkpoints carry it: resume refuses a changed experiment but may run longer.
// With `with_length` the run length (max_steps, epochs) counts too: results.json carries that one as
// "run_hash", and a pipeline or suite skips a stage only when its finished results match it, so a longer
// schedule is run again rather than skipped.
std::string experiment_hash(const Config& root, bool with_length = false);

}  // namespace bevt::host
