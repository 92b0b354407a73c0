// bevt-report: the tables, laid out as the paper lays them out (rows = pre-training strategies, columns =
// datasets), each rendered as markdown and as CSV.
#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "bevt/csv.h"
#include "bevt_report.h"
#include "bevt_report_stats.h"

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

namespace {

// The top-1 values of each (row, column): test or probe runs where the cell has any (what the paper reports,
// multi-view testing), else the fine-tune runs' last validation. Several runs in one cell (seeds) are kept.
struct Cells {
  std::vector<std::string> rows, cols;
  std::map<std::pair<std::string, std::string>, std::vector<double>> tested, validated;
  std::vector<double> values(const std::string& r, const std::string& c) const {
    auto t = tested.find({r, c});
    if (t != tested.end()) return t->second;
    auto v = validated.find({r, c});
    return v == validated.end() ? std::vector<double>{} : v->second;
  }
};

Cells finetune_cells(const std::vector<Run>& runs) {
  Cells c;
  for (const auto& r : runs) {
    bool tested = r.mode == "test" || r.mode == "probe";
    auto top1 = number_at(r.results, {"top1"});
    if ((!tested && !r.is_finetune()) || !top1) continue;
    add_unique(c.rows, r.row);
    add_unique(c.cols, r.column);
    (tested ? c.tested : c.validated)[{r.row, r.column}].push_back(*top1);
  }
  return c;
}

}  // namespace

Table finetune_table(const std::vector<Run>& runs, const Reference* ref) {
  Cells cells = finetune_cells(runs);
  std::vector<std::string> rows = cells.rows, cols = cells.cols;
  Table t;
  t.title = "Fine-tuning: top-1 accuracy (%)";
  t.note = "Cells: top-1 of the test (or probe) run of that model, else the fine-tune run's last validation; "
           "where a row has several runs (seeds), their mean ± sample std.";
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
  bool any_n = false;
  for (const auto& r : cells.rows)
    for (const auto& c : cols) any_n = any_n || cells.values(r, c).size() > 1;
  for (const auto& [c, paper] : header_cols) t.header.push_back(paper ? c + " (paper)" : c);
  if (any_n) t.header.push_back("runs");
  for (const auto& r : rows) {
    std::vector<std::string> line{r};
    size_t n = 0;
    for (const auto& [c, paper] : header_cols) {
      if (paper) {
        auto it = ref->value.find({r, c});
        line.push_back(it == ref->value.end() ? "" : fmt::format("{:.1f}", it->second));
      } else {
        Stat s = summarize(cells.values(r, c));
        n = std::max(n, s.n);
        line.push_back(format_stat(s));
      }
    }
    if (any_n) line.push_back(n ? std::to_string(n) : "");
    t.rows.push_back(line);
  }
  return t;
}

namespace {

// Probe values of one (row, column, class family): per variant (full, single frame, shuffled), the values of
// every probe run in that cell.
struct ProbeCell {
  std::string row, column, family;
  std::vector<double> v[3];
};
const char* const kVariants[3] = {"full", "single_frame", "shuffled"};

std::vector<ProbeCell> probe_cells(const std::vector<Run>& runs) {
  std::vector<ProbeCell> cells;
  for (const auto& r : runs) {
    if (r.mode != "probe" || !r.results.contains("full")) continue;
    std::vector<std::string> fams{"all"};
    if (r.results["full"].contains("per_family") && r.results["full"]["per_family"].is_object())
      for (const auto& [k, v] : r.results["full"]["per_family"].items()) fams.push_back(k);
    for (const auto& f : fams) {
      auto it = std::find_if(cells.begin(), cells.end(), [&](const ProbeCell& c) {
        return c.row == r.row && c.column == r.column && c.family == f;
      });
      if (it == cells.end()) it = cells.insert(cells.end(), ProbeCell{r.row, r.column, f, {}});
      for (int i = 0; i < 3; ++i) {
        auto v = f == "all" ? number_at(r.results, {kVariants[i], "top1"})
                            : number_at(r.results, {kVariants[i], "per_family", f});
        if (v) it->v[i].push_back(*v);
      }
    }
  }
  return cells;
}

}  // namespace

Table probe_table(const std::vector<Run>& runs) {
  Table t;
  t.title = "Temporal dependency: top-1 (%) with full clips, one frame repeated, and frames shuffled";
  t.note = "single frame: the middle frame repeated over the clip; shuffled: frames in a random order (seeded). "
           "Several probe runs of one row (seeds): mean ± sample std.";
  t.header = {"pre-training", "dataset", "classes", "full", "single frame", "shuffled"};
  for (const auto& c : probe_cells(runs)) {
    std::vector<std::string> line{c.row, c.column, c.family};
    for (const auto& v : c.v) line.push_back(format_stat(summarize(v)));
    t.rows.push_back(line);
  }
  return t;
}

