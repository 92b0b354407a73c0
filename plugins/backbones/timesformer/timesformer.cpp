// Backbone "timesformer": TimeSformer's VisionTransformer with divided space-time attention
// (facebookresearch/TimeSformer timesformer/models/vit.py), plus the preset "timesformer_base" (ViT-B/16, 8
// frames of 224). Parameter names equal the official state dict (cls_token, pos_embed, time_embed,
// patch_embed.proj, blocks.i.{norm1,attn,temporal_norm1,temporal_attn,temporal_fc,norm2,mlp}, norm, head);
// official checkpoints load after their "model." prefix is stripped, ImageNet ViT checkpoints through the
// official temporal initialisation. Extra: mask_token (BEVT-style masked modelling), optional on load.
//
// Token layout (as the official): [cls, then patches in (h, w, t) order with t fastest].
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

#include "bevt/backbone.h"
#include "bevt/config.h"
#include "bevt/grad_checkpoint.h"
#include "bevt/error.h"
#include "bevt/log.h"
#include "bevt/plugin.h"
#include "bevt/safetensors.h"
#include "bevt/state_dict.h"

namespace {

namespace F = torch::nn::functional;
using torch::Tensor;

// Stochastic depth per sample (first dim), as timm's DropPath.
Tensor drop_path(const Tensor& x, double p, bool training) {
  if (p <= 0.0 || !training) return x;
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  Tensor keep = torch::empty(shape, x.options()).bernoulli_(1.0 - p);
  return x.div(1.0 - p) * keep;
}

void trunc_normal_(Tensor t, double std) {
  torch::NoGradGuard g;
  t.normal_(0.0, std).clamp_(-2.0, 2.0);  // timm truncates at +-2 absolute, i.e. far outside 0.02 std
}

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t dim, int64_t heads, bool qkv_bias, double attn_drop, double proj_drop)
      : heads(heads), scale(1.0 / std::sqrt(double(dim / heads))), attn_p(attn_drop), proj_p(proj_drop) {
    qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(qkv_bias)));
    proj = register_module("proj", torch::nn::Linear(dim, dim));
  }
  Tensor forward(const Tensor& x) {
    const int64_t B = x.size(0), N = x.size(1), C = x.size(2);
    Tensor q_k_v = qkv->forward(x).reshape({B, N, 3, heads, C / heads}).permute({2, 0, 3, 1, 4});
    Tensor q = q_k_v[0], k = q_k_v[1], v = q_k_v[2];
    Tensor attn = torch::matmul(q, k.transpose(-2, -1)) * scale;
    attn = F::dropout(attn.softmax(-1), F::DropoutFuncOptions().p(attn_p).training(is_training()));
    Tensor out = torch::matmul(attn, v).transpose(1, 2).reshape({B, N, C});
    return F::dropout(proj->forward(out), F::DropoutFuncOptions().p(proj_p).training(is_training()));
  }
  int64_t heads;
  double scale, attn_p, proj_p;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t dim, int64_t hidden, double drop) : p(drop) {
    fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
  }
  Tensor forward(const Tensor& x) {
    auto o = F::DropoutFuncOptions().p(p).training(is_training());
    Tensor h = F::dropout(torch::gelu(fc1->forward(x)), o);
    return F::dropout(fc2->forward(h), o);
  }
  double p;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

