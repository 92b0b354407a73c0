// Video Swin forward properties the golden fixtures do not reach: batch > 2, non-square inputs, temporal
// padding with a temporal shift, other windows, the mask token, the standard-Swin image mode, gradient
// checkpointing (of every stage and of chosen stages), and one-line errors for bad input.
#include "../bench/tensor_memory.h"
#include "bevt/error.h"
#include "swin_registry.h"

using namespace swin_test;

namespace {

void expect_shapes_follow_spec(bevt::Backbone& bb, const bevt::Features& f, int64_t B, int64_t T, int64_t H,
                               int64_t W, bool image) {
  auto spec = bb.spec();
  ASSERT_EQ(f.names().size(), spec.stages.size());
  for (const auto& s : spec.stages) {
    const auto& t = f.at(s.name);
    auto cdiv = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
    // Each stage halves (rounding up) the previous one; with strides that are powers of two this is a ceil.
    std::vector<int64_t> want{B, s.channels};
    if (!image) want.push_back(cdiv(T, s.stride[0]));
    want.push_back(cdiv(H, s.stride[1]));
    want.push_back(cdiv(W, s.stride[2]));
    EXPECT_EQ(t.sizes().vec(), want) << s.name;
  }
}

}  // namespace

TEST(video_swin, ShapesFollowSpecBatch3NonSquareTemporalPadding) {
  // 10 frames -> 5 token frames with window 2: temporal padding to 6 and a temporal shift of 1.
  auto bb = build(tiny({{"window_size", "[2, 7, 7]"}}));
  bb->eval();
  torch::NoGradGuard ng;
  auto clip = torch::randn({3, 3, 10, 40, 72});
  auto f = bb->forward_video(clip);
  expect_shapes_follow_spec(*bb, f, 3, 10, 40, 72, false);
  EXPECT_TRUE(bb->spec().has_image_path);
  EXPECT_EQ(bb->spec().output, "out");
}

TEST(video_swin, BatchedEqualsPerSample) {
  for (std::string win : {"[2, 7, 7]", "[4, 3, 5]"}) {
    auto bb = build(tiny({{"window_size", win}}));
    bb->eval();
    torch::NoGradGuard ng;
    auto clip = torch::randn({3, 3, 10, 36, 52});
    auto all = bb->forward_video(clip);
    for (int64_t b = 0; b < 3; ++b) {
      auto one = bb->forward_video(clip.narrow(0, b, 1));
      for (auto name : {"stage1", "stage3", "out"})
        EXPECT_LT(rel_err(one.at(name), all.at(name).narrow(0, b, 1)), 1e-5) << win << " " << name << " b" << b;
    }
  }
}

TEST(video_swin, AllFalseMaskEqualsNoMaskAndAllTrueGivesToken) {
  auto bb = build(tiny());
  bb->eval();
  torch::NoGradGuard ng;
  auto clip = torch::randn({2, 3, 8, 64, 64});
  auto ref = bb->forward_video(clip);
  auto none = bb->forward_video(clip, torch::zeros({2, 4, 4, 4}, torch::kBool));
  EXPECT_EQ(rel_err(none.at("out"), ref.at("out")), 0.0);
  auto all = bb->forward_video(clip, torch::ones({2, 4, 16, 16}, torch::kBool));
  auto token = bb->named_parameters()["mask_token"].view({1, 8, 1, 1, 1});
  EXPECT_EQ(rel_err(all.at("layers_in"), token.expand({2, 8, 4, 16, 16})), 0.0);
  // A coarse mask equals its nearest upsampling on the token grid.
  auto coarse = torch::rand({2, 4, 4, 4}) < 0.4;
  auto fine = coarse.repeat_interleave(4, 2).repeat_interleave(4, 3);
  EXPECT_EQ(rel_err(bb->forward_video(clip, coarse).at("out"), bb->forward_video(clip, fine).at("out")), 0.0);
  // Image path likewise.
  auto img = torch::randn({2, 3, 224, 224});
  auto iref = bb->forward_image(img);
  EXPECT_EQ(rel_err(bb->forward_image(img, torch::zeros({2, 14, 14}, torch::kBool)).at("out"), iref.at("out")), 0.0);
}

