// bench_video_swin: Video Swin-T (embed 96, depths 2,2,6,2, heads 3,6,12,24, window 8,7,7, patch 2,4,4,
// drop path 0.1) on a 1x3x8x112x112 clip with 2 threads: (a) training step (loss = mean of "out", backward,
// AdamW), (b) eval forward under no-grad, (c) training step with gradient checkpointing. Each case runs in a
// fresh process of this executable (--case), so that its peak RSS is its own.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "bevt/backbone.h"
#include "host/registry.h"

namespace {

// Process CPU seconds (user + system) so far: a load-independent measure of the work done on a shared box.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double current_rss_mb() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, rss = 0;
  f >> pages >> rss;
  return static_cast<double>(rss) * 4096.0 / (1024.0 * 1024.0);
}

bevt::bench::Result run_case(const std::string& name, int warmup, int reps, int threads) {
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  auto reg = bevt::bench::plugins();
  auto cfg = bevt::Config::from_toml(
      "plugin = \"video_swin_t\"\nwindow_size = [8, 7, 7]\npatch_size = [2, 4, 4]\ndrop_path_rate = 0.1\n"
      "grad_checkpointing = " + std::string(name == "train_ckpt" ? "true" : "false") + "\n",
      "bench");
  auto model = reg.build_as<bevt::Backbone>("bench", cfg, bevt::BuildContext{});
  auto clip = torch::randn({1, 3, 8, 112, 112});
  bevt::bench::Result r;
  if (name == "eval") {
    model->eval();
    double before = current_rss_mb();
    double c0 = cpu_seconds();
    r = bevt::bench::time_case("video_swin_t eval forward 1x3x8x112x112", warmup, reps, [&] {
      torch::NoGradGuard ng;
      auto f = model->forward_video(clip);
      (void)f.at("out").sum().item<float>();
    });
    r.fields["cpu_s_per_iter"] = (cpu_seconds() - c0) / (warmup + reps);
    r.fields["rss_before_mb"] = before;
    r.fields["threads"] = threads;
    return r;
  }
  model->train();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0.05));
  auto step = [&] {
    opt.zero_grad();
    auto loss = model->forward_video(clip).at("out").mean();
    loss.backward();
    opt.step();
  };
  // Allocate the AdamW state with zero gradients (no forward yet), so that memory above this level is
  // activations, gradients of activations and temporaries.
  {
    for (auto& p : model->parameters()) p.mutable_grad() = torch::zeros_like(p);
    opt.step();
    opt.zero_grad();
  }
  double before = current_rss_mb();
  double c0 = cpu_seconds();
  r = bevt::bench::time_case(name == "train_ckpt" ? "video_swin_t train step + grad checkpointing"
                                                  : "video_swin_t train step (fwd+bwd+AdamW)",
                             warmup, reps, step);
  r.fields["rss_before_mb"] = before;
  r.fields["cpu_s_per_iter"] = (cpu_seconds() - c0) / (warmup + reps);
  r.fields["activation_mb"] = r.peak_rss_mb - before;
  r.fields["threads"] = threads;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_video_swin: Video Swin-T training step, eval forward, checkpointed training step"};
  bool json = false;
  std::string one;
  int warmup = 3, reps = 10, threads = 2;
  app.add_flag("--json", json, "one JSON object per case");
  app.add_option("--case", one, "run one case in this process (train | eval | train_ckpt)");
  app.add_option("--warmup", warmup, "untimed runs (default 3)");
  app.add_option("--reps", reps, "timed runs (default 10)");
  app.add_option("--threads", threads, "torch threads (default 2)");
  CLI11_PARSE(app, argc, argv);
  if (!one.empty()) {
    bevt::bench::print({run_case(one, warmup, reps, threads)}, true);
    return 0;
  }
  std::vector<bevt::bench::Result> results;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  for (std::string c : {"train", "eval", "train_ckpt"}) {
    std::string cmd = fmt::format("'{}' --case {} --warmup {} --reps {} --threads {}", self, c, warmup, reps, threads);
    std::FILE* p = popen(cmd.c_str(), "r");
    if (!p) return 1;
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    if (pclose(p) != 0) {
      std::cerr << "bench_video_swin: case " << c << " failed: " << out << "\n";
      return 1;
    }
    auto j = nlohmann::json::parse(out);
    bevt::bench::Result r;
    r.name = j["name"];
    r.median_s = j["median_s"];
    r.min_s = j["min_s"];
    r.max_s = j["max_s"];
    r.peak_rss_mb = j["peak_rss_mb"];
    for (auto& [k, v] : j.items())
      if (k != "name" && k != "median_s" && k != "min_s" && k != "max_s" && k != "peak_rss_mb") r.fields[k] = v;
    results.push_back(r);
  }
  bevt::bench::print(results, json);
  return 0;
}
