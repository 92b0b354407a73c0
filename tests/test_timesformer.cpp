// The timesformer backbone beyond its golden fixture: the base preset's official key list and size, other
// frame counts / sizes / batches (embedding interpolation), the image path, masking, grad checkpointing,
// the ImageNet initialisation, and bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bevt/backbone.h"
#include "bevt/error.h"
#include "bevt/safetensors.h"
#include "bevt/state_dict.h"
#include "host/registry.h"
#include "test_sandbox.h"

namespace {

const bevt::host::Registry& registry() {
  static bevt::host::Registry reg = bevt::host::Registry::discover({BEVT_PLUGIN_DIR});
  return reg;
}

std::shared_ptr<bevt::Backbone> make(const std::string& plugin, const std::string& extra) {
  bevt::Config cfg = bevt::Config::from_toml("plugin = \"" + plugin + "\"\n" + extra, "test_timesformer");
  return registry().build_as<bevt::Backbone>("backbone", cfg, bevt::BuildContext{});
}

// The fixture's configuration (small), with official-style weights.
const char* kSmall =
    "img_size = 64\npatch_size = 16\nnum_classes = 10\nembed_dim = 64\ndepth = 2\nnum_heads = 4\n"
    "qkv_bias = true\ndrop_path_rate = 0.0\nnum_frames = 4\nnorm_eps = 1e-6\n";

// kSmall with the keys of `extra` (one "key = value" per line) replaced.
std::string small_with(const std::string& extra) {
  std::istringstream base(kSmall);
  std::string out = extra, line;
  while (std::getline(base, line))
    if (extra.find(line.substr(0, line.find(' ')) + " =") == std::string::npos) out += line + "\n";
  return out;
}

std::shared_ptr<bevt::Backbone> small(const std::string& extra = "") {
  torch::manual_seed(0);
  auto bb = make("timesformer", small_with(extra));
  // Perturb everything (temporal_fc and time_embed start at zero) so that no path is trivially inert.
  torch::NoGradGuard g;
  for (auto& p : bb->parameters()) p.add_(torch::randn_like(p) * 0.02);
  bb->eval();
  return bb;
}

double rel(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).norm().item<double>() / std::max(b.norm().item<double>(), 1e-12);
}

TEST(timesformer, BasePresetHasOfficialKeysAndSize) {
  auto bb = make("timesformer_base", "num_classes = 400\n");
  std::ifstream in(std::string(BEVT_SOURCE_DIR) + "/tests/reference/keys/keys_timesformer_base_k400.txt");
  ASSERT_TRUE(in.good());
  std::map<std::string, std::string> want;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto sp = line.find(' ');
    std::string k = line.substr(0, sp);
    if (k.rfind("model.", 0) == 0) k = k.substr(6);
    want[k] = line.substr(sp + 1);
  }
  std::map<std::string, std::string> have;
  int64_t count = 0;
  for (const auto& [k, t] : bb->export_weights()) {
    if (k == "mask_token") continue;  // bevt's addition for masked modelling (optional on load)
    have[k] = bevt::test::shape_str(t);
    count += t.numel();
  }
  EXPECT_EQ(have, want);
  EXPECT_EQ(count, 121566352);  // 121.6M
  auto sp = bb->spec();
  // One stage on the patch grid (normed tokens) and the global cls token; no stage3/stage4.
  ASSERT_EQ(sp.stages.size(), 2u);
  EXPECT_EQ(sp.stages[0].name, "out");
  EXPECT_EQ(sp.stages[0].channels, 768);
  EXPECT_EQ(sp.stages[0].stride, (std::array<int64_t, 3>{1, 16, 16}));
  EXPECT_TRUE(sp.stages[0].normalised);
  EXPECT_EQ(sp.stages[1].name, "features");
  EXPECT_EQ(sp.stages[1].stride, (std::array<int64_t, 3>{0, 0, 0}));
  EXPECT_TRUE(sp.stages[1].normalised);
  EXPECT_TRUE(sp.has_image_path);
  EXPECT_EQ(sp.output, "out");
  // An official checkpoint's layout ("model." prefix) loads strictly, without mask_token.
  bevt::TensorMap ckpt;
  for (const auto& [k, t] : bb->export_weights())
    if (k != "mask_token") ckpt["model." + k] = t;
  EXPECT_TRUE(bb->load_weights(ckpt).ok());
}

