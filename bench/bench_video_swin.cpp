// bench_video_swin: Video Swin-T (embed 96, depths 2,2,6,2, heads 3,6,12,24, window 8,7,7, patch 2,4,4,
// drop path 0.1) on a 1x3x8x112x112 clip with 2 threads: (a) training step (loss = mean of "out", backward,
// AdamW), (b) eval forward under no-grad, (c) training step with gradient checkpointing, of every stage and of
// stages 1-3. Each case runs in a fresh process of this executable (--case), so that its peak RSS is its own.
// Each case also prints its matmul FLOPs (counted from the architecture, below), the sgemm rate of the same
// process and the floor they set.
//
// --case encoder (GPU check, scripts/gpu_check.sh): the encoder's training step (forward + backward of the masked
// video path, no optimiser) of a Video Swin preset on --device under --precision, with its matmul FLOPs counted
// from the architecture (linear layers and attention, backward = 2x forward), the TFLOP/s they reach and the
// fraction of the H200's bf16 matmul rate (790 TFLOP/s, measured on that machine: device/KINDS.md).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bench_harness.h"
#include "profile.h"
#include "sgemm.h"
#include "tensor_memory.h"
#include "bevt/backbone.h"
#include "host/registry.h"
#include "host/train/amp.h"
#include "host/train/device_memory.h"

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

struct SwinPreset {
  int64_t embed;
  std::vector<int64_t> depths;
};

const SwinPreset& preset(const std::string& plugin) {
  static const std::map<std::string, SwinPreset> p = {{"video_swin_t", {96, {2, 2, 6, 2}}},
                                                      {"video_swin_s", {96, {2, 2, 18, 2}}},
                                                      {"video_swin_b", {128, {2, 2, 18, 2}}}};
  auto it = p.find(plugin);
  if (it == p.end()) throw std::invalid_argument("--plugin must be video_swin_t, video_swin_s or video_swin_b");
  return it->second;
}

// Matmul FLOPs of one forward of Video Swin (patch 2x4x4, window 8x7x7) on [B,3,T,S,S]: patch embedding,
// per block qkv + proj on the padded windows (8C^2 per token), attention (q.k^T and a.v: 4NC per token), MLP
// (16C^2 per token), and the patch mergings (16C^2 per merged token). Norms, softmax and GELU are not counted.
double swin_forward_flops(const SwinPreset& p, int64_t B, int64_t T, int64_t S) {
  auto up = [](int64_t x, int64_t w) { return (x + w - 1) / w * w; };
  int64_t t = T / 2, h = S / 4, w = S / 4, C = p.embed;
  double f = 2.0 * 96.0 * static_cast<double>(C) * static_cast<double>(t * h * w);
  for (size_t i = 0; i < p.depths.size(); ++i) {
    const int64_t wd = std::min<int64_t>(8, t), wh = std::min<int64_t>(7, h), ww = std::min<int64_t>(7, w);
    const double N = static_cast<double>(wd * wh * ww);
    const double L = static_cast<double>(t * h * w), Lp = static_cast<double>(up(t, wd) * up(h, wh) * up(w, ww));
    const double c = static_cast<double>(C);
    f += static_cast<double>(p.depths[i]) * (Lp * (8 * c * c + 4 * N * c) + L * 16 * c * c);
    if (i + 1 < p.depths.size()) {
      h = (h + 1) / 2;
      w = (w + 1) / 2;
      f += static_cast<double>(t * h * w) * 16 * c * c;
      C *= 2;
    }
  }
  return f * static_cast<double>(B);
}

// What no implementation of the case can beat on this CPU: its matmul FLOPs at the rate of a large sgemm measured
// in the same process (floor_s), and the fraction of that rate the case reaches. A speed-up goal against another
// implementation is reachable only if that implementation's time / floor_s is at least the goal.
// matmul_s: the same case's matrix products alone, as the BLAS runs them on the model's shapes (smaller K and N
// than the 2048^3 sgemm, so slower per FLOP): the tighter floor for any implementation on this BLAS.
template <class Fn>
void add_floor(bevt::bench::Result& r, double flops, Fn&& fn) {
  const double mm_s = bevt::bench::matmul_seconds(fn);
  r.fields["matmul_s"] = mm_s;
  r.fields["matmul_shapes_gflops"] = flops / mm_s / 1e9;
  const double sgemm = bevt::bench::sgemm_gflops(5);
  r.fields["matmul_gflop"] = flops / 1e9;
  r.fields["gflops"] = flops / r.median_s / 1e9;
  r.fields["sgemm_gflops"] = sgemm;
  r.fields["fraction_of_sgemm"] = r.fields["gflops"] / sgemm;
  r.fields["floor_s"] = flops / 1e9 / sgemm;
}

