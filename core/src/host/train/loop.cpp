#include "loop.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "amp.h"
#include "bevt/error.h"
#include "bevt/log.h"
#include "device_memory.h"
#include "ema.h"
#include "host/dist/data_parallel.h"
#include "host/dist/dist.h"
#include "step_metrics.h"
#include "tensorboard_sink.h"

namespace fs = std::filesystem;

namespace bevt::host::train {

namespace {

std::string fmt_terms(const std::map<std::string, double>& m) {
  std::string out;
  for (const auto& [k, v] : m) out += fmt::format("{}{} {:.4g}", out.empty() ? "" : " ", k, v);
  return out;
}

// Data parallel over the ranks (a no-op in one process): rank 0's weights, gradients averaged over ranks.
dist::DataParallel data_parallel(const TrainModel& model, const AdamW& opt, const DistSettings& settings) {
  std::vector<torch::Tensor> params, buffers;
  for (const auto& p : opt.params()) params.push_back(p.param);
  for (const auto& [alias, primary] : model.aliases) params.push_back(alias);
  for (const auto& [k, v] : model.state())
    if (!v.requires_grad()) buffers.push_back(v);
  return dist::DataParallel(params, buffers, settings);
}

}  // namespace

LoopResult run_loop(const RunContext& ctx, TrainModel& model, const LoopSpec& spec) {
  const RunSettings& run = ctx.run;
  OptimSettings os = ctx.exp.optim;
  const int64_t total = run.max_steps > 0 ? run.max_steps : run.epochs * spec.steps_per_epoch;
  if (total <= 0)
    throw UserError(fmt::format("{}: nothing to run: run.max_steps and run.epochs are 0", ctx.exp.where("run")));
  if (os.warmup_epochs > 0) os.warmup_steps = static_cast<int64_t>(std::llround(os.warmup_epochs * spec.steps_per_epoch));
  os.steps_per_epoch = spec.steps_per_epoch;

  LayerLevels levels;
  if (os.layer_decay < 1.0) {
    levels.count = model.backbone->num_layer_levels();
    levels.of = [&model](const std::string& n) { return model.backbone->layer_level(n); };
  }
  AdamW opt(model.parameters(), os, levels);
  std::unique_ptr<Ema> ema;
  if (os.ema > 0) ema = std::make_unique<Ema>(opt.params(), os.ema, os.ema_warmup);
  const torch::Device device(run.device);
  GradScaler scaler(run.precision == Precision::Fp16, 65536.0, 2000, device);
  Checkpointer ckpt(ctx, model, opt, ema.get(), scaler, spec.streams, spec.extra);
  BestSoFar best;
  const int64_t start = ckpt.start(best);
  dist::DataParallel dp = data_parallel(model, opt, ctx.exp.dist);

  std::vector<std::unique_ptr<MetricsSink>> sinks;  // rank 0 writes metrics, checkpoints and results
  if (dist::is_main()) {
    // A resumed run continues the curve of the run before it (or of a work_dir from before run folders).
    std::string resume_source;
    if (ctx.resume && start > 0)
      resume_source = (fs::path(ctx.previous_run_dir.empty() ? run.work_dir : ctx.previous_run_dir) /
                       "metrics.jsonl").string();
    sinks.push_back(jsonl_sink(ctx.run_dir, resume_source, start));
    sinks.push_back(progress_sink(spec.label, total, start));
    if (ctx.exp.log.tensorboard) sinks.push_back(tensorboard_sink(ctx.run_dir));
  }
  StepMetrics metrics(run.work_dir);
  LoopResult result;
  model.train(true);
  for (int64_t step = start; step < total; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    // Forward and backward over the accumulated micro-steps; the all-reduce runs with the last backward.
    opt.zero_grad();
    for (int64_t micro = 0; micro < os.accum_steps; ++micro) {
      std::map<std::string, torch::Tensor> terms;
      {
        AutocastGuard autocast(run.precision, device);
        terms = spec.step(step);
      }
      metrics.add_micro(terms, static_cast<double>(os.accum_steps), step + 1);
      dp.begin_backward(micro == os.accum_steps - 1);
      scaler.scale_loss(terms.at("loss") / static_cast<double>(os.accum_steps)).backward();
      // mmcv's EMAHook runs after every iteration (runner.iter counts micro-batches); the weights change only
      // at the last one of a step, so these updates average the unchanged weights again, as the hook's do.
      if (ema && micro < os.accum_steps - 1) ema->update(step * os.accum_steps + micro);
    }
    metrics.end_micro_steps();
    dp.reduce_gradients();
    model.fold_alias_grads();
    // The optimiser step (skipped when fp16 gradients overflowed), then EMA and the runner's own step. The
    // step's last iteration updates the EMA after the optimiser, as the hook runs after mmcv's OptimizerHook
    // (priority ABOVE_NORMAL before NORMAL); a skipped step still counts, as the hook does not know of it.
    const double lr = scheduled_lr(os, step, total);
    if (scaler.unscale(opt.params())) {
      torch::Tensor gnorm = opt.step(lr);
      metrics.add_device("grad_norm", gnorm);
    } else {
      log_warn("step {}: inf/NaN gradient under fp16 loss scale {}; step skipped, scale halved", step + 1,
               scaler.scale());
    }
    if (ema) ema->update(step * os.accum_steps + os.accum_steps - 1);
    scaler.update();
    if (spec.after_step)
      for (const auto& [k, v] : spec.after_step(step, lr)) metrics.add_host(k, v);
    dp.sync_buffers();
    if (dp.enabled()) metrics.add_host("allreduce_time", dp.take_comm_seconds());
    metrics.end_step(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

    // Logging, evaluation at epoch ends, checkpoints: each only at its steps.
    const int64_t done = step + 1;
    for (auto& sink : sinks) sink->step_done(done);
    const bool last_step = done == total;
    const bool logging = done % run.log_every == 0 || last_step;
    const bool saving = (run.ckpt_every > 0 && done % run.ckpt_every == 0) || last_step;
    if (logging || saving) metrics.check_finite();
    if (logging) {
      std::map<std::string, double> mean = metrics.flush(scaler.enabled() ? scaler.scale() : 0.0);
      const double step_time = mean["step_time"];
      mean.erase("step_time");
      nlohmann::json rec{{"step", done}, {"lr", lr}, {"step_time", step_time}, {"peak_mem_mb", peak_memory_mb(device)}};
      for (const auto& [k, v] : mean) rec[k] = v;
      for (auto* s : spec.streams) rec["epoch_" + s->name] = s->epoch;
      std::map<std::string, double> shown;
      for (const auto& [k, v] : mean)
        if (k != "data_time" && k != "grad_norm") shown[k] = v;
      std::string epochs;  // 1-based, per stream when there are several
      for (auto* s : spec.streams)
        epochs += fmt::format("epoch{} {} | ", spec.streams.size() > 1 ? "_" + s->name : "", s->epoch + 1);
      const std::string line = fmt::format("{}lr {:.3g} | {} | data {:.2f}s step {:.2f}s", epochs, lr, fmt_terms(shown),
                                           mean.count("data_time") ? mean["data_time"] : 0.0, step_time);
      for (auto& sink : sinks) sink->write(rec, line);
      log_debug("step {} {}", done, line);
      result.last = mean;
    }
    // Evaluation comes before the checkpoint of the same step, so a resumed run never skips one.
    if (spec.on_epoch_end && spec.steps_per_epoch > 0 && done % spec.steps_per_epoch == 0) {
      if (ema) ema->swap();
      nlohmann::json extra = spec.on_epoch_end(done / spec.steps_per_epoch - 1);
      if (!extra.is_null()) {
        extra["step"] = done;
        for (auto& sink : sinks) sink->write(extra, "");
        if (!spec.best_metric.empty() && extra.contains(spec.best_metric)) {
          const double v = extra[spec.best_metric].get<double>();
          if (best.step == 0 || v > best.value) {
            best = {v, done};
            ckpt.save_best(spec.best_metric, v, done);
            log_info("step {}: best {} so far ({:.4f}) saved to checkpoints/best", done, spec.best_metric, v);
          }
        }
      }
      if (ema) ema->swap();
      model.train(true);
    }
    if (saving) ckpt.save(done, best);
  }
  for (auto& sink : sinks) sink->finish();
  if (ema) ema->swap();  // what follows (final evaluation, results) uses the averaged weights
  result.steps = total;
  result.best = best.value;
  result.best_step = best.step;
  return result;
}

}  // namespace bevt::host::train