TEST(timesformer, OtherBatchFramesAndSizes) {
  auto bb = small();
  torch::NoGradGuard g;
  torch::Tensor clip = torch::randn({3, 3, 6, 48, 80});  // 6 frames (time_embed 4 -> 6), 3x5 grid (pos 4x4)
  bevt::Features f = bb->forward_video(clip);
  EXPECT_EQ(f.at("embed").sizes(), (std::vector<int64_t>{3, 1 + 15 * 6, 64}));
  EXPECT_EQ(f.at("block1").sizes(), (std::vector<int64_t>{3, 1 + 15 * 6, 64}));
  EXPECT_EQ(f.at("features").sizes(), (std::vector<int64_t>{3, 64}));
  EXPECT_EQ(f.at("logits").sizes(), (std::vector<int64_t>{3, 10}));
  EXPECT_EQ(f.at("out").sizes(), (std::vector<int64_t>{3, 64, 6, 3, 5}));
  EXPECT_TRUE(torch::isfinite(f.at("out")).all().item<bool>());
  EXPECT_EQ(bb->spec().token_grid(6, 48, 80), (std::array<int64_t, 3>{6, 3, 5}));
  // Batched equals one by one.
  for (int64_t i = 0; i < 3; ++i) {
    bevt::Features one = bb->forward_video(clip.slice(0, i, i + 1));
    EXPECT_LT(rel(one.at("out"), f.at("out").slice(0, i, i + 1)), 1e-5);
    EXPECT_LT(rel(one.at("logits"), f.at("logits").slice(0, i, i + 1)), 1e-5);
  }
  // "out" holds the normed patch tokens, (h, w, t) order with t fastest.
  torch::Tensor normed = bb->final_norm(f.at("block1"));
  EXPECT_TRUE(torch::allclose(normed.select(1, 0), f.at("features")));
  torch::Tensor tok = normed.slice(1, 1).reshape({3, 3, 5, 6, 64});  // b h w t c
  EXPECT_TRUE(torch::allclose(tok.permute({0, 4, 3, 1, 2}), f.at("out")));
}

TEST(timesformer, ImagePathEqualsOneFrameVideoWithoutTemporalContribution) {
  auto bb = small();
  {
    torch::NoGradGuard g;
    for (auto& item : bb->named_parameters())
      if (item.key().find("temporal_fc") != std::string::npos || item.key() == "time_embed") item.value().zero_();
  }
  torch::NoGradGuard g;
  torch::Tensor img = torch::randn({2, 3, 64, 48});
  bevt::Features v = bb->forward_video(img.unsqueeze(2));
  bevt::Features i = bb->forward_image(img);
  EXPECT_EQ(i.at("out").sizes(), (std::vector<int64_t>{2, 64, 4, 3}));
  EXPECT_LT(rel(i.at("out"), v.at("out").squeeze(2)), 1e-5);
  EXPECT_LT(rel(i.at("logits"), v.at("logits")), 1e-5);
  EXPECT_LT(rel(i.at("block1"), v.at("block1")), 1e-5);
  // With temporal weights the one-frame video path differs (temporal attention over one token is not zero).
  auto bb2 = small();
  EXPECT_GT(rel(bb2->forward_image(img).at("out"), bb2->forward_video(img.unsqueeze(2)).at("out").squeeze(2)), 1e-4);
}

TEST(timesformer, MaskReplacesPatchTokens) {
  auto bb = small();
  torch::NoGradGuard g;
  torch::Tensor clip = torch::randn({2, 3, 4, 64, 64});
  bevt::Features plain = bb->forward_video(clip);
  bevt::Features none = bb->forward_video(clip, torch::zeros({2, 4, 4, 4}, torch::kBool));
  EXPECT_TRUE(torch::equal(plain.at("out"), none.at("out")));
  // A 2x2 mask grid upsampled to 4x4; masked tokens lose all dependence on their pixels.
  torch::Tensor m = torch::zeros({2, 4, 2, 2}, torch::kBool);
  m.index_put_({0, 1, 0, 1}, true);
  bevt::Features a = bb->forward_video(clip, m);
  torch::Tensor clip2 = clip.clone();
  clip2.index_put_({0, torch::indexing::Slice(), 1, torch::indexing::Slice(0, 32), torch::indexing::Slice(32, 64)},
                   torch::randn({3, 32, 32}));
  bevt::Features b = bb->forward_video(clip2, m);
  EXPECT_TRUE(torch::allclose(a.at("embed"), b.at("embed")));
  EXPECT_FALSE(torch::allclose(a.at("embed"), plain.at("embed")));
  // Image mask.
  torch::Tensor img = clip.select(2, 0);
  EXPECT_TRUE(torch::equal(bb->forward_image(img).at("out"),
                           bb->forward_image(img, torch::zeros({2, 4, 4}, torch::kBool)).at("out")));
  EXPECT_THROW(bb->forward_video(clip, torch::zeros({2, 4, 3, 3}, torch::kBool)), bevt::UserError);
}