bevt::bench::Result run_case(const std::string& name, int warmup, int reps, int threads, const std::string& profile,
                             const std::string& ckpt_stages) {
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  auto reg = bevt::bench::plugins();
  auto cfg = bevt::Config::from_toml(
      "plugin = \"video_swin_t\"\nwindow_size = [8, 7, 7]\npatch_size = [2, 4, 4]\ndrop_path_rate = 0.1\n"
      "grad_checkpointing = " + std::string(name == "train_ckpt" ? "true" : "false") + "\n" +
          "grad_checkpointing_stages = [" + ckpt_stages + "]\n",
      "bench");
  auto model = reg.build_as<bevt::Backbone>("bench", cfg, bevt::BuildContext{});
  auto clip = torch::randn({1, 3, 8, 112, 112});
  bevt::bench::Result r;
  if (name == "eval") {
    model->eval();
    double before = current_rss_mb();
    double c0 = cpu_seconds();
    auto fwd = [&] {
      torch::NoGradGuard ng;
      auto f = model->forward_video(clip);
      (void)f.at("out").sum().item<float>();
    };
    r = bevt::bench::time_case("video_swin_t eval forward 1x3x8x112x112", warmup, reps, fwd);
    if (!profile.empty()) bevt::bench::profile_once(profile, torch::kCPU, fwd);
    r.fields["cpu_s_per_iter"] = (cpu_seconds() - c0) / (warmup + reps);
    r.fields["rss_before_mb"] = before;
    r.fields["threads"] = threads;
    add_floor(r, swin_forward_flops(preset("video_swin_t"), 1, 8, 112), fwd);
    return r;
  }
  model->train();
  // bevt's own AdamW (the optimiser bevt-run steps), as the official side runs torch.optim.AdamW: lr 1e-4,
  // weight decay 0.05, no clipping.
  namespace tr = bevt::host::train;
  std::vector<tr::NamedParam> named;
  for (const auto& kv : model->named_parameters()) named.push_back({kv.key(), kv.value()});
  tr::OptimSettings os;
  os.lr = 1e-4;
  os.weight_decay = 0.05;
  os.clip_grad = 0;
  tr::AdamW opt(named, os);
  // Gradients are zeroed, not freed (set_to_none = false), so that they are part of the baseline below and
  // activation_mb is the activations alone: what checkpointing can save.
  auto step = [&] {
    opt.zero_grad();
    auto loss = model->forward_video(clip).at("out").mean();
    loss.backward();
    opt.step(os.lr);
  };
  // Allocate the AdamW state and the parameter gradients (no forward yet), so that memory above this level is
  // activations, gradients of activations and temporaries.
  {
    for (auto& p : model->parameters()) p.mutable_grad() = torch::zeros_like(p);
    opt.step(os.lr);
    opt.zero_grad();
  }
  double before = current_rss_mb();
  double c0 = cpu_seconds();
  const std::string case_name =
      name != "train_ckpt" ? "video_swin_t train step (fwd+bwd+AdamW)"
      : ckpt_stages.empty() ? "video_swin_t train step + grad checkpointing"
                            : "video_swin_t train step + grad checkpointing (stages " + ckpt_stages + ")";
  r = bevt::bench::time_case(case_name, warmup, reps, step);
  // One more step, untimed, under a tensor-level count: its peak above what was alive before it (parameters,
  // gradients, AdamW state) is the activations and their gradients, which is what checkpointing reduces.
  {
    bevt::bench::TensorMemoryPeak mem;
    step();
    r.fields["tensor_peak_mb"] = mem.peak_mb();
  }
  if (!profile.empty()) bevt::bench::profile_once(profile, torch::kCPU, step);
  r.fields["rss_before_mb"] = before;
  r.fields["cpu_s_per_iter"] = (cpu_seconds() - c0) / (warmup + reps);
  r.fields["activation_mb"] = r.peak_rss_mb - before;
  r.fields["threads"] = threads;
  // Backward = 2x forward (input and weight gradients); checkpointing's recomputed forward is not counted, so
  // its fraction_of_sgemm is the useful work's.
  add_floor(r, 3.0 * swin_forward_flops(preset("video_swin_t"), 1, 8, 112), step);
  return r;
}

