// Tokens per second of the full DALL-E encoder (n_hid 256, vocabulary 8192) on BEVT's 112x112 views, its
// convolutions' GFLOP/s, and the GFLOP/s of a 2048^3 at::mm (sgemm) in the same process, the rate it is read
// against.
#include <CLI/CLI.hpp>

#include <iostream>

#include "bench_harness.h"
#include "sgemm.h"
#include "bevt/error.h"
#include "bevt/tokenizer.h"
#include "host/registry.h"

int main(int argc, char** argv) {
  CLI::App app{"bench_dalle: DALL-E dVAE encoder tokens per second"};
  int batch = 64, size = 112, threads = 2, reps = 3, warmup = 1;
  bool json = false;
  std::vector<std::string> dirs;
  app.add_option("--batch", batch, "images per call (default 64)");
  app.add_option("--size", size, "image side (default 112)");
  app.add_option("--threads", threads, "intra-op threads (default 2)");
  app.add_option("--reps", reps, "timed repetitions (default 3)");
  app.add_option("--warmup", warmup, "untimed repetitions (default 1)");
  app.add_option("--plugin-dir", dirs, "extra plugin folder");
  app.add_flag("--json", json, "one JSON object per case");
  CLI11_PARSE(app, argc, argv);
  try {
    torch::set_num_threads(threads);
    auto reg = bevt::bench::plugins(dirs);
    bevt::Config cfg = bevt::Config::from_toml("plugin = \"dalle\"\n", "bench_dalle");
    auto tok = reg.build_as<bevt::Tokenizer>("tokenizer", cfg, bevt::BuildContext{});
    torch::manual_seed(0);
    torch::Tensor img = torch::rand({batch, 3, size, size});
    int64_t per_image = (size / tok->downsample()) * (size / tok->downsample());
    auto r = bevt::bench::time_case(fmt::format("dalle tokenize {}x3x{}x{} t{}", batch, size, size, threads), warmup,
                                    reps, [&] { tok->tokenize(img); });
    r.fields["tokens_per_s"] = double(batch * per_image) / r.median_s;
    r.fields["images_per_s"] = double(batch) / r.median_s;
    // Convolution FLOPs (2 per multiply-add) from the weights: `blocks.input` runs at full resolution,
    // `blocks.group_<g>` at 1/2^(g-1), `blocks.output` at the last group's.
    double flops = 0;
    const int64_t last = size / tok->downsample();
    for (const auto& p : tok->named_parameters()) {
      const std::string& k = p.key();
      if (k.size() < 2 || k.substr(k.size() - 2) != ".w") continue;
      int64_t side = size;
      if (k.rfind("blocks.group_", 0) == 0) side = size >> (std::stoi(k.substr(13)) - 1);
      if (k.rfind("blocks.output", 0) == 0) side = last;
      flops += 2.0 * double(p.value().numel()) * double(side * side) * batch;
    }
    r.fields["gflop_per_image"] = flops / batch / 1e9;
    r.fields["gflops"] = flops / r.median_s / 1e9;
    r.fields["sgemm_gflops"] = bevt::bench::sgemm_gflops(5);
    r.fields["fraction_of_sgemm"] = r.fields["gflops"] / r.fields["sgemm_gflops"];
    bevt::bench::print({r}, json);
  } catch (const std::exception& e) {
    std::cerr << "bench_dalle: error: " << e.what() << std::endl;
    return 2;
  }
  return 0;
}