TEST(timesformer, GradCheckpointingGivesTheSameGradients) {
  auto run = [&](bool ckpt) {
    auto bb = small("drop_path_rate = 0.3\ndrop_rate = 0.1\n");
    bb->train();
    bb->set_grad_checkpointing(ckpt);
    torch::manual_seed(7);
    torch::Tensor clip = torch::randn({2, 3, 2, 32, 32});
    bevt::Features f = bb->forward_video(clip);
    (f.at("logits").pow(2).sum() + f.at("out").mean()).backward();
    std::map<std::string, torch::Tensor> grads;
    for (const auto& item : bb->named_parameters())
      if (item.value().grad().defined()) grads[item.key()] = item.value().grad().clone();
    return grads;
  };
  auto plain = run(false), ckpt = run(true);
  ASSERT_EQ(plain.size(), ckpt.size());
  EXPECT_GT(plain.size(), 30u);
  for (const auto& [k, g] : plain) EXPECT_LT(rel(ckpt.at(k), g), 1e-5) << k;
}

TEST(timesformer, ImageNetCheckpointGetsTheOfficialTemporalInit) {
  auto src = small();
  bevt::TensorMap vit;
  for (const auto& [k, t] : src->export_weights()) {
    if (k.find("temporal") != std::string::npos || k == "time_embed" || k == "mask_token") continue;
    if (k.rfind("head.", 0) == 0) continue;
    vit[k] = t;
  }
  vit["head.weight"] = torch::zeros({1000, 64});
  vit["head.bias"] = torch::zeros({1000});
  // A ViT trained at another resolution: 2x2 grid resized to 4x4 at load.
  torch::Tensor pe = src->export_weights().at("pos_embed");
  vit["pos_embed"] = torch::cat({pe.slice(1, 0, 1), pe.slice(1, 1, 5)}, 1);
  auto bb = small();
  bevt::LoadReport rep = bb->load_weights(vit);
  EXPECT_TRUE(rep.ok()) << rep.summary();
  bevt::TensorMap w = bb->export_weights();
  EXPECT_TRUE(torch::equal(w.at("blocks.1.temporal_attn.qkv.weight"), w.at("blocks.1.attn.qkv.weight")));
  EXPECT_TRUE(torch::equal(w.at("blocks.0.temporal_norm1.bias"), w.at("blocks.0.norm1.bias")));
  EXPECT_EQ(w.at("blocks.0.temporal_fc.weight").abs().sum().item<double>(), 0.0);
  EXPECT_EQ(w.at("time_embed").abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(w.at("pos_embed").slice(1, 1, 2), pe.slice(1, 1, 2)));
  // A K400 checkpoint with 8 frames loads into a 16-frame model (time_embed resized, nearest).
  auto bb16 = small("num_frames = 16\n");
  bevt::TensorMap k400 = src->export_weights();
  EXPECT_TRUE(bb16->load_weights(k400).ok());
  EXPECT_TRUE(torch::equal(bb16->export_weights().at("time_embed").select(1, 5),
                           k400.at("time_embed").select(1, 1)));
}

// BEVT's video stream from an image-stream checkpoint: the checkpoint's (never trained) temporal weights are
// replaced by the spatial ones, as the official ImageNet initialisation does.
TEST(timesformer, TemporalFromSpatialReplacesTheCheckpointsTemporalWeights) {
  auto src = small();
  bevt::TensorMap ck;
  for (const auto& [k, t] : src->export_weights()) ck["backbone." + k] = t;
  ck["cls_head.lm_head.weight"] = torch::zeros({8, 64});  // a whole pre-training checkpoint
  auto keep = small();
  bevt::LoadOptions lo;
  lo.strict = false;
  keep->load_weights(ck, lo);
  bevt::TensorMap k = keep->export_weights();
  EXPECT_TRUE(torch::equal(k.at("blocks.1.temporal_attn.qkv.weight"), ck.at("backbone.blocks.1.temporal_attn.qkv.weight")));
  EXPECT_FALSE(torch::equal(k.at("blocks.1.temporal_attn.qkv.weight"), k.at("blocks.1.attn.qkv.weight")));

  auto bb = small("temporal_from_spatial = true\n");
  EXPECT_TRUE(bb->load_weights(ck, lo).loaded > 0);
  bevt::TensorMap w = bb->export_weights();
  for (int i = 0; i < 2; ++i) {
    const std::string b = "blocks." + std::to_string(i);
    EXPECT_TRUE(torch::equal(w.at(b + ".temporal_attn.qkv.weight"), ck.at("backbone." + b + ".attn.qkv.weight")));
    EXPECT_TRUE(torch::equal(w.at(b + ".temporal_attn.proj.bias"), ck.at("backbone." + b + ".attn.proj.bias")));
    EXPECT_TRUE(torch::equal(w.at(b + ".temporal_norm1.weight"), ck.at("backbone." + b + ".norm1.weight")));
    EXPECT_EQ(w.at(b + ".temporal_fc.weight").abs().sum().item<double>(), 0.0);
    EXPECT_EQ(w.at(b + ".temporal_fc.bias").abs().sum().item<double>(), 0.0);
    EXPECT_TRUE(torch::equal(w.at(b + ".mlp.fc1.weight"), ck.at("backbone." + b + ".mlp.fc1.weight")));
  }
  EXPECT_EQ(w.at("time_embed").abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(w.at("mask_token"), ck.at("backbone.mask_token")));
  EXPECT_TRUE(torch::equal(w.at("pos_embed"), ck.at("backbone.pos_embed")));
}