bevt::bench::Result run_encoder_case(const std::string& plugin, const std::string& device_name,
                                     const std::string& precision_name, int64_t B, int64_t T, int64_t S, int warmup,
                                     int reps, int threads, const std::string& profile, const std::string& sdpa) {
  namespace tr = bevt::host::train;
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  const torch::Device device(device_name);
  const tr::Precision precision = tr::parse_precision(precision_name, device.str(), "--precision");
  tr::set_float32_math(precision);
  if (sdpa != "auto") {  // one of at::scaled_dot_product_attention's CUDA backends alone (A/B of the kernels)
    auto& ctx = at::globalContext();
    ctx.setSDPUseFlash(sdpa == "flash");
    ctx.setSDPUseMemEfficient(sdpa == "efficient");
    ctx.setSDPUseCuDNN(sdpa == "cudnn");
    ctx.setSDPUseMath(sdpa == "math");
  }
  auto reg = bevt::bench::plugins();
  auto cfg = bevt::Config::from_toml("plugin = \"" + plugin + "\"\nwindow_size = [8, 7, 7]\ndrop_path_rate = 0.1\n",
                                     "bench");
  auto model = reg.build_as<bevt::Backbone>("bench", cfg, bevt::BuildContext{});
  model->to(device);
  model->train();
  auto clip = torch::randn({B, 3, T, S, S}, torch::TensorOptions().device(device));
  auto mask = torch::rand({B, T / 2, S / 16, S / 16}, torch::TensorOptions().device(device)).lt(0.5);
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  auto step = [&] {
    for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
    torch::Tensor loss;
    {
      tr::AutocastGuard ac(precision, device);
      loss = model->forward_video(clip, mask).at("out").to(torch::kFloat32).mean();
    }
    loss.backward();
    sync();
  };
  auto r = bevt::bench::time_case(fmt::format("{} encoder train step {}x3x{}x{}x{} {} {}{}", plugin, B, T, S, S,
                                              device.str(), precision_name,
                                              sdpa == "auto" ? "" : " sdpa " + sdpa),
                                  warmup, reps, step);
  const double flops = 3.0 * swin_forward_flops(preset(plugin), B, T, S);
  r.fields["matmul_tflop_per_step"] = flops / 1e12;
  r.fields["matmul_tflops"] = flops / r.median_s / 1e12;
  r.fields["fraction_of_h200_bf16_peak"] = flops / r.median_s / 790e12;
  r.fields["peak_mem_mb"] = tr::peak_memory_mb(device);
  r.fields["clips_per_s"] = static_cast<double>(B) / r.median_s;
  if (!profile.empty()) bevt::bench::profile_once(profile, device, step);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_video_swin: Video Swin-T training step, eval forward, checkpointed training step"};
  bool json = false;
  std::string one;
  int warmup = 3, reps = 10, threads = 2;
  std::string device = "cpu", precision = "fp32", plugin = "video_swin_t";
  int64_t batch = 1, frames = 8, size = 112;
  std::string profile, sdpa = "auto", ckpt_stages;
  app.add_flag("--json", json, "one JSON object per case");
  app.add_option("--case", one, "run one case in this process (train | eval | train_ckpt | encoder)");
  app.add_option("--device", device, "encoder case: cpu | cuda (default cpu)");
  app.add_option("--precision", precision, "encoder case: fp32 | tf32 | bf16 | fp16 (autocast)");
  app.add_option("--plugin", plugin, "encoder case: video_swin_t | video_swin_s | video_swin_b");
  app.add_option("--batch", batch, "encoder case: clips per step");
  app.add_option("--frames", frames, "encoder case: frames per clip");
  app.add_option("--size", size, "encoder case: frame side");
  app.add_option("--ckpt-stages", ckpt_stages,
                 "train_ckpt: the stages whose blocks are recomputed, e.g. \"1,2\" (--case train_ckpt: default every "
                 "stage; all cases: the second checkpointed case, default 1,2,3)");
  app.add_option("--warmup", warmup, "untimed runs (default 3)");
  app.add_option("--reps", reps, "timed runs (default 10)");
  app.add_option("--threads", threads, "torch threads (default 2)");
  app.add_option("--sdpa", sdpa, "encoder case on CUDA: attention backend auto | math | efficient | cudnn | flash")
      ->check(CLI::IsMember({"auto", "math", "efficient", "cudnn", "flash"}));
  app.add_option("--profile", profile, "with --case: after timing, profile one more step / forward into this chrome-trace file");
  CLI11_PARSE(app, argc, argv);
  if (one == "encoder") {
    bevt::bench::print({run_encoder_case(plugin, device, precision, batch, frames, size, warmup, reps, threads, profile, sdpa)}, json);
    return 0;
  }
  if (!one.empty()) {
    bevt::bench::print({run_case(one, warmup, reps, threads, profile, ckpt_stages)}, true);
    return 0;
  }
  std::vector<bevt::bench::Result> results;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  // (c) twice: every stage recomputed (as the official use_checkpoint does), and stages 1-3 alone (--ckpt-stages,
  // default 1,2,3): stage 4 holds 64 tokens, so recomputing it costs ~18% of a forward and saves no peak memory.
  const std::pair<const char*, std::string> cases[] = {
      {"train", ""}, {"eval", ""}, {"train_ckpt", ""}, {"train_ckpt", ckpt_stages.empty() ? "1,2,3" : ckpt_stages}};
  for (const auto& [c, stages] : cases) {
    std::string cmd = fmt::format("'{}' --case {} --warmup {} --reps {} --threads {} --ckpt-stages '{}'", self, c,
                                  warmup, reps, threads, stages);
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
