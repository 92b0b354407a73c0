#include "sections.h"

#include <fmt/format.h>
#include <torch/cuda.h>

#include <filesystem>

#include "bevt/error.h"
#include "bevt/strings.h"

namespace bevt::host {

namespace {
const std::vector<std::string> kModes = {"pretrain", "finetune", "test", "probe", "tokenizer"};
}

const std::vector<std::pair<std::string, std::vector<KeySpec>>>& host_sections() {
  static const std::vector<std::pair<std::string, std::vector<KeySpec>>> sections = {
      {"run",
       {
           key("mode", "pretrain", "what to run: pretrain | finetune | test | probe | tokenizer"),
           key("work_dir", "", "output folder (default work_dirs/<experiment file name>)"),
           key("seed", 0, "experiment seed: every random choice derives from it"),
           key("device", "auto", "auto (CUDA when present) | cpu | cuda | cuda:N"),
           key("max_steps", 0, "optimiser steps to run; 0 = use epochs"),
           key("epochs", 1, "passes over the training data when max_steps is 0"),
           key("log_every", 10, "steps between log lines and metrics.jsonl records"),
           key("ckpt_every", 0, "steps between checkpoints; 0 = only at the end"),
           key("keep_last", 3, "checkpoints kept besides the best"),
           key("threads", 0, "intra-op CPU threads; 0 = torch's default"),
       }},
  };
  return sections;
}

std::string resolve_device(const std::string& requested, const std::string& where) {
  if (requested == "cpu") return "cpu";
  if (requested == "auto") return torch::cuda::is_available() ? "cuda:0" : "cpu";
  if (requested.rfind("cuda", 0) == 0) {
    int index = 0;
    if (requested.size() > 4) {
      if (requested[4] != ':' || requested.size() == 5)
        throw UserError(fmt::format("{}: run.device '{}' is not auto, cpu, cuda or cuda:N", where, requested));
      try {
        index = std::stoi(requested.substr(5));
      } catch (const std::exception&) {
        throw UserError(fmt::format("{}: run.device '{}' is not auto, cpu, cuda or cuda:N", where, requested));
      }
    }
    if (!torch::cuda::is_available())
      throw UserError(fmt::format("{}: run.device = '{}' but this build or machine has no CUDA (use auto or cpu)",
                                  where, requested));
    if (index < 0 || static_cast<size_t>(index) >= torch::cuda::device_count())
      throw UserError(fmt::format("{}: run.device = '{}' but only {} GPU(s) are visible", where, requested,
                                  torch::cuda::device_count()));
    return fmt::format("cuda:{}", index);
  }
  throw UserError(fmt::format("{}: run.device '{}' is not auto, cpu, cuda or cuda:N", where, requested));
}

RunSettings resolve_run(Config& root, const std::string& experiment_path) {
  if (!root.has("run")) root.set_toml("run", "{}", "<default>");
  Config run = root.get_table("run");
  run.validate(host_sections()[0].second, {});
  RunSettings s;
  s.mode = run.get_string("mode");
  if (std::find(kModes.begin(), kModes.end(), s.mode) == kModes.end())
    throw UserError(fmt::format("{}: run.mode '{}' is not one of {}{}", run.where("mode"), s.mode, join(kModes),
                                did_you_mean(s.mode, kModes)));
  s.work_dir = run.get_string("work_dir");
  if (s.work_dir.empty()) {
    s.work_dir = (std::filesystem::path("work_dirs") / std::filesystem::path(experiment_path).stem()).string();
    run.set_toml("work_dir", fmt::format("'{}'", s.work_dir), "<default>");
  }
  int64_t seed = run.get_int("seed");
  if (seed < 0) throw UserError(fmt::format("{}: run.seed must be >= 0", run.where("seed")));
  s.seed = static_cast<uint64_t>(seed);
  s.device = resolve_device(run.get_string("device"), run.where("device"));
  s.max_steps = run.get_int("max_steps");
  s.epochs = run.get_int("epochs");
  s.log_every = run.get_int("log_every");
  s.ckpt_every = run.get_int("ckpt_every");
  s.keep_last = run.get_int("keep_last");
  s.threads = run.get_int("threads");
  for (const char* k : {"max_steps", "epochs", "ckpt_every", "keep_last", "threads"})
    if (run.get_int(k) < 0) throw UserError(fmt::format("{}: run.{} must be >= 0", run.where(k), k));
  if (s.log_every <= 0) throw UserError(fmt::format("{}: run.log_every must be > 0", run.where("log_every")));
  return s;
}

}  // namespace bevt::host
