// Tokens per second of the full DALL-E encoder (n_hid 256, vocabulary 8192) on BEVT's 112x112 views.
#include <CLI/CLI.hpp>

#include <iostream>

#include "bench_harness.h"
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
    bevt::bench::print({r}, json);
  } catch (const std::exception& e) {
    std::cerr << "bench_dalle: error: " << e.what() << std::endl;
    return 2;
  }
  return 0;
}
