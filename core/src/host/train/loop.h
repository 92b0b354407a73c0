// The optimisation loop every training runner shares. A runner supplies the loss of one iteration (and,
// optionally, an evaluation at epoch ends and a second optimisation of its own); the loop does the rest:
// gradient accumulation, mixed precision, data-parallel gradient averaging, the optimiser and lr schedule,
// EMA, checkpoints and resume, NaN/Inf detection and the metrics sinks.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpointer.h"
#include "host/run_context.h"
#include "model.h"
#include "streams.h"

namespace bevt::host::train {

// One iteration's terms: "loss" is what is minimised; everything else is logged (accuracies, parts).
using StepFn = std::function<std::map<std::string, torch::Tensor>(int64_t step)>;

struct LoopSpec {
  std::string label;                   // progress-line label
  int64_t steps_per_epoch = 1;         // optimiser steps per epoch of the main stream
  std::vector<StreamLoader*> streams;  // whose positions are checkpointed
  StepFn step;
  // Called after each epoch of the main stream (validation); may return metrics to log. With optim.ema it
  // runs on the averaged weights.
  std::function<nlohmann::json(int64_t epoch)> on_epoch_end;
  // A key of on_epoch_end's metrics (e.g. "val_top1"): whenever it improves, the weights go to checkpoints/best.
  std::string best_metric;
  // A second optimisation owned by the runner: after_step runs after the main optimiser step with the step and
  // its scheduled lr and returns values to log; its state travels in the checkpoint through `extra`.
  std::function<std::map<std::string, double>(int64_t step, double lr)> after_step;
  ExtraState extra;
};

struct LoopResult {
  int64_t steps = 0;
  std::map<std::string, double> last;  // mean of the last logging window
  double best = -1;                    // best value of spec.best_metric (-1: none)
  int64_t best_step = 0;
};

// Runs run.max_steps (else run.epochs × steps_per_epoch) optimiser steps. With EMA the model holds the
// averaged weights when run_loop returns (what evaluation after training should use).
LoopResult run_loop(const RunContext& ctx, TrainModel& model, const LoopSpec& spec);

}  // namespace bevt::host::train
