// TimeSformer-B/16 (timesformer_base, 400 classes): eval forward of one 8x224 clip and one training step
// (forward, backward, AdamW) on a 4x112 clip, B = 1, with the process's peak RSS after each case.
#include <CLI/CLI.hpp>

#include <iostream>

#include "bench_harness.h"
#include "profile.h"
#include "bevt/backbone.h"
#include "bevt/error.h"
#include "host/registry.h"

int main(int argc, char** argv) {
  CLI::App app{"bench_timesformer: TimeSformer-B eval forward and training step"};
  int threads = 2, reps = 3, warmup = 1;
  bool json = false, ckpt = false;
  std::string profile;
  std::vector<std::string> dirs;
  app.add_option("--threads", threads, "intra-op threads (default 2)");
  app.add_option("--reps", reps, "timed repetitions (default 3)");
  app.add_option("--warmup", warmup, "untimed repetitions (default 1)");
  app.add_flag("--grad-checkpointing", ckpt, "recompute blocks in backward in the training case");
  app.add_option("--plugin-dir", dirs, "extra plugin folder");
  app.add_flag("--json", json, "one JSON object per case");
  app.add_option("--profile", profile, "after timing, profile one more eval forward into this chrome-trace file");
  CLI11_PARSE(app, argc, argv);
  try {
    torch::set_num_threads(threads);
    auto reg = bevt::bench::plugins(dirs);
    bevt::Config cfg = bevt::Config::from_toml("plugin = \"timesformer_base\"\nnum_classes = 400\n", "bench");
    auto bb = reg.build_as<bevt::Backbone>("backbone", cfg, bevt::BuildContext{});
    torch::manual_seed(0);
    std::vector<bevt::bench::Result> results;

    bb->eval();
    torch::Tensor clip = torch::randn({1, 3, 8, 224, 224});
    {
      torch::NoGradGuard g;
      auto r = bevt::bench::time_case(fmt::format("timesformer_base eval 1x3x8x224x224 t{}", threads), warmup, reps,
                                      [&] { bb->forward_video(clip); });
      r.fields["clips_per_s"] = 1.0 / r.median_s;
      results.push_back(r);
      if (!profile.empty()) bevt::bench::profile_once(profile, torch::kCPU, [&] { bb->forward_video(clip); });
    }

    bb->train();
    bb->set_grad_checkpointing(ckpt);
    torch::optim::AdamW opt(bb->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0.05));
    torch::Tensor small = torch::randn({1, 3, 4, 112, 112});
    torch::Tensor label = torch::tensor({3}, torch::kLong);
    auto r = bevt::bench::time_case(
        fmt::format("timesformer_base train 1x3x4x112x112 t{}{}", threads, ckpt ? " ckpt" : ""), warmup, reps, [&] {
          opt.zero_grad();
          auto f = bb->forward_video(small);
          torch::nn::functional::cross_entropy(f.at("logits"), label).backward();
          opt.step();
        });
    r.fields["steps_per_s"] = 1.0 / r.median_s;
    results.push_back(r);
    bevt::bench::print(results, json);
  } catch (const std::exception& e) {
    std::cerr << "bench_timesformer: error: " << e.what() << std::endl;
    return 2;
  }
  return 0;
}
