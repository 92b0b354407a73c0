// The run modes end to end through the real bevt-run, on tiny generated data.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "bevt/safetensors.h"
#include "host/train/optim.h"
#include "run_outputs.h"

namespace t = bevt::test;
using t::bevt_run;
using t::read_json;
using t::read_jsonl;
using t::same_tensors;
namespace fs = std::filesystem;

namespace {

// A tiny Video Swin, a tiny random DALL-E encoder as the frozen tokenizer, 4-frame 32x32 clips.
const char* kModel = R"(
[model.backbone]
plugin = "video_swin"
embed_dim = 8
depths = [1, 1, 1, 1]
num_heads = [1, 1, 2, 2]
window_size = [2, 4, 4]
drop_path_rate = 0.1
image_attention = "swin"
)";

std::string clips(const std::string& table, const std::string& split, int n, bool video = true, int tok = 16) {
  return "[" + table + "]\nplugin = \"synthetic\"\nsplit = \"" + split + "\"\nnum_videos = " + std::to_string(n) +
         "\nframes = 8\nsize = 32\nclip_len = 4\nframe_interval = 2\nscale_range = []\ncrop = \"none\"\n"
         "crop_size = 32\nflip = 0.0\nvideo = " + (video ? "true" : "false") +
         (tok ? "\ntokenizer_size = " + std::to_string(tok) : std::string()) + "\n";
}

std::string pretrain_toml(const fs::path& wd, int steps) {
  return "[run]\nmode = \"pretrain\"\nwork_dir = \"" + wd.string() + "\"\nmax_steps = " + std::to_string(steps) +
         "\nlog_every = 1\nckpt_every = 2\ndevice = \"cpu\"\nseed = 5\n" + kModel +
         "[tokenizer]\nplugin = \"dalle\"\nn_hid = 16\nn_blk_per_group = 1\nvocab_size = 32\ninput_size = 16\n"
         "[model.heads.image]\nplugin = \"mim_image\"\n[model.heads.video]\nplugin = \"mim_video\"\n"
         "[masker.image]\nplugin = \"blockwise\"\nnum_masking_patches = 2\nmin_num_patches = 1\n"
         "[masker.video]\nplugin = \"bevt_tube\"\nnum_masking_patches = 2\nmin_num_patches = 1\n" +
         clips("data.image", "train", 32, false) + clips("data.video", "train", 32) +
         "[loader]\nbatch_size = 4\nimage_batch_size = 4\nworkers = 2\n[optim]\nlr = 1e-3\nwarmup_steps = 2\n";
}

}  // namespace

