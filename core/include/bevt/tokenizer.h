// Tokenizer interface: images in [0, 1] to discrete token ids, the targets of masked image/video modelling.
// Frozen by default (eval, no grad); a trainable tokenizer also reports its training loss (mode "tokenizer").
#pragma once

#include <map>
#include <string>

#include "bevt/plugin.h"
#include "bevt/state_dict.h"
#include "bevt/tensor_map.h"

namespace bevt {

struct TokenizerLoss {
  torch::Tensor total;                          // what the optimiser minimises
  std::map<std::string, torch::Tensor> terms;   // logged parts (reconstruction, commitment, ...)
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

  virtual bool trainable() const { return false; }
  virtual TokenizerLoss training_loss(const torch::Tensor& images);  // default: UserError (frozen tokenizer)
  virtual LoadReport load_weights(const TensorMap& tensors, const LoadOptions& opts = {});
  virtual TensorMap export_weights() const;
};

template <>
struct KindOf<Tokenizer> {
  static constexpr Kind value = Kind::Tokenizer;
};

}  // namespace bevt
