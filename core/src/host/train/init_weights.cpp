#include "init_weights.h"

#include <fmt/format.h>

#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/safetensors.h"
#include "checkpoint.h"

namespace bevt::host::train {

void initialise_model(const RunContext& ctx, TrainModel& model, bool whole_model) {
  const std::string& path = ctx.exp.init.checkpoint;
  if (path.empty()) {
    if (whole_model)
      throw UserError(fmt::format("{}: init.checkpoint is required for run.mode = '{}' (the trained model: a "
                                  "work_dir, checkpoint folder or .safetensors file)",
                                  ctx.exp.where("init"), ctx.run.mode));
    return;
  }
  std::string file = resolve_model_file(path, ctx.exp.where("init.checkpoint"));
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

}  // namespace bevt::host::train