TEST(Trainer, PretrainFinetuneTestProbe) {
  auto d = t::temp_dir("trainer_chain");
  t::write_file(d / "pretrain.toml", pretrain_toml(d / "pre", 4));
  auto r = bevt_run(d / "pretrain.toml");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(d / "pre" / "checkpoints" / "step_4" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(d / "pre" / "config.toml"));
  auto metrics = read_jsonl(d / "pre" / "latest" / "metrics.jsonl");
  ASSERT_EQ(metrics.size(), 4u);
  for (const char* k : {"loss_image", "acc_image", "copy_image", "loss_video", "acc_video", "copy_video"}) {
    ASSERT_TRUE(metrics[0].contains(k)) << k;
    if (k[0] != 'l') {
      EXPECT_TRUE(metrics[0][k].get<double>() >= 0 && metrics[0][k].get<double>() <= 1) << k;
    }
  }
  // One vocabulary classifier shared by both decoders, and the official checkpoint layout.
  auto ck = bevt::load_safetensors((d / "pre" / "checkpoints" / "step_4" / "model.safetensors").string()).tensors;
  EXPECT_TRUE(ck.count("cls_head.lm_head.weight"));
  EXPECT_TRUE(ck.count("backbone.fpn.0.weight"));
  EXPECT_TRUE(ck.count("backbone.fpn_t.0.weight"));
  EXPECT_TRUE(ck.count("backbone.patch_embed_2d.proj.weight"));

  std::string ft = std::string("[run]\nmode = \"finetune\"\nwork_dir = \"") + (d / "ft").string() +
                   "\"\nepochs = 2\nlog_every = 2\ndevice = \"cpu\"\n" + kModel +
                   "[init]\ncheckpoint = \"" + (d / "pre").string() + "\"\n[model.heads.cls]\nplugin = \"i3d\"\n" +
                   clips("data.train", "train", 32, true, 0) + clips("data.val", "val", 16, true, 0) +
                   "[loader]\nbatch_size = 8\neval_batch_size = 8\n";
  t::write_file(d / "finetune.toml", ft);
  r = bevt_run(d / "finetune.toml");
  ASSERT_EQ(r.status, 0) << r.output;
  auto res = read_json(d / "ft" / "results.json");
  EXPECT_TRUE(res.contains("top1"));
  EXPECT_EQ(res["val"]["samples"].get<int>(), 16);
  EXPECT_NE(r.output.find("initialised the backbone from"), std::string::npos) << r.output;

  // mmaction2's tools/test.py: bevt-test EXP CKPT --views --dump, beside (not over) the fine-tune's records.
  const std::string ft_results = t::read_text(d / "ft" / "results.json");
  r = t::run(t::bin("bevt-test") + " " + (d / "finetune.toml").string() + " " + (d / "ft").string() +
             " --views 2x3 --dump " + (d / "preds" / "p.jsonl").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("mean class accuracy"), std::string::npos) << r.output;
  EXPECT_EQ(t::read_text(d / "ft" / "results.json"), ft_results);
  auto tr = read_json(d / "ft" / "test" / "results.json");
  EXPECT_EQ(tr["mode"], "test");
  EXPECT_EQ(tr["views"].get<int>(), 6);
  const size_t classes = tr["full"]["per_class"].size();
  auto preds = read_jsonl(d / "preds" / "p.jsonl");
  ASSERT_EQ(preds.size(), 16u);
  int64_t hits = 0;
  for (size_t i = 0; i < preds.size(); ++i) {
    EXPECT_EQ(preds[i]["index"].get<int64_t>(), static_cast<int64_t>(i));
    auto probs = preds[i]["probs"].get<std::vector<double>>();
    ASSERT_EQ(probs.size(), classes);
    double sum = 0;
    for (double v : probs) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-5);
    EXPECT_EQ(preds[i]["pred"].get<int64_t>(), std::max_element(probs.begin(), probs.end()) - probs.begin());
    EXPECT_FALSE(preds[i]["id"].get<std::string>().empty());
    hits += preds[i]["pred"] == preds[i]["label"];
  }
  EXPECT_DOUBLE_EQ(tr["top1"].get<double>(), static_cast<double>(hits) / 16.0);
  double mean = 0;
  int present = 0;
  for (const auto& [name, acc] : tr["full"]["per_class"].items())
    if (acc.get<double>() >= 0) mean += acc.get<double>(), ++present;
  EXPECT_NEAR(tr["mean_class"].get<double>(), mean / present, 1e-12);
  // The same test through bevt-run's own spelling gives the same numbers; bad flags are one line, status 2.
  r = bevt_run(d / "finetune.toml", "--test " + (d / "ft").string() + " --views 2x3 --work-dir " + (d / "t2").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read_json(d / "t2" / "results.json")["full"], tr["full"]);
  r = t::run(t::bin("bevt-test") + " " + (d / "finetune.toml").string() + " " + (d / "ft").string() + " --views 2x2");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--views '2x2': expected CLIPSxCROPS"), std::string::npos) << r.output;
  r = bevt_run(d / "finetune.toml", "--dump x.jsonl");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--dump: run.mode is 'finetune'"), std::string::npos) << r.output;

  std::string probe = std::string("[run]\nmode = \"probe\"\nwork_dir = \"") + (d / "probe").string() +
                      "\"\ndevice = \"cpu\"\n" + kModel + "[init]\ncheckpoint = \"" + (d / "ft").string() +
                      "\"\n[model.heads.cls]\nplugin = \"i3d\"\n" + clips("data.test", "test", 16, true, 0);
  t::write_file(d / "probe.toml", probe);
  r = bevt_run(d / "probe.toml");
  ASSERT_EQ(r.status, 0) << r.output;
  auto pr = read_json(d / "probe" / "results.json");
  for (const char* k : {"full", "single_frame", "shuffled"}) EXPECT_TRUE(pr.contains(k)) << k;
  EXPECT_TRUE(pr.contains("table"));
  EXPECT_NE(r.output.find("| single_frame |"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(d / "probe" / "confusion.csv"));
}

