// What loading a checkpoint into the model did with each tensor, for the loading report. Official checkpoints
// carry tensors this model has no use for, and lack some it has:
//  * pre-training only (BEVT's mask token, 2D patch embedding, image/video decoders, vocabulary classifier and
//    the saved DALL-E tokenizer): a fine-tuned Video Swin (SwinTransformer3D) has none of them, a BEVT
//    pre-trained one has them all; bevt's backbone always holds the mask token and the 2D embedding;
//  * mmcv EMAHook buffers ema_<parameter name with '.' as '_'> (SSv2 fine-tunes, ema.h);
//  * rebuilt buffers (relative_position_index, attn_mask).
// Each of these is listed, never dropped silently; anything else must fit exactly.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace bevt::host::train {

// The group ("backbone.lm_down.*") of an official key only pre-training uses, or "" for any other key.
std::string pretrain_only_group(const std::string& name);
bool is_ema_buffer(const std::string& name);  // mmcv EMAHook's ema_* buffer names
std::string ema_buffer_name(const std::string& param_name);  // "ema_" + the name with '.' as '_'

struct ModelLoadReport {
  size_t loaded = 0;
  std::map<std::string, size_t> dropped_pretrain;  // group -> count: in the file, used only by pre-training
  std::vector<std::string> kept_initial;           // the model's pre-training-only weights absent from the file
  size_t ema_buffers = 0;                          // ema_* buffers in the file, not loaded
  std::vector<std::string> ema_orphans;            // of those, the ones averaging no tensor of the file
  std::map<std::string, size_t> not_taken;         // group -> count: other tensors the loaded part does not take
  std::vector<std::string> missing;                // lenient loads only: the part's weights absent from the file
  std::string ema_note;                            // why the EMA buffers are not used here
  // The report: one line per kind that occurred, each naming its tensors (groups with counts).
  std::vector<std::string> lines() const;
};

}  // namespace bevt::host::train
