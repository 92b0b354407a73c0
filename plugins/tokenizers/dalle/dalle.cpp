// Tokenizer "dalle": OpenAI's DALL-E discrete-VAE encoder (openai/DALL-E dall_e/encoder.py), frozen, as BEiT and
// BEVT use it for their masked-modelling targets. Module and parameter names equal the official state dict
// (blocks.input.w, blocks.group_2.block_1.id_path.b, ..., blocks.output.conv.w), so a safetensors export of
// encoder.pkl's state_dict() loads strictly.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bevt/config.h"
#include "bevt/error.h"
#include "bevt/plugin.h"
#include "bevt/safetensors.h"
#include "bevt/state_dict.h"
#include "bevt/tokenizer.h"

namespace {

// The official square convolution: parameters `w` [out, in, k, k] and `b` [out], "same" padding (k-1)/2.
class DalleConv : public torch::nn::Module {
 public:
  DalleConv(int64_t n_in, int64_t n_out, int64_t kw) : pad_((kw - 1) / 2) {
    // Official init: w ~ N(0, 1/sqrt(n_in*kw^2)), b = 0 (real use loads trained weights anyway).
    w_ = register_parameter("w", torch::randn({n_out, n_in, kw, kw}) / std::sqrt(double(n_in * kw * kw)));
    b_ = register_parameter("b", torch::zeros({n_out}));
  }
  torch::Tensor forward(const torch::Tensor& x) const {
    return torch::conv2d(x, w_, b_, /*stride=*/1, /*padding=*/pad_);
  }

 private:
  int64_t pad_;
  torch::Tensor w_, b_;
};

// Pre-activation residual block: id_path(x) + post_gain * res_path(x), res_path = 3 ReLU-conv3x3 (n_out/4
// channels) and a ReLU-conv1x1 back to n_out; id_path is a 1x1 conv only when the width changes.
class EncoderBlock : public torch::nn::Module {
 public:
  EncoderBlock(int64_t n_in, int64_t n_out, int64_t n_layers)
      : post_gain_(1.0 / double(n_layers * n_layers)) {
    const int64_t n_hid = n_out / 4;
    if (n_in != n_out) id_path_ = register_module("id_path", std::make_shared<DalleConv>(n_in, n_out, 1));
    auto res = std::make_shared<torch::nn::Module>();
    conv_[0] = std::make_shared<DalleConv>(n_in, n_hid, 3);
    conv_[1] = std::make_shared<DalleConv>(n_hid, n_hid, 3);
    conv_[2] = std::make_shared<DalleConv>(n_hid, n_hid, 3);
    conv_[3] = std::make_shared<DalleConv>(n_hid, n_out, 1);
    for (int i = 0; i < 4; ++i) res->register_module(fmt::format("conv_{}", i + 1), conv_[i]);
    register_module("res_path", res);
  }
  // Frozen and run under no-grad: the residual path's temporaries are updated in place (x itself is kept for
  // the identity path); a + g*h and (h*g) + a round alike, so the result equals the official expression.
  torch::Tensor forward(const torch::Tensor& x) const {
    torch::Tensor h = conv_[0]->forward(torch::relu(x));
    for (size_t i = 1; i < 4; ++i) h = conv_[i]->forward(h.relu_());
    torch::Tensor id = id_path_ ? id_path_->forward(x) : x;
    return h.mul_(post_gain_).add_(id);
  }

 private:
  double post_gain_;
  std::shared_ptr<DalleConv> id_path_;
  std::shared_ptr<DalleConv> conv_[4];
};

constexpr const char* kEncoderUrl = "https://cdn.openai.com/dall-e/encoder.pkl";

class DalleTokenizer : public bevt::Tokenizer {
 public:
  static std::vector<bevt::KeySpec> keys() {
    using bevt::key;
    return {
        key("group_count", int64_t{4}, "groups of blocks; a 2x max-pool between groups (official: 4)"),
        key("n_hid", int64_t{256}, "channels of the first group (doubled per group)"),
        key("n_blk_per_group", int64_t{2}, "residual blocks per group"),
        key("input_channels", int64_t{3}, "image channels"),
        key("vocab_size", int64_t{8192}, "codebook size (logit channels)"),
        key("logit_laplace_eps", 0.1, "map_pixels eps: x*(1-2eps)+eps"),
        key("input_size", int64_t{112}, "side of the square images the tokenizer expects (BEVT: 112)"),
        key("weights", "",
            "safetensors file of the encoder's state dict (build/bin/bevt-convert dalle); \"\" = random"),
    };
  }

