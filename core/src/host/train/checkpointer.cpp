#include "checkpointer.h"

#include <fmt/format.h>

#include <filesystem>
#include <optional>

#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/strings.h"
#include "checkpoint.h"
#include "host/config/experiment_file.h"
#include "host/dist/data_parallel.h"
#include "host/dist/dist.h"

namespace bevt::host::train {

Checkpointer::Checkpointer(const RunContext& ctx, TrainModel& model, AdamW& opt, Ema* ema, GradScaler& scaler,
                           std::vector<StreamLoader*> streams, ExtraState extra)
    : ctx_(ctx), model_(model), opt_(opt), ema_(ema), scaler_(scaler), streams_(std::move(streams)),
      extra_(std::move(extra)) {}

int64_t Checkpointer::start(BestSoFar& best) {
  const std::string& work_dir = ctx_.run.work_dir;
  const std::string& hash = ctx_.exp.config_hash;
  int64_t start = 0;
  if (ctx_.resume) {
    std::optional<std::string> last;
    if (ctx_.resume_from.empty()) {
      last = last_checkpoint(work_dir);
    } else if (std::filesystem::is_regular_file(std::filesystem::path(ctx_.resume_from) / "trainer.json")) {
      last = ctx_.resume_from;  // a checkpoint folder
    } else if (!(last = last_checkpoint(ctx_.resume_from))) {
      throw UserError(fmt::format("--resume {}: neither a checkpoint folder (with trainer.json) nor a work_dir with "
                                  "checkpoints",
                                  ctx_.resume_from));
    }
    if (!last) {
      log_warn("--resume: no checkpoint in {}/checkpoints; starting from scratch", work_dir);
    } else {
      Checkpoint ck = load_checkpoint(*last);
      if (ck.trainer.value("config_hash", "") != hash) {
        const auto keys = changed_keys(ck.trainer.value("experiment", ""), ctx_.exp.hashed_text);
        throw UserError(fmt::format("{}: the experiment changed since this checkpoint ({}); resume with the same "
                                    "recipe or use another run.work_dir (performance and logging settings may change)",
                                    *last, keys.empty() ? fmt::format("config hash {} vs {}",
                                                                      ck.trainer.value("config_hash", "?"), hash)
                                                        : "changed: " + join(keys)));
      }
      if (extra_.restore) extra_.restore(ck.model, ck.optim, *last);
      model_.load_state(ck.model, *last + "/model.safetensors");
      opt_.load_state(ck.optim);
      if (ema_) ema_->load_state(ck.ema, *last + "/ema.safetensors");
      scaler_.load(ck.optim);
      if (ck.trainer.contains("best")) {
        best.value = ck.trainer["best"].at("value").get<double>();
        best.step = ck.trainer["best"].at("step").get<int64_t>();
      }
      dist::restore_rng_state(ck.optim, ctx_.run.seed);  // this rank's generator
      start = ck.trainer.at("step").get<int64_t>();
      const int64_t saved_world = ck.trainer.value("world_size", int64_t{1});
      for (auto* s : streams_) {
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
    if (auto aside = set_aside_checkpoints(work_dir))
      log_warn("{}/checkpoints held an earlier run's checkpoints; this run starts from step 0, so they are now "
               "in {} (use --resume to continue a run)",
               work_dir, *aside);
  for (auto* s : streams_) s->loader->start_epoch(s->epoch, s->batch);
  return start;
}

void Checkpointer::save(int64_t step, const BestSoFar& best) {
  TensorMap optim_state = opt_.state();
  dist::add_rng_states(optim_state);  // every rank's generator (a collective: every rank takes part)
  scaler_.save(optim_state);
  TensorMap model_state = model_.state();
  if (extra_.save) extra_.save(model_state, optim_state);
  if (!dist::is_main()) return;
  nlohmann::json trainer{{"step", step},
                         {"config_hash", ctx_.exp.config_hash},
                         {"experiment", ctx_.exp.hashed_text},
                         {"world_size", dist::world_size()}};
  if (best.step > 0) trainer["best"] = {{"value", best.value}, {"step", best.step}};
  for (auto* s : streams_) trainer["loaders"][s->name] = {{"epoch", s->epoch}, {"batch", s->batch}};
  // The whole model state with the averaged parameters in place of the live ones.
  TensorMap ema_state;
  if (ema_) {
    ema_state = model_.state();
    for (auto& [k, v] : ema_->state()) ema_state[k] = v;
  }
  save_checkpoint(ctx_.run.work_dir, step, model_state, optim_state, trainer, ctx_.run.keep_last, ema_state);
  log_debug("saved checkpoint step_{}", step);
}

void Checkpointer::save_best(const std::string& metric, double value, int64_t step) {
  if (!dist::is_main()) return;
  train::save_best(ctx_.run.work_dir, model_.state(),
                   {{"metric", metric}, {"value", value}, {"step", step}, {"config_hash", ctx_.exp.config_hash}});
}

}  // namespace bevt::host::train
