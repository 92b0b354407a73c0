// Backbone interface: video clips (and, where the backbone has one, images) to a named feature pyramid.
// Layout of every feature is [B, C, T, H, W] for video and [B, C, H, W] for images. A mask, when given, is a
// bool tensor [B, t, h, w] (video) or [B, h, w] (image) on any grid that divides the token grid; the backbone
// nearest-upsamples it and replaces masked tokens by its mask token (BEVT, BEiT).
#pragma once

#include "bevt/backbone_spec.h"
#include "bevt/features.h"
#include "bevt/plugin.h"
#include "bevt/state_dict.h"
#include "bevt/tensor_map.h"

namespace bevt {

class Backbone : public torch::nn::Module {
 public:
  ~Backbone() override = default;

  virtual BackboneSpec spec() const = 0;
  virtual Features forward_video(const torch::Tensor& clip, const torch::Tensor& mask = {}) = 0;
  // Default: UserError saying this backbone has no image path.
  virtual Features forward_image(const torch::Tensor& image, const torch::Tensor& mask = {});
  // The backbone's final normalisation on channels-last tokens [..., C]; BEVT's decoders reuse it.
  virtual torch::Tensor final_norm(const torch::Tensor& x);
  virtual void set_grad_checkpointing(bool on) {}
  // Loads official weights (names as the official state dict). Backbones override this to accept
  // inflated or resized checkpoints; the default is load_state_dict.
  virtual LoadReport load_weights(const TensorMap& tensors, const LoadOptions& opts = {});
  // Weights under the official names (default: state_dict()).
  virtual TensorMap export_weights() const;
  // Layer-wise lr decay (BEiT, BEVT's K400 fine-tune): the depth level of a parameter, named as in
  // export_weights() without a "backbone." prefix, in [0, num_layer_levels()); the head sits at level
  // num_layer_levels() and a parameter at level i gets lr × decay^(num_layer_levels() − i). The default
  // (0 levels) means the backbone defines no levels and layer decay is refused with an error.
  virtual int64_t num_layer_levels() const { return 0; }
  virtual int64_t layer_level(const std::string& param_name) const;
};

template <>
struct KindOf<Backbone> {
  static constexpr Kind value = Kind::Backbone;
};

// Nearest-upsamples a bool mask [B, (t,) h, w] to `grid` [(t,) h, w] (each an integer multiple).
torch::Tensor upsample_mask(const torch::Tensor& mask, const std::vector<int64_t>& grid);

}  // namespace bevt
