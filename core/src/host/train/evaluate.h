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
  double mean_class = 0;  // mean of the per-class accuracies over the classes that have samples (mmaction2's)
  int64_t samples = 0;
  int64_t views = 1;  // clips x crops per video, averaged as probabilities
  std::vector<double> per_class;            // accuracy per class (NaN-free: classes without samples get -1)
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  std::map<std::string, double> per_family;  // "motion" → accuracy
  nlohmann::json to_json(const std::vector<std::string>& class_names) const;
};

// Classifier logits of a batch input [B,3,T,H,W] (or [B,V,3,T,H,W]: views averaged as probabilities).
torch::Tensor class_probabilities(TrainModel& model, const torch::Tensor& input);

// One evaluated sample, as `bevt-test --dump` writes it.
struct Prediction {
  int64_t index = 0;  // dataset index
  std::string id;     // the dataset's id (a video's path)
  int64_t label = 0, pred = 0;
  std::vector<float> probs;  // class probabilities, averaged over the views
};

// Runs the model (eval mode, no grad) over every batch of `loader`'s epoch 0, with an optional probe applied
// to each clip (the shuffle permutation is drawn from (seed, index)). With `predictions`, every sample's
// probabilities too (on every rank, gathered from all ranks; in dataset order). `label` names the progress line.
EvalResult evaluate(TrainModel& model, Loader& loader, const std::vector<std::string>& class_names,
                    const torch::Device& device, Probe probe = Probe::None, uint64_t seed = 0,
                    std::vector<Prediction>* predictions = nullptr, const std::string& label = "evaluate");

}  // namespace bevt::host::train