Table significance_table(const std::vector<Run>& runs) {
  // Each pair of rows of a column: the fine-tune cells (classes "all") and, from the probes' full clips, each
  // class family. Only cells with two runs or more (seeds) can be judged.
  struct Entry {
    std::string row, column, family;
    Stat s;
  };
  std::vector<Entry> entries;
  Cells cells = finetune_cells(runs);
  for (const auto& c : cells.cols)
    for (const auto& r : cells.rows) {
      Stat s = summarize(cells.values(r, c));
      if (s.n >= 2) entries.push_back({r, c, "all", s});
    }
  for (const auto& p : probe_cells(runs))
    if (p.family != "all" && p.v[0].size() >= 2) entries.push_back({p.row, p.column, p.family, summarize(p.v[0])});
  Table t;
  t.title = "Differences between rows (rows with several runs: seeds)";
  t.note = "A difference is significant when it is at least 2 × the larger of the two rows' sample stds.";
  t.header = {"dataset", "classes", "row A", "row B", "A (%)", "B (%)", "A - B", "2 std", "verdict"};
  for (size_t i = 0; i < entries.size(); ++i)
    for (size_t j = i + 1; j < entries.size(); ++j) {
      const Entry &a = entries[i], &b = entries[j];
      if (a.column != b.column || a.family != b.family) continue;
      t.rows.push_back({a.column, a.family, a.row, b.row, format_stat(a.s), format_stat(b.s),
                        fmt::format("{:+.1f}", 100.0 * (a.s.mean - b.s.mean)),
                        fmt::format("{:.1f}", 200.0 * std::max(a.s.std, b.s.std)), verdict_text(compare(a.s, b.s))});
    }
  return t;
}

Table pretrain_table(const std::vector<Run>& runs) {
  Table t;
  t.title = "Pre-training: last logged loss, masked-token accuracy and its copy baseline (%) per stream";
  t.header = {"pre-training", "streams", "steps",       "loss image", "acc image",
              "copy image",   "loss video", "acc video", "copy video"};
  bool supervised = false, regression = false;
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
      std::optional<double> loss, acc, copy, zero;
      for (auto it = r.metrics.rbegin(); it != r.metrics.rend() && !loss; ++it) {
        loss = number_at(*it, {loss_key});
        acc = number_at(*it, {acc_key});
        copy = number_at(*it, {copy_key});
        zero = number_at(*it, {std::string("zero_") + s});
      }
      // Regression targets (pixels): no accuracy; the share of the targets' variance explained stands in.
      if (loss && zero && !acc && *zero > 0) {
        acc = 1.0 - *loss / *zero;
        regression = true;
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
  if (regression)
    t.note += std::string(t.note.empty() ? "" : " ") +
              "Regression targets (pixels): the loss is the masked mean squared error and 'acc' the share of the "
              "targets' variance explained, 1 - loss / (loss of predicting zeros); no copy baseline.";
  return t;
}

Table token_probe_table(const std::vector<Run>& runs) {
  Table t;
  t.title = "Target content: a linear probe on the tokenizer's targets, test top-1 (%)";
  t.note = "bag: token frequencies over cells and frames (position- and order-free); grid: every cell of every "
           "frame; colour: each cell's mean colour per frame (no tokenizer: what colour and position alone "
           "give). Closed-form ridge on the training clips, the ridge chosen by leave-one-out.";
  std::vector<std::string> fams;
  for (const auto& r : runs) {
    if (r.mode != "token_probe" || !r.results.contains("features")) continue;
    for (const auto& [name, f] : r.results["features"].items())
      if (f.contains("per_family") && f["per_family"].is_object())
        for (const auto& [k, v] : f["per_family"].items())
          if (std::find(fams.begin(), fams.end(), k) == fams.end()) fams.push_back(k);
  }
  t.header = {"targets", "features", "dims", "all"};
  for (const auto& f : fams) t.header.push_back(f);
  t.header.push_back("chance");
  for (const auto& r : runs) {
    if (r.mode != "token_probe" || !r.results.contains("features")) continue;
    const auto chance = number_at(r.results, {"chance"});
    for (const char* name : {"bag", "grid", "colour"}) {
      if (!r.results["features"].contains(name)) continue;
      const auto& f = r.results["features"][name];
      const auto all = number_at(f, {"top1"});
      const auto dims = number_at(f, {"dims"});
      std::vector<std::string> line{r.row.empty() ? r.dir : r.row, name, dims ? fmt::format("{:.0f}", *dims) : "",
                                    all ? fmt::format("{:.1f}", *all * 100) : ""};
      for (const auto& fam : fams) {
        const auto v = number_at(f, {"per_family", fam});
        line.push_back(v ? fmt::format("{:.1f}", *v * 100) : "");
      }
      line.push_back(chance ? fmt::format("{:.1f}", *chance * 100) : "");
      t.rows.push_back(line);
    }
  }
  return t;
}

}  // namespace bevt::report
