#include "mim_common.h"

#include <fmt/format.h>

#include "bevt/backbone.h"
#include "bevt/error.h"

namespace bevt::mim {

std::vector<KeySpec> head_keys() {
  return {key("vocab_size", int64_t{0},
              "tokenizer vocabulary for cls_head.lm_head logits; 0 = the tokenizer's (BuildContext), or none: "
              "the normalised decoder features are returned")};
}

MimHeadBase::MimHeadBase(const Config& cfg, const BuildContext& ctx, const char* name) {
  if (!ctx.backbone)
    throw UserError(fmt::format("{}: needs a backbone (its stage3/stage4 channels); build it with the backbone's spec",
                                name));
  const auto& spec = *ctx.backbone;
  if (!spec.has_stage("stage3") || !spec.has_stage("stage4"))
    throw UserError(fmt::format("{}: the backbone has no stage3/stage4 features (BEVT's decoders need a 4-stage "
                                "hierarchical backbone such as video_swin)",
                                name));
  c3 = spec.stage("stage3").channels;
  c4 = spec.stage("stage4").channels;
  vocab = cfg.get_int("vocab_size", 0);
  if (vocab <= 0) vocab = ctx.vocab_size;
  if (vocab < 0) throw UserError(fmt::format("{}: vocab_size must be >= 0, got {}", name, vocab));
  if (vocab > 0) {
    auto ch = std::make_shared<torch::nn::Module>();
    lm_head = ch->register_module("lm_head", torch::nn::Linear(c4, vocab));
    {
      torch::NoGradGuard ng;
      lm_head->weight.normal_(0, 0.02).clamp_(-2, 2);
      lm_head->bias.zero_();
    }
    register_module("cls_head", ch);
  }
}

torch::Tensor MimHeadBase::finish(torch::Tensor x, Backbone& backbone) {
  x = backbone.final_norm(x);
  x = x.reshape({x.size(0), -1, x.size(-1)});
  if (vocab > 0) return lm_head->forward(x);
  return x;
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

torch::Tensor channels_last(const torch::Tensor& x) {
  std::vector<int64_t> perm{0};
  for (int64_t i = 2; i < x.dim(); ++i) perm.push_back(i);
  perm.push_back(1);
  return x.permute(perm);
}

}  // namespace bevt::mim
