#include "checkpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bevt/atomic_file.h"
#include "bevt/error.h"
#include "bevt/safetensors.h"

namespace fs = std::filesystem;

namespace bevt::host::train {

namespace {
// The complete step_N folders under root, oldest first. A folder is complete once renamed from step_N.tmp,
// and trainer.json is the last file written into it, so its presence is checked too.
std::vector<std::pair<int64_t, fs::path>> step_folders(const fs::path& root) {
  std::vector<std::pair<int64_t, fs::path>> steps;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::string n = e.path().filename().string();
    if (!e.is_directory() || n.rfind("step_", 0) != 0 || n.find('.') != std::string::npos) continue;
    if (!fs::is_regular_file(e.path() / "trainer.json")) continue;
    try {
      size_t used = 0;
      int64_t step = std::stoll(n.substr(5), &used);
      if (used == n.size() - 5) steps.emplace_back(step, e.path());
    } catch (const std::exception&) {
    }
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}
}  // namespace

void write_text_atomic(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

void save_checkpoint(const std::string& work_dir, int64_t step, const TensorMap& model, const TensorMap& optim,
                     const nlohmann::json& trainer, int64_t keep_last, const TensorMap& ema) {
  fs::path root = fs::path(work_dir) / "checkpoints";
  fs::create_directories(root);
  std::string name = fmt::format("step_{}", step);
  fs::path tmp = root / (name + ".tmp");
  fs::path dst = root / name;
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save_safetensors((tmp / "model.safetensors").string(), model, {{"format", "pt"}, {"step", std::to_string(step)}});
  save_safetensors((tmp / "optim.safetensors").string(), optim, {{"step", std::to_string(step)}});
  if (!ema.empty())
    save_safetensors((tmp / "ema.safetensors").string(), ema, {{"format", "pt"}, {"step", std::to_string(step)}});
  write_text_atomic((tmp / "trainer.json").string(), trainer.dump(2) + "\n");
  fs::remove_all(dst);
  fs::rename(tmp, dst);
  write_text_atomic((root / "last").string(), name + "\n");
  if (keep_last <= 0) return;
  auto steps = step_folders(root);
  int64_t excess = static_cast<int64_t>(steps.size()) - keep_last;
  for (int64_t i = 0; i < excess; ++i) fs::remove_all(steps[static_cast<size_t>(i)].second);
}

void save_best(const std::string& work_dir, const TensorMap& model, const nlohmann::json& info) {
  fs::path root = fs::path(work_dir) / "checkpoints";
  fs::create_directories(root);
  fs::path tmp = root / "best.tmp", dst = root / "best", old = root / "best.old";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save_safetensors((tmp / "model.safetensors").string(), model, {{"format", "pt"}});
  write_text_atomic((tmp / "best.json").string(), info.dump(2) + "\n");
  // Two renames: a kill between them leaves best.old, never a half-written best.
  fs::remove_all(old);
  if (fs::exists(dst)) fs::rename(dst, old);
  fs::rename(tmp, dst);
  fs::remove_all(old);
}

std::optional<std::string> last_checkpoint(const std::string& work_dir) {
  fs::path root = fs::path(work_dir) / "checkpoints";
  std::ifstream in(root / "last");
  std::string name;
  if (in) std::getline(in, name);
  if (!name.empty() && fs::is_regular_file(root / name / "trainer.json")) return (root / name).string();
  // No pointer (a kill between the first checkpoint's rename and the pointer's write) or a dangling one: the
  // newest complete folder. A fresh run sets an earlier run's folders aside, so they all belong to this run.
  auto steps = step_folders(root);
  if (!steps.empty()) return steps.back().second.string();
  return std::nullopt;
}

std::optional<std::string> set_aside_checkpoints(const std::string& work_dir) {
  fs::path root = fs::path(work_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(root) || fs::is_empty(root, ec)) return std::nullopt;
  fs::path aside = fs::path(work_dir) / "checkpoints.earlier";
  fs::remove_all(aside);
  fs::rename(root, aside);
  return aside.string();
}

Checkpoint load_checkpoint(const std::string& dir) {
  Checkpoint c;
  c.dir = dir;
  c.model = load_safetensors((fs::path(dir) / "model.safetensors").string()).tensors;
  c.optim = load_safetensors((fs::path(dir) / "optim.safetensors").string()).tensors;
  if (fs::is_regular_file(fs::path(dir) / "ema.safetensors"))
    c.ema = load_safetensors((fs::path(dir) / "ema.safetensors").string()).tensors;
  std::ifstream in(fs::path(dir) / "trainer.json");
  if (!in) throw UserError(fmt::format("{}/trainer.json: missing (an incomplete checkpoint?)", dir));
  try {
    in >> c.trainer;
  } catch (const std::exception& e) {
    throw UserError(fmt::format("{}/trainer.json: not valid JSON ({})", dir, e.what()));
  }
  return c;
}

std::string resolve_model_file(const std::string& path, const std::string& where) {
  fs::path p(path);
  auto in_folder = [](const fs::path& dir) {
    return (dir / (fs::is_regular_file(dir / "ema.safetensors") ? "ema.safetensors" : "model.safetensors")).string();
  };
  if (fs::is_regular_file(p)) return p.string();
  if (fs::is_regular_file(p / "model.safetensors")) return in_folder(p);
  if (auto last = last_checkpoint(path)) return in_folder(*last);
  throw UserError(fmt::format("{}: '{}' is neither a weights file, a checkpoint folder nor a work_dir with "
                              "checkpoints/last (run the experiment that writes it first)",
                              where, path));
}

MetricsLog::MetricsLog(const std::string& run_dir, const std::string& resume_source, int64_t resume_step)
    : path_((fs::path(run_dir) / "metrics.jsonl").string()) {
  std::string kept;
  if (!resume_source.empty()) {
    std::ifstream in(resume_source);
    std::string line;
    while (std::getline(in, line)) {
      try {
        auto j = nlohmann::json::parse(line);
        if (j.value("step", int64_t{0}) <= resume_step) kept += line + "\n";
      } catch (const std::exception&) {
      }
    }
  }
  write_text_atomic(path_, kept);
}

void MetricsLog::write(const nlohmann::json& record) {
  std::ofstream out(path_, std::ios::app);
  out << record.dump() << "\n";
}

}  // namespace bevt::host::train
