#include "init_weights.h"

#include <fmt/format.h>

#include <filesystem>

#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/safetensors.h"
#include "bevt/strings.h"
#include "checkpoint.h"

namespace bevt::host::train {

namespace {

// The prefixes BEVT's fine-tune strips before loading a pre-trained backbone (SwinTransformer3D.init_weights:
// ^module\., ^backbone\., ^encoder\.) and TimeSformer's "model." wrapper, in that order.
const std::vector<std::string> kBackbonePrefixes = {"module.", "backbone.", "encoder.", "model."};

void log_report(const std::string& head, const ModelLoadReport& r) {
  log_info("{}", head);
  for (const auto& l : r.lines()) log_info("  {}", l);
}

// What of a whole-model file the backbone does not take: the groups the report names (a fine-tune starts its
// classifier afresh, as the official fine-tune loads only model.backbone.pretrained).
void classify_rest(const TensorMap& file, ModelLoadReport& r) {
  bool any_backbone = false;
  for (const auto& kv : file) any_backbone = any_backbone || starts_with(kv.first, "backbone.") ||
                                             starts_with(kv.first, "module.backbone.");
  for (const auto& kv : file) {
    std::string k = starts_with(kv.first, "module.") ? kv.first.substr(7) : kv.first;
    if (is_ema_buffer(k)) {
      ++r.ema_buffers;
      continue;
    }
    std::string g = pretrain_only_group(k);
    if (!g.empty() && !starts_with(g, "backbone.mask_token") && !starts_with(g, "backbone.patch_embed_2d.")) {
      ++r.dropped_pretrain[g];  // decoders and the vocabulary classifier: the backbone drops them
      continue;
    }
    if (any_backbone && !starts_with(k, "backbone.")) {
      auto dot = k.find('.', k.find('.') + 1);
      ++r.not_taken[(dot == std::string::npos ? k : k.substr(0, dot)) + (dot == std::string::npos ? "" : ".*")];
    }
  }
}

}  // namespace

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
  const bool averaged = std::filesystem::path(file).filename() == "ema.safetensors";
  TensorMap tensors = load_safetensors(file).tensors;
  if (whole_model) {
    ModelLoadReport r = model.load_state(tensors, file);
    // The official test (mmaction tools/test.py) builds the model without the EMA hook, so load_checkpoint
    // (strict=False) passes the ema_* buffers by: it evaluates the plain weights.
    r.ema_note = "the official test evaluates the plain weights (bevt-convert --ema use takes the averages)";
    log_report(fmt::format("loaded the model from {}{}: {} tensors", file,
                           averaged ? " (the EMA-averaged weights)" : "", r.loaded),
               r);
    return;
  }
  LoadOptions o;
  o.source = file;
  o.strict = false;
  o.strip_prefixes = kBackbonePrefixes;
  LoadReport lr = model.backbone->load_weights(tensors, o);
  if (!lr.mismatched.empty() || lr.loaded == 0)
    throw UserError(fmt::format("{}: the backbone does not fit this checkpoint: {}", file, lr.summary()));
  ModelLoadReport r;
  r.loaded = lr.loaded;
  classify_rest(tensors, r);
  r.ema_note = "a fine-tune starts its own average from the loaded weights, as mmcv's EMAHook does";
  for (const auto& k : lr.missing) {
    if (!pretrain_only_group("backbone." + k).empty())
      r.kept_initial.push_back("backbone." + k);
    else
      r.missing.push_back("backbone." + k);
  }
  if (!lr.unexpected.empty())
    log_warn("{}: the backbone has no place for {} tensor(s): {}", file, lr.unexpected.size(), join(lr.unexpected));
  if (!r.missing.empty())
    log_warn("{}: {} backbone tensor(s) are not in the file and keep their initial values: {}", file,
             r.missing.size(), join(r.missing));
  log_report(fmt::format("initialised the backbone from {}: {} tensors", file, r.loaded), r);
}

}  // namespace bevt::host::train
