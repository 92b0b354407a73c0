// run.mode = "test" (multi-view evaluation of a trained model) and "probe" (the paper's temporal-dependency
// probes: the same evaluation with one frame repeated over the clip, and with frames shuffled in time).
// Writes results.json (top-1/5, per-class and per-family accuracy) and confusion.csv.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>

#include "bevt/csv.h"
#include "bevt/error.h"
#include "bevt/log.h"
#include "checkpoint.h"
#include "evaluate.h"
#include "host/dist/dist.h"
#include "init_weights.h"
#include "runners.h"
#include "streams.h"

namespace fs = std::filesystem;

namespace bevt::host::train {

namespace {

std::string family_table(const std::map<std::string, EvalResult>& variants) {
  std::vector<std::string> fams;
  for (const auto& [k, v] : variants.begin()->second.per_family) fams.push_back(k);
  std::string t = "| evaluation | all";
  for (const auto& f : fams) t += " | " + f;
  t += " |\n|---|---";
  for (size_t i = 0; i < fams.size(); ++i) t += "|---";
  t += "|\n";
  for (const char* name : {"full", "single_frame", "shuffled"}) {
    auto it = variants.find(name);
    if (it == variants.end()) continue;
    t += fmt::format("| {} | {:.3f}", name, it->second.top1);
    for (const auto& f : fams) {
      auto fit = it->second.per_family.find(f);
      t += fit == it->second.per_family.end() ? " | -" : fmt::format(" | {:.3f}", fit->second);
    }
    t += " |\n";
  }
  return t;
}

// `bevt-test --dump`: one JSON object per video, in dataset order, written whole or not at all.
void write_predictions(const std::string& path, const std::vector<Prediction>& predictions,
                       const std::vector<std::string>& names) {
  std::string text;
  for (const auto& p : predictions) {
    nlohmann::json j{{"index", p.index},
                     {"id", p.id},
                     {"label", p.label},
                     {"label_name", names.at(static_cast<size_t>(p.label))},
                     {"pred", p.pred},
                     {"pred_name", names.at(static_cast<size_t>(p.pred))},
                     {"probs", p.probs}};
    text += j.dump() + "\n";
  }
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  write_text_atomic(path, text);
}

int run_evaluation(const RunContext& ctx, bool probes) {
  TrainModel model = assemble_model(ctx.composition, false);
  initialise_model(ctx, model, true);
  const torch::Device device(ctx.run.device);
  model.to(device);
  auto ds = ctx.composition.get<Dataset>("data.test");
  if (!ds) ds = ctx.composition.get<Dataset>("data.val");  // one of them is present: the modes table requires it
  auto s = make_stream(ctx, "test", ds, ctx.exp.loader.eval_batch_size, false, 3);
  std::map<std::string, EvalResult> variants;
  std::vector<Probe> list = {Probe::None};
  if (probes) list = {Probe::None, Probe::SingleFrame, Probe::Shuffled};
  std::vector<Prediction> predictions;
  for (Probe p : list) {
    const bool dump = p == Probe::None && !ctx.dump_path.empty();
    const EvalResult& r = variants[probe_name(p)] = evaluate(model, *s->loader, ds->class_names(), device, p,
                                                             ctx.run.seed, dump ? &predictions : nullptr,
                                                             fmt::format("test {}", probe_name(p)));
    log_info("{}: top1 {:.4f} top5 {:.4f} mean class accuracy {:.4f} ({} videos, {} view(s) each)", probe_name(p),
             r.top1, r.top5, r.mean_class, r.samples, r.views);
  }
  if (!ctx.dump_path.empty() && dist::is_main()) {
    write_predictions(ctx.dump_path, predictions, ds->class_names());
    log_info("wrote {} predictions to {}", predictions.size(), ctx.dump_path);
  }
  nlohmann::json results{{"mode", ctx.run.mode}};
  const EvalResult& full = variants.at("full");
  results["top1"] = full.top1;
  results["top5"] = full.top5;
  results["mean_class"] = full.mean_class;
  results["views"] = full.views;
  if (!ctx.dump_path.empty()) results["predictions"] = ctx.dump_path;
  for (const auto& [k, v] : variants) results[k] = v.to_json(ds->class_names());
  if (probes && !full.per_family.empty()) {
    results["table"] = family_table(variants);
    if (dist::is_main()) std::printf("\n%s\n", results["table"].get<std::string>().c_str());
  }
  // The confusion matrix also as CSV (RFC 4180: class names may hold commas and quotes), for spreadsheets.
  std::vector<std::string> header{"true\\pred"};
  for (const auto& n : ds->class_names()) header.push_back(n);
  std::string csv = csv_row(header) + "\n";
  for (size_t i = 0; i < full.confusion.size(); ++i) {
    std::vector<std::string> row{ds->class_names()[i]};
    for (auto v : full.confusion[i]) row.push_back(std::to_string(v));
    csv += csv_row(row) + "\n";
  }
  write_run_file(ctx, "confusion.csv", csv);
  write_results(ctx, results);
  return 0;
}

}  // namespace

int run_test(const RunContext& ctx) { return run_evaluation(ctx, false); }
int run_probe(const RunContext& ctx) { return run_evaluation(ctx, true); }

}  // namespace bevt::host::train