struct BlockImpl : torch::nn::Module {
  BlockImpl(int64_t dim, int64_t heads, double mlp_ratio, bool qkv_bias, double drop, double attn_drop, double dp,
            double eps)
      : dp(dp) {
    auto ln = [&](const char* name) {
      return register_module(name, torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps)));
    };
    norm1 = ln("norm1");
    attn = register_module("attn", Attention(dim, heads, qkv_bias, attn_drop, drop));
    temporal_norm1 = ln("temporal_norm1");
    temporal_attn = register_module("temporal_attn", Attention(dim, heads, qkv_bias, attn_drop, drop));
    temporal_fc = register_module("temporal_fc", torch::nn::Linear(dim, dim));
    norm2 = ln("norm2");
    mlp = register_module("mlp", Mlp(dim, static_cast<int64_t>(double(dim) * mlp_ratio), drop));
  }

  // x [B, 1 + h*w*T, C]. temporal=false: the image path (one frame, no temporal attention).
  Tensor forward(const Tensor& x, int64_t B, int64_t T, int64_t HW, bool temporal) {
    const int64_t C = x.size(2);
    const bool tr = is_training();
    Tensor cls_in = x.slice(1, 0, 1);
    Tensor xt = x.slice(1, 1);
    if (temporal) {
      Tensor r = drop_path(temporal_attn->forward(temporal_norm1->forward(xt.reshape({B * HW, T, C}))), dp, tr);
      xt = xt + temporal_fc->forward(r.reshape({B, HW * T, C}));
    }
    // Spatial attention per frame, with the cls token repeated for every frame.
    Tensor cls_rep = cls_in.expand({B, T, C}).reshape({B * T, 1, C});
    Tensor xs = xt.reshape({B, HW, T, C}).permute({0, 2, 1, 3}).reshape({B * T, HW, C});
    Tensor rs = drop_path(attn->forward(norm1->forward(torch::cat({cls_rep, xs}, 1))), dp, tr);
    Tensor cls_res = rs.select(1, 0).reshape({B, T, C}).mean(1, /*keepdim=*/true);
    Tensor patch_res = rs.slice(1, 1).reshape({B, T, HW, C}).permute({0, 2, 1, 3}).reshape({B, HW * T, C});
    Tensor y = torch::cat({cls_in, xt}, 1) + torch::cat({cls_res, patch_res}, 1);
    return y + drop_path(mlp->forward(norm2->forward(y)), dp, tr);
  }

  double dp;
  torch::nn::LayerNorm norm1{nullptr}, temporal_norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr}, temporal_attn{nullptr};
  torch::nn::Linear temporal_fc{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Block);


struct Settings {
  int64_t img_size, patch, in_chans, num_classes, dim, depth, heads, frames;
  double mlp_ratio, drop, attn_drop, drop_path, eps;
  bool qkv_bias, grad_ckpt;
  std::string weights;
  bool temporal_from_spatial = false;
};

std::vector<bevt::KeySpec> timesformer_keys(const Settings& d) {
  using bevt::key;
  return {
      key("img_size", d.img_size, "training image side (sizes pos_embed)"),
      key("patch_size", d.patch, "square patch side"),
      key("in_chans", d.in_chans, "input channels"),
      key("num_classes", d.num_classes, "classes of the linear head on the cls token (0: no head)"),
      key("embed_dim", d.dim, "token channels"),
      key("depth", d.depth, "blocks"),
      key("num_heads", d.heads, "attention heads"),
      key("mlp_ratio", d.mlp_ratio, "MLP hidden / embed_dim"),
      key("qkv_bias", d.qkv_bias, "bias in the qkv projections"),
      key("drop_rate", d.drop, "dropout after embeddings, projections and MLP"),
      key("attn_drop_rate", d.attn_drop, "dropout on attention weights"),
      key("drop_path_rate", d.drop_path, "stochastic depth, linear from 0 to this over the blocks"),
      key("num_frames", d.frames, "training frames (sizes time_embed)"),
      key("attention_type", "divided_space_time", "only \"divided_space_time\" is implemented"),
      key("dropout", 0.0, "accepted for compatibility; unused, as in the official code"),
      key("norm_eps", d.eps, "LayerNorm eps (official TimeSformer: 1e-6)"),
      key("weights", d.weights, "safetensors file with official (or ImageNet ViT) weights; \"\" = random init"),
      key("grad_checkpointing", d.grad_ckpt, "recompute blocks in backward to save memory"),
      key("temporal_from_spatial", d.temporal_from_spatial,
          "when loading weights (weights, init.checkpoint), initialise the temporal weights from the spatial ones "
          "as the official ImageNet initialisation does (attn -> temporal_attn, norm1 -> temporal_norm1, "
          "temporal_fc and time_embed zero) even if the checkpoint has temporal weights: BEVT's video stream "
          "started from an image-stream (BEVT-I) checkpoint, whose temporal weights were never trained"),
  };
}

