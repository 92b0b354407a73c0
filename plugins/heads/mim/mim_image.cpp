// Image decoder. fpn (hierarchical backbone): fpn.0 = ConvTranspose2d(8C,8C,k2,s2) on stage4, concat
// [stage3, up] on channels, lm_down Linear(12C,8C), the backbone's final norm -> [B, H3*W3, 8C] (or logits).
// tokens (one-scale backbone): the output tokens [B, C, H, W] -> [B, H*W, C] (or logits), see mim_shared_decoder.h.
#include "mim_image.h"

#include <fmt/format.h>

#include "bevt/backbone.h"
#include "bevt/error.h"

namespace bevt::mim {

MimImageHead::MimImageHead(const Config& cfg, const BuildContext& ctx) : MimHeadBase(cfg, ctx, "mim_image") {
  if (decoder_ != Decoder::Fpn) return;
  fpn = register_module("fpn", torch::nn::Sequential(torch::nn::ConvTranspose2d(
                                   torch::nn::ConvTranspose2dOptions(c4, c4, 2).stride(2))));
  lm_down = register_module("lm_down", torch::nn::Linear(c3 + c4, c4));
  init_linear(lm_down);
}

torch::Tensor MimImageHead::forward(const Features& f, Backbone& backbone) {
  if (decoder_ == Decoder::Tokens) return predict_tokens(f, backbone, 4, "mim_image");
  const auto& x3 = f.at("stage3");
  const auto& x4 = f.at("stage4");
  if (x3.dim() != 4 || x4.dim() != 4)
    throw UserError(fmt::format("mim_image: expects image features [B,C,H,W], got stage3 with {} dims", x3.dim()));
  auto up = fpn->forward(x4);
  // Official sizes match exactly; an odd stage-3 grid leaves one extra row/column, cropped here.
  up = up.narrow(2, 0, x3.size(2)).narrow(3, 0, x3.size(3));
  auto x = torch::cat({channels_last(x3), channels_last(up)}, -1);
  return finish(lm_down->forward(x), backbone);
}

}  // namespace bevt::mim
