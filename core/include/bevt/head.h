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
  // forward() at some positions only: rows `cells` [M] (int64, on the features' device) of its output
  // [B, L, out] flattened to [B * L, out], for `positions` = L (a UserError when the head predicts another
  // number). Pre-training reads only the masked cells: a head whose last layers act per position (BEVT's
  // decoders: the backbone's final norm and cls_head.lm_head) overrides it to run them on those rows alone, as
  // the official head indexes x[bool_masked_pos] before lm_head. The default runs forward() and gathers.
  virtual torch::Tensor forward_at(const Features& features, Backbone& backbone, const torch::Tensor& cells,
                                   int64_t positions);
  virtual LoadReport load_weights(const TensorMap& tensors, const LoadOptions& opts = {});
  virtual TensorMap export_weights() const;
};

// UserError unless a head's `predicted` positions per sample (-1: its output is not [B, L, out]) equal the
// targets' `positions`: the check every forward_at() makes.
void check_head_positions(int64_t predicted, int64_t positions);

template <>
struct KindOf<Head> {
  static constexpr Kind value = Kind::Head;
};

}  // namespace bevt
