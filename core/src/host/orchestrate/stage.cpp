#include "stage.h"

#include <fmt/format.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "bevt/error.h"
#include "bevt/log.h"
#include "host/config/experiment.h"
#include "host/registry.h"
#include "host/train/checkpoint.h"

namespace fs = std::filesystem;

namespace bevt::host::orchestrate {

namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::optional<nlohmann::json> read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return std::nullopt;
  try {
    nlohmann::json j;
    in >> j;
    return j;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

StagePlan plan_stage(const std::string& name, const std::string& file, const StageOptions& opts) {
  const Experiment e = Experiment::load(file, opts.overrides);
  StagePlan p;
  p.name = name;
  p.file = file;
  p.hash = e.config_hash;
  p.run_hash = e.run_hash;
  p.work_dir = e.run.work_dir;
  p.inputs = e.weight_candidates;
  return p;
}

namespace {
// The weight inputs whose file changed since the run recorded them (none when it recorded nothing: results
// written before inputs were recorded are taken as they are).
std::vector<std::string> changed_since(const StagePlan& plan, const std::optional<nlohmann::json>& recorded) {
  if (!recorded || !recorded->is_object()) return {};
  return train::changed_inputs(*recorded, train::input_digests(plan.inputs));
}

std::optional<nlohmann::json> results_of_this_experiment(const StagePlan& plan) {
  auto res = read_json(fs::path(plan.work_dir) / "results.json");
  if (res && res->is_object() && res->value("run_hash", "") == plan.run_hash) return res;
  return std::nullopt;
}

// "init.checkpoint (work_dirs/x/checkpoints/step_300/model.safetensors)", joined by ", ".
std::string describe_inputs(const std::vector<std::string>& keys, const nlohmann::json& recorded) {
  std::string out;
  for (const auto& k : keys) {
    if (!out.empty()) out += ", ";
    out += k;
    if (recorded.contains(k) && recorded[k].is_object()) out += " (" + recorded[k].value("file", "") + ")";
  }
  return out;
}

std::optional<nlohmann::json> recorded_inputs(const nlohmann::json& res) {
  if (res.contains("inputs")) return res["inputs"];
  return std::nullopt;
}
}  // namespace

std::optional<nlohmann::json> finished_results(const StagePlan& plan) {
  auto res = results_of_this_experiment(plan);
  if (res && changed_since(plan, recorded_inputs(*res)).empty()) return res;
  return std::nullopt;
}

StageOutcome run_stage(const StagePlan& plan, const StageOptions& opts) {
  StageOutcome out;
  if (auto res = results_of_this_experiment(plan)) {
    auto changed = changed_since(plan, recorded_inputs(*res));
    if (changed.empty()) {
      log_info("stage {}: finished earlier ({}/results.json), skipped", plan.name, plan.work_dir);
      out.results = *res;
      out.skipped = true;
      return out;
    }
    log_info("stage {}: finished earlier, but {} changed since; running it again", plan.name,
             describe_inputs(changed, *recorded_inputs(*res)));
  }
  // Resume an interrupted stage, but only from a checkpoint of the same experiment that started from the same
  // weight files (work_dir/inputs.json, written when the run started).
  bool resume = false;
  if (auto last = train::last_checkpoint(plan.work_dir)) {
    auto trainer = read_json(fs::path(*last) / "trainer.json");
    resume = trainer && trainer->is_object() && trainer->value("config_hash", "") == plan.hash &&
             changed_since(plan, read_json(fs::path(plan.work_dir) / "inputs.json")).empty();
  }
  std::string cmd = shell_quote((fs::path(executable_dir()) / "bevt-run").string()) + " " + shell_quote(plan.file);
  for (const auto& o : opts.overrides) cmd += " --set " + shell_quote(o);
  for (const auto& d : opts.plugin_dirs) cmd += " --plugin-dir " + shell_quote(d);
  if (resume) cmd += " --resume";
  log_info("stage {}: bevt-run {}{}", plan.name, plan.file, resume ? " --resume" : "");
  int st = std::system(cmd.c_str());
  if (st == -1) throw RunError(fmt::format("stage {}: could not start bevt-run ({})", plan.name, cmd));
  if (WIFSIGNALED(st))
    throw RunError(fmt::format("stage {} was stopped by signal {}; rerun to resume it", plan.name,
                               WTERMSIG(st)));
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
  if (code > 128)  // the shell reports a child killed by a signal as 128 + signal
    throw RunError(fmt::format("stage {} was stopped by signal {}; rerun to resume it", plan.name,
                               code - 128));
  if (code == 2)
    throw UserError(fmt::format("stage {} failed on bad input (exit 2; see its message above): fix it and rerun",
                                plan.name));
  if (code != 0)
    throw RunError(fmt::format("stage {} failed (exit {}); rerun to resume it", plan.name, code));
  auto res = finished_results(plan);
  if (!res)
    throw RunError(fmt::format("stage {}: bevt-run succeeded but {}/results.json is missing or from another "
                               "experiment",
                               plan.name, plan.work_dir));
  out.results = *res;
  return out;
}

}  // namespace bevt::host::orchestrate
