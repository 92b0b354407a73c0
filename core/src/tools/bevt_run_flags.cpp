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

}  // namespace bevt::tools
