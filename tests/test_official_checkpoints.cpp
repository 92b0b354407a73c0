// Official checkpoints in every mode, through the real binaries: files in the model zoo's layout (names,
// shapes and order checked against tests/reference/keys by convert.python; random values, a tiny Swin) are
// written by tests/python/checkpoint_fixtures.py, converted by bevt-convert, then
//  * a fine-tuned Video Swin with mmcv EMAHook buffers (SSv2) runs in test mode, strictly loaded apart from the
//    tensors only pre-training uses, which the loading report lists with the ignored EMA buffers;
//  * a fine-tuned one and a BEVT pre-trained one initialise a fine-tune, as the official fine-tune loads them;
// and the EMA of a fine-tune is updated after every iteration of the gradient accumulation (mmcv's
// runner.iter) and restored on resume.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "run_outputs.h"
#include "test_sandbox.h"

namespace t = bevt::test;
namespace fs = std::filesystem;
using bevt::TensorMap;

namespace {

const std::string kModel =
    "[model.backbone]\nplugin = \"video_swin\"\nembed_dim = 8\ndepths = [1, 1, 1, 1]\nnum_heads = [1, 1, 2, 2]\n"
    "window_size = [2, 4, 4]\nimage_attention = \"swin\"\n[model.heads.cls]\nplugin = \"i3d\"\n";

std::string clips(const std::string& table, const std::string& split, int n) {
  return "[" + table + "]\nplugin = \"synthetic\"\nsplit = \"" + split + "\"\nnum_videos = " + std::to_string(n) +
         "\nframes = 8\nsize = 32\nclip_len = 4\nframe_interval = 2\nscale_range = []\ncrop = \"none\"\n"
         "crop_size = 32\nflip = 0.0\n";
}

// A fine-tune experiment on synthetic clips (12 classes); `optim` is the body of its [optim] table.
fs::path experiment(const fs::path& d, const std::string& name, int64_t steps, const std::string& optim,
                    int batch = 8) {
  fs::path p = d / (name + ".toml");
  t::write_file(p, "[run]\nmode = \"finetune\"\nwork_dir = \"" + (d / name).string() + "\"\nmax_steps = " +
                       std::to_string(steps) + "\nlog_every = 1\nckpt_every = 1\nkeep_last = 5\ndevice = \"cpu\"\n"
                       "seed = 3\n" + kModel + clips("data.train", "train", 16) + clips("data.test", "test", 6) +
                       "[loader]\nbatch_size = " + std::to_string(batch) + "\neval_batch_size = 3\n[optim]\n" + optim);
  return p;
}

// checkpoint_fixtures.py swin3d OUT.pth ARGS: the tiny Swin above, the synthetic set's 12 classes.
void official(const fs::path& out, const std::string& args) {
  auto r = t::run(std::string(BEVT_PYTHON) + " " + BEVT_SOURCE_DIR + "/tests/python/checkpoint_fixtures.py swin3d " +
                  out.string() + " --classes 12 " + args);
  ASSERT_EQ(r.status, 0) << r.output;
}

t::CmdResult convert(const fs::path& src, const fs::path& dst, const std::string& args = "") {
  return t::run(t::bin("bevt-convert") + " " + src.string() + " " + dst.string() + " " + args);
}

// bevt-run EXP in test mode on a weights file; the predictions go to <work>/p.jsonl.
t::CmdResult test_with(const fs::path& exp, const fs::path& weights, const fs::path& work) {
  return t::bevt_run(exp, "--set run.mode=test --set init.checkpoint=" + weights.string() + " --set run.work_dir=" +
                              work.string() + " --dump " + (work / "p.jsonl").string());
}

std::vector<std::vector<double>> probs(const fs::path& jsonl) {
  std::vector<std::vector<double>> out;
  for (const auto& j : t::read_jsonl(jsonl)) out.push_back(j["probs"].get<std::vector<double>>());
  return out;
}

size_t lines_with(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TensorMap load(const fs::path& p) { return bevt::load_safetensors(p.string()).tensors; }

const std::string kKept =
    "not in the file, used only by pre-training (kept at their initial values): backbone.mask_token, "
    "backbone.patch_embed_2d.norm.bias, backbone.patch_embed_2d.norm.weight, backbone.patch_embed_2d.proj.bias, "
    "backbone.patch_embed_2d.proj.weight";

}  // namespace

// The model zoo's SSv2 case: SwinTransformer3D + I3DHead weights and the EMAHook's ema_* buffers. Test mode
// loads it strictly apart from the five BEVT-only tensors bevt's backbone has, evaluates the plain weights (as
// mmaction's tools/test.py, whose model has no EMA buffers to load them into) and says so.
TEST(OfficialCheckpoints, FinetunedSsv2CheckpointRunsInTestMode) {
  auto d = t::temp_dir("official_test_mode");
  fs::path exp = experiment(d, "ft", 1, "");
  official(d / "ssv2.pth", "--ema --seed 1");
  auto r = convert(d / "ssv2.pth", d / "ssv2.safetensors");
  ASSERT_EQ(r.status, 0) << r.output;
  TensorMap file = load(d / "ssv2.safetensors");
  size_t ema = 0;
  for (const auto& kv : file) ema += kv.first.rfind("ema_", 0) == 0;
  EXPECT_EQ(ema, 69u);  // every floating-point parameter of the tiny recognizer, no relative_position_index
  EXPECT_NE(r.output.find("kept 69 mmcv EMA buffers"), std::string::npos) << r.output;

  r = test_with(exp, d / "ssv2.safetensors", d / "keep");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("loaded the model from " + (d / "ssv2.safetensors").string() + ": 73 tensors"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(lines_with(r.output, kKept), 1u) << r.output;
  EXPECT_NE(r.output.find("ignored 69 mmcv EMAHook buffers (ema_*): the official test evaluates the plain weights"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("average no tensor"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("dropped, used only by pre-training"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(d / "keep" / "results.json"));

  // The plain weights are what ran: the same predictions as a file without the buffers; taking the averages
  // instead (bevt-convert --ema use) changes them.
  ASSERT_EQ(convert(d / "ssv2.pth", d / "plain.safetensors", "--ema drop").status, 0);
  ASSERT_EQ(convert(d / "ssv2.pth", d / "avg.safetensors", "--ema use").status, 0);
  r = test_with(exp, d / "plain.safetensors", d / "plain");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("EMAHook buffers"), std::string::npos) << r.output;
  r = test_with(exp, d / "avg.safetensors", d / "avg");
  ASSERT_EQ(r.status, 0) << r.output;
  auto keep = probs(d / "keep" / "p.jsonl");
  ASSERT_EQ(keep.size(), 6u);
  EXPECT_EQ(keep, probs(d / "plain" / "p.jsonl"));
  EXPECT_NE(keep, probs(d / "avg" / "p.jsonl"));

  // bevt-test EXP CKPT, mmaction's tools/test.py spelling, on the same file.
  r = t::run(t::bin("bevt-test") + " " + exp.string() + " " + (d / "ssv2.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(lines_with(r.output, kKept), 1u) << r.output;
  EXPECT_NE(r.output.find("ignored 69 mmcv EMAHook buffers"), std::string::npos) << r.output;
}

// Strict apart from what only pre-training uses: pre-training tensors in the file are dropped and listed; a
// missing or an unknown tensor is a one-line error naming it, status 2.
TEST(OfficialCheckpoints, TestModeIsStrictApartFromPretrainingTensors) {
  auto d = t::temp_dir("official_strict");
  fs::path exp = experiment(d, "ft", 1, "");
  official(d / "extra.pth", "--add backbone.fpn.0.weight --add cls_head.lm_head.bias --add backbone.mask_token");
  ASSERT_EQ(convert(d / "extra.pth", d / "extra.safetensors").status, 0);
  auto r = test_with(exp, d / "extra.safetensors", d / "extra");
  ASSERT_EQ(r.status, 2) << r.output;  // the added mask token is [2], the model's [1,1,8]
  EXPECT_NE(r.output.find("1 mis-shaped: backbone.mask_token (file [2] vs model [1,1,8])"), std::string::npos)
      << r.output;
  official(d / "extra.pth", "--add backbone.fpn.0.weight --add cls_head.lm_head.bias");
  ASSERT_EQ(convert(d / "extra.pth", d / "extra.safetensors").status, 0);
  r = test_with(exp, d / "extra.safetensors", d / "extra");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("dropped, used only by pre-training: backbone.fpn.* (1), cls_head.lm_head.* (1)"),
            std::string::npos)
      << r.output;

  const std::pair<std::string, std::string> cases[] = {
      {"--drop backbone.layers.2.blocks.0.mlp.fc1.bias", "1 missing: backbone.layers.2.blocks.0.mlp.fc1.bias"},
      {"--add backbone.layers.0.blocks.0.attn.gate", "1 unexpected: backbone.layers.0.blocks.0.attn.gate"},
      {"--drop cls_head.fc_cls.weight", "1 missing: cls_head.fc_cls.weight"}};
  for (const auto& [args, want] : cases) {
    official(d / "bad.pth", args);
    ASSERT_EQ(convert(d / "bad.pth", d / "bad.safetensors").status, 0);
    r = test_with(exp, d / "bad.safetensors", d / "bad");
    EXPECT_EQ(r.status, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find((d / "bad.safetensors").string() + ": weights do not fit the model: "), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find(want), std::string::npos) << args << "\n" << r.output;
    EXPECT_EQ(lines_with(r.output, "weights do not fit"), 1u) << r.output;  // one line
  }
}

// Fine-tuning from official files loads the backbone as BEVT's SwinTransformer3D.init_weights does: prefixes
// module./backbone./encoder. stripped, relative_position_index rebuilt, everything else of the backbone taken
// (a learning rate of 1e-12 keeps the weights of step 1 equal to the file's), decoders, vocabulary classifier,
// tokenizer, classifier and EMA buffers left out, each listed.
TEST(OfficialCheckpoints, FinetuneStartsFromOfficialCheckpoints) {
  auto d = t::temp_dir("official_finetune");
  official(d / "bevt.pth", "--pretrain --seed 2");
  ASSERT_EQ(convert(d / "bevt.pth", d / "bevt.safetensors").status, 0);
  fs::path exp = experiment(d, "from_bevt", 1, "lr = 1e-12\n");
  auto r = t::bevt_run(exp, "--set init.checkpoint=" + (d / "bevt.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("initialised the backbone from " + (d / "bevt.safetensors").string() + ": 72 tensors"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("dropped, used only by pre-training: backbone.fpn.* (2), backbone.fpn_s.* (2), "
                          "backbone.fpn_t.* (2), backbone.lm_down.* (2), backbone.lm_down_st.* (2), "
                          "cls_head.lm_head.* (2), cls_head.vae_encoder.* ("),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("kept at their initial values"), std::string::npos) << r.output;
  TensorMap file = load(d / "bevt.safetensors");
  TensorMap trained = load(d / "from_bevt" / "checkpoints" / "step_1" / "model.safetensors");
  size_t compared = 0;
  for (const auto& [k, v] : trained) {
    if (k.rfind("backbone.", 0) != 0 || k.find("relative_position_index") != std::string::npos) continue;
    ASSERT_TRUE(file.count(k)) << k;
    EXPECT_TRUE(torch::allclose(v, file.at(k), 1e-6, 1e-8)) << k;
    ++compared;
  }
  EXPECT_EQ(compared, 72u);  // the 3D backbone, the 2D embedding and the mask token

  official(d / "ssv2.pth", "--ema --seed 4");
  ASSERT_EQ(convert(d / "ssv2.pth", d / "ssv2.safetensors").status, 0);
  exp = experiment(d, "from_ssv2", 1, "lr = 1e-12\n");
  r = t::bevt_run(exp, "--set init.checkpoint=" + (d / "ssv2.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find(": 67 tensors"), std::string::npos) << r.output;
  EXPECT_EQ(lines_with(r.output, kKept), 1u) << r.output;
  EXPECT_NE(r.output.find("ignored 69 mmcv EMAHook buffers (ema_*): a fine-tune starts its own average"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("not loaded, not part of what this run initialises: cls_head.fc_cls.* (2)"),
            std::string::npos)
      << r.output;
  file = load(d / "ssv2.safetensors");
  trained = load(d / "from_ssv2" / "checkpoints" / "step_1" / "model.safetensors");
  EXPECT_TRUE(torch::allclose(trained.at("backbone.layers.3.blocks.0.mlp.fc2.weight"),
                              file.at("backbone.layers.3.blocks.0.mlp.fc2.weight"), 1e-6, 1e-8));
  EXPECT_FALSE(torch::allclose(trained.at("cls_head.fc_cls.weight"), file.at("cls_head.fc_cls.weight")));
}

// 4 iterations per optimiser step, momentum 0.9 with warm_up 20 (so the hook's warm-up ratio bites): between
// step 1's and step 2's checkpoints the average takes iterations 4, 5, 6 (step 1's weights again) and 7 (step
// 2's), m_i = (1 + i) / (20 + i). Updating once per optimiser step would give another value.
TEST(OfficialCheckpoints, EmaUpdatesAfterEveryIterationAndResumes) {
  auto d = t::temp_dir("official_ema");
  const std::string optim = "ema = 0.9\nema_warmup = 20\naccum_steps = 4\n";
  fs::path a = experiment(d, "a", 2, optim, 2);
  auto r = t::bevt_run(a);
  ASSERT_EQ(r.status, 0) << r.output;
  const fs::path c = d / "a" / "checkpoints";
  TensorMap w1 = load(c / "step_1" / "model.safetensors"), e1 = load(c / "step_1" / "ema.safetensors");
  TensorMap w2 = load(c / "step_2" / "model.safetensors"), e2 = load(c / "step_2" / "ema.safetensors");
  auto m = [](double i) { return std::min(0.9, (1 + i) / (20 + i)); };
  const double keep = (1 - m(4)) * (1 - m(5)) * (1 - m(6));
  size_t checked = 0, moved = 0;
  for (const auto& [k, e] : e2) {
    if (!e.is_floating_point() || k.find("relative_position") != std::string::npos) continue;
    torch::Tensor x1 = w1.at(k).to(torch::kFloat64), a1 = e1.at(k).to(torch::kFloat64);
    torch::Tensor want = (1 - m(7)) * (x1 + (a1 - x1) * keep) + m(7) * w2.at(k).to(torch::kFloat64);
    EXPECT_TRUE(torch::allclose(e.to(torch::kFloat64), want, 1e-5, 1e-6)) << k;
    // Once per step (iteration 1 of the optimiser's count) would be (1 − m(1))·a1 + m(1)·w2.
    torch::Tensor per_step = (1 - m(1)) * a1 + m(1) * w2.at(k).to(torch::kFloat64);
    moved += !torch::allclose(e.to(torch::kFloat64), per_step, 1e-5, 1e-6);
    ++checked;
  }
  EXPECT_GT(checked, 60u);
  EXPECT_GT(moved, 30u);

  // Resumed from step 1 in another work_dir, step 2's averages are bit-identical: they were saved and restored.
  fs::path b = experiment(d, "b", 2, optim, 2);
  r = t::bevt_run(b, "--resume " + (c / "step_1").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(t::same_tensors(c / "step_2" / "ema.safetensors", d / "b" / "checkpoints" / "step_2" / "ema.safetensors"));
  EXPECT_TRUE(t::same_tensors(c / "step_2" / "model.safetensors", d / "b" / "checkpoints" / "step_2" / "model.safetensors"));
}
