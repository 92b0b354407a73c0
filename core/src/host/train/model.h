// The trained model: one backbone and named heads, with parameters under the official checkpoint names
// (backbone.* for the encoder and BEVT's decoders, cls_head.* for classifiers), so a bevt checkpoint is laid
// out as an official mmaction/BEVT one and loads both ways.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bevt/backbone.h"
#include "bevt/head.h"
#include "host/compose.h"
#include "model_load.h"
#include "optim.h"

namespace bevt::host::train {

struct TrainModel {
  std::shared_ptr<Backbone> backbone;
  std::map<std::string, std::shared_ptr<Head>> heads;  // by slot: "image", "video", "cls"
  // Parameters sharing storage with an earlier one (a tied cls_head.lm_head): their gradients are added to the
  // primary's before the optimiser step, and they are not optimised twice.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> aliases;  // (alias, primary)
  // A module trained on its own (run.mode = "tokenizer"), under its own parameter names.
  std::shared_ptr<torch::nn::Module> standalone;

  std::vector<NamedParam> parameters() const;  // trainable, deduplicated, official names
  TensorMap state() const;                     // parameters and buffers, official names
  // Loads a state written by state() or an official whole-model checkpoint (mmcv's state_dict): strict apart
  // from the tensors model_load.h lists (pre-training-only ones on either side, mmcv EMA buffers, rebuilt
  // buffers), which the report names. UserError naming the tensors otherwise missing, unexpected or mis-shaped.
  ModelLoadReport load_state(const TensorMap& tensors, const std::string& source);
  void train(bool on);
  void fold_alias_grads();
  // Moves every module, then ties each alias to its primary again: Module::to gives every parameter its own new
  // storage, which would silently untie a shared classifier (and optimise two copies of it).
  void to(const torch::Device& device);
  void to(torch::ScalarType dtype);
  void retie();
};

// model.backbone plus every table under model.heads; with tie_lm_head, heads that each hold a
// cls_head.lm_head of the same shape share the first one's (BEVT's one vocabulary classifier).
TrainModel assemble_model(const Composition& comp, bool tie_lm_head);
// The tying itself: every head's cls_head.lm_head of the first one's shape shares its storage (an alias).
void tie_lm_heads(TrainModel& m);

}  // namespace bevt::host::train
