// bevt-report: tables (markdown, CSV) and plots (PNG) from finished runs (docs/ablations.md).
// The parts: loading runs (bevt_report_load.cpp), tables (bevt_report_tables.cpp), charts drawn with OpenCV
// (bevt_report_plot.cpp); bevt_report.cpp wires them to the command line.
#pragma once

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace bevt::report {

// One finished run: its work_dir's results.json, metrics.jsonl and where it goes in the tables.
struct Run {
  std::string dir;
  std::string mode;          // results.json "mode": pretrain | finetune | test | probe | tokenizer | token_probe
  std::string row, column;   // table row (pre-training strategy) and column (dataset)
  // A fine-tune run that a plan with columns lists without one is a pre-training run: supervised image
  // pre-training (Image Sup) trains in finetune mode but is a row's starting point, not a dataset's cell.
  bool supervised_pretraining = false;
  bool is_pretraining() const { return mode == "pretrain" || supervised_pretraining; }
  bool is_finetune() const { return mode == "finetune" && !supervised_pretraining; }
  nlohmann::json results;
  std::vector<nlohmann::json> metrics;  // metrics.jsonl, one object per line (empty for test / probe)
};

struct Inputs {
  std::vector<Run> runs;
  std::string reference;  // reference CSV named by a plan's results.json ("" = none)
  std::string title;      // a plan's title ("" = none)
};

// Reads each RUN_DIR (a run's work_dir, or a plan's, which stands for its stages). Throws
// UserError naming the folder, file and line for a missing folder, a missing results.json or metrics.jsonl,
// and malformed JSON.
Inputs load_runs(const std::vector<std::string>& dirs);

// The paper's numbers: a CSV file whose header is `strategy,<column>,<column>,...` and whose rows are
// `<row>,<number or empty>,...` (top-1 in percent); '#' starts a comment line.
struct Reference {
  std::vector<std::string> rows, columns;
  std::map<std::pair<std::string, std::string>, double> value;  // (row, column) → percent
};
Reference load_reference(const std::string& path);  // throws UserError naming file:line

// A table as cells: header and rows of text (markdown and CSV are two renderings of it).
struct Table {
  std::string title, note;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string markdown() const;
  std::string csv() const;
};

// Fine-tuning top-1 (%): rows = strategies, columns = datasets (+ "<dataset> (paper)" with a reference).
Table finetune_table(const std::vector<Run>& runs, const Reference* ref);
// Temporal-dependency probes (%): strategy, dataset, class family; full, single frame, shuffled.
Table probe_table(const std::vector<Run>& runs);
// Pairwise differences between rows whose cells hold several runs (seeds): mean ± std of each, the difference,
// and "not significant (< 2 std)" where it is smaller than twice the larger std (bevt_report_stats.h).
Table significance_table(const std::vector<Run>& runs);
// Pre-training: the last logged loss and masked-token accuracy of each stream.
Table pretrain_table(const std::vector<Run>& runs);
// What targets carry (run.mode = "token_probe"): the linear probe's test top-1 (%) per feature set, overall and
// per class family, with the chance level.
Table token_probe_table(const std::vector<Run>& runs);

// Charts.
struct Series {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y)
  int color = 0;        // index into the palette
  bool dashed = false;
};
struct LineChart {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  bool y_from_zero = false;
};
struct BarChart {
  std::string title, ylabel;
  std::vector<std::string> bar_names;   // one colour each, in the legend
  std::vector<std::string> group_names;
  // Consecutive groups under one label on a second line (e.g. a strategy over its class families); empty =
  // none. The counts add up to the number of groups.
  std::vector<std::pair<std::string, size_t>> super_groups;
  std::vector<std::vector<double>> values;  // [group][bar]; NaN = missing
  double ymax = 100;
  double reference_line = NAN;  // dashed horizontal line (chance), NaN = none
  std::string reference_label;
};
// PNG bytes of the chart (OpenCV), `width` x `height` pixels; a bar chart of many groups grows wider than
// `width` so that its labels stay readable.
std::vector<unsigned char> render_png(const LineChart& c, int width = 960, int height = 540);
std::vector<unsigned char> render_png(const BarChart& c, int width = 960, int height = 540);

}  // namespace bevt::report
