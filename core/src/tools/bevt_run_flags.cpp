#include "bevt_run_flags.h"

#include <fmt/format.h>

#include <cstdlib>

#include "bevt/error.h"

namespace bevt::tools {

void add_familiar_flags(CLI::App& app, FamiliarFlags& flags) {
  const std::string group = "mmaction2 / mmengine spellings";
  app.add_option("--work-dir", flags.work_dir, "output folder (= --set run.work_dir=DIR)")->group(group);
  app.add_option("--seed", flags.seed, "experiment seed (= --set run.seed=N)")->group(group);
  app.add_option("--cfg-options", flags.cfg_options, "overrides a.b=c ... (= --set, applied last)")
      ->expected(1, -1)
      ->group(group);
  app.add_flag("--amp", flags.amp, "mixed precision: bf16 on the CPU, fp16 on CUDA (a config's bf16 is kept)")
      ->group(group);
  app.add_option("--launcher", flags.launcher,
                 "none (one process, whatever the environment) | pytorch (torchrun) | slurm; default: detected")
      ->check(CLI::IsMember({"none", "pytorch", "slurm"}))
      ->group(group);
}

std::vector<std::string> familiar_overrides(const FamiliarFlags& flags) {
  std::vector<std::string> out;
  if (!flags.work_dir.empty()) out.push_back(fmt::format("run.work_dir='{}'", flags.work_dir));
  if (flags.seed) out.push_back(fmt::format("run.seed={}", *flags.seed));
  for (const auto& o : flags.cfg_options) out.push_back(o);
  return out;
}

std::string amp_precision(const FamiliarFlags& flags, const std::string& device, bool experiment_is_fp32) {
  if (!flags.amp || !experiment_is_fp32) return "";
  return device.rfind("cuda", 0) == 0 ? "fp16" : "bf16";
}

bool launcher_allows_world(const FamiliarFlags& flags) {
  auto has = [](const char* name) { return std::getenv(name) != nullptr; };
  if (flags.launcher == "pytorch" && !(has("RANK") && has("WORLD_SIZE")))
    throw UserError("--launcher pytorch: RANK and WORLD_SIZE are not set (start bevt-run under torchrun, or use "
                    "--nproc N)");
  if (flags.launcher == "slurm" && !has("SLURM_PROCID"))
    throw UserError("--launcher slurm: SLURM_PROCID is not set (start bevt-run with srun)");
  return flags.launcher != "none";
}

void add_test_flags(CLI::App& app, TestFlags& flags) {
  const std::string group = "testing (mmaction2's tools/test.py; also: bevt-test EXP CKPT)";
  app.add_option("--test", flags.checkpoint,
                 "test this checkpoint (a step_N or best folder, a .safetensors file or a work_dir): "
                 "= --set run.mode=test --set init.checkpoint=CKPT")
      ->group(group);
  app.add_option("--dump", flags.dump, "test / probe: write every video's probabilities and prediction (JSONL)")
      ->group(group);
  app.add_option("--views", flags.views, "test views CxS: C clips x S crops (S = 1: center, 3: three crops), e.g. 4x3")
      ->group(group);
}

std::vector<std::string> test_overrides(const TestFlags& flags, const std::string& slot) {
  std::vector<std::string> out;
  if (!flags.checkpoint.empty()) {
    out.push_back("run.mode='test'");
    out.push_back(fmt::format("init.checkpoint='{}'", flags.checkpoint));
  }
  if (!flags.views.empty()) {
    // "4x3", "4X3" or "4×3".
    std::string v = flags.views;
    for (const std::string times : {"\u00d7", "X"})
      for (auto at = v.find(times); at != std::string::npos; at = v.find(times)) v.replace(at, times.size(), "x");
    const auto x = v.find('x');
    long clips = 0, crops = 0;
    size_t used_c = 0, used_s = 0;
    try {
      if (x != std::string::npos) {
        clips = std::stol(v.substr(0, x), &used_c);
        crops = std::stol(v.substr(x + 1), &used_s);
      }
    } catch (const std::exception&) {
      clips = 0;
    }
    if (x == std::string::npos || used_c != x || used_s != v.size() - x - 1 || clips < 1 || (crops != 1 && crops != 3))
      throw UserError(fmt::format("--views '{}': expected CLIPSxCROPS with CLIPS >= 1 and CROPS 1 (center) or 3 "
                                  "(three crops), e.g. --views 4x3",
                                  flags.views));
    out.push_back(fmt::format("{}.num_clips={}", slot, clips));
    out.push_back(fmt::format("{}.crop='{}'", slot, crops == 3 ? "three" : "center"));
    out.push_back(fmt::format("{}.test_mode=true", slot));
  }
  return out;
}

}  // namespace bevt::tools
