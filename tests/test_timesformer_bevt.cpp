// BEVT on a one-scale backbone (TimeSformer): the MIM heads' "tokens" decoder chosen from the backbone's spec,
// BEVT pre-training with both streams through the real bevt-run, and the plan variants that run the
// quickstart with TimeSformer through one --set.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bevt/backbone.h"
#include "bevt/head.h"
#include "bevt/safetensors.h"
#include "host/config/experiment_file.h"
#include "host/orchestrate/plan.h"
#include "host/registry.h"
#include "test_sandbox.h"

namespace t = bevt::test;
using t::read_text;
namespace fs = std::filesystem;

namespace {

const bevt::host::Registry& registry() {
  static bevt::host::Registry reg = bevt::host::Registry::discover({BEVT_PLUGIN_DIR});
  return reg;
}

// 32x48 frames with patch 8 give 4x6 tokens per frame.
const char* kTsf =
    "plugin = \"timesformer\"\nimg_size = 32\npatch_size = 8\nembed_dim = 32\ndepth = 2\nnum_heads = 2\n"
    "num_frames = 4\nnum_classes = 0\nnorm_eps = 1e-6\nqkv_bias = true\ndrop_path_rate = 0.0\n";

const char* kSwin =
    "plugin = \"video_swin\"\nembed_dim = 8\ndepths = [1, 1, 1, 1]\nnum_heads = [1, 1, 2, 2]\n"
    "window_size = [2, 4, 4]\ndrop_path_rate = 0.0\nimage_attention = \"swin\"\n";

std::shared_ptr<bevt::Backbone> backbone(const std::string& toml) {
  torch::manual_seed(0);
  auto bb = registry().build_as<bevt::Backbone>("test", bevt::Config::from_toml(toml, "test"), bevt::BuildContext{});
  // Perturb everything (the final norm included, so that a second normalisation would show).
  torch::NoGradGuard g;
  for (auto& p : bb->parameters()) p.add_(torch::randn_like(p) * 0.1);
  bb->eval();
  return bb;
}

std::shared_ptr<bevt::Head> head(const std::string& plugin, const bevt::Backbone& bb, int64_t vocab,
                                 const std::string& extra = "") {
  bevt::BuildContext ctx;
  ctx.backbone = bb.spec();
  ctx.vocab_size = vocab;
  return registry().build_as<bevt::Head>("test", bevt::Config::from_toml("plugin = \"" + plugin + "\"\n" + extra, "test"),
                                         ctx);
}

double rel(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).norm().item<double>() / std::max(b.norm().item<double>(), 1e-12);
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  nlohmann::json j;
  in >> j;
  return j;
}

std::string run_toml(const fs::path& wd, int steps) {
  return "[run]\nmode = \"pretrain\"\nwork_dir = \"" + wd.string() + "\"\nmax_steps = " + std::to_string(steps) +
         "\nlog_every = 1\ndevice = \"cpu\"\nseed = 3\n";
}

// Tiny BEVT pre-training on generated 32x32 clips of 4 frames: a random small DALL-E encoder gives 4x4 tokens
// per 32x32 tokenizer view, the grid of a patch-8 TimeSformer.
std::string pretrain_body(const std::string& backbone_toml, int tok_size) {
  auto clips = [&](const std::string& table, bool video) {
    return "[" + table + "]\nplugin = \"synthetic\"\nsplit = \"train\"\nnum_videos = 8\nframes = 8\nsize = 32\n"
           "clip_len = 4\nframe_interval = 2\nscale_range = []\ncrop = \"none\"\ncrop_size = 32\nflip = 0.0\n"
           "video = " + std::string(video ? "true" : "false") + "\ntokenizer_size = " + std::to_string(tok_size) + "\n";
  };
  // Half of a 4x4 token grid (or of a 2x2 one).
  const std::string masks = tok_size >= 32 ? "num_masking_patches = 8\nmin_num_patches = 2\n"
                                           : "num_masking_patches = 2\nmin_num_patches = 1\n";
  return "[model.backbone]\n" + backbone_toml +
         "[tokenizer]\nplugin = \"dalle\"\nn_hid = 16\nn_blk_per_group = 1\nvocab_size = 32\ninput_size = " +
         std::to_string(tok_size) +
         "\n[model.heads.image]\nplugin = \"mim_image\"\n[model.heads.video]\nplugin = \"mim_video\"\n"
         "[masker.image]\nplugin = \"blockwise\"\n" + masks + "[masker.video]\nplugin = \"bevt_tube\"\n" + masks +
         clips("data.image", false) + clips("data.video", true) +
         "[loader]\nbatch_size = 2\nimage_batch_size = 4\nworkers = 1\n[optim]\nlr = 1e-3\nwarmup_steps = 1\n";
}

