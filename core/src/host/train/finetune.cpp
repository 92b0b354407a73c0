// run.mode = "finetune" (supervised training of backbone + classification head, validation each epoch),
// "test" (multi-view evaluation of a trained model) and "probe" (the paper's temporal-dependency probes:
// the same evaluation with one frame repeated over the clip, and with frames shuffled in time).
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "bevt/csv.h"
#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/safetensors.h"
#include "evaluate.h"
#include "host/dist/dist.h"
#include "host/sections.h"
#include "loop.h"
#include "runners_internal.h"

namespace fs = std::filesystem;

namespace bevt::host::train {

namespace {

std::shared_ptr<Dataset> need_dataset(const RunContext& ctx, const std::vector<std::string>& paths) {
  for (const auto& p : paths)
    if (auto d = component_as<Dataset>(ctx.composition, p)) return d;
  throw UserError(fmt::format("run.mode = '{}' needs a dataset table: [{}]", ctx.run.mode, paths.front()));
}

int run_finetune(const RunContext& ctx) {
  TrainModel model = assemble_model(ctx.composition, false);
  if (!model.heads.count("cls")) throw UserError("fine-tuning needs a [model.heads.cls] head (plugin = \"i3d\")");
  initialise_model(ctx, model, false);
  const torch::Device device(ctx.run.device);
  model.to(device);
  Config lc = host_section(ctx.root, "loader");
  Config fc = host_section(ctx.root, "finetune");
  auto train_ds = need_dataset(ctx, {"data.train"});
  auto val_ds = component_as<Dataset>(ctx.composition, "data.val");
  auto train = make_stream(ctx, "train", train_ds, lc.get_int("batch_size"), true, 1);
  std::unique_ptr<StreamLoader> val;
  if (val_ds) val = make_stream(ctx, "val", val_ds, lc.get_int("eval_batch_size"), false, 2);
  const double smoothing = fc.get_float("label_smoothing");
  const int64_t eval_every = fc.get_int("eval_every");
  int64_t accum = host_section(ctx.root, "optim").get_int("accum_steps");

  double best = -1;
  nlohmann::json last_eval;
  LoopSpec loop;
  loop.label = "finetune";
  loop.steps_per_epoch = std::max<int64_t>(1, train->loader->batches_per_epoch() / accum);
  loop.streams = {train.get()};
  loop.best_metric = "val_top1";
  loop.step = [&](int64_t) {
    Batch b = train->next();
    torch::Tensor x = b.input.to(device), y = b.label.to(device);
    Features f = x.dim() == 4 ? model.backbone->forward_image(x) : model.backbone->forward_video(x);
    torch::Tensor logits = model.heads.at("cls")->forward(f, *model.backbone);
    namespace F = torch::nn::functional;
    torch::Tensor loss = F::cross_entropy(logits, y, F::CrossEntropyFuncOptions().label_smoothing(smoothing));
    return std::map<std::string, torch::Tensor>{
        {"loss", loss},
        {"acc_train", (logits.argmax(1) == y).to(torch::kFloat).mean().detach()},
        {"data_time", torch::tensor(b.data_wait_s)}};
  };
  int64_t total_epochs = ctx.run.max_steps > 0 ? 0 : ctx.run.epochs;
  loop.on_epoch_end = [&](int64_t epoch) -> nlohmann::json {
    if (!val || eval_every <= 0) return nullptr;
    bool final_epoch = total_epochs > 0 && epoch + 1 == total_epochs;
    if ((epoch + 1) % eval_every != 0 && !final_epoch) return nullptr;
    EvalResult r = evaluate(model, *val->loader, val_ds->class_names(), device);
    log_info("epoch {}: val top1 {:.4f} top5 {:.4f}", epoch + 1, r.top1, r.top5);
    last_eval = r.to_json(val_ds->class_names());
    best = std::max(best, r.top1);
    return nlohmann::json{{"epoch", epoch + 1}, {"val_top1", r.top1}, {"val_top5", r.top5}};
  };
  LoopResult res = run_loop(ctx, model, loop);
  nlohmann::json results{{"mode", "finetune"}, {"steps", res.steps}};
  for (const auto& [k, v] : res.last) results["final_" + k] = v;
  if (val) {
    if (last_eval.is_null()) last_eval = evaluate(model, *val->loader, val_ds->class_names(), device).to_json(val_ds->class_names());
    results["val"] = last_eval;
    results["top1"] = last_eval["top1"];
    results["top5"] = last_eval["top5"];
    results["best_top1"] = std::max({best, res.best, last_eval["top1"].get<double>()});
    if (res.best_step > 0) results["best_step"] = res.best_step;
  }
  write_results(ctx, results);
  return 0;
}

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

int run_eval(const RunContext& ctx, bool probes) {
  TrainModel model = assemble_model(ctx.composition, false);
  initialise_model(ctx, model, true);
  const torch::Device device(ctx.run.device);
  model.to(device);
  auto ds = need_dataset(ctx, {"data.test", "data.val"});
  auto s = make_stream(ctx, "test", ds, host_section(ctx.root, "loader").get_int("eval_batch_size"), false, 3);
  std::map<std::string, EvalResult> variants;
  std::vector<Probe> list = {Probe::None};
  if (probes) list = {Probe::None, Probe::SingleFrame, Probe::Shuffled};
  for (Probe p : list) {
    variants[probe_name(p)] = evaluate(model, *s->loader, ds->class_names(), device, p, ctx.run.seed);
    log_info("{}: top1 {:.4f} top5 {:.4f}", probe_name(p), variants[probe_name(p)].top1, variants[probe_name(p)].top5);
  }
  nlohmann::json results{{"mode", ctx.run.mode}};
  const EvalResult& full = variants.at("full");
  results["top1"] = full.top1;
  results["top5"] = full.top5;
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
  if (dist::is_main()) write_text_atomic((fs::path(ctx.run.work_dir) / "confusion.csv").string(), csv);
  write_results(ctx, results);
  return 0;
}

}  // namespace

void register_finetune_runners() {
  register_runner("finetune", run_finetune);
  register_runner("test", [](const RunContext& c) { return run_eval(c, false); });
  register_runner("probe", [](const RunContext& c) { return run_eval(c, true); });
}

}  // namespace bevt::host::train
