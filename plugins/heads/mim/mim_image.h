#pragma once
#include "mim_shared_decoder.h"

namespace bevt::mim {

class MimImageHead : public MimHeadBase {
 public:
  static std::vector<KeySpec> keys() { return head_keys(); }
  MimImageHead(const Config& cfg, const BuildContext& ctx);
  torch::Tensor forward(const Features& features, Backbone& backbone) override;

  torch::nn::Sequential fpn{nullptr};
  torch::nn::Linear lm_down{nullptr};
};

}  // namespace bevt::mim
