// run.mode = "pipeline": runs experiment files in order (pipeline.stages, relative to this file), each in
// its own bevt-run process, skipping stages already finished with the same config (their results.json holds
// the config hash), so an interrupted pipeline resumes where it stopped. Tables the stages report (the probe)
// are printed at the end and collected in this run's results.json.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "bevt/error.h"
#include "bevt/log.h"
#include "host/experiment.h"
#include "host/registry.h"
#include "host/sections.h"
#include "loop.h"
#include "runners_internal.h"

namespace fs = std::filesystem;

namespace bevt::host::train {

namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

int run_pipeline(const RunContext& ctx) {
  Config pc = host_section(ctx.root, "pipeline");
  auto stages = pc.get_string_list("stages");
  if (stages.empty()) throw UserError(fmt::format("{}: pipeline.stages is empty", pc.where()));
  fs::path base = fs::path(ctx.experiment_path).parent_path();
  std::string exe = (fs::path(executable_dir()) / "bevt-run").string();
  nlohmann::json results{{"mode", "pipeline"}, {"stages", nlohmann::json::array()}};
  std::string tables;
  for (const auto& stage : stages) {
    fs::path file = base / stage;
    if (!fs::exists(file)) throw UserError(fmt::format("{}: stage '{}' not found ({})", pc.where("stages"), stage, file.string()));
    Config sc = load_experiment(file.string(), {});
    std::string hash = experiment_hash(sc);
    RunSettings rs = resolve_run(sc, file.string());
    fs::path res_file = fs::path(rs.work_dir) / "results.json";
    nlohmann::json stage_res;
    bool done = false;
    if (std::ifstream in{res_file}) {
      try {
        in >> stage_res;
        done = stage_res.value("config_hash", "") == hash;
      } catch (const std::exception&) {
      }
    }
    if (done) {
      log_info("stage {}: finished earlier ({}), skipped", stage, res_file.string());
    } else {
      log_info("stage {}: bevt-run {}", stage, file.string());
      // Resume an interrupted stage, but only from a checkpoint of the same experiment.
      bool resume = false;
      if (auto last = last_checkpoint(rs.work_dir)) {
        std::ifstream tj(fs::path(*last) / "trainer.json");
        nlohmann::json j;
        try {
          tj >> j;
          resume = j.value("config_hash", "") == hash;
        } catch (const std::exception&) {
        }
      }
      std::string cmd = shell_quote(exe) + " " + shell_quote(file.string()) + (resume ? " --resume" : "");
      int st = std::system(cmd.c_str());
      int code = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
      if (code != 0) {
        if (code == 2) throw UserError(fmt::format("stage {} failed on bad input (exit 2; see its message above)", stage));
        throw RunError(fmt::format("stage {} failed (exit {}); rerun the pipeline to resume it", stage, code));
      }
      std::ifstream in{res_file};
      in >> stage_res;
    }
    results["stages"].push_back({{"stage", stage}, {"work_dir", rs.work_dir}, {"results", stage_res}});
    if (stage_res.contains("table")) tables += fmt::format("{} ({})\n\n{}\n", stage, rs.work_dir, stage_res["table"].get<std::string>());
  }
  if (!tables.empty()) {
    results["tables"] = tables;
    std::printf("\n%s", tables.c_str());
  }
  write_results(ctx, results);
  return 0;
}

}  // namespace

void register_pipeline_runner() { register_runner("pipeline", run_pipeline); }

}  // namespace bevt::host::train
