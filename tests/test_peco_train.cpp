// PeCo with its adversarial loss through the real bevt-run (run.mode = "tokenizer") on tiny generated images:
// the discriminator's terms are logged, its state rides in the checkpoints but never in tokenizer.safetensors,
// the result loads as the frozen `peco` tokenizer of a pretrain run, a killed run resumes bit for bit, and bad
// adversarial keys are exit status 2.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "bevt/safetensors.h"
#include "run_outputs.h"

namespace t = bevt::test;
using t::bevt_run;
using t::read_jsonl;
using t::same_tensors;
namespace fs = std::filesystem;

namespace {

// A tiny peco: 32x32 images -> 4x4 tokens of 64 codes, a 2-stage Video Swin of width 8 as the perceptual
// network (random weights: the mechanics, not the quality, are under test), a 2-layer PatchGAN from step 1.
std::string peco_table(const std::string& extra = "") {
  return "[tokenizer]\nplugin = \"peco\"\nvocab_size = 64\ncode_dim = 8\ndownsample = 8\nhidden = 16\n"
         "channel_mult = []\ninput_size = 32\nema_decay = 0.9\ndead_code_window = 2\n"
         "perceptual_stages = [\"stage1\", \"stage2\"]\n"
         "disc_weight = 0.8\ndisc_start = 1\ndisc_layers = 2\ndisc_width = 8\n" +
         extra +
         "[tokenizer.perceptual]\nplugin = \"video_swin\"\nembed_dim = 8\ndepths = [1, 1]\nnum_heads = [1, 1]\n"
         "window_size = [2, 4, 4]\ndrop_path_rate = 0.0\nimage_attention = \"swin\"\n";
}

std::string images(const std::string& table, int n, int tok) {
  return "[" + table + "]\nplugin = \"synthetic\"\nsplit = \"train\"\nvideo = false\nnum_videos = " +
         std::to_string(n) + "\nsize = 32\nscale_range = []\ncrop = \"none\"\ncrop_size = 32\nflip = 0.0\n" +
         "tokenizer_size = " + std::to_string(tok) + "\n";
}

std::string peco_run_toml(const fs::path& wd, int steps, const std::string& extra = "") {
  return "[run]\nmode = \"tokenizer\"\nwork_dir = \"" + wd.string() + "\"\nmax_steps = " + std::to_string(steps) +
         "\nlog_every = 1\nckpt_every = 2\ndevice = \"cpu\"\nseed = 3\nthreads = 1\n" + peco_table(extra) +
         images("data.train", 32, 32) +
         "[loader]\nbatch_size = 8\nworkers = 1\n[optim]\nlr = 2e-3\nweight_decay = 0.0\nbetas = [0.5, 0.9]\n"
         "warmup_steps = 0\nclip_grad = 1.0\n";
}

size_t count_prefix(const bevt::TensorMap& m, const std::string& prefix) {
  size_t n = 0;
  for (const auto& kv : m) n += kv.first.rfind(prefix, 0) == 0;
  return n;
}

}  // namespace