// The official VisionTransformer constructor's defaults, and the TimeSformer wrapper's base model as a backbone.
const Settings kOfficialDefaults{224, 16, 3, 1000, 768, 12, 12, 8, 4.0, 0.0, 0.0, 0.1, 1e-5, false, false, ""};
const Settings kBaseDefaults{224, 16, 3, 0, 768, 12, 12, 8, 4.0, 0.0, 0.0, 0.1, 1e-6, true, false, ""};
// A TimeSformer for the built-in 64x64 synthetic clips (the quickstart): patch 16 gives 4x4 tokens per frame,
// the grid of the quickstart's tokenizer (32x32 views, downsample 8); 8 frames, 4 blocks of 128 channels.
const Settings kTinyDefaults{64, 16, 3, 0, 128, 4, 4, 8, 4.0, 0.0, 0.0, 0.1, 1e-6, true, false, ""};

class TimeSformer : public bevt::Backbone {
 public:
  explicit TimeSformer(const bevt::Config& cfg) {
    s_.img_size = cfg.get_int("img_size");
    s_.patch = cfg.get_int("patch_size");
    s_.in_chans = cfg.get_int("in_chans");
    s_.num_classes = cfg.get_int("num_classes");
    s_.dim = cfg.get_int("embed_dim");
    s_.depth = cfg.get_int("depth");
    s_.heads = cfg.get_int("num_heads");
    s_.frames = cfg.get_int("num_frames");
    s_.mlp_ratio = cfg.get_float("mlp_ratio");
    s_.drop = cfg.get_float("drop_rate");
    s_.attn_drop = cfg.get_float("attn_drop_rate");
    s_.drop_path = cfg.get_float("drop_path_rate");
    s_.eps = cfg.get_float("norm_eps");
    s_.qkv_bias = cfg.get_bool("qkv_bias");
    s_.grad_ckpt = cfg.get_bool("grad_checkpointing");
    s_.temporal_from_spatial = cfg.get_bool("temporal_from_spatial");
    auto need = [&](bool ok, const char* k, const std::string& what) {
      if (!ok) throw bevt::UserError(fmt::format("{}: {} must be {}", cfg.where(k), k, what));
    };
    std::string att = cfg.get_string("attention_type");
    need(att == "divided_space_time", "attention_type",
         fmt::format("\"divided_space_time\" (got \"{}\"; this plugin supports only divided space-time attention)", att));
    need(s_.patch > 0, "patch_size", "> 0");
    need(s_.img_size > 0 && s_.img_size % s_.patch == 0, "img_size", "a positive multiple of patch_size");
    need(s_.in_chans > 0, "in_chans", "> 0");
    need(s_.num_classes >= 0, "num_classes", ">= 0");
    need(s_.heads > 0, "num_heads", "> 0");
    need(s_.dim > 0 && s_.dim % s_.heads == 0, "embed_dim", "a positive multiple of num_heads");
    need(s_.depth > 0, "depth", "> 0");
    need(s_.frames > 0, "num_frames", "> 0");
    need(s_.mlp_ratio > 0, "mlp_ratio", "> 0");
    for (const char* k : {"drop_rate", "attn_drop_rate", "drop_path_rate"})
      need(cfg.get_float(k) >= 0 && cfg.get_float(k) < 1, k, "in [0, 1)");
    need(s_.eps > 0, "norm_eps", "> 0");

    const int64_t grid = s_.img_size / s_.patch, C = s_.dim;
    patch_embed_ = register_module("patch_embed", std::make_shared<torch::nn::Module>());
    proj_ = patch_embed_->register_module(
        "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(s_.in_chans, C, s_.patch).stride(s_.patch)));
    cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, C}));
    pos_embed_ = register_parameter("pos_embed", torch::zeros({1, grid * grid + 1, C}));
    time_embed_ = register_parameter("time_embed", torch::zeros({1, s_.frames, C}));
    mask_token_ = register_parameter("mask_token", torch::zeros({1, 1, C}));
    blocks_ = register_module("blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < s_.depth; ++i) {
      double dp = s_.depth > 1 ? s_.drop_path * double(i) / double(s_.depth - 1) : 0.0;
      Block b(C, s_.heads, s_.mlp_ratio, s_.qkv_bias, s_.drop, s_.attn_drop, dp, s_.eps);
      blocks_->push_back(b);
      block_list_.push_back(b);
    }
    norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C}).eps(s_.eps)));
    if (s_.num_classes > 0) head_ = register_module("head", torch::nn::Linear(C, s_.num_classes));
    init_weights();

    std::string path = cfg.get_string("weights");
    if (!path.empty()) {
      if (!std::filesystem::exists(path))
        throw bevt::UserError(fmt::format(
            "{}: TimeSformer weights '{}' not found; convert an official .pyth/.pth checkpoint to safetensors "
            "(its state dict, 'model.' prefix allowed) and give its path",
            cfg.where("weights"), path));
      bevt::LoadOptions lo;
      lo.source = path;
      load_weights(bevt::load_safetensors(path).tensors, lo);
    }
  }

  bevt::BackboneSpec spec() const override {
    bevt::BackboneSpec sp;
    // "out": the normed patch tokens on the patch grid (BEVT's decoders predict from it directly);
    // "features": the normed cls token [B, C], what the official head classifies.
    sp.stages.push_back({"out", s_.dim, {1, s_.patch, s_.patch}, /*normalised=*/true});
    sp.stages.push_back({"features", s_.dim, {0, 0, 0}, /*normalised=*/true});
    sp.patch = {1, s_.patch, s_.patch};
    sp.embed_dim = s_.dim;
    sp.has_image_path = true;
    sp.output = "out";
    return sp;
  }

  void set_grad_checkpointing(bool on) override { s_.grad_ckpt = on; }

  // BEiT's ViT levels: embeddings (patch, cls, positions, times, mask token) at 0, blocks.i at i + 1, the final
  // norm (and anything else) on the last level.
  int64_t num_layer_levels() const override { return s_.depth + 1; }
  int64_t layer_level(const std::string& name) const override {
    if (name.rfind("blocks.", 0) == 0) return 1 + std::stoll(name.substr(7));
    if (name.rfind("norm", 0) == 0 || name.rfind("head", 0) == 0) return s_.depth;
    return 0;
  }

  bevt::Features forward_video(const Tensor& clip, const Tensor& mask) override {
    if (clip.dim() != 5 || clip.size(1) != s_.in_chans)
      throw bevt::UserError(fmt::format("timesformer: video input must be [B,{},T,H,W], got [{}]", s_.in_chans,
                                        fmt::join(clip.sizes(), ",")));
    check_hw(clip.size(3), clip.size(4));
    const int64_t B = clip.size(0), T = clip.size(2), H = clip.size(3), W = clip.size(4);
    const int64_t h = H / s_.patch, w = W / s_.patch, C = s_.dim;
    Tensor frames = clip.to(torch::kFloat32).permute({0, 2, 1, 3, 4}).reshape({B * T, s_.in_chans, H, W});
    Tensor x = proj_->forward(frames).flatten(2).transpose(1, 2);  // [(b t), hw, C]
    if (mask.defined()) {
      Tensor m = bevt::upsample_mask(mask, {T, h, w}).reshape({B * T, h * w, 1}).to(x.dtype());
      x = x * (1 - m) + mask_token_ * m;
    }
    x = torch::cat({cls_token_.expand({B * T, 1, C}), x}, 1) + pos_embed_for(h, w);
    x = drop(x);
    // Time embedding: cls of the first rows (all rows' cls are equal), patches regrouped per spatial position.
    Tensor cls = x.slice(0, 0, B).slice(1, 0, 1);
    Tensor p = x.slice(1, 1).reshape({B, T, h * w, C}).permute({0, 2, 1, 3}).reshape({B * h * w, T, C});
    p = drop(p + time_embed_for(T));
    x = torch::cat({cls, p.reshape({B, h * w * T, C})}, 1);
    return run_blocks(x, B, T, h, w, true);
  }

  bevt::Features forward_image(const Tensor& image, const Tensor& mask) override {
    if (image.dim() != 4 || image.size(1) != s_.in_chans)
      throw bevt::UserError(fmt::format("timesformer: image input must be [B,{},H,W], got [{}]", s_.in_chans,
                                        fmt::join(image.sizes(), ",")));
    check_hw(image.size(2), image.size(3));
    const int64_t B = image.size(0), h = image.size(2) / s_.patch, w = image.size(3) / s_.patch, C = s_.dim;
    Tensor x = proj_->forward(image.to(torch::kFloat32)).flatten(2).transpose(1, 2);
    if (mask.defined()) {
      Tensor m = bevt::upsample_mask(mask, {h, w}).reshape({B, h * w, 1}).to(x.dtype());
      x = x * (1 - m) + mask_token_ * m;
    }
    x = drop(torch::cat({cls_token_.expand({B, 1, C}), x}, 1) + pos_embed_for(h, w));
    return run_blocks(x, B, 1, h, w, false);
  }

  Tensor final_norm(const Tensor& x) override { return norm_->forward(x); }

  bevt::LoadReport load_weights(const bevt::TensorMap& tensors, const bevt::LoadOptions& opts) override {
    bevt::TensorMap t = bevt::strip_prefixes(tensors, opts.strip_prefixes);
    bevt::LoadOptions o = opts;
    o.strip_prefixes.clear();
    o.optional_suffixes.push_back("mask_token");
    const int64_t C = s_.dim;
    const bool has_temporal = std::any_of(t.begin(), t.end(), [](const auto& kv) {
      return kv.first.find("temporal_attn.") != std::string::npos;
    });
    const bool spatial_init = (!has_temporal || s_.temporal_from_spatial) && t.count("blocks.0.attn.qkv.weight");
    if (spatial_init && has_temporal) {  // temporal_from_spatial: the checkpoint's temporal weights are replaced
      for (auto it = t.begin(); it != t.end();) {
        const std::string& k = it->first;
        const bool temporal = k == "time_embed" || k.find(".temporal_attn.") != std::string::npos ||
                              k.find(".temporal_norm1.") != std::string::npos ||
                              k.find(".temporal_fc.") != std::string::npos;
        it = temporal ? t.erase(it) : std::next(it);
      }
    }
    if (spatial_init) {
      // ImageNet ViT: the official temporal initialisation (attn -> temporal_attn, norm1 -> temporal_norm1,
      // temporal_fc zero, time_embed zero), and its 1000-class head dropped when the class count differs.
      bevt::TensorMap add;
      for (const auto& [k, v] : t) {
        if (k.rfind("blocks.", 0) != 0) continue;
        auto at = k.find(".attn.");
        if (at != std::string::npos) add[k.substr(0, at) + ".temporal_attn." + k.substr(at + 6)] = v;
        auto n1 = k.find(".norm1.");
        if (n1 != std::string::npos) add[k.substr(0, n1) + ".temporal_norm1." + k.substr(n1 + 7)] = v;
      }
      for (auto& kv : add) t.emplace(kv.first, kv.second);
      for (int64_t i = 0; i < s_.depth; ++i) {
        t.emplace(fmt::format("blocks.{}.temporal_fc.weight", i), torch::zeros({C, C}));
        t.emplace(fmt::format("blocks.{}.temporal_fc.bias", i), torch::zeros({C}));
      }
      t.emplace("time_embed", torch::zeros({1, s_.frames, C}));
      auto hw = t.find("head.weight");
      if (hw != t.end() && (!head_ || hw->second.size(0) != s_.num_classes)) {
        bevt::log_info("timesformer: ImageNet checkpoint {}: head ({} classes) not loaded", opts.source,
                       hw->second.size(0));
        t.erase("head.weight");
        t.erase("head.bias");
      }
      if (!t.count("head.weight")) {  // the head keeps its initialisation, as with the official strict=False
        o.optional_suffixes.push_back("head.weight");
        o.optional_suffixes.push_back("head.bias");
      }
      bevt::log_info("timesformer: {}: temporal weights initialised from the spatial ones (official ImageNet "
                     "initialisation{})",
                     opts.source, has_temporal ? "; temporal_from_spatial replaced the checkpoint's" : "");
    }
    if (!head_ && t.count("head.weight")) {  // a classification checkpoint used as a backbone
      bevt::log_info("timesformer: {}: head not loaded (num_classes = 0)", opts.source);
      t.erase("head.weight");
      t.erase("head.bias");
    }
    // Resize embeddings trained for another grid or frame count (nearest, as the official forward does).
    auto pe = t.find("pos_embed");
    if (pe != t.end() && pe->second.dim() == 3 && pe->second.size(1) != pos_embed_.size(1)) {
      const int64_t g = s_.img_size / s_.patch;
      pe->second = resize_pos(pe->second, g, g);
    }
    auto te = t.find("time_embed");
    if (te != t.end() && te->second.dim() == 3 && te->second.size(1) != s_.frames)
      te->second = resize_time(te->second, s_.frames);
    return bevt::load_state_dict(*this, t, o);
  }

  bevt::TensorMap export_weights() const override { return bevt::state_dict(*this); }

 private:
  void init_weights() {
    torch::NoGradGuard g;
    trunc_normal_(pos_embed_, 0.02);
    trunc_normal_(cls_token_, 0.02);
    trunc_normal_(mask_token_, 0.02);
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* lin = m->as<torch::nn::Linear>()) {
        trunc_normal_(lin->weight, 0.02);
        if (lin->bias.defined()) lin->bias.zero_();
      } else if (auto* ln = m->as<torch::nn::LayerNorm>()) {
        ln->weight.fill_(1.0);
        ln->bias.zero_();
      }
    }
    for (auto& b : block_list_) {  // the official zero-initialises every temporal_fc
      b->temporal_fc->weight.zero_();
      b->temporal_fc->bias.zero_();
    }
  }

  void check_hw(int64_t H, int64_t W) const {
    if (H < s_.patch || W < s_.patch || H % s_.patch != 0 || W % s_.patch != 0)
      throw bevt::UserError(fmt::format("timesformer: frame size {}x{} must be a positive multiple of the patch "
                                        "size {}",
                                        H, W, s_.patch));
  }

  Tensor drop(const Tensor& x) const {
    return F::dropout(x, F::DropoutFuncOptions().p(s_.drop).training(is_training()));
  }

  // pos_embed [1, 1+P*P, C] → [1, 1+h*w, C], nearest on the square grid (cls entry kept).
  static Tensor resize_pos(const Tensor& pe, int64_t h, int64_t w) {
    const int64_t n = pe.size(1) - 1, C = pe.size(2);
    const auto P = static_cast<int64_t>(std::llround(std::sqrt(double(n))));
    if (P * P != n)
      throw bevt::UserError(fmt::format("timesformer: pos_embed with {} patch entries is not a square grid", n));
    Tensor grid = pe.slice(1, 1).transpose(1, 2).reshape({1, C, P, P});
    Tensor r = F::interpolate(grid, F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kNearest));
    return torch::cat({pe.slice(1, 0, 1), r.flatten(2).transpose(1, 2)}, 1);
  }
  static Tensor resize_time(const Tensor& te, int64_t T) {
    Tensor r = F::interpolate(te.transpose(1, 2),
                              F::InterpolateFuncOptions().size(std::vector<int64_t>{T}).mode(torch::kNearest));
    return r.transpose(1, 2);
  }
  Tensor pos_embed_for(int64_t h, int64_t w) const {
    return pos_embed_.size(1) == 1 + h * w ? pos_embed_ : resize_pos(pos_embed_, h, w);
  }
  Tensor time_embed_for(int64_t T) const { return T == time_embed_.size(1) ? time_embed_ : resize_time(time_embed_, T); }

  bevt::Features run_blocks(Tensor x, int64_t B, int64_t T, int64_t h, int64_t w, bool temporal) {
    bevt::Features f;
    f.add("embed", x);
    const bool ckpt = s_.grad_ckpt && is_training() && torch::GradMode::is_enabled();
    for (size_t i = 0; i < block_list_.size(); ++i) {
      if (ckpt) {
        auto* blk = block_list_[i].get();
        const int64_t hw = h * w;
        x = bevt::checkpoint([blk, B, T, hw, temporal](const Tensor& in) { return blk->forward(in, B, T, hw, temporal); },
                             x, blk->norm1->weight);
      } else {
        x = block_list_[i]->forward(x, B, T, h * w, temporal);
      }
      f.add(fmt::format("block{}", i), x);
    }
    Tensor n = norm_->forward(x);
    Tensor feat = n.select(1, 0);
    f.add("features", feat);
    if (head_) f.add("logits", head_->forward(feat));
    Tensor patches = n.slice(1, 1);
    if (temporal)
      f.add("out", patches.reshape({B, h, w, T, s_.dim}).permute({0, 4, 3, 1, 2}));
    else
      f.add("out", patches.reshape({B, h, w, s_.dim}).permute({0, 3, 1, 2}));
    return f;
  }

  Settings s_{};
  std::shared_ptr<torch::nn::Module> patch_embed_;
  torch::nn::Conv2d proj_{nullptr};
  Tensor cls_token_, pos_embed_, time_embed_, mask_token_;
  torch::nn::ModuleList blocks_{nullptr};
  std::vector<Block> block_list_;
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear head_{nullptr};
};

