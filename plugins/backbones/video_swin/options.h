// Constructor options of the Video Swin backbone: the official SwinTransformer3D / SwinTransformerBEVT
// arguments plus this port's switches, the config keys that expose them and the size presets (T/S/B/L).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "bevt/config.h"

namespace bevt::swin {

enum class ImageAttention { Bevt, Swin };

struct SwinOptions {
  std::array<int64_t, 3> patch_size{2, 4, 4};
  int64_t in_chans = 3;
  int64_t embed_dim = 96;
  std::vector<int64_t> depths{2, 2, 6, 2};
  std::vector<int64_t> num_heads{3, 6, 12, 24};
  std::array<int64_t, 3> window_size{8, 7, 7};
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  double qk_scale = 0.0;  // 0: head_dim^-0.5
  double drop_rate = 0.0;
  double attn_drop_rate = 0.0;
  double drop_path_rate = 0.1;
  bool patch_norm = true;
  double norm_eps = 1e-5;
  ImageAttention image_attention = ImageAttention::Bevt;
  bool grad_checkpointing = false;
  // Stages (1-based) whose blocks are recomputed when grad_checkpointing is on; empty = every stage. The late
  // stages hold few activations but much of the compute, so leaving them out trades little memory for time.
  std::vector<int64_t> grad_checkpointing_stages;
  std::string weights;
  std::vector<int64_t> pretrained_window_size;  // empty: same as window_size
  bool inflate_2d = false;

  int64_t num_stages() const { return static_cast<int64_t>(depths.size()); }
  int64_t stage_dim(int64_t i) const { return embed_dim << i; }
  // Whether stage i (0-based) recomputes its blocks in backward.
  bool checkpoints_stage(int64_t i) const;
  // Throws UserError (one line) on inconsistent values.
  void validate() const;
};

// A named size; every field stays overridable through the keys.
struct SwinPreset {
  const char* name;
  const char* summary;
  int64_t embed_dim;
  std::vector<int64_t> depths;
  std::vector<int64_t> num_heads;
  double drop_path_rate;
};
const std::vector<SwinPreset>& presets();

// Keys with defaults taken from `base` (the generic plugin uses SwinOptions{} ).
std::vector<KeySpec> option_keys(const SwinOptions& base);
SwinOptions options_from_config(const Config& cfg, const SwinOptions& base);
SwinOptions options_for_preset(const SwinPreset& p);

}  // namespace bevt::swin
