#include "model_load.h"

#include <fmt/format.h>

#include <algorithm>

#include "bevt/strings.h"

namespace bevt::host::train {

namespace {

std::string groups(const std::map<std::string, size_t>& g) {
  std::vector<std::string> parts;
  for (const auto& [k, n] : g) parts.push_back(fmt::format("{} ({})", k, n));
  return join(parts);
}

}  // namespace

std::string pretrain_only_group(const std::string& name) {
  // Official names (BEVT's swin_transformer_bevt.py and its MIM head); exact tensors first, then modules.
  if (name == "backbone.mask_token") return name;
  static const char* const modules[] = {"backbone.patch_embed_2d.", "backbone.lm_down_st.", "backbone.lm_down.",
                                        "backbone.fpn_s.",          "backbone.fpn_t.",      "backbone.fpn.",
                                        "cls_head.lm_head.",        "cls_head.vae_encoder."};
  for (const char* m : modules)
    if (starts_with(name, m)) return std::string(m) + "*";
  return "";
}

bool is_ema_buffer(const std::string& name) { return starts_with(name, "ema_"); }

std::string ema_buffer_name(const std::string& param_name) {
  std::string flat = param_name;
  std::replace(flat.begin(), flat.end(), '.', '_');
  return "ema_" + flat;
}

std::vector<std::string> ModelLoadReport::lines() const {
  std::vector<std::string> out;
  if (!dropped_pretrain.empty())
    out.push_back("dropped, used only by pre-training: " + groups(dropped_pretrain));
  if (!kept_initial.empty()) {
    std::vector<std::string> sorted = kept_initial;
    std::sort(sorted.begin(), sorted.end());
    out.push_back(fmt::format("not in the file, used only by pre-training (kept at their initial values): {}",
                              join(sorted)));
  }
  if (ema_buffers > 0) {
    std::string l = fmt::format("ignored {} mmcv EMAHook buffers (ema_*)", ema_buffers);
    if (!ema_note.empty()) l += ": " + ema_note;
    if (!ema_orphans.empty()) l += fmt::format("; {} average no tensor of the file: {}", ema_orphans.size(),
                                               join(ema_orphans));
    out.push_back(l);
  }
  if (!not_taken.empty()) out.push_back("not loaded, not part of what this run initialises: " + groups(not_taken));
  if (!missing.empty())
    out.push_back(fmt::format("not in the file (kept at their initial values): {}", join(missing)));
  return out;
}

}  // namespace bevt::host::train
