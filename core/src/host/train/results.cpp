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
  write_run_file(ctx, "results.json", results.dump(2) + "\n");
}

void write_run_file(const RunContext& ctx, const std::string& name, const std::string& text) {
  if (!dist::is_main()) return;
  namespace fs = std::filesystem;
  // The work_dir's current state at its top; the same bytes kept in this run's folder (train/run_folder.h).
  write_text_atomic((fs::path(ctx.run.work_dir) / name).string(), text);
  if (!ctx.run_dir.empty()) write_text_atomic((fs::path(ctx.run_dir) / name).string(), text);
}

}  // namespace bevt::host::train
