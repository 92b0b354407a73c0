// Evaluation of a classifier: multi-view testing with probabilities averaged over views, top-1/top-5,
// per-class accuracy, the confusion matrix, accuracy per class family (class names "family/name"), and the
// paper's temporal probes (one frame repeated over the clip; frames shuffled in time).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host/data/loader.h"
#include "model.h"

namespace bevt::host::train {

enum class Probe { None, SingleFrame, Shuffled };
const char* probe_name(Probe p);

struct EvalResult {
  double top1 = 0, top5 = 0;
  int64_t samples = 0;
  std::vector<double> per_class;            // accuracy per class (NaN-free: classes without samples get -1)
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  std::map<std::string, double> per_family;  // "motion" → accuracy
  nlohmann::json to_json(const std::vector<std::string>& class_names) const;
};

// Classifier logits of a batch input [B,3,T,H,W] (or [B,V,3,T,H,W]: views averaged as probabilities).
torch::Tensor class_probabilities(TrainModel& model, const torch::Tensor& input);

// Runs the model (eval mode, no grad) over every batch of `loader`'s epoch 0, with an optional probe applied
// to each clip (the shuffle permutation is drawn from (seed, index)).
EvalResult evaluate(TrainModel& model, Loader& loader, const std::vector<std::string>& class_names,
                    const torch::Device& device, Probe probe = Probe::None, uint64_t seed = 0);

}  // namespace bevt::host::train