TEST(Trainer, KilledRunResumesBitIdentical) {
  auto d = t::temp_dir("trainer_resume");
  t::write_file(d / "a.toml", pretrain_toml(d / "a", 6));
  t::write_file(d / "b.toml", pretrain_toml(d / "b", 6));
  ASSERT_EQ(bevt_run(d / "a.toml").status, 0);

  // Start b, SIGKILL it once its first checkpoint exists, resume it.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    execl(t::bin("bevt-run").c_str(), "bevt-run", (d / "b.toml").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(d / "b" / "checkpoints" / "step_2") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(fs::exists(d / "b" / "checkpoints" / "step_2"));
  // Performance settings may change on resume (they are outside the config hash) and the numbers do not.
  auto r = bevt_run(d / "b.toml", "--resume --set loader.workers=1 --set loader.prefetch=1 --set run.keep_last=5");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
  EXPECT_TRUE(same_tensors(d / "a" / "checkpoints" / "step_6" / "model.safetensors",
                           d / "b" / "checkpoints" / "step_6" / "model.safetensors"));
  EXPECT_TRUE(same_tensors(d / "a" / "checkpoints" / "step_6" / "optim.safetensors",
                           d / "b" / "checkpoints" / "step_6" / "optim.safetensors"));
  EXPECT_EQ(read_jsonl(d / "b" / "latest" / "metrics.jsonl").size(), 6u);
  EXPECT_FALSE(fs::exists(d / "b" / "checkpoints" / "step_6.tmp"));
}

TEST(Trainer, ResumeFromAGivenCheckpoint) {
  // --resume PATH (mmengine's spelling): another work_dir's step_4 continues here, bit-exact with that run.
  auto d = t::temp_dir("trainer_resume_path");
  t::write_file(d / "a.toml", pretrain_toml(d / "a", 6));
  t::write_file(d / "b.toml", pretrain_toml(d / "b", 6));
  ASSERT_EQ(bevt_run(d / "a.toml").status, 0);
  auto r = bevt_run(d / "b.toml", "--resume " + (d / "a" / "checkpoints" / "step_4").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("step_4 at step 4"), std::string::npos) << r.output;
  EXPECT_TRUE(same_tensors(d / "a" / "checkpoints" / "step_6" / "model.safetensors",
                           d / "b" / "checkpoints" / "step_6" / "model.safetensors"));
  r = bevt_run(d / "b.toml", "--resume " + (d / "nowhere").string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("neither a checkpoint folder"), std::string::npos) << r.output;
}

TEST(Trainer, ResumeWithoutThePointerTakesTheNewestWholeCheckpoint) {
  // A kill between a checkpoint's rename and the first write of checkpoints/last leaves no pointer, and a
  // kill while step_6 is written leaves step_6.tmp: resume must continue from step_4, not from scratch.
  auto d = t::temp_dir("trainer_pointer");
  t::write_file(d / "a.toml", pretrain_toml(d / "a", 6));
  t::write_file(d / "b.toml", pretrain_toml(d / "b", 6));
  ASSERT_EQ(bevt_run(d / "a.toml").status, 0);
  const fs::path a = d / "a" / "checkpoints", b = d / "b" / "checkpoints";
  fs::create_directories(b);
  for (const char* s : {"step_2", "step_4"}) fs::copy(a / s, b / s, fs::copy_options::recursive);
  fs::copy(a / "step_6", b / "step_6.tmp", fs::copy_options::recursive);
  fs::remove(b / "step_6.tmp" / "trainer.json");
  auto r = bevt_run(d / "b.toml", "--resume");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("step_4 at step 4"), std::string::npos) << r.output;
  EXPECT_TRUE(same_tensors(a / "step_6" / "model.safetensors", b / "step_6" / "model.safetensors"));
  EXPECT_TRUE(same_tensors(a / "step_6" / "optim.safetensors", b / "step_6" / "optim.safetensors"));
  EXPECT_FALSE(fs::exists(b / "step_6.tmp"));
  EXPECT_EQ(t::read_text(b / "last"), "step_6\n");
  // A pointer that names a complete folder wins (rolling back = pointing last at an earlier step).
  t::write_file(b / "last", "step_4\n");
  r = bevt_run(d / "b.toml", "--resume");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("step_4 at step 4"), std::string::npos) << r.output;
}

