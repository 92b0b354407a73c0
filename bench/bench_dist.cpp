// Distributed training speed (issue 7): the training step of a small Video Swin fine-tune with 1 and 2 processes
// on this machine's CPUs (Gloo over loopback), the per-process batch fixed, and the part of a step spent in the
// gradient all-reduce (time blocked in DataParallel::reduce_gradients, i.e. communication not hidden behind
// backward), with bucket overlap on and off. Each case is a real `bevt-run [--nproc 2]` run; the figures come
// from its metrics.jsonl (step_time, allreduce_time; the first `--warmup` steps are dropped).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "bench_harness.h"

namespace fs = std::filesystem;

namespace {

std::string experiment(const fs::path& wd, const fs::path& cache, int batch, int steps, int embed) {
  return fmt::format(
      "[run]\nmode = \"finetune\"\nwork_dir = \"{}\"\nmax_steps = {}\nlog_every = 1\nckpt_every = 100000\n"
      "device = \"cpu\"\nseed = 1\n"
      "[model.backbone]\nplugin = \"video_swin\"\nembed_dim = {}\ndepths = [1, 1, 2, 1]\n"
      "num_heads = [1, 2, 4, 8]\nwindow_size = [2, 4, 4]\ndrop_path_rate = 0.1\n"
      "[model.heads.cls]\nplugin = \"i3d\"\n"
      "[data.train]\nplugin = \"synthetic\"\nsplit = \"train\"\nnum_videos = 64\nframes = 16\nsize = 64\n"
      "clip_len = 8\nframe_interval = 2\nscale_range = []\ncrop = \"none\"\ncrop_size = 64\nflip = 0.0\n"
      "cache_dir = \"{}\"\n"
      "[loader]\nbatch_size = {}\nworkers = 1\n[optim]\nlr = 1e-4\n[dist]\ntimeout = 120\n",
      wd.string(), steps, embed, cache.string(), batch);
}

struct Case {
  std::string name;
  int procs = 1;
  bool overlap = true;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_dist: training step time with 1 and 2 processes, and the all-reduce share of a step"};
  int steps = 12, warmup = 3, batch = 4, embed = 48;
  bool json = false;
  std::string tmp = (fs::temp_directory_path() / "bevt-bench-dist").string();
  app.add_option("--steps", steps, "training steps per case");
  app.add_option("--warmup", warmup, "first steps left out of the figures");
  app.add_option("--batch", batch, "clips per process per step");
  app.add_option("--embed-dim", embed, "Video Swin embed_dim (model size)");
  app.add_option("--tmp", tmp, "scratch folder");
  app.add_flag("--json", json, "one JSON object per case");
  CLI11_PARSE(app, argc, argv);
  if (steps <= warmup) {
    std::fprintf(stderr, "bench_dist: --steps must exceed --warmup\n");
    return 2;
  }
  const fs::path self = fs::read_symlink("/proc/self/exe").parent_path();
  const std::string bevt_run = (self / "bevt-run").string();
  fs::create_directories(tmp);

  std::vector<bevt::bench::Result> results;
  for (const Case& c : {Case{"1 process", 1, true}, Case{"2 processes (Gloo)", 2, true},
                        Case{"2 processes, no overlap", 2, false}}) {
    const fs::path wd = fs::path(tmp) / fmt::format("run_{}_{}", c.procs, c.overlap);
    fs::remove_all(wd);
    const fs::path exp = fs::path(tmp) / "exp.toml";
    std::ofstream(exp) << experiment(wd, fs::path(tmp) / "cache", batch, steps, embed);
    std::string cmd = bevt_run + (c.procs > 1 ? fmt::format(" --nproc {}", c.procs) : std::string()) + " " +
                      exp.string() + (c.overlap ? "" : " --set dist.overlap=false") + " > " +
                      (fs::path(tmp) / "out.txt").string() + " 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "bench_dist: %s failed; see %s\n", cmd.c_str(), (fs::path(tmp) / "out.txt").c_str());
      return 1;
    }
    std::vector<double> st, ar;
    std::ifstream in(wd / "latest" / "metrics.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line);
      if (!j.contains("step_time") || j["step"].get<int>() <= warmup) continue;
      st.push_back(j["step_time"].get<double>());
      ar.push_back(j.value("allreduce_time", 0.0));
    }
    if (st.empty()) {
      std::fprintf(stderr, "bench_dist: no step times in %s\n", (wd / "latest" / "metrics.jsonl").c_str());
      return 1;
    }
    std::vector<double> sorted = st;
    std::sort(sorted.begin(), sorted.end());
    bevt::bench::Result r;
    r.name = c.name;
    r.min_s = sorted.front();
    r.max_s = sorted.back();
    const size_t n = sorted.size();
    r.median_s = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    r.peak_rss_mb = bevt::bench::peak_rss_mb();
    double ar_mean = 0, st_mean = 0;
    for (size_t i = 0; i < st.size(); ++i) {
      ar_mean += ar[i] / static_cast<double>(st.size());
      st_mean += st[i] / static_cast<double>(st.size());
    }
    r.fields["procs"] = c.procs;
    r.fields["batch_per_proc"] = batch;
    r.fields["clips_per_s"] = c.procs * batch / r.median_s;
    r.fields["allreduce_s"] = ar_mean;
    r.fields["allreduce_frac"] = st_mean > 0 ? ar_mean / st_mean : 0.0;
    results.push_back(r);
  }
  bevt::bench::print(results, json);
  return 0;
}
