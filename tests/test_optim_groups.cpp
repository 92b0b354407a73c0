// Which parameter lands in which group with which lr and weight decay, read from the shipped experiment files
// and a real Video Swin's layer levels: mmcv's custom_keys (longest key wins, with its quirk on the relative
// position tables), BEVT's K400 layer decay, the per-epoch cosine, EMA and the fp16 loss scaler.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include <cmath>

#include "bevt/error.h"
#include "host/config/experiment.h"
#include "host/config/sections.h"
#include "host/train/amp.h"
#include "host/train/ema.h"
#include "host/train/optim.h"
#include "swin_registry.h"

namespace tr = bevt::host::train;

namespace {

tr::OptimSettings settings_of(const std::string& experiment) {
  return bevt::host::Experiment::load(std::string(BEVT_SOURCE_DIR) + "/experiments/" + experiment, {}).optim;
}

std::vector<tr::NamedParam> params(const std::vector<std::string>& names) {
  std::vector<tr::NamedParam> out;
  for (const auto& n : names) out.push_back({n, torch::zeros({2}, torch::requires_grad())});
  return out;
}

size_t index_of(const tr::AdamW& opt, const std::string& name) {
  for (size_t i = 0; i < opt.params().size(); ++i)
    if (opt.params()[i].name == name) return i;
  ADD_FAILURE() << "no parameter " << name;
  return 0;
}

}  // namespace

TEST(OptimGroups, Ssv2CustomKeysReproduceMmcvsLongestKeyQuirk) {
  tr::OptimSettings s = settings_of("ssv2.toml");
  EXPECT_TRUE(s.by_epoch);
  tr::AdamW opt(params({"backbone.patch_embed.proj.weight", "backbone.layers.2.blocks.3.norm1.weight",
                        "backbone.layers.1.blocks.0.attn.relative_position_bias_table", "backbone.norm.weight",
                        "cls_head.fc_cls.weight", "cls_head.fc_cls.bias"}),
                s);
  auto lr = [&](const std::string& n) { return opt.lr_multiplier(index_of(opt, n)); };
  auto wd = [&](const std::string& n) { return opt.weight_decay(index_of(opt, n)); };
  EXPECT_DOUBLE_EQ(lr("backbone.patch_embed.proj.weight"), 0.1);
  EXPECT_DOUBLE_EQ(wd("backbone.patch_embed.proj.weight"), 0.05);
  // "backbone" (8 characters) beats "norm" (4): backbone norms keep their decay.
  EXPECT_DOUBLE_EQ(lr("backbone.layers.2.blocks.3.norm1.weight"), 0.1);
  EXPECT_DOUBLE_EQ(wd("backbone.layers.2.blocks.3.norm1.weight"), 0.05);
  EXPECT_DOUBLE_EQ(wd("backbone.norm.weight"), 0.05);
  // "relative_position_bias_table" is the longest key: lr 1x (10x the backbone's) and no decay.
  EXPECT_DOUBLE_EQ(lr("backbone.layers.1.blocks.0.attn.relative_position_bias_table"), 1.0);
  EXPECT_DOUBLE_EQ(wd("backbone.layers.1.blocks.0.attn.relative_position_bias_table"), 0.0);
  EXPECT_DOUBLE_EQ(lr("cls_head.fc_cls.weight"), 1.0);
  EXPECT_DOUBLE_EQ(wd("cls_head.fc_cls.bias"), 0.05);
}

