// The weight files a run starts from (init.checkpoint, a tokenizer's weights, a perceptual network...) and a
// digest of each. A run records them in work_dir/inputs.json and results.json; a pipeline or suite compares
// them with the files as they are now. So a stage reruns when a file it read has changed since (its upstream
// stage was rerun with another recipe), not only when its own experiment changed; and it is skipped when the
// upstream rerun wrote the same weights.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace bevt::host::train {

// (dotted key, value): Experiment::weight_candidates, the string values that may name weight files.
using InputCandidates = std::vector<std::pair<std::string, std::string>>;

// {"<key>": {"file": "<resolved file>", "digest": "<16 hex>"}} for each candidate naming an existing file, a
// checkpoint folder or a work_dir with checkpoints (resolved as init.checkpoint is: its last checkpoint's
// ema.safetensors or model.safetensors). Other values (plugin names, devices, missing paths) are left out.
nlohmann::json input_digests(const InputCandidates& candidates);

// The keys whose file differs between two input_digests results (a key present in one only counts), sorted.
std::vector<std::string> changed_inputs(const nlohmann::json& recorded, const nlohmann::json& now);

}  // namespace bevt::host::train