t::CmdResult bevt_run(const fs::path& exp, const std::string& extra = "") {
  return t::run(t::bin("bevt-run") + " " + exp.string() + " " + extra);
}

}  // namespace

TEST(MimTokens, OneScaleBackbonePredictsEveryTokenOfItsPatchGrid) {
  auto bb = backbone(kTsf);
  auto hv = head("mim_video", *bb, 16), hi = head("mim_image", *bb, 16);
  // No decoder layers: only the (shared) vocabulary classifier on the backbone's channels.
  for (const auto& h : {hv, hi}) {
    auto w = h->export_weights();
    ASSERT_EQ(w.size(), 2u);
    EXPECT_EQ(t::shape_str(w.at("cls_head.lm_head.weight")), "[16, 32]");
    EXPECT_EQ(t::shape_str(w.at("cls_head.lm_head.bias")), "[16]");
  }
  torch::NoGradGuard g;
  torch::Tensor clip = torch::randn({2, 3, 4, 32, 48});
  bevt::Features f = bb->forward_video(clip);
  torch::Tensor logits = hv->forward(f, *bb);
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 4 * 4 * 6, 16}));  // one prediction per frame
  // Token (t, h, w) order; each token's normed feature (normalised once, by the backbone) through lm_head.
  auto w = hv->export_weights();
  auto lm = [&](const torch::Tensor& x) { return torch::matmul(x, w.at("cls_head.lm_head.weight").t()) + w.at("cls_head.lm_head.bias"); };
  const torch::Tensor& out = f.at("out");  // [B, C, T, H, W]
  EXPECT_LT(rel(logits[1][(2 * 4 + 1) * 6 + 5], lm(out.index({1, torch::indexing::Slice(), 2, 1, 5}))), 1e-5);
  EXPECT_LT(rel(logits, lm(out.permute({0, 2, 3, 4, 1}).reshape({2, -1, 32}))), 1e-5);
  // Without a vocabulary the head returns the tokens themselves: no second final norm.
  EXPECT_LT(rel(head("mim_video", *bb, 0)->forward(f, *bb), out.permute({0, 2, 3, 4, 1}).reshape({2, -1, 32})), 1e-6);

  torch::Tensor img = clip.select(2, 0);
  bevt::Features fi = bb->forward_image(img);
  torch::Tensor li = hi->forward(fi, *bb);
  ASSERT_EQ(li.sizes(), (std::vector<int64_t>{2, 4 * 6, 16}));
  auto wi = hi->export_weights();
  torch::Tensor want_i = torch::matmul(fi.at("out").permute({0, 2, 3, 1}).reshape({2, -1, 32}),
                                       wi.at("cls_head.lm_head.weight").t()) + wi.at("cls_head.lm_head.bias");
  EXPECT_LT(rel(li, want_i), 1e-5);
  // A masked image changes the predictions at masked cells.
  torch::Tensor m = torch::zeros({2, 4, 6}, torch::kBool);
  m.index_put_({0, 2, 3}, true);
  EXPECT_GT(rel(hi->forward(bb->forward_image(img, m), *bb)[0][2 * 6 + 3], li[0][2 * 6 + 3]), 1e-3);
}

