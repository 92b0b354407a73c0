// Video Swin weights: official key names, prefixes and optional buffers, export -> load round trip,
// inflation of a 2D Swin checkpoint, temporal-window table resize, mismatch errors, and the MIM heads.
#include <fstream>
#include <set>
#include <sstream>

#include "bevt/error.h"
#include "test_sandbox.h"
#include "swin_registry.h"

using namespace swin_test;

TEST(video_swin_weights, StateDictKeysEqualOfficialSwinTKeys) {
  auto bb = build("plugin = \"video_swin_t\"\n");
  std::ifstream in(std::string(BEVT_SOURCE_DIR) + "/tests/reference/keys/keys_video_swin_tiny_k400.txt");
  ASSERT_TRUE(in.good());
  std::map<std::string, std::string> official;
  std::string line;
  while (std::getline(in, line)) {
    auto sp = line.find(' ');
    std::string k = line.substr(0, sp);
    if (k.rfind("backbone.", 0) != 0) continue;
    official[k.substr(9)] = line.substr(sp + 1);
  }
  ASSERT_GT(official.size(), 150u);
  auto sd = bb->export_weights();
  const std::set<std::string> bevt_extras{"mask_token", "patch_embed_2d.proj.weight", "patch_embed_2d.proj.bias",
                                          "patch_embed_2d.norm.weight", "patch_embed_2d.norm.bias"};
  for (const auto& [k, shape] : official) {
    ASSERT_TRUE(sd.count(k)) << "missing " << k;
    EXPECT_EQ(bevt::test::shape_str(sd[k]), shape) << k;
  }
  for (const auto& [k, v] : sd) {
    if (!official.count(k)) {
      EXPECT_TRUE(bevt_extras.count(k)) << "unexpected " << k;
    }
  }
}

TEST(video_swin_weights, PrefixesOptionalIndexAndRoundTrip) {
  auto w = bevt::load_safetensors(fixture("bevt_swin_video") + "/weights.safetensors").tensors;
  auto cfg = tiny({{"window_size", "[8, 7, 7]"}, {"norm_eps", "1e-5"}});
  auto a = build(cfg, 1);
  a->load_weights(w);
  // Whole-model checkpoint: backbone.* prefixed, cls_head.* ignored, index buffers present.
  auto b = build(cfg, 2);
  bevt::TensorMap whole;
  for (auto& [k, v] : a->export_weights()) whole["backbone." + k] = v;
  whole["cls_head.fc_cls.weight"] = torch::zeros({5, 64});
  auto rep = b->load_weights(whole);
  EXPECT_TRUE(rep.ok()) << rep.summary();
  a->eval();
  b->eval();
  torch::NoGradGuard ng;
  auto clip = torch::randn({1, 3, 8, 64, 64});
  EXPECT_EQ(rel_err(b->forward_video(clip).at("out"), a->forward_video(clip).at("out")), 0.0);
  // A fine-tune (SwinTransformer3D) checkpoint has no BEVT extras: loaded, extras reported as missing.
  bevt::TensorMap ft;
  for (auto& [k, v] : a->export_weights())
    if (k != "mask_token" && k.rfind("patch_embed_2d.", 0) != 0) ft[k] = v;
  auto c = build(cfg, 3);
  auto rep2 = c->load_weights(ft);
  EXPECT_EQ(rep2.missing.size(), 5u);
  c->eval();
  EXPECT_EQ(rel_err(c->forward_video(clip).at("out"), a->forward_video(clip).at("out")), 0.0);
}

