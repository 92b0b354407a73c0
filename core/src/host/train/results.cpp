#include <filesystem>

#include "checkpoint.h"
#include "host/data/problems.h"
#include "host/dist/dist.h"
#include "runners.h"

namespace bevt::host::train {

void write_results(const RunContext& ctx, nlohmann::json results) {
  if (!dist::is_main()) return;  // rank 0 writes the results
  results["experiment"] = ctx.exp.file;
  results["seed"] = ctx.run.seed;
  results["config_hash"] = ctx.exp.config_hash;
  results["run_hash"] = ctx.exp.run_hash;
  results["inputs"] = ctx.inputs;
  results["data_problems"] = data_problems_json(ctx.composition);  // every bad item named, per stream
  write_text_atomic((std::filesystem::path(ctx.run.work_dir) / "results.json").string(), results.dump(2) + "\n");
}

}  // namespace bevt::host::train
