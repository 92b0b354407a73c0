#include <filesystem>

#include "bevt/error.h"
#include "host/dist/dist.h"
#include "loop.h"
#include "runners_internal.h"

namespace bevt::host {

void register_builtin_runners() {
  train::register_pretrain_runner();
  train::register_finetune_runners();
  train::register_tokenizer_runner();
}

namespace train {
void write_results(const RunContext& ctx, nlohmann::json results) {
  if (!dist::is_main()) return;  // rank 0 writes the results
  results["experiment"] = ctx.experiment_path;
  results["seed"] = ctx.run.seed;
  results["config_hash"] = ctx.config_hash;
  results["run_hash"] = ctx.run_hash;
  results["inputs"] = ctx.inputs;
  write_text_atomic((std::filesystem::path(ctx.run.work_dir) / "results.json").string(), results.dump(2) + "\n");
}
}  // namespace train

}  // namespace bevt::host