TEST(MimTokens, GradientsReachTheEncoderAndTheClassifier) {
  auto bb = backbone(kTsf);
  bb->train();
  auto hv = head("mim_video", *bb, 16);
  torch::Tensor logits = hv->forward(bb->forward_video(torch::randn({1, 3, 4, 32, 32})), *bb);
  torch::nn::functional::cross_entropy(logits.reshape({-1, 16}), torch::randint(16, {logits.size(1)})).backward();
  for (const auto& p : hv->named_parameters()) EXPECT_TRUE(p.value().grad().defined()) << p.key();
  int with_grad = 0;
  for (const auto& p : bb->named_parameters())
    if (p.value().grad().defined() && p.value().grad().abs().sum().item<double>() > 0) ++with_grad;
  EXPECT_GT(with_grad, 30);  // blocks, embeddings, final norm
}

TEST(MimTokens, DecoderFollowsTheSpecAndBadChoicesAreUserErrors) {
  auto tsf = backbone(kTsf);
  auto swin = backbone(kSwin);
  // auto: the official decoders on a hierarchical backbone (parity: parity.bevt_swin_*), tokens otherwise.
  auto sv = head("mim_video", *swin, 16);
  EXPECT_TRUE(sv->export_weights().count("fpn_s.0.weight"));
  EXPECT_TRUE(sv->export_weights().count("fpn_t.0.weight"));
  EXPECT_TRUE(head("mim_image", *swin, 16)->export_weights().count("lm_down.weight"));
  EXPECT_FALSE(head("mim_image", *tsf, 16)->export_weights().count("lm_down.weight"));
  EXPECT_EQ(head("mim_image", *tsf, 16, "decoder = \"tokens\"\n")->export_weights().size(), 2u);

  auto err = [&](const std::string& plugin, const bevt::Backbone& bb, const std::string& extra) {
    return t::error_of([&] { head(plugin, bb, 16, extra); });
  };
  std::string e = err("mim_video", *tsf, "decoder = \"fpn\"\n");
  EXPECT_NE(e.find("stage3/stage4"), std::string::npos) << e;
  e = err("mim_image", *tsf, "decoder = \"linear\"\n");
  EXPECT_NE(e.find("auto, fpn or tokens"), std::string::npos) << e;
  // Video Swin's output has temporal stride 2: one token per frame cannot come from it.
  e = err("mim_video", *swin, "decoder = \"tokens\"\n");
  EXPECT_NE(e.find("temporal stride 1"), std::string::npos) << e;
  // The image tokens decoder on Swin reads its (normed) stride-32 output.
  torch::NoGradGuard g;
  auto si = head("mim_image", *swin, 16, "decoder = \"tokens\"\n");
  EXPECT_EQ(si->forward(swin->forward_image(torch::randn({1, 3, 64, 64})), *swin).sizes(),
            (std::vector<int64_t>{1, 4, 16}));
}

// Both BEVT streams with TimeSformer through the real bevt-run: per-frame targets on the patch grid, one
// shared vocabulary classifier, official TimeSformer names in the checkpoint.
TEST(TimesformerBevt, PretrainBothStreamsThroughBevtRun) {
  auto d = t::temp_dir("tsf_bevt_pretrain");
  t::write_file(d / "pre.toml", run_toml(d / "wd" / "pre", 3) + pretrain_body(kTsf, 32));
  auto r = bevt_run(d / "pre.toml");
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream in(d / "wd" / "pre" / "latest" / "metrics.jsonl");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (!j.contains("loss_video")) continue;
    ++n;
    EXPECT_TRUE(j.contains("loss_image") && j.contains("acc_image") && j.contains("acc_video")) << line;
    EXPECT_GT(j["loss_video"].get<double>(), 0.5) << line;  // cross-entropy over 32 ids, finite and real
    EXPECT_LT(j["loss_video"].get<double>(), 10.0) << line;
    EXPECT_GT(j["loss_image"].get<double>(), 0.5) << line;
  }
  EXPECT_EQ(n, 3);
  auto ck = bevt::load_safetensors((d / "wd" / "pre" / "checkpoints" / "step_3" / "model.safetensors").string()).tensors;
  EXPECT_EQ(t::shape_str(ck.at("cls_head.lm_head.weight")), "[32, 32]");
  EXPECT_EQ(t::shape_str(ck.at("backbone.time_embed")), "[1, 4, 32]");
  EXPECT_TRUE(ck.count("backbone.blocks.1.temporal_fc.weight"));
  EXPECT_TRUE(ck.count("backbone.mask_token"));
  for (const auto& [k, v] : ck) EXPECT_EQ(k.find("fpn"), std::string::npos) << k;
  // The temporal weights trained (the video stream reaches them); temporal_fc starts at zero.
  EXPECT_GT(ck.at("backbone.blocks.0.temporal_fc.weight").abs().sum().item<double>(), 0.0);

  // A tokenizer grid that is not the patch grid is a one-line error naming the key to change.
  t::write_file(d / "bad.toml", run_toml(d / "wd" / "bad", 1) + pretrain_body(kTsf, 16));
  r = bevt_run(d / "bad.toml");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("tokenizer_size"), std::string::npos) << r.output;
}