TEST(OptimGroups, K400LayerDecayOverSwinBsTwentyEightLevels) {
  tr::OptimSettings s = settings_of("k400.toml");
  EXPECT_DOUBLE_EQ(s.layer_decay, 0.9);
  // Swin-B's depths with tiny channels: the levels depend on depths only.
  auto bb = swin_test::build(swin_test::tiny({{"depths", "[2, 2, 18, 2]"}}));
  ASSERT_EQ(bb->num_layer_levels(), 28);
  tr::LayerLevels levels{bb->num_layer_levels(), [&](const std::string& n) { return bb->layer_level(n); }};
  std::vector<std::string> names;
  for (const auto& [k, v] : bb->export_weights()) names.push_back("backbone." + k);
  names.push_back("cls_head.fc_cls.weight");
  tr::AdamW opt(params(names), s, levels);
  auto lr = [&](const std::string& n) { return opt.lr_multiplier(index_of(opt, n)); };
  auto wd = [&](const std::string& n) { return opt.weight_decay(index_of(opt, n)); };
  EXPECT_NEAR(lr("backbone.patch_embed.proj.weight"), std::pow(0.9, 28), 1e-15);
  EXPECT_NEAR(lr("backbone.layers.0.blocks.0.mlp.fc1.weight"), std::pow(0.9, 27), 1e-15);
  EXPECT_NEAR(lr("backbone.layers.0.downsample.reduction.weight"), std::pow(0.9, 25), 1e-15);
  EXPECT_NEAR(lr("backbone.layers.2.blocks.17.mlp.fc2.weight"), std::pow(0.9, 4), 1e-15);
  EXPECT_NEAR(lr("backbone.layers.3.blocks.1.attn.qkv.weight"), 0.9, 1e-15);
  EXPECT_NEAR(lr("backbone.norm.weight"), 0.9, 1e-15);
  EXPECT_DOUBLE_EQ(lr("cls_head.fc_cls.weight"), 1.0);
  // The keyed tables escape the layer decay and the weight decay; norms keep the decay.
  EXPECT_DOUBLE_EQ(lr("backbone.layers.0.blocks.1.attn.relative_position_bias_table"), 1.0);
  EXPECT_DOUBLE_EQ(wd("backbone.layers.0.blocks.1.attn.relative_position_bias_table"), 0.0);
  EXPECT_DOUBLE_EQ(wd("backbone.layers.1.blocks.0.norm2.weight"), 1e-3);
  // Every parameter's multiplier is decay^(28 - level) or a keyed 1.
  for (const auto& n : names)
    EXPECT_LE(lr(n), 1.0) << n;
}

