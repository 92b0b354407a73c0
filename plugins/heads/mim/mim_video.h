#pragma once
#include "mim_shared_decoder.h"

namespace bevt::mim {

class MimVideoHead : public MimHeadBase {
 public:
  static std::vector<KeySpec> keys() { return head_keys(); }
  MimVideoHead(const Config& cfg, const BuildContext& ctx);
  torch::Tensor forward(const Features& features, Backbone& backbone) override;

  torch::nn::Sequential fpn_s{nullptr}, lm_down_st{nullptr}, fpn_t{nullptr};
};

}  // namespace bevt::mim
