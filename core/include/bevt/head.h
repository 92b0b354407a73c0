// Head interface: a feature pyramid to logits. MIM/MVM decoders map to vocabulary logits on the target grid,
// classification heads to class logits. Input channels come from BuildContext::backbone.
#pragma once

#include "bevt/features.h"
#include "bevt/plugin.h"
#include "bevt/state_dict.h"
#include "bevt/tensor_map.h"

namespace bevt {

class Backbone;

class Head : public torch::nn::Module {
 public:
  ~Head() override = default;
  // `backbone` gives access to shared pieces (BEVT's decoders reuse its final norm).
  virtual torch::Tensor forward(const Features& features, Backbone& backbone) = 0;
  virtual LoadReport load_weights(const TensorMap& tensors, const LoadOptions& opts = {});
  virtual TensorMap export_weights() const;
};

template <>
struct KindOf<Head> {
  static constexpr Kind value = Kind::Head;
};

}  // namespace bevt