TEST(PecoTrain, AdversarialRunLogsCheckpointsAndLoadsAsFrozenTokenizer) {
  auto d = t::temp_dir("peco_gan_run");
  t::write_file(d / "tok.toml", peco_run_toml(d / "tok", 6));
  auto r = bevt_run(d / "tok.toml");
  ASSERT_EQ(r.status, 0) << r.output;
  auto m = read_jsonl(d / "tok" / "latest" / "metrics.jsonl");
  ASSERT_EQ(m.size(), 6u);
  for (const char* k : {"recon", "commit", "perceptual", "adv", "adv_weight", "disc_loss", "logits_real",
                        "logits_fake", "disc_grad_norm", "perplexity", "dead_codes"})
    EXPECT_TRUE(m.back().contains(k)) << k << " missing in " << m.back().dump();
  // Off at step 1 (disc_start = 1 is the second step), on from step 2: a positive adaptive weight and a hinge
  // loss near its chance value 1 for a fresh discriminator.
  EXPECT_EQ(m[0]["adv_weight"].get<double>(), 0.0);
  EXPECT_EQ(m[0]["disc_loss"].get<double>(), 0.0);
  for (size_t i = 1; i < m.size(); ++i) {
    EXPECT_GT(m[i]["adv_weight"].get<double>(), 0.0) << m[i].dump();
    EXPECT_GT(m[i]["disc_loss"].get<double>(), 0.0) << m[i].dump();
    EXPECT_LT(m[i]["disc_loss"].get<double>(), 2.0) << m[i].dump();
  }
  // The progress line shows the adversarial terms.
  EXPECT_NE(r.output.find("disc_loss"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("logits_real"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("adv_weight"), std::string::npos) << r.output;

  // Discriminator and its optimiser state in the checkpoint; never in the exported tokenizer.
  auto ck = bevt::load_safetensors((d / "tok" / "checkpoints" / "step_6" / "model.safetensors").string()).tensors;
  auto opt = bevt::load_safetensors((d / "tok" / "checkpoints" / "step_6" / "optim.safetensors").string()).tensors;
  EXPECT_GT(count_prefix(ck, "discriminator.main."), 0u);
  EXPECT_TRUE(ck.count("discriminator.main.3.running_mean"));  // BatchNorm statistics
  EXPECT_TRUE(opt.count("discriminator.main.0.weight.exp_avg"));
  EXPECT_TRUE(opt.count("encoder.conv_in.weight.exp_avg"));
  auto tok = bevt::load_safetensors((d / "tok" / "tokenizer.safetensors").string()).tensors;
  EXPECT_EQ(count_prefix(tok, "discriminator."), 0u);
  EXPECT_GT(count_prefix(tok, "quantize."), 0u);

  // The trained file as the frozen tokenizer of BEVT pre-training: only the architecture keys and the file
  // (no perceptual table, no discriminator).
  std::string pre =
      "[run]\nmode = \"pretrain\"\nwork_dir = \"" + (d / "pre").string() +
      "\"\nmax_steps = 2\nlog_every = 1\ndevice = \"cpu\"\nseed = 5\n"
      "[model.backbone]\nplugin = \"video_swin\"\nembed_dim = 8\ndepths = [1, 1, 1, 1]\nnum_heads = [1, 1, 2, 2]\n"
      "window_size = [2, 4, 4]\ndrop_path_rate = 0.0\nimage_attention = \"swin\"\n"
      "[tokenizer]\nplugin = \"peco\"\nvocab_size = 64\ncode_dim = 8\ndownsample = 8\nhidden = 16\n"
      "channel_mult = []\ninput_size = 32\nweights = \"" +
      (d / "tok" / "tokenizer.safetensors").string() +
      "\"\n"
      "[model.heads.image]\nplugin = \"mim_image\"\n[model.heads.video]\nplugin = \"mim_video\"\n"
      "[masker.image]\nplugin = \"blockwise\"\nnum_masking_patches = 2\nmin_num_patches = 1\n"
      "[masker.video]\nplugin = \"bevt_tube\"\nnum_masking_patches = 2\nmin_num_patches = 1\n"
      "[data.image]\nplugin = \"synthetic\"\nsplit = \"train\"\nvideo = false\nnum_videos = 16\nsize = 64\n"
      "scale_range = []\ncrop = \"none\"\ncrop_size = 64\nflip = 0.0\ntokenizer_size = 32\n"
      "[data.video]\nplugin = \"synthetic\"\nsplit = \"train\"\nnum_videos = 16\nframes = 8\nsize = 64\n"
      "clip_len = 4\nframe_interval = 2\nscale_range = []\ncrop = \"none\"\ncrop_size = 64\nflip = 0.0\n"
      "tokenizer_size = 32\n"
      "[loader]\nbatch_size = 4\nimage_batch_size = 4\nworkers = 1\n[optim]\nlr = 1e-3\nwarmup_steps = 0\n";
  t::write_file(d / "pre.toml", pre);
  r = bevt_run(d / "pre.toml");
  ASSERT_EQ(r.status, 0) << r.output;
  auto pm = read_jsonl(d / "pre" / "latest" / "metrics.jsonl");
  ASSERT_EQ(pm.size(), 2u);
  EXPECT_TRUE(pm.back().contains("loss_image") && pm.back().contains("loss_video")) << pm.back().dump();

  // A tokenizer-mode checkpoint (with its discriminator.* keys) also loads as the frozen tokenizer.
  std::string pre2 = pre;
  const std::string file = (d / "tok" / "tokenizer.safetensors").string();
  pre2.replace(pre2.find(file), file.size(), (d / "tok" / "checkpoints" / "step_6" / "model.safetensors").string());
  pre2.replace(pre2.find((d / "pre").string()), (d / "pre").string().size(), (d / "pre2").string());
  t::write_file(d / "pre2.toml", pre2);
  r = bevt_run(d / "pre2.toml", "--dry-run");
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST(PecoTrain, KilledAdversarialRunResumesBitIdentical) {
  // Restarts of dead codes (window 2) and discriminator updates happen on both sides of the kill.
  auto d = t::temp_dir("peco_gan_resume");
  t::write_file(d / "a.toml", peco_run_toml(d / "a", 10));
  t::write_file(d / "b.toml", peco_run_toml(d / "b", 10));
  auto ra = bevt_run(d / "a.toml");
  ASSERT_EQ(ra.status, 0) << ra.output;

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!freopen("/dev/null", "w", stdout)) _exit(127);
    execl(t::bin("bevt-run").c_str(), "bevt-run", (d / "b.toml").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  // checkpoints/last is written after the checkpoint folder is in place: once it exists, a checkpoint is whole.
  while (!fs::exists(d / "b" / "checkpoints" / "last") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(fs::exists(d / "b" / "checkpoints" / "step_2"));
  ASSERT_FALSE(fs::exists(d / "b" / "checkpoints" / "step_10")) << "killed too late to test resuming";
  auto r = bevt_run(d / "b.toml", "--resume");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
  for (const char* f : {"model.safetensors", "optim.safetensors"})
    EXPECT_TRUE(same_tensors(d / "a" / "checkpoints" / "step_10" / f, d / "b" / "checkpoints" / "step_10" / f)) << f;
  EXPECT_TRUE(same_tensors(d / "a" / "tokenizer.safetensors", d / "b" / "tokenizer.safetensors"));
  auto ma = read_jsonl(d / "a" / "latest" / "metrics.jsonl"), mb = read_jsonl(d / "b" / "latest" / "metrics.jsonl");
  ASSERT_EQ(mb.size(), 10u);
  for (size_t i = 0; i < ma.size(); ++i)
    for (const char* k : {"loss", "disc_loss", "logits_real", "logits_fake", "adv_weight", "dead_codes"})
      EXPECT_EQ(ma[i][k].get<double>(), mb[i][k].get<double>()) << k << " at step " << i + 1;
}

TEST(PecoTrain, BadAdversarialKeysAreExitStatus2) {
  auto d = t::temp_dir("peco_gan_bad");
  struct Case {
    std::string set, expect;
  };
  for (const Case& c : std::vector<Case>{
           {"tokenizer.disc_weight=-1.0", "disc_weight must be >= 0"},
           {"tokenizer.disc_loss=\\\"wasserstein\\\"", "disc_loss must be \"hinge\" or \"non_saturating\""},
           {"tokenizer.disc_layers=4", "disc_layers must be small enough for input_size = 32"},
           {"tokenizer.disc_start=-2", "disc_start must be >= 0"},
           {"tokenizer.disc_lr_mult=0.0", "disc_lr_mult must be > 0"},
       }) {
    t::write_file(d / "tok.toml", peco_run_toml(d / "tok", 2));
    auto r = bevt_run(d / "tok.toml", "--set \"" + c.set + "\"");
    EXPECT_EQ(r.status, 2) << c.set << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.set << "\n" << r.output;
  }
}
