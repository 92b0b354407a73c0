// The typed Experiment: an experiment file (bases merged, --set overrides applied) turned once into typed
// settings and component tables, every key checked before any work. It is the only thing the rest of the
// host reads: no code outside src/host/config looks at the TOML tree.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "bevt/config.h"
#include "components.h"
#include "sections.h"

namespace bevt::host {

struct Experiment {
  std::string file;          // the experiment file as given
  std::string config_hash;   // experiment_hash as written: checkpoints carry it (resume refuses another)
  std::string run_hash;      // the same with the run length: results.json (plans compare it)
  std::string hashed_text;   // what config_hash digests (checkpoints keep it to name a changed key)

  RunSettings run;
  OptimSettings optim;
  LoaderSettings loader;
  PretrainSettings pretrain;
  FinetuneSettings finetune;
  InitSettings init;
  DistSettings dist;
  LogSettings log;
  std::vector<ComponentTable> components;  // at known slots; their plugins are resolved by compose()

  // String values outside [run] and [data.*] that may name weight files (train/inputs.h decides which do).
  std::vector<std::pair<std::string, std::string>> weight_candidates;

  // Loads, merges and checks `file`: host tables typed and validated (unknown keys named with file, table,
  // key and the nearest valid key), component tables at known slots, run.mode known and the component slots
  // it needs present. Throws UserError (exit 2).
  static Experiment load(const std::string& file, const std::vector<std::string>& overrides);

  // "file:line" of a dotted key ("init.checkpoint") or table ("loader"), for messages; the file when unknown.
  std::string where(const std::string& dotted) const;
  // The resolved experiment (defaults filled in) as TOML: work_dir/config.toml, --dry-run, the rank handshake.
  std::string resolved_toml() const { return tree_.to_toml(); }

 private:
  Config tree_;
};

}  // namespace bevt::host