  explicit DalleTokenizer(const bevt::Config& cfg)
      : group_count_(cfg.get_int("group_count")),
        n_hid_(cfg.get_int("n_hid")),
        n_blk_(cfg.get_int("n_blk_per_group")),
        in_ch_(cfg.get_int("input_channels")),
        vocab_(cfg.get_int("vocab_size")),
        eps_(cfg.get_float("logit_laplace_eps")),
        input_size_(cfg.get_int("input_size")) {
    auto need = [&](bool ok, const char* k, const std::string& what) {
      if (!ok) throw bevt::UserError(fmt::format("{}: {} must be {}", cfg.where(k), k, what));
    };
    need(group_count_ >= 1 && group_count_ <= 8, "group_count", "in 1..8");
    need(n_hid_ >= 4 && n_hid_ % 4 == 0, "n_hid", "a positive multiple of 4");
    need(n_blk_ >= 1, "n_blk_per_group", ">= 1");
    need(in_ch_ >= 1, "input_channels", ">= 1");
    need(vocab_ >= 2, "vocab_size", ">= 2");
    need(eps_ >= 0 && eps_ < 0.5, "logit_laplace_eps", "in [0, 0.5)");
    need(input_size_ > 0 && input_size_ % downsample() == 0, "input_size",
         fmt::format("a positive multiple of the downsampling factor {}", downsample()));

    const int64_t n_layers = group_count_ * n_blk_;
    blocks_ = register_module("blocks", std::make_shared<torch::nn::Module>());
    input_ = blocks_->register_module("input", std::make_shared<DalleConv>(in_ch_, n_hid_, 7));
    int64_t width = n_hid_;
    for (int64_t g = 0; g < group_count_; ++g) {
      auto group = std::make_shared<torch::nn::Module>();
      const int64_t out = n_hid_ << g;
      std::vector<std::shared_ptr<EncoderBlock>> blks;
      for (int64_t k = 0; k < n_blk_; ++k) {
        auto blk = std::make_shared<EncoderBlock>(k == 0 ? width : out, out, n_layers);
        group->register_module(fmt::format("block_{}", k + 1), blk);
        blks.push_back(blk);
      }
      width = out;
      blocks_->register_module(fmt::format("group_{}", g + 1), group);
      groups_.push_back(std::move(blks));
    }
    auto output = blocks_->register_module("output", std::make_shared<torch::nn::Module>());
    out_conv_ = output->register_module("conv", std::make_shared<DalleConv>(width, vocab_, 1));

    freeze();
    std::string path = cfg.get_string("weights");
    loaded_ = !path.empty();
    if (!path.empty()) {
      if (!std::filesystem::exists(path))
        throw bevt::UserError(fmt::format(
            "{}: DALL-E weights '{}' not found; download OpenAI's encoder.pkl ({}) and convert it with "
            "`build/bin/bevt-convert dalle encoder.pkl {}` (tools/convert_dalle.py; see docs/tokenizers.md)",
            cfg.where("weights"), path, kEncoderUrl, path));
      bevt::LoadOptions lo;
      lo.source = path;
      load_weights(bevt::load_safetensors(path).tensors, lo);
    }
  }

  bool has_trained_weights() const override { return loaded_; }
  int64_t vocab_size() const override { return vocab_; }
  int64_t input_size() const override { return input_size_; }
  int64_t downsample() const override { return int64_t{1} << (group_count_ - 1); }

  torch::Tensor prepare(const torch::Tensor& images) override {
    return images.to(torch::kFloat32) * (1.0 - 2.0 * eps_) + eps_;
  }

  torch::Tensor logits(const torch::Tensor& prepared) override {
    if (prepared.dim() != 4 || prepared.size(1) != in_ch_)
      throw bevt::UserError(fmt::format("dalle: input must be [N,{},H,W], got [{}]", in_ch_,
                                        fmt::join(prepared.sizes(), ",")));
    const int64_t f = downsample();
    if (prepared.size(2) % f != 0 || prepared.size(3) % f != 0)
      throw bevt::UserError(fmt::format("dalle: image size {}x{} is not a multiple of the downsampling factor {}",
                                        prepared.size(2), prepared.size(3), f));
    torch::NoGradGuard no_grad;
    // Channels-last activations: oneDNN's convolutions run about 1.5x faster on NHWC than on NCHW on CPU, and
    // relu, add and max-pool keep the layout, so only this one conversion is made (the logits come out NHWC;
    // argmax over channels reads them as they are).
    torch::Tensor x =
        input_->forward(prepared.to(torch::kFloat32).contiguous(at::MemoryFormat::ChannelsLast));
    for (size_t g = 0; g < groups_.size(); ++g) {
      for (const auto& blk : groups_[g]) x = blk->forward(x);
      if (g + 1 < groups_.size()) x = torch::max_pool2d(x, {2, 2});
    }
    return out_conv_->forward(x.relu_());
  }

  bevt::LoadReport load_weights(const bevt::TensorMap& tensors, const bevt::LoadOptions& opts) override {
    bevt::LoadOptions o = opts;
    // BEVT keeps the encoder at cls_head.vae_encoder.* inside its whole-model checkpoint.
    o.strip_prefixes.insert(o.strip_prefixes.begin(), "cls_head.vae_encoder.");
    bevt::LoadReport rep;
    try {
      rep = bevt::load_state_dict(*this, tensors, o);
    } catch (const bevt::UserError& e) {
      throw bevt::UserError(fmt::format(
          "{} (the dalle tokenizer is configured for n_hid {}, {} blocks per group, {} groups, vocabulary {}; "
          "set those keys to match the weights)",
          e.what(), n_hid_, n_blk_, group_count_, vocab_));
    }
    freeze();
    return rep;
  }

 private:
  void freeze() {
    for (auto& p : parameters()) p.set_requires_grad(false);
    eval();
  }

  int64_t group_count_, n_hid_, n_blk_, in_ch_, vocab_;
  double eps_;
  int64_t input_size_;
  bool loaded_ = false;  // built from a weights file
  std::shared_ptr<torch::nn::Module> blocks_;
  std::shared_ptr<DalleConv> input_, out_conv_;
  std::vector<std::vector<std::shared_ptr<EncoderBlock>>> groups_;
};

}  // namespace

BEVT_REGISTER(bevt::plugin<bevt::Tokenizer, DalleTokenizer>(
                  "dalle", "OpenAI DALL-E dVAE encoder (frozen): images in [0,1] to 8192-way token ids")
                  .with_official_names({"Encoder"}));