// plan.variant picks another stage list; each variant's stages keep their own work_dirs, so neither
// overwrites nor skips the other's.
TEST(PlanVariant, OneSetRunsTheVariantsStagesAndKeepsTheirResultsApart) {
  auto d = t::temp_dir("tsf_pipeline_variant");
  t::write_file(d / "swin.toml", run_toml(d / "wd" / "swin", 1) + pretrain_body(kSwin, 16));
  t::write_file(d / "tsf.toml", run_toml(d / "wd" / "tsf", 1) + pretrain_body(kTsf, 32));
  t::write_file(d / "pipe.toml", "[plan]\nwork_dir = \"" + (d / "wd" / "pipe").string() +
                                     "\"\nstages = [\"swin.toml\"]\n"
                                     "[plan.variants.tsf]\nstages = [\"tsf.toml\"]\n");
  auto r = bevt_run(d / "pipe.toml", "--set plan.variant=tsf");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(d / "wd" / "tsf" / "results.json"));
  EXPECT_FALSE(fs::exists(d / "wd" / "swin"));
  EXPECT_NE(read_text(d / "wd" / "tsf" / "config.toml").find("plugin = 'timesformer'"), std::string::npos)
      << read_text(d / "wd" / "tsf" / "config.toml");
  auto pr = read_json(d / "wd" / "pipe" / "results.json");
  EXPECT_EQ(pr["mode"], "plan");
  EXPECT_EQ(pr["variant"], "tsf");
  EXPECT_TRUE(pr["complete"].get<bool>());
  ASSERT_EQ(pr["stages"].size(), 1u);
  EXPECT_EQ(pr["stages"][0]["work_dir"], (d / "wd" / "tsf").string());
  const std::string tsf_results = read_text(d / "wd" / "tsf" / "results.json");

  // The default stages run (not skipped as finished), and leave the variant's results alone.
  r = bevt_run(d / "pipe.toml");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("skipped"), std::string::npos) << r.output;
  EXPECT_NE(read_text(d / "wd" / "swin" / "config.toml").find("plugin = 'video_swin'"), std::string::npos);
  EXPECT_EQ(read_text(d / "wd" / "tsf" / "results.json"), tsf_results);
  EXPECT_EQ(read_json(d / "wd" / "pipe" / "results.json")["variant"], "");

  // Running the variant again finds its finished stage; a --set other than plan.* reaches the stage (its
  // hash: it runs again).
  r = bevt_run(d / "pipe.toml", "--set plan.variant=tsf");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("skipped"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 stages, 0 ran, 1 finished earlier"), std::string::npos) << r.output;
  r = bevt_run(d / "pipe.toml", "--set plan.variant=tsf --set optim.lr=0.002");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("1 stages, 1 ran, 0 finished earlier"), std::string::npos) << r.output;
  EXPECT_NE(read_text(d / "wd" / "tsf" / "config.toml").find("lr = 0.002"), std::string::npos)
      << read_text(d / "wd" / "tsf" / "config.toml");

  r = bevt_run(d / "pipe.toml", "--set plan.variant=tsff");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("plan.variant 'tsff' is not defined"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean 'tsf'"), std::string::npos) << r.output;

  // The old pipeline format and its --set are one-line errors saying what to write now.
  t::write_file(d / "old.toml", "[run]\nmode = \"pipeline\"\n[pipeline]\nstages = [\"swin.toml\"]\n");
  r = bevt_run(d / "old.toml");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("old.toml:2: run.mode = \"pipeline\" is the old pipeline format"), std::string::npos)
      << r.output;
  r = bevt_run(d / "pipe.toml", "--set pipeline.variant=tsf");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("[pipeline] is now [plan]"), std::string::npos) << r.output;
}

