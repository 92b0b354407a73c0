// BEVT's masked-modelling decoders (kept inside SwinTransformerBEVT officially, Head plugins here): the
// shared part — the decoder kind and channels from the backbone spec, the optional vocabulary classifier
// `cls_head.lm_head`, and loading from whole BEVT checkpoints (backbone.fpn*, backbone.lm_down*,
// cls_head.lm_head.*).
//
// Two decoders, chosen from the backbone's spec (never from its name):
//   fpn     the official BEVT decoders on a hierarchical backbone's stage3 + stage4 (Video Swin);
//   tokens  a one-scale backbone (TimeSformer: one stage at patch stride, no temporal downsampling): every
//           token of spec().output predicts its own target, BEiT-style — the backbone's final norm (unless
//           the feature is already normalised) then cls_head.lm_head, no decoder layers.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "bevt/context.h"
#include "bevt/head.h"

namespace bevt::mim {

enum class Decoder { Fpn, Tokens };

std::vector<KeySpec> head_keys();

class MimHeadBase : public Head {
 public:
  MimHeadBase(const Config& cfg, const BuildContext& ctx, const char* name);
  LoadReport load_weights(const TensorMap& tensors, const LoadOptions& opts = {}) override;
  // The decoder up to its per-position tail, then the final norm and lm_head on the rows `cells` only.
  torch::Tensor forward_at(const Features& features, Backbone& backbone, const torch::Tensor& cells,
                           int64_t positions) override;
  Decoder decoder() const { return decoder_; }

 protected:
  // Final norm of the backbone (skipped for an already normalised feature), tokens flattened to [B, L, C],
  // then logits when a vocabulary is set.
  torch::Tensor finish(torch::Tensor x_channels_last, Backbone& backbone, bool normalised = false);
  // The tokens decoder: the feature `token_feature` [B, C, (T,) H, W] with `dims` dimensions → [B, (T·)H·W, V]
  // in (t, h, w) order.
  torch::Tensor predict_tokens(const Features& f, Backbone& backbone, int64_t dims, const char* name);

  Decoder decoder_ = Decoder::Fpn;
  std::string token_feature;            // tokens decoder: the feature read (the backbone's output)
  bool token_feature_normalised = false;
  std::array<int64_t, 3> token_stride{};
  int64_t c3 = 0, c4 = 0, vocab = 0;
  torch::nn::Linear lm_head{nullptr};

 private:
  // Set by forward_at() for the one forward() it runs: finish() then keeps these rows of [B * L, C].
  torch::Tensor rows_;
  int64_t rows_positions_ = 0;
};

// The official initialisation of a decoder Linear: SwinTransformerBEVT.init_weights' _init_weights (lm_down,
// lm_down_st.0) and BEVTMultiSourceHead.init_weights' mmcv trunc_normal_init (lm_head) both give the weight
// timm's trunc_normal_(std 0.02, bounds ±2 absolute) and the bias 0. The transposed convolutions (fpn, fpn_s,
// fpn_t) keep PyTorch's default (kaiming-uniform): the official init_weights only visits Linear and LayerNorm.
void init_linear(const torch::nn::Linear& l, double std = 0.02);

// [B,C,...] view -> channels-last.
torch::Tensor channels_last(const torch::Tensor& x);

}  // namespace bevt::mim
