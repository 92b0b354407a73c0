// bevt-report: the tables, laid out as the paper lays them out (rows = pre-training strategies, columns =
// datasets), each rendered as markdown and as CSV.
#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "bevt/csv.h"
#include "bevt_report.h"

namespace bevt::report {

namespace {

std::string pct(double v) { return fmt::format("{:.1f}", 100.0 * v); }

void add_unique(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

std::string md_cell(const std::string& s) {
  if (s.empty()) return "-";
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

std::optional<double> number_at(const nlohmann::json& j, const std::vector<std::string>& path) {
  const nlohmann::json* p = &j;
  for (const auto& k : path) {
    if (!p->is_object() || !p->contains(k)) return std::nullopt;
    p = &(*p)[k];
  }
  if (!p->is_number()) return std::nullopt;
  return p->get<double>();
}

}  // namespace

std::string Table::markdown() const {
  std::string out;
  out += "|";
  for (const auto& h : header) out += " " + md_cell(h) + " |";
  out += "\n|";
  for (size_t i = 0; i < header.size(); ++i) out += i == 0 ? "---|" : "---:|";
  out += "\n";
  for (const auto& r : rows) {
    out += "|";
    for (const auto& c : r) out += " " + md_cell(c) + " |";
    out += "\n";
  }
  return out;
}

std::string Table::csv() const {
  std::string out;
  for (size_t i = 0; i < header.size(); ++i) out += (i ? "," : "") + csv_field(header[i]);
  out += "\n";
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) out += (i ? "," : "") + csv_field(r[i]);
    out += "\n";
  }
  return out;
}

Table finetune_table(const std::vector<Run>& runs, const Reference* ref) {
  // A test or probe run of a (row, column) is what the paper reports (multi-view testing); the fine-tune run's
  // final validation stands in where there is none.
  std::vector<std::string> rows, cols;
  std::map<std::pair<std::string, std::string>, std::pair<int, double>> cell;  // → (priority, top-1)
  for (const auto& r : runs) {
    int prio = r.is_finetune() ? 1 : (r.mode == "test" || r.mode == "probe") ? 2 : 0;
    auto top1 = number_at(r.results, {"top1"});
    if (!prio || !top1) continue;
    add_unique(rows, r.row);
    add_unique(cols, r.column);
    auto& c = cell[{r.row, r.column}];
    if (prio > c.first) c = {prio, *top1};
  }
  Table t;
  t.title = "Fine-tuning: top-1 accuracy (%)";
  t.note = "Cells: top-1 of the test (or probe) run of that model, else the fine-tune run's last validation.";
  std::vector<std::pair<std::string, bool>> header_cols;  // (column, is paper)
  for (const auto& c : cols) {
    header_cols.push_back({c, false});
    if (ref && std::find(ref->columns.begin(), ref->columns.end(), c) != ref->columns.end())
      header_cols.push_back({c, true});
  }
  if (ref) {
    for (const auto& c : ref->columns)
      if (std::find(cols.begin(), cols.end(), c) == cols.end()) header_cols.push_back({c, true});
    for (const auto& r : ref->rows) add_unique(rows, r);
    t.note += " \"(paper)\": the published numbers from the reference table.";
  }
  t.header.push_back("pre-training");
  for (const auto& [c, paper] : header_cols) t.header.push_back(paper ? c + " (paper)" : c);
  for (const auto& r : rows) {
    std::vector<std::string> line{r};
    for (const auto& [c, paper] : header_cols) {
      if (paper) {
        auto it = ref->value.find({r, c});
        line.push_back(it == ref->value.end() ? "" : fmt::format("{:.1f}", it->second));
      } else {
        auto it = cell.find({r, c});
        line.push_back(it == cell.end() ? "" : pct(it->second.second));
      }
    }
    t.rows.push_back(line);
  }
  return t;
}

Table probe_table(const std::vector<Run>& runs) {
  Table t;
  t.title = "Temporal dependency: top-1 (%) with full clips, one frame repeated, and frames shuffled";
  t.note = "single frame: the middle frame repeated over the clip; shuffled: frames in a random order (seeded).";
  t.header = {"pre-training", "dataset", "classes", "full", "single frame", "shuffled"};
  for (const auto& r : runs) {
    if (r.mode != "probe" || !r.results.contains("full")) continue;
    std::vector<std::string> fams{"all"};
    if (r.results["full"].contains("per_family") && r.results["full"]["per_family"].is_object())
      for (const auto& [k, v] : r.results["full"]["per_family"].items()) fams.push_back(k);
    for (const auto& f : fams) {
      std::vector<std::string> line{r.row, r.column, f};
      for (const char* variant : {"full", "single_frame", "shuffled"}) {
        auto v = f == "all" ? number_at(r.results, {variant, "top1"}) : number_at(r.results, {variant, "per_family", f});
        line.push_back(v ? pct(*v) : "");
      }
      t.rows.push_back(line);
    }
  }
  return t;
}

Table pretrain_table(const std::vector<Run>& runs) {
  Table t;
  t.title = "Pre-training: last logged loss, masked-token accuracy and its copy baseline (%) per stream";
  t.header = {"pre-training", "streams", "steps",       "loss image", "acc image",
              "copy image",   "loss video", "acc video", "copy video"};
  bool supervised = false;
  for (const auto& r : runs) {
    if (!r.is_pretraining()) continue;
    std::string streams;
    if (r.results.contains("streams") && r.results["streams"].is_array())
      for (const auto& s : r.results["streams"]) streams += (streams.empty() ? "" : "+") + s.get<std::string>();
    if (r.supervised_pretraining) streams = "supervised";
    supervised = supervised || r.supervised_pretraining;
    auto steps = number_at(r.results, {"steps"});
    std::vector<std::string> line{r.row, streams, steps ? fmt::format("{:.0f}", *steps) : ""};
    for (const char* s : {"image", "video"}) {
      // A supervised run's classification loss and training accuracy stand in its image columns.
      std::string loss_key = std::string("loss_") + s, acc_key = std::string("acc_") + s,
                  copy_key = std::string("copy_") + s;
      if (r.supervised_pretraining) {
        loss_key = std::string(s) == "image" ? "loss" : "-";
        acc_key = std::string(s) == "image" ? "acc_train" : "-";
        copy_key = "-";
      }
      std::optional<double> loss, acc, copy;
      for (auto it = r.metrics.rbegin(); it != r.metrics.rend() && !loss; ++it) {
        loss = number_at(*it, {loss_key});
        acc = number_at(*it, {acc_key});
        copy = number_at(*it, {copy_key});
      }
      line.push_back(loss ? fmt::format("{:.3f}", *loss) : "");
      line.push_back(acc ? pct(*acc) : "");
      line.push_back(copy ? pct(*copy) : "");
    }
    t.rows.push_back(line);
  }
  if (supervised)
    t.note = "supervised: image classification (Image Sup); its image columns are the classification loss and "
             "training accuracy.";
  return t;
}

}  // namespace bevt::report