TEST(Trainer, AFreshRunSetsAnEarlierRunsCheckpointsAside) {
  // A 6-step run, then a 2-step run in the same work_dir without --resume: the earlier run's step_4 and
  // step_6 must neither be pruned into the new run's folder nor be taken as its last checkpoint.
  auto d = t::temp_dir("trainer_fresh");
  t::write_file(d / "long.toml", pretrain_toml(d / "a", 6));
  t::write_file(d / "short.toml", pretrain_toml(d / "a", 2));
  ASSERT_EQ(bevt_run(d / "long.toml", "--set run.keep_last=2").status, 0);
  const fs::path ck = d / "a" / "checkpoints", earlier = d / "a" / "checkpoints.earlier";
  ASSERT_TRUE(fs::exists(ck / "step_6") && fs::exists(ck / "step_4") && !fs::exists(ck / "step_2"));
  auto r = bevt_run(d / "short.toml", "--set run.keep_last=2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("are now in " + earlier.string()), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(ck / "step_2" / "trainer.json"));
  EXPECT_FALSE(fs::exists(ck / "step_4"));
  EXPECT_FALSE(fs::exists(ck / "step_6"));
  EXPECT_EQ(t::read_text(ck / "last"), "step_2\n");
  EXPECT_TRUE(fs::exists(earlier / "step_6" / "model.safetensors"));
  EXPECT_EQ(t::read_text(earlier / "last"), "step_6\n");
  // --resume of the finished short run continues nothing and keeps its folder; the aside copy stays.
  r = bevt_run(d / "short.toml", "--resume --set run.keep_last=2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("step_2 at step 2"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(earlier / "step_6"));
}

TEST(Trainer, TensorBoardEventsHoldWhatMetricsHold) {
  // Read back by an independent reader (tests/read_tfevents.py: its own CRC-32C and protobuf decoding).
  auto d = t::temp_dir("trainer_tensorboard");
  t::write_file(d / "a.toml", pretrain_toml(d / "a", 4));
  auto first = bevt_run(d / "a.toml");
  ASSERT_EQ(first.status, 0) << first.output;
  // The DALL-E tokenizer here is randomly initialised: pre-training says so and records it.
  EXPECT_NE(first.output.find("the tokenizer has no trained weights"), std::string::npos) << first.output;
  EXPECT_TRUE(t::read_json(d / "a" / "results.json").value("tokenizer_untrained", false));
  std::vector<fs::path> events;
  for (const auto& e : fs::directory_iterator(d / "a" / "latest"))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) events.push_back(e.path());
  ASSERT_EQ(events.size(), 1u);
  auto r = t::run("python3 " + std::string(BEVT_SOURCE_DIR) + "/tests/read_tfevents.py " + events[0].string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::map<std::pair<int64_t, std::string>, double> scalars;
  bool version = false;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("file_version")) version = j["file_version"] == "brain.Event:2";
    else scalars[{j["step"].get<int64_t>(), j["tag"].get<std::string>()}] = j["value"].get<double>();
  }
  EXPECT_TRUE(version);
  auto metrics = read_jsonl(d / "a" / "latest" / "metrics.jsonl");
  ASSERT_EQ(metrics.size(), 4u);
  for (const auto& m : metrics) {
    const int64_t step = m["step"].get<int64_t>();
    for (const char* tag : {"loss", "loss_image", "loss_video", "lr", "grad_norm"}) {
      auto it = scalars.find({step, std::string("train/") + tag});
      ASSERT_NE(it, scalars.end()) << "step " << step << " " << tag;
      EXPECT_NEAR(it->second, m[tag].get<double>(), 1e-6 * std::max(1.0, std::abs(m[tag].get<double>()))) << tag;
    }
  }
  // [log] tensorboard = false: none.
  t::write_file(d / "b.toml", pretrain_toml(d / "b", 2));
  auto second = bevt_run(d / "b.toml", "--set log.tensorboard=false --set pretrain.allow_untrained_tokenizer=true");
  ASSERT_EQ(second.status, 0) << second.output;
  EXPECT_EQ(second.output.find("no trained weights"), std::string::npos) << second.output;
  for (const auto& e : fs::recursive_directory_iterator(d / "b"))
    EXPECT_NE(e.path().filename().string().rfind("events.out", 0), 0u) << e.path();
}

