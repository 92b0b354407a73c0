// Initialisation as the official modules do it: every parameter of SwinTransformerBEVT (encoder and both
// decoders), the shared lm_head and mmaction's I3DHead fc_cls, classified by its module type as the official
// init_weights visit them, is checked against that distribution's mean, std and bounds:
//   Linear (encoder, lm_down, lm_down_st.0, lm_head)  timm trunc_normal_(std 0.02, ±2 absolute), bias 0
//   LayerNorm                                           weight 1, bias 0
//   relative_position_bias_table, mask_token           trunc_normal_(std 0.02)
//   Conv / ConvTranspose (patch embeddings, fpn*)      PyTorch's default: kaiming_uniform(a=√5) →
//                                                      U(±1/√fan_in), bias U(±1/√fan_in) (untouched officially)
//   I3DHead fc_cls                                     normal(std 0.01), bias 0 (mmcv normal_init)
// Tolerances are 5 standard errors of each statistic for the tensor's size, not tuned to pass.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "swin_registry.h"

namespace {

using swin_test::registry;

struct Moments {
  double mean = 0, std = 0, max_abs = 0, beyond_2std = 0;  // beyond_2std: fraction with |x - mean| > 2 std
  int64_t n = 0;
};

Moments moments(const torch::Tensor& t) {
  const torch::Tensor x = t.detach().to(torch::kFloat64).flatten();
  Moments m;
  m.n = x.numel();
  m.mean = x.mean().item<double>();
  m.std = m.n > 1 ? x.std().item<double>() : 0.0;
  m.max_abs = x.abs().max().item<double>();
  return m;
}

// A normal of std `s` (truncated at ±`bound`): mean 0, std s, every value inside the bounds, and (for a tensor
// large enough to tell) the normal's 4.55 % of values beyond 2 s, which a uniform of the same std never has.
void expect_normal(const std::string& name, const torch::Tensor& t, double s, double bound) {
  SCOPED_TRACE(name);
  const Moments m = moments(t);
  ASSERT_GT(m.n, 1);
  const double n = static_cast<double>(m.n);
  EXPECT_LE(std::abs(m.mean), 5 * s / std::sqrt(n));
  EXPECT_NEAR(m.std / s, 1.0, 5 / std::sqrt(2 * n));
  EXPECT_LE(m.max_abs, bound);
  if (m.n >= 2000) {
    const double p = 0.0455;
    const double beyond = t.detach().to(torch::kFloat64).abs().gt(2 * s).to(torch::kFloat64).mean().item<double>();
    EXPECT_NEAR(beyond, p, 5 * std::sqrt(p * (1 - p) / n));
  }
}

// U(-b, b): mean 0, std b/√3, every value within b, and (for a large tensor) values reaching near b.
void expect_uniform(const std::string& name, const torch::Tensor& t, double b) {
  SCOPED_TRACE(name);
  const Moments m = moments(t);
  ASSERT_GT(m.n, 1);
  const double n = static_cast<double>(m.n);
  const double s = b / std::sqrt(3.0);
  EXPECT_LE(std::abs(m.mean), 5 * s / std::sqrt(n));
  // The std of a uniform's sample std: s·√(0.4/n) (kurtosis 1.8).
  EXPECT_NEAR(m.std / s, 1.0, 5 * std::sqrt(0.4 / n));
  EXPECT_LE(m.max_abs, b * (1 + 1e-6));
  if (m.n >= 1000) {
    EXPECT_GE(m.max_abs, 0.99 * b);
  }
}

void expect_constant(const std::string& name, const torch::Tensor& t, double v) {
  SCOPED_TRACE(name);
  EXPECT_TRUE(t.detach().eq(v).all().item<bool>()) << "not all " << v;
}

// PyTorch's fan_in of a (transposed) convolution weight: dim 1 × the kernel's size (in/groups for a Conv, out
// for a ConvTranspose, as torch.nn.init._calculate_fan_in_and_fan_out reads it).
double fan_in(const torch::Tensor& w) { return static_cast<double>(w.numel() / w.size(0)); }

// Checks every parameter of `module` (named `prefix` + its name) by the type of the module holding it, and
// returns the names checked.
std::set<std::string> check_official_init(const torch::nn::Module& module, const std::string& prefix) {
  std::set<std::string> seen;
  for (const auto& item : module.named_modules("", /*include_self=*/true)) {
    const std::string at = prefix + (item.key().empty() ? "" : item.key() + ".");
    const auto& m = item.value();
    const auto own = m->named_parameters(/*recurse=*/false);  // find() points into it
    auto weight = [&](const char* n) { return own.find(n); };
    if (m->as<torch::nn::Linear>() || m->as<torch::nn::LayerNorm>() || m->as<torch::nn::Conv2d>() ||
        m->as<torch::nn::Conv3d>() || m->as<torch::nn::ConvTranspose2d>() || m->as<torch::nn::ConvTranspose3d>()) {
      const torch::Tensor* w = weight("weight");
      const torch::Tensor* b = weight("bias");
      if (m->as<torch::nn::Linear>()) {
        expect_normal(at + "weight", *w, 0.02, 2.0);
        if (b) expect_constant(at + "bias", *b, 0.0);
      } else if (m->as<torch::nn::LayerNorm>()) {
        expect_constant(at + "weight", *w, 1.0);
        expect_constant(at + "bias", *b, 0.0);
      } else {
        const double bound = 1 / std::sqrt(fan_in(*w));
        expect_uniform(at + "weight", *w, bound);
        if (b) expect_uniform(at + "bias", *b, bound);
      }
      seen.insert(at + "weight");
      if (b) seen.insert(at + "bias");
      continue;
    }
    for (const auto& p : own) {
      if (p.key() != "relative_position_bias_table" && p.key() != "mask_token") continue;
      if (p.key() == "relative_position_bias_table") expect_normal(at + p.key(), p.value(), 0.02, 2.0);
      seen.insert(at + p.key());
    }
  }
  return seen;
}

std::set<std::string> all_names(const torch::nn::Module& module, const std::string& prefix) {
  std::set<std::string> out;
  for (const auto& p : module.named_parameters(true)) out.insert(prefix + p.key());
  return out;
}

// Large enough for the statistics: stage-4 width 256, lm_head 8192 x 256, fc_cls 400 x 256.
const std::map<std::string, std::string> kWide{{"embed_dim", "32"}, {"depths", "[1, 1, 1, 1]"},
                                               {"num_heads", "[1, 2, 4, 8]"}};

TEST(OfficialInit, EncoderDecodersAndLmHeadFollowSwinTransformerBEVTInitWeights) {
  auto bb = swin_test::build(swin_test::tiny(kWide), 1);
  auto img = swin_test::build_head("mim_image", *bb, 8192);
  auto vid = swin_test::build_head("mim_video", *bb, 8192);
  std::set<std::string> seen = check_official_init(*bb, "backbone.");
  EXPECT_EQ(seen, all_names(*bb, "backbone.")) << "every encoder parameter has an official distribution";
  for (const auto& [name, head] : {std::pair{"image", img}, std::pair{"video", vid}}) {
    SCOPED_TRACE(name);
    std::set<std::string> hs = check_official_init(*head, "");
    EXPECT_EQ(hs, all_names(*head, ""));
    // The decoder parts the official init_weights reaches: the Linear after the concatenation, and lm_head.
    EXPECT_TRUE(hs.count(std::string(name) == "image" ? "lm_down.weight" : "lm_down_st.0.weight"));
    EXPECT_TRUE(hs.count("cls_head.lm_head.weight"));
    EXPECT_TRUE(hs.count(std::string(name) == "image" ? "fpn.0.weight" : "fpn_t.0.weight"));
  }
}

TEST(OfficialInit, MaskTokenIsTruncNormal) {
  // One mask token holds embed_dim values: pooled over 32 seeds for the statistics.
  std::vector<torch::Tensor> tokens;
  for (uint64_t seed = 0; seed < 32; ++seed) {
    auto bb = swin_test::build(swin_test::tiny(kWide), seed);
    tokens.push_back(bb->named_parameters().find("mask_token")->flatten());
  }
  expect_normal("mask_token", torch::cat(tokens), 0.02, 2.0);
}

TEST(OfficialInit, I3DHeadFcClsIsNormalStd001BiasZero) {
  auto bb = swin_test::build(swin_test::tiny(kWide), 2);
  auto cfg = bevt::Config::from_toml("plugin = \"i3d\"\nnum_classes = 400\n", "test");
  bevt::BuildContext ctx;
  ctx.backbone = bb->spec();
  auto head = registry().build_as<bevt::Head>("test", cfg, ctx);
  auto params = head->named_parameters();
  ASSERT_TRUE(params.find("cls_head.fc_cls.weight"));
  // mmaction2 I3DHead.init_weights: normal_init(fc_cls, std=init_std = 0.01), bias 0; untruncated.
  expect_normal("cls_head.fc_cls.weight", *params.find("cls_head.fc_cls.weight"), 0.01, 10 * 0.01);
  expect_constant("cls_head.fc_cls.bias", *params.find("cls_head.fc_cls.bias"), 0.0);
  EXPECT_EQ(params.size(), 2U);
}

}  // namespace
