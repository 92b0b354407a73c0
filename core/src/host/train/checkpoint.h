// Checkpoints: work_dir/checkpoints/step_<N>/{model,optim}.safetensors + trainer.json, written into a
// temporary folder and renamed into place (a killed run never leaves a half checkpoint); checkpoints/last
// names the newest complete one; older ones beyond keep_last are removed (the best is kept).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "bevt/tensor_map.h"

namespace bevt::host::train {

struct Checkpoint {
  std::string dir;
  TensorMap model, optim;
  TensorMap ema;  // averaged weights (ema.safetensors), empty without optim.ema
  nlohmann::json trainer;
};

void save_checkpoint(const std::string& work_dir, int64_t step, const TensorMap& model, const TensorMap& optim,
                     const nlohmann::json& trainer, int64_t keep_last, const TensorMap& ema = {});
// checkpoints/best/{model.safetensors, best.json}: the weights of the best evaluation so far (replaced
// atomically; keep_last never removes it).
void save_best(const std::string& work_dir, const TensorMap& model, const nlohmann::json& info);
// The folder checkpoints/last names when it is complete, else the newest complete checkpoints/step_N, if any.
std::optional<std::string> last_checkpoint(const std::string& work_dir);
// A run that starts from step 0 moves an earlier run's checkpoints/ to checkpoints.earlier/ (replacing an
// older one), so that keep_last, --resume and init.checkpoint never mix two runs' folders and a fresh run
// started by mistake loses nothing. Returns the new place, or nothing when there was nothing to move.
std::optional<std::string> set_aside_checkpoints(const std::string& work_dir);
Checkpoint load_checkpoint(const std::string& dir);  // throws UserError naming the missing or bad file
// A model file: a checkpoint folder (its ema.safetensors when it has one, else model.safetensors), a work_dir
// (its last checkpoint) or a file.
std::string resolve_model_file(const std::string& path, const std::string& where);

// Writes text atomically (results.json, last, ...).
void write_text_atomic(const std::string& path, const std::string& text);

// Appends one JSON object per line to <run_dir>/metrics.jsonl. A resumed run starts its file with the records
// of `resume_source` (the previous run's metrics.jsonl) up to `resume_step`, so each run folder holds the
// whole curve of its run; "" starts empty.
class MetricsLog {
 public:
  MetricsLog(const std::string& run_dir, const std::string& resume_source, int64_t resume_step);
  void write(const nlohmann::json& record);

 private:
  std::string path_;
};


}  // namespace bevt::host::train
