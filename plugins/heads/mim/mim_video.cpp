// Video decoder. fpn (hierarchical backbone): fpn_s.0 = ConvTranspose3d k=s=(1,2,2) on stage4, concat
// [stage3, up], lm_down_st.0 Linear(12C,8C), fpn_t.0 = ConvTranspose3d k=s=(2,1,1), the backbone's final norm
// -> [B, 2T*H3*W3, 8C] in (t, h, w) token order (or logits).
// tokens (one-scale backbone without temporal downsampling): the output tokens [B, C, T, H, W] ->
// [B, T*H*W, C] in (t, h, w) order (or logits): one prediction per frame, see mim_shared_decoder.h.
#include "mim_video.h"

#include <fmt/format.h>

#include "bevt/backbone.h"
#include "bevt/error.h"

namespace bevt::mim {

MimVideoHead::MimVideoHead(const Config& cfg, const BuildContext& ctx) : MimHeadBase(cfg, ctx, "mim_video") {
  if (decoder_ == Decoder::Tokens) {
    if (token_stride[0] != 1)
      throw UserError(fmt::format("{}: the tokens decoder predicts one token per frame, so the backbone's output "
                                  "'{}' must keep every frame (temporal stride 1), but its stride is {}; use a "
                                  "backbone without temporal downsampling or decoder = \"fpn\"",
                                  cfg.where("decoder"), token_feature, token_stride[0]));
    return;
  }
  using torch::nn::ConvTranspose3d;
  using torch::nn::ConvTranspose3dOptions;
  fpn_s = register_module("fpn_s", torch::nn::Sequential(ConvTranspose3d(
                                       ConvTranspose3dOptions(c4, c4, {1, 2, 2}).stride({1, 2, 2}))));
  torch::nn::Linear down(c3 + c4, c4);
  init_linear(down);
  lm_down_st = register_module("lm_down_st", torch::nn::Sequential(down));
  fpn_t = register_module("fpn_t", torch::nn::Sequential(ConvTranspose3d(
                                       ConvTranspose3dOptions(c4, c4, {2, 1, 1}).stride({2, 1, 1}))));
}

torch::Tensor MimVideoHead::forward(const Features& f, Backbone& backbone) {
  if (decoder_ == Decoder::Tokens) return predict_tokens(f, backbone, 5, "mim_video");
  const auto& x3 = f.at("stage3");
  const auto& x4 = f.at("stage4");
  if (x3.dim() != 5 || x4.dim() != 5)
    throw UserError(fmt::format("mim_video: expects video features [B,C,T,H,W], got stage3 with {} dims", x3.dim()));
  auto up = fpn_s->forward(x4);
  up = up.narrow(3, 0, x3.size(3)).narrow(4, 0, x3.size(4));
  auto x = lm_down_st->forward(torch::cat({channels_last(x3), channels_last(up)}, -1));  // [B,T,H,W,C]
  x = fpn_t->forward(x.permute({0, 4, 1, 2, 3}));                                          // [B,C,2T,H,W]
  return finish(channels_last(x), backbone);
}

}  // namespace bevt::mim
