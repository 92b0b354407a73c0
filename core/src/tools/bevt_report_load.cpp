// bevt-report: reading finished runs and the reference table. Every problem is a UserError naming the file
// (and line) and what to do; nothing is written before all inputs have been read.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "bevt/csv.h"
#include "bevt/error.h"
#include "bevt/strings.h"
#include "bevt_report.h"
#include "../host/train/run_folder.h"

namespace fs = std::filesystem;

namespace bevt::report {

namespace {

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw UserError(fmt::format("{}: cannot read the file", p.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t line_of(const std::string& text, size_t byte) {
  size_t end = std::min(byte > 0 ? byte - 1 : 0, text.size());
  return 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(end), '\n'));
}

nlohmann::json parse_json_file(const fs::path& p) {
  std::string text = read_text(p);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw UserError(fmt::format("{}:{}: invalid JSON ({}); the run wrote it incompletely or it was edited: rerun it",
                                p.string(), line_of(text, e.byte), e.what()));
  }
}

std::vector<nlohmann::json> parse_jsonl(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw UserError(fmt::format("{}: cannot read the file", p.string()));
  std::vector<nlohmann::json> out;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      nlohmann::json j = nlohmann::json::parse(line);
      if (!j.is_object()) throw UserError(fmt::format("{}:{}: expected one JSON object per line", p.string(), n));
      out.push_back(std::move(j));
    } catch (const nlohmann::json::parse_error& e) {
      throw UserError(fmt::format("{}:{}: invalid JSON ({}); fix or delete that line", p.string(), n, e.what()));
    }
  }
  return out;
}

// The dataset plugin a run used, from its resolved config.toml: the default column of its result.
std::string dataset_of(const fs::path& config, const std::string& mode) {
  if (!fs::exists(config)) return "";
  toml::table t;
  try {
    t = toml::parse_file(config.string());
  } catch (const toml::parse_error& e) {
    throw UserError(fmt::format("{}:{}: invalid TOML: {}", config.string(), e.source().begin.line, e.description()));
  }
  std::vector<std::string> slots = {"train", "val", "test"};
  if (mode == "test" || mode == "probe") slots = {"test", "val"};
  if (mode == "pretrain") slots = {"video", "image"};
  for (const auto& s : slots)
    if (auto name = t["data"][s]["plugin"].value<std::string>()) return *name;
  return "";
}

struct Loader {
  Inputs in;
  std::set<std::string> seen;

