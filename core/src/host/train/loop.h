// What the training runners share: experiment sections, loaders, the optimiser, checkpointing and resume,
// metrics and the progress line. Each runner supplies the loss of one iteration.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "checkpoint.h"
#include "host/data/loader.h"
#include "host/runners.h"
#include "model.h"
#include "optim.h"

namespace bevt::host::train {

struct StreamLoader {
  std::string name;
  std::unique_ptr<Loader> loader;
  int64_t epoch = 0;
  int64_t batch = 0;  // next batch index within the epoch
  // Next batch, moving to the next epoch when one ends (the image stream cycles under the video stream).
  Batch next();
};

std::unique_ptr<StreamLoader> make_stream(const RunContext& ctx, const std::string& name,
                                          std::shared_ptr<Dataset> dataset, int64_t batch_size, bool shuffle,
                                          uint64_t stream_id);

// One iteration's losses: "loss" is what is minimised; everything else is logged (accuracies, parts).
using StepFn = std::function<std::map<std::string, torch::Tensor>(int64_t step)>;

struct LoopSpec {
  std::string label;                  // progress-line label
  int64_t steps_per_epoch = 1;        // optimiser steps per epoch of the main stream
  std::vector<StreamLoader*> streams;  // whose positions are checkpointed
  StepFn step;
  // Called after each epoch of the main stream (validation); may return metrics to log. With optim.ema it
  // runs on the averaged weights.
  std::function<nlohmann::json(int64_t epoch)> on_epoch_end;
  // A key of on_epoch_end's metrics (e.g. "val_top1"): whenever it improves, the weights go to checkpoints/best.
  std::string best_metric;
  // A second optimisation owned by the runner (a tokenizer's discriminator): after_step runs after the main
  // optimiser step with the step and its scheduled lr and returns values to log; save_extra adds its state to
  // the checkpoint's model and optimiser maps under its own names, restore_extra takes them out again (before
  // the model loads) on resume.
  std::function<std::map<std::string, double>(int64_t step, double lr)> after_step;
  std::function<void(TensorMap& model, TensorMap& optim)> save_extra;
  std::function<void(TensorMap& model, TensorMap& optim, const std::string& checkpoint)> restore_extra;
};

struct LoopResult {
  int64_t steps = 0;
  std::map<std::string, double> last;  // mean of the last logging window
  double best = -1;                    // best value of spec.best_metric (-1: none)
  int64_t best_step = 0;
};

// Runs the optimisation loop with checkpoints every run.ckpt_every steps (and at the end), resume from
// checkpoints/last, NaN/Inf detection (RunError naming step and term), metrics.jsonl and the progress line,
// optional EMA (optim.ema) and mixed precision (run.precision, CUDA). With EMA the model holds the averaged
// weights when run_loop returns (what evaluation after training should use).
LoopResult run_loop(const RunContext& ctx, TrainModel& model, const LoopSpec& spec);

// Weights from init.checkpoint (a .safetensors file, a checkpoint folder or a work_dir): the whole model
// (test, probe: strict) or the backbone alone (pretrain, finetune: lenient, reported; official 2D and 3D
// checkpoints are inflated or resized by the backbone). Without init.checkpoint: an error when whole_model.
void initialise_model(const RunContext& ctx, TrainModel& model, bool whole_model);

// Seed for a per-sample random choice (masks): a pure function of (seed, purpose, epoch, index).
uint64_t sample_seed(uint64_t seed, const std::string& purpose, int64_t epoch, int64_t index);

}  // namespace bevt::host::train
