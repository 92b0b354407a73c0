// A small but complete backbone plugin, built out of tree against the installed SDK (see docs/plugins.md).
// Copy this folder, rename the plugin, and replace the network: the host needs nothing else.
//
// The network: a 3D conv stem (the patch embedding: tokens of patch_t × patch × patch pixels), BEVT-style mask
// token insertion, then `stages` residual conv stages, each halving H and W and doubling channels; a final
// LayerNorm. Images go through the same weights as one-frame clips.
#include "bevt/sdk.h"

namespace {

class TemplateBackbone : public bevt::Backbone {
 public:
  static std::vector<bevt::KeySpec> keys() {
    return {
        bevt::key("embed_dim", 32, "channels after the stem"),
        bevt::key("stages", 2, "residual stages after the stem (each halves H and W, doubles channels)"),
        bevt::key("patch", std::vector<int64_t>{2, 4, 4}, "stem kernel and stride (t, h, w)"),
        bevt::key("weights", "", "safetensors file to load at construction ('' = random init)"),
    };
  }

  explicit TemplateBackbone(const bevt::Config& cfg)
      : embed_dim_(cfg.get_int("embed_dim")), patch_(cfg.get_int_list("patch")) {
    int64_t stages = cfg.get_int("stages");
    if (embed_dim_ <= 0) throw bevt::UserError(cfg.where("embed_dim") + ": embed_dim must be positive");
    if (patch_.size() != 3) throw bevt::UserError(cfg.where("patch") + ": patch must be [t, h, w]");
    if (stages < 0 || stages > 4) throw bevt::UserError(cfg.where("stages") + ": stages must be in 0..4");
    // Module names are the state-dict names: keep them stable, checkpoints depend on them.
    stem_ = register_module("stem", torch::nn::Conv3d(torch::nn::Conv3dOptions(3, embed_dim_, patch_).stride(patch_)));
    mask_token_ = register_parameter("mask_token", torch::zeros({1, embed_dim_, 1, 1, 1}));
    int64_t c = embed_dim_;
    for (int64_t i = 0; i < stages; ++i) {
      auto down = torch::nn::Conv3d(torch::nn::Conv3dOptions(c, 2 * c, {1, 3, 3}).stride({1, 2, 2}).padding({0, 1, 1}));
      auto mix = torch::nn::Conv3d(torch::nn::Conv3dOptions(2 * c, 2 * c, 3).padding(1));
      stages_down_.push_back(register_module("down" + std::to_string(i), down));
      stages_mix_.push_back(register_module("mix" + std::to_string(i), mix));
      c *= 2;
    }
    out_channels_ = c;
    norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
    std::string weights = cfg.get_string("weights");
    if (!weights.empty()) {
      bevt::LoadOptions o;
      o.source = weights;
      load_weights(bevt::load_safetensors(weights).tensors, o);
    }
  }

  bevt::BackboneSpec spec() const override {
    bevt::BackboneSpec s;
    s.patch = {patch_[0], patch_[1], patch_[2]};
    s.embed_dim = embed_dim_;
    s.has_image_path = true;
    s.output = "out";
    int64_t c = embed_dim_, stride = patch_[1];
    s.stages.push_back({"stem", c, {patch_[0], stride, stride}});
    for (size_t i = 0; i < stages_down_.size(); ++i) {
      c *= 2;
      stride *= 2;
      s.stages.push_back({"stage" + std::to_string(i + 1), c, {patch_[0], stride, stride}});
    }
    s.stages.push_back({"out", out_channels_, {patch_[0], stride, stride}});
    return s;
  }

  bevt::Features forward_video(const torch::Tensor& clip, const torch::Tensor& mask) override {
    if (clip.dim() != 5 || clip.size(1) != 3)
      throw bevt::UserError("template_backbone: expected a clip [B,3,T,H,W]");
    if (clip.size(2) < patch_[0] || clip.size(3) < patch_[1] || clip.size(4) < patch_[2])
      throw bevt::UserError("template_backbone: the clip is smaller than one patch");
    bevt::Features f;
    torch::Tensor x = stem_->forward(clip);
    if (mask.defined()) {
      auto m = bevt::upsample_mask(mask, {x.size(2), x.size(3), x.size(4)}).unsqueeze(1).to(x.dtype());
      x = x * (1 - m) + mask_token_ * m;
    }
    f.add("stem", x);
    for (size_t i = 0; i < stages_down_.size(); ++i) {
      x = stages_down_[i]->forward(x);
      x = x + torch::gelu(stages_mix_[i]->forward(x));
      f.add("stage" + std::to_string(i + 1), x);
    }
    f.add("out", final_norm(x.permute({0, 2, 3, 4, 1})).permute({0, 4, 1, 2, 3}).contiguous());
    return f;
  }

  bevt::Features forward_image(const torch::Tensor& image, const torch::Tensor& mask) override {
    if (image.dim() != 4) throw bevt::UserError("template_backbone: expected images [B,3,H,W]");
    // One-frame clip: repeat to the temporal patch size so the stem sees a full patch.
    torch::Tensor clip = image.unsqueeze(2).expand({-1, -1, patch_[0], -1, -1});
    bevt::Features video = forward_video(clip, mask.defined() ? mask.unsqueeze(1) : mask);
    bevt::Features f;
    for (const auto& [name, t] : video.items()) f.add(name, t.squeeze(2));
    return f;
  }

  torch::Tensor final_norm(const torch::Tensor& x) override { return norm_->forward(x); }

 private:
  int64_t embed_dim_, out_channels_ = 0;
  std::vector<int64_t> patch_;
  torch::nn::Conv3d stem_{nullptr};
  torch::Tensor mask_token_;
  std::vector<torch::nn::Conv3d> stages_down_, stages_mix_;
  torch::nn::LayerNorm norm_{nullptr};
};

}  // namespace

BEVT_REGISTER(bevt::plugin<bevt::Backbone, TemplateBackbone>("template_backbone",
                                                            "example out-of-tree backbone: conv stem + residual stages"));
