// bench_pretrain_step: one whole BEVT pre-training iteration (case `bevt_pretrain_step`), through the code that
// `bevt-run` pre-training runs: experiments/pretrain/bevt.toml with Swin-T (embed 96, depths 2,2,6,2, heads
// 3,6,12,24, window 8,7,7, drop path 0.1), composed by the host, assembled with the tied lm_head
// (assemble_model), both streams through pretrain_iteration (the runner's step), one backward over the summed losses, the alias
// gradients folded, and the host's AdamW (clipping at 3.0 inside its step). Inputs are generated: 1 clip
// [3,8,224,224] with a BEVT tube mask and 2 images [3,224,224] with blockwise masks (the experiment's maskers,
// fixed seeds), their 8 + 2 tokenizer views of 112x112 in [0,1]; the DALL-E encoder has random weights (speed
// does not depend on them). float32, --threads torch threads.
//
// The split (medians over the timed runs): tokenizer (inside Tokenizer::tokenize), encoder forward (inside the
// backbone's forward_video / forward_image), decoders + loss (the rest of both streams' forward), backward,
// optimizer (fold + clip + AdamW). The timing wrappers only delegate. `sgemm_gflops` is at::mm 2048^3 in the
// same process, so the iteration's floor (its FLOPs / that rate) is read from the same run.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <torch/csrc/autograd/profiler_legacy.h>

#include <chrono>
#include <iostream>

#include "bench_harness.h"
#include "sgemm.h"
#include "bevt/backbone.h"
#include "bevt/error.h"
#include "bevt/masker.h"
#include "bevt/rng.h"
#include "bevt/tokenizer.h"
#include "host/compose.h"
#include "host/config/experiment.h"
#include "host/train/pretrain_step.h"
#include "host/train/model.h"
#include "host/train/optim.h"

#ifndef BEVT_SOURCE_DIR
#error "BEVT_SOURCE_DIR must name the source tree (experiments/pretrain/bevt.toml)"
#endif

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Delegates to the real tokenizer and adds the wall time of tokenize() to `*acc`.
class TimedTokenizer : public bevt::Tokenizer {
 public:
  TimedTokenizer(bevt::Tokenizer& t, double* acc) : t_(t), acc_(acc) {}
  int64_t vocab_size() const override { return t_.vocab_size(); }
  int64_t input_size() const override { return t_.input_size(); }
  int64_t downsample() const override { return t_.downsample(); }
  torch::Tensor prepare(const torch::Tensor& x) override { return t_.prepare(x); }
  torch::Tensor logits(const torch::Tensor& x) override { return t_.logits(x); }
  torch::Tensor tokenize(const torch::Tensor& x) override {
    auto a = Clock::now();
    auto r = t_.tokenize(x);
    *acc_ += since(a);
    return r;
  }

 private:
  bevt::Tokenizer& t_;
  double* acc_;
};

// Delegates to the real backbone and adds the wall time of its forwards to `*acc`.
class TimedBackbone : public bevt::Backbone {
 public:
  TimedBackbone(bevt::Backbone& b, double* acc) : b_(b), acc_(acc) {}
  bevt::BackboneSpec spec() const override { return b_.spec(); }
  bevt::Features forward_video(const torch::Tensor& clip, const torch::Tensor& mask) override {
    auto a = Clock::now();
    auto r = b_.forward_video(clip, mask);
    *acc_ += since(a);
    return r;
  }
  bevt::Features forward_image(const torch::Tensor& image, const torch::Tensor& mask) override {
    auto a = Clock::now();
    auto r = b_.forward_image(image, mask);
    *acc_ += since(a);
    return r;
  }
  torch::Tensor final_norm(const torch::Tensor& x) override { return b_.final_norm(x); }

 private:
  bevt::Backbone& b_;
  double* acc_;
};

