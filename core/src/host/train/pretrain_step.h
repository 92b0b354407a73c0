// One BEVT pre-training iteration's forward, as the official BEVTMultiSource.train_step computes it: every
// stream through mim_stream_terms (targets from the frozen tokenizer, the shared encoder on the masked input,
// the stream's decoder and the shared lm_head, masked cross-entropy and accuracy), and the weighted sum of the
// stream losses as "loss". The pretrain runner calls it for every batch; bevt-forward calls the same function
// on the bevt_pretrain_step fixture, so a parity check of the fixture is a check of the trainer's step. The
// caller runs the backward (run_loop: scaled, accumulated; bevt-forward: plain).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "mim_step.h"

namespace bevt::host::train {

// One stream's batch, already on the model's device.
struct StreamBatch {
  std::string name;     // "image" | "video" (mim_stream_terms' layouts)
  double weight = 1;    // its loss's weight in "loss" (BEVT's loss_weight_2d / loss_weight_3d)
  Head* head = nullptr; // the stream's decoder
  torch::Tensor input, view;
  MaskForGrid mask_for;
};

// Returns every stream's loss_/acc_/copy_ terms (unweighted) and "loss" = Σ weight · loss_<stream>, in the
// order the streams are given. With `targets`, each stream's tokenizer targets [B, L] go there by stream name
// (not terms: the loop logs every term as a scalar).
std::map<std::string, torch::Tensor> pretrain_iteration(Backbone& backbone, Tokenizer& tokenizer,
                                                        const std::vector<StreamBatch>& streams,
                                                        std::map<std::string, torch::Tensor>* targets = nullptr);

}  // namespace bevt::host::train
