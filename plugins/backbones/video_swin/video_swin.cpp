#include "video_swin.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bevt/error.h"

namespace bevt::swin {

VideoSwin::VideoSwin(const SwinOptions& o) : opts_(o) {
  opts_.validate();
  const int64_t C = o.embed_dim;
  patch_embed = register_module("patch_embed", PatchEmbed3D(o.patch_size, o.in_chans, C, o.patch_norm, o.norm_eps));
  patch_embed_2d = register_module(
      "patch_embed_2d", PatchEmbed2D(std::array<int64_t, 2>{o.patch_size[1], o.patch_size[2]}, o.in_chans, C, o.patch_norm, o.norm_eps));
  mask_token = register_parameter("mask_token", torch::zeros({1, 1, C}));
  layers = register_module("layers", torch::nn::ModuleList());
  int64_t total = 0;
  for (auto d : o.depths) total += d;
  int64_t k = 0;
  for (int64_t i = 0; i < o.num_stages(); ++i) {
    BlockOptions b;
    b.dim = o.stage_dim(i);
    b.heads = o.num_heads[static_cast<size_t>(i)];
    b.window = o.window_size;
    b.mlp_ratio = o.mlp_ratio;
    b.qk_scale = o.qk_scale;
    b.drop = o.drop_rate;
    b.attn_drop = o.attn_drop_rate;
    b.eps = o.norm_eps;
    b.qkv_bias = o.qkv_bias;
    std::vector<double> dp;
    for (int64_t j = 0; j < o.depths[static_cast<size_t>(i)]; ++j, ++k)
      dp.push_back(total > 1 ? o.drop_path_rate * static_cast<double>(k) / static_cast<double>(total - 1) : 0.0);
    SwinStage s(b, o.depths[static_cast<size_t>(i)], dp, i + 1 < o.num_stages());
    layers->push_back(s);
    stages_.push_back(s);
  }
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.stage_dim(o.num_stages() - 1)})
                                                          .eps(o.norm_eps)));
  init_weights();
}

void VideoSwin::init_weights() {
  torch::NoGradGuard ng;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* lin = m->as<torch::nn::Linear>()) {
      lin->weight.normal_(0, 0.02).clamp_(-2, 2);
      if (lin->bias.defined()) lin->bias.zero_();
    }
  }
  mask_token.normal_(0, 0.02).clamp_(-2, 2);
}

BackboneSpec VideoSwin::spec() const {
  BackboneSpec s;
  const auto& p = opts_.patch_size;
  s.patch = {p[0], p[1], p[2]};
  s.embed_dim = opts_.embed_dim;
  s.has_image_path = true;
  s.output = "out";
  s.stages.push_back({"patch_embed", opts_.embed_dim, {p[0], p[1], p[2]}});
  s.stages.push_back({"layers_in", opts_.embed_dim, {p[0], p[1], p[2]}});
  const int64_t n = opts_.num_stages();
  for (int64_t i = 0; i < n; ++i) {
    s.stages.push_back({fmt::format("stage{}", i + 1), opts_.stage_dim(i), {p[0], p[1] << i, p[2] << i}});
    if (i + 1 < n)
      s.stages.push_back({fmt::format("stage{}_down", i + 1), opts_.stage_dim(i + 1), {p[0], p[1] << (i + 1), p[2] << (i + 1)}});
  }
  s.stages.push_back({"out", opts_.stage_dim(n - 1), {p[0], p[1] << (n - 1), p[2] << (n - 1)}, /*normalised=*/true});
  return s;
}

const StagePlan& VideoSwin::plan_for(PlanMode mode, int64_t batch, const Dims3& grid, const torch::Device& device) {
  std::lock_guard<std::mutex> lock(plan_mutex_);
  const std::string dev = device.str();
  auto key = std::make_tuple(static_cast<int>(mode), batch, grid[0], grid[1], grid[2], dev);
  auto it = plans_.find(key);
  if (it == plans_.end())
    it = plans_.emplace(key, make_stage_plan(mode, batch, grid, opts_.window_size, device)).first;
  return *it->second;
}

torch::Tensor VideoSwin::insert_mask_token(const torch::Tensor& x, const torch::Tensor& mask,
                                           const std::vector<int64_t>& grid) {
  if (!mask.defined()) return x;
  if (mask.dim() < 1 || mask.size(0) != x.size(0))
    throw UserError(fmt::format("video_swin: mask batch {} does not match input batch {}",
                                mask.dim() ? mask.size(0) : 0, x.size(0)));
  auto m = upsample_mask(mask, grid).to(x.device()).unsqueeze(-1);
  return torch::where(m, mask_token.view({-1}).to(x.dtype()), x);
}