// The shipped quickstart: its timesformer variant runs timesformer_tiny in every model stage, shares only the
// tokenizer stage with the Video Swin plan, and chains its own pretrain -> finetune -> probe work_dirs.
TEST(PlanVariant, QuickstartTimesformerVariantStages) {
  const fs::path ex = fs::path(BEVT_SOURCE_DIR) / "experiments";
  namespace o = bevt::host::orchestrate;
  const o::PlanSpec tsf_plan = o::read_plan((ex / "quickstart.toml").string(), {"plan.variant=timesformer"});
  EXPECT_EQ(tsf_plan.variant, "timesformer");
  std::vector<std::string> swin, tsf;
  for (const auto& s : o::read_plan((ex / "quickstart.toml").string(), {}).stages) swin.push_back(s.name);
  for (const auto& s : tsf_plan.stages) tsf.push_back(s.name);
  ASSERT_EQ(tsf.size(), swin.size());
  auto work_dir = [&](const std::string& stage) {
    bevt::Config c = bevt::host::load_experiment((ex / stage).string(), {});
    return c.get_table("run").get_string("work_dir");
  };
  std::map<std::string, std::string> dirs;
  for (const auto& s : swin) dirs[work_dir(s)] = s;
  for (const auto& s : tsf) {
    bevt::Config c = bevt::host::load_experiment((ex / s).string(), {});
    const std::string mode = c.get_table("run").get_string("mode");
    const std::string wd = work_dir(s);
    if (mode == "tokenizer") {
      EXPECT_EQ(dirs[wd], s) << "the tokenizer stage is shared";
      continue;
    }
    EXPECT_EQ(c.get_table("model").get_table("backbone").get_string("plugin"), "timesformer_tiny") << s;
    EXPECT_EQ(wd.rfind("work_dirs/quickstart/timesformer/", 0), 0u) << s << ": " << wd;
    EXPECT_FALSE(dirs.count(wd)) << s << " shares " << wd << " with the Video Swin pipeline";
    if (mode != "pretrain") {
      EXPECT_EQ(c.get_table("init").get_string("checkpoint").rfind("work_dirs/quickstart/timesformer/", 0), 0u) << s;
    }
  }
  // The pre-training stage composes: the decoders become token classifiers on the tiny TimeSformer's 128
  // channels (256 x 128 + 256 for the quickstart tokenizer's 256 ids), no Swin keys are left over.
  auto d = t::temp_dir("tsf_quickstart_dry");
  auto r = t::run(t::bin("bevt-run") + " " + (ex / "quickstart/timesformer/pretrain.toml").string() +
                  " --dry-run --set tokenizer.weights='' --set data.image.num_videos=4 --set data.video.num_videos=4"
                  " --set run.work_dir='" + (d / "pre").string() + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("timesformer_tiny"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("window_size"), std::string::npos) << r.output;
  for (const char* h : {"model.heads.image", "model.heads.video"}) {
    auto at = r.output.find(std::string(h) + " ");
    ASSERT_NE(at, std::string::npos) << r.output;
    EXPECT_NE(r.output.substr(at, r.output.find('\n', at) - at).find(" 33024 "), std::string::npos) << r.output;
  }
}