TEST(video_swin_weights, MismatchIsOneLineUserError) {
  auto a = build(tiny());
  auto w = a->export_weights();
  w.erase("layers.1.blocks.0.mlp.fc1.weight");
  w["layers.1.blocks.0.mlp.fc3.weight"] = torch::zeros({2, 2});
  w["norm.weight"] = torch::zeros({7});
  auto b = build(tiny());
  try {
    b->load_weights(w);
    FAIL() << "no error";
  } catch (const bevt::UserError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("fc1"), std::string::npos) << m;
    EXPECT_NE(m.find("fc3"), std::string::npos) << m;
    EXPECT_NE(m.find("norm.weight"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

TEST(video_swin_weights, Inflate2DCheckpointMatchesImagePathOnStillClip) {
  // A 2D Swin checkpoint (ImageNet layout) made from a random image model, with 12x12 windows to exercise
  // the bicubic table resize; inflation then has to give a model whose video path on a still clip equals the
  // 2D model (standard Swin) on the image.
  auto src = build(tiny({{"window_size", "[1, 12, 12]"}}), 5);
  bevt::TensorMap ck;
  for (auto& [k, v] : src->export_weights()) {
    if (k.find("relative_position_index") != std::string::npos || k == "mask_token" ||
        k.rfind("patch_embed_2d.", 0) == 0)
      continue;
    ck[k] = v;
  }
  auto emb = src->export_weights();
  ck["patch_embed.proj.weight"] = emb["patch_embed_2d.proj.weight"];
  ck["patch_embed.proj.bias"] = emb["patch_embed_2d.proj.bias"];
  ck["patch_embed.norm.weight"] = emb["patch_embed_2d.norm.weight"];
  ck["patch_embed.norm.bias"] = emb["patch_embed_2d.norm.bias"];
  ck["head.weight"] = torch::zeros({10, 64});
  ck["layers.0.blocks.1.attn_mask"] = torch::zeros({4, 4});
  auto dst = build(tiny({{"window_size", "[8, 7, 7]"}, {"image_attention", "\"swin\""}}), 6);
  auto rep = dst->load_weights(ck);
  EXPECT_EQ(rep.missing, std::vector<std::string>{"mask_token"});
  auto w = dst->export_weights();
  EXPECT_EQ(w["layers.2.blocks.0.attn.relative_position_bias_table"].size(0), 15 * 13 * 13);
  EXPECT_EQ(rel_err(w["patch_embed.proj.weight"].sum(2), ck["patch_embed.proj.weight"]), 0.0);
  // Every temporal offset starts as the (resized) 2D table.
  auto t = w["layers.1.blocks.1.attn.relative_position_bias_table"].view({15, 169, -1});
  EXPECT_EQ(rel_err(t[0], t[7]), 0.0);
  dst->eval();
  torch::NoGradGuard ng;
  auto img = torch::randn({1, 3, 224, 224});
  auto fi = dst->forward_image(img);
  auto fv = dst->forward_video(img.unsqueeze(2).repeat({1, 1, 4, 1, 1}));  // 2 token frames <= window 8
  for (auto name : {"stage1", "stage3", "out"})
    for (int64_t ti = 0; ti < 2; ++ti)
      EXPECT_LT(rel_err(fv.at(name).select(2, ti), fi.at(name)), 1e-4) << name << " t" << ti;
}

TEST(video_swin_weights, TemporalWindowResizeIsTrilinear) {
  auto src = build(tiny({{"window_size", "[2, 7, 7]"}}), 8);
  auto w = src->export_weights();
  // Make one table constant over Δt: a trilinear resize must keep every Δt slice equal to it.
  auto& tab = w["layers.0.blocks.0.attn.relative_position_bias_table"];
  tab = tab.view({3, 169, -1})[1].unsqueeze(0).repeat({3, 1, 1}).reshape({3 * 169, -1}).contiguous();
  auto dst = build(tiny({{"window_size", "[4, 7, 7]"}}), 9);
  auto rep = dst->load_weights(w);
  EXPECT_TRUE(rep.ok()) << rep.summary();
  auto got = dst->export_weights()["layers.0.blocks.0.attn.relative_position_bias_table"];
  ASSERT_EQ(got.size(0), 7 * 169);
  auto g = got.view({7, 169, -1});
  for (int64_t d = 0; d < 7; ++d) EXPECT_LT(rel_err(g[d], tab.view({3, 169, -1})[1]), 1e-6) << d;
  // An explicit pretrained_window_size that does not fit the file is an error.
  auto bad = build(tiny({{"window_size", "[4, 7, 7]"}, {"pretrained_window_size", "[4, 6, 7]"}}));
  EXPECT_THROW(bad->load_weights(w), bevt::UserError);
}

TEST(video_swin_mim_heads, ShapesLogitsAndWholeCheckpointLoading) {
  auto bb = build(tiny());
  bb->eval();
  auto hv = build_head("mim_video", *bb, 32);
  auto hi = build_head("mim_image", *bb);
  torch::NoGradGuard ng;
  auto fv = bb->forward_video(torch::randn({2, 3, 8, 64, 64}));
  EXPECT_EQ(hv->forward(fv, *bb).sizes().vec(), (std::vector<int64_t>{2, 8 * 4 * 4, 32}));
  auto fi = bb->forward_image(torch::randn({2, 3, 224, 224}));
  EXPECT_EQ(hi->forward(fi, *bb).sizes().vec(), (std::vector<int64_t>{2, 196, 64}));
  // Whole BEVT checkpoint: backbone.fpn_s.0.* etc. and cls_head.lm_head.*.
  bevt::TensorMap whole;
  for (auto& [k, v] : hv->export_weights())
    whole[(k.rfind("cls_head.", 0) == 0 ? "" : "backbone.") + k] = torch::randn_like(v);
  for (auto& [k, v] : bb->export_weights()) whole["backbone." + k] = v;
  auto hv2 = build_head("mim_video", *bb, 32);
  auto rep = hv2->load_weights(whole);
  EXPECT_TRUE(rep.ok()) << rep.summary();
  EXPECT_EQ(rel_err(hv2->export_weights()["cls_head.lm_head.weight"], whole["cls_head.lm_head.weight"]), 0.0);
  // A head needs a backbone spec.
  auto cfg = bevt::Config::from_toml("plugin = \"mim_image\"\n", "test");
  EXPECT_THROW(registry().build_as<bevt::Head>("test", cfg, bevt::BuildContext{}), bevt::UserError);
}
