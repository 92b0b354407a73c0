#include "options.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bevt/error.h"

namespace bevt::swin {

namespace {

std::array<int64_t, 3> triple(const Config& cfg, const char* name) {
  auto v = cfg.get_int_list(name);
  if (v.size() != 3)
    throw UserError(fmt::format("{}: '{}' must list 3 integers (t, h, w), got {}", cfg.where(name), name, v.size()));
  return {v[0], v[1], v[2]};
}

std::vector<int64_t> to_vec(const std::array<int64_t, 3>& a) { return {a[0], a[1], a[2]}; }

}  // namespace

void SwinOptions::validate() const {
  auto fail = [](const std::string& m) { throw UserError("video_swin: " + m); };
  for (int i = 0; i < 3; ++i) {
    if (patch_size[i] < 1) fail(fmt::format("patch_size must be positive, got [{}]", fmt::join(patch_size, ",")));
    if (window_size[i] < 1) fail(fmt::format("window_size must be positive, got [{}]", fmt::join(window_size, ",")));
  }
  if (in_chans < 1) fail(fmt::format("in_chans must be positive, got {}", in_chans));
  if (embed_dim < 1) fail(fmt::format("embed_dim must be positive, got {}", embed_dim));
  if (depths.empty()) fail("depths must list at least one stage");
  if (depths.size() != num_heads.size())
    fail(fmt::format("depths [{}] and num_heads [{}] must have the same length", fmt::join(depths, ","),
                     fmt::join(num_heads, ",")));
  for (size_t i = 0; i < depths.size(); ++i) {
    if (depths[i] < 1) fail(fmt::format("depths[{}] must be >= 1, got {}", i, depths[i]));
    if (num_heads[i] < 1) fail(fmt::format("num_heads[{}] must be >= 1, got {}", i, num_heads[i]));
    int64_t dim = stage_dim(static_cast<int64_t>(i));
    if (dim % num_heads[i] != 0)
      fail(fmt::format("stage {} has {} channels (embed_dim {} x 2^{}), not divisible by num_heads[{}] = {}", i + 1,
                       dim, embed_dim, i, i, num_heads[i]));
  }
  if (mlp_ratio <= 0) fail(fmt::format("mlp_ratio must be positive, got {}", mlp_ratio));
  if (qk_scale < 0) fail(fmt::format("qk_scale must be >= 0 (0 = head_dim^-0.5), got {}", qk_scale));
  for (double p : {drop_rate, attn_drop_rate, drop_path_rate})
    if (p < 0 || p >= 1) fail(fmt::format("drop rates must be in [0, 1), got {}", p));
  if (norm_eps <= 0) fail(fmt::format("norm_eps must be positive, got {}", norm_eps));
  for (size_t i = 0; i < grad_checkpointing_stages.size(); ++i) {
    const int64_t st = grad_checkpointing_stages[i];
    if (st < 1 || st > num_stages())
      fail(fmt::format("grad_checkpointing_stages lists stage {}; stages are 1 to {}", st, num_stages()));
    for (size_t j = 0; j < i; ++j)
      if (grad_checkpointing_stages[j] == st) fail(fmt::format("grad_checkpointing_stages lists stage {} twice", st));
  }
  if (!pretrained_window_size.empty()) {
    if (pretrained_window_size.size() != 3)
      fail(fmt::format("pretrained_window_size must be [] or 3 integers, got {}", pretrained_window_size.size()));
    for (auto w : pretrained_window_size)
      if (w < 1) fail(fmt::format("pretrained_window_size must be positive, got {}", w));
  }
}

bool SwinOptions::checkpoints_stage(int64_t i) const {
  if (!grad_checkpointing) return false;
  if (grad_checkpointing_stages.empty()) return true;
  return std::find(grad_checkpointing_stages.begin(), grad_checkpointing_stages.end(), i + 1) !=
         grad_checkpointing_stages.end();
}

const std::vector<SwinPreset>& presets() {
  static const std::vector<SwinPreset> p = {
      {"video_swin_t", "Video Swin-T (embed 96, depths 2,2,6,2)", 96, {2, 2, 6, 2}, {3, 6, 12, 24}, 0.1},
      {"video_swin_s", "Video Swin-S (embed 96, depths 2,2,18,2)", 96, {2, 2, 18, 2}, {3, 6, 12, 24}, 0.1},
      {"video_swin_b", "Video Swin-B (embed 128, depths 2,2,18,2)", 128, {2, 2, 18, 2}, {4, 8, 16, 32}, 0.3},
      {"video_swin_l", "Video Swin-L (embed 192, depths 2,2,18,2)", 192, {2, 2, 18, 2}, {6, 12, 24, 48}, 0.2},
  };
  return p;
}

SwinOptions options_for_preset(const SwinPreset& p) {
  SwinOptions o;
  o.embed_dim = p.embed_dim;
  o.depths = p.depths;
  o.num_heads = p.num_heads;
  o.drop_path_rate = p.drop_path_rate;
  return o;
}

std::vector<KeySpec> option_keys(const SwinOptions& b) {
  return {
      key("patch_size", to_vec(b.patch_size), "token size (t, h, w) of the 3D patch embedding"),
      key("in_chans", b.in_chans, "input channels"),
      key("embed_dim", b.embed_dim, "channels of stage 1 (doubled at every stage)"),
      key("depths", b.depths, "blocks per stage"),
      key("num_heads", b.num_heads, "attention heads per stage"),
      key("window_size", to_vec(b.window_size), "attention window (t, h, w); images use (h, w)"),
      key("mlp_ratio", b.mlp_ratio, "MLP hidden width / channels"),
      key("qkv_bias", b.qkv_bias, "bias in the qkv projection"),
      key("qk_scale", b.qk_scale, "attention scale; 0 = head_dim^-0.5"),
      key("drop_rate", b.drop_rate, "dropout after the patch embedding, in the MLP and after the projection"),
      key("attn_drop_rate", b.attn_drop_rate, "dropout on attention weights"),
      key("drop_path_rate", b.drop_path_rate, "stochastic depth, linear from 0 to this over all blocks"),
      key("patch_norm", b.patch_norm, "LayerNorm after the patch embedding"),
      key("norm_eps", b.norm_eps, "LayerNorm epsilon"),
      key("image_attention", std::string(b.image_attention == ImageAttention::Bevt ? "bevt" : "swin"),
          "image path: \"bevt\" = official BEVT quirks (mask in every block, no clamping), \"swin\" = standard 2D Swin"),
      key("grad_checkpointing", b.grad_checkpointing, "recompute each block in backward to save activation memory"),
      key("grad_checkpointing_stages", b.grad_checkpointing_stages,
          "with grad_checkpointing: the stages (1-based) whose blocks are recomputed; [] = every stage"),
      key("weights", b.weights, "safetensors file loaded at construction (\"\" = random init)"),
      key("pretrained_window_size", b.pretrained_window_size,
          "window (t, h, w) the weights were trained with, when it differs (tables are resized); [] = same"),
      key("inflate_2d", b.inflate_2d,
          "weights are a 2D Swin (ImageNet) checkpoint, or a bevt run trained on images only (BEVT-I, image "
          "classification), to inflate to 3D"),
  };
}

SwinOptions options_from_config(const Config& cfg, const SwinOptions& b) {
  SwinOptions o = b;
  if (cfg.has("patch_size")) o.patch_size = triple(cfg, "patch_size");
  o.in_chans = cfg.get_int("in_chans", b.in_chans);
  o.embed_dim = cfg.get_int("embed_dim", b.embed_dim);
  if (cfg.has("depths")) o.depths = cfg.get_int_list("depths");
  if (cfg.has("num_heads")) o.num_heads = cfg.get_int_list("num_heads");
  if (cfg.has("window_size")) o.window_size = triple(cfg, "window_size");
  o.mlp_ratio = cfg.get_float("mlp_ratio", b.mlp_ratio);
  o.qkv_bias = cfg.get_bool("qkv_bias", b.qkv_bias);
  o.qk_scale = cfg.get_float("qk_scale", b.qk_scale);
  o.drop_rate = cfg.get_float("drop_rate", b.drop_rate);
  o.attn_drop_rate = cfg.get_float("attn_drop_rate", b.attn_drop_rate);
  o.drop_path_rate = cfg.get_float("drop_path_rate", b.drop_path_rate);
  o.patch_norm = cfg.get_bool("patch_norm", b.patch_norm);
  o.norm_eps = cfg.get_float("norm_eps", b.norm_eps);
  if (cfg.has("image_attention")) {
    std::string m = cfg.get_string("image_attention");
    if (m == "bevt")
      o.image_attention = ImageAttention::Bevt;
    else if (m == "swin")
      o.image_attention = ImageAttention::Swin;
    else
      throw UserError(fmt::format("{}: image_attention must be \"bevt\" or \"swin\", got \"{}\"",
                                  cfg.where("image_attention"), m));
  }
  o.grad_checkpointing = cfg.get_bool("grad_checkpointing", b.grad_checkpointing);
  if (cfg.has("grad_checkpointing_stages")) o.grad_checkpointing_stages = cfg.get_int_list("grad_checkpointing_stages");
  o.weights = cfg.get_string("weights", b.weights);
  if (cfg.has("pretrained_window_size")) o.pretrained_window_size = cfg.get_int_list("pretrained_window_size");
  o.inflate_2d = cfg.get_bool("inflate_2d", b.inflate_2d);
  o.validate();
  return o;
}

}  // namespace bevt::swin
