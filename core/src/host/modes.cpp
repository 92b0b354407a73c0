#include "modes.h"

#include <fmt/format.h>

#include "bevt/error.h"
#include "bevt/strings.h"
#include "config/experiment.h"
#include "train/runners.h"

#include <algorithm>

namespace bevt::host {

const std::vector<ModeSpec>& modes() {
  static const std::vector<ModeSpec> table = {
      {"pretrain", "BEVT pre-training: masked image and/or video modelling with one shared encoder",
       {"pretrain", "optim", "loader", "init"},
       {"model.backbone", "tokenizer", "model.heads.{stream}", "masker.{stream}", "data.{stream}"},
       train::run_pretrain},
      {"finetune", "supervised fine-tuning of backbone + classifier, validation each epoch",
       {"finetune", "optim", "loader", "init"},
       {"model.backbone", "model.heads.cls", "data.train"},
       train::run_finetune},
      {"test", "multi-view evaluation of a trained model (init.checkpoint)",
       {"loader", "init"},
       {"model.backbone", "model.heads.cls", "data.test|data.val"},
       train::run_test},
      {"probe", "test plus the temporal probes: one repeated frame, shuffled frames",
       {"loader", "init"},
       {"model.backbone", "model.heads.cls", "data.test|data.val"},
       train::run_probe},
      {"tokenizer", "trains the [tokenizer] (vq, peco) on data.train",
       {"optim", "loader"},
       {"tokenizer", "data.train"},
       train::run_tokenizer},
      {"token_probe", "a linear probe on the [tokenizer]'s targets: which classes they tell apart (no training)",
       {"loader"},
       {"tokenizer", "data.train", "data.test|data.val"},
       train::run_token_probe},
  };
  return table;
}

std::vector<std::string> mode_names() {
  std::vector<std::string> out;
  for (const auto& m : modes()) out.push_back(m.name);
  return out;
}

const ModeSpec& find_mode(const std::string& name, const std::string& where) {
  for (const auto& m : modes())
    if (m.name == name) return m;
  throw UserError(fmt::format("{}: run.mode '{}' is not one of {}{}", where, name, join(mode_names()),
                              did_you_mean(name, mode_names())));
}

void check_mode_needs(const Experiment& exp) {
  const std::string where = exp.where("run.mode");
  const ModeSpec& mode = find_mode(exp.run.mode, where);
  auto present = [&](const std::string& path) {
    return std::any_of(exp.components.begin(), exp.components.end(),
                       [&](const ComponentTable& c) { return c.path == path; });
  };
  for (const auto& need : mode.needs) {
    std::vector<std::string> expanded{need};
    if (const auto at = need.find("{stream}"); at != std::string::npos) {
      expanded.clear();
      for (const auto& stream : exp.pretrain.streams) expanded.push_back(std::string(need).replace(at, 8, stream));
    }
    for (const auto& alternatives : expanded) {
      const std::vector<std::string> options = split(alternatives, '|');
      if (std::none_of(options.begin(), options.end(), present))
        throw UserError(fmt::format("{}: run.mode = '{}' needs a [{}] table (plugin = \"<name>\"; bevt-run "
                                    "--list-plugins lists them)",
                                    where, mode.name, join(options, "] or [")));
    }
  }
}

std::string modes_help() {
  std::string out = "Run modes (run.mode):\n";
  for (const auto& m : modes()) {
    out += fmt::format("  {:<10} {}\n", m.name, m.summary);
    out += fmt::format("  {:<10}   tables: [run] [dist]", "");
    for (const auto& t : m.tables) out += " [" + t + "]";
    out += fmt::format("\n  {:<10}   components: {}\n", "", join(m.needs));
  }
  out += "A file with a [plan] table runs its stages in order (docs/plans.md).\n";
  return out;
}

}  // namespace bevt::host