  void load(const std::string& dir, const std::string& row, const std::string& column, int depth,
            bool labelled = false) {
    if (depth > 8) throw UserError(fmt::format("{}: plans nest more than 8 deep", dir));
    if (!fs::is_directory(dir))
      throw UserError(fmt::format("{}: no such run folder (give the work_dir of a finished run or plan)", dir));
    std::string key = fs::weakly_canonical(dir).string();
    if (!seen.insert(key).second) return;  // the same run twice (e.g. a plan and one of its runs)
    fs::path res_file = fs::path(dir) / "results.json";
    if (!fs::exists(res_file))
      throw UserError(fmt::format("{}: not found; {} is not a finished run (a run writes results.json when it ends: "
                                  "finish it, or leave it out)",
                                  res_file.string(), dir));
    nlohmann::json res = parse_json_file(res_file);
    if (!res.is_object()) throw UserError(fmt::format("{}: expected a JSON object", res_file.string()));
    if (res.contains("stages")) {  // a plan (or a suite or pipeline before plans): its stages
      if (!res["stages"].is_array()) throw UserError(fmt::format("{}: 'stages' is not a list", res_file.string()));
      if (in.title.empty() && res.value("title", "") != "") in.title = res["title"].get<std::string>();
      if (in.reference.empty() && res.contains("reference") && res["reference"].is_string())
        in.reference = res["reference"].get<std::string>();
      // A plan that labels its stages with columns (an ablation suite; results.json "mode" "suite" before
      // plans) lists a fine-tune without a column as a pre-training run: supervised image pre-training.
      bool columns = res.value("mode", "") == "suite";
      for (const auto& s : res["stages"]) columns = columns || (s.is_object() && s.contains("column"));
      for (const auto& s : res["stages"]) {
        if (!s.is_object() || !s.contains("work_dir") || !s["work_dir"].is_string())
          throw UserError(fmt::format("{}: a stage without a work_dir", res_file.string()));
        std::string wd = s["work_dir"].get<std::string>();
        if (!fs::is_directory(wd))
          throw UserError(fmt::format("{}: stage work_dir '{}' not found (run bevt-report from the folder the plan ran "
                                      "in)",
                                      res_file.string(), wd));
        load(wd, s.value("row", ""), s.value("column", ""), depth + 1, columns);
      }
      return;
    }
    Run r;
    r.dir = dir;
    r.results = res;
    r.mode = res.value("mode", "");
    r.row = row.empty() ? fs::path(dir).lexically_normal().filename().string() : row;
    if (r.row.empty()) r.row = fs::path(dir).lexically_normal().parent_path().filename().string();
    r.supervised_pretraining = labelled && column.empty() && r.mode == "finetune";
    r.column = column.empty() ? dataset_of(fs::path(dir) / "config.toml", r.mode) : column;
    if (r.column.empty()) r.column = "-";
    const fs::path metrics = host::train::latest_record(dir, "metrics.jsonl");  // the newest run's curve
    if (fs::exists(metrics)) {
      r.metrics = parse_jsonl(metrics);
    } else if (r.mode == "pretrain" || r.mode == "finetune" || r.mode == "tokenizer") {
      throw UserError(fmt::format("{}: not found (a finished {} run logs its metrics there; rerun it)",
                                  metrics.string(), r.mode));
    }
    in.runs.push_back(std::move(r));
  }
};

std::vector<std::string> split_csv(const std::string& line) {
  auto cells = parse_csv_row(line);
  for (auto& c : cells) c = trim(c);
  return cells;
}

}  // namespace

Inputs load_runs(const std::vector<std::string>& dirs) {
  if (dirs.empty()) throw UserError("no run folders given (usage: bevt-report RUN_DIR... [--out DIR])");
  Loader l;
  for (const auto& d : dirs) l.load(d, "", "", 0);
  if (l.in.runs.empty()) throw UserError(fmt::format("{}: no finished runs in these folders", join(dirs)));
  return l.in;
}

Reference load_reference(const std::string& path) {
  if (!fs::is_regular_file(path)) throw UserError(fmt::format("{}: reference file not found", path));
  std::ifstream in(path, std::ios::binary);
  Reference ref;
  std::string line;
  size_t n = 0;
  bool header = false;
  while (std::getline(in, line)) {
    ++n;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    auto cells = split_csv(line);
    if (!header) {
      if (cells.size() < 2)
        throw UserError(fmt::format("{}:{}: the header must be 'strategy,<dataset>,...' (at least one dataset)", path, n));
      ref.columns.assign(cells.begin() + 1, cells.end());
      header = true;
      continue;
    }
    if (cells.size() != ref.columns.size() + 1)
      throw UserError(fmt::format("{}:{}: {} cells, the header has {}", path, n, cells.size(), ref.columns.size() + 1));
    if (cells[0].empty()) throw UserError(fmt::format("{}:{}: the first cell must name the strategy (row)", path, n));
    ref.rows.push_back(cells[0]);
    for (size_t i = 1; i < cells.size(); ++i) {
      if (cells[i].empty()) continue;
      try {
        size_t used = 0;
        double v = std::stod(cells[i], &used);
        if (used != cells[i].size()) throw std::invalid_argument("trailing text");
        ref.value[{cells[0], ref.columns[i - 1]}] = v;
      } catch (const std::exception&) {
        throw UserError(fmt::format("{}:{}: '{}' in column '{}' is not a number (top-1 in percent, or empty)", path, n,
                                    cells[i], ref.columns[i - 1]));
      }
    }
  }
  if (!header) throw UserError(fmt::format("{}: empty reference table (expected a 'strategy,<dataset>,...' header)", path));
  return ref;
}

}  // namespace bevt::report