TEST(Trainer, TwoRunsInOneWorkDirKeepTwoRecords) {
  // mmengine's habit: each run's log, metrics and events in a timestamped folder, `latest` at the newest,
  // checkpoints shared; the second run (and a resume after it) overwrites nothing of the first.
  auto d = t::temp_dir("trainer_records");
  t::write_file(d / "a.toml", pretrain_toml(d / "unused", 2));
  const std::string wd = " --work-dir " + (d / "wd").string() + " --set pretrain.allow_untrained_tokenizer=true";
  ASSERT_EQ(bevt_run(d / "a.toml", wd).status, 0);
  const fs::path first = fs::canonical(d / "wd" / "latest");
  const std::string first_metrics = t::read_text(first / "metrics.jsonl"), first_log = t::read_text(first / "log.txt");
  ASSERT_EQ(bevt_run(d / "a.toml", wd + " --seed 7").status, 0);
  const fs::path second = fs::canonical(d / "wd" / "latest");
  ASSERT_NE(first, second);
  EXPECT_EQ(second.parent_path(), first.parent_path());
  EXPECT_EQ(second.parent_path().filename(), "runs");
  EXPECT_EQ(t::read_text(first / "metrics.jsonl"), first_metrics);
  EXPECT_EQ(t::read_text(first / "log.txt"), first_log);
  EXPECT_NE(t::read_text(second / "config.toml").find("seed = 7"), std::string::npos);
  EXPECT_EQ(t::read_text(second / "config.toml"), t::read_text(d / "wd" / "config.toml"));
  EXPECT_EQ(t::read_text(second / "results.json"), t::read_text(d / "wd" / "results.json"));
  for (const fs::path& run : {first, second}) {
    auto metrics = read_jsonl(run / "metrics.jsonl");
    ASSERT_EQ(metrics.size(), 2u) << run;
    EXPECT_TRUE(metrics[0].contains("loss")) << run;
    std::vector<fs::path> events;
    for (const auto& e : fs::directory_iterator(run))
      if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) events.push_back(e.path());
    ASSERT_EQ(events.size(), 1u) << run;
    auto r = t::run("python3 " + std::string(BEVT_SOURCE_DIR) + "/tests/read_tfevents.py " + events[0].string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("\"tag\": \"train/loss\""), std::string::npos) << r.output;
  }
  EXPECT_NE(t::read_text(first / "metrics.jsonl"), t::read_text(second / "metrics.jsonl"));  // other seed
  // Checkpoints stay at the work_dir's top, so --resume finds them; the resume gets a third folder whose
  // metrics continue the second run's curve.
  ASSERT_TRUE(fs::exists(d / "wd" / "checkpoints" / "step_2"));
  auto r = bevt_run(d / "a.toml", wd + " --seed 7 --resume");
  ASSERT_EQ(r.status, 0) << r.output;
  const fs::path third = fs::canonical(d / "wd" / "latest");
  EXPECT_NE(third, second);
  EXPECT_EQ(t::read_text(third / "metrics.jsonl"), t::read_text(second / "metrics.jsonl"));
  size_t runs = 0;
  for (const auto& e : fs::directory_iterator(d / "wd" / "runs")) runs += e.is_directory();
  EXPECT_EQ(runs, 3u);
}

TEST(Trainer, ResumeRefusesAChangedConfig) {
  auto d = t::temp_dir("trainer_changed");
  t::write_file(d / "a.toml", pretrain_toml(d / "a", 2));
  ASSERT_EQ(bevt_run(d / "a.toml").status, 0);
  auto r = bevt_run(d / "a.toml", "--resume --set optim.lr=0.5 --set run.threads=1 --set run.log_every=3");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("the experiment changed since this checkpoint (changed: optim.lr)"), std::string::npos)
      << r.output;
  // Threads and logging alone are not a change of recipe: the finished run resumes (and has nothing to do).
  r = bevt_run(d / "a.toml", "--resume --set run.threads=1 --set run.log_every=3 --set loader.workers=1");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
}

TEST(Trainer, DivergenceStopsWithStatus1AndKeepsCheckpoints) {
  auto d = t::temp_dir("trainer_nan");
  t::write_file(d / "a.toml", pretrain_toml(d / "a", 12));
  auto r = bevt_run(d / "a.toml", "--set optim.lr=1e12 --set optim.clip_grad=0.0 --set optim.warmup_steps=0");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("(diverged)"), std::string::npos) << r.output;
}

