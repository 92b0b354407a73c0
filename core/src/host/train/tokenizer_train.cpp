// run.mode = "tokenizer": trains a trainable tokenizer (vq, peco) on the tokenizer views of [data.train]
// (every frame of a clip counts as an image) and writes work_dir/tokenizer.safetensors, which the frozen
// tokenizer then loads through its `weights` key.
//
// A tokenizer with an adversary (peco's discriminator) gets a second AdamW with the [optim] settings at
// lr x adversary_lr_mult(): each micro-batch backpropagates TokenizerLoss::adversary into the discriminator
// (the tokenizer's own loss gives it no gradient), and its optimiser steps right after the tokenizer's. Its
// weights and optimiser state ride in the checkpoints as "discriminator.*" (model.safetensors and
// optim.safetensors), so a killed run resumes bit for bit; tokenizer.safetensors never contains them. Over
// several ranks the discriminator is data parallel like the tokenizer (gradients averaged, buffers from rank 0).
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <memory>

#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/safetensors.h"
#include "bevt/state_dict.h"
#include "bevt/tokenizer.h"
#include "host/dist/data_parallel.h"
#include "host/dist/dist.h"
#include "loop.h"
#include "runners.h"
#include "streams.h"

namespace fs = std::filesystem;

namespace bevt::host::train {

namespace {

const std::string kAdversaryPrefix = "discriminator.";

// Moves the tensors whose names start with kAdversaryPrefix out of `from` (the prefix removed when `strip`).
TensorMap take_adversary(TensorMap& from, bool strip) {
  TensorMap out;
  for (auto it = from.begin(); it != from.end();) {
    if (it->first.rfind(kAdversaryPrefix, 0) == 0) {
      out[strip ? it->first.substr(kAdversaryPrefix.size()) : it->first] = it->second;
      it = from.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

}  // namespace

int run_tokenizer(const RunContext& ctx) {
  auto tok = ctx.composition.get<Tokenizer>("tokenizer");
  if (!tok) throw UserError("run.mode = 'tokenizer' needs a [tokenizer] table with a trainable tokenizer (vq, peco)");
  if (!tok->trainable())
    throw UserError(fmt::format("{}: this tokenizer is frozen and cannot be trained (use vq or peco)",
                                ctx.exp.where("tokenizer.plugin")));
  auto ds = ctx.composition.get<Dataset>("data.train");
  if (!ds) throw UserError("run.mode = 'tokenizer' needs a [data.train] dataset (its tokenizer views are the images)");
  const torch::Device device(ctx.run.device);
  tok->to(device);
  TrainModel model;
  model.standalone = tok;
  auto train = make_stream(ctx, "train", ds, ctx.exp.loader.batch_size, true, 1);
  const int64_t accum = ctx.exp.optim.accum_steps;
  LoopSpec loop;
  loop.label = "tokenizer";
  loop.steps_per_epoch = std::max<int64_t>(1, train->loader->batches_per_epoch() / accum);
  loop.streams = {train.get()};

  // The adversary (discriminator), its optimiser and its data parallelism (a no-op in one process).
  std::shared_ptr<torch::nn::Module> adv = tok->adversary();
  std::unique_ptr<AdamW> adv_opt;
  std::unique_ptr<dist::DataParallel> adv_dp;
  int64_t adv_backwards = 0;  // adversary backwards in the current optimiser step
  if (adv) {
    adv->to(device);
    std::vector<NamedParam> params;
    std::vector<torch::Tensor> dp_params, dp_buffers;
    for (const auto& p : adv->named_parameters(true)) {
      params.push_back({kAdversaryPrefix + p.key(), p.value()});
      dp_params.push_back(p.value());
    }
    for (const auto& b : adv->buffers(true)) dp_buffers.push_back(b);
    adv_opt = std::make_unique<AdamW>(std::move(params), ctx.exp.optim);
    adv_dp = std::make_unique<dist::DataParallel>(dp_params, dp_buffers, ctx.exp.dist);
    const double mult = tok->adversary_lr_mult();
    loop.after_step = [&adv_opt, &adv_dp, &adv_backwards, mult](int64_t, double lr) {
      // The adversarial term is on for a step on every rank or on none (it depends on the step only).
      if (adv_backwards > 0) adv_dp->reduce_gradients();
      adv_backwards = 0;
      double gnorm = adv_opt->step(lr * mult).item<double>();  // tokenizer training: read each step
      adv_opt->zero_grad();
      adv_dp->sync_buffers();
      return std::map<std::string, double>{{"disc_grad_norm", gnorm}};
    };
    loop.extra.save = [&adv, &adv_opt](TensorMap& model_state, TensorMap& optim_state) {
      for (const auto& [k, v] : state_dict(*adv)) model_state[kAdversaryPrefix + k] = v;
      for (const auto& [k, v] : adv_opt->state()) optim_state[k] = v;
    };
    loop.extra.restore = [&adv, &adv_opt](TensorMap& model_state, TensorMap& optim_state, const std::string& dir) {
      LoadOptions lo;
      lo.source = dir + "/model.safetensors (" + kAdversaryPrefix + "*)";
      lo.strip_prefixes = {};
      load_state_dict(*adv, take_adversary(model_state, true), lo);
      adv_opt->load_state(take_adversary(optim_state, false));
    };
  }

  loop.step = [&](int64_t step) {
    Batch b = train->next();
    if (!b.tokenizer_view.defined())
      throw UserError("[data.train] gives no tokenizer view: set its tokenizer_size to the tokenizer's input size");
    torch::Tensor images = b.tokenizer_view;
    if (images.dim() == 5) images = images.flatten(0, 1);  // clips: every frame is an image
    tok->set_train_step(step);
    TokenizerLoss l = tok->training_loss(images.to(device));
    std::map<std::string, torch::Tensor> out{{"loss", l.total}, {"data_time", torch::tensor(b.data_wait_s)}};
    for (const auto& [k, v] : l.terms) out[k] = v.detach();
    if (l.adversary.defined()) {
      if (!adv) throw RunError("the tokenizer returned an adversary loss but has no adversary() to train");
      const double d = l.adversary.item<double>();
      if (!std::isfinite(d))
        throw RunError(fmt::format("step {}: the discriminator's loss is {} (diverged); the last good checkpoint is "
                                   "kept in {}/checkpoints (lower optim.lr or the tokenizer's disc_lr_mult)",
                                   step + 1, d, ctx.run.work_dir));
      adv_dp->begin_backward(++adv_backwards == accum);
      (l.adversary / static_cast<double>(accum)).backward();
    }
    return out;
  };
  LoopResult r = run_loop(ctx, model, loop);
  tok->eval();
  std::string out = (fs::path(ctx.run.work_dir) / "tokenizer.safetensors").string();
  if (dist::is_main()) save_safetensors(out, tok->export_weights(), {{"format", "pt"}, {"config_hash", ctx.exp.config_hash}});
  nlohmann::json results{{"mode", "tokenizer"}, {"steps", r.steps}, {"weights", out}};
  for (const auto& [k, v] : r.last) results["final_" + k] = v;
  write_results(ctx, results);
  log_info("tokenizer written to {}", out);
  return 0;
}

}  // namespace bevt::host::train
