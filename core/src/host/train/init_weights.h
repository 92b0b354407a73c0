// The weights a run starts from: init.checkpoint (a .safetensors file, a checkpoint folder or a work_dir).
#pragma once

#include "host/run_context.h"
#include "model.h"

namespace bevt::host::train {

// The whole model (test, probe: strict apart from what model_load.h lists) or the backbone alone (pretrain,
// finetune: lenient, as the official fine-tune loads model.backbone.pretrained; official 2D and 3D checkpoints
// are inflated or resized by the backbone). Either way the log lists what was not loaded and why. Without
// init.checkpoint: an error when whole_model, else nothing (random initialisation).
void initialise_model(const RunContext& ctx, TrainModel& model, bool whole_model);

}  // namespace bevt::host::train
