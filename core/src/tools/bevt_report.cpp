// bevt-report: reads finished runs (results.json, metrics.jsonl) and writes the tables (markdown and CSV: one
// row per pre-training strategy, one column per dataset, the paper's numbers beside when a reference table is
// given) and the plots (PNG: pre-training loss and masked-token accuracy per stream against step, fine-tune
// accuracy against epoch, the temporal probes as grouped bars). docs/ablations.md describes the output.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>

#include "../host/command_line.h"
#include "bevt/atomic_file.h"
#include "bevt/error.h"
#include "bevt_report.h"

namespace fs = std::filesystem;
using namespace bevt;
using namespace bevt::report;

namespace {

std::optional<double> num(const nlohmann::json& j, const char* k) {
  if (!j.is_object() || !j.contains(k) || !j[k].is_number()) return std::nullopt;
  return j[k].get<double>();
}

// A file name from a label: letters, digits, '-', '_' kept; everything else '_'.
std::string slug(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_';
  return out.empty() ? "_" : out;
}

size_t distinct_columns(const std::vector<const Run*>& runs) {
  std::vector<std::string> cols;
  for (const auto* r : runs)
    if (std::find(cols.begin(), cols.end(), r->column) == cols.end()) cols.push_back(r->column);
  return cols.size();
}

std::vector<const Run*> runs_where(const Inputs& in, const std::function<bool(const Run&)>& keep) {
  std::vector<const Run*> out;
  for (const auto& r : in.runs)
    if (keep(r)) out.push_back(&r);
  return out;
}

struct Output {
  std::vector<std::pair<std::string, std::vector<unsigned char>>> files;  // name → bytes
  void add(const std::string& name, const std::string& text) { files.push_back({name, {text.begin(), text.end()}}); }
  void add(const std::string& name, std::vector<unsigned char> bytes) { files.push_back({name, std::move(bytes)}); }
};

// Pre-training curves: one colour per run, image stream dashed, video stream solid.
std::optional<LineChart> pretrain_chart(const std::vector<const Run*>& runs, const std::string& prefix, double scale,
                                        const std::string& title, const std::string& ylabel) {
  LineChart c;
  c.title = title;
  c.xlabel = "step";
  c.ylabel = ylabel;
  c.y_from_zero = scale != 1.0;
  for (size_t i = 0; i < runs.size(); ++i)
    for (const char* stream : {"image", "video"}) {
      Series s;
      s.label = runs[i]->row + " - " + stream;
      s.color = static_cast<int>(i);
      s.dashed = std::string(stream) == "image";
      for (const auto& m : runs[i]->metrics) {
        auto x = num(m, "step"), y = num(m, (prefix + stream).c_str());
        if (x && y) s.points.push_back({*x, *y * scale});
      }
      if (!s.points.empty()) c.series.push_back(std::move(s));
    }
  if (c.series.empty()) return std::nullopt;
  return c;
}

std::optional<LineChart> finetune_chart(const std::vector<const Run*>& runs, bool accuracy) {
  LineChart c;
  c.title = accuracy ? "Fine-tuning: validation top-1 per epoch" : "Fine-tuning: training loss";
  c.xlabel = accuracy ? "epoch" : "step";
  c.ylabel = accuracy ? "top-1 (%)" : "loss";
  c.y_from_zero = accuracy;
  const bool with_column = distinct_columns(runs) > 1;
  for (size_t i = 0; i < runs.size(); ++i) {
    Series s;
    s.label = runs[i]->row + (with_column ? " - " + runs[i]->column : "");
    s.color = static_cast<int>(i);
    for (const auto& m : runs[i]->metrics) {
      auto x = num(m, accuracy ? "epoch" : "step"), y = num(m, accuracy ? "val_top1" : "loss");
      if (x && y) s.points.push_back({*x, accuracy ? *y * 100 : *y});
    }
    if (!s.points.empty()) c.series.push_back(std::move(s));
  }
  if (c.series.empty()) return std::nullopt;
  return c;
}

// The probes of one dataset as grouped bars: a group per (strategy, class family), bars full / single frame /
// shuffled, and chance as a dashed line.
BarChart probe_chart(const std::vector<const Run*>& runs, const std::string& column) {
  BarChart c;
  c.title = "Temporal dependency probes" + (column == "-" ? std::string() : ": " + column);
  c.ylabel = "top-1 (%)";
  c.bar_names = {"full clip", "single frame", "shuffled frames"};
  size_t classes = 0;
  for (const auto* r : runs) {
    if (r->column != column) continue;
    const nlohmann::json full = r->results.value("full", nlohmann::json::object());
    if (full.contains("confusion") && full["confusion"].is_array()) classes = std::max(classes, full["confusion"].size());
    std::vector<std::string> fams;
    if (full.contains("per_family") && full["per_family"].is_object())
      for (const auto& [k, v] : full["per_family"].items()) fams.push_back(k);
    if (fams.empty()) fams.push_back("");
    c.super_groups.push_back({r->row, fams.size()});  // the strategy under its class families
    for (const auto& f : fams) {
      c.group_names.push_back(f.empty() ? "all classes" : f);
      std::vector<double> vals;
      for (const char* v : {"full", "single_frame", "shuffled"}) {
        const auto& part = r->results.contains(v) ? r->results[v] : nlohmann::json();
        std::optional<double> x = f.empty() ? num(part, "top1")
                                            : (part.contains("per_family") ? num(part["per_family"], f.c_str())
                                                                           : std::nullopt);
        vals.push_back(x ? *x * 100 : NAN);
      }
      c.values.push_back(vals);
    }
  }
  if (classes > 0) {
    c.reference_line = 100.0 / static_cast<double>(classes);
    c.reference_label = fmt::format("chance (1/{})", classes);
  }
  return c;
}

void section(std::string& md, const Table& t, Output& out, const std::string& csv_name) {
  if (t.rows.empty()) return;
  md += "## " + t.title + "\n\n" + t.markdown() + "\n";
  if (!t.note.empty()) md += t.note + "\n\n";
  md += fmt::format("CSV: [{0}]({0})\n\n", csv_name);
  out.add(csv_name, t.csv());
}

void image(std::string& md, Output& out, const std::string& name, std::vector<unsigned char> png,
           const std::string& alt) {
  out.add(name, std::move(png));
  md += fmt::format("![{}]({})\n\n", alt, name);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bevt-report: tables (markdown, CSV) and plots (PNG) from finished bevt runs"};
  std::vector<std::string> dirs;
  std::string out_dir = "report", reference, title;
  app.add_option("run_dirs", dirs, "work_dirs of finished runs or plans (a plan's stands for all its runs)");
  app.add_option("--out", out_dir, "output folder (default: report)");
  app.add_option("--reference", reference,
                 "the paper's numbers, CSV: header 'strategy,<dataset>,...', rows '<strategy>,<top-1 %>,...' "
                 "(default: the plan's reference)");
  app.add_option("--title", title, "heading of report.md (default: the plan's title)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "bevt-report: error: " << e.what() << " (see bevt-report --help)" << std::endl;
    return 2;
  }
  std::string command = "bevt-report";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];

