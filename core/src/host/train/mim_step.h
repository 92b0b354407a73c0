// One stream of BEVT's pre-training iteration, as the official BEVTMultiSource.train_step computes it: targets
// from the frozen tokenizer on the stream's tokenizer view, the encoder on the masked input, the stream's
// decoder, then cross-entropy and accuracy over the masked cells (mim_metrics). The pretrain runner calls it
// for every batch; the device-placement tests call the same function with every tensor on the meta device.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <string>

#include "bevt/backbone.h"
#include "bevt/head.h"
#include "bevt/tokenizer.h"

namespace bevt::host::train {

// The mask of a batch for a token grid (t, h, w) (images: t = 1): bool [B, t, h, w] on the model's device.
using MaskForGrid = std::function<torch::Tensor(const std::array<int64_t, 3>& grid)>;

// stream: "image" (input [B,3,H,W], view [B,3,h,w]) or "video" (input [B,3,T,H,W], view [B,T,3,h,w], a target
// per frame). Returns loss_<stream>, acc_<stream> and copy_<stream>; with `targets`, also stores there the
// tokenizer's targets [B, L] (int64; video: L = T·h·w in (t, h, w) order), which are not a logged term. A
// regression tokenizer (target_dim() > 0): loss_<stream> is the masked mean squared error, zero_<stream> the
// error of predicting zeros, and the targets are [B, L, K] floats.
std::map<std::string, torch::Tensor> mim_stream_terms(const std::string& stream, Backbone& backbone, Head& head,
                                                      Tokenizer& tokenizer, const torch::Tensor& input,
                                                      const torch::Tensor& view, const MaskForGrid& mask_for,
                                                      torch::Tensor* targets = nullptr);

// Host tensor → device: pinned and non-blocking on CUDA (the copy overlaps the host's next work).
torch::Tensor to_device(const torch::Tensor& t, const torch::Device& device);

}  // namespace bevt::host::train
