// Records that survive reruns (as mmengine keeps them): each run in a work_dir writes its log, metrics and
// TensorBoard events into a folder of its own, work_dir/runs/<YYYYmmdd_HHMMSS>, and work_dir/latest points at
// the newest. What a work_dir holds once (checkpoints, so --resume finds them; config.toml, inputs.json and
// results.json, which plans and bevt-report read as the work_dir's current state) stays at its top, with a copy
// of config.toml and results.json kept in the run's folder, so nothing an earlier run wrote is overwritten.
#pragma once

#include <string>

namespace bevt::host::train {

struct RunFolder {
  std::string dir;       // work_dir/runs/<stamp>: this run's records
  std::string previous;  // the folder `latest` named before this run ("" for the first run)
};

// Creates a fresh folder under work_dir/runs (a suffix _2, _3, ... when a run of the same second exists) and
// points work_dir/latest at it (a relative symbolic link, replaced atomically). Rank 0 only.
RunFolder open_run_folder(const std::string& work_dir);

// The newest run's record `name` in a work_dir: latest/<name>, or <name> at the top for work_dirs written
// before run folders existed.
std::string latest_record(const std::string& work_dir, const std::string& name);

}  // namespace bevt::host::train
