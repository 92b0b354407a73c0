// What the loop checkpoints and how: the model, the optimiser, the EMA weights, the fp16 loss scale, every
// rank's generator, the loaders' positions and the best evaluation, saved at the steps the run chooses and
// restored by --resume (refusing a checkpoint of another experiment).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "amp.h"
#include "ema.h"
#include "host/run_context.h"
#include "model.h"
#include "optim.h"
#include "streams.h"

namespace bevt::host::train {

// A runner's own state beside the model's (a tokenizer's discriminator): added to the checkpoint's model and
// optimiser maps under its own names on save, taken out again (before the model loads) on resume.
struct ExtraState {
  std::function<void(TensorMap& model, TensorMap& optim)> save;
  std::function<void(TensorMap& model, TensorMap& optim, const std::string& checkpoint)> restore;
};

struct BestSoFar {
  double value = -1;
  int64_t step = 0;  // 0: none yet
};

class Checkpointer {
 public:
  Checkpointer(const RunContext& ctx, TrainModel& model, AdamW& opt, Ema* ema, GradScaler& scaler,
               std::vector<StreamLoader*> streams, ExtraState extra);

  // With --resume: restores everything from the last checkpoint and returns its step (0 without one). A run
  // from step 0 sets an earlier run's checkpoints aside. Either way the loaders are positioned.
  int64_t start(BestSoFar& best);
  void save(int64_t step, const BestSoFar& best);
  // checkpoints/best with the current weights (rank 0).
  void save_best(const std::string& metric, double value, int64_t step);

 private:
  const RunContext& ctx_;
  TrainModel& model_;
  AdamW& opt_;
  Ema* ema_;
  GradScaler& scaler_;
  std::vector<StreamLoader*> streams_;
  ExtraState extra_;
};

}  // namespace bevt::host::train
