// Device placement without a GPU: every backbone (video and image paths, masked and not), every head, the
// DALL-E and PeCo encoders, the masked losses and one whole BEVT trainer step run with parameters and inputs
// on the `meta` device. A tensor made with default options (on the CPU) and mixed with them fails exactly as it
// would on CUDA ("Expected all tensors to be on the same device"), so these tests stand in for a first GPU run.
// Also here: the tied classifier survives device and dtype moves, gradient checkpointing recomputes under the
// forward's autocast, and the rank's device is valid on any launch.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include "bevt/grad_checkpoint.h"
#include "bevt/module_device.h"
#include "host/train/amp.h"
#include "host/train/mim_metrics.h"
#include "host/train/mim_step.h"
#include "host/train/model.h"
#include "host/train/optim.h"
#include "meta_device.h"
#include "swin_registry.h"

namespace tr = bevt::host::train;

namespace {

// LibTorch has no C++ meta kernel for convolutions (Python registers its own): these compute the output shapes,
// which is all the meta device needs. Test-only; every other op runs through LibTorch's own meta kernels.
at::Tensor conv_meta(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                     c10::SymIntArrayRef stride, c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation,
                     bool transposed, c10::SymIntArrayRef output_padding, c10::SymInt groups) {
  // A convolution without bias may pass an optional that holds an undefined tensor.
  TORCH_CHECK(weight.device() == input.device() && (!bias || !bias->defined() || bias->device() == input.device()),
              "Expected all tensors to be on the same device (convolution)");
  const int64_t g = groups.expect_int();
  std::vector<int64_t> out{input.size(0), transposed ? weight.size(1) * g : weight.size(0)};
  for (int64_t d = 2; d < input.dim(); ++d) {
    const size_t i = static_cast<size_t>(d - 2);
    const int64_t k = weight.size(d), s = stride[i].expect_int(), p = padding[i].expect_int(),
                  dl = dilation[i].expect_int();
    out.push_back(transposed ? (input.size(d) - 1) * s - 2 * p + dl * (k - 1) + output_padding[i].expect_int() + 1
                             : (input.size(d) + 2 * p - dl * (k - 1) - 1) / s + 1);
  }
  return at::empty(out, input.options());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_backward_meta(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight, c10::SymIntArrayRef,
    c10::SymIntArrayRef, c10::SymIntArrayRef, bool, c10::SymIntArrayRef, c10::SymInt, std::array<bool, 3> mask) {
  TORCH_CHECK(grad_output.device() == input.device() && weight.device() == input.device(),
              "Expected all tensors to be on the same device (convolution backward)");
  return {mask[0] ? at::empty_like(input) : at::Tensor(), mask[1] ? at::empty_like(weight) : at::Tensor(),
          mask[2] ? at::empty({grad_output.size(1)}, weight.options()) : at::Tensor()};
}

TORCH_LIBRARY_IMPL(aten, Meta, m) {
  m.impl("convolution_overrideable", conv_meta);
  m.impl("convolution_backward_overrideable", conv_backward_meta);
}

const torch::Device kMeta(torch::kMeta);

torch::Tensor meta(std::vector<int64_t> shape, torch::ScalarType t = torch::kFloat32) {
  return torch::empty(shape, torch::TensorOptions().device(kMeta).dtype(t));
}

// A Video Swin small enough for any shape: patch 2x4x4, window 2x4x4 (32x32 frames give 8x8 tokens).
std::string swin(const std::map<std::string, std::string>& over = {}) {
  std::map<std::string, std::string> kv{{"window_size", "[2, 4, 4]"}, {"image_attention", "\"swin\""}};
  for (const auto& [k, v] : over) kv[k] = v;
  return swin_test::tiny(kv);
}

std::shared_ptr<bevt::Tokenizer> tokenizer(const std::string& toml) {
  auto cfg = bevt::Config::from_toml(toml, "test");
  bevt::BuildContext ctx;
  ctx.build = [](bevt::Kind kind, const bevt::Config& c) {
    bevt::Config copy = c.deep_copy();
    const auto& p = swin_test::registry().find(copy.get_string("plugin"), kind, copy.where("plugin"));
    return swin_test::registry().build(p, copy, bevt::BuildContext{});
  };
  return swin_test::registry().build_as<bevt::Tokenizer>("tokenizer", cfg, ctx);
}

// DALL-E with 8x downsampling: a 16x16 view gives the 2x2 grid on which the decoders of a 32x32 input predict
// (stage 3: 32 / 4 / 4).
const char* kDalle = "plugin = \"dalle\"\nn_hid = 16\nn_blk_per_group = 1\nvocab_size = 32\ninput_size = 16\n";
const char* kPeco =
    "plugin = \"peco\"\nvocab_size = 32\ncode_dim = 8\ndownsample = 4\nhidden = 16\nchannel_mult = []\n"
    "input_size = 32\nperceptual_weight = 0.0\n";

void expect_on_meta(const bevt::Features& f) {
  for (const auto& n : f.names()) EXPECT_TRUE(f.at(n).is_meta()) << n;
}

void backward_on_meta(const torch::Tensor& y, torch::nn::Module& m) {
  y.sum().backward();
  for (const auto& p : m.named_parameters()) {
    if (p.value().grad().defined()) {
      EXPECT_TRUE(p.value().grad().is_meta()) << p.key();
    }
  }
}

}  // namespace

TEST(DevicePlacement, VideoSwinEveryPathOnMeta) {
  meta_device::MetaDeviceCheck check;
  for (bool ckpt : {false, true}) {
    auto bb = swin_test::build(swin({{"grad_checkpointing", ckpt ? "true" : "false"}}));
    bevt::module_to(*bb, kMeta);
    bb->train();
    // Video 4x32x32 (2x8x8 tokens: one window in time, four in space, shifted blocks), masked and not; then
    // images, masked and not; a second batch size needs its own plan on the same device.
    for (int64_t B : {1, 2}) {
      auto clip = meta({B, 3, 4, 32, 32});
      auto f = bb->forward_video(clip);
      expect_on_meta(f);
      backward_on_meta(f.at("out"), *bb);
      f = bb->forward_video(clip, meta({B, 2, 8, 8}, torch::kBool));
      expect_on_meta(f);
      backward_on_meta(f.at("out"), *bb);
      auto img = meta({B, 3, 32, 32});
      f = bb->forward_image(img);
      expect_on_meta(f);
      backward_on_meta(f.at("out"), *bb);
      f = bb->forward_image(img, meta({B, 8, 8}, torch::kBool));
      expect_on_meta(f);
      backward_on_meta(f.at("out"), *bb);
    }
  }
}

TEST(DevicePlacement, VideoSwinPlansFollowTheInputDevice) {
  meta_device::MetaDeviceCheck check;
  // A model used on the CPU first, then moved: the cached CPU plans must not be handed to the moved model.
  auto bb = swin_test::build(swin());
  bb->eval();
  torch::NoGradGuard ng;
  auto cpu_out = bb->forward_video(torch::rand({1, 3, 4, 32, 32})).at("out");
  EXPECT_TRUE(cpu_out.is_cpu());
  bevt::module_to(*bb, kMeta);
  EXPECT_TRUE(bb->forward_video(meta({1, 3, 4, 32, 32})).at("out").is_meta());
  EXPECT_TRUE(bb->forward_image(meta({1, 3, 32, 32})).at("out").is_meta());
}

TEST(DevicePlacement, TimeSformerEveryPathOnMeta) {
  meta_device::MetaDeviceCheck check;
  auto cfg = bevt::Config::from_toml(
      "plugin = \"timesformer\"\nimg_size = 32\npatch_size = 8\nembed_dim = 32\ndepth = 2\nnum_heads = 2\n"
      "num_frames = 4\nnum_classes = 0\n",
      "test");
  auto bb = swin_test::registry().build_as<bevt::Backbone>("test", cfg, bevt::BuildContext{});
  bevt::module_to(*bb, kMeta);
  bb->train();
  auto clip = meta({2, 3, 4, 32, 32});
  auto f = bb->forward_video(clip);
  expect_on_meta(f);
  backward_on_meta(f.at(bb->spec().output), *bb);
  f = bb->forward_video(clip, meta({2, 4, 4, 4}, torch::kBool));
  expect_on_meta(f);
  backward_on_meta(f.at(bb->spec().output), *bb);
  if (bb->spec().has_image_path) {
    f = bb->forward_image(meta({2, 3, 32, 32}), meta({2, 4, 4}, torch::kBool));
    expect_on_meta(f);
  }
}

TEST(DevicePlacement, HeadsOnMeta) {
  meta_device::MetaDeviceCheck check;
  auto bb = swin_test::build(swin());
  auto img = swin_test::build_head("mim_image", *bb, 32);
  auto vid = swin_test::build_head("mim_video", *bb, 32);
  auto cls = swin_test::registry().build_as<bevt::Head>(
      "test", bevt::Config::from_toml("plugin = \"i3d\"\nnum_classes = 5\n", "test"), [&] {
        bevt::BuildContext c;
        c.backbone = bb->spec();
        return c;
      }());
  for (auto* m : std::initializer_list<torch::nn::Module*>{bb.get(), img.get(), vid.get(), cls.get()}) {
    bevt::module_to(*m, kMeta);
    m->train();
  }
  auto fv = bb->forward_video(meta({2, 3, 4, 32, 32}), meta({2, 2, 8, 8}, torch::kBool));
  auto fi = bb->forward_image(meta({2, 3, 32, 32}), meta({2, 8, 8}, torch::kBool));
  auto lv = vid->forward(fv, *bb), li = img->forward(fi, *bb), lc = cls->forward(fv, *bb);
  for (const auto& t : {lv, li, lc}) EXPECT_TRUE(t.is_meta());
  EXPECT_EQ(lc.size(-1), 5);
  (lv.sum() + li.sum() + lc.sum()).backward();
}

TEST(DevicePlacement, DalleAndPecoEncodersOnMeta) {
  meta_device::MetaDeviceCheck check;
  for (const char* toml : {kDalle, kPeco}) {
    auto tok = tokenizer(toml);
    bevt::module_to(*tok, kMeta);
    tok->eval();
    const int64_t s = tok->input_size();
    auto ids = tok->tokenize(meta({3, 3, s, s}));
    EXPECT_TRUE(ids.is_meta()) << toml;
    EXPECT_EQ(ids.scalar_type(), torch::kInt64);
    EXPECT_EQ(ids.size(1), s / tok->downsample());
  }
}

TEST(DevicePlacement, MaskedLossesOnMeta) {
  meta_device::MetaDeviceCheck check;
  auto logits = meta({2, 16, 32}).requires_grad_();
  auto terms = tr::masked_token_terms(logits, meta({2, 4, 4}, torch::kInt64), meta({2, 4, 4}, torch::kBool), "video");
  for (const auto& [k, v] : terms) EXPECT_TRUE(v.is_meta()) << k;
  terms.at("loss_video").backward();
  EXPECT_TRUE(logits.grad().is_meta());
}

// The decoders run their final norm and lm_head on the masked cells only (Head::forward_at): the step's terms
// and every gradient are those of the whole-grid logits with the loss masked, up to the order of a sum.
TEST(MimStep, LmHeadOnTheMaskedCellsOnlyGivesTheTermsAndGradientsOfEveryCell) {
  torch::manual_seed(0);
  auto backbone = swin_test::build(swin({{"drop_path_rate", "0.0"}}));
  std::map<std::string, std::shared_ptr<bevt::Head>> heads{
      {"image", swin_test::build_head("mim_image", *backbone, 32)},
      {"video", swin_test::build_head("mim_video", *backbone, 32)}};
  auto tok = tokenizer("plugin = \"dalle\"\nn_hid = 16\nn_blk_per_group = 1\nvocab_size = 32\ninput_size = 32\n");
  tok->eval();
  backbone->train();
  torch::Generator gen = at::detail::createCPUGenerator(11);
  const int64_t B = 2;
  for (const std::string stream : {"image", "video"}) {
    const bool video = stream == "video";
    const torch::Tensor input = video ? torch::rand({B, 3, 4, 64, 64}, gen) : torch::rand({B, 3, 64, 64}, gen);
    const torch::Tensor view = video ? torch::rand({B, 4, 3, 32, 32}, gen) : torch::rand({B, 3, 32, 32}, gen);
    torch::Tensor mask;  // one draw, used by both paths
    auto mask_for = [&](const std::array<int64_t, 3>& g) {
      if (!mask.defined()) mask = torch::rand({B, g[0], g[1], g[2]}, gen) < 0.45;
      return mask;
    };
    bevt::Head& head = *heads.at(stream);
    auto grads = [&] {
      std::map<std::string, torch::Tensor> g;
      for (auto* m : std::initializer_list<torch::nn::Module*>{backbone.get(), &head})
        for (const auto& p : m->named_parameters())
          if (p.value().grad().defined()) g[p.key()] = p.value().grad().clone();
      return g;
    };
    auto zero = [&] {
      for (auto* m : std::initializer_list<torch::nn::Module*>{backbone.get(), &head})
        for (auto& p : m->parameters()) p.mutable_grad() = torch::Tensor();
    };
    // The step as it runs: masked rows only.
    auto step = tr::mim_stream_terms(stream, *backbone, head, *tok, input, view, mask_for);
    step.at("loss_" + stream).backward();
    const auto g_step = grads();
    zero();
    // Every cell: the whole grid's logits, the loss masked.
    torch::Tensor tokens, cell_mask;
    bevt::Features f;
    if (video) {
      tokens = tok->tokenize(view.flatten(0, 1)).unflatten(0, {B, 4});
      f = backbone->forward_video(input, mask);
      cell_mask = mask.repeat_interleave(4 / mask.size(1), 1);
    } else {
      tokens = tok->tokenize(view);
      cell_mask = mask.squeeze(1);
      f = backbone->forward_image(input, cell_mask);
    }
    const torch::Tensor logits = head.forward(f, *backbone);
    ASSERT_EQ(logits.size(1), cell_mask[0].numel());
    const int64_t masked = cell_mask.sum().item<int64_t>();
    ASSERT_GT(masked, 0);
    ASSERT_LT(masked, cell_mask.numel());
    auto full = tr::masked_token_terms(logits, tokens, cell_mask, stream);
    full.at("loss_" + stream).backward();
    const auto g_full = grads();
    zero();
    for (const auto& [k, v] : full)
      EXPECT_NEAR(step.at(k).item<double>(), v.item<double>(), 1e-6 * std::max(1.0, std::abs(v.item<double>()))) << k;
    ASSERT_EQ(g_step.size(), g_full.size()) << stream;
    for (const auto& [k, v] : g_full) {
      ASSERT_TRUE(g_step.count(k)) << k;
      const double scale = std::max(v.abs().max().item<double>(), 1e-12);
      EXPECT_LT((g_step.at(k) - v).abs().max().item<double>() / scale, 1e-5) << stream << " " << k;
    }
  }
}

// One whole BEVT iteration as the pretrain runner runs it (mim_stream_terms for both streams with the tied
// classifier, one backward, the alias folding, clipping and the AdamW step), every tensor on meta.
TEST(DevicePlacement, WholeBevtTrainerStepOnMeta) {
  meta_device::MetaDeviceCheck check;
  tr::TrainModel m;
  m.backbone = swin_test::build(swin());
  m.heads["image"] = swin_test::build_head("mim_image", *m.backbone, 32);
  m.heads["video"] = swin_test::build_head("mim_video", *m.backbone, 32);
  tr::tie_lm_heads(m);
  ASSERT_EQ(m.aliases.size(), 2u);
  auto tok = tokenizer(kDalle);
  for (auto& p : tok->parameters()) p.set_requires_grad(false);
  m.to(kMeta);
  bevt::module_to(*tok, kMeta);
  tok->eval();
  m.train(true);
  tr::OptimSettings os;
  os.clip_grad = 3.0;
  tr::AdamW opt(m.parameters(), os);
  const int64_t B = 2;
  auto mask_for = [&](const std::array<int64_t, 3>& g) { return meta({B, g[0], g[1], g[2]}, torch::kBool); };
  auto img = tr::mim_stream_terms("image", *m.backbone, *m.heads["image"], *tok, meta({B, 3, 32, 32}),
                                  meta({B, 3, 16, 16}), mask_for);
  auto vid = tr::mim_stream_terms("video", *m.backbone, *m.heads["video"], *tok, meta({B, 3, 4, 32, 32}),
                                  meta({B, 4, 3, 16, 16}), mask_for);
  for (const auto& terms : {img, vid}) {
    for (const auto& [k, v] : terms) {
      EXPECT_TRUE(v.is_meta()) << k;
    }
  }
  (img.at("loss_image") + vid.at("loss_video")).backward();
  m.fold_alias_grads();
  torch::Tensor norm = opt.step(1e-3);
  EXPECT_TRUE(norm.is_meta());
  for (const auto& p : opt.params()) EXPECT_TRUE(p.param.is_meta()) << p.name;
}

namespace {

// One video step with regression targets from `toml`'s tokenizer, every tensor on meta: targets [B, L, dim],
// the masked MSE and its gradient.
void expect_regression_step_on_meta(const std::string& toml, int64_t dim) {
  meta_device::MetaDeviceCheck check;
  auto tok = tokenizer(toml);
  ASSERT_EQ(tok->target_dim(), dim);
  auto backbone = swin_test::build(swin());
  auto head = swin_test::build_head("mim_video", *backbone, tok->target_dim());
  bevt::module_to(*backbone, kMeta);
  bevt::module_to(*head, kMeta);
  bevt::module_to(*tok, kMeta);
  const int64_t B = 2;
  auto mask_for = [&](const std::array<int64_t, 3>& g) { return meta({B, g[0], g[1], g[2]}, torch::kBool); };
  torch::Tensor targets;
  auto terms = tr::mim_stream_terms("video", *backbone, *head, *tok, meta({B, 3, 4, 32, 32}),
                                    meta({B, 4, 3, 16, 16}), mask_for, &targets);
  ASSERT_EQ(terms.count("loss_video") + terms.count("zero_video"), 2u);
  for (const auto& [k, v] : terms) EXPECT_TRUE(v.is_meta()) << k;
  EXPECT_TRUE(targets.is_meta());
  EXPECT_EQ(targets.sizes(), (std::vector<int64_t>{B, 4 * 2 * 2, dim}));
  terms.at("loss_video").backward();
  for (const auto& p : head->parameters()) {
    if (p.grad().defined()) {
      EXPECT_TRUE(p.grad().is_meta());
    }
  }
}

}  // namespace

// The pixels plugin. norm = "none": torch's var(), which the per-cell normalisation uses, has no meta kernel in
// C++ (it creates no tensor either, so the placement check loses nothing).
TEST(DevicePlacement, PixelTargetStepOnMeta) {
  expect_regression_step_on_meta("plugin = \"pixels\"\ninput_size = 16\ndownsample = 8\nnorm = \"none\"\n", 192);
}

// The hog plugin: its constants (Sobel filters, Gaussian window) are not module state and must follow the views.
TEST(DevicePlacement, HogTargetStepOnMeta) {
  expect_regression_step_on_meta("plugin = \"hog\"\ninput_size = 16\ndownsample = 8\ncell = 4\n", 108);
}

// Module::to gives each parameter new storage: the tied classifier must be tied again after any move, so that
// both names share one tensor and the optimiser sees (and updates) it once.
TEST(DevicePlacement, TiedClassifierSurvivesDeviceAndDtypeMoves) {
  tr::TrainModel m;
  m.backbone = swin_test::build(swin());
  m.heads["image"] = swin_test::build_head("mim_image", *m.backbone, 32);
  m.heads["video"] = swin_test::build_head("mim_video", *m.backbone, 32);
  tr::tie_lm_heads(m);
  auto shared = [&] {
    for (const auto& [alias, primary] : m.aliases)
      if (alias.unsafeGetTensorImpl()->storage().unsafeGetStorageImpl() !=
          primary.unsafeGetTensorImpl()->storage().unsafeGetStorageImpl())
        return false;
    return true;
  };
  auto lm_heads_optimised = [&] {
    int n = 0;
    for (const auto& p : m.parameters()) n += p.name.find("lm_head.weight") != std::string::npos;
    return n;
  };
  ASSERT_TRUE(shared());
  m.to(torch::kFloat64);
  EXPECT_TRUE(shared());
  EXPECT_EQ(lm_heads_optimised(), 1);
  m.to(torch::kFloat32);
  ASSERT_TRUE(shared());
  const auto& [alias_w, primary_w] = m.aliases.front();
  {
    torch::NoGradGuard ng;
    primary_w.normal_(0, 0.02);
  }
  EXPECT_TRUE(alias_w.equal(primary_w));  // one storage: writing one writes the other
  torch::manual_seed(3);
  auto fi = m.backbone->forward_image(torch::rand({1, 3, 32, 32}));
  auto fv = m.backbone->forward_video(torch::rand({1, 3, 4, 32, 32}));
  auto li = m.heads["image"]->forward(fi, *m.backbone).sum();
  auto lv = m.heads["video"]->forward(fv, *m.backbone).sum();
  auto gi = torch::autograd::grad({li}, {primary_w, alias_w}, {}, true, false, true);
  auto gv = torch::autograd::grad({lv}, {primary_w, alias_w}, {}, true, false, true);
  (li + lv).backward();
  m.fold_alias_grads();
  auto sum_of = [](const torch::autograd::variable_list& g) {
    torch::Tensor s = torch::zeros_like(g[0].defined() ? g[0] : g[1]);
    for (const auto& t : g)
      if (t.defined()) s += t;
    return s;
  };
  EXPECT_TRUE(primary_w.grad().allclose(sum_of(gi) + sum_of(gv), 1e-5, 1e-7));
  EXPECT_EQ(alias_w.grad().abs().sum().item<double>(), 0.0);
  // And a device move (meta here; CUDA on a GPU machine goes through the same TrainModel::to).
  m.to(kMeta);
  EXPECT_TRUE(shared());
  EXPECT_EQ(lm_heads_optimised(), 1);
  EXPECT_TRUE(primary_w.is_meta());
}

// The rerun of a checkpointed block happens during backward, outside the forward's autocast scope: it must use
// the forward's autocast settings, or its activations (and so the gradients) are of another precision.
TEST(DevicePlacement, GradCheckpointRecomputesUnderTheForwardsAutocast) {
  torch::manual_seed(0);
  auto lin = torch::nn::Linear(16, 16);
  auto x = torch::randn({4, 16}, torch::requires_grad());
  auto block = [&](const torch::Tensor& t) { return torch::gelu(lin->forward(t)); };
  auto grads = [&](bool ckpt) {
    lin->zero_grad();
    torch::Tensor y;
    {
      tr::AutocastGuard g(tr::Precision::Bf16, torch::kCPU);
      y = ckpt ? bevt::checkpoint(block, x, lin->weight) : block(x);
    }
    EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
    y.to(torch::kFloat32).pow(2).sum().backward();  // backward outside autocast
    return lin->weight.grad().clone();
  };
  auto plain = grads(false), ckpt = grads(true);
  // Identical, not merely close: the rerun is the same bf16 computation.
  EXPECT_TRUE(plain.equal(ckpt)) << (plain - ckpt).abs().max().item<double>();
}
