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

// What a checkpoint's compatibility rests on: the experiment as written (bases merged, overrides applied,
// before defaults are filled in) without the keys that cannot change the numbers a step computes: the run
// length (run.max_steps, run.epochs: a resumed run may go longer), where and how often it writes
// (run.work_dir, log_every, ckpt_every, keep_last), performance settings (run.threads, loader.workers,
// loader.prefetch, the dist timeout, bucket size and overlap), the metrics sinks ([log]), the evaluation
// interval (finetune.eval_every)
// and the GPU index (run.device cuda:N counts as cuda). As TOML text with sorted keys. With `with_length` the
// run length counts too (results.json's "run_hash": a plan reruns a stage whose schedule grew).
std::string hashed_text(const Config& root, bool with_length = false);

// Stable digest of hashed_text: checkpoints carry it (resume refuses another), results.json its run-length one.
std::string experiment_hash(const Config& root, bool with_length = false);

// The dotted keys whose values differ between two hashed_text()s (present in one only counts), sorted.
std::vector<std::string> changed_keys(const std::string& toml_a, const std::string& toml_b);

}  // namespace bevt::host