void VideoSwin::run_stages(torch::Tensor x, PlanMode mode, bool image, Features& f) {
  auto to_out = [image](const torch::Tensor& t) {
    // channels-last [B,D,H,W,C] -> [B,C,D,H,W] (or [B,C,H,W] for images); views, no copies.
    auto y = t.permute({0, 4, 1, 2, 3});
    return image ? y.squeeze(2) : y;
  };
  if (opts_.drop_rate > 0 && is_training()) x = torch::dropout(x, opts_.drop_rate, true);
  f.add("layers_in", to_out(x));
  const int64_t n = opts_.num_stages();
  const int64_t B = x.size(0);
  torch::Tensor last;
  for (int64_t i = 0; i < n; ++i) {
    Dims3 grid{x.size(1), x.size(2), x.size(3)};
    const StagePlan& plan = plan_for(mode, B, grid, x.device());
    auto [out, down] = stages_[static_cast<size_t>(i)]->forward(x, plan, opts_.checkpoints_stage(i));
    f.add(fmt::format("stage{}", i + 1), to_out(out));
    if (i + 1 < n) f.add(fmt::format("stage{}_down", i + 1), to_out(down));
    x = down;
    last = out;
  }
  f.add("out", to_out(norm->forward(last)));
}

Features VideoSwin::forward_video(const torch::Tensor& clip, const torch::Tensor& mask) {
  if (clip.dim() != 5)
    throw UserError(fmt::format("video_swin: forward_video expects a clip [B,{},T,H,W], got {} dims [{}]",
                                opts_.in_chans, clip.dim(), fmt::join(clip.sizes(), ",")));
  if (clip.size(1) != opts_.in_chans)
    throw UserError(fmt::format("video_swin: clip has {} channels, the model expects in_chans = {} (layout B,C,T,H,W)",
                                clip.size(1), opts_.in_chans));
  const auto& p = opts_.patch_size;
  if (clip.size(2) < p[0] || clip.size(3) < p[1] || clip.size(4) < p[2])
    throw UserError(fmt::format("video_swin: clip {}x{}x{} (T,H,W) is smaller than one patch {}x{}x{}", clip.size(2),
                                clip.size(3), clip.size(4), p[0], p[1], p[2]));
  Features f;
  auto x = patch_embed->forward(clip.to(torch::kFloat32));  // [B,T',H',W',C]
  f.add("patch_embed", x.permute({0, 4, 1, 2, 3}));
  x = insert_mask_token(x, mask, {x.size(1), x.size(2), x.size(3)});
  run_stages(x, PlanMode::Video, false, f);
  return f;
}

Features VideoSwin::forward_image(const torch::Tensor& image, const torch::Tensor& mask) {
  if (image.dim() != 4)
    throw UserError(fmt::format("video_swin: forward_image expects images [B,{},H,W], got {} dims [{}]",
                                opts_.in_chans, image.dim(), fmt::join(image.sizes(), ",")));
  if (image.size(1) != opts_.in_chans)
    throw UserError(fmt::format("video_swin: image has {} channels, the model expects in_chans = {} (layout B,C,H,W)",
                                image.size(1), opts_.in_chans));
  const auto& p = opts_.patch_size;
  if (image.size(2) < p[1] || image.size(3) < p[2])
    throw UserError(fmt::format("video_swin: image {}x{} is smaller than one patch {}x{}", image.size(2),
                                image.size(3), p[1], p[2]));
  Features f;
  auto x = patch_embed_2d->forward(image.to(torch::kFloat32));  // [B,H',W',C]
  f.add("patch_embed", x.permute({0, 3, 1, 2}));
  x = insert_mask_token(x, mask, {x.size(1), x.size(2)});
  auto mode = opts_.image_attention == ImageAttention::Bevt ? PlanMode::ImageBevt : PlanMode::ImageSwin;
  run_stages(x.unsqueeze(1), mode, true, f);
  return f;
}

torch::Tensor VideoSwin::final_norm(const torch::Tensor& x) { return norm->forward(x); }

// BEVT's K400 layer decay counts every block and every patch merging as a level: patch_embed 0,
// layers.i.blocks.j and then layers.i.downsample in order, the final norm on the last level (Swin-B: 28 levels,
// patch_embed at 0.9^28, layers.3.blocks.1 and norm at 0.9).
int64_t VideoSwin::num_layer_levels() const {
  int64_t n = 1;
  for (int64_t d : opts_.depths) n += d + 1;
  return n - 1;  // the last stage has no downsample
}

int64_t VideoSwin::layer_level(const std::string& name) const {
  if (name.rfind("patch_embed", 0) == 0 || name == "mask_token") return 0;
  if (name.rfind("layers.", 0) == 0) {
    size_t dot = name.find('.', 7);
    int64_t stage = std::stoll(name.substr(7, dot - 7));
    int64_t level = 1;
    for (int64_t k = 0; k < stage; ++k) level += opts_.depths[k] + 1;
    const std::string rest = name.substr(dot + 1);
    if (rest.rfind("blocks.", 0) == 0) return level + std::stoll(rest.substr(7));
    if (rest.rfind("downsample", 0) == 0) return level + opts_.depths[stage];
  }
  return num_layer_levels() - 1;
}

void VideoSwin::clear_caches() {
  for (auto& s : stages_)
    for (auto& b : s->block_list) b->attn->clear_cache();
}

}  // namespace bevt::swin
