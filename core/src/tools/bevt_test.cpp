// bevt-test EXP CHECKPOINT [--dump FILE] [--views CxS] [--work-dir DIR] [any bevt-run flag]: mmaction2's
// tools/test.py. It is `bevt-run EXP --test CHECKPOINT ...`: the same checks, composition and evaluation.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "bevt_run_main.h"

namespace {
const char* const kUsage =
    "bevt-test: test a trained model (mmaction2's tools/test.py)\n"
    "\n"
    "Usage: bevt-test EXPERIMENT.toml CHECKPOINT [--dump preds.jsonl] [--views CxS] [--work-dir DIR]\n"
    "                 [--set k=v | --cfg-options k=v ...] [any other bevt-run flag]\n"
    "\n"
    "  EXPERIMENT.toml  the fine-tune (or test) experiment: its model and its data.test table (else data.val)\n"
    "  CHECKPOINT       a checkpoint folder (checkpoints/step_N, checkpoints/best), a .safetensors file, or a\n"
    "                   work_dir (its last checkpoint)\n"
    "  --dump FILE      every video's class probabilities and prediction, one JSON object per line\n"
    "  --views CxS      C clips x S crops per video (S = 1 center, 3 three crops), e.g. 4x3\n"
    "  --work-dir DIR   where results.json and the run's records go (default: the experiment's work_dir/test)\n"
    "\n"
    "Prints top-1, top-5 and mean class accuracy; writes results.json and confusion.csv.\n"
    "Example:\n"
    "  bevt-test experiments/k400.toml work_dirs/k400/checkpoints/best --views 4x3 --dump preds.jsonl\n";
}  // namespace

int main(int argc, char** argv) {
  // Already in bevt-run's form: a worker that --nproc started again with the arguments rearranged below.
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--test") == 0 || std::strncmp(argv[i], "--test=", 7) == 0)
      return bevt::tools::run_main(argc, argv);
  std::vector<std::string> positional;
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    }
    // A flag's value is never taken for a positional: bevt-run's flags that take values all start with "--".
    if (a.rfind("-", 0) == 0 || positional.size() >= 2) {
      rest.push_back(a);
      const bool takes_value = a.find('=') == std::string::npos && a != "--amp" && a != "--dry-run" &&
                               a != "--list-plugins" && a != "--resume";
      if (takes_value && i + 1 < argc && std::strncmp(argv[i + 1], "--", 2) != 0) rest.push_back(argv[++i]);
      continue;
    }
    positional.push_back(a);
  }
  if (positional.size() != 2) {
    std::cerr << "bevt-test: error: expected EXPERIMENT.toml and CHECKPOINT (see bevt-test --help)" << std::endl;
    return 2;
  }
  std::vector<std::string> args{"bevt-test", positional[0], "--test", positional[1]};
  args.insert(args.end(), rest.begin(), rest.end());
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  return bevt::tools::run_main(static_cast<int>(args.size()), cargs.data());
}