// Layer-wise lr decay levels (BEiT's ViT numbering): embeddings 0, blocks.i at i + 1, the final norm last.
TEST(timesformer, LayerLevelsFollowTheBlocks) {
  auto bb = small();
  EXPECT_EQ(bb->num_layer_levels(), 3);  // depth 2
  for (const auto& [k, t] : bb->export_weights()) {
    int64_t want = 2;  // norm.*, head.*
    if (k.rfind("blocks.0.", 0) == 0) want = 1;
    else if (k.rfind("blocks.1.", 0) == 0) want = 2;
    else if (k == "cls_token" || k == "pos_embed" || k == "time_embed" || k == "mask_token" ||
             k.rfind("patch_embed.", 0) == 0)
      want = 0;
    EXPECT_EQ(bb->layer_level(k), want) << k;
  }
  auto base = make("timesformer_base", "");
  EXPECT_EQ(base->num_layer_levels(), 13);
  EXPECT_EQ(base->layer_level("blocks.0.attn.qkv.weight"), 1);
  EXPECT_EQ(base->layer_level("blocks.11.temporal_fc.bias"), 12);
  EXPECT_EQ(base->layer_level("patch_embed.proj.weight"), 0);
  EXPECT_EQ(base->layer_level("norm.weight"), 12);
}

// The quickstart preset: 8 frames of 64x64 give 4x4 tokens per frame, the quickstart tokenizer's grid.
TEST(timesformer, TinyPresetFitsTheSyntheticClips) {
  auto bb = make("timesformer_tiny", "");
  bb->eval();
  torch::NoGradGuard g;
  bevt::Features f = bb->forward_video(torch::rand({2, 3, 8, 64, 64}));
  EXPECT_EQ(f.at("out").sizes(), (std::vector<int64_t>{2, 128, 8, 4, 4}));
  EXPECT_EQ(bb->forward_image(torch::rand({2, 3, 64, 64})).at("out").sizes(), (std::vector<int64_t>{2, 128, 4, 4}));
  EXPECT_EQ(bb->num_layer_levels(), 5);
  EXPECT_FALSE(f.has("logits"));
}

TEST(timesformer, BadInputIsAUserError) {
  auto bb = small();
  torch::NoGradGuard g;
  EXPECT_THROW(bb->forward_video(torch::randn({2, 3, 64, 64})), bevt::UserError);
  EXPECT_THROW(bb->forward_video(torch::randn({2, 1, 4, 64, 64})), bevt::UserError);
  EXPECT_THROW(bb->forward_video(torch::randn({2, 3, 4, 60, 64})), bevt::UserError);
  EXPECT_THROW(bb->forward_image(torch::randn({2, 3, 4, 64, 64})), bevt::UserError);
  EXPECT_THROW(make("timesformer", "attention_type = \"space_only\"\n"), bevt::UserError);
  EXPECT_THROW(make("timesformer", "embed_dim = 100\nnum_heads = 12\n"), bevt::UserError);
  EXPECT_THROW(make("timesformer", std::string(kSmall) + "weights = \"/nonexistent.safetensors\"\n"),
               bevt::UserError);
  // Weights of another width: strict load names the mis-shaped keys.
  auto wide = make("timesformer", "img_size = 64\nembed_dim = 32\ndepth = 2\nnum_heads = 4\nnum_frames = 4\n"
                                  "num_classes = 10\n");
  EXPECT_THROW(bb->load_weights(wide->export_weights()), bevt::UserError);
}

}  // namespace