bevt::bench::Result run(int warmup, int reps, int threads, bool checkpointing, const std::string& profile) {
  namespace host = bevt::host;
  namespace tr = bevt::host::train;
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  const std::vector<std::string> overrides = {
      "run.device=\"cpu\"",
      "run.work_dir=\"/tmp/bevt-bench-pretrain\"",
      "init.checkpoint=\"\"",
      "model.backbone.plugin=\"video_swin_t\"",
      "model.backbone.drop_path_rate=0.1",
      "model.backbone.inflate_2d=false",
      std::string("model.backbone.grad_checkpointing=") + (checkpointing ? "true" : "false"),
      "tokenizer.weights=\"\"",
      "pretrain.allow_untrained_tokenizer=true",
      "data.video.clip_len=8",
  };
  auto exp = host::Experiment::load(BEVT_SOURCE_DIR "/experiments/pretrain/bevt.toml", overrides);
  auto reg = bevt::bench::plugins();
  // The model alone (inputs are generated, so no dataset plugin need be built), composed as bevt-run does.
  const host::Composition comp = host::compose(reg, exp, /*build=*/true, host::ComposeScope::ModelOnly);
  tr::TrainModel model = tr::assemble_model(comp, exp.pretrain.tie_lm_head);
  auto tokenizer = comp.get<bevt::Tokenizer>("tokenizer");
  tokenizer->eval();
  for (auto& p : tokenizer->parameters()) p.set_requires_grad(false);
  tr::AdamW opt(model.parameters(), exp.optim);
  model.train(true);

  double tok_s = 0, enc_s = 0;
  TimedTokenizer timed_tok(*tokenizer, &tok_s);
  TimedBackbone timed_bb(*model.backbone, &enc_s);

  struct StreamIn {
    std::string name;
    torch::Tensor input, view;
    std::shared_ptr<bevt::Masker> masker;
    int64_t batch;
  };
  const std::vector<StreamIn> streams = {
      {"image", torch::randn({2, 3, 224, 224}), torch::rand({2, 3, 112, 112}), comp.get<bevt::Masker>("masker.image"),
       2},
      {"video", torch::randn({1, 3, 8, 224, 224}), torch::rand({1, 8, 3, 112, 112}),
       comp.get<bevt::Masker>("masker.video"), 1},
  };
  std::map<std::string, std::vector<double>> split;
  int64_t iteration = 0;
  auto step = [&] {
    tok_s = enc_s = 0;
    ++iteration;
    const auto t0 = Clock::now();
    opt.zero_grad();
    std::vector<tr::StreamBatch> batches;
    for (const auto& s : streams) {
      // One mask per sample from a seed of (iteration, stream, sample), as the runner seeds them.
      auto mask_for = [&s, iteration](const std::array<int64_t, 3>& grid) {
        std::vector<torch::Tensor> m;
        for (int64_t i = 0; i < s.batch; ++i) {
          bevt::Rng rng(static_cast<uint64_t>(iteration * 1000 + i) + (s.name == "video" ? 500 : 0));
          m.push_back(s.masker->sample(grid, rng));
        }
        return torch::stack(m);
      };
      batches.push_back({s.name, exp.pretrain.weight(s.name), model.heads.at(s.name).get(), s.input, s.view, mask_for});
    }
    // The runner's own step (the same function bevt-run pre-training and bevt-forward's parity check call).
    const torch::Tensor total = tr::pretrain_iteration(timed_bb, timed_tok, batches).at("loss");
    const double fwd = since(t0);
    const auto t1 = Clock::now();
    total.backward();
    const double bwd = since(t1);
    const auto t2 = Clock::now();
    model.fold_alias_grads();
    (void)opt.step(exp.optim.lr);
    const double opt_s = since(t2);
    split["tokenizer_s"].push_back(tok_s);
    split["encoder_forward_s"].push_back(enc_s);
    split["decoders_loss_s"].push_back(fwd - tok_s - enc_s);
    split["backward_s"].push_back(bwd);
    split["optimizer_s"].push_back(opt_s);
  };
  auto r = bevt::bench::time_case(checkpointing ? "bevt_pretrain_step + grad checkpointing" : "bevt_pretrain_step",
                                  warmup, reps, step);
  for (auto& [k, v] : split) {
    std::vector<double> timed(v.begin() + warmup, v.end());
    std::sort(timed.begin(), timed.end());
    const size_t n = timed.size();
    r.fields[k] = n % 2 ? timed[n / 2] : 0.5 * (timed[n / 2 - 1] + timed[n / 2]);
  }
  if (!profile.empty()) {  // one more iteration under the autograd profiler (chrome trace; profile_summary.py)
    torch::autograd::profiler::RecordProfile guard(profile);
    step();
  }
  r.fields["sgemm_gflops"] = bevt::bench::sgemm_gflops(5);
  r.fields["threads"] = threads;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_pretrain_step: one whole BEVT pre-training iteration (bevt_pretrain_step)"};
  int warmup = 1, reps = 3, threads = 2;
  bool json = false, checkpointing = false;
  std::string profile;
  app.add_option("--warmup", warmup, "untimed iterations (default 1)");
  app.add_option("--reps", reps, "timed iterations (default 3)");
  app.add_option("--threads", threads, "torch threads (default 2)");
  app.add_flag("--grad-checkpointing", checkpointing, "recompute each encoder block in backward");
  app.add_flag("--json", json, "one JSON object per case");
  app.add_option("--profile", profile, "after timing, profile one iteration into this chrome-trace file");
  CLI11_PARSE(app, argc, argv);
  try {
    if (warmup < 0 || reps < 1) throw bevt::UserError("--warmup must be >= 0 and --reps >= 1");
    bevt::bench::print({run(warmup, reps, threads, checkpointing, profile)}, json);
  } catch (const bevt::UserError& e) {
    std::cerr << "bench_pretrain_step: " << e.what() << std::endl;
    return 2;
  }
  return 0;
}