TEST(OptimGroups, PretrainDefaultsTakeDecayOffNormsAndTables) {
  tr::OptimSettings s = settings_of("pretrain/bevt.toml");
  tr::AdamW opt(params({"backbone.layers.0.blocks.0.norm1.weight", "backbone.mask_token",
                        "backbone.layers.0.blocks.0.attn.relative_position_bias_table", "backbone.fpn.0.weight"}),
                s);
  EXPECT_DOUBLE_EQ(opt.weight_decay(0), 0.0);
  EXPECT_DOUBLE_EQ(opt.weight_decay(1), 0.05);
  EXPECT_DOUBLE_EQ(opt.weight_decay(2), 0.0);
  EXPECT_DOUBLE_EQ(opt.weight_decay(3), 0.05);
  for (size_t i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(opt.lr_multiplier(i), 1.0);
}

TEST(OptimGroups, LayerDecayOnABackboneWithoutLevelsIsAnError) {
  tr::OptimSettings s;
  s.layer_decay = 0.9;
  EXPECT_THROW(tr::AdamW(params({"backbone.x"}), s, tr::LayerLevels{}), bevt::UserError);
}

TEST(OptimGroups, BadCustomKeysAreOneLineErrors) {
  auto from = [](const std::string& toml) {
    auto c = bevt::Config::from_toml(toml, "x.toml");
    return bevt::host::parse_optim(c.get_table("optim"));
  };
  try {
    from("[optim.custom_keys]\nbackbone = { lr_mul = 0.1 }\n");
    FAIL() << "accepted an unknown field";
  } catch (const bevt::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown field 'lr_mul'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("x.toml:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(from("[optim.custom_keys]\nbackbone = 0.1\n"), bevt::UserError);
  EXPECT_THROW(from("[optim]\nlayer_decay = 1.5\n"), bevt::UserError);
}

TEST(OptimSchedule, ByEpochHoldsTheCosineWithinAnEpochButWarmsUpPerIteration) {
  tr::OptimSettings s;
  s.lr = 1.0;
  s.by_epoch = true;
  s.steps_per_epoch = 10;
  s.warmup_steps = 5;
  s.warmup_ratio = 0.1;
  // 4 epochs of 10 steps: epoch e has lr 0.5(1 + cos(pi e / 4)).
  EXPECT_NEAR(tr::scheduled_lr(s, 10, 40), tr::scheduled_lr(s, 19, 40), 1e-15);
  EXPECT_NEAR(tr::scheduled_lr(s, 25, 40), 0.5 * (1 + std::cos(M_PI * 2 / 4)), 1e-12);
  EXPECT_NEAR(tr::scheduled_lr(s, 0, 40), 0.1, 1e-12);
  EXPECT_LT(tr::scheduled_lr(s, 2, 40), tr::scheduled_lr(s, 4, 40));  // warmup moves per iteration
  EXPECT_NEAR(tr::scheduled_lr(s, 5, 40), 1.0, 1e-12);
}

TEST(OptimEma, FollowsMmcvsEmaHookAndSwaps) {
  auto p = params({"w"});
  p[0].param.detach().fill_(1.0);
  tr::Ema ema(p, 0.5, 1);  // momentum min(0.5, (1+s)/(1+s)) = 0.5
  p[0].param.detach().fill_(3.0);
  ema.update(0);
  EXPECT_FLOAT_EQ(ema.state().at("w")[0].item<float>(), 2.0f);  // 0.5*1 + 0.5*3
  ema.swap();
  EXPECT_FLOAT_EQ(p[0].param[0].item<float>(), 2.0f);
  ema.swap();
  EXPECT_FLOAT_EQ(p[0].param[0].item<float>(), 3.0f);
  // The warm-up caps the momentum: (1 + 0) / (100 + 0) < 0.5.
  tr::Ema slow(p, 0.5, 100);
  p[0].param.detach().fill_(103.0);
  slow.update(0);
  EXPECT_NEAR(slow.state().at("w")[0].item<float>(), 3.0 + 100.0 / 100.0, 1e-5);
}

TEST(OptimAmp, Fp16ScalerSkipsOverflowAndBacksOff) {
  // torch's own _amp_foreach_non_finite_check_and_unscale_ / _amp_update_scale_ on CPU tensors, with infs and
  // NaNs injected: the expected sequence is torch.amp.GradScaler's (×2 after growth_interval clean steps, ×0.5
  // and the clean count reset on an overflow).
  tr::GradScaler sc(true, 1024.0, 2);
  auto p = params({"w", "v"});
  p[0].param.mutable_grad() = torch::tensor({2048.0f, 1024.0f});
  p[1].param.mutable_grad() = torch::tensor({512.0f});
  EXPECT_TRUE(sc.unscale(p));
  EXPECT_FLOAT_EQ(p[0].param.grad()[0].item<float>(), 2.0f);
  EXPECT_FLOAT_EQ(p[1].param.grad()[0].item<float>(), 0.5f);
  sc.update();
  EXPECT_DOUBLE_EQ(sc.scale(), 1024.0);  // one clean step: not yet
  sc.update();
  EXPECT_DOUBLE_EQ(sc.scale(), 2048.0);  // grows after growth_interval clean steps
  p[0].param.mutable_grad() = torch::tensor({INFINITY, 1.0f});
  EXPECT_FALSE(sc.unscale(p));
  sc.update();
  EXPECT_DOUBLE_EQ(sc.scale(), 1024.0);
  p[1].param.mutable_grad() = torch::tensor({NAN});
  p[0].param.mutable_grad() = torch::tensor({1.0f, 1.0f});
  EXPECT_FALSE(sc.unscale(p));  // a NaN in the second tensor is found too
  sc.update();
  EXPECT_DOUBLE_EQ(sc.scale(), 512.0);
  p[1].param.mutable_grad() = torch::tensor({4.0f});
  EXPECT_TRUE(sc.unscale(p));
  sc.update();  // one clean step after the overflow: the count restarted
  bevt::TensorMap st;
  sc.save(st);
  tr::GradScaler back(true);
  back.load(st);
  EXPECT_DOUBLE_EQ(back.scale(), 512.0);
  back.update();  // the restored count (1 clean step) + 1 reaches growth_interval... of `back` (2000): no growth
  EXPECT_DOUBLE_EQ(back.scale(), 512.0);
  tr::GradScaler back2(true, 65536.0, 2);
  back2.load(st);
  back2.unscale(p);
  back2.update();  // restored count 1 + this clean step = 2 = growth_interval
  EXPECT_DOUBLE_EQ(back2.scale(), 1024.0);
  // Disabled (fp32, bf16): the identity.
  tr::GradScaler off(false);
  EXPECT_TRUE(off.unscale(p));
  EXPECT_TRUE(off.scale_loss(torch::ones({})).equal(torch::ones({})));
}

TEST(OptimAmp, Fp16OffCudaIsAConfigErrorBf16RunsOnCpu) {
  EXPECT_EQ(tr::parse_precision("fp32", "cpu", "x"), tr::Precision::Fp32);
  EXPECT_EQ(tr::parse_precision("bf16", "cpu", "x"), tr::Precision::Bf16);
  EXPECT_EQ(tr::parse_precision("fp16", "cuda:0", "x"), tr::Precision::Fp16);
  EXPECT_EQ(tr::parse_precision("tf32", "cuda", "x"), tr::Precision::Tf32);
  EXPECT_STREQ(tr::precision_name(tr::Precision::Tf32), "tf32");
  EXPECT_THROW(tr::parse_precision("fp16", "cpu", "x.toml:3"), bevt::UserError);
  EXPECT_THROW(tr::parse_precision("fp8", "cuda", "x.toml:3"), bevt::UserError);
}

// torch runs CUDA convolutions in TF32 unless told otherwise; fp32 must mean IEEE float32 for both convolutions
// and matmuls (the GPU parity of the ConvTranspose decoders and the DALL-E encoder depends on it), tf32 both in
// TF32, and autocast precisions keep what autocast leaves in float32 in IEEE.
TEST(OptimAmp, Float32MathFollowsThePrecision) {
  using at::Float32Backend, at::Float32Op, at::Float32Precision;
  auto conv = [] { return at::globalContext().float32Precision(Float32Backend::CUDA, Float32Op::CONV); };
  auto mm = [] { return at::globalContext().float32Precision(Float32Backend::CUDA, Float32Op::MATMUL); };
  tr::set_float32_math(tr::Precision::Tf32);
  EXPECT_EQ(conv(), Float32Precision::TF32);
  EXPECT_EQ(mm(), Float32Precision::TF32);
  EXPECT_TRUE(tr::float32_math_is_tf32());
  for (auto p : {tr::Precision::Fp32, tr::Precision::Bf16, tr::Precision::Fp16}) {
    tr::set_float32_math(tr::Precision::Tf32);
    tr::set_float32_math(p);
    EXPECT_EQ(conv(), Float32Precision::IEEE) << tr::precision_name(p);
    EXPECT_EQ(mm(), Float32Precision::IEEE) << tr::precision_name(p);
    EXPECT_FALSE(tr::float32_math_is_tf32());
  }
}

TEST(OptimAmp, AutocastGuardTurnsCpuAutocastOnAndRestoresIt) {
  ASSERT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  auto a = torch::randn({4, 8}), b = torch::randn({8, 3});
  {
    tr::AutocastGuard g(tr::Precision::Bf16, torch::kCPU);
    EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));
    EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kBFloat16);
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kFloat32);
  { tr::AutocastGuard g(tr::Precision::Fp32, torch::kCPU); EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU)); }
}
