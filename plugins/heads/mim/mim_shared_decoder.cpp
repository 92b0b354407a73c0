#include "mim_shared_decoder.h"

#include <fmt/format.h>

#include "bevt/backbone.h"
#include "bevt/error.h"

namespace bevt::mim {

std::vector<KeySpec> head_keys() {
  return {key("vocab_size", int64_t{0},
              "tokenizer vocabulary for cls_head.lm_head logits; 0 = the tokenizer's (BuildContext), or none: "
              "the normalised decoder features are returned"),
          key("decoder", "auto",
              "auto | fpn | tokens: fpn = BEVT's official decoder on stage3 + stage4 (hierarchical backbones); "
              "tokens = each token of the backbone's output predicts its own target (one-scale backbones such as "
              "TimeSformer: final norm, then cls_head.lm_head); auto = fpn when the backbone has stage3 and "
              "stage4, tokens otherwise")};
}

MimHeadBase::MimHeadBase(const Config& cfg, const BuildContext& ctx, const char* name) {
  if (!ctx.backbone)
    throw UserError(fmt::format("{}: needs a backbone (its feature channels); build it with the backbone's spec",
                                name));
  const auto& spec = *ctx.backbone;
  const bool hierarchical = spec.has_stage("stage3") && spec.has_stage("stage4");
  const std::string kind = cfg.get_string("decoder");
  if (kind == "auto") {
    decoder_ = hierarchical ? Decoder::Fpn : Decoder::Tokens;
  } else if (kind == "fpn") {
    decoder_ = Decoder::Fpn;
  } else if (kind == "tokens") {
    decoder_ = Decoder::Tokens;
  } else {
    throw UserError(fmt::format("{}: decoder must be auto, fpn or tokens, got '{}'", cfg.where("decoder"), kind));
  }
  int64_t in_channels = 0;
  if (decoder_ == Decoder::Fpn) {
    if (!hierarchical)
      throw UserError(fmt::format("{}: decoder = \"fpn\" needs stage3/stage4 features, which this backbone does not "
                                  "have (BEVT's official decoder is for a 4-stage hierarchical backbone such as "
                                  "video_swin); use decoder = \"tokens\" or \"auto\"",
                                  cfg.where("decoder")));
    c3 = spec.stage("stage3").channels;
    c4 = spec.stage("stage4").channels;
    in_channels = c4;
  } else {
    if (spec.output.empty())
      throw UserError(fmt::format("{}: the backbone names no output feature (spec().output)", name));
    const StageSpec& st = spec.stage(spec.output);
    if (st.stride[1] <= 0 || st.stride[2] <= 0)
      throw UserError(fmt::format("{}: the tokens decoder needs a feature on a token grid, but the backbone's output "
                                  "'{}' is global (no spatial stride)",
                                  name, st.name));
    token_feature = st.name;
    token_feature_normalised = st.normalised;
    token_stride = st.stride;
    in_channels = st.channels;
  }
  vocab = cfg.get_int("vocab_size", 0);
  if (vocab <= 0) vocab = ctx.vocab_size;
  if (vocab < 0) throw UserError(fmt::format("{}: vocab_size must be >= 0, got {}", name, vocab));
  if (vocab > 0) {
    auto ch = std::make_shared<torch::nn::Module>();
    lm_head = ch->register_module("lm_head", torch::nn::Linear(in_channels, vocab));
    init_linear(lm_head);
    register_module("cls_head", ch);
  }
}

torch::Tensor MimHeadBase::finish(torch::Tensor x, Backbone& backbone, bool normalised) {
  x = x.reshape({x.size(0), -1, x.size(-1)});
  if (rows_.defined()) {
    // The final norm and lm_head act on each position alone: running them on the kept rows gives those rows'
    // values (the loss's), at the cost of those rows only.
    check_head_positions(x.size(1), rows_positions_);
    x = x.reshape({-1, x.size(-1)}).index_select(0, rows_);
  }
  if (!normalised) x = backbone.final_norm(x);
  if (vocab > 0) return lm_head->forward(x);
  return x;
}

torch::Tensor MimHeadBase::forward_at(const Features& features, Backbone& backbone, const torch::Tensor& cells,
                                      int64_t positions) {
  struct Reset {
    MimHeadBase& h;
    ~Reset() { h.rows_ = torch::Tensor(); }
  } reset{*this};
  rows_ = cells;
  rows_positions_ = positions;
  return forward(features, backbone);
}

torch::Tensor MimHeadBase::predict_tokens(const Features& f, Backbone& backbone, int64_t dims, const char* name) {
  const auto& x = f.at(token_feature);
  if (x.dim() != dims)
    throw UserError(fmt::format("{}: expects the backbone's '{}' as [B,C,{}], got {} dims", name, token_feature,
                                dims == 5 ? "T,H,W" : "H,W", x.dim()));
  return finish(channels_last(x), backbone, token_feature_normalised);
}

LoadReport MimHeadBase::load_weights(const TensorMap& tensors, const LoadOptions& opts) {
  TensorMap t = strip_prefixes(tensors, {"module."});
  bool whole = false;
  for (auto& [k, v] : t) whole = whole || k.rfind("backbone.", 0) == 0;
  std::vector<std::string> roots;
  for (auto& item : named_children()) roots.push_back(item.key() + ".");
  TensorMap mine;
  for (auto& [k, v] : t) {
    std::string n = k;
    if (whole && k.rfind("backbone.", 0) == 0) n = k.substr(9);
    else if (whole && k.rfind("cls_head.lm_head.", 0) != 0) continue;
    for (auto& r : roots)
      if (n.rfind(r, 0) == 0) mine[n] = v;
  }
  LoadOptions lo = opts;
  lo.strip_prefixes = {};
  return load_state_dict(*this, mine, lo);
}

void init_linear(const torch::nn::Linear& l, double std) {
  torch::NoGradGuard ng;
  // timm truncates at ±2 absolute, 100 std away: clamping is the same distribution.
  l->weight.normal_(0, std).clamp_(-2, 2);
  if (l->bias.defined()) l->bias.zero_();
}

torch::Tensor channels_last(const torch::Tensor& x) {
  std::vector<int64_t> perm{0};
  for (int64_t i = 2; i < x.dim(); ++i) perm.push_back(i);
  perm.push_back(1);
  return x.permute(perm);
}

}  // namespace bevt::mim
