// Tokenizer interface: images in [0, 1] to discrete token ids, the targets of masked image/video modelling.
// Frozen by default (eval, no grad); a trainable tokenizer also reports its training loss (mode "tokenizer").
#pragma once

#include <map>
#include <memory>
#include <string>

#include "bevt/plugin.h"
#include "bevt/state_dict.h"
#include "bevt/tensor_map.h"

namespace bevt {

struct TokenizerLoss {
  torch::Tensor total;                          // what the optimiser minimises
  std::map<std::string, torch::Tensor> terms;   // logged parts (reconstruction, commitment, ...)
  // Adversarial training only: the adversary's (discriminator's) loss on the same batch, computed from
  // detached images so that its gradients reach only adversary()'s parameters; undefined when the tokenizer
  // has no adversary or its adversarial term is not active at this step.
  torch::Tensor adversary;
};

class Tokenizer : public torch::nn::Module {
 public:
  ~Tokenizer() override = default;

  virtual int64_t vocab_size() const = 0;
  virtual int64_t input_size() const = 0;  // side of the square input it expects (112 for DALL-E in BEVT)
  virtual int64_t downsample() const = 0;  // input pixels per token side
  // The tokenizer's own input mapping of [0,1] images (DALL-E: map_pixels).
  virtual torch::Tensor prepare(const torch::Tensor& images) { return images; }
  // Logits [N, vocab, h, w] of prepared images.
  virtual torch::Tensor logits(const torch::Tensor& prepared) = 0;
  // Token ids [N, h, w] (int64) of images [N, 3, H, W] in [0, 1]; checks range and shape (UserError).
  virtual torch::Tensor tokenize(const torch::Tensor& images);

  // Regression targets instead of token ids (MAE's normalised pixels, MaskFeat's HOG): target_dim() > 0 values
  // per cell from targets() [N, target_dim, h, w] (float); the decoders' lm_head then has that many outputs
  // (vocab_size() returns target_dim()) and pre-training minimises the masked mean squared error. 0 = token ids.
  virtual int64_t target_dim() const { return 0; }
  virtual torch::Tensor targets(const torch::Tensor& images);  // default: UserError (a token tokenizer)

  virtual bool trainable() const { return false; }
  virtual TokenizerLoss training_loss(const torch::Tensor& images);  // default: UserError (frozen tokenizer)
  // The host's optimiser step (0-based) that the next training_loss() calls belong to, set before them: a
  // tokenizer whose loss changes with the step (an adversarial term switched on at a start step) reads it.
  virtual void set_train_step(int64_t /*step*/) {}

  // Adversarial training (PeCo / VQGAN: a patch discriminator on the reconstruction). A trainable tokenizer
  // may own a second network trained against it. It is not a sub-module: absent from parameters(), the state
  // dict and export_weights(), so the frozen tokenizer never needs it. In run.mode = "tokenizer" the host
  // moves it to the device, optimises its parameters with a second optimiser on TokenizerLoss::adversary after
  // each tokenizer step (the [optim] settings, learning rate times adversary_lr_mult()), and keeps its state
  // and that optimiser's in the checkpoints (as "discriminator.*"). nullptr = no adversary.
  virtual std::shared_ptr<torch::nn::Module> adversary() { return nullptr; }
  virtual double adversary_lr_mult() const { return 1.0; }
  virtual LoadReport load_weights(const TensorMap& tensors, const LoadOptions& opts = {});
  virtual TensorMap export_weights() const;
  // Whether it was built from trained weights. Pre-training warns when not: a randomly initialised
  // tokenizer's targets are near-trivial (the copy baseline reaches 0.99 on the synthetic data).
  virtual bool has_trained_weights() const { return true; }
};

// Throws UserError "<who> must be in [0,1], got values in [lo,hi] ..." when `images` (a host tensor) leaves
// [0, 1] or holds NaN. Reads the values, so it does nothing for a tensor on an accelerator: the step never waits
// for it (the pre-training runner checks its views on the host, before the copy).
void check_unit_range(const torch::Tensor& images, const std::string& who);

// The ITU-R BT.601 luminance 0.299 R + 0.587 G + 0.114 B of images [N, 3, H, W], as [N, 1, H, W] in their own
// range (the weights sum to 1): what tokenizers that ignore colour (vq's input = "luma", pixels' luma) start from.
torch::Tensor luminance(const torch::Tensor& images);

template <>
struct KindOf<Tokenizer> {
  static constexpr Kind value = Kind::Tokenizer;
};

}  // namespace bevt
