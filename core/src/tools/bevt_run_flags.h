// The flags mmaction2 / mmengine users type (tools/train.py, tools/test.py), mapped onto bevt's own: each is
// an override of the experiment (--set) or a choice of launcher, so the typed Experiment stays the one place
// settings come from.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace bevt::tools {

struct FamiliarFlags {
  std::string work_dir;                  // --work-dir DIR      = --set run.work_dir=DIR
  std::optional<int64_t> seed;           // --seed N            = --set run.seed=N
  std::vector<std::string> cfg_options;  // --cfg-options a=b … = --set a=b …
  bool amp = false;                      // --amp: bf16 autocast on the CPU, fp16 on CUDA (unless the config says bf16)
  std::string launcher;                  // --launcher none | pytorch | slurm
};

// Adds the flags to `app` in their own --help group.
void add_familiar_flags(CLI::App& app, FamiliarFlags& flags);

// The --set overrides they stand for, in the order mmengine applies them (cfg-options last).
std::vector<std::string> familiar_overrides(const FamiliarFlags& flags);

// The precision --amp asks for on the resolved device, or "" when the experiment already sets a mixed one.
std::string amp_precision(const FamiliarFlags& flags, const std::string& device, bool experiment_is_fp32);

// --launcher pytorch / slurm without that launcher's environment is a UserError (exit 2); "none" means run as
// one process even under a launcher's environment. Returns whether the launcher's environment may be used.
bool launcher_allows_world(const FamiliarFlags& flags);

// mmaction2's tools/test.py in bevt-run (`--test CKPT`) and bevt-test (EXP CKPT): test a checkpoint, optionally
// with other views and every video's probabilities written out.
struct TestFlags {
  std::string checkpoint;  // --test CKPT: run.mode = test, init.checkpoint = CKPT
  std::string dump;        // --dump FILE: per-video probabilities and predictions (JSONL)
  std::string views;       // --views CxS: C clips x S crops (S = 1 center, 3 three-crop)
  bool any() const { return !checkpoint.empty() || !dump.empty() || !views.empty(); }
};

void add_test_flags(CLI::App& app, TestFlags& flags);

// The overrides --test and --views stand for; `slot` is the dataset table tested ("data.test" or "data.val").
// A bad --views is a UserError (exit 2).
std::vector<std::string> test_overrides(const TestFlags& flags, const std::string& slot);

}  // namespace bevt::tools
