// BEVT's masked-modelling decoders (kept inside SwinTransformerBEVT officially, Head plugins here): the
// shared part — channels from the backbone spec, the optional vocabulary classifier `cls_head.lm_head`, and
// loading from whole BEVT checkpoints (backbone.fpn*, backbone.lm_down*, cls_head.lm_head.*).
#pragma once

#include <string>
#include <vector>

#include "bevt/context.h"
#include "bevt/head.h"

namespace bevt::mim {

std::vector<KeySpec> head_keys();

class MimHeadBase : public Head {
 public:
  MimHeadBase(const Config& cfg, const BuildContext& ctx, const char* name);
  LoadReport load_weights(const TensorMap& tensors, const LoadOptions& opts = {}) override;

 protected:
  // Final norm of the backbone, tokens flattened to [B, L, C], then logits when a vocabulary is set.
  torch::Tensor finish(torch::Tensor x_channels_last, Backbone& backbone);

  int64_t c3 = 0, c4 = 0, vocab = 0;
  torch::nn::Linear lm_head{nullptr};
};

// [B,C,...] view -> channels-last.
torch::Tensor channels_last(const torch::Tensor& x);

}  // namespace bevt::mim