TEST(video_swin, ImageSwinModeEqualsSingleFrameVideoAndDiffersFromBevtMode) {
  // With a temporal patch of 1 and the 2D embedding equal to the 3D one, a one-frame clip through the video
  // path is standard 2D Swin (clamped windows, mask on shifted blocks only, Δt=0 bias) = image_attention "swin".
  auto bb = build(tiny({{"patch_size", "[1, 4, 4]"}, {"image_attention", "\"swin\""}}));
  {
    torch::NoGradGuard ng;
    auto p = bb->named_parameters();
    p["patch_embed_2d.proj.weight"].copy_(p["patch_embed.proj.weight"].squeeze(2));
    p["patch_embed_2d.proj.bias"].copy_(p["patch_embed.proj.bias"]);
    p["patch_embed_2d.norm.weight"].copy_(p["patch_embed.norm.weight"]);
    p["patch_embed_2d.norm.bias"].copy_(p["patch_embed.norm.bias"]);
  }
  bb->eval();
  torch::NoGradGuard ng;
  auto img = torch::randn({2, 3, 224, 224});
  auto fi = bb->forward_image(img);
  auto fv = bb->forward_video(img.unsqueeze(2));
  for (auto name : {"stage1", "stage2_down", "stage4", "out"})
    EXPECT_LT(rel_err(fi.at(name), fv.at(name).squeeze(2)), 1e-5) << name;
  // Non-multiple sizes work in "swin" mode (padding) and are refused in "bevt" mode.
  EXPECT_EQ(bb->forward_image(torch::randn({1, 3, 100, 130})).at("out").sizes().vec(),
            (std::vector<int64_t>{1, 64, 4, 4}));
  auto quirky = build(tiny({{"patch_size", "[1, 4, 4]"}}));
  quirky->load_weights(bb->export_weights());
  quirky->eval();
  EXPECT_GT(rel_err(quirky->forward_image(img).at("out"), fi.at("out")), 1e-3);
  EXPECT_THROW(quirky->forward_image(torch::randn({1, 3, 100, 130})), bevt::UserError);
}

