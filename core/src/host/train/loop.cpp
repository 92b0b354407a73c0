#include "loop.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <optional>

#include "bevt/error.h"
#include "bevt/grad_checkpoint.h"
#include "bevt/log.h"
#include "bevt/progress.h"
#include "bevt/rng.h"
#include "bevt/safetensors.h"
#include "amp.h"
#include "device_memory.h"
#include "ema.h"
#include "host/dist/data_parallel.h"
#include "host/sections.h"

namespace fs = std::filesystem;

namespace bevt::host::train {

Batch StreamLoader::next() {
  Batch b;
  while (true) {
    if (loader->next(b)) {
      ++batch;
      return b;
    }
    ++epoch;
    batch = 0;
    loader->start_epoch(epoch, 0);
  }
}

std::unique_ptr<StreamLoader> make_stream(const RunContext& ctx, const std::string& name,
                                          std::shared_ptr<Dataset> dataset, int64_t batch_size, bool shuffle,
                                          uint64_t stream_id) {
  Config lc = host_section(ctx.root, "loader");
  LoaderOptions o;
  o.batch_size = batch_size;
  o.workers = lc.get_int("workers");
  o.prefetch = lc.get_int("prefetch");
  o.max_bad_fraction = lc.get_float("max_bad_fraction");
  o.shuffle = shuffle;
  o.drop_last = shuffle;
  o.seed = ctx.run.seed;
  o.stream_id = stream_id;
  o.rank = dist::rank();  // each rank reads its own shard
  o.world_size = dist::world_size();
  o.pin_memory = ctx.run.device != "cpu";
  if (static_cast<int64_t>(dataset->size()) / o.world_size < batch_size && shuffle)
    throw UserError(fmt::format("{}: the {} dataset has {} samples, fewer than one batch of {} (lower "
                                "loader.batch_size or add data)",
                                lc.where(), name, dataset->size(), batch_size));
  auto s = std::make_unique<StreamLoader>();
  s->name = name;
  s->loader = std::make_unique<Loader>(std::move(dataset), o);
  return s;
}

uint64_t sample_seed(uint64_t seed, const std::string& purpose, int64_t epoch, int64_t index) {
  return Rng::derive(seed, {std::hash<std::string>{}(purpose), static_cast<uint64_t>(epoch),
                            static_cast<uint64_t>(index)});
}

// Initial weights for the backbone (and heads, when the file has them) from init.checkpoint.
void initialise_model(const RunContext& ctx, TrainModel& model, bool whole_model) {
  Config init = host_section(ctx.root, "init");
  std::string path = init.get_string("checkpoint");
  if (path.empty()) {
    if (whole_model)
      throw UserError(fmt::format("{}: init.checkpoint is required for run.mode = '{}' (the trained model: a "
                                  "work_dir, checkpoint folder or .safetensors file)",
                                  init.where(), ctx.run.mode));
    return;
  }
  std::string file = resolve_model_file(path, init.where("checkpoint"));
  TensorMap tensors = load_safetensors(file).tensors;
  if (whole_model) {
    model.load_state(tensors, file);
    log_info("loaded the model from {}", file);
    return;
  }
  LoadOptions o;
  o.source = file;
  o.strict = false;
  LoadReport r = model.backbone->load_weights(tensors, o);
  if (!r.mismatched.empty() || r.loaded == 0)
    throw UserError(fmt::format("{}: the backbone does not fit this checkpoint: {}", file, r.summary()));
  log_info("initialised the backbone from {}: {}", file, r.summary());
}

namespace {

nlohmann::json trainer_state(int64_t step, const std::vector<StreamLoader*>& streams, const std::string& hash,
                             const LoopResult& r) {
  nlohmann::json j;
  j["step"] = step;
  j["config_hash"] = hash;
  j["world_size"] = dist::world_size();
  if (r.best_step > 0) j["best"] = {{"value", r.best}, {"step", r.best_step}};
  for (auto* s : streams) j["loaders"][s->name] = {{"epoch", s->epoch}, {"batch", s->batch}};
  return j;
}

std::string fmt_terms(const std::map<std::string, double>& m) {
  std::string out;
  for (const auto& [k, v] : m) out += fmt::format("{}{} {:.4g}", out.empty() ? "" : " ", k, v);
  return out;
}

}  // namespace

LoopResult run_loop(const RunContext& ctx, TrainModel& model, const LoopSpec& spec) {
  Config optim_cfg = host_section(ctx.root, "optim");
  OptimSettings os = OptimSettings::from(optim_cfg);
  const int64_t total = ctx.run.max_steps > 0 ? ctx.run.max_steps : ctx.run.epochs * spec.steps_per_epoch;
  if (total <= 0) throw UserError(fmt::format("{}: nothing to run: run.max_steps and run.epochs are 0",
                                              ctx.root.where("run")));
  if (os.warmup_epochs > 0) os.warmup_steps = static_cast<int64_t>(std::llround(os.warmup_epochs * spec.steps_per_epoch));
  os.steps_per_epoch = spec.steps_per_epoch;

  LayerLevels levels;
  if (os.layer_decay < 1.0) {
    levels.count = model.backbone->num_layer_levels();
    levels.of = [&model](const std::string& n) { return model.backbone->layer_level(n); };
  }
  AdamW opt(model.parameters(), os, levels);
  const double ema_momentum = optim_cfg.get_float("ema");
  if (ema_momentum < 0 || ema_momentum >= 1)
    throw UserError(fmt::format("{}: optim.ema must be in [0, 1) (0 = off)", optim_cfg.where("ema")));
  std::unique_ptr<Ema> ema;
  if (ema_momentum > 0) ema = std::make_unique<Ema>(opt.params(), ema_momentum, optim_cfg.get_int("ema_warmup"));
  Config run_cfg = host_section(ctx.root, "run");
  const Precision precision = parse_precision(run_cfg.get_string("precision"), ctx.run.device, run_cfg.where("precision"));
  GradScaler scaler(precision == Precision::Fp16, 65536.0, 2000, torch::Device(ctx.run.device));
  LoopResult result;
  const std::string& hash = ctx.config_hash;
  int64_t start = 0;
  if (ctx.resume) {
    auto last = last_checkpoint(ctx.run.work_dir);
    if (!last) {
      log_warn("--resume: no checkpoint in {}/checkpoints; starting from scratch", ctx.run.work_dir);
    } else {
      Checkpoint ck = load_checkpoint(*last);
      if (ck.trainer.value("config_hash", "") != hash)
        throw UserError(fmt::format("{}: the experiment changed since this checkpoint (config hash {} vs {}); "
                                    "resume with the same config or use another run.work_dir",
                                    *last, ck.trainer.value("config_hash", "?"), hash));
      if (spec.restore_extra) spec.restore_extra(ck.model, ck.optim, *last);
      model.load_state(ck.model, *last + "/model.safetensors");
      opt.load_state(ck.optim);
      if (ema) ema->load_state(ck.ema, *last + "/ema.safetensors");
      scaler.load(ck.optim);
      if (ck.trainer.contains("best")) {
        result.best = ck.trainer["best"].at("value").get<double>();
        result.best_step = ck.trainer["best"].at("step").get<int64_t>();
      }
      dist::restore_rng_state(ck.optim, ctx.run.seed);  // this rank's generator
      start = ck.trainer.at("step").get<int64_t>();
      const int64_t saved_world = ck.trainer.value("world_size", int64_t{1});
      for (auto* s : spec.streams) {
        if (!ck.trainer["loaders"].contains(s->name)) continue;
        s->epoch = ck.trainer["loaders"][s->name]["epoch"].get<int64_t>();
        s->batch = dist::rescale_batch(ck.trainer["loaders"][s->name]["batch"].get<int64_t>(), saved_world);
      }
      log_info("resumed from {} at step {}", *last, start);
      if (saved_world != dist::world_size())
        log_warn("the checkpoint was saved by {} rank(s), this run has {}: weights, optimiser state, step and lr "
                 "schedule continue; each loader resumes at the same number of samples seen (rounded down), and "
                 "ranks the checkpoint has no generator state for draw a fresh one",
                 saved_world, dist::world_size());
    }
  }
  if (start == 0 && dist::is_main())
    if (auto aside = set_aside_checkpoints(ctx.run.work_dir))
      log_warn("{}/checkpoints held an earlier run's checkpoints; this run starts from step 0, so they are now "
               "in {} (use --resume to continue a run)",
               ctx.run.work_dir, *aside);
  for (auto* s : spec.streams) s->loader->start_epoch(s->epoch, s->batch);

  // Data parallel over the ranks (no-op in one process): rank 0's weights, gradients averaged over ranks.
  std::vector<torch::Tensor> dp_params, dp_buffers;
  for (const auto& p : opt.params()) dp_params.push_back(p.param);
  for (const auto& [alias, primary] : model.aliases) dp_params.push_back(alias);
  for (const auto& [k, v] : model.state())
    if (!v.requires_grad()) dp_buffers.push_back(v);
  dist::DataParallel dp(dp_params, dp_buffers, dist::Settings::from(host_section(ctx.root, "dist")));

  std::optional<MetricsLog> metrics;  // rank 0 writes metrics, checkpoints and results
  if (dist::is_main()) metrics.emplace(ctx.run.work_dir, ctx.resume, start);
  Progress progress(spec.label, total);
  std::map<std::string, double> window;
  int64_t window_n = 0;
  double data_time = 0, step_time = 0;

  // The whole model state with the averaged parameters in place of the live ones.
  auto ema_model_state = [&]() {
    TensorMap full = model.state();
    for (auto& [k, v] : ema->state()) full[k] = v;
    return full;
  };
  auto save = [&](int64_t step) {
    TensorMap optim_state = opt.state();
    dist::add_rng_states(optim_state);  // every rank's generator
    scaler.save(optim_state);
    TensorMap model_state = model.state();
    if (spec.save_extra) spec.save_extra(model_state, optim_state);
    if (!dist::is_main()) return;
    save_checkpoint(ctx.run.work_dir, step, model_state, optim_state,
                    trainer_state(step, spec.streams, hash, result), ctx.run.keep_last,
                    ema ? ema_model_state() : TensorMap{});
    log_debug("saved checkpoint step_{}", step);
  };

  model.train(true);
  const torch::Device device(ctx.run.device);
  // Logged terms stay on the device (float64 sums) and reach the host only at logging steps and before each
  // checkpoint: the step itself never waits for the device. A non-finite loss is remembered as the first step
  // that had it, and found at the next of those points, before anything is written.
  std::map<std::string, torch::Tensor> window_t;
  std::map<std::string, torch::Tensor> first_bad;  // per loss term: 1-based step of the first inf/NaN, or 0
  auto check_finite = [&]() {
    for (const auto& [k, t] : first_bad) {
      const int64_t bad = t.item<int64_t>();
      if (bad > 0)
        throw RunError(fmt::format("step {}: {} is not finite (diverged); the last good checkpoint is kept in "
                                   "{}/checkpoints (lower optim.lr or raise optim.warmup_steps)",
                                   bad, k, ctx.run.work_dir));
    }
  };
  for (int64_t step = start; step < total; ++step) {
    auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    std::map<std::string, torch::Tensor> sums;
    for (int64_t micro = 0; micro < os.accum_steps; ++micro) {
      std::map<std::string, torch::Tensor> terms;
      {
        AutocastGuard autocast(precision, device);
        terms = spec.step(step);
      }
      torch::Tensor loss = terms.at("loss");
      for (const auto& [k, v] : terms) {
        torch::Tensor x = v.detach().to(torch::kFloat64) / static_cast<double>(os.accum_steps);
        sums[k] = sums.count(k) ? sums[k] + x : x;
        if (k == "loss" || k.rfind("loss_", 0) == 0) {
          auto& fb = first_bad[k];
          if (!fb.defined()) fb = torch::zeros({}, v.options().dtype(torch::kInt64));
          fb = torch::where(fb.eq(0) & ~torch::isfinite(v.detach()), torch::full_like(fb, step + 1), fb);
        }
      }
      dp.begin_backward(micro == os.accum_steps - 1);  // no all-reduce on earlier micro-steps
      scaler.scale_loss(loss / static_cast<double>(os.accum_steps)).backward();
    }
    dp.reduce_gradients();
    model.fold_alias_grads();
    double lr = scheduled_lr(os, step, total);
    torch::Tensor gnorm;
    const bool finite_grads = scaler.unscale(opt.params());
    if (finite_grads) {
      gnorm = opt.step(lr);
      if (ema) ema->update(step);
    } else {
      log_warn("step {}: inf/NaN gradient under fp16 loss scale {}; step skipped, scale halved", step + 1,
               scaler.scale());
    }
    scaler.update();
    std::map<std::string, double> host_terms;
    if (spec.after_step)
      for (const auto& [k, v] : spec.after_step(step, lr)) host_terms[k] += v;
    dp.sync_buffers();
    if (dp.enabled()) host_terms["allreduce_time"] = dp.take_comm_seconds();
    auto t1 = std::chrono::steady_clock::now();
    step_time += std::chrono::duration<double>(t1 - t0).count();
    for (const auto& [k, v] : sums) window_t[k] = window_t.count(k) ? window_t[k] + v : v;
    for (const auto& [k, v] : host_terms) window[k] += v;
    if (gnorm.defined()) window_t["grad_norm"] = window_t.count("grad_norm") ? window_t["grad_norm"] + gnorm : gnorm;
    ++window_n;
    const int64_t done = step + 1;
    const bool last_step = done == total;
    const bool saving = (ctx.run.ckpt_every > 0 && done % ctx.run.ckpt_every == 0) || last_step;
    if (done % ctx.run.log_every == 0 || last_step || saving) check_finite();
    if (done % ctx.run.log_every == 0 || last_step) {
      for (const auto& [k, v] : window_t) window[k] += v.item<double>();
      window_t.clear();
      data_time = window.count("data_time") ? window["data_time"] : 0.0;
      if (scaler.enabled()) window["loss_scale"] = scaler.scale() * static_cast<double>(window_n);
      std::map<std::string, double> mean;
      for (const auto& [k, v] : window) mean[k] = v / static_cast<double>(window_n);
      mean["step_time"] = step_time / window_n;
      dist::average(mean);  // every rank's losses and times, averaged
      step_time = mean["step_time"] * window_n;
      mean.erase("step_time");
      data_time = mean.count("data_time") ? mean["data_time"] * window_n : data_time;
      nlohmann::json rec{{"step", done}, {"lr", lr}, {"step_time", step_time / window_n},
                         {"peak_mem_mb", peak_memory_mb(device)}};
      for (const auto& [k, v] : mean) rec[k] = v;
      for (auto* s : spec.streams) rec["epoch_" + s->name] = s->epoch;
      if (metrics) metrics->write(rec);
      std::map<std::string, double> shown;
      for (const auto& [k, v] : mean)
        if (k != "data_time" && k != "grad_norm") shown[k] = v;
      std::string tail = fmt::format("lr {:.3g} | {} | data {:.2f}s step {:.2f}s", lr, fmt_terms(shown),
                                     data_time / window_n, step_time / window_n);
      if (dist::is_main()) progress.update(done, tail);
      log_debug("step {} {}", done, tail);
      result.last = mean;
      window.clear();
      window_n = 0;
      data_time = step_time = 0;
    }
    // Evaluation comes before the checkpoint of the same step, so a resumed run never skips one.
    if (spec.on_epoch_end && spec.steps_per_epoch > 0 && done % spec.steps_per_epoch == 0) {
      if (ema) ema->swap();
      nlohmann::json extra = spec.on_epoch_end(done / spec.steps_per_epoch - 1);
      if (!extra.is_null()) {
        extra["step"] = done;
        if (metrics) metrics->write(extra);
        if (!spec.best_metric.empty() && extra.contains(spec.best_metric)) {
          double v = extra[spec.best_metric].get<double>();
          if (result.best_step == 0 || v > result.best) {
            result.best = v;
            result.best_step = done;
            if (dist::is_main())
              save_best(ctx.run.work_dir, model.state(),
                        {{"metric", spec.best_metric}, {"value", v}, {"step", done}, {"config_hash", hash}});
            log_info("step {}: best {} so far ({:.4f}) saved to checkpoints/best", done, spec.best_metric, v);
          }
        }
      }
      if (ema) ema->swap();
      model.train(true);
    }
    if (saving) save(done);
  }
  if (dist::is_main()) progress.finish();
  if (ema) ema->swap();  // what follows (final evaluation, results) uses the averaged weights
  result.steps = total;
  return result;
}

}  // namespace bevt::host::train