TEST(Trainer, BadCompositionIsExitStatus2) {
  auto d = t::temp_dir("trainer_bad");
  std::string no_tok = pretrain_toml(d / "a", 2);
  no_tok = no_tok.substr(0, no_tok.find("[tokenizer]")) + no_tok.substr(no_tok.find("[model.heads.image]"));
  t::write_file(d / "a.toml", no_tok);
  auto r = bevt_run(d / "a.toml");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("needs a [tokenizer] table"), std::string::npos) << r.output;
}

TEST(Trainer, PixelTargetsPretrainAndFinetuneThroughBevtRun) {
  // MAE's normalised-pixel targets (tokenizer plugin `pixels`) in place of the DALL-E tokens: the decoders'
  // lm_head predicts each masked cell's 8x8x3 values, the logged terms are the masked mean squared error and
  // that of predicting zeros, and the checkpoint fine-tunes like any other.
  auto d = t::temp_dir("trainer_pixels");
  std::string toml = pretrain_toml(d / "pt", 8);
  const std::string dalle =
      "[tokenizer]\nplugin = \"dalle\"\nn_hid = 16\nn_blk_per_group = 1\nvocab_size = 32\ninput_size = 16\n";
  ASSERT_NE(toml.find(dalle), std::string::npos);
  toml.replace(toml.find(dalle), dalle.size(), "[tokenizer]\nplugin = \"pixels\"\ninput_size = 16\ndownsample = 8\n");
  t::write_file(d / "pt.toml", toml);
  auto r = bevt_run(d / "pt.toml");
  ASSERT_EQ(r.status, 0) << r.output;
  auto m = read_jsonl(d / "pt" / "latest" / "metrics.jsonl");
  ASSERT_EQ(m.size(), 8u);
  for (const auto& row : m) {
    for (const char* k : {"loss_image", "loss_video", "zero_image", "zero_video"}) {
      ASSERT_TRUE(row.contains(k)) << k << " missing: " << row.dump();
      EXPECT_GT(row[k].get<double>(), 0.0) << k;
    }
    EXPECT_FALSE(row.contains("acc_image") || row.contains("copy_video")) << row.dump();
  }
  // Normalised targets: predicting zeros costs about their variance (1 per value, less for flat cells).
  EXPECT_LT(m.front()["zero_image"].get<double>(), 1.2);
  auto w = bevt::load_safetensors((d / "pt" / "checkpoints" / "step_8" / "model.safetensors").string()).tensors;
  ASSERT_TRUE(w.count("cls_head.lm_head.weight"));
  EXPECT_EQ(w.at("cls_head.lm_head.weight").size(0), 8 * 8 * 3);
  std::string ft = std::string("[run]\nmode = \"finetune\"\nwork_dir = \"") + (d / "ft").string() +
                   "\"\nmax_steps = 2\ndevice = \"cpu\"\n" + kModel +
                   "[init]\ncheckpoint = \"" + (d / "pt").string() + "\"\n[model.heads.cls]\nplugin = \"i3d\"\n" +
                   clips("data.train", "train", 8, true, 0) + "[loader]\nbatch_size = 4\n";
  t::write_file(d / "ft.toml", ft);
  r = bevt_run(d / "ft.toml");
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST(Trainer, LossFallsOnALearnableTask) {
  // Fitting 16 clips of 4 classes is learnable in a few dozen steps: the logged loss must fall clearly.
  auto d = t::temp_dir("trainer_learn");
  std::string ft = std::string("[run]\nmode = \"finetune\"\nwork_dir = \"") + (d / "ft").string() +
                   "\"\nepochs = 20\nlog_every = 4\ndevice = \"cpu\"\n" + kModel +
                   "[model.heads.cls]\nplugin = \"i3d\"\ndropout = 0.0\n" +
                   clips("data.train", "train", 16, true, 0) +
                   "classes = [\"motion/forward\", \"motion/backward\", \"appearance/disc\", \"appearance/cross\"]\n"
                   "[loader]\nbatch_size = 8\n[optim]\nlr = 1e-3\nweight_decay = 0.0\nwarmup_steps = 0\n";
  t::write_file(d / "ft.toml", ft);
  auto r = bevt_run(d / "ft.toml", "--set model.backbone.drop_path_rate=0.0");
  ASSERT_EQ(r.status, 0) << r.output;
  auto m = read_jsonl(d / "ft" / "latest" / "metrics.jsonl");
  ASSERT_GE(m.size(), 5u);
  double first = m.front()["loss"].get<double>(), last = m.back()["loss"].get<double>();
  EXPECT_LT(last, 0.7 * first) << "loss " << first << " -> " << last;
  EXPECT_GT(m.back()["acc_train"].get<double>(), 0.5);
}

TEST(Optim, AdamWMatchesPyTorchsUpdate) {
  // One step of torch.optim.AdamW(lr=0.1, betas=(0.9,0.999), eps=1e-8, weight_decay=0.5) on p=[1,-2], g=[0.5,0.25]:
  // p <- p*(1-lr*wd) - lr * m_hat/(sqrt(v_hat)+eps) with m_hat=g, v_hat=g^2  =>  p*0.95 - 0.1*sign(g).
  using bevt::host::train::AdamW;
  bevt::host::train::OptimSettings s;
  s.lr = 0.1;
  s.weight_decay = 0.5;
  s.clip_grad = 0;
  torch::Tensor p = torch::tensor({1.0f, -2.0f}).requires_grad_();
  p.mutable_grad() = torch::tensor({0.5f, 0.25f});
  AdamW opt({{"p", p}}, s);
  opt.step(0.1);
  EXPECT_NEAR(p[0].item<float>(), 0.95f - 0.1f, 1e-6);
  EXPECT_NEAR(p[1].item<float>(), -1.9f - 0.1f, 1e-6);
}

// The fused update per (lr multiplier, weight decay) group, two steps with clipping, against the formula of
// torch.optim.AdamW after torch.nn.utils.clip_grad_norm_(3.0), written out in float64.
TEST(Optim, AdamWGroupsAndClippingMatchTheWrittenOutUpdate) {
  using bevt::host::train::AdamW;
  bevt::host::train::OptimSettings s;
  s.weight_decay = 0.05;
  s.clip_grad = 3.0;
  s.custom_keys = {{"norm", 0.5, 0.0}};  // lr x 0.5, no weight decay
  torch::manual_seed(3);
  torch::Tensor a = torch::randn({5, 4}).requires_grad_(), b = torch::randn({7}).requires_grad_();
  AdamW opt({{"blocks.0.fc.weight", a}, {"blocks.0.norm.weight", b}}, s);
  struct Ref { torch::Tensor p, m, v; double lr_mult, wd; };
  std::vector<Ref> ref{{a.detach().to(torch::kFloat64), torch::zeros({5, 4}, torch::kFloat64),
                        torch::zeros({5, 4}, torch::kFloat64), 1.0, 0.05},
                       {b.detach().to(torch::kFloat64), torch::zeros({7}, torch::kFloat64),
                        torch::zeros({7}, torch::kFloat64), 0.5, 0.0}};
  const double lr = 0.01;
  for (int step = 1; step <= 2; ++step) {
    torch::Tensor ga = torch::randn({5, 4}) * 4, gb = torch::randn({7}) * 4;  // global norm > 3: clipped
    a.mutable_grad() = ga.clone();
    b.mutable_grad() = gb.clone();
    const double norm = std::sqrt(ga.to(torch::kFloat64).pow(2).sum().item<double>() +
                                  gb.to(torch::kFloat64).pow(2).sum().item<double>());
    ASSERT_GT(norm, 3.0);
    EXPECT_NEAR(opt.step(lr).item<double>(), norm, 1e-4 * norm);
    const double coef = 3.0 / (norm + 1e-6);
    std::vector<torch::Tensor> gs{ga.to(torch::kFloat64) * coef, gb.to(torch::kFloat64) * coef};
    for (size_t i = 0; i < 2; ++i) {
      auto& r = ref[i];
      const double plr = lr * r.lr_mult;
      r.p *= 1 - plr * r.wd;
      r.m = 0.9 * r.m + 0.1 * gs[i];
      r.v = 0.999 * r.v + 0.001 * gs[i] * gs[i];
      const double bc1 = 1 - std::pow(0.9, step), bc2 = 1 - std::pow(0.999, step);
      r.p -= plr / bc1 * r.m / (r.v.sqrt() / std::sqrt(bc2) + 1e-8);
    }
    EXPECT_LT((a.detach().to(torch::kFloat64) - ref[0].p).abs().max().item<double>(), 1e-6) << "step " << step;
    EXPECT_LT((b.detach().to(torch::kFloat64) - ref[1].p).abs().max().item<double>(), 1e-6) << "step " << step;
  }
  // The moments and step counts checkpoint by name.
  auto st = opt.state();
  EXPECT_EQ(st.at("blocks.0.norm.weight.step").item<int64_t>(), 2);
  EXPECT_LT((st.at("blocks.0.fc.weight.exp_avg").to(torch::kFloat64) - ref[0].m).abs().max().item<double>(), 1e-6);
}

TEST(Optim, ScheduleWarmsUpFromRatioThenCosine) {
  bevt::host::train::OptimSettings s;
  s.lr = 1.0;
  s.min_lr = 0.0;
  s.warmup_steps = 10;
  s.warmup_ratio = 0.1;
  using bevt::host::train::scheduled_lr;
  EXPECT_NEAR(scheduled_lr(s, 0, 100), 0.1, 1e-12);                       // starts at warmup_ratio x lr
  EXPECT_NEAR(scheduled_lr(s, 50, 100), 0.5, 1e-12);                      // cosine midpoint
  EXPECT_NEAR(scheduled_lr(s, 100, 100), 0.0, 1e-12);
  EXPECT_GT(scheduled_lr(s, 9, 100), scheduled_lr(s, 5, 100));
}

TEST(Trainer, FinetuneWithEmaLayerDecayAndBestCheckpoint) {
  auto d = t::temp_dir("trainer_ema");
  std::string ft = std::string("[run]\nmode = \"finetune\"\nwork_dir = \"") + (d / "ft").string() +
                   "\"\nepochs = 3\nlog_every = 2\ndevice = \"cpu\"\n" + kModel +
                   "[model.heads.cls]\nplugin = \"i3d\"\n" + clips("data.train", "train", 16, true, 0) +
                   clips("data.val", "val", 8, true, 0) +
                   "[loader]\nbatch_size = 8\neval_batch_size = 8\n"
                   "[optim]\nlr = 1e-3\nema = 0.3\nema_warmup = 1\nlayer_decay = 0.8\nby_epoch = true\n"
                   "[optim.custom_keys]\nrelative_position_bias_table = { decay_mult = 0.0 }\n";
  t::write_file(d / "ft.toml", ft);
  auto r = bevt_run(d / "ft.toml");
  ASSERT_EQ(r.status, 0) << r.output;
  const fs::path last = d / "ft" / "checkpoints" / "step_6";
  ASSERT_TRUE(fs::exists(last / "ema.safetensors")) << r.output;
  // The averaged weights lag the live ones, and keep every buffer of the model.
  auto live = bevt::load_safetensors((last / "model.safetensors").string()).tensors;
  auto avg = bevt::load_safetensors((last / "ema.safetensors").string()).tensors;
  ASSERT_EQ(live.size(), avg.size());
  EXPECT_FALSE(torch::equal(live.at("cls_head.fc_cls.weight"), avg.at("cls_head.fc_cls.weight")));
  // The best validation so far is kept apart from the step checkpoints, and the trainer state remembers it.
  auto best = read_json(d / "ft" / "checkpoints" / "best" / "best.json");
  EXPECT_EQ(best["metric"], "val_top1");
  auto res = read_json(d / "ft" / "results.json");
  EXPECT_DOUBLE_EQ(res["best_top1"].get<double>(), best["value"].get<double>());
  EXPECT_EQ(read_json(last / "trainer.json")["best"]["step"], best["step"]);
  // Per-epoch cosine: the logged lr is constant within an epoch (2 steps per epoch, warmup 0).
  auto m = read_jsonl(d / "ft" / "latest" / "metrics.jsonl");
  std::vector<double> lrs;
  for (const auto& rec : m)
    if (rec.contains("lr")) lrs.push_back(rec["lr"].get<double>());
  ASSERT_GE(lrs.size(), 3u);
  EXPECT_GT(lrs[0], lrs[1]);
  // Testing the work_dir evaluates the averaged weights (ema.safetensors), as validation did.
  std::string test = std::string("[run]\nmode = \"test\"\nwork_dir = \"") + (d / "test").string() +
                     "\"\ndevice = \"cpu\"\n" + kModel + "[init]\ncheckpoint = \"" + (d / "ft").string() +
                     "\"\n[model.heads.cls]\nplugin = \"i3d\"\n" + clips("data.test", "val", 8, true, 0);
  t::write_file(d / "test.toml", test);
  r = bevt_run(d / "test.toml");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("ema.safetensors"), std::string::npos) << r.output;
  EXPECT_DOUBLE_EQ(read_json(d / "test" / "results.json")["top1"].get<double>(), res["top1"].get<double>());
}
