// run.mode = "finetune": supervised training of backbone + classification head, validation each epoch (the
// best epoch's weights go to checkpoints/best).
#include <fmt/format.h>

#include <algorithm>

#include "bevt/error.h"
#include "bevt/log.h"
#include "evaluate.h"
#include "host/dist/dist.h"
#include "loop.h"
#include "init_weights.h"
#include "runners.h"

namespace bevt::host::train {

int run_finetune(const RunContext& ctx) {
  TrainModel model = assemble_model(ctx.composition, false);
  if (!model.heads.count("cls")) throw UserError("fine-tuning needs a [model.heads.cls] head (plugin = \"i3d\")");
  initialise_model(ctx, model, false);
  const torch::Device device(ctx.run.device);
  model.to(device);
  auto train_ds = ctx.composition.get<Dataset>("data.train");  // present: the modes table requires it
  auto val_ds = ctx.composition.get<Dataset>("data.val");
  auto train = make_stream(ctx, "train", train_ds, ctx.exp.loader.batch_size, true, 1);
  std::unique_ptr<StreamLoader> val;
  if (val_ds) val = make_stream(ctx, "val", val_ds, ctx.exp.loader.eval_batch_size, false, 2);
  const double smoothing = ctx.exp.finetune.label_smoothing;
  const auto classes = static_cast<int64_t>(train_ds->class_names().size());
  const int64_t eval_every = ctx.exp.finetune.eval_every;
  const int64_t accum = ctx.exp.optim.accum_steps;

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
    // A shape check, no device sync: labels past the classifier's outputs would fail inside the loss.
    if (logits.size(1) < classes)
      throw UserError(fmt::format("{}: the classifier has {} outputs but data.train has {} classes (set "
                                  "model.heads.cls.num_classes = {}, or 0 to take the dataset's)",
                                  ctx.exp.where("model.heads.cls"), logits.size(1), classes, classes));
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
    EvalResult r = evaluate(model, *val->loader, val_ds->class_names(), device, Probe::None, 0, nullptr, "validate");
    log_info("epoch {}: val top1 {:.4f} top5 {:.4f}", epoch + 1, r.top1, r.top5);
    last_eval = r.to_json(val_ds->class_names());
    best = std::max(best, r.top1);
    return nlohmann::json{{"epoch", epoch + 1}, {"val_top1", r.top1}, {"val_top5", r.top5}};
  };
  LoopResult res = run_loop(ctx, model, loop);
  nlohmann::json results{{"mode", "finetune"}, {"steps", res.steps}};
  for (const auto& [k, v] : res.last) results["final_" + k] = v;
  if (val) {
    if (last_eval.is_null()) last_eval = evaluate(model, *val->loader, val_ds->class_names(), device, Probe::None, 0, nullptr, "validate").to_json(val_ds->class_names());
    results["val"] = last_eval;
    results["top1"] = last_eval["top1"];
    results["top5"] = last_eval["top5"];
    results["best_top1"] = std::max({best, res.best, last_eval["top1"].get<double>()});
    if (res.best_step > 0) results["best_step"] = res.best_step;
  }
  write_results(ctx, results);
  return 0;
}

}  // namespace bevt::host::train