TEST(video_swin, GradientCheckpointingGivesIdenticalOutputsAndGradients) {
  auto run = [](bool ckpt) {
    auto bb = build(tiny({{"drop_path_rate", "0.3"}, {"window_size", "[2, 7, 7]"}}), 7);
    bb->set_grad_checkpointing(ckpt);
    bb->train();
    torch::manual_seed(11);
    auto clip = torch::randn({2, 3, 6, 40, 56});
    auto f = bb->forward_video(clip);
    auto loss = f.at("out").pow(2).mean() + f.at("stage2").mean();
    loss.backward();
    std::map<std::string, torch::Tensor> g;
    for (auto& p : bb->named_parameters()) g[p.key()] = p.value().grad().defined() ? p.value().grad().clone() : torch::Tensor();
    return std::make_pair(f.at("out").detach().clone(), g);
  };
  auto [o0, g0] = run(false);
  auto [o1, g1] = run(true);
  EXPECT_LT(rel_err(o1, o0), 1e-6);
  ASSERT_EQ(g0.size(), g1.size());
  int checked = 0;
  for (auto& [k, v] : g0) {
    if (!v.defined()) continue;
    ASSERT_TRUE(g1[k].defined()) << k;
    EXPECT_LT(rel_err(g1[k], v), 1e-5) << k;
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

// grad_checkpointing_stages: the listed stages recompute their blocks, the others keep their activations. The
// numbers are those of the unchecked model; the activation memory held for backward lies between none and all.
TEST(video_swin, CheckpointingChosenStagesKeepsGradientsAndSavesPartOfTheMemory) {
  struct Run {
    torch::Tensor out;
    std::map<std::string, torch::Tensor> grads;
    double held_mb = 0;
  };
  auto run = [](const std::map<std::string, std::string>& over) {
    auto kv = over;
    kv["drop_path_rate"] = "0.3";
    kv["window_size"] = "[2, 7, 7]";
    auto bb = build(tiny(kv), 7);
    bb->train();
    torch::manual_seed(11);
    auto clip = torch::randn({2, 3, 6, 56, 56});
    Run r;
    torch::Tensor loss;
    {
      // What the forward leaves alive for backward (saved activations), measured as torch's allocator counts it.
      bevt::bench::TensorMemoryPeak mem;
      auto f = bb->forward_video(clip);
      loss = f.at("out").pow(2).mean() + f.at("stage2").mean();
      r.out = f.at("out").detach().clone();
      r.held_mb = mem.current_mb();
    }
    loss.backward();
    for (auto& p : bb->named_parameters())
      if (p.value().grad().defined()) r.grads[p.key()] = p.value().grad().clone();
    return r;
  };
  const Run none = run({});
  const Run first = run({{"grad_checkpointing", "true"}, {"grad_checkpointing_stages", "[1]"}});
  const Run all = run({{"grad_checkpointing", "true"}});
  const Run listed_all = run({{"grad_checkpointing", "true"}, {"grad_checkpointing_stages", "[4, 3, 2, 1]"}});
  EXPECT_LT(rel_err(first.out, none.out), 1e-6);
  ASSERT_EQ(first.grads.size(), none.grads.size());
  for (const auto& [k, g] : none.grads) EXPECT_LT(rel_err(first.grads.at(k), g), 1e-5) << k;
  EXPECT_LT(all.held_mb, first.held_mb);
  EXPECT_LT(first.held_mb, none.held_mb);
  EXPECT_EQ(listed_all.held_mb, all.held_mb);
  auto error_of = [](const std::string& stages) {
    try {
      build(tiny({{"grad_checkpointing", "true"}, {"grad_checkpointing_stages", stages}}));
    } catch (const bevt::UserError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("[5]").find("grad_checkpointing_stages lists stage 5; stages are 1 to 4"), std::string::npos);
  EXPECT_NE(error_of("[0]").find("lists stage 0"), std::string::npos);
  EXPECT_NE(error_of("[2, 2]").find("lists stage 2 twice"), std::string::npos);
}

TEST(video_swin, TrainingGradientsReachTablesAndMaskToken) {
  auto bb = build(tiny());
  bb->train();
  auto f = bb->forward_video(torch::randn({1, 3, 4, 32, 32}), torch::ones({1, 2, 8, 8}, torch::kBool));
  // A random weighting: the plain sum of a LayerNorm'd output has a zero gradient (only rounding reaches back).
  (f.at("out") * torch::randn_like(f.at("out"))).sum().backward();
  auto p = bb->named_parameters();
  EXPECT_GT(p["mask_token"].grad().abs().sum().item<double>(), 0);
  EXPECT_GT(p["layers.0.blocks.1.attn.relative_position_bias_table"].grad().abs().sum().item<double>(), 0);
  // Eval after a parameter update uses the new table (the bias cache follows the table's version).
  bb->eval();
  torch::NoGradGuard ng;
  auto clip = torch::randn({1, 3, 4, 32, 32});
  auto a = bb->forward_video(clip).at("out").clone();
  {
    auto& t = p["layers.0.blocks.0.attn.relative_position_bias_table"];
    t.add_(torch::randn_like(t));  // a constant shift would cancel in the softmax
  }
  auto b = bb->forward_video(clip).at("out");
  EXPECT_GT(rel_err(b, a), 1e-6);
}

TEST(video_swin, BadInputsAreOneLineUserErrors) {
  auto bb = build(tiny());
  bb->eval();
  torch::NoGradGuard ng;
  auto expect_user_error = [](auto fn, const std::string& part) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected one mentioning " << part;
    } catch (const bevt::UserError& e) {
      std::string m = e.what();
      EXPECT_NE(m.find(part), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  };
  expect_user_error([&] { bb->forward_video(torch::randn({1, 3, 32, 32})); }, "dims");
  expect_user_error([&] { bb->forward_video(torch::randn({1, 4, 4, 32, 32})); }, "channels");
  expect_user_error([&] { bb->forward_video(torch::randn({1, 3, 1, 32, 32})); }, "smaller than one patch");
  expect_user_error([&] { bb->forward_image(torch::randn({1, 3, 2, 32})); }, "smaller than one patch");
  expect_user_error([&] { bb->forward_image(torch::randn({1, 3, 4, 32, 32})); }, "dims");
  expect_user_error([&] { bb->forward_image(torch::randn({1, 3, 96, 96})); }, "window");
  expect_user_error([&] { bb->forward_video(torch::randn({2, 3, 4, 32, 32}), torch::zeros({1, 2, 8, 8}, torch::kBool)); },
                    "batch");
  expect_user_error([&] { bb->forward_video(torch::randn({1, 3, 4, 32, 32}), torch::zeros({1, 2, 3, 8}, torch::kBool)); },
                    "divide");
  expect_user_error([&] { build(tiny({{"num_heads", "[1, 2, 4]"}})); }, "same length");
  expect_user_error([&] { build(tiny({{"num_heads", "[3, 2, 4, 8]"}})); }, "not divisible");
  expect_user_error([&] { build(tiny({{"window_size", "[2, 7]"}})); }, "window_size");
  expect_user_error([&] { build(tiny({{"image_attention", "\"other\""}})); }, "image_attention");
  expect_user_error([&] { build(tiny({{"windw_size", "[2, 7, 7]"}})); }, "window_size");
}

TEST(video_swin, PresetsGiveOfficialSizesAndStayOverridable) {
  auto b = build("plugin = \"video_swin_b\"\ndepths = [2, 2, 2, 2]\n");
  auto s = b->spec();
  EXPECT_EQ(s.embed_dim, 128);
  EXPECT_EQ(s.stage("out").channels, 1024);
  EXPECT_EQ(s.stage("stage3").stride, (std::array<int64_t, 3>{2, 16, 16}));
  auto l = build("plugin = \"video_swin_l\"\ndepths = [1, 1, 1, 1]\nembed_dim = 48\nnum_heads = [1, 2, 4, 8]\n");
  EXPECT_EQ(l->spec().stage("out").channels, 384);
}
