// The weights a run starts from: init.checkpoint (a .safetensors file, a checkpoint folder or a work_dir).
#pragma once

#include "host/run_context.h"
#include "model.h"

namespace bevt::host::train {

// The whole model (test, probe: strict) or the backbone alone (pretrain, finetune: lenient, reported; official
// 2D and 3D checkpoints are inflated or resized by the backbone). Without init.checkpoint: an error when
// whole_model, else nothing (random initialisation).
void initialise_model(const RunContext& ctx, TrainModel& model, bool whole_model);

}  // namespace bevt::host::train