  return host::run_guarded("bevt-report", [&]() -> int {
    // Read and check every input first; nothing is written unless all of it is good.
    Inputs in = load_runs(dirs);
    std::optional<Reference> ref;
    std::string ref_path = reference.empty() ? in.reference : reference;
    if (!ref_path.empty()) ref = load_reference(ref_path);
    if (title.empty()) title = in.title.empty() ? "bevt report" : in.title;

    Output out;
    std::string md = "# " + title + "\n\nMade by `" + command + "` from " + std::to_string(in.runs.size()) +
                     " runs.\n\n";
    Table ft = finetune_table(in.runs, ref ? &*ref : nullptr);
    section(md, ft, out, "finetune.csv");
    auto finetunes = runs_where(in, [](const Run& r) { return r.is_finetune(); });
    if (auto c = finetune_chart(finetunes, true)) image(md, out, "finetune_acc.png", render_png(*c), "fine-tune accuracy");
    if (auto c = finetune_chart(finetunes, false)) image(md, out, "finetune_loss.png", render_png(*c), "fine-tune loss");

    Table sig = significance_table(in.runs);
    if (!sig.rows.empty()) section(md, sig, out, "significance.csv");

    Table pt = probe_table(in.runs);
    section(md, pt, out, "probe.csv");
    auto probes = runs_where(in, [](const Run& r) { return r.mode == "probe"; });
    std::vector<std::string> probe_cols;
    for (const auto* r : probes)
      if (std::find(probe_cols.begin(), probe_cols.end(), r->column) == probe_cols.end()) probe_cols.push_back(r->column);
    for (const auto& col : probe_cols)
      image(md, out, "probe_" + slug(col) + ".png", render_png(probe_chart(probes, col)), "probes: " + col);

    Table pre = pretrain_table(in.runs);
    section(md, pre, out, "pretrain.csv");
    auto pretrains = runs_where(in, [](const Run& r) { return r.mode == "pretrain"; });
    if (auto c = pretrain_chart(pretrains, "loss_", 1.0, "Pre-training loss (dashed: image stream, solid: video)",
                                "masked-token cross-entropy"))
      image(md, out, "pretrain_loss.png", render_png(*c), "pre-training loss");
    if (auto c = pretrain_chart(pretrains, "acc_", 100.0,
                                "Masked-token accuracy (dashed: image stream, solid: video)", "accuracy (%)"))
      image(md, out, "pretrain_acc.png", render_png(*c), "masked-token accuracy");

    Table tp = token_probe_table(in.runs);
    if (!tp.rows.empty()) section(md, tp, out, "token_probe.csv");

    Table runs;
    runs.title = "Runs";
    runs.header = {"work_dir", "mode", "row", "column", "top-1"};
    for (const auto& r : in.runs) {
      auto t = num(r.results, "top1");
      runs.rows.push_back({r.dir, r.mode, r.row, r.column, t ? fmt::format("{:.1f}", *t * 100) : ""});
    }
    section(md, runs, out, "runs.csv");
    out.add("report.md", md);

    try {
      fs::create_directories(out_dir);
    } catch (const fs::filesystem_error& e) {
      throw UserError(fmt::format("--out {}: cannot create the folder ({})", out_dir, e.code().message()));
    }
    for (const auto& [name, bytes] : out.files) {
      AtomicFile f((fs::path(out_dir) / name).string());
      f.write(bytes.data(), bytes.size());
      f.commit();
    }
    for (const Table* t : {&ft, &sig, &pt, &pre, &tp})
      if (!t->rows.empty()) std::cout << t->title << "\n\n" << t->markdown() << "\n";
    std::cout << "wrote " << out.files.size() << " files to " << out_dir << "/ (report.md, CSV tables, PNG plots)\n";
    return 0;
  });
}