// "timesformer": every key of the official constructor (defaults as the official TimeSformer wrapper).
class TimeSformerPlugin : public TimeSformer {
 public:
  static std::vector<bevt::KeySpec> keys() { return timesformer_keys(kOfficialDefaults); }
  using TimeSformer::TimeSformer;
};

// "timesformer_tiny": the quickstart's small model for the 64x64 synthetic data.
class TimeSformerTiny : public TimeSformer {
 public:
  static std::vector<bevt::KeySpec> keys() { return timesformer_keys(kTinyDefaults); }
  using TimeSformer::TimeSformer;
};

// "timesformer_base": the published ViT-B/16 model, 8 frames of 224 (TimeSformer_divST_8x32_224).
class TimeSformerBase : public TimeSformer {
 public:
  static std::vector<bevt::KeySpec> keys() { return timesformer_keys(kBaseDefaults); }
  using TimeSformer::TimeSformer;
};

}  // namespace

BEVT_REGISTER(bevt::plugin<bevt::Backbone, TimeSformerPlugin>(
                  "timesformer", "TimeSformer ViT with divided space-time attention (official parameter names)")
                  .with_official_names({"VisionTransformer"}));
BEVT_REGISTER(bevt::plugin<bevt::Backbone, TimeSformerBase>(
    "timesformer_base", "TimeSformer-B/16 preset: 768 channels, 12 blocks, 12 heads, 8 frames of 224"));
BEVT_REGISTER(bevt::plugin<bevt::Backbone, TimeSformerTiny>(
    "timesformer_tiny", "TimeSformer for 64x64 synthetic clips (quickstart): patch 16, 128 channels, 4 blocks, 4 heads, "
                        "8 frames"));
